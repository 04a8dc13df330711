//! OTLP/HTTP `/v1/logs`, `/v1/metrics` and `/v1/traces` per the OTLP specification: `application/x-protobuf` or
//! `application/json` request bodies, optional gzip; success is an empty
//! `Export*ServiceResponse` in the request's encoding; failure is a `google.rpc.Status`
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
use sightline_wire::otlp_metrics::OtlpMetrics;

use crate::body::{content_type, read_body, tenant};
use crate::error::ApiError;
use crate::pipeline::{
    ingest_logs, ingest_samples, ingest_spans, rejected, rejected_metrics, rejected_spans,
};
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
                ingest_otlp_metrics(&st, tenant, m, protocol, body.len()).await
            })
        },
    )
    .await
}

/// `POST /v1/traces`: spans to the span store, and their span metrics to the TSDB.
pub async fn traces(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let st = state.clone();
    export(
        &state,
        headers,
        body,
        "/v1/traces",
        rejected_spans,
        move |tenant, body, enc, protocol| {
            Box::pin(async move {
                let now = now_ns();
                let spans = match enc {
                    Encoding::Protobuf => {
                        sightline_wire::otlp_traces::decode_otlp_traces_protobuf(&body, now)
                    }
                    Encoding::Json => {
                        sightline_wire::otlp_traces::decode_otlp_traces_json(&body, now)
                    }
                }
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                if spans.is_empty() {
                    return Ok(0);
                }
                ingest_spans(&st, tenant, spans, protocol, body.len()).await
            })
        },
    )
    .await
}

