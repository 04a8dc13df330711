//! The native trace API: `/api/v1/traces/<id>`, `/api/v1/traces?...`, `/api/v1/services`,
//! `/api/v1/services/<s>/operations`, `/api/v1/dependencies` (contract: docs/api.md,
//! "Traces"). Only parses parameters and renders JSON; the search itself is
//! `sightline_query::traces`, run on a blocking thread.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value as JsonValue};
use sightline_model::time::{format_rfc3339_ns, NANOS_PER_SEC};
use sightline_model::{Span, Tenant, TraceId};
use sightline_query::traces::{Dependency, Operation, TraceQuery, TraceSummary};
use sightline_storage::{LogStore, ScanRequest, ScanStats};

use crate::body::tenant;
use crate::error::ApiError;
use crate::native::params;
use crate::state::AppState;

/// `limit` of a trace search when none is given: a screenful, as Jaeger's UI and Grafana ask.
pub const DEFAULT_TRACE_LIMIT: usize = 20;
/// The most traces one search returns: each row costs a whole-trace lookup, so a larger
/// page would make one request scan without bound.
pub const MAX_TRACE_LIMIT: usize = 1000;
/// How far around a trace's own time span its logs are looked for: logs are often written
/// a little before or after the span that carries their trace id (batching, clock skew).
const LOGS_MARGIN_NS: i64 = 3600 * NANOS_PER_SEC;
/// The most log records returned with one trace (the oldest kept): a trace with more logs
/// than this is better read through the log query API, page by page.
const MAX_TRACE_LOGS: usize = 10_000;

/// The routes, merged into the main router.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/traces", get(search))
        .route("/api/v1/traces/{id}", get(trace))
        .route("/api/v1/services", get(services))
        .route("/api/v1/services/{service}/operations", get(operations))
        .route("/api/v1/dependencies", get(dependencies))
}

// ---- handlers ------------------------------------------------------------------------------

/// `GET /api/v1/traces/<id>[?include=logs]`.
async fn trace(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(p): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    measured(&state, async {
        let tenant = tenant(&headers)?;
        let id = parse_trace_id(&id)?;
        let with_logs = include_logs(&p)?;
        let store = state.span_store()?;
        let t = tenant.clone();
        let spans = blocking(move || sightline_query::traces::get_trace(&store, &t, id)).await?;
        if spans.is_empty() {
            return Ok(not_found(id));
        }
        let logs = if with_logs {
            let log_store = state.store()?;
            let (first, last) = time_span(&spans);
            let logs = blocking(move || {
                trace_logs(log_store.as_ref(), &tenant, id, first, last)
                    .map_err(sightline_query::Error::Storage)
            })
            .await?;
            Some(logs)
        } else {
            None
        };
        Ok(Json(trace_json(id, &spans, logs)).into_response())
    })
    .await
}

/// `GET /api/v1/traces?service=&operation=&attributes=&min_duration=&max_duration=&status=
/// &start=&end=&limit=`.
async fn search(
    State(state): State<Arc<AppState>>,
    Query(p): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    measured(&state, async {
        let tenant = tenant(&headers)?;
        let q = trace_query(&p)?;
        let store = state.span_store()?;
        let (rows, stats) =
            blocking(move || sightline_query::traces::search_traces(&store, &tenant, &q)).await?;
        Ok(Json(search_json(&rows, &stats, started.elapsed().as_secs_f64())).into_response())
    })
    .await
}

/// `GET /api/v1/services?start=&end=`.
async fn services(
    State(state): State<Arc<AppState>>,
    Query(p): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    measured(&state, async {
        let tenant = tenant(&headers)?;
        let (start, end) = span_range(&p)?;
        let store = state.span_store()?;
        let list = blocking(move || sightline_query::traces::services(&store, &tenant, start, end))
            .await?;
        Ok(Json(json!({ "data": list })).into_response())
    })
    .await
}

/// `GET /api/v1/services/<service>/operations?start=&end=`.
async fn operations(
    State(state): State<Arc<AppState>>,
    Path(service): Path<String>,
    Query(p): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    measured(&state, async {
        let tenant = tenant(&headers)?;
        let (start, end) = span_range(&p)?;
        let store = state.span_store()?;
        let ops = blocking(move || {
            sightline_query::traces::operations(&store, &tenant, &service, start, end)
        })
        .await?;
        Ok(Json(operations_json(&ops)).into_response())
    })
    .await
}

