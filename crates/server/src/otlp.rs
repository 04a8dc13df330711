//! OTLP surfaces: `/v1/logs`, `/v1/metrics` and `/v1/traces` over HTTP (protobuf and
//! JSON, gzip) on both the main and the OTLP/HTTP listener (`http.rs`), and the three
//! collector services over gRPC on the OTLP/gRPC listener (`grpc.rs`).

pub mod grpc;
pub mod http;
