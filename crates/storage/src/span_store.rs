//! The span store: spans in the event store engine (WAL, day partitions, columnar parts,
//! bloom filters, per-part trace-id index, merges, retention) in its own directory, with
//! its own row mapping, and trace sampling applied when a flush writes parts.
//!
//! Fed by: the server's span ingest (decoded, validated batches of [`Span`]s).
//! Feeds: the query crate's trace search, trace-by-id, services and dependencies.
//!
//! A span is one event-store row ([`span_to_row`] / [`row_to_span`]); the mapping is
//! documented field by field in `docs/format/spans.md`. Sampling is a [`FlushFilter`]:
//! spans are durable and queryable as soon as they are committed, and a flush (about every
//! 5 s) drops the traces that sampling does not keep, a whole trace at a time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value as Json};
use sightline_model::{
    Attributes, LogRecord, Span, SpanEvent, SpanId, SpanKind, SpanLink, StatusCode, Tenant,
    TraceId, Value,
};

use crate::api::{LogStore, Prefilter, Projection, ScanRequest, ScanStats, StoreStats};
use crate::error::{Error, Result};
use crate::event_store::{EventStore, FlushFilter, ReplayReport, StoreConfig};

/// Reserved attribute key: the parent span id, as the `Int` of its 8 bytes big-endian
/// (an integer column: 8–10 bytes a row, and no bloom-filter token per row as hex text
/// would add).
pub const KEY_PARENT: &str = "@parent";
/// Reserved attribute key: the status message (`Str`).
pub const KEY_STATUS_MESSAGE: &str = "@status_message";
/// Reserved attribute key: the instrumentation scope name (`Str`).
pub const KEY_SCOPE: &str = "@scope";
/// Reserved attribute key: the instrumentation scope version (`Str`).
pub const KEY_SCOPE_VERSION: &str = "@scope_version";
/// Reserved attribute key: the W3C trace state (`Str`).
pub const KEY_TRACE_STATE: &str = "@trace_state";
/// Reserved attribute key: the span events as compact JSON text (`Str`).
pub const KEY_EVENTS: &str = "@events";
/// Reserved attribute key: the span links as compact JSON text (`Str`).
pub const KEY_LINKS: &str = "@links";

/// Tail-kept (and head-kept) trace ids remembered per store, so spans of a kept trace
/// arriving in a later flush are kept too. Spans of one trace normally reach the store
/// within seconds of each other (SDK batch exporters send every ~5 s), so the last
/// 100 000 kept traces cover minutes even at 1000 kept traces/s, for ~10 MB of memory.
const KEPT_TRACES_CAP: usize = 100_000;

/// Which traces are kept (see docs/configuration.md `[traces.sampling]`).
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingConfig {
    /// Head sampling ratio in [0, 1] for services not listed in `per_service` (default 1).
    pub default_ratio: f64,
    /// Per-service head sampling ratios, by `service.name`.
    pub per_service: Vec<(String, f64)>,
    /// Keep every trace with a span whose status is error (default true).
    pub keep_errors: bool,
    /// Keep every trace with a span at least this slow, ns (default: none).
    pub keep_slower_than_ns: Option<i64>,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig {
            default_ratio: 1.0,
            per_service: Vec::new(),
            keep_errors: true,
            keep_slower_than_ns: None,
        }
    }
}

impl SamplingConfig {
    /// Whether every trace is kept whatever its content (every ratio is at least 1): then
    /// no flush filter is installed at all.
    pub fn keeps_everything(&self) -> bool {
        self.default_ratio >= 1.0 && self.per_service.iter().all(|(_, r)| *r >= 1.0)
    }
}

/// What a span scan wants. Filters are exact (the store checks them), unlike log scan hints.
#[derive(Clone, Debug, Default)]
pub struct SpanScan {
    /// Only spans of this service.
    pub service: Option<String>,
    /// Only spans with this name (operation).
    pub name: Option<String>,
    /// Only spans having every one of these attributes (span or resource) with this value
    /// (compared as the value's text).
    pub attributes: Vec<(String, String)>,
    /// Only spans lasting at least / at most this long, ns.
    pub min_duration_ns: Option<i64>,
    pub max_duration_ns: Option<i64>,
    /// Only spans with status error.
    pub errors_only: bool,
    /// Only spans of these traces (looked up through the trace-id index, no scan).
    pub trace_ids: Option<Vec<TraceId>>,
    /// When true, spans are visited without attributes, resource, events and links
    /// (cheaper: for summaries and dependency edges). A light span has its ids, parent,
    /// name, kind, service, start, end and status code; status message, scope and trace
    /// state are empty too.
    pub light: bool,
}

impl SpanScan {
    /// Whether a row may hold a matching span, by the filters its cheap fields answer
    /// exactly (buffered rows are not pruned by the request's hints): saves decoding the
    /// rows that fail them.
    fn row_may_match(&self, r: &LogRecord) -> bool {
        let d = r.observed_timestamp.saturating_sub(r.timestamp);
        self.service.as_ref().is_none_or(|v| *v == r.service)
            && self.name.as_ref().is_none_or(|v| *v == r.body)
            && (!self.errors_only || r.severity_number == StatusCode::Error.number() as u8)
            && self.min_duration_ns.is_none_or(|m| d >= m)
            && self.max_duration_ns.is_none_or(|m| d <= m)
    }

