//! OTLP/gRPC: the logs, metrics and trace collector services (`LogsService/Export`,
//! `MetricsService/Export`, `TraceService/Export`) on the `--otlp-grpc` listener, per the
//! OTLP specification.
//!
//! tonic frames each call (gzip accepted, and answered in gzip when the client accepts it;
//! messages over `server.max_body_size`, compressed or not, refused with
//! `RESOURCE_EXHAUSTED`); `sightline-wire` decodes the message bytes and the batch goes
//! through the same pipeline functions as OTLP/HTTP. Tenant: the `x-scope-orgid` metadata
//! entry. Status codes: a malformed message or one that breaks an OTLP rule →
//! `INVALID_ARGUMENT` naming the position (nothing of it stored); before the WAL replays
//! are done or while shutting down → `UNAVAILABLE` (retried by OTLP exporters); a storage
//! failure → `INTERNAL`. Success is the empty `Export*ServiceResponse`, except for metrics
//! whose exponential histogram points were skipped: those are reported in
//! `partial_success`.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures::future::BoxFuture;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use sightline_model::time::now_ns;
use sightline_model::Tenant;
use tokio::net::TcpListener;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{http, Body as HttpBody, Service, StdError};
use tonic::metadata::MetadataMap;
use tonic::server::{Grpc, NamedService};
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic::{Request, Response, Status};

use crate::error::ApiError;
use crate::otlp::http::ingest_otlp_metrics;
use crate::pipeline::rejected_spans;
use crate::pipeline::{ingest_logs, ingest_spans, rejected, rejected_metrics};
use crate::state::AppState;

/// The `protocol` label of the self-metrics for batches received here.
pub const PROTOCOL: &str = "otlp_grpc";

/// Serves the three OTLP collector services on `listener` until `shutdown` resolves, then
/// waits for the calls in flight to finish.
///
/// # Errors
/// The transport failing (accept errors are retried by tonic, so this is rare).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Exporters send many small batches on one connection: no Nagle delay on the answers.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .add_service(OtlpService::<Logs>::new(state.clone()))
        .add_service(OtlpService::<Metrics>::new(state.clone()))
        .add_service(OtlpService::<Traces>::new(state))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(std::io::Error::other)
}

/// One collector service: its gRPC names, response type and export.
///
/// Hand-written instead of opentelemetry-proto's generated `*ServiceServer`s because those
/// decode with tonic's prost codec, which answers a malformed message with `INTERNAL`; OTLP
/// wants `INVALID_ARGUMENT` naming the position. Here tonic only frames and decompresses
/// ([`RawCodec`]) and `sightline-wire` decodes the bytes, as for OTLP/HTTP.
trait Signal: Send + Sync + 'static {
    /// The fully qualified service name.
    const NAME: &'static str;
    /// The path of its one method.
    const PATH: &'static str;
    type Response: prost::Message + Default + Send + 'static;

    /// Decodes and ingests one request body (uncompressed protobuf).
    fn export(
        state: Arc<AppState>,
        tenant: Tenant,
        body: Bytes,
    ) -> BoxFuture<'static, Result<Self::Response, ApiError>>;

    /// Counts a rejected batch of this signal.
    fn rejected(state: &AppState, e: ApiError) -> ApiError;
}

struct Logs;
struct Metrics;
struct Traces;

fn bad_request(e: sightline_wire::Error) -> ApiError {
    ApiError::BadRequest(e.to_string())
}

impl Signal for Logs {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    type Response = ExportLogsServiceResponse;

    fn export(
        state: Arc<AppState>,
        tenant: Tenant,
        body: Bytes,
    ) -> BoxFuture<'static, Result<Self::Response, ApiError>> {
        Box::pin(async move {
            let records =
                sightline_wire::decode_otlp_logs_protobuf(&body, now_ns()).map_err(bad_request)?;
            if !records.is_empty() {
                ingest_logs(&state, tenant, records, PROTOCOL, body.len()).await?;
            }
            Ok(ExportLogsServiceResponse {
                partial_success: None,
            })
        })
    }

    fn rejected(state: &AppState, e: ApiError) -> ApiError {
        rejected(state, PROTOCOL, e)
    }
}

impl Signal for Metrics {
    const NAME: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const PATH: &'static str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    type Response = ExportMetricsServiceResponse;

    fn export(
        state: Arc<AppState>,
        tenant: Tenant,
        body: Bytes,
    ) -> BoxFuture<'static, Result<Self::Response, ApiError>> {
        Box::pin(async move {
            let m = sightline_wire::decode_otlp_metrics_protobuf(&body, now_ns())
                .map_err(bad_request)?;
            let skipped = m.skipped_exponential_points;
            ingest_otlp_metrics(&state, tenant, m, PROTOCOL, body.len()).await?;
            // OTLP partial success: the points not stored are reported, the rest is.
            let partial_success = (skipped > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: i64::try_from(skipped).unwrap_or(i64::MAX),
                error_message: format!(
                    "{skipped} exponential histogram data points skipped (not supported)"
                ),
            });
            Ok(ExportMetricsServiceResponse { partial_success })
        })
    }

    fn rejected(state: &AppState, e: ApiError) -> ApiError {
        rejected_metrics(state, PROTOCOL, e)
    }
}

