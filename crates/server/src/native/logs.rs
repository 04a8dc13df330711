//! `/api/v1/logs/*`: NDJSON and raw-line ingest, search and aggregation, live tail, fields.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures::{Stream, StreamExt};
use serde_json::json;
use sightline_model::time::now_ns;
use sightline_storage::LogStore;
use sightline_wire::lines::{parse_lines, LineFormat};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

use crate::body::{content_type, read_body, tenant};
use crate::error::ApiError;
use crate::native::params;
use crate::pipeline::{ingest_logs, rejected};
use crate::state::AppState;

/// Media types the ingest endpoint reads as text; anything else (protobuf, say) is a 415 so
/// a misconfigured sender learns it at once. `application/x-www-form-urlencoded` is what
/// `curl --data-binary` sends unless told otherwise, so it is read as text too.
fn is_text_type(ct: &str) -> bool {
    ct.is_empty()
        || ct.starts_with("text/")
        || matches!(
            ct,
            "application/json"
                | "application/x-ndjson"
                | "application/ndjson"
                | "application/jsonl"
                | "application/x-jsonlines"
                | "application/stream+json"
                | "application/octet-stream"
                | "application/x-www-form-urlencoded"
        )
}

/// `POST /api/v1/logs/ingest[?format=json|logfmt|nginx|apache|syslog|regex&service=&pattern=]`.
/// Without `format` the body is NDJSON. Answers `{"accepted": N}`.
pub async fn ingest(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let protocol = if q.contains_key("format") {
        "lines"
    } else {
        "ndjson"
    };
    let result = async {
        let tenant = tenant(&headers)?;
        let ct = content_type(&headers);
        if !is_text_type(&ct) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "unsupported Content-Type {ct:?} (expected application/x-ndjson, application/json or text/plain)"
            )));
        }
        let body = read_body(&headers, body, state.config.max_body_size).await?;
        let now = now_ns();
        let records = match q.get("format") {
            None => sightline_wire::ndjson::decode_ndjson(&body, now),
            Some(f) => LineFormat::from_name(f, q.get("pattern").map(String::as_str))
                .and_then(|fmt| parse_lines(&body, &fmt, q.get("service").map(String::as_str), now)),
        }
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let mut records = records;
        if !q.contains_key("format") {
            if let Some(s) = q.get("service") {
                for r in records.iter_mut().filter(|r| r.service.is_empty()) {
                    r.service = s.clone();
                }
            }
        }
        if records.is_empty() {
            return Err(ApiError::BadRequest("no records in request body (only blank lines)".into()));
        }
        ingest_logs(&state, tenant, records, protocol, body.len()).await
    }
    .await;
    match result {
        Ok(n) => Ok(Json(json!({ "accepted": n }))),
        Err(e) => Err(rejected(&state, protocol, e)),
    }
}

/// `GET|POST /api/v1/logs/query?q=&start=&end=&limit=`.
pub async fn query(
    State(state): State<Arc<AppState>>,
    Query(url): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let started = Instant::now();
    let result = run_query(&state, url, &headers, &body).await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    state.metrics.inc(
        "sightline_queries_total",
        &[("kind", "logs"), ("outcome", outcome)],
        1,
    );
    state
        .metrics
        .observe_query("logs", started.elapsed().as_secs_f64());
    let (rows, stats) = result?;
    Ok(Json(json!({
        "data": rows,
        "stats": {
            "scanned_rows": stats.scanned_rows,
            "scanned_bytes": stats.scanned_bytes,
            "elapsed_ms": (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        }
    })))
}

async fn run_query(
    state: &Arc<AppState>,
    url: HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Vec<serde_json::Value>, sightline_storage::ScanStats), ApiError> {
    let tenant = tenant(headers)?;
    let p = params::merge(url, headers, body)?;
    let text = p.get("q").map(String::as_str).unwrap_or("*");
    let query = sightline_query::parse(text).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let (start, end) = params::time_range(&p)?;
    let limit = params::limit(&p, state.config.default_limit, state.config.max_limit)?;
    let store = state.store()?;
    let out = tokio::task::spawn_blocking(move || {
        // The querier's range is half-open; `end` as the user gives it is inclusive.
        let querier = store.querier(&tenant, start, end.saturating_add(1));
        sightline_query::execute(&query, querier.as_ref(), limit)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("query task failed: {e}")))?
    .map_err(query_error)?;
    Ok((out.rows, out.stats))
}

fn query_error(e: sightline_query::Error) -> ApiError {
    match e {
        sightline_query::Error::Parse(p) => ApiError::BadRequest(p.to_string()),
        sightline_query::Error::Storage(s) => ApiError::storage(s),
    }
}

/// `GET /api/v1/logs/tail?q=`: every record committed from now on that matches, as
/// server-sent events (`data: <record JSON>`); a subscriber that falls behind gets an
/// `event: lagged` with the number of batches it missed.
pub async fn tail(
    State(state): State<Arc<AppState>>,
    Query(p): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let tenant = tenant(&headers)?;
    let text = p.get("q").map(String::as_str).unwrap_or("*");
    let query = sightline_query::parse(text).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if query.has_pipes() {
        return Err(ApiError::BadRequest(
            "live tail takes a filter only, not pipes".into(),
        ));
    }
    state.store()?;
    let mut shutdown = state.shutdown.clone();
    let stream = BroadcastStream::new(state.tail.subscribe())
        .flat_map(move |item| {
            let events: Vec<Result<Event, Infallible>> = match item {
                Ok(batch) if batch.tenant == tenant => batch
                    .records
                    .iter()
                    .filter(|r| query.matches(r))
                    .map(|r| Ok(Event::default().data(sightline_query::record_json(r).to_string())))
                    .collect(),
                Ok(_) => Vec::new(),
                Err(BroadcastStreamRecvError::Lagged(n)) => {
                    vec![Ok(Event::default().event("lagged").data(n.to_string()))]
                }
            };
            futures::stream::iter(events)
        })
        .take_until(async move {
            // Ends the stream when the server shuts down, so graceful shutdown does not wait
            // for tail clients forever.
            let _ = shutdown.wait_for(|s| *s).await;
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// `GET /api/v1/logs/fields?start=&end=`: `{"data": [{"name": "level", "count": 12}, ...]}`.
pub async fn fields(
    State(state): State<Arc<AppState>>,
    Query(p): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let tenant = tenant(&headers)?;
    let (start, end) = params::time_range(&p)?;
    let store = state.store()?;
    let counts = tokio::task::spawn_blocking(move || {
        let querier = store.querier(&tenant, start, end.saturating_add(1));
        sightline_query::field_counts(querier.as_ref())
    })
    .await
    .map_err(|e| ApiError::Internal(format!("fields task failed: {e}")))?
    .map_err(query_error)?;
    let data: Vec<_> = counts
        .into_iter()
        .map(|(name, count)| json!({"name": name, "count": count}))
        .collect();
    Ok(Json(json!({ "data": data })))
}