    /// Whether the materialised span `s` passes every filter. `trace_ids` must be sorted
    /// ([`SpanStore::scan`] sorts a copy: a search fetches up to 1,000 traces at once).
    fn matches(&self, s: &Span) -> bool {
        let d = s.duration();
        self.service.as_ref().is_none_or(|v| *v == s.service)
            && self.name.as_ref().is_none_or(|v| *v == s.name)
            && (!self.errors_only || s.is_error())
            && self.min_duration_ns.is_none_or(|m| d >= m)
            && self.max_duration_ns.is_none_or(|m| d <= m)
            && self
                .trace_ids
                .as_ref()
                .is_none_or(|ids| ids.binary_search(&s.trace_id).is_ok())
            && self
                .attributes
                .iter()
                .all(|(k, v)| s.attribute(k).is_some_and(|x| x.to_string() == *v))
    }

    /// The event-store request: index and filter hints (pruning only; [`SpanScan::matches`]
    /// decides).
    fn request(&self) -> ScanRequest {
        let mut required_tokens = Vec::new();
        if let Some(name) = &self.name {
            // The name is the body, whose tokens the block filters hold.
            required_tokens.push(name.clone());
        }
        for (_, v) in &self.attributes {
            // Only string values are in the block filters; a filter text that could be
            // the text of a number or boolean may match a non-string value.
            let maybe_scalar =
                v.parse::<i64>().is_ok() || v.parse::<f64>().is_ok() || v.parse::<bool>().is_ok();
            if !maybe_scalar {
                required_tokens.push(v.clone());
            }
        }
        let projection = self.light.then(|| {
            let mut attributes = vec![KEY_PARENT.to_string()];
            for (k, _) in &self.attributes {
                // Resource keys are stored as is, span attribute keys escaped.
                attributes.push(k.clone());
                attributes.push(escape_key(k));
            }
            Projection {
                body: true,
                attributes,
            }
        });
        let prefilter =
            (self.errors_only || self.min_duration_ns.is_some() || self.max_duration_ns.is_some())
                .then(|| {
                    let (errors_only, min, max) =
                        (self.errors_only, self.min_duration_ns, self.max_duration_ns);
                    Prefilter::new(move |r: &LogRecord| {
                        let d = r.observed_timestamp.saturating_sub(r.timestamp);
                        (!errors_only || r.severity_number == StatusCode::Error.number() as u8)
                            && min.is_none_or(|m| d >= m)
                            && max.is_none_or(|m| d <= m)
                    })
                });
        ScanRequest {
            required_tokens,
            services: self.service.as_ref().map(|s| vec![s.clone()]),
            projection,
            prefilter,
            trace_ids: self.trace_ids.clone(),
        }
    }
}

/// The span store.
#[derive(Debug)]
pub struct SpanStore {
    events: Arc<EventStore>,
    /// `<dir>/<table>`: named in errors about undecodable rows.
    table_dir: PathBuf,
    sampler: Option<Arc<Sampler>>,
}

impl SpanStore {
    /// Opens the store with `cfg` (the server passes `dir = <data>/traces`,
    /// `table = "spans"`) and replays its WAL. Unless `sampling` keeps everything, a flush
    /// filter applying it replaces `cfg.flush_filter`.
    ///
    /// # Errors
    /// As [`EventStore::open`].
    pub fn open(
        mut cfg: StoreConfig,
        sampling: SamplingConfig,
    ) -> Result<(Arc<SpanStore>, ReplayReport)> {
        let table_dir = cfg.dir.join(cfg.table);
        let sampler = (!sampling.keeps_everything()).then(|| Arc::new(Sampler::new(sampling)));
        cfg.flush_filter = sampler.as_ref().map(|s| {
            let s = s.clone();
            FlushFilter::new(move |tenant: &Tenant, records: &mut Vec<LogRecord>| {
                s.filter(tenant, records)
            })
        });
        let (events, report) = EventStore::open(cfg)?;
        Ok((
            Arc::new(SpanStore {
                events,
                table_dir,
                sampler,
            }),
            report,
        ))
    }

    /// Commits `spans` for `tenant` as one batch, durable (per the fsync policy) and all or
    /// nothing. Returns the number of spans committed.
    ///
    /// # Errors
    /// As [`crate::LogAppender::commit`]; [`Error::Closed`] after [`SpanStore::close`].
    pub fn append(&self, tenant: &Tenant, spans: Vec<Span>) -> Result<usize> {
        let mut a = self.events.appender(tenant);
        for s in spans {
            a.append(span_to_row(s));
        }
        a.commit()
    }

    /// Calls `visit` with every span of `tenant` starting in `[start_ns, end_ns)` that
    /// matches `scan`, in no particular order; stops early when `visit` breaks.
    ///
    /// # Errors
    /// I/O errors, and [`Error::Corruption`] for a damaged part or a row that is not a span.
    pub fn scan(
        &self,
        tenant: &Tenant,
        start_ns: i64,
        end_ns: i64,
        scan: &SpanScan,
        visit: &mut dyn FnMut(Span) -> ControlFlow<()>,
    ) -> Result<ScanStats> {
        let sorted;
        let scan = match &scan.trace_ids {
            Some(ids) if !ids.is_sorted() => {
                let mut c = scan.clone();
                if let Some(ids) = &mut c.trace_ids {
                    ids.sort_unstable();
                }
                sorted = c;
                &sorted
            }
            _ => scan,
        };
        let req = scan.request();
        let mut bad: Option<Error> = None;
        let q = self.events.querier(tenant, start_ns, end_ns);
        let stats = q.scan(&req, &mut |r| {
            if !scan.row_may_match(r) {
                return ControlFlow::Continue(());
            }
            let mut s = match decode_row(r.clone()) {
                Ok(s) => s,
                Err(reason) => {
                    bad = Some(Error::Corruption {
                        path: self.table_dir.clone(),
                        offset: 0,
                        reason,
                    });
                    return ControlFlow::Break(());
                }
            };
            if !scan.matches(&s) {
                return ControlFlow::Continue(());
            }
            if scan.light {
                make_light(&mut s);
            }
            visit(s)
        })?;
        match bad {
            Some(e) => Err(e),
            None => Ok(stats),
        }
    }

