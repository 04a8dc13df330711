//! Zipkin ingest: `POST /api/v2/spans` with a Zipkin v2 JSON array of spans (optionally
//! gzip), answered `202 Accepted` with an empty body as Zipkin's own collector answers, so
//! Zipkin reporters (and the OpenTelemetry Zipkin exporter) can send here unchanged.
//! Decoding is `sightline_wire::decode_zipkin_json`; the spans go through the same
//! pipeline as OTLP traces. Errors: 400/413/415/503/500 with `{"error": "..."}`, the
//! message naming the span position.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sightline_model::time::now_ns;

use crate::body::{content_type, read_body, tenant};
use crate::error::ApiError;
use crate::pipeline::ingest_spans;
use crate::pipeline::rejected_spans;
use crate::state::AppState;

/// The `protocol` label of the self-metrics for Zipkin batches.
pub const PROTOCOL: &str = "zipkin";

/// `POST /api/v2/spans`.
pub async fn spans(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    match accept(&state, &headers, body).await {
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(e) => rejected_spans(&state, PROTOCOL, e).into_response(),
    }
}

async fn accept(state: &Arc<AppState>, headers: &HeaderMap, body: Body) -> Result<usize, ApiError> {
    match content_type(headers).as_str() {
        // Zipkin reporters always send a type; curl users often do not.
        "application/json" | "" => {}
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "unsupported Content-Type {other:?} for /api/v2/spans (expected application/json: Zipkin v2 JSON)"
            )))
        }
    }
    let tenant = tenant(headers)?;
    let body = read_body(headers, body, state.config.max_body_size).await?;
    let spans = sightline_wire::decode_zipkin_json(&body, now_ns())
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if spans.is_empty() {
        return Ok(0);
    }
    ingest_spans(state, tenant, spans, PROTOCOL, body.len()).await
}

#[cfg(test)]
mod tests {
    use sightline_model::{SpanKind, Tenant, TraceId};

    use super::*;
    use crate::otlp::http::tests::{calls, post_body, router, trace_state};

    fn zipkin_json(now_us: i64) -> String {
        format!(
            r#"[{{"traceId":"5af7183fb1d4cf5f5af7183fb1d4cf5f","id":"352bff9a74ca9ad2","name":"get /api",
            "timestamp":{now_us},"duration":2000,"kind":"SERVER","localEndpoint":{{"serviceName":"frontend"}}}}]"#
        )
    }

    #[tokio::test]
    async fn zipkin_spans_are_accepted_stored_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let state = trace_state(dir.path(), true);
        let body = zipkin_json(now_ns() / 1000).into_bytes();
        let (status, _, resp) = post_body(
            router(state.clone()),
            "/api/v2/spans",
            "application/json",
            body,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "{}",
            String::from_utf8_lossy(&resp)
        );
        assert!(resp.is_empty());
        let id = TraceId::from_hex("5af7183fb1d4cf5f5af7183fb1d4cf5f").unwrap();
        let spans = state
            .span_store()
            .unwrap()
            .trace(&Tenant::default_tenant(), id, 0, i64::MAX)
            .unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].service, "frontend");
        assert_eq!(spans[0].kind, SpanKind::Server);
        assert_eq!(spans[0].duration(), 2_000_000);
        assert_eq!(calls(&state, "frontend"), Some(1.0));
    }

    #[tokio::test]
    async fn bad_zipkin_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = trace_state(dir.path(), true);
        let (status, _, body) = post_body(
            router(state.clone()),
            "/api/v2/spans",
            "application/json",
            b"[{\"traceId\": 12}]".to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(!v["error"].as_str().unwrap().is_empty(), "{v}");
        assert_eq!(calls(&state, "frontend"), None);

        let (status, _, _) = post_body(
            router(state),
            "/api/v2/spans",
            "application/x-protobuf",
            b"x".to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

        let dir = tempfile::tempdir().unwrap();
        let state = trace_state(dir.path(), false);
        let body = zipkin_json(now_ns() / 1000).into_bytes();
        let (status, _, _) = post_body(router(state), "/api/v2/spans", "", body).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
