//! Metric samples: a series' labels with (millisecond timestamp, f64 value) points, the
//! Prometheus staleness marker, and metric metadata (type, help, unit).

use crate::labels::Labels;

/// The bit pattern Prometheus writes as a staleness marker: a NaN that no arithmetic
/// produces (`value.StaleNaN` in Prometheus' `model/value`).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as a float.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is the staleness marker (an ordinary NaN is not).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One point of a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch, as Prometheus keeps them.
    pub timestamp_ms: i64,
    pub value: f64,
}

/// A series and some of its samples (in time order when read back from storage).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TimeSeries {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// A metric family's type, named as in OpenMetrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    #[default]
    Unknown,
}

impl MetricType {
    /// Every type, in the order of Prometheus' remote-write `MetricMetadata.MetricType`
    /// enum: the index is the type's [`MetricType::code`].
    pub const ALL: [MetricType; 8] = [
        MetricType::Unknown,
        MetricType::Counter,
        MetricType::Gauge,
        MetricType::Histogram,
        MetricType::GaugeHistogram,
        MetricType::Summary,
        MetricType::Info,
        MetricType::StateSet,
    ];

    /// The type's number in remote write's enum (also used by Sightline's own formats).
    pub fn code(self) -> u8 {
        match self {
            MetricType::Unknown => 0,
            MetricType::Counter => 1,
            MetricType::Gauge => 2,
            MetricType::Histogram => 3,
            MetricType::GaugeHistogram => 4,
            MetricType::Summary => 5,
            MetricType::Info => 6,
            MetricType::StateSet => 7,
        }
    }

    /// The type of a [`MetricType::code`].
    pub fn from_code(code: u64) -> Option<Self> {
        usize::try_from(code)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// The lowercase name used by `/api/v1/metadata` and the exposition formats.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    /// Parses a type name as written in `# TYPE` lines (`untyped` is `Unknown`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "gaugehistogram" => MetricType::GaugeHistogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "stateset" => MetricType::StateSet,
            "unknown" | "untyped" => MetricType::Unknown,
            _ => return None,
        })
    }
}

/// What a sender says about a metric family (`# TYPE`, `# HELP`, `# UNIT`, remote-write
/// metadata, OTLP descriptions).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricMetadata {
    pub metric_family_name: String,
    pub metric_type: MetricType,
    pub help: String,
    pub unit: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_marker_is_a_distinct_nan() {
        assert!(stale_nan().is_nan());
        assert!(is_stale_nan(stale_nan()));
        assert!(!is_stale_nan(f64::NAN));
        assert!(!is_stale_nan(0.0));
    }

    #[test]
    fn metric_type_round_trips() {
        for t in MetricType::ALL {
            assert_eq!(MetricType::parse(t.as_str()), Some(t));
            assert_eq!(MetricType::from_code(u64::from(t.code())), Some(t));
        }
        assert_eq!(MetricType::from_code(8), None);
        assert_eq!(MetricType::parse("untyped"), Some(MetricType::Unknown));
        assert_eq!(MetricType::parse("bogus"), None);
    }
}
