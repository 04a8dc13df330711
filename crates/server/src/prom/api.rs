//! Prometheus' HTTP query API (`/api/v1/query`, `/api/v1/query_range`, `/api/v1/series`,
//! `/api/v1/labels`, `/api/v1/label/<name>/values`, `/api/v1/metadata`,
//! `/api/v1/status/buildinfo`), GET or form POST, with Prometheus' JSON and error shapes
//! (`{"status":"error","errorType":"bad_data","error":"..."}`) so Grafana and other
//! Prometheus clients work unchanged.
//!
//! Results are written by hand rather than through `serde_json::Value`: Prometheus prints
//! timestamps as seconds with exactly the millisecond digits (`1700000000.5` is
//! `1700000000.500`, whole seconds have no fraction) and sample values as strings in Go's
//! shortest `'f'` formatting (`NaN`, `+Inf`, `-Inf`); clients compare these strings.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sightline_model::{Labels, MetricMetadata, TimeSeries};
use sightline_query::promql::{Engine, InstantSample, PromqlError, Value};
use sightline_storage::{LabelMatcher, MetricStore};

use super::params::{parse_duration_ms, Params, MAX_TIME_MS, MIN_TIME_MS};
use crate::body::tenant;
use crate::error::ApiError;
use crate::state::AppState;

/// Points per series a range query may return, as Prometheus limits it.
const MAX_POINTS: i64 = 11_000;

/// An error in Prometheus' shape: `errorType` decides the HTTP status as in Prometheus'
/// `web/api/v1` (`bad_data` 400, `execution` 422, `internal` 500, `unavailable` 503).
#[derive(Debug)]
pub struct PromError {
    pub error_type: &'static str,
    pub message: String,
}