/// Ingests decoded OTLP metrics (HTTP and gRPC alike): delta points are accumulated per
/// tenant and series into cumulative values, then the batch is committed. Exponential
/// histogram points were already skipped by the decoder (the caller may report them).
///
/// # Errors
/// As for [`ingest_samples`].
pub(crate) async fn ingest_otlp_metrics(
    state: &Arc<AppState>,
    tenant: Tenant,
    m: OtlpMetrics,
    protocol: &'static str,
    bytes: usize,
) -> Result<usize, ApiError> {
    let mut series = m.series;
    if !m.deltas.is_empty() {
        series.extend(state.accumulate_deltas(&tenant, m.deltas));
    }
    let batch = MetricBatch {
        series,
        metadata: m.metadata,
    };
    if batch.series.is_empty() {
        return Ok(0);
    }
    ingest_samples(state, tenant, batch, protocol, bytes).await
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use axum::routing::post;
    use axum::Router;
    use sightline_model::TraceId;
    use sightline_storage::{LabelMatcher, MatchKind, MetricStore, SpanStore, Tsdb};
    use tower::ServiceExt;

    /// A state on `dir`; with the span and metric stores open when `ready` (the log store
    /// is not needed by the trace ingest paths).
    pub(crate) fn trace_state(dir: &std::path::Path, ready: bool) -> Arc<AppState> {
        let path = dir.join("sightline.toml");
        let data = dir.join("data");
        std::fs::write(
            &path,
            format!("[server]\ndata_dir = {:?}\n", data.display().to_string()),
        )
        .unwrap();
        let config =
            crate::config::load(Some(&path), [], &crate::config::Overrides::default()).unwrap();
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let state = Arc::new(AppState::new(config.clone(), rx));
        if ready {
            let (tsdb, _) = Tsdb::open(config.tsdb_config()).unwrap();
            let (spans, _) =
                SpanStore::open(config.span_store_config(), config.sampling.clone()).unwrap();
            state.set_metric_store(tsdb);
            state.set_span_store(spans);
        }
        state
    }

    pub(crate) fn router(state: Arc<AppState>) -> Router {
        Router::new()
            .route("/v1/traces", post(traces))
            .route("/api/v2/spans", post(crate::zipkin::spans))
            .with_state(state)
    }

    /// POSTs `body` to `uri`; returns status, content type and body.
    pub(crate) async fn post_body(
        router: Router,
        uri: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, String, Vec<u8>) {
        let req = axum::http::Request::post(uri)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap();
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, ct, bytes.to_vec())
    }

    /// The value of the span-metric calls counter of `service` (default tenant), if any.
    pub(crate) fn calls(state: &AppState, service: &str) -> Option<f64> {
        let tsdb = state.metric_store().unwrap();
        let m = [
            LabelMatcher::new(
                "__name__",
                MatchKind::Equal,
                crate::spanmetrics::CALLS_TOTAL,
            )
            .unwrap(),
            LabelMatcher::new("service_name", MatchKind::Equal, service).unwrap(),
        ];
        let series = tsdb
            .querier(&Tenant::default_tenant())
            .select(&m, 0, i64::MAX)
            .unwrap();
        series.last()?.samples.last().map(|s| s.value)
    }

    fn otlp_json(trace_hex: &str, now: i64) -> String {
        format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"web"}}}}]}},
            "scopeSpans":[{{"spans":[{{"traceId":"{trace_hex}","spanId":"00000000000000a1","name":"GET /",
            "kind":2,"startTimeUnixNano":"{}","endTimeUnixNano":"{}"}}]}}]}}]}}"#,
            now - 5_000_000,
            now
        )
    }

    #[tokio::test]
    async fn traces_in_json_and_protobuf_are_stored_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let state = trace_state(dir.path(), true);
        let now = now_ns();
        let hex = "0102030405060708090a0b0c0d0e0f10";
        let (status, ct, body) = post_body(
            router(state.clone()),
            "/v1/traces",
            "application/json",
            otlp_json(hex, now).into_bytes(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert_eq!((ct.as_str(), &body[..]), ("application/json", &b"{}"[..]));
        let store = state.span_store().unwrap();
        let id = TraceId::from_hex(hex).unwrap();
        let spans = store
            .trace(&Tenant::default_tenant(), id, 0, i64::MAX)
            .unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(
            (spans[0].service.as_str(), spans[0].name.as_str()),
            ("web", "GET /")
        );
        assert_eq!(calls(&state, "web"), Some(1.0));

        // The same request in protobuf: an empty protobuf response.
        let req: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
            serde_json::from_str(&otlp_json(hex, now)).unwrap();
        let (status, ct, body) = post_body(
            router(state.clone()),
            "/v1/traces",
            "application/x-protobuf",
            req.encode_to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ct, "application/x-protobuf");
        assert!(body.is_empty());
        assert_eq!(calls(&state, "web"), Some(2.0));
    }

    #[tokio::test]
    async fn bad_trace_batches_are_refused_naming_the_position() {
        let dir = tempfile::tempdir().unwrap();
        let state = trace_state(dir.path(), true);
        // Garbage protobuf: 400 with a google.rpc.Status in protobuf.
        let (status, ct, body) = post_body(
            router(state.clone()),
            "/v1/traces",
            "application/x-protobuf",
            b"\x0a\x80\x80\x80\x80\x08abc".to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(ct, "application/x-protobuf");
        let st = RpcStatus::decode(&body[..]).unwrap();
        assert_eq!(st.code, INVALID_ARGUMENT);
        assert!(st.message.contains("protobuf"), "{}", st.message);

        // A span without a trace id: 400 naming the span; nothing stored or counted.
        let json = otlp_json("", now_ns());
        let (status, _, body) = post_body(
            router(state.clone()),
            "/v1/traces",
            "application/json",
            json.into(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], INVALID_ARGUMENT);
        let msg = v["message"].as_str().unwrap();
        assert!(msg.contains("resource 1, scope 1, span 1"), "{msg}");
        assert_eq!(calls(&state, "web"), None);

        let (status, _, _) =
            post_body(router(state), "/v1/traces", "text/plain", b"x".to_vec()).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[tokio::test]
    async fn traces_before_the_replay_are_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let state = trace_state(dir.path(), false);
        let json = otlp_json("0102030405060708090a0b0c0d0e0f10", now_ns());
        let (status, _, body) =
            post_body(router(state), "/v1/traces", "application/json", json.into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], UNAVAILABLE);
    }
}
