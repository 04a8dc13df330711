//! The data model every other Sightline crate speaks: tenants, log records, spans, metric series
//! labels and samples, attribute values, trace/span ids, severities, time conversions and the text tokenizer shared by
//! the storage bloom filters and the query language.
//!
//! Fed by: the protocol decoders in `sightline-wire`. Feeds: storage, query and server.
//! This crate does no I/O and depends on no other Sightline crate.

pub mod error;
pub mod ids;
pub mod labels;
pub mod log;
pub mod sample;
pub mod severity;
pub mod span;
pub mod tenant;
pub mod text;
pub mod time;
pub mod value;

pub use error::{Error, Result};
pub use ids::{SpanId, TraceId};
pub use labels::{Labels, METRIC_NAME};
pub use log::LogRecord;
pub use sample::{MetricMetadata, MetricType, Sample, TimeSeries};
pub use severity::Level;
pub use span::{Span, SpanEvent, SpanKind, SpanLink, StatusCode};
pub use tenant::Tenant;
pub use value::{Attributes, Value};
