//! The log record.

use crate::ids::{SpanId, TraceId};
use crate::severity::Level;
use crate::value::{Attributes, Value};

/// One log record, as stored and returned.
///
/// `service` is taken out of the resource attribute `service.name` (OTLP) or the `service`
/// field (NDJSON); it is not repeated in `resource`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LogRecord {
    /// Event time, nanoseconds since the Unix epoch (UTC).
    pub timestamp: i64,
    /// When Sightline (or the collector) first saw it, nanoseconds since the epoch.
    pub observed_timestamp: i64,
    /// OpenTelemetry severity number, 0 (unspecified) to 24.
    pub severity_number: u8,
    /// The severity as the sender spelled it (`"WARNING"`, `"err"`), or empty.
    pub severity_text: String,
    /// The service that emitted the record; empty when unknown.
    pub service: String,
    /// The message (OTLP body); non-string bodies are stored as their JSON text.
    pub body: String,
    /// Resource attributes other than `service.name`.
    pub resource: Attributes,
    /// Record attributes.
    pub attributes: Attributes,
    pub trace_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
}

impl LogRecord {
    /// The level: from the severity number, or parsed from the text when the number is 0.
    pub fn level(&self) -> Level {
        match Level::from_number(self.severity_number) {
            Level::Unspecified => Level::parse(&self.severity_text).unwrap_or(Level::Unspecified),
            l => l,
        }
    }

    /// An attribute by key: record attributes first, then resource attributes.
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes.get(key).or_else(|| self.resource.get(key))
    }

    /// A rough in-memory size, used for buffer accounting and `scanned_bytes`.
    pub fn approx_size(&self) -> usize {
        fn attrs(a: &Attributes) -> usize {
            a.iter()
                .map(|(k, v)| {
                    k.len()
                        + match v {
                            Value::Str(s) => s.len(),
                            _ => 8,
                        }
                })
                .sum()
        }
        8 + 8
            + 1
            + self.severity_text.len()
            + self.service.len()
            + self.body.len()
            + attrs(&self.resource)
            + attrs(&self.attributes)
            + self.trace_id.map_or(0, |_| 16)
            + self.span_id.map_or(0, |_| 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_falls_back_to_text() {
        let mut r = LogRecord {
            severity_text: "WARNING".into(),
            ..Default::default()
        };
        assert_eq!(r.level(), Level::Warn);
        r.severity_number = 17;
        assert_eq!(r.level(), Level::Error);
    }
}