/// `GET /api/v1/dependencies?start=&end=`.
async fn dependencies(
    State(state): State<Arc<AppState>>,
    Query(p): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    measured(&state, async {
        let tenant = tenant(&headers)?;
        let (start, end) = span_range(&p)?;
        let store = state.span_store()?;
        let deps =
            blocking(move || sightline_query::traces::dependencies(&store, &tenant, start, end))
                .await?;
        Ok(Json(dependencies_json(&deps)).into_response())
    })
    .await
}

/// Runs a trace query handler, counting it in `sightline_queries_total{kind="traces"}` and
/// the query-duration histogram.
pub(crate) async fn measured<T>(
    state: &AppState,
    f: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let started = Instant::now();
    let result = f.await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    state.metrics.inc(
        "sightline_queries_total",
        &[("kind", "traces"), ("outcome", outcome)],
        1,
    );
    state
        .metrics
        .observe_query("traces", started.elapsed().as_secs_f64());
    result
}

/// Runs a blocking trace query on the blocking pool (storage reads block).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> sightline_query::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("trace query task failed: {e}")))?
        .map_err(query_error)
}

pub(crate) fn query_error(e: sightline_query::Error) -> ApiError {
    match e {
        sightline_query::Error::Storage(s) => ApiError::storage(s),
        other => ApiError::BadRequest(other.to_string()),
    }
}

/// 404 `{"error": "trace <id> not found"}`. Built here because [`ApiError`] has no
/// not-found kind (every other endpoint answers bad input with 4xx through it).
fn not_found(id: TraceId) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": format!("trace {} not found", id.to_hex()) })),
    )
        .into_response()
}

// ---- parameters ----------------------------------------------------------------------------

/// A trace id from a path: 32 hex characters, not all zero.
///
/// # Errors
/// 400 `trace_id: ...`.
pub fn parse_trace_id(s: &str) -> Result<TraceId, ApiError> {
    let id = TraceId::from_hex(s)
        .map_err(|e| ApiError::BadRequest(format!("trace_id: {e} in {s:?}")))?;
    if id == TraceId::default() {
        return Err(ApiError::BadRequest(
            "trace_id: the all-zero trace id is invalid".into(),
        ));
    }
    Ok(id)
}

/// `include=logs` (absent or empty: no logs).
fn include_logs(p: &HashMap<String, String>) -> Result<bool, ApiError> {
    match p.get("include").map(|s| s.trim()) {
        None | Some("") => Ok(false),
        Some("logs") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "include: expected \"logs\", got {other:?}"
        ))),
    }
}

/// `start`/`end` as the logs API reads them (`end` inclusive), as the half-open ns range
/// the trace functions take.
fn span_range(p: &HashMap<String, String>) -> Result<(i64, i64), ApiError> {
    let (start, end) = params::time_range(p)?;
    Ok((start, end.saturating_add(1)))
}

fn non_empty<'a>(p: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    p.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// The search of `/api/v1/traces?...`.
///
/// # Errors
/// 400 naming the parameter: a bad time, duration, `attributes`, `status` or `limit`, or
/// `max_duration` below `min_duration`.
pub fn trace_query(p: &HashMap<String, String>) -> Result<TraceQuery, ApiError> {
    let (start_ns, end_ns) = span_range(p)?;
    let duration = |name| {
        non_empty(p, name)
            .map(|s| params::parse_duration(name, s))
            .transpose()
    };
    let min_duration_ns = duration("min_duration")?;
    let max_duration_ns = duration("max_duration")?;
    if let (Some(min), Some(max)) = (min_duration_ns, max_duration_ns) {
        if max < min {
            return Err(ApiError::BadRequest(
                "max_duration: shorter than min_duration".into(),
            ));
        }
    }
    let errors_only = match non_empty(p, "status") {
        None => false,
        Some(s) if s.eq_ignore_ascii_case("error") => true,
        Some(s) => {
            return Err(ApiError::BadRequest(format!(
                "status: only \"error\" filters by status, got {s:?}"
            )))
        }
    };
    let limit = match non_empty(p, "limit") {
        None => DEFAULT_TRACE_LIMIT,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_TRACE_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "limit: expected an integer from 1 to {MAX_TRACE_LIMIT}, got {s:?}"
                )))
            }
        },
    };
    Ok(TraceQuery {
        service: non_empty(p, "service").map(str::to_string),
        operation: non_empty(p, "operation").map(str::to_string),
        attributes: match non_empty(p, "attributes") {
            None => Vec::new(),
            Some(s) => parse_attributes(s)?,
        },
        min_duration_ns,
        max_duration_ns,
        errors_only,
        start_ns,
        end_ns,
        limit,
    })
}

