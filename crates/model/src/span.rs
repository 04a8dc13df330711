//! The span: one timed operation of a trace, as OpenTelemetry defines it
//! (`opentelemetry/proto/trace/v1/trace.proto`), with the resource's `service.name` taken out
//! into `service` as for log records.

use crate::ids::{SpanId, TraceId};
use crate::value::{Attributes, Value};

/// The span kind, numbered as OTLP's `Span.SpanKind`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    pub const ALL: [SpanKind; 6] = [
        SpanKind::Unspecified,
        SpanKind::Internal,
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Producer,
        SpanKind::Consumer,
    ];

    /// OTLP's number; unknown numbers are `Unspecified`.
    pub fn from_number(n: i32) -> SpanKind {
        match n {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    pub fn number(self) -> i32 {
        self as i32
    }

    /// Lower-case name as Jaeger and our API spell it: `server`, `client`, ...
    /// (`unspecified` for none).
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "unspecified",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }

    /// OTLP's enum name, as the spanmetrics connector's `span_kind` label spells it:
    /// `SPAN_KIND_SERVER`, ...
    pub fn otlp_name(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "SPAN_KIND_UNSPECIFIED",
            SpanKind::Internal => "SPAN_KIND_INTERNAL",
            SpanKind::Server => "SPAN_KIND_SERVER",
            SpanKind::Client => "SPAN_KIND_CLIENT",
            SpanKind::Producer => "SPAN_KIND_PRODUCER",
            SpanKind::Consumer => "SPAN_KIND_CONSUMER",
        }
    }

    /// Parses [`SpanKind::as_str`] or [`SpanKind::otlp_name`] spellings, any case
    /// (Zipkin's `SERVER`, `CLIENT`, ... included).
    pub fn parse(s: &str) -> Option<SpanKind> {
        let l = s.to_ascii_lowercase();
        let l = l.strip_prefix("span_kind_").unwrap_or(&l);
        SpanKind::ALL.into_iter().find(|k| k.as_str() == l)
    }
}

/// The span status code, numbered as OTLP's `Status.StatusCode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusCode {
    #[default]
    Unset,
    Ok,
    Error,
}

impl StatusCode {
    /// OTLP's number; unknown numbers are `Unset`.
    pub fn from_number(n: i32) -> StatusCode {
        match n {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }

    pub fn number(self) -> i32 {
        self as i32
    }

    /// `unset`, `ok`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusCode::Unset => "unset",
            StatusCode::Ok => "ok",
            StatusCode::Error => "error",
        }
    }

    /// `STATUS_CODE_UNSET`, ... as the spanmetrics connector's `status_code` label.
    pub fn otlp_name(self) -> &'static str {
        match self {
            StatusCode::Unset => "STATUS_CODE_UNSET",
            StatusCode::Ok => "STATUS_CODE_OK",
            StatusCode::Error => "STATUS_CODE_ERROR",
        }
    }

    /// Parses either spelling, any case.
    pub fn parse(s: &str) -> Option<StatusCode> {
        let l = s.to_ascii_lowercase();
        let l = l.strip_prefix("status_code_").unwrap_or(&l);
        [StatusCode::Unset, StatusCode::Ok, StatusCode::Error]
            .into_iter()
            .find(|k| k.as_str() == l)
    }
}

/// A timestamped annotation of a span; exceptions are events named `exception` with the
/// `exception.*` attributes.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SpanEvent {
    /// Nanoseconds since the Unix epoch.
    pub time: i64,
    pub name: String,
    pub attributes: Attributes,
}

/// A reference from a span to a span of (usually) another trace.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SpanLink {
    pub trace_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
    pub trace_state: String,
    pub attributes: Attributes,
}

/// One span, as stored and returned.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    /// W3C `tracestate`, as sent; usually empty.
    pub trace_state: String,
    /// The operation name.
    pub name: String,
    pub kind: SpanKind,
    /// Start and end, nanoseconds since the Unix epoch; `end >= start`.
    pub start: i64,
    pub end: i64,
    pub status_code: StatusCode,
    pub status_message: String,
    /// The resource's `service.name`; empty when unknown. Not repeated in `resource`.
    pub service: String,
    /// Resource attributes other than `service.name`.
    pub resource: Attributes,
    /// Instrumentation scope name and version.
    pub scope_name: String,
    pub scope_version: String,
    pub attributes: Attributes,
    pub events: Vec<SpanEvent>,
    pub links: Vec<SpanLink>,
}

impl Span {
    /// `end - start` in nanoseconds.
    pub fn duration(&self) -> i64 {
        self.end.saturating_sub(self.start)
    }

    pub fn is_error(&self) -> bool {
        self.status_code == StatusCode::Error
    }

    /// An attribute by key: span attributes first, then resource attributes.
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes.get(key).or_else(|| self.resource.get(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_numbers_and_names() {
        for k in SpanKind::ALL {
            assert_eq!(SpanKind::from_number(k.number()), k);
            assert_eq!(SpanKind::parse(k.as_str()), Some(k));
            assert_eq!(SpanKind::parse(k.otlp_name()), Some(k));
        }
        assert_eq!(SpanKind::parse("SERVER"), Some(SpanKind::Server));
        assert_eq!(SpanKind::parse("sideways"), None);
        assert_eq!(SpanKind::from_number(42), SpanKind::Unspecified);
    }

    #[test]
    fn status_codes_round_trip() {
        for s in [StatusCode::Unset, StatusCode::Ok, StatusCode::Error] {
            assert_eq!(StatusCode::from_number(s.number()), s);
            assert_eq!(StatusCode::parse(s.as_str()), Some(s));
            assert_eq!(StatusCode::parse(s.otlp_name()), Some(s));
        }
        assert_eq!(StatusCode::parse("fine"), None);
    }

    #[test]
    fn duration_and_attribute_lookup() {
        let mut s = Span {
            start: 100,
            end: 350,
            ..Span::default()
        };
        s.attributes.insert("k".into(), Value::Int(1));
        s.resource.insert("k".into(), Value::Int(2));
        s.resource.insert("host".into(), Value::Str("a".into()));
        assert_eq!(s.duration(), 250);
        assert_eq!(s.attribute("k"), Some(&Value::Int(1)));
        assert_eq!(s.attribute("host"), Some(&Value::Str("a".into())));
        assert!(!s.is_error());
    }
}
