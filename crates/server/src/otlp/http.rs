//! OTLP/HTTP `/v1/logs` and `/v1/metrics` per the OTLP specification: `application/x-protobuf` or
//! `application/json` request bodies, optional gzip; success is an empty
//! `ExportLogsServiceResponse` in the request's encoding; failure is a `google.rpc.Status`
//! in the request's encoding with HTTP 400 (413, 415, 503 as the case may be).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use prost::Message;
use sightline_model::time::now_ns;
use sightline_model::Tenant;
use sightline_wire::exposition::MetricBatch;

use crate::body::{content_type, read_body, tenant};
use crate::error::ApiError;
use crate::pipeline::{ingest_logs, ingest_samples, rejected, rejected_metrics};
use crate::state::AppState;

/// `google.rpc.Status`, the OTLP error body. Declared here because opentelemetry-proto does
/// not ship it; fields 1 and 2 are all OTLP clients read (details omitted).
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

/// gRPC status codes used in `RpcStatus.code` (google.rpc.Code).
const INVALID_ARGUMENT: i32 = 3;
const RESOURCE_EXHAUSTED: i32 = 8;
const UNAVAILABLE: i32 = 14;
const INTERNAL: i32 = 13;

fn error_response(enc: Encoding, e: &ApiError) -> Response {
    let code = match e {
        ApiError::TooLarge(_) => RESOURCE_EXHAUSTED,
        ApiError::Unavailable(_) => UNAVAILABLE,
        ApiError::Internal(_) => INTERNAL,
        _ => INVALID_ARGUMENT,
    };
    let status = RpcStatus {
        code,
        message: e.to_string(),
    };
    match enc {
        Encoding::Protobuf => (
            e.status(),
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            status.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => (
            e.status(),
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({"code": status.code, "message": status.message}).to_string(),
        )
            .into_response(),
    }
}

/// `POST /v1/logs`.
pub async fn logs(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let st = state.clone();
    export(
        &state,
        headers,
        body,
        "/v1/logs",
        rejected,
        move |tenant, body, enc, protocol| {
            Box::pin(async move {
                let now = now_ns();
                let records = match enc {
                    Encoding::Protobuf => {
                        sightline_wire::otlp_logs::decode_otlp_logs_protobuf(&body, now)
                    }
                    Encoding::Json => sightline_wire::otlp_logs::decode_otlp_logs_json(&body, now),
                }
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                if records.is_empty() {
                    return Ok(0);
                }
                ingest_logs(&st, tenant, records, protocol, body.len()).await
            })
        },
    )
    .await
}

/// `POST /v1/metrics`: points mapped to Prometheus series (see `sightline_wire::otlp_metrics`);
/// delta sums and histograms are accumulated per tenant and series into cumulative values.
pub async fn metrics(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let st = state.clone();
    export(
        &state,
        headers,
        body,
        "/v1/metrics",
        rejected_metrics,
        move |tenant, body, enc, protocol| {
            Box::pin(async move {
                let now = now_ns();
                let m = match enc {
                    Encoding::Protobuf => {
                        sightline_wire::otlp_metrics::decode_otlp_metrics_protobuf(&body, now)
                    }
                    Encoding::Json => {
                        sightline_wire::otlp_metrics::decode_otlp_metrics_json(&body, now)
                    }
                }
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                let mut series = m.series;
                if !m.deltas.is_empty() {
                    series.extend(st.accumulate_deltas(&tenant, m.deltas));
                }
                let batch = MetricBatch {
                    series,
                    metadata: m.metadata,
                };
                if batch.series.is_empty() {
                    return Ok(0);
                }
                ingest_samples(&st, tenant, batch, protocol, body.len()).await
            })
        },
    )
    .await
}

/// One OTLP/HTTP export: content type → encoding, body limits and tenant, then `ingest`;
/// answers an empty export response or a `google.rpc.Status` in the request's encoding.
async fn export(
    state: &AppState,
    headers: HeaderMap,
    body: Body,
    path: &str,
    reject: fn(&AppState, &'static str, ApiError) -> ApiError,
    ingest: impl FnOnce(
        Tenant,
        Bytes,
        Encoding,
        &'static str,
    ) -> BoxFuture<'static, Result<usize, ApiError>>,
) -> Response {
    let ct = content_type(&headers);
    let enc = match ct.as_str() {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        other => {
            let e = ApiError::UnsupportedMediaType(format!(
                "unsupported Content-Type {other:?} for {path} (expected application/x-protobuf or application/json)"
            ));
            return error_response(Encoding::Json, &reject(state, "otlp_http", e));
        }
    };
    let protocol = match enc {
        Encoding::Protobuf => "otlp_http_protobuf",
        Encoding::Json => "otlp_http_json",
    };
    let result = async {
        let tenant = tenant(&headers)?;
        let body = read_body(&headers, body, state.config.max_body_size).await?;
        ingest(tenant, body, enc, protocol).await
    }
    .await;
    match result {
        // An empty Export*ServiceResponse encodes to zero bytes.
        Ok(_) => match enc {
            Encoding::Protobuf => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                Vec::new(),
            )
                .into_response(),
            Encoding::Json => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{}",
            )
                .into_response(),
        },
        Err(e) => error_response(enc, &reject(state, protocol, e)),
    }
}