impl Signal for Traces {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    type Response = ExportTraceServiceResponse;

    fn export(
        state: Arc<AppState>,
        tenant: Tenant,
        body: Bytes,
    ) -> BoxFuture<'static, Result<Self::Response, ApiError>> {
        Box::pin(async move {
            let spans = sightline_wire::decode_otlp_traces_protobuf(&body, now_ns())
                .map_err(bad_request)?;
            if !spans.is_empty() {
                ingest_spans(&state, tenant, spans, PROTOCOL, body.len()).await?;
            }
            Ok(ExportTraceServiceResponse {
                partial_success: None,
            })
        })
    }

    fn rejected(state: &AppState, e: ApiError) -> ApiError {
        rejected_spans(state, PROTOCOL, e)
    }
}

/// The HTTP/2 service of one [`Signal`], routed by tonic on its [`Signal::NAME`].
struct OtlpService<S> {
    state: Arc<AppState>,
    _signal: PhantomData<fn() -> S>,
}

impl<S> Clone for OtlpService<S> {
    fn clone(&self) -> Self {
        OtlpService {
            state: self.state.clone(),
            _signal: PhantomData,
        }
    }
}

impl<S: Signal> OtlpService<S> {
    fn new(state: Arc<AppState>) -> Self {
        OtlpService {
            state,
            _signal: PhantomData,
        }
    }
}

impl<S: Signal> NamedService for OtlpService<S> {
    const NAME: &'static str = S::NAME;
}

impl<S: Signal, B> Service<http::Request<B>> for OtlpService<S>
where
    B: HttpBody + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != S::PATH {
            let path = req.uri().path().to_string();
            return Box::pin(async move {
                Ok(Status::unimplemented(format!("no such method {path}")).into_http())
            });
        }
        let state = self.state.clone();
        Box::pin(async move {
            // Messages over `server.max_body_size`, compressed or after decompression, are
            // refused with RESOURCE_EXHAUSTED before they are buffered whole.
            let limit = state.config.max_body_size;
            let mut grpc = Grpc::new(RawCodec::<S::Response>::default())
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(limit);
            let export = Export::<S> {
                state,
                _signal: PhantomData,
            };
            let mut resp = grpc.unary(export, req).await;
            // tonic refuses a message whose length prefix is over the limit with
            // OUT_OF_RANGE, which OTLP exporters retry; resending cannot help, so it is
            // answered RESOURCE_EXHAUSTED (not retried without RetryInfo), as a message over
            // the limit after decompression already is. Only tonic answers OUT_OF_RANGE
            // here, and such a failure is trailers-only: the status is in the headers.
            let status = resp.headers().get("grpc-status");
            if status.is_some_and(|v| v.as_bytes() == b"11") {
                resp.headers_mut()
                    .insert("grpc-status", http::HeaderValue::from_static("8"));
            }
            Ok(resp)
        })
    }
}

/// The unary handler of one [`Signal`]: tenant, export, errors to gRPC statuses.
struct Export<S> {
    state: Arc<AppState>,
    _signal: PhantomData<fn() -> S>,
}

impl<S: Signal> Service<Request<Bytes>> for Export<S> {
    type Response = Response<S::Response>;
    type Error = Status;
    type Future = BoxFuture<'static, Result<Self::Response, Status>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        let state = self.state.clone();
        Box::pin(async move {
            let (metadata, _, body) = req.into_parts();
            let result = match tenant(&metadata) {
                Ok(t) => S::export(state.clone(), t, body).await,
                Err(e) => Err(e),
            };
            result
                .map(Response::new)
                .map_err(|e| status(&S::rejected(&state, e)))
        })
    }
}

/// A codec that hands the request message over as bytes (decoded by `sightline-wire`) and
/// encodes the prost response `T`.
struct RawCodec<T>(PhantomData<fn() -> T>);

impl<T> Default for RawCodec<T> {
    fn default() -> Self {
        RawCodec(PhantomData)
    }
}

impl<T: prost::Message + Send + 'static> Codec for RawCodec<T> {
    type Encode = T;
    type Decode = Bytes;
    type Encoder = ProstResponseEncoder<T>;
    type Decoder = BytesDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstResponseEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        BytesDecoder
    }
}

struct ProstResponseEncoder<T>(PhantomData<fn() -> T>);

impl<T: prost::Message> Encoder for ProstResponseEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.encoded_len());
        item.encode(dst)
            .map_err(|e| Status::internal(format!("cannot encode response: {e}")))
    }
}

struct BytesDecoder;

