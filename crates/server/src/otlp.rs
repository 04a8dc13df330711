//! OTLP surfaces. `/v1/logs` over HTTP (protobuf and JSON, gzip) on both the main and the
//! OTLP/HTTP listener; gRPC arrives with the traces work.

pub mod http;
