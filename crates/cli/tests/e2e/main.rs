//! End-to-end tests: the real `sightline` binary, started on a temp dir and port 0, driven
//! over HTTP and through its CLI exactly as users drive it.

mod bad_input;
mod crash;
mod loghub;
mod logs;
mod metrics;
mod otel_python;
mod otlp_grpc;
mod promql_conformance;
mod traces;
mod traces_crash;
mod util;