/// `attributes=k=v,k2=v2`: pairs split at `,`, each at its first `=` (so a value may hold
/// `=` but not `,`); keys and values trimmed.
///
/// # Errors
/// 400 `attributes: ...` for a pair without `=` or with an empty key.
pub fn parse_attributes(s: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(ApiError::BadRequest(format!(
                "attributes: expected key=value, got {pair:?}"
            )));
        };
        let k = k.trim();
        if k.is_empty() {
            return Err(ApiError::BadRequest(format!(
                "attributes: empty key in {pair:?}"
            )));
        }
        out.push((k.to_string(), v.trim().to_string()));
    }
    Ok(out)
}

// ---- logs of a trace -----------------------------------------------------------------------

/// Earliest start and latest end of `spans` (non-empty).
fn time_span(spans: &[Span]) -> (i64, i64) {
    let first = spans.iter().map(|s| s.start).min().unwrap_or(0);
    let last = spans.iter().map(|s| s.end.max(s.start)).max().unwrap_or(0);
    (first, last)
}

/// The log records of `tenant` carrying trace id `id` with a timestamp within
/// `[first - 1h, last + 1h]`, oldest first, at most [`MAX_TRACE_LOGS`], rendered as the log
/// query API renders them.
///
/// # Errors
/// Storage errors of the scan.
pub fn trace_logs(
    store: &dyn LogStore,
    tenant: &Tenant,
    id: TraceId,
    first: i64,
    last: i64,
) -> sightline_storage::Result<Vec<JsonValue>> {
    let querier = store.querier(
        tenant,
        first.saturating_sub(LOGS_MARGIN_NS),
        last.saturating_add(LOGS_MARGIN_NS).saturating_add(1),
    );
    let req = ScanRequest {
        trace_ids: Some(vec![id]),
        ..ScanRequest::default()
    };
    let mut records = Vec::new();
    querier.scan(&req, &mut |r| {
        // The trace-id filter is a hint for the storage; check it exactly.
        if r.trace_id == Some(id) {
            records.push(r.clone());
        }
        ControlFlow::Continue(())
    })?;
    records.sort_by_key(|r| r.timestamp);
    records.truncate(MAX_TRACE_LOGS);
    Ok(records.iter().map(sightline_query::record_json).collect())
}

// ---- rendering -----------------------------------------------------------------------------

fn attrs_json(a: &sightline_model::Attributes) -> JsonValue {
    // `Attributes` serialises as a map whose numbers stay numbers (NaN/Inf as strings), as
    // the log query API renders attributes.
    serde_json::to_value(a).expect("BUG: attributes always serialise")
}

/// One span as the native API shows it.
pub fn span_json(s: &Span) -> JsonValue {
    json!({
        "trace_id": s.trace_id.to_hex(),
        "span_id": s.span_id.to_hex(),
        "parent_span_id": s.parent_span_id.map(|p| p.to_hex()),
        "name": s.name,
        "kind": s.kind.as_str(),
        "service": s.service,
        "start": format_rfc3339_ns(s.start),
        "end": format_rfc3339_ns(s.end),
        "duration_ns": s.duration(),
        "status": {"code": s.status_code.as_str(), "message": s.status_message},
        "attributes": attrs_json(&s.attributes),
        "resource": attrs_json(&s.resource),
        "scope": {"name": s.scope_name, "version": s.scope_version},
        "events": s.events.iter().map(|e| json!({
            "time": format_rfc3339_ns(e.time),
            "name": e.name,
            "attributes": attrs_json(&e.attributes),
        })).collect::<Vec<_>>(),
        "links": s.links.iter().map(|l| json!({
            "trace_id": l.trace_id.map(|t| t.to_hex()),
            "span_id": l.span_id.map(|t| t.to_hex()),
            "trace_state": l.trace_state,
            "attributes": attrs_json(&l.attributes),
        })).collect::<Vec<_>>(),
        "trace_state": s.trace_state,
    })
}

