//! OTLP/HTTP `/v1/logs` per the OTLP specification: `application/x-protobuf` or
//! `application/json` request bodies, optional gzip; success is an empty
//! `ExportLogsServiceResponse` in the request's encoding; failure is a `google.rpc.Status`
//! in the request's encoding with HTTP 400 (413, 415, 503 as the case may be).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use prost::Message;
use sightline_model::time::now_ns;

use crate::body::{content_type, read_body, tenant};
use crate::error::ApiError;
use crate::pipeline::{ingest_logs, rejected};
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
    let ct = content_type(&headers);
    let enc = match ct.as_str() {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        other => {
            let e = ApiError::UnsupportedMediaType(format!(
                "unsupported Content-Type {other:?} for /v1/logs (expected application/x-protobuf or application/json)"
            ));
            let e = rejected(&state, "otlp_http", e);
            return error_response(Encoding::Json, &e);
        }
    };
    let protocol = match enc {
        Encoding::Protobuf => "otlp_http_protobuf",
        Encoding::Json => "otlp_http_json",
    };
    let result = async {
        let tenant = tenant(&headers)?;
        let body = read_body(&headers, body, state.config.max_body_size).await?;
        let now = now_ns();
        let records = match enc {
            Encoding::Protobuf => sightline_wire::otlp_logs::decode_otlp_logs_protobuf(&body, now),
            Encoding::Json => sightline_wire::otlp_logs::decode_otlp_logs_json(&body, now),
        }
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        if records.is_empty() {
            return Ok(0);
        }
        ingest_logs(&state, tenant, records, protocol, body.len()).await
    }
    .await;
    match result {
        Ok(_) => match enc {
            // An empty ExportLogsServiceResponse encodes to zero bytes.
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
        Err(e) => error_response(enc, &rejected(&state, protocol, e)),
    }
}