impl PromError {
    pub fn bad_data(message: impl Into<String>) -> Self {
        PromError {
            error_type: "bad_data",
            message: message.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self.error_type {
            "bad_data" => StatusCode::BAD_REQUEST,
            "execution" => StatusCode::UNPROCESSABLE_ENTITY,
            "unavailable" | "timeout" | "canceled" => StatusCode::SERVICE_UNAVAILABLE,
            "not_found" => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ApiError> for PromError {
    fn from(e: ApiError) -> Self {
        let error_type = match e {
            ApiError::BadRequest(_) | ApiError::TooLarge(_) | ApiError::UnsupportedMediaType(_) => {
                "bad_data"
            }
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        };
        PromError {
            error_type,
            message: e.to_string(),
        }
    }
}

impl From<PromqlError> for PromError {
    fn from(e: PromqlError) -> Self {
        PromError {
            error_type: e.error_type(),
            message: e.to_string(),
        }
    }
}

impl From<super::params::ParamError> for PromError {
    fn from(e: super::params::ParamError) -> Self {
        PromError::bad_data(e.0)
    }
}

impl IntoResponse for PromError {
    fn into_response(self) -> Response {
        let body = format!(
            "{{\"status\":\"error\",\"errorType\":{},\"error\":{}}}",
            json_str(self.error_type),
            json_str(&self.message)
        );
        json_response(self.status(), body)
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn success(data: &str) -> Response {
    json_response(
        StatusCode::OK,
        format!("{{\"status\":\"success\",\"data\":{data}}}"),
    )
}

type Reply = Result<Response, PromError>;

/// The store and tenant of a request, and its parameters.
fn prepare(
    state: &AppState,
    headers: &HeaderMap,
    raw: Option<&str>,
    body: &Bytes,
) -> Result<(Arc<dyn MetricStore>, sightline_model::Tenant, Params), PromError> {
    let tenant = tenant(headers)?;
    let params = Params::parse(raw, headers, body)?;
    let store: Arc<dyn MetricStore> = state.metric_store()?;
    Ok((store, tenant, params))
}

/// Runs blocking query work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PromError> + Send + 'static,
) -> Result<T, PromError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PromError {
            error_type: "internal",
            message: format!("query task failed: {e}"),
        })?
}

fn storage_error(e: sightline_storage::Error) -> PromError {
    ApiError::storage(e).into()
}

/// `GET|POST /api/v1/query?query=&time=`
pub async fn query(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let started = Instant::now();
    let r = run_query(&state, raw, &headers, &body).await;
    observe(&state, "promql", started, r.is_ok());
    r
}

async fn run_query(
    state: &AppState,
    raw: Option<String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Reply {
    let (store, tenant, p) = prepare(state, headers, raw.as_deref(), body)?;
    let q = p
        .get("query")
        .ok_or_else(|| PromError::bad_data("invalid parameter \"query\": query must not be empty"))?
        .to_string();
    let now = sightline_model::time::now_ns().div_euclid(1_000_000);
    let t = p.time_ms("time", now)?;
    let engine = engine(state);
    let value = blocking(move || {
        let querier = store.querier(&tenant);
        Ok(engine.instant_query(querier.as_ref(), &q, t)?)
    })
    .await?;
    Ok(success(&render_value(&value)))
}

/// `GET|POST /api/v1/query_range?query=&start=&end=&step=`
pub async fn query_range(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let started = Instant::now();
    let r = run_query_range(&state, raw, &headers, &body).await;
    observe(&state, "promql", started, r.is_ok());
    r
}

async fn run_query_range(
    state: &AppState,
    raw: Option<String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Reply {
    let (store, tenant, p) = prepare(state, headers, raw.as_deref(), body)?;
    let required = |name: &str| {
        p.get(name).ok_or_else(|| {
            PromError::bad_data(format!(
                "invalid parameter {name:?}: cannot parse \"\" to a valid timestamp"
            ))
        })
    };
    let start = super::params::parse_time_ms(required("start")?)
        .map_err(|e| PromError::bad_data(format!("invalid parameter \"start\": {e}")))?;
    let end = super::params::parse_time_ms(required("end")?)
        .map_err(|e| PromError::bad_data(format!("invalid parameter \"end\": {e}")))?;
    if end < start {
        return Err(PromError::bad_data(
            "end timestamp must not be before start time",
        ));
    }
    let step = parse_duration_ms(p.get("step").unwrap_or(""))
        .map_err(|e| PromError::bad_data(format!("invalid parameter \"step\": {e}")))?;
    if step <= 0 {
        return Err(PromError::bad_data(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS {
        return Err(PromError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let q = p
        .get("query")
        .ok_or_else(|| PromError::bad_data("invalid parameter \"query\": query must not be empty"))?
        .to_string();
    let engine = engine(state);
    let value = blocking(move || {
        let querier = store.querier(&tenant);
        Ok(engine.range_query(querier.as_ref(), &q, start, end, step)?)
    })
    .await?;
    Ok(success(&render_value(&value)))
}

/// `GET|POST /api/v1/series?match[]=&start=&end=`
pub async fn series(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let (store, tenant, p) = prepare(&state, &headers, raw.as_deref(), &body)?;
    let selectors = p.all("match[]");
    if selectors.is_empty() {
        return Err(PromError::bad_data("no match[] parameter provided"));
    }
    let sets = parse_selectors(&selectors)?;
    let (start, end) = (
        p.time_ms("start", MIN_TIME_MS)?,
        p.time_ms("end", MAX_TIME_MS)?,
    );
    let found = blocking(move || {
        let querier = store.querier(&tenant);
        union(&sets, |m| {
            let series = querier.select(m, start, end).map_err(storage_error)?;
            Ok(series.into_iter().map(|s| s.labels).collect())
        })
    })
    .await?;
    let mut out = String::from("[");
    for (i, l) in found.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_labels(&mut out, l);
    }
    out.push(']');
    Ok(success(&out))
}

/// `GET|POST /api/v1/labels?match[]=&start=&end=`
pub async fn labels(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let (store, tenant, p) = prepare(&state, &headers, raw.as_deref(), &body)?;
    let sets = parse_selectors(&p.all("match[]"))?;
    let (start, end) = (
        p.time_ms("start", MIN_TIME_MS)?,
        p.time_ms("end", MAX_TIME_MS)?,
    );
    let names = blocking(move || {
        let querier = store.querier(&tenant);
        union(&sets, |m| {
            querier.label_names(m, start, end).map_err(storage_error)
        })
    })
    .await?;
    Ok(success(&json_str_list(&names)))
}

/// `GET /api/v1/label/<name>/values?match[]=&start=&end=`
pub async fn label_values(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Reply {
    if !is_label_name(&name) {
        return Err(PromError::bad_data(format!("invalid label name: {name:?}")));
    }
    let (store, tenant, p) = prepare(&state, &headers, raw.as_deref(), &Bytes::new())?;
    let sets = parse_selectors(&p.all("match[]"))?;
    let (start, end) = (
        p.time_ms("start", MIN_TIME_MS)?,
        p.time_ms("end", MAX_TIME_MS)?,
    );
    let values = blocking(move || {
        let querier = store.querier(&tenant);
        union(&sets, |m| {
            querier
                .label_values(&name, m, start, end)
                .map_err(storage_error)
        })
    })
    .await?;
    Ok(success(&json_str_list(&values)))
}

/// `GET /api/v1/metadata?metric=&limit=`: `{"<family>": [{"type","help","unit"}]}`.
pub async fn metadata(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Reply {
    let (store, tenant, p) = prepare(&state, &headers, raw.as_deref(), &Bytes::new())?;
    let limit = match p.get("limit") {
        None => None,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n as usize),
            Ok(_) => None,
            Err(_) => return Err(PromError::bad_data("limit must be a number")),
        },
    };
    let metric = p.get("metric").map(str::to_string);
    let mut md: Vec<MetricMetadata> = blocking(move || {
        store
            .querier(&tenant)
            .metadata(metric.as_deref())
            .map_err(storage_error)
    })
    .await?;
    md.sort_by(|a, b| a.metric_family_name.cmp(&b.metric_family_name));
    let mut out = String::from("{");
    let mut families = 0;
    let mut i = 0;
    while i < md.len() {
        if limit.is_some_and(|l| families >= l) {
            break;
        }
        let name = md[i].metric_family_name.clone();
        if families > 0 {
            out.push(',');
        }
        families += 1;
        let _ = write!(out, "{}:[", json_str(&name));
        let mut first = true;
        while i < md.len() && md[i].metric_family_name == name {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(
                out,
                "{{\"type\":{},\"help\":{},\"unit\":{}}}",
                json_str(md[i].metric_type.as_str()),
                json_str(&md[i].help),
                json_str(&md[i].unit)
            );
            i += 1;
        }
        out.push(']');
    }
    out.push('}');
    Ok(success(&out))
}

/// `GET /api/v1/status/buildinfo`
pub async fn buildinfo() -> Response {
    success(&format!(
        "{{\"version\":{},\"revision\":\"\",\"branch\":\"\",\"buildUser\":\"\",\"buildDate\":\"\",\"goVersion\":\"\",\"application\":\"sightline\"}}",
        json_str(env!("CARGO_PKG_VERSION"))
    ))
}

/// `f` over each matcher set (once without matchers when there are none), merged, sorted
/// and deduplicated: `match[]` selectors are alternatives.
fn union<T: Ord>(
    sets: &[Vec<LabelMatcher>],
    mut f: impl FnMut(&[LabelMatcher]) -> Result<Vec<T>, PromError>,
) -> Result<Vec<T>, PromError> {
    let mut all = if sets.is_empty() { f(&[])? } else { Vec::new() };
    for m in sets {
        all.extend(f(m)?);
    }
    all.sort();
    all.dedup();
    Ok(all)
}

fn engine(state: &AppState) -> Engine {
    Engine {
        lookback_delta_ms: state.config.promql_lookback_delta_ms,
        ..Engine::default()
    }
}

fn observe(state: &AppState, kind: &str, started: Instant, ok: bool) {
    let outcome = if ok { "ok" } else { "error" };
    state.metrics.inc(
        "sightline_queries_total",
        &[("kind", kind), ("outcome", outcome)],
        1,
    );
    state
        .metrics
        .observe_query(kind, started.elapsed().as_secs_f64());
}

/// `match[]` selectors as matcher sets: one set per selector, and per `or` alternative.
fn parse_selectors(selectors: &[&str]) -> Result<Vec<Vec<LabelMatcher>>, PromError> {
    let mut out = Vec::new();
    for s in selectors {
        let sets = sightline_query::promql::selector_matchers(s)
            .map_err(|e| PromError::bad_data(format!("invalid parameter \"match[]\": {e}")))?;
        out.extend(sets);
    }
    Ok(out)
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| panic!("BUG: a str always serialises"))
}

fn json_str_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| panic!("BUG: strings always serialise"))
}

/// Prometheus' `jsonutil.MarshalTimestamp`: whole seconds, then `.` and three digits when
/// the millisecond part is not zero.
pub fn format_timestamp(out: &mut String, t_ms: i64) {
    let (sign, t) = if t_ms < 0 {
        ("-", t_ms.unsigned_abs())
    } else {
        ("", t_ms as u64)
    };
    let _ = write!(out, "{sign}{}", t / 1000);
    if t % 1000 != 0 {
        let _ = write!(out, ".{:03}", t % 1000);
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)` with Prometheus' spellings of the specials.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's Display prints the shortest digits that round-trip, never in exponent
        // form: the same as Go's 'f' with precision -1.
        format!("{v}")
    }
}

fn write_labels(out: &mut String, l: &Labels) {
    out.push('{');
    for (i, (k, v)) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}:{}", json_str(k), json_str(v));
    }
    out.push('}');
}

fn write_point(out: &mut String, t_ms: i64, v: &str) {
    out.push('[');
    format_timestamp(out, t_ms);
    let _ = write!(out, ",{}]", json_str(v));
}

fn write_vector(out: &mut String, v: &[InstantSample]) {
    out.push('[');
    for (i, s) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"metric\":");
        write_labels(out, &s.labels);
        out.push_str(",\"value\":");
        write_point(out, s.t_ms, &format_value(s.v));
        out.push('}');
    }
    out.push(']');
}

fn write_matrix(out: &mut String, m: &[TimeSeries]) {
    out.push('[');
    for (i, s) in m.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"metric\":");
        write_labels(out, &s.labels);
        out.push_str(",\"values\":[");
        for (j, p) in s.samples.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            write_point(out, p.timestamp_ms, &format_value(p.value));
        }
        out.push_str("]}");
    }
    out.push(']');
}

/// `{"resultType": ..., "result": ...}` of a query result.
pub fn render_value(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Scalar { t_ms, v } => {
            out.push_str("{\"resultType\":\"scalar\",\"result\":");
            write_point(&mut out, *t_ms, &format_value(*v));
        }
        Value::String { t_ms, s } => {
            out.push_str("{\"resultType\":\"string\",\"result\":");
            write_point(&mut out, *t_ms, s);
        }
        Value::Vector(vec) => {
            out.push_str("{\"resultType\":\"vector\",\"result\":");
            write_vector(&mut out, vec);
        }
        Value::Matrix(m) => {
            out.push_str("{\"resultType\":\"matrix\",\"result\":");
            write_matrix(&mut out, m);
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::Sample;

    fn ts(t: i64) -> String {
        let mut s = String::new();
        format_timestamp(&mut s, t);
        s
    }

    #[test]
    fn timestamps_like_prometheus() {
        assert_eq!(ts(1_700_000_000_000), "1700000000");
        assert_eq!(ts(1_700_000_000_500), "1700000000.500");
        assert_eq!(ts(1_700_000_000_007), "1700000000.007");
        assert_eq!(ts(-1500), "-1.500");
    }

    #[test]
    fn values_like_go() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(-0.0), "-0");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(1e-7), "0.0000001");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn result_shapes() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a\"b")]).unwrap();
        let v = Value::Vector(vec![InstantSample {
            labels: l.clone(),
            t_ms: 1000,
            v: 1.0,
        }]);
        assert_eq!(
            render_value(&v),
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a\"b"},"value":[1,"1"]}]}"#
        );
        let m = Value::Matrix(vec![TimeSeries {
            labels: l,
            samples: vec![
                Sample {
                    timestamp_ms: 0,
                    value: f64::INFINITY,
                },
                Sample {
                    timestamp_ms: 15_000,
                    value: 2.5,
                },
            ],
        }]);
        assert_eq!(
            render_value(&m),
            r#"{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a\"b"},"values":[[0,"+Inf"],[15,"2.5"]]}]}"#
        );
        assert_eq!(
            render_value(&Value::Scalar { t_ms: 1, v: 2.0 }),
            r#"{"resultType":"scalar","result":[0.001,"2"]}"#
        );
    }
}