/// `{"data": {"trace_id", "spans": [...], "logs": [...]}}`; spans sorted by start (then
/// span id), `logs` present only when asked for.
pub fn trace_json(id: TraceId, spans: &[Span], logs: Option<Vec<JsonValue>>) -> JsonValue {
    let mut sorted: Vec<&Span> = spans.iter().collect();
    sorted.sort_by_key(|s| (s.start, s.span_id));
    let mut data = serde_json::Map::new();
    data.insert("trace_id".into(), JsonValue::String(id.to_hex()));
    data.insert(
        "spans".into(),
        JsonValue::Array(sorted.into_iter().map(span_json).collect()),
    );
    if let Some(logs) = logs {
        data.insert("logs".into(), JsonValue::Array(logs));
    }
    json!({ "data": data })
}

/// One search row.
pub fn summary_json(t: &TraceSummary) -> JsonValue {
    let services: serde_json::Map<String, JsonValue> = t
        .services
        .iter()
        .map(|(s, n)| (s.clone(), JsonValue::from(*n)))
        .collect();
    json!({
        "trace_id": t.trace_id.to_hex(),
        "root_service": t.root_service,
        "root_operation": t.root_operation,
        "start": format_rfc3339_ns(t.start_ns),
        "duration_ns": t.duration_ns,
        "span_count": t.span_count,
        "error_count": t.error_count,
        "services": services,
    })
}

/// The search answer: rows (in the order given: most recent first) and scan statistics.
pub fn search_json(rows: &[TraceSummary], stats: &ScanStats, elapsed_secs: f64) -> JsonValue {
    json!({
        "data": rows.iter().map(summary_json).collect::<Vec<_>>(),
        "stats": {
            "scanned_rows": stats.scanned_rows,
            "scanned_bytes": stats.scanned_bytes,
            "elapsed_ms": (elapsed_secs * 1e6).round() / 1e3,
        }
    })
}

/// `{"data": [{"name", "span_kind"}]}`.
pub fn operations_json(ops: &[Operation]) -> JsonValue {
    json!({
        "data": ops.iter().map(|o| json!({"name": o.name, "span_kind": o.span_kind.as_str()}))
            .collect::<Vec<_>>()
    })
}

