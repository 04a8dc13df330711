//! Metric ingest over Prometheus' protocols: remote write 1.0 (`POST /api/v1/write`,
//! snappy-compressed protobuf) and text imports (`POST /api/v1/import/prometheus`, the text
//! format with millisecond timestamps as VictoriaMetrics accepts it;
//! `POST /api/v1/import/openmetrics`, OpenMetrics with second timestamps and `# EOF`).
//! Each body is decoded whole, then committed as one batch or refused with a 4xx naming the
//! series or line.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::Json;
use serde_json::json;
use sightline_wire::exposition::{parse_prometheus_text, MetricBatch};
use sightline_wire::openmetrics::parse_openmetrics;
use sightline_wire::remote_write::decode_write_request;

use crate::body::{read_body, tenant};
use crate::error::ApiError;
use crate::pipeline::{ingest_samples, rejected_metrics};
use crate::state::AppState;

/// `POST /api/v1/write`: answers 204 like Prometheus' receiver; 400 for a body that does
/// not decode (a sender drops it rather than retrying), 5xx when storage fails (it retries).
pub async fn remote_write(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let r = async {
        let tenant = tenant(&headers)?;
        // The body is snappy's raw block format, whatever Content-Encoding says (Prometheus
        // sends `snappy`); the size limit applies to both the compressed and the
        // decompressed bytes.
        let mut h = headers.clone();
        let encoding = h
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if encoding == "snappy" {
            h.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static("identity"),
            );
        }
        let limit = state.config.max_body_size;
        let raw = read_body(&h, body, limit).await?;
        let bytes = raw.len();
        let batch = decode_write_request(&raw, limit)
            .map_err(|e| ApiError::BadRequest(format!("invalid remote write request: {e}")))?;
        ingest_samples(&state, tenant, batch, "remote_write", bytes).await
    }
    .await;
    match r {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(e) => Err(rejected_metrics(&state, "remote_write", e)),
    }
}

/// `POST /api/v1/import/prometheus`
pub async fn import_prometheus(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    import(state, headers, body, "prometheus_text", |b, now| {
        parse_prometheus_text(b, now).map_err(|e| e.to_string())
    })
    .await
}

/// `POST /api/v1/import/openmetrics`
pub async fn import_openmetrics(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    import(state, headers, body, "openmetrics", |b, now| {
        parse_openmetrics(b, now).map_err(|e| e.to_string())
    })
    .await
}

async fn import(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: Body,
    protocol: &'static str,
    parse: impl FnOnce(&Bytes, i64) -> Result<MetricBatch, String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let r = async {
        let tenant = tenant(&headers)?;
        let raw = read_body(&headers, body, state.config.max_body_size).await?;
        // Samples without a timestamp get the arrival time, as a scrape would.
        let now_ms = sightline_model::time::now_ns().div_euclid(1_000_000);
        let batch = parse(&raw, now_ms).map_err(ApiError::BadRequest)?;
        let series = batch.series.len();
        let n = ingest_samples(&state, tenant, batch, protocol, raw.len()).await?;
        Ok(Json(json!({"accepted": n, "series": series})))
    }
    .await;
    r.map_err(|e| rejected_metrics(&state, protocol, e))
}
