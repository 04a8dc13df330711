//! Sightline's protocol decoders and log line parsers: bytes from HTTP bodies (NDJSON,
//! OTLP logs in protobuf or JSON, plain log lines in json, logfmt, nginx/apache access,
//! apache error, syslog or a user regex) to `sightline_model::LogRecord`s.
//!
//! Fed by: the server's ingest endpoints and the file tailer. Feeds: the ingest pipeline
//! (and through it storage). Decoders are pure functions of the body and the current time;
//! they never panic on any input and reject a batch as a whole with an [`Error`] naming the
//! line, field or record position.

pub mod access_log;
pub mod error;
pub mod json_fast;
pub mod json_record;
pub mod lines;
pub mod logfmt;
pub mod ndjson;
pub mod otlp_logs;
pub mod syslog;

pub use error::{Error, Result};
pub use lines::{parse_lines, LineFormat};
pub use ndjson::decode_ndjson;
pub use otlp_logs::{decode_otlp_logs_json, decode_otlp_logs_protobuf};

// Metric ingest decoders (issue 3): remote write, Prometheus text, OpenMetrics, OTLP.
pub mod exposition;
pub mod metric_names;
pub mod openmetrics;
pub mod remote_write;

pub use exposition::{parse_prometheus_text, write_prometheus_text, MetricBatch};
pub use openmetrics::{parse_openmetrics, write_openmetrics};
pub use remote_write::{decode_write_request, encode_write_request};
pub mod otlp_metrics;
pub use otlp_metrics::{
    decode_otlp_metrics_json, decode_otlp_metrics_protobuf, DeltaAccumulator, DeltaPoint,
    OtlpMetrics,
};

// Trace ingest decoders (issue 4): OTLP traces, Zipkin v2 JSON.
pub mod otlp_traces;
pub mod zipkin;
pub use otlp_traces::{decode_otlp_traces_json, decode_otlp_traces_protobuf};
pub use zipkin::decode_zipkin_json;