/// `{"data": [{"parent", "child", "call_count", "error_count"}]}`.
pub fn dependencies_json(deps: &[Dependency]) -> JsonValue {
    json!({
        "data": deps.iter().map(|d| json!({
            "parent": d.parent,
            "child": d.child,
            "call_count": d.call_count,
            "error_count": d.error_count,
        })).collect::<Vec<_>>()
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use sightline_model::{
        Attributes, LogRecord, SpanEvent, SpanId, SpanKind, SpanLink, StatusCode as SpanStatus,
        Value,
    };
    use sightline_storage::{EventStore, FsyncPolicy, StoreConfig};

    use super::*;

    const T0: i64 = 1_700_000_000_000_000_000;

    fn tid(n: u8) -> TraceId {
        TraceId([n; 16])
    }

    fn sid(n: u8) -> SpanId {
        SpanId([n; 8])
    }

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn bad_request(e: ApiError) -> String {
        assert!(matches!(e, ApiError::BadRequest(_)), "{e:?}");
        e.to_string()
    }

    #[test]
    fn trace_ids_are_32_hex_and_not_zero() {
        let id = parse_trace_id("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        assert_eq!(id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        for bad in [
            "",
            "4bf92f3577b34da6",
            "4bf92f3577b34da6a3ce929d0e0e47360",
            "zzf92f3577b34da6a3ce929d0e0e4736",
            "00000000000000000000000000000000",
        ] {
            let e = bad_request(parse_trace_id(bad).unwrap_err());
            assert!(e.starts_with("trace_id: "), "{bad:?}: {e}");
        }
    }

    #[test]
    fn search_parameters_with_defaults() {
        let q = trace_query(&params(&[("end", "1700003600")])).unwrap();
        assert_eq!(q.limit, DEFAULT_TRACE_LIMIT);
        assert_eq!(q.end_ns, 1_700_003_600_000_000_001, "end is inclusive");
        assert_eq!(
            q.start_ns, 1_700_000_000_000_000_000,
            "start defaults to end - 1h"
        );
        assert_eq!(q.service, None);
        assert!(!q.errors_only && q.attributes.is_empty());
        assert_eq!((q.min_duration_ns, q.max_duration_ns), (None, None));
    }

    #[test]
    fn search_parameters_all_given() {
        let q = trace_query(&params(&[
            ("service", "checkout"),
            ("operation", "GET /cart"),
            ("attributes", "http.method=GET, http.route=/a=b"),
            ("min_duration", "1.5ms"),
            ("max_duration", "2s"),
            ("status", "error"),
            ("start", "2023-11-14T22:13:20Z"),
            ("end", "1700000060"),
            ("limit", "1000"),
        ]))
        .unwrap();
        assert_eq!(
            q,
            TraceQuery {
                service: Some("checkout".into()),
                operation: Some("GET /cart".into()),
                attributes: vec![
                    ("http.method".into(), "GET".into()),
                    ("http.route".into(), "/a=b".into())
                ],
                min_duration_ns: Some(1_500_000),
                max_duration_ns: Some(2_000_000_000),
                errors_only: true,
                start_ns: T0,
                end_ns: T0 + 60_000_000_001,
                limit: 1000,
            }
        );
    }

    #[test]
    fn bad_search_parameters_name_the_parameter() {
        for (pairs, name) in [
            (vec![("limit", "0")], "limit: "),
            (vec![("limit", "1001")], "limit: "),
            (vec![("limit", "ten")], "limit: "),
            (vec![("min_duration", "100")], "min_duration: "),
            (vec![("max_duration", "1d")], "max_duration: "),
            (
                vec![("min_duration", "2s"), ("max_duration", "1s")],
                "max_duration: ",
            ),
            (vec![("status", "ok")], "status: "),
            (vec![("attributes", "novalue")], "attributes: "),
            (vec![("attributes", "=v")], "attributes: "),
            (vec![("start", "yesterday")], "parameter start"),
        ] {
            let e = bad_request(trace_query(&params(&pairs)).unwrap_err());
            assert!(e.starts_with(name), "{pairs:?}: {e}");
        }
    }

    #[test]
    fn include_accepts_logs_only() {
        assert!(!include_logs(&params(&[])).unwrap());
        assert!(include_logs(&params(&[("include", "logs")])).unwrap());
        let e = bad_request(include_logs(&params(&[("include", "spans")])).unwrap_err());
        assert!(e.starts_with("include: "), "{e}");
    }

    fn sample_span() -> Span {
        Span {
            trace_id: tid(0xab),
            span_id: sid(2),
            parent_span_id: Some(sid(1)),
            trace_state: "k=v".into(),
            name: "SELECT".into(),
            kind: SpanKind::Client,
            start: T0 + 1_500,
            end: T0 + 2_001_500,
            status_code: SpanStatus::Error,
            status_message: "timeout".into(),
            service: "db".into(),
            resource: Attributes::from_pairs([("host.name".to_string(), Value::Str("h1".into()))]),
            scope_name: "sqlx".into(),
            scope_version: "0.8".into(),
            attributes: Attributes::from_pairs([
                ("db.rows".to_string(), Value::Int(3)),
                ("ratio".to_string(), Value::Float(0.5)),
                ("cached".to_string(), Value::Bool(false)),
            ]),
            events: vec![SpanEvent {
                time: T0 + 1_000_000,
                name: "exception".into(),
                attributes: Attributes::from_pairs([(
                    "exception.type".to_string(),
                    Value::Str("Timeout".into()),
                )]),
            }],
            links: vec![
                SpanLink {
                    trace_id: Some(tid(0xcd)),
                    span_id: Some(sid(9)),
                    trace_state: String::new(),
                    attributes: Attributes::new(),
                },
                SpanLink::default(),
            ],
        }
    }

    #[test]
    fn span_renders_every_field() {
        let got = span_json(&sample_span());
        let want = json!({
            "trace_id": "abababababababababababababababab",
            "span_id": "0202020202020202",
            "parent_span_id": "0101010101010101",
            "name": "SELECT",
            "kind": "client",
            "service": "db",
            "start": "2023-11-14T22:13:20.000001500Z",
            "end": "2023-11-14T22:13:20.002001500Z",
            "duration_ns": 2_000_000,
            "status": {"code": "error", "message": "timeout"},
            "attributes": {"cached": false, "db.rows": 3, "ratio": 0.5},
            "resource": {"host.name": "h1"},
            "scope": {"name": "sqlx", "version": "0.8"},
            "events": [{"time": "2023-11-14T22:13:20.001000000Z", "name": "exception",
                        "attributes": {"exception.type": "Timeout"}}],
            "links": [
                {"trace_id": "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd", "span_id": "0909090909090909",
                 "trace_state": "", "attributes": {}},
                {"trace_id": null, "span_id": null, "trace_state": "", "attributes": {}},
            ],
            "trace_state": "k=v",
        });
        assert_eq!(got, want);
    }

    #[test]
    fn trace_sorts_spans_and_shows_logs_only_when_asked() {
        let late = sample_span();
        let early = Span {
            span_id: sid(1),
            parent_span_id: None,
            start: T0,
            end: T0 + 5_000_000,
            ..sample_span()
        };
        let t = trace_json(tid(0xab), &[late, early], None);
        let spans = t["data"]["spans"].as_array().unwrap();
        assert_eq!(spans[0]["span_id"], "0101010101010101");
        assert_eq!(spans[0]["parent_span_id"], JsonValue::Null);
        assert_eq!(spans[1]["span_id"], "0202020202020202");
        assert_eq!(t["data"]["trace_id"], "abababababababababababababababab");
        assert!(t["data"].get("logs").is_none());
        let t = trace_json(
            tid(0xab),
            &[sample_span()],
            Some(vec![json!({"message": "m"})]),
        );
        assert_eq!(t["data"]["logs"], json!([{"message": "m"}]));
    }

    #[test]
    fn lists_render_in_the_contract_shapes() {
        let row = TraceSummary {
            trace_id: tid(1),
            root_service: "web".into(),
            root_operation: "GET /".into(),
            start_ns: T0,
            duration_ns: 42,
            span_count: 3,
            error_count: 1,
            services: vec![("db".into(), 1), ("web".into(), 2)],
        };
        let stats = ScanStats {
            scanned_rows: 7,
            scanned_bytes: 900,
            ..ScanStats::default()
        };
        assert_eq!(
            search_json(&[row], &stats, 0.0012345),
            json!({
                "data": [{"trace_id": "01010101010101010101010101010101", "root_service": "web",
                          "root_operation": "GET /", "start": "2023-11-14T22:13:20.000000000Z",
                          "duration_ns": 42, "span_count": 3, "error_count": 1,
                          "services": {"db": 1, "web": 2}}],
                "stats": {"scanned_rows": 7, "scanned_bytes": 900, "elapsed_ms": 1.235},
            })
        );
        let ops = [Operation {
            name: "GET /".into(),
            span_kind: SpanKind::Server,
        }];
        assert_eq!(
            operations_json(&ops),
            json!({"data": [{"name": "GET /", "span_kind": "server"}]})
        );
        let deps = [Dependency {
            parent: "web".into(),
            child: "db".into(),
            call_count: 5,
            error_count: 2,
        }];
        assert_eq!(
            dependencies_json(&deps),
            json!({"data": [{"parent": "web", "child": "db", "call_count": 5, "error_count": 2}]})
        );
    }

    fn log(tenant_trace: Option<TraceId>, ts: i64, body: &str) -> LogRecord {
        LogRecord {
            timestamp: ts,
            observed_timestamp: ts,
            severity_number: 9,
            body: body.into(),
            service: "web".into(),
            trace_id: tenant_trace,
            ..LogRecord::default()
        }
    }

    #[test]
    fn logs_of_a_trace_are_its_tenants_within_an_hour_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = StoreConfig::new(dir.path());
        cfg.fsync = FsyncPolicy::Never;
        let (store, _) = EventStore::open(cfg).unwrap();
        let tenant = Tenant::default_tenant();
        let other = Tenant::new("other").unwrap();
        let hour = LOGS_MARGIN_NS;
        let mut a = store.appender(&tenant);
        a.append(log(Some(tid(1)), T0 + 10, "second"));
        a.append(log(Some(tid(1)), T0 - hour, "first, an hour before"));
        a.append(log(Some(tid(1)), T0 - hour - 1, "too early"));
        a.append(log(Some(tid(1)), T0 + 1000 + hour + 1, "too late"));
        a.append(log(Some(tid(2)), T0 + 20, "other trace"));
        a.append(log(None, T0 + 30, "no trace"));
        a.commit().unwrap();
        let mut b = store.appender(&other);
        b.append(log(Some(tid(1)), T0 + 40, "other tenant"));
        b.commit().unwrap();

        let logs = trace_logs(store.as_ref(), &tenant, tid(1), T0, T0 + 1000).unwrap();
        let bodies: Vec<&str> = logs
            .iter()
            .map(|l| l["message"].as_str().unwrap())
            .collect();
        assert_eq!(bodies, ["first, an hour before", "second"]);
        assert_eq!(logs[1]["trace_id"], tid(1).to_hex());
        assert_eq!(
            logs[1],
            sightline_query::record_json(&log(Some(tid(1)), T0 + 10, "second"))
        );
    }

    /// A server state on `dir` with a span store holding `spans` (tenant `default`) and no
    /// log store, for router tests of the trace APIs.
    pub(crate) fn state_with_spans(dir: &std::path::Path, spans: Vec<Span>) -> Arc<AppState> {
        let cfg_path = dir.join("sightline.toml");
        std::fs::write(&cfg_path, "").unwrap();
        let config =
            crate::config::load(Some(&cfg_path), [], &crate::config::Overrides::default()).unwrap();
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let state = Arc::new(AppState::new(config, rx));
        let mut cfg = StoreConfig::new(dir.join("traces"));
        cfg.table = "spans";
        cfg.fsync = FsyncPolicy::Never;
        let (store, _) =
            sightline_storage::SpanStore::open(cfg, sightline_storage::SamplingConfig::default())
                .unwrap();
        store.append(&Tenant::default_tenant(), spans).unwrap();
        state.set_span_store(store);
        state
    }

    /// Status and JSON body of `GET uri` on `router`.
    pub(crate) async fn get_json(router: Router, uri: &str) -> (StatusCode, JsonValue) {
        use tower::ServiceExt;
        let req = axum::http::Request::get(uri)
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn routes_answer_in_the_contract_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let now = sightline_model::time::now_ns();
        let span = Span {
            start: now - 60 * NANOS_PER_SEC,
            end: now - 59 * NANOS_PER_SEC,
            parent_span_id: None,
            ..sample_span()
        };
        let state = state_with_spans(dir.path(), vec![span]);
        let router = || routes().with_state(state.clone());
        let id = tid(0xab).to_hex();

        let (status, body) = get_json(router(), &format!("/api/v1/traces/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"]["spans"][0]["name"], "SELECT");
        assert!(body["data"].get("logs").is_none());

        let (status, body) =
            get_json(router(), &format!("/api/v1/traces/{}", tid(7).to_hex())).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body,
            json!({"error": format!("trace {} not found", tid(7).to_hex())})
        );

        let (status, body) = get_json(router(), "/api/v1/traces/nothex").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["error"].as_str().unwrap().starts_with("trace_id: "),
            "{body}"
        );

        // The log store is not installed: include=logs answers 503 as while replaying.
        let (status, _) = get_json(router(), &format!("/api/v1/traces/{id}?include=logs")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let mut cfg = StoreConfig::new(dir.path().join("logs"));
        cfg.fsync = FsyncPolicy::Never;
        let (logs, _) = EventStore::open(cfg).unwrap();
        let mut a = logs.appender(&Tenant::default_tenant());
        a.append(log(Some(tid(0xab)), now - 30 * NANOS_PER_SEC, "charged"));
        a.commit().unwrap();
        state.set_store(logs);
        let (status, body) = get_json(router(), &format!("/api/v1/traces/{id}?include=logs")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"]["logs"][0]["message"], "charged");
        assert_eq!(body["data"]["logs"][0]["trace_id"], id);

        let (status, body) = get_json(router(), "/api/v1/traces?service=db&status=error").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"][0]["trace_id"], id);
        assert_eq!(body["data"][0]["services"], json!({"db": 1}));
        assert!(body["stats"]["scanned_rows"].is_u64());

        let (status, body) = get_json(router(), "/api/v1/traces?min_duration=5").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("min_duration: "),
            "{body}"
        );

        let (_, body) = get_json(router(), "/api/v1/services").await;
        assert_eq!(body, json!({"data": ["db"]}));
        let (_, body) = get_json(router(), "/api/v1/services/db/operations").await;
        assert_eq!(
            body,
            json!({"data": [{"name": "SELECT", "span_kind": "client"}]})
        );
        let (status, body) = get_json(router(), "/api/v1/dependencies").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"data": []}));
    }
}