    /// Every stored span of one trace starting in `[start_ns, end_ns)`, sorted by start
    /// time then span id. Found through the trace-id index: no scan.
    ///
    /// # Errors
    /// As [`SpanStore::scan`].
    pub fn trace(
        &self,
        tenant: &Tenant,
        id: TraceId,
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<Span>> {
        let scan = SpanScan {
            trace_ids: Some(vec![id]),
            ..SpanScan::default()
        };
        let mut spans = Vec::new();
        self.scan(tenant, start_ns, end_ns, &scan, &mut |s| {
            spans.push(s);
            ControlFlow::Continue(())
        })?;
        spans.sort_by_key(|s| (s.start, s.span_id));
        Ok(spans)
    }

    /// Writes buffered spans to parts (sampling applies here).
    ///
    /// # Errors
    /// As [`EventStore::flush`].
    pub fn flush(&self) -> Result<()> {
        self.events.flush()
    }

    /// Merges small parts now (tests, admin).
    ///
    /// # Errors
    /// As [`EventStore::merge_now`].
    pub fn merge_now(&self) -> Result<()> {
        self.events.merge_now()
    }

    /// Drops day partitions past the configured retention; see
    /// [`EventStore::enforce_retention`].
    ///
    /// # Errors
    /// I/O errors writing the manifest.
    pub fn enforce_retention(&self, now_ns: i64) -> Result<()> {
        self.events.enforce_retention(now_ns)
    }

    /// Flushes and stops the background thread.
    ///
    /// # Errors
    /// As [`EventStore::close`].
    pub fn close(&self) -> Result<()> {
        self.events.close()
    }

    /// Numbers for self-metrics.
    pub fn stats(&self) -> StoreStats {
        self.events.stats()
    }

    /// How many kept trace ids the sampler remembers (0 without sampling); for tests and
    /// self-metrics.
    pub fn remembered_traces(&self) -> usize {
        self.sampler.as_ref().map_or(0, |s| s.remembered())
    }
}

/// Clears what a light scan does not read (see [`SpanScan::light`]), so light spans are
/// the same whether they came from a buffer (full rows) or a part (projected rows).
fn make_light(s: &mut Span) {
    s.attributes = Attributes::new();
    s.resource = Attributes::new();
    s.events.clear();
    s.links.clear();
    s.status_message.clear();
    s.scope_name.clear();
    s.scope_version.clear();
    s.trace_state.clear();
}

// ---- Row mapping -------------------------------------------------------------------------

/// A span attribute key as stored: a key starting with `@` gets one more `@` in front, so
/// it never collides with the reserved keys.
fn escape_key(k: &str) -> String {
    if k.starts_with('@') {
        format!("@{k}")
    } else {
        k.to_string()
    }
}

/// The event-store row of a span (see `docs/format/spans.md`): start → timestamp, end →
/// observed timestamp, status code → severity number, kind → severity text, name → body,
/// service, resource, ids; the other fields as reserved `@` attributes, written only when
/// not empty.
pub fn span_to_row(s: Span) -> LogRecord {
    let mut pairs: Vec<(String, Value)> = s
        .attributes
        .into_vec()
        .into_iter()
        .map(|(k, v)| (escape_key(&k), v))
        .collect();
    if let Some(p) = s.parent_span_id {
        pairs.push((KEY_PARENT.into(), Value::Int(i64::from_be_bytes(p.0))));
    }
    for (key, text) in [
        (KEY_STATUS_MESSAGE, s.status_message),
        (KEY_SCOPE, s.scope_name),
        (KEY_SCOPE_VERSION, s.scope_version),
        (KEY_TRACE_STATE, s.trace_state),
    ] {
        if !text.is_empty() {
            pairs.push((key.into(), Value::Str(text)));
        }
    }
    if !s.events.is_empty() {
        pairs.push((KEY_EVENTS.into(), Value::Str(events_json(&s.events))));
    }
    if !s.links.is_empty() {
        pairs.push((KEY_LINKS.into(), Value::Str(links_json(&s.links))));
    }
    LogRecord {
        timestamp: s.start,
        observed_timestamp: s.end,
        severity_number: s.status_code.number() as u8,
        severity_text: s.kind.as_str().to_string(),
        service: s.service,
        body: s.name,
        resource: s.resource,
        attributes: Attributes::from_pairs(pairs),
        trace_id: Some(s.trace_id),
        span_id: Some(s.span_id),
    }
}

/// The span a row written by [`span_to_row`] holds.
///
/// # Errors
/// [`Error::Corruption`] (path `span row`) when the row is not one [`span_to_row`] writes:
/// an unknown status number or kind name, a reserved key with the wrong type or bad JSON,
/// an unknown reserved key.
pub fn row_to_span(row: LogRecord) -> Result<Span> {
    decode_row(row).map_err(|reason| Error::Corruption {
        path: PathBuf::from("span row"),
        offset: 0,
        reason,
    })
}

/// [`row_to_span`] with the reason as text, for the caller to place.
fn decode_row(row: LogRecord) -> std::result::Result<Span, String> {
    let trace_id = row.trace_id.unwrap_or_default();
    let span_id = row.span_id.unwrap_or_default();
    let what = || format!("span {trace_id}/{span_id}");
    let status_code = match row.severity_number {
        0 => StatusCode::Unset,
        1 => StatusCode::Ok,
        2 => StatusCode::Error,
        n => return Err(format!("{}: unknown status code number {n}", what())),
    };
    let kind = SpanKind::ALL
        .into_iter()
        .find(|k| k.as_str() == row.severity_text)
        .ok_or_else(|| format!("{}: unknown span kind {:?}", what(), row.severity_text))?;
    let mut s = Span {
        trace_id,
        span_id,
        kind,
        status_code,
        start: row.timestamp,
        end: row.observed_timestamp,
        name: row.body,
        service: row.service,
        resource: row.resource,
        ..Span::default()
    };
    let mut attributes = Vec::with_capacity(row.attributes.len());
    for (k, v) in row.attributes.into_vec() {
        if k.starts_with("@@") {
            attributes.push((k[1..].to_string(), v));
            continue;
        }
        if !k.starts_with('@') {
            attributes.push((k, v));
            continue;
        }
        let text = |v: Value| match v {
            Value::Str(t) => Ok(t),
            other => Err(format!(
                "{}: attribute {k} is not a string: {other:?}",
                what()
            )),
        };
        match k.as_str() {
            KEY_PARENT => match v {
                Value::Int(i) => s.parent_span_id = Some(SpanId(i.to_be_bytes())),
                other => {
                    return Err(format!(
                        "{}: attribute {k} is not an integer: {other:?}",
                        what()
                    ))
                }
            },
            KEY_STATUS_MESSAGE => s.status_message = text(v)?,
            KEY_SCOPE => s.scope_name = text(v)?,
            KEY_SCOPE_VERSION => s.scope_version = text(v)?,
            KEY_TRACE_STATE => s.trace_state = text(v)?,
            KEY_EVENTS => {
                s.events = parse_events(&text(v)?).map_err(|e| format!("{}: {k}: {e}", what()))?
            }
            KEY_LINKS => {
                s.links = parse_links(&text(v)?).map_err(|e| format!("{}: {k}: {e}", what()))?
            }
            _ => return Err(format!("{}: unknown reserved attribute {k}", what())),
        }
    }
    s.attributes = Attributes::from_pairs(attributes);
    Ok(s)
}

// Events and links are compact JSON text rather than a binary encoding: they are rare and
// small, zstd folds their repeated keys, the part's block filters index the words of
// string values in them (exception messages become searchable), and a raw dump of a part
// stays readable. Shapes (keys short on purpose; empty fields left out):
//   events: [{"t": <time ns>, "n": "<name>", "a": {<attributes>}}, ...]
//   links:  [{"t": "<trace id hex>", "s": "<span id hex>", "ts": "<trace state>",
//             "a": {<attributes>}}, ...]
// Attribute values: strings, integers and booleans as JSON; floats as {"f": "<text>"}
// (Rust's shortest round-trip text, `NaN`/`inf`/`-inf` included), because JSON numbers
// parsed back are not always bit-exact and JSON has no NaN.

fn attrs_json(a: &Attributes) -> Json {
    let mut m = Map::new();
    for (k, v) in a.iter() {
        let j = match v {
            Value::Str(s) => Json::String(s.clone()),
            Value::Int(i) => Json::from(*i),
            Value::Bool(b) => Json::Bool(*b),
            Value::Float(f) => {
                let mut o = Map::new();
                o.insert("f".into(), Json::String(format!("{f:?}")));
                Json::Object(o)
            }
        };
        m.insert(k.to_string(), j);
    }
    Json::Object(m)
}

fn parse_attrs(j: &Json) -> std::result::Result<Attributes, String> {
    let m = j
        .as_object()
        .ok_or_else(|| "attributes are not an object".to_string())?;
    let mut pairs = Vec::with_capacity(m.len());
    for (k, v) in m {
        let value = match v {
            Json::String(s) => Value::Str(s.clone()),
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Int(
                n.as_i64()
                    .ok_or_else(|| format!("attribute {k}: {n} is not a 64-bit integer"))?,
            ),
            Json::Object(o) if o.len() == 1 => {
                let f = o
                    .get("f")
                    .and_then(Json::as_str)
                    .and_then(|t| t.parse::<f64>().ok())
                    .ok_or_else(|| format!("attribute {k}: bad float {v}"))?;
                Value::Float(f)
            }
            other => return Err(format!("attribute {k}: unexpected value {other}")),
        };
        pairs.push((k.clone(), value));
    }
    Ok(Attributes::from_pairs(pairs))
}

fn events_json(events: &[SpanEvent]) -> String {
    let list: Vec<Json> = events
        .iter()
        .map(|e| {
            let mut o = Map::new();
            o.insert("t".into(), Json::from(e.time));
            if !e.name.is_empty() {
                o.insert("n".into(), Json::String(e.name.clone()));
            }
            if !e.attributes.is_empty() {
                o.insert("a".into(), attrs_json(&e.attributes));
            }
            Json::Object(o)
        })
        .collect();
    Json::Array(list).to_string()
}

/// The elements of a JSON array of objects, each checked to have only `known` keys.
fn parse_objects(
    text: &str,
    known: &[&str],
) -> std::result::Result<Vec<Map<String, Json>>, String> {
    let json: Json = serde_json::from_str(text).map_err(|e| format!("bad json: {e}"))?;
    let Json::Array(list) = json else {
        return Err("not a json array".to_string());
    };
    list.into_iter()
        .enumerate()
        .map(|(i, item)| {
            let Json::Object(o) = item else {
                return Err(format!("element {i} is not an object"));
            };
            if let Some(k) = o.keys().find(|k| !known.contains(&k.as_str())) {
                return Err(format!("element {i}: unknown key {k:?}"));
            }
            Ok(o)
        })
        .collect()
}

fn str_field(o: &Map<String, Json>, key: &str, i: usize) -> std::result::Result<String, String> {
    match o.get(key) {
        None => Ok(String::new()),
        Some(Json::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("element {i}: {key} is not a string: {other}")),
    }
}

fn attrs_field(o: &Map<String, Json>, i: usize) -> std::result::Result<Attributes, String> {
    o.get("a").map_or(Ok(Attributes::new()), |a| {
        parse_attrs(a).map_err(|e| format!("element {i}: {e}"))
    })
}

fn parse_events(text: &str) -> std::result::Result<Vec<SpanEvent>, String> {
    let list = parse_objects(text, &["t", "n", "a"])?;
    list.iter()
        .enumerate()
        .map(|(i, o)| {
            let time = o
                .get("t")
                .and_then(Json::as_i64)
                .ok_or_else(|| format!("element {i}: t is missing or not an integer"))?;
            Ok(SpanEvent {
                time,
                name: str_field(o, "n", i)?,
                attributes: attrs_field(o, i)?,
            })
        })
        .collect()
}

fn links_json(links: &[SpanLink]) -> String {
    let list: Vec<Json> = links
        .iter()
        .map(|l| {
            let mut o = Map::new();
            if let Some(t) = l.trace_id {
                o.insert("t".into(), Json::String(t.to_hex()));
            }
            if let Some(s) = l.span_id {
                o.insert("s".into(), Json::String(s.to_hex()));
            }
            if !l.trace_state.is_empty() {
                o.insert("ts".into(), Json::String(l.trace_state.clone()));
            }
            if !l.attributes.is_empty() {
                o.insert("a".into(), attrs_json(&l.attributes));
            }
            Json::Object(o)
        })
        .collect();
    Json::Array(list).to_string()
}

fn parse_links(text: &str) -> std::result::Result<Vec<SpanLink>, String> {
    let list = parse_objects(text, &["t", "s", "ts", "a"])?;
    list.iter()
        .enumerate()
        .map(|(i, o)| {
            let trace_id = match o.get("t") {
                None => None,
                Some(Json::String(h)) => {
                    Some(TraceId::from_hex(h).map_err(|e| format!("element {i}: t: {e}"))?)
                }
                Some(other) => return Err(format!("element {i}: t is not a string: {other}")),
            };
            let span_id = match o.get("s") {
                None => None,
                Some(Json::String(h)) => {
                    Some(SpanId::from_hex(h).map_err(|e| format!("element {i}: s: {e}"))?)
                }
                Some(other) => return Err(format!("element {i}: s is not a string: {other}")),
            };
            Ok(SpanLink {
                trace_id,
                span_id,
                trace_state: str_field(o, "ts", i)?,
                attributes: attrs_field(o, i)?,
            })
        })
        .collect()
}

// ---- Sampling ----------------------------------------------------------------------------

/// Whether head sampling at `ratio` keeps trace `id`: OpenTelemetry's `TraceIdRatioBased`
/// (the low 8 bytes of the id, big-endian, shifted right by one, below `ratio * 2^63`), so
/// the decision is the same in every process that samples the same id at the same ratio,
/// and a trace kept at some ratio is kept at every higher one.
pub fn head_sampled(id: TraceId, ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    // NaN and non-positive ratios keep nothing.
    if ratio.is_nan() || ratio <= 0.0 {
        return false;
    }
    let bound = (ratio * (1u64 << 63) as f64) as u64;
    let low: [u8; 8] = id.0[8..].try_into().expect("BUG: 8 of 16 bytes");
    (u64::from_be_bytes(low) >> 1) < bound
}

/// The trace ids a sampler kept, oldest evicted first.
#[derive(Debug, Default)]
struct KeptTraces {
    set: HashSet<(Tenant, TraceId)>,
    order: VecDeque<(Tenant, TraceId)>,
}

impl KeptTraces {
    fn remember(&mut self, key: (Tenant, TraceId)) {
        if self.set.insert(key.clone()) {
            self.order.push_back(key);
            if self.order.len() > KEPT_TRACES_CAP {
                let old = self.order.pop_front().expect("BUG: over the cap yet empty");
                self.set.remove(&old);
            }
        }
    }
}

/// What the spans of one trace in one flushed partition say for sampling.
#[derive(Debug, Default)]
struct TraceFacts {
    root_ratio: Option<f64>,
    max_ratio: f64,
    error: bool,
    slow: bool,
}

/// Applies a [`SamplingConfig`] to the rows of a flush, whole traces at a time.
#[derive(Debug)]
struct Sampler {
    cfg: SamplingConfig,
    ratios: HashMap<String, f64>,
    kept: Mutex<KeptTraces>,
}

impl Sampler {
    fn new(cfg: SamplingConfig) -> Self {
        let ratios = cfg.per_service.iter().cloned().collect();
        Sampler {
            cfg,
            ratios,
            kept: Mutex::new(KeptTraces::default()),
        }
    }