impl Decoder for BytesDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// The tenant from the `x-scope-orgid` metadata entry, the default tenant when absent.
fn tenant(metadata: &MetadataMap) -> Result<Tenant, ApiError> {
    match metadata.get("x-scope-orgid") {
        None => Ok(Tenant::default_tenant()),
        Some(v) => {
            let s = v.to_str().map_err(|_| {
                ApiError::BadRequest("invalid x-scope-orgid metadata: not ASCII".into())
            })?;
            Tenant::new(s.trim())
                .map_err(|e| ApiError::BadRequest(format!("invalid x-scope-orgid metadata: {e}")))
        }
    }
}

/// The one mapping of API error kinds to gRPC codes. OTLP exporters retry `UNAVAILABLE`
/// (not ready, shutting down) and not `INVALID_ARGUMENT` (the batch is bad: resending
/// cannot help).
fn status(e: &ApiError) -> Status {
    let msg = e.to_string();
    match e {
        ApiError::BadRequest(_) | ApiError::UnsupportedMediaType(_) => {
            Status::invalid_argument(msg)
        }
        ApiError::TooLarge(_) => Status::resource_exhausted(msg),
        ApiError::Unavailable(_) => Status::unavailable(msg),
        ApiError::Internal(_) => Status::internal(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use tonic::metadata::MetadataValue;
    use tonic::transport::Channel;

    /// A server with no stores installed (as during the WAL replay) and `toml` as its
    /// configuration; returns its address and the state.
    async fn start(toml: &str) -> (String, tokio::sync::watch::Sender<bool>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sightline.toml");
        std::fs::write(&path, toml).unwrap();
        let config =
            crate::config::load(Some(&path), [], &crate::config::Overrides::default()).unwrap();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let state = Arc::new(AppState::new(config, rx.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let mut stop = rx;
        tokio::spawn(serve(listener, state, async move {
            let _ = stop.wait_for(|s| *s).await;
        }));
        (addr, tx)
    }

    fn logs_request(body_len: usize) -> ExportLogsServiceRequest {
        let record = LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue("x".repeat(body_len))),
            }),
            ..Default::default()
        };
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![record],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[tokio::test]
    async fn calls_before_the_replay_are_unavailable_and_bad_input_is_invalid() {
        let (addr, _stop) = start("").await;
        let channel = Channel::from_shared(addr).unwrap().connect().await.unwrap();
        let mut logs = LogsServiceClient::new(channel.clone())
            .send_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Gzip);

        // Valid (and gzip-compressed): retryable UNAVAILABLE until the stores are open.
        let e = logs.export(logs_request(10)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
        assert!(e.message().contains("replaying"), "{e:?}");

        // A bad tenant is the client's error, whatever the readiness.
        let mut req = Request::new(logs_request(10));
        req.metadata_mut()
            .insert("x-scope-orgid", MetadataValue::from_static("a/b"));
        let e = logs.export(req).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");

        // A span that breaks an OTLP rule (no ids): INVALID_ARGUMENT naming its position.
        let mut traces = TraceServiceClient::new(channel);
        let req: ExportTraceServiceRequest = serde_json::from_str(
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"s"}]}]}]}"#,
        )
        .unwrap();
        let e = traces.export(req).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains("resource 1, scope 1, span 1"), "{e:?}");
    }

    #[tokio::test]
    async fn messages_over_the_body_limit_are_resource_exhausted() {
        let (addr, _stop) = start("[server]\nmax_body_size = \"1KiB\"\n").await;
        let channel = Channel::from_shared(addr).unwrap().connect().await.unwrap();
        let mut logs = LogsServiceClient::new(channel.clone());
        let e = logs.export(logs_request(2000)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
        assert!(e.message().contains("limit"), "{e:?}");
        // Compressed under the limit, over it once decompressed: refused the same way.
        let mut gz = LogsServiceClient::new(channel).send_compressed(CompressionEncoding::Gzip);
        let e = gz.export(logs_request(2000)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
        // Under the limit it gets as far as the (missing) store.
        let e = logs.export(logs_request(100)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    }

    #[test]
    fn tenant_comes_from_metadata() {
        let mut md = MetadataMap::new();
        assert_eq!(tenant(&md).unwrap(), Tenant::default_tenant());
        md.insert("x-scope-orgid", MetadataValue::from_static("team-a"));
        assert_eq!(tenant(&md).unwrap().as_str(), "team-a");
        md.insert("x-scope-orgid", MetadataValue::from_static("bad/tenant"));
        let e = tenant(&md).unwrap_err();
        assert!(matches!(e, ApiError::BadRequest(_)), "{e:?}");
        assert!(e.to_string().contains("x-scope-orgid"), "{e}");
    }

    #[test]
    fn error_kinds_map_to_otlp_codes() {
        let code = |e: ApiError| status(&e).code();
        assert_eq!(
            code(ApiError::BadRequest("x".into())),
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            code(ApiError::TooLarge("x".into())),
            tonic::Code::ResourceExhausted
        );
        assert_eq!(
            code(ApiError::Unavailable("x".into())),
            tonic::Code::Unavailable
        );
        assert_eq!(code(ApiError::Internal("x".into())), tonic::Code::Internal);
        assert_eq!(
            status(&ApiError::BadRequest("resource 1: bad".into())).message(),
            "resource 1: bad"
        );
    }
}