    fn ratio(&self, service: &str) -> f64 {
        self.ratios
            .get(service)
            .copied()
            .unwrap_or(self.cfg.default_ratio)
    }

    fn remembered(&self) -> usize {
        self.kept
            .lock()
            .expect("BUG: sampler lock poisoned")
            .set
            .len()
    }

    /// Keeps the rows of the traces sampling keeps: a trace already kept, or one with an
    /// error span (`keep_errors`) or a slow span, or one head sampling keeps at the ratio
    /// of its root span's service (when the root is in these rows), else at the highest
    /// ratio among its services.
    fn filter(&self, tenant: &Tenant, records: &mut Vec<LogRecord>) {
        let mut facts: HashMap<TraceId, TraceFacts> = HashMap::new();
        for r in records.iter() {
            let f = facts.entry(r.trace_id.unwrap_or_default()).or_default();
            let ratio = self.ratio(&r.service);
            f.max_ratio = f.max_ratio.max(ratio);
            if f.root_ratio.is_none() && r.attributes.get(KEY_PARENT).is_none() {
                f.root_ratio = Some(ratio);
            }
            f.error |= r.severity_number == StatusCode::Error.number() as u8;
            f.slow |= self
                .cfg
                .keep_slower_than_ns
                .is_some_and(|t| r.observed_timestamp.saturating_sub(r.timestamp) >= t);
        }
        let mut kept = self.kept.lock().expect("BUG: sampler lock poisoned");
        let decisions: HashMap<TraceId, bool> = facts
            .into_iter()
            .map(|(id, f)| {
                let key = (tenant.clone(), id);
                let keep = kept.set.contains(&key)
                    || (self.cfg.keep_errors && f.error)
                    || f.slow
                    || head_sampled(id, f.root_ratio.unwrap_or(f.max_ratio));
                if keep {
                    kept.remember(key);
                }
                (id, keep)
            })
            .collect();
        drop(kept);
        records.retain(|r| decisions[&r.trace_id.unwrap_or_default()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tid(n: u64) -> TraceId {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
        b[8..].copy_from_slice(&n.to_be_bytes());
        TraceId(b)
    }

    fn full_span() -> Span {
        Span {
            trace_id: tid(7),
            span_id: SpanId([1, 2, 3, 4, 5, 6, 7, 8]),
            parent_span_id: Some(SpanId([9; 8])),
            trace_state: "k=v".into(),
            name: "GET /users".into(),
            kind: SpanKind::Server,
            start: 1_000,
            end: 5_000,
            status_code: StatusCode::Error,
            status_message: "boom".into(),
            service: "api".into(),
            resource: Attributes::from_pairs([("host".to_string(), Value::Str("h1".into()))]),
            scope_name: "io.opentelemetry.http".into(),
            scope_version: "1.2".into(),
            attributes: Attributes::from_pairs([
                ("http.status_code".to_string(), Value::Int(500)),
                ("@parent".to_string(), Value::Str("user".into())),
                ("ratio".to_string(), Value::Float(0.1)),
            ]),
            events: vec![SpanEvent {
                time: 2_000,
                name: "exception".into(),
                attributes: Attributes::from_pairs([
                    (
                        "exception.message".to_string(),
                        Value::Str("no such user".into()),
                    ),
                    ("nan".to_string(), Value::Float(f64::INFINITY)),
                    ("ok".to_string(), Value::Bool(false)),
                ]),
            }],
            links: vec![SpanLink {
                trace_id: Some(tid(8)),
                span_id: Some(SpanId([3; 8])),
                trace_state: "a=b".into(),
                attributes: Attributes::new(),
            }],
        }
    }

    #[test]
    fn the_row_mapping_is_as_documented() {
        let row = span_to_row(full_span());
        assert_eq!((row.timestamp, row.observed_timestamp), (1_000, 5_000));
        assert_eq!(row.severity_number, 2);
        assert_eq!(row.severity_text, "server");
        assert_eq!(
            (row.service.as_str(), row.body.as_str()),
            ("api", "GET /users")
        );
        assert_eq!(
            row.attributes.get("@parent"),
            Some(&Value::Int(i64::from_be_bytes([9; 8])))
        );
        assert_eq!(
            row.attributes.get("@@parent"),
            Some(&Value::Str("user".into()))
        );
        assert_eq!(
            row.attributes.get("@status_message"),
            Some(&Value::Str("boom".into()))
        );
        assert_eq!(
            row.attributes.get("@events"),
            Some(&Value::Str(
                r#"[{"t":2000,"n":"exception","a":{"exception.message":"no such user","nan":{"f":"inf"},"ok":false}}]"#
                    .into()
            ))
        );
        assert_eq!(
            row.attributes.get("@links"),
            Some(&Value::Str(format!(
                r#"[{{"t":"{}","s":"0303030303030303","ts":"a=b"}}]"#,
                tid(8).to_hex()
            )))
        );
        assert_eq!(row_to_span(row).unwrap(), full_span());
    }

    #[test]
    fn empty_fields_write_no_reserved_keys() {
        let s = Span {
            trace_id: tid(1),
            span_id: SpanId([1; 8]),
            name: "x".into(),
            ..Span::default()
        };
        let row = span_to_row(s.clone());
        assert!(row.attributes.is_empty(), "{:?}", row.attributes);
        assert_eq!(row_to_span(row).unwrap(), s);
    }

    #[test]
    fn nan_floats_survive_the_event_json() {
        let mut s = full_span();
        s.events[0]
            .attributes
            .insert("x".into(), Value::Float(f64::NAN));
        let back = row_to_span(span_to_row(s)).unwrap();
        match back.events[0].attributes.get("x") {
            Some(Value::Float(f)) => assert!(f.is_nan()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rows_that_are_not_spans_are_errors() {
        let good = span_to_row(full_span());
        let mut bad = Vec::new();
        let mut r = good.clone();
        r.severity_number = 9;
        bad.push(r);
        let mut r = good.clone();
        r.severity_text = "sideways".into();
        bad.push(r);
        for (k, v) in [
            ("@parent", Value::Str("x".into())),
            ("@scope", Value::Int(1)),
            ("@events", Value::Str("[{\"t\":\"x\"}]".into())),
            ("@events", Value::Str("{".into())),
            ("@events", Value::Str("[{\"t\":1,\"zz\":1}]".into())),
            ("@links", Value::Str("[{\"t\":\"abc\"}]".into())),
            ("@links", Value::Str("[{\"a\":{\"k\":[1]}}]".into())),
            (
                "@links",
                Value::Str("[{\"a\":{\"k\":{\"f\":\"x\"}}}]".into()),
            ),
            ("@unknown", Value::Str("x".into())),
        ] {
            let mut r = good.clone();
            r.attributes.insert(k.into(), v);
            bad.push(r);
        }
        for r in bad {
            let e = row_to_span(r.clone()).unwrap_err();
            assert!(
                matches!(&e, Error::Corruption { reason, .. } if reason.contains(&tid(7).to_hex())),
                "{e} for {r:?}"
            );
        }
    }

    #[test]
    fn head_sampling_is_otel_trace_id_ratio_based() {
        // Low 8 bytes 0 → kept at any ratio above 0; all ones → only at ratio 1.
        let low = |x: u64| {
            let mut b = [0xab; 16];
            b[8..].copy_from_slice(&x.to_be_bytes());
            TraceId(b)
        };
        assert!(head_sampled(low(0), 1e-9));
        assert!(!head_sampled(low(0), 0.0));
        assert!(!head_sampled(low(u64::MAX), 0.999_999));
        assert!(head_sampled(low(u64::MAX), 1.0));
        // Half: (x >> 1) < 2^62 iff x < 2^63.
        assert!(head_sampled(low((1 << 63) - 1), 0.5));
        assert!(!head_sampled(low(1 << 63), 0.5));
        assert!(!head_sampled(low(0), f64::NAN));
        let kept = (0..10_000u64)
            .filter(|&n| head_sampled(tid(n.wrapping_mul(0x2545_f491_4f6c_dd1d)), 0.25))
            .count();
        assert!((2_200..2_800).contains(&kept), "{kept}");
    }

    #[test]
    fn kept_traces_are_bounded_and_fifo() {
        let t = Tenant::default();
        let mut k = KeptTraces::default();
        for n in 0..(KEPT_TRACES_CAP as u64 + 10) {
            k.remember((t.clone(), tid(n)));
        }
        k.remember((t.clone(), tid(50)));
        assert_eq!(k.set.len(), KEPT_TRACES_CAP);
        assert_eq!(k.order.len(), KEPT_TRACES_CAP);
        assert!(!k.set.contains(&(t.clone(), tid(9))));
        assert!(k.set.contains(&(t.clone(), tid(10))));
    }

    #[test]
    fn ratio_one_keeps_everything_and_installs_no_filter() {
        assert!(SamplingConfig::default().keeps_everything());
        let mut c = SamplingConfig::default();
        c.per_service.push(("a".into(), 0.5));
        assert!(!c.keeps_everything());
        let dir = tempfile::tempdir().unwrap();
        let (s, _) =
            SpanStore::open(StoreConfig::new(dir.path()), SamplingConfig::default()).unwrap();
        assert!(s.sampler.is_none());
        assert_eq!(s.table_dir, dir.path().join("logs"));
        s.close().unwrap();
    }

    #[test]
    fn root_service_ratio_decides_when_the_root_is_there() {
        let sampler = Sampler::new(SamplingConfig {
            default_ratio: 0.0,
            per_service: vec![("front".into(), 1.0)],
            keep_errors: false,
            keep_slower_than_ns: None,
        });
        let span = |trace: u64, service: &str, root: bool| {
            span_to_row(Span {
                trace_id: tid(trace),
                span_id: SpanId([trace as u8 + 1; 8]),
                parent_span_id: (!root).then_some(SpanId([1; 8])),
                service: service.into(),
                ..Span::default()
            })
        };
        let t = Tenant::default();
        // Trace 1: root in "back" (ratio 0) → dropped though "front" is 1.
        // Trace 2: no root here, "front" among its services → kept (highest ratio).
        let mut rows = vec![
            span(1, "back", true),
            span(1, "front", false),
            span(2, "back", false),
            span(2, "front", false),
        ];
        sampler.filter(&t, &mut rows);
        let ids: Vec<TraceId> = rows.iter().map(|r| r.trace_id.unwrap()).collect();
        assert_eq!(ids, [tid(2), tid(2)]);
        // A later root of trace 2 in "back" is kept: the trace was kept before.
        let mut later = vec![span(2, "back", true)];
        sampler.filter(&t, &mut later);
        assert_eq!(later.len(), 1);
        // Another tenant's trace 2 is decided on its own.
        let mut other = vec![span(2, "back", true)];
        sampler.filter(&Tenant::new("other").unwrap(), &mut other);
        assert!(other.is_empty());
    }

    #[test]
    fn light_scans_project_the_parent_and_filter_keys() {
        let scan = SpanScan {
            light: true,
            attributes: vec![("@a".into(), "x y".into()), ("code".into(), "500".into())],
            name: Some("GET /users".into()),
            ..SpanScan::default()
        };
        let req = scan.request();
        let p = req.projection.unwrap();
        assert!(p.body);
        for k in ["@parent", "@a", "@@a", "code"] {
            assert!(p.wants(k), "{k}");
        }
        assert_eq!(
            req.required_tokens,
            ["GET /users", "x y"],
            "500 may be an Int"
        );
        assert!(req.prefilter.is_none());
        let full = SpanScan::default().request();
        assert!(full.projection.is_none() && full.required_tokens.is_empty());
    }

    #[test]
    fn prefilter_tests_status_and_duration() {
        let scan = SpanScan {
            errors_only: true,
            min_duration_ns: Some(10),
            max_duration_ns: Some(20),
            ..SpanScan::default()
        };
        let pf = scan.request().prefilter.unwrap();
        let row = |status: u8, dur: i64| LogRecord {
            timestamp: 100,
            observed_timestamp: 100 + dur,
            severity_number: status,
            ..LogRecord::default()
        };
        assert!(pf.test(&row(2, 10)) && pf.test(&row(2, 20)));
        assert!(!pf.test(&row(1, 15)) && !pf.test(&row(2, 9)) && !pf.test(&row(2, 21)));
    }

    fn attr_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            ".{0,12}".prop_map(Value::Str),
            any::<i64>().prop_map(Value::Int),
            any::<f64>()
                .prop_filter("NaN is never equal", |f| !f.is_nan())
                .prop_map(Value::Float),
            any::<bool>().prop_map(Value::Bool),
        ]
    }

    fn attrs() -> impl Strategy<Value = Attributes> {
        // Keys that collide with the reserved ones and their escapes, and plain ones.
        let key = prop_oneof![
            Just("@parent".to_string()),
            Just("@events".to_string()),
            Just("@@links".to_string()),
            Just("@".to_string()),
            Just("@@".to_string()),
            "@{0,3}[a-z.]{0,6}",
        ];
        prop::collection::vec((key, attr_value()), 0..6).prop_map(Attributes::from_pairs)
    }

    fn span_strategy() -> impl Strategy<Value = Span> {
        let ids = (
            any::<[u8; 16]>(),
            any::<[u8; 8]>(),
            any::<Option<[u8; 8]>>(),
        );
        let texts = (".{0,8}", ".{0,12}", ".{0,8}", ".{0,8}", ".{0,6}", ".{0,6}");
        let nums = (any::<i64>(), any::<i64>(), 0usize..6, 0i32..3);
        let event =
            (any::<i64>(), ".{0,8}", attrs()).prop_map(|(time, name, attributes)| SpanEvent {
                time,
                name,
                attributes,
            });
        let link = (
            any::<Option<[u8; 16]>>(),
            any::<Option<[u8; 8]>>(),
            ".{0,6}",
            attrs(),
        )
            .prop_map(|(t, s, trace_state, attributes)| SpanLink {
                trace_id: t.map(TraceId),
                span_id: s.map(SpanId),
                trace_state,
                attributes,
            });
        let lists = (
            attrs(),
            attrs(),
            prop::collection::vec(event, 0..3),
            prop::collection::vec(link, 0..3),
        );
        (ids, texts, nums, lists).prop_map(
            |(
                (t, s, p),
                (trace_state, name, status_message, service, scope_name, scope_version),
                (start, end, kind, status),
                (resource, attributes, events, links),
            )| Span {
                trace_id: TraceId(t),
                span_id: SpanId(s),
                parent_span_id: p.map(SpanId),
                trace_state,
                name,
                kind: SpanKind::ALL[kind],
                start,
                end,
                status_code: StatusCode::from_number(status),
                status_message,
                service,
                resource,
                scope_name,
                scope_version,
                attributes,
                events,
                links,
            },
        )
    }

    proptest! {
        // Each case opens a store and writes a part: few cases.
        #![proptest_config(ProptestConfig::with_cases(12))]

        #[test]
        fn spans_round_trip_through_a_part(
            spans in prop::collection::vec(span_strategy(), 1..12),
            times in prop::collection::vec((0i64..4_000_000_000_000_000_000, 0i64..1 << 40), 12),
        ) {
            let spans: Vec<Span> = spans
                .into_iter()
                .zip(times)
                .enumerate()
                .map(|(i, (mut s, (start, dur)))| {
                    // Distinct ids, times in a realistic range.
                    s.span_id.0[0] = i as u8;
                    s.start = start;
                    s.end = start + dur;
                    s
                })
                .collect();
            let dir = tempfile::tempdir().unwrap();
            let mut cfg = StoreConfig::new(dir.path());
            cfg.fsync = crate::event_store::FsyncPolicy::Never;
            let (store, _) = SpanStore::open(cfg, SamplingConfig::default()).unwrap();
            let t = Tenant::default();
            store.append(&t, spans.clone()).unwrap();
            store.flush().unwrap();
            let mut got = Vec::new();
            store
                .scan(&t, i64::MIN, i64::MAX, &SpanScan::default(), &mut |s| {
                    got.push(s);
                    ControlFlow::Continue(())
                })
                .unwrap();
            let key = |s: &Span| s.span_id;
            let mut want = spans;
            want.sort_by_key(key);
            got.sort_by_key(key);
            prop_assert_eq!(got, want);
            store.close().unwrap();
        }
    }

    proptest! {
        #[test]
        fn row_mapping_round_trips(s in span_strategy()) {
            prop_assert_eq!(row_to_span(span_to_row(s.clone())).unwrap(), s);
        }

        #[test]
        fn garbage_rows_give_errors_not_panics(
            events in ".{0,40}",
            links in "\\[\\{.{0,30}\\}\\]",
            sev in any::<u8>(),
            kind in ".{0,12}",
        ) {
            let mut r = span_to_row(full_span());
            r.attributes.insert("@events".into(), Value::Str(events));
            r.attributes.insert("@links".into(), Value::Str(links));
            r.severity_number = sev;
            r.severity_text = kind;
            let _ = row_to_span(r);
        }
    }
}
