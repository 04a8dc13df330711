//! OTLP metrics (`ExportMetricsServiceRequest`, protobuf or JSON, `/v1/metrics`) to
//! Prometheus series, following the OpenTelemetry "Prometheus and OpenMetrics
//! Compatibility" spec and the collector's Prometheus translator.
//!
//! Mapping:
//! - names: [`otel_metric_name`] (tokens joined by `_`, unit suffix such as `_seconds` or
//!   `_bytes_per_second`, `_total` for monotonic sums, `_ratio` for gauges of unit `1`);
//! - gauge → gauge; monotonic sum → counter; non-monotonic sum → gauge; histogram →
//!   `_bucket{le}` (cumulative counts, `+Inf` = count), `_sum` (when present), `_count`;
//!   summary → `{quantile}` series, `_sum`, `_count`; exponential histograms are skipped
//!   and counted in [`OtlpMetrics::skipped_exponential_points`];
//! - labels: data point attributes with [`sanitize_label_name`] (values of keys that
//!   collide after sanitising are joined with `;` in key order), scope name and version
//!   as `otel_scope_name`/`otel_scope_version`, resource `service.namespace`/`service.name`
//!   as `job` (`namespace/name`), `service.instance.id` as `instance`; other resource
//!   attributes go on one `target_info` series per resource (value 1, at the resource's
//!   latest point time), not on every series;
//! - attribute values: strings as is, numbers and booleans as text, bytes as hex, arrays
//!   and maps as JSON;
//! - times: nanoseconds truncated to milliseconds; a point without a time gets `now`;
//! - the NO_RECORDED_VALUE flag → every series of the point gets the staleness marker;
//! - delta temporality (sums and histograms): the points are returned apart, in
//!   [`OtlpMetrics::deltas`], for a [`DeltaAccumulator`] to turn into cumulative values;
//!   an unspecified temporality is read as cumulative.
//!
//! Positions in errors are 1-based.

use std::collections::{BTreeMap, HashMap};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, DataPointFlags, Metric,
};
use prost::Message;
use sightline_model::sample::{is_stale_nan, stale_nan};
use sightline_model::{Labels, MetricMetadata, MetricType, Sample, TimeSeries, METRIC_NAME};

use crate::error::{Error, Result};
use crate::exposition::SeriesGrouper;
use crate::metric_names::{otel_metric_name, prometheus_unit, sanitize_label_name, OtelKind};
use crate::otlp_logs::any_json;

/// A decoded OTLP metrics request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OtlpMetrics {
    /// Gauges and cumulative points (and `target_info`), grouped per series with samples
    /// in time order: ready to append.
    pub series: Vec<TimeSeries>,
    /// Points of delta-temporality sums and histograms, in request order: each is the
    /// change over `(start_time_ns, timestamp]` and must be accumulated.
    pub deltas: Vec<DeltaPoint>,
    /// One entry per metric family, in order of first appearance.
    pub metadata: Vec<MetricMetadata>,
    /// Exponential histogram data points skipped (they have no float-series form here).
    pub skipped_exponential_points: usize,
}

/// One point of a delta-temporality series.
#[derive(Clone, Debug, PartialEq)]
pub struct DeltaPoint {
    pub labels: Labels,
    /// Start of the interval the change covers, in nanoseconds.
    pub start_time_ns: i64,
    pub timestamp_ms: i64,
    /// The change, or the staleness marker.
    pub value: f64,
}

/// Decodes an OTLP/protobuf metrics export request.
///
/// # Errors
/// [`Error::OtlpProtobuf`] when prost rejects the body, or a point breaks an OTLP rule
/// (time past 2262, histogram bucket counts that do not match the bounds), named by
/// resource, scope, metric and point.
pub fn decode_otlp_metrics_protobuf(body: &[u8], now_ns: i64) -> Result<OtlpMetrics> {
    let req = ExportMetricsServiceRequest::decode(body)
        .map_err(|e| Error::OtlpProtobuf(e.to_string()))?;
    convert(req, now_ns).map_err(Error::OtlpProtobuf)
}

/// Decodes an OTLP/JSON metrics export request (lowerCamelCase keys, 64-bit integers as
/// strings or numbers), via opentelemetry-proto's serde support.
///
/// # Errors
/// [`Error::OtlpJson`] when the JSON does not match the schema, or as for
/// [`decode_otlp_metrics_protobuf`].
pub fn decode_otlp_metrics_json(body: &[u8], now_ns: i64) -> Result<OtlpMetrics> {
    let req: ExportMetricsServiceRequest =
        serde_json::from_slice(body).map_err(|e| Error::OtlpJson(e.to_string()))?;
    convert(req, now_ns).map_err(Error::OtlpJson)
}

const NO_RECORDED_VALUE: u32 = DataPointFlags::NoRecordedValueMask as u32;

/// The collector of one request's output.
struct Out {
    series: SeriesGrouper,
    deltas: Vec<DeltaPoint>,
    metadata: Vec<MetricMetadata>,
    metadata_index: HashMap<String, usize>,
    skipped_exponential_points: usize,
    /// Latest point time (ms) of the resource being converted.
    latest_ms: Option<i64>,
}

impl Out {
    fn push(&mut self, delta: Option<i64>, labels: Labels, timestamp_ms: i64, value: f64) {
        self.latest_ms = Some(self.latest_ms.map_or(timestamp_ms, |t| t.max(timestamp_ms)));
        match delta {
            Some(start_time_ns) => self.deltas.push(DeltaPoint {
                labels,
                start_time_ns,
                timestamp_ms,
                value,
            }),
            None => self.series.push(
                labels,
                Sample {
                    timestamp_ms,
                    value,
                },
            ),
        }
    }

    fn describe(&mut self, family: &str, metric_type: MetricType, help: &str, unit: &str) {
        if !self.metadata_index.contains_key(family) {
            self.metadata_index
                .insert(family.to_string(), self.metadata.len());
            self.metadata.push(MetricMetadata {
                metric_family_name: family.to_string(),
                metric_type,
                help: help.to_string(),
                unit: unit.to_string(),
            });
        }
    }
}

fn convert(req: ExportMetricsServiceRequest, now_ns: i64) -> Result<OtlpMetrics, String> {
    let mut out = Out {
        series: SeriesGrouper::default(),
        deltas: Vec::new(),
        metadata: Vec::new(),
        metadata_index: HashMap::new(),
        skipped_exponential_points: 0,
        latest_ms: None,
    };
    for (ri, rm) in req.resource_metrics.into_iter().enumerate() {
        let mut name = String::new();
        let mut namespace = String::new();
        let mut instance = String::new();
        let mut other = Vec::new();
        for kv in rm.resource.map(|r| r.attributes).unwrap_or_default() {
            match kv.key.as_str() {
                "service.name" => name = kv.value.map(attr_text).unwrap_or_default(),
                "service.namespace" => namespace = kv.value.map(attr_text).unwrap_or_default(),
                "service.instance.id" => instance = kv.value.map(attr_text).unwrap_or_default(),
                _ => other.push(kv),
            }
        }
        let job = match (namespace.is_empty(), name.is_empty()) {
            (false, false) => format!("{namespace}/{name}"),
            _ => name,
        };
        out.latest_ms = None;
        for (si, sm) in rm.scope_metrics.into_iter().enumerate() {
            let (scope_name, scope_version) =
                sm.scope.map(|s| (s.name, s.version)).unwrap_or_default();
            let base = Base {
                job: &job,
                instance: &instance,
                scope_name: &scope_name,
                scope_version: &scope_version,
            };
            for (mi, metric) in sm.metrics.into_iter().enumerate() {
                let at = |pi: usize| {
                    format!(
                        "resource {}, scope {}, metric {} ({:?}), point {}",
                        ri + 1,
                        si + 1,
                        mi + 1,
                        metric.name,
                        pi + 1
                    )
                };
                convert_metric(&metric, &base, now_ns, &at, &mut out)?;
            }
        }
        if let (false, Some(ts)) = (other.is_empty(), out.latest_ms) {
            let labels = labels_of(
                other,
                &[
                    (METRIC_NAME, "target_info"),
                    ("job", &job),
                    ("instance", &instance),
                ],
            );
            out.series.push(
                labels,
                Sample {
                    timestamp_ms: ts,
                    value: 1.0,
                },
            );
            out.describe("target_info", MetricType::Gauge, "Target metadata", "");
        }
    }
    Ok(OtlpMetrics {
        series: out.series.finish(),
        deltas: out.deltas,
        metadata: out.metadata,
        skipped_exponential_points: out.skipped_exponential_points,
    })
}

/// Labels every series of a scope gets.
struct Base<'a> {
    job: &'a str,
    instance: &'a str,
    scope_name: &'a str,
    scope_version: &'a str,
}

impl Base<'_> {
    /// The labels of a point: sanitised attributes, then scope, job and instance, then
    /// `extra` (name, `le`, `quantile`), later ones winning.
    fn labels(&self, attrs: &[KeyValue], extra: &[(&str, &str)]) -> Labels {
        let mut fixed = vec![
            ("otel_scope_name", self.scope_name),
            ("otel_scope_version", self.scope_version),
            ("job", self.job),
            ("instance", self.instance),
        ];
        fixed.extend_from_slice(extra);
        labels_of(attrs.to_vec(), &fixed)
    }
}

/// Sanitised attributes (colliding keys' values joined with `;` in key order) overridden
/// by `fixed` pairs with a non-empty value.
fn labels_of(attrs: Vec<KeyValue>, fixed: &[(&str, &str)]) -> Labels {
    let mut by_key: BTreeMap<String, String> = BTreeMap::new();
    for kv in attrs {
        by_key.insert(kv.key, kv.value.map(attr_text).unwrap_or_default());
    }
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in by_key {
        let name = sanitize_label_name(&key);
        if name.is_empty() || value.is_empty() {
            continue;
        }
        map.entry(name)
            .and_modify(|v| {
                v.push(';');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    for (k, v) in fixed {
        if !v.is_empty() {
            map.insert((*k).to_string(), (*v).to_string());
        }
    }
    Labels::from_pairs(map).expect("BUG: a map has unique non-empty keys")
}

/// Nanoseconds to milliseconds (`now` for 0); `Err` for times past 2262.
fn time_ms(v: u64, now_ns: i64, at: &str) -> Result<i64, String> {
    let ns =
        i64::try_from(v).map_err(|_| format!("{at}: time_unix_nano {v} is past the year 2262"))?;
    Ok(if ns == 0 { now_ns } else { ns } / 1_000_000)
}

fn start_ns(v: u64, at: &str) -> Result<i64, String> {
    i64::try_from(v).map_err(|_| format!("{at}: start_time_unix_nano {v} is past the year 2262"))
}

/// `le`/`quantile` values as the collector writes them (Go's `FormatFloat(f, 'f', -1)`:
/// shortest exact decimal, no exponent), infinities as `+Inf`/`-Inf`.
fn bound_text(f: f64) -> String {
    if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else if f.is_nan() {
        "NaN".into()
    } else {
        format!("{f}")
    }
}

fn is_delta(temporality: i32) -> bool {
    temporality == AggregationTemporality::Delta as i32
}

fn convert_metric(
    metric: &Metric,
    base: &Base<'_>,
    now_ns: i64,
    at: &dyn Fn(usize) -> String,
    out: &mut Out,
) -> Result<(), String> {
    let unit = prometheus_unit(&metric.unit);
    let help = metric.description.as_str();
    let Some(data) = &metric.data else {
        return Ok(());
    };
    match data {
        Data::Gauge(_) | Data::Sum(_) => {
            let (points, kind, delta) = match data {
                Data::Gauge(g) => (&g.data_points, OtelKind::Gauge, false),
                Data::Sum(s) if s.is_monotonic => (
                    &s.data_points,
                    OtelKind::MonotonicSum,
                    is_delta(s.aggregation_temporality),
                ),
                Data::Sum(s) => (
                    &s.data_points,
                    OtelKind::NonMonotonicSum,
                    is_delta(s.aggregation_temporality),
                ),
                _ => unreachable!("BUG: matched gauge or sum above"),
            };
            let name = otel_metric_name(&metric.name, &metric.unit, kind);
            let t = match kind {
                OtelKind::MonotonicSum => MetricType::Counter,
                _ => MetricType::Gauge,
            };
            out.describe(&name, t, help, &unit);
            for (pi, p) in points.iter().enumerate() {
                let ts = time_ms(p.time_unix_nano, now_ns, &at(pi))?;
                let delta = match delta {
                    true => Some(start_ns(p.start_time_unix_nano, &at(pi))?),
                    false => None,
                };
                let value = if p.flags & NO_RECORDED_VALUE != 0 {
                    stale_nan()
                } else {
                    match p.value {
                        Some(number_data_point::Value::AsDouble(v)) => v,
                        Some(number_data_point::Value::AsInt(v)) => v as f64,
                        None => return Err(format!("{}: no value", at(pi))),
                    }
                };
                out.push(
                    delta,
                    base.labels(&p.attributes, &[(METRIC_NAME, &name)]),
                    ts,
                    value,
                );
            }
        }
        Data::Histogram(h) => {
            let name = otel_metric_name(&metric.name, &metric.unit, OtelKind::Histogram);
            out.describe(&name, MetricType::Histogram, help, &unit);
            let delta = is_delta(h.aggregation_temporality);
            let (bucket, sum, count) = (
                format!("{name}_bucket"),
                format!("{name}_sum"),
                format!("{name}_count"),
            );
            for (pi, p) in h.data_points.iter().enumerate() {
                let ts = time_ms(p.time_unix_nano, now_ns, &at(pi))?;
                let delta = match delta {
                    true => Some(start_ns(p.start_time_unix_nano, &at(pi))?),
                    false => None,
                };
                let n = p.explicit_bounds.len();
                if !p.bucket_counts.is_empty() && p.bucket_counts.len() != n + 1 {
                    return Err(format!(
                        "{}: {} bucket counts for {n} explicit bounds (expected {})",
                        at(pi),
                        p.bucket_counts.len(),
                        n + 1
                    ));
                }
                let stale = p.flags & NO_RECORDED_VALUE != 0;
                let v = |x: f64| if stale { stale_nan() } else { x };
                let mut cumulative = 0u64;
                for (i, bound) in p.explicit_bounds.iter().enumerate() {
                    cumulative =
                        cumulative.saturating_add(p.bucket_counts.get(i).copied().unwrap_or(0));
                    let le = bound_text(*bound);
                    let labels = base.labels(&p.attributes, &[(METRIC_NAME, &bucket), ("le", &le)]);
                    out.push(delta, labels, ts, v(cumulative as f64));
                }
                let labels = base.labels(&p.attributes, &[(METRIC_NAME, &bucket), ("le", "+Inf")]);
                out.push(delta, labels, ts, v(p.count as f64));
                if let Some(s) = p.sum {
                    out.push(
                        delta,
                        base.labels(&p.attributes, &[(METRIC_NAME, &sum)]),
                        ts,
                        v(s),
                    );
                }
                let labels = base.labels(&p.attributes, &[(METRIC_NAME, &count)]);
                out.push(delta, labels, ts, v(p.count as f64));
            }
        }
        Data::Summary(s) => {
            let name = otel_metric_name(&metric.name, &metric.unit, OtelKind::Summary);
            out.describe(&name, MetricType::Summary, help, &unit);
            let (sum, count) = (format!("{name}_sum"), format!("{name}_count"));
            for (pi, p) in s.data_points.iter().enumerate() {
                let ts = time_ms(p.time_unix_nano, now_ns, &at(pi))?;
                let stale = p.flags & NO_RECORDED_VALUE != 0;
                let v = |x: f64| if stale { stale_nan() } else { x };
                for q in &p.quantile_values {
                    let quantile = bound_text(q.quantile);
                    let labels = base.labels(
                        &p.attributes,
                        &[(METRIC_NAME, &name), ("quantile", &quantile)],
                    );
                    out.push(None, labels, ts, v(q.value));
                }
                out.push(
                    None,
                    base.labels(&p.attributes, &[(METRIC_NAME, &sum)]),
                    ts,
                    v(p.sum),
                );
                let labels = base.labels(&p.attributes, &[(METRIC_NAME, &count)]);
                out.push(None, labels, ts, v(p.count as f64));
            }
        }
        Data::ExponentialHistogram(e) => out.skipped_exponential_points += e.data_points.len(),
    }
    Ok(())
}

/// An attribute value as label text: strings as is, bytes as hex, others as JSON text.
fn attr_text(v: AnyValue) -> String {
    match v.value {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s,
        Some(any_value::Value::BytesValue(b)) => const_hex::encode(b),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(f)) => f.to_string(),
        Some(other) => any_json(other).to_string(),
    }
}

/// Turns delta points into cumulative values per series (labels), for the server to
/// keep across requests.
///
/// Rules: each series' total starts at 0 and adds every delta; a delta with the same
/// start time as the series' previous one is the same interval sent again (a retry) and
/// replaces it rather than adding; a NaN delta is returned as is and not added; the
/// staleness marker is returned as is and forgets the series (it starts from 0 again, a
/// counter reset to PromQL). State grows with the number of delta series: the caller
/// drops idle series with [`DeltaAccumulator::forget_idle`].
#[derive(Clone, Debug, Default)]
pub struct DeltaAccumulator {
    state: HashMap<Labels, DeltaState>,
}

#[derive(Clone, Copy, Debug)]
struct DeltaState {
    total: f64,
    last_start_ns: i64,
    last_value: f64,
    last_seen_ms: i64,
}

impl DeltaAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one delta of series `labels` (covering from `start_ns`, reported at
    /// `timestamp_ms`) and returns the series' cumulative value after it.
    pub fn add(&mut self, labels: &Labels, start_ns: i64, timestamp_ms: i64, value: f64) -> f64 {
        if is_stale_nan(value) {
            self.state.remove(labels);
            return value;
        }
        if value.is_nan() {
            return value;
        }
        match self.state.get_mut(labels) {
            Some(s) => {
                if s.last_start_ns == start_ns {
                    s.total = s.total - s.last_value + value;
                } else {
                    s.total += value;
                }
                s.last_start_ns = start_ns;
                s.last_value = value;
                s.last_seen_ms = s.last_seen_ms.max(timestamp_ms);
                s.total
            }
            None => {
                self.state.insert(
                    labels.clone(),
                    DeltaState {
                        total: value,
                        last_start_ns: start_ns,
                        last_value: value,
                        last_seen_ms: timestamp_ms,
                    },
                );
                value
            }
        }
    }

    /// The cumulative series of `deltas`: per series in time order (stable), grouped as
    /// [`OtlpMetrics::series`] is.
    pub fn accumulate(&mut self, mut deltas: Vec<DeltaPoint>) -> Vec<TimeSeries> {
        deltas.sort_by_key(|d| d.timestamp_ms);
        let mut out = SeriesGrouper::default();
        for d in deltas {
            let value = self.add(&d.labels, d.start_time_ns, d.timestamp_ms, d.value);
            out.push(
                d.labels,
                Sample {
                    timestamp_ms: d.timestamp_ms,
                    value,
                },
            );
        }
        out.finish()
    }

    /// Drops the state of series last reported before `before_ms`; returns how many.
    pub fn forget_idle(&mut self, before_ms: i64) -> usize {
        let n = self.state.len();
        self.state.retain(|_, s| s.last_seen_ms >= before_ms);
        n - self.state.len()
    }

    /// The number of series with state.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::metrics::v1::{
        summary_data_point::ValueAtQuantile, ExponentialHistogram, ExponentialHistogramDataPoint,
        Gauge, Histogram, HistogramDataPoint, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
        Summary, SummaryDataPoint,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use proptest::prelude::*;

    const NOW: i64 = 1_700_000_000_000_000_000;
    const T: u64 = 1_700_000_001_234_567_890;
    const T_MS: i64 = 1_700_000_001_234;

    fn kv(key: &str, v: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    fn request(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "lib".into(),
                        version: String::new(),
                        ..Default::default()
                    }),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn metric(name: &str, unit: &str, data: Data) -> Metric {
        Metric {
            name: name.into(),
            description: "d".into(),
            unit: unit.into(),
            data: Some(data),
            ..Default::default()
        }
    }

    fn number(v: f64, attrs: Vec<KeyValue>) -> NumberDataPoint {
        NumberDataPoint {
            attributes: attrs,
            start_time_unix_nano: 1_000,
            time_unix_nano: T,
            value: Some(number_data_point::Value::AsDouble(v)),
            ..Default::default()
        }
    }

    fn decode(req: &ExportMetricsServiceRequest) -> OtlpMetrics {
        let out = decode_otlp_metrics_protobuf(&req.encode_to_vec(), NOW).unwrap();
        let json = serde_json::to_vec(req).unwrap();
        assert_eq!(
            decode_otlp_metrics_json(&json, NOW).unwrap(),
            out,
            "json and protobuf differ"
        );
        out
    }

    /// Series as `labels value@ms` strings, for exact comparison.
    fn flat(series: &[TimeSeries]) -> Vec<String> {
        series
            .iter()
            .flat_map(|s| {
                s.samples
                    .iter()
                    .map(move |p| format!("{} {}@{}", s.labels, p.value, p.timestamp_ms))
            })
            .collect()
    }

    #[test]
    fn gauge_with_resource_job_instance_and_target_info() {
        let req = request(
            vec![
                kv("service.name", "api"),
                kv("service.namespace", "shop"),
                kv("service.instance.id", "pod-1"),
                kv("host.name", "h1"),
            ],
            vec![metric(
                "cpu.utilization",
                "1",
                Data::Gauge(Gauge {
                    data_points: vec![number(0.5, vec![kv("cpu.core", "0"), kv("_x", "y")])],
                }),
            )],
        );
        let out = decode(&req);
        assert_eq!(
            flat(&out.series),
            vec![
                format!(
                    r#"cpu_utilization_ratio{{cpu_core="0", instance="pod-1", job="shop/api", key_x="y", otel_scope_name="lib"}} 0.5@{T_MS}"#
                ),
                format!(
                    r#"target_info{{host_name="h1", instance="pod-1", job="shop/api"}} 1@{T_MS}"#
                ),
            ]
        );
        assert_eq!(out.metadata[0].metric_family_name, "cpu_utilization_ratio");
        assert_eq!(out.metadata[0].metric_type, MetricType::Gauge);
        assert_eq!(out.metadata[0].help, "d");
        assert_eq!(out.metadata[1].metric_family_name, "target_info");
        assert!(out.deltas.is_empty());
    }

    #[test]
    fn sums_counters_and_gauges() {
        let req = request(
            vec![kv("service.name", "api")],
            vec![
                metric(
                    "http.requests",
                    "{request}",
                    Data::Sum(Sum {
                        data_points: vec![number(10.0, vec![kv("code", "200")])],
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        is_monotonic: true,
                    }),
                ),
                metric(
                    "queue.bytes",
                    "By",
                    Data::Sum(Sum {
                        data_points: vec![number(-3.0, vec![])],
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        is_monotonic: false,
                    }),
                ),
            ],
        );
        let out = decode(&req);
        assert_eq!(
            flat(&out.series),
            vec![
                format!(
                    r#"http_requests_total{{code="200", job="api", otel_scope_name="lib"}} 10@{T_MS}"#
                ),
                format!(r#"queue_bytes{{job="api", otel_scope_name="lib"}} -3@{T_MS}"#),
            ]
        );
        assert_eq!(out.metadata[0].metric_type, MetricType::Counter);
        assert_eq!(out.metadata[1].metric_type, MetricType::Gauge);
        assert_eq!(out.metadata[1].unit, "bytes");
    }

    #[test]
    fn histogram_buckets_sum_count() {
        let req = request(
            vec![],
            vec![metric(
                "http.server.duration",
                "s",
                Data::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint {
                        time_unix_nano: T,
                        count: 6,
                        sum: Some(1.5),
                        bucket_counts: vec![1, 2, 3],
                        explicit_bounds: vec![0.005, 1.0],
                        ..Default::default()
                    }],
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                }),
            )],
        );
        let out = decode(&req);
        let n = "http_server_duration_seconds";
        assert_eq!(
            flat(&out.series),
            vec![
                format!(r#"{n}_bucket{{le="0.005", otel_scope_name="lib"}} 1@{T_MS}"#),
                format!(r#"{n}_bucket{{le="1", otel_scope_name="lib"}} 3@{T_MS}"#),
                format!(r#"{n}_bucket{{le="+Inf", otel_scope_name="lib"}} 6@{T_MS}"#),
                format!(r#"{n}_sum{{otel_scope_name="lib"}} 1.5@{T_MS}"#),
                format!(r#"{n}_count{{otel_scope_name="lib"}} 6@{T_MS}"#),
            ]
        );
        assert_eq!(out.metadata[0].metric_family_name, n);
        assert_eq!(out.metadata[0].metric_type, MetricType::Histogram);
        assert_eq!(out.metadata[0].unit, "seconds");
    }

    #[test]
    fn histogram_with_wrong_bucket_count_is_rejected() {
        let req = request(
            vec![],
            vec![metric(
                "h",
                "",
                Data::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint {
                        time_unix_nano: T,
                        bucket_counts: vec![1, 2],
                        explicit_bounds: vec![1.0, 2.0],
                        ..Default::default()
                    }],
                    aggregation_temporality: 2,
                }),
            )],
        );
        let err = decode_otlp_metrics_protobuf(&req.encode_to_vec(), NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot decode OTLP protobuf: resource 1, scope 1, metric 1 (\"h\"), point 1: 2 bucket counts for 2 explicit bounds (expected 3)"
        );
    }

    #[test]
    fn summary_quantiles_sum_count() {
        let req = request(
            vec![],
            vec![metric(
                "rpc.latency",
                "ms",
                Data::Summary(Summary {
                    data_points: vec![SummaryDataPoint {
                        time_unix_nano: T,
                        count: 4,
                        sum: 10.0,
                        quantile_values: vec![
                            ValueAtQuantile {
                                quantile: 0.5,
                                value: 2.0,
                            },
                            ValueAtQuantile {
                                quantile: 0.99,
                                value: 4.0,
                            },
                        ],
                        ..Default::default()
                    }],
                }),
            )],
        );
        let out = decode(&req);
        let n = "rpc_latency_milliseconds";
        assert_eq!(
            flat(&out.series),
            vec![
                format!(r#"{n}{{otel_scope_name="lib", quantile="0.5"}} 2@{T_MS}"#),
                format!(r#"{n}{{otel_scope_name="lib", quantile="0.99"}} 4@{T_MS}"#),
                format!(r#"{n}_sum{{otel_scope_name="lib"}} 10@{T_MS}"#),
                format!(r#"{n}_count{{otel_scope_name="lib"}} 4@{T_MS}"#),
            ]
        );
        assert_eq!(out.metadata[0].metric_type, MetricType::Summary);
    }

    #[test]
    fn exponential_histograms_are_skipped_and_counted() {
        let req = request(
            vec![],
            vec![metric(
                "e",
                "",
                Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: vec![ExponentialHistogramDataPoint::default(); 3],
                    aggregation_temporality: 2,
                }),
            )],
        );
        let out = decode(&req);
        assert!(out.series.is_empty());
        assert_eq!(out.skipped_exponential_points, 3);
    }

    #[test]
    fn no_recorded_value_is_a_staleness_marker_and_zero_time_is_now() {
        let mut p = number(5.0, vec![]);
        p.flags = NO_RECORDED_VALUE;
        let mut q = number(7.0, vec![kv("k", "v")]);
        q.time_unix_nano = 0;
        let req = request(
            vec![],
            vec![metric(
                "g",
                "",
                Data::Gauge(Gauge {
                    data_points: vec![p, q],
                }),
            )],
        );
        let out = decode_otlp_metrics_protobuf(&req.encode_to_vec(), NOW).unwrap();
        assert!(is_stale_nan(out.series[0].samples[0].value));
        assert_eq!(out.series[1].samples[0].timestamp_ms, NOW / 1_000_000);
        assert_eq!(out.series[1].samples[0].value, 7.0);
    }

    #[test]
    fn delta_sums_go_to_deltas_and_accumulate() {
        let mut p1 = number(2.0, vec![]);
        p1.start_time_unix_nano = 100;
        let mut p2 = number(3.0, vec![]);
        p2.start_time_unix_nano = 200;
        p2.time_unix_nano = T + 1_000_000_000;
        let req = request(
            vec![],
            vec![metric(
                "c",
                "",
                Data::Sum(Sum {
                    data_points: vec![p1, p2],
                    aggregation_temporality: AggregationTemporality::Delta as i32,
                    is_monotonic: true,
                }),
            )],
        );
        let out = decode(&req);
        assert!(out.series.is_empty());
        assert_eq!(out.deltas.len(), 2);
        assert_eq!(out.deltas[0].start_time_ns, 100);
        let mut acc = DeltaAccumulator::new();
        let cumulative = acc.accumulate(out.deltas);
        assert_eq!(
            flat(&cumulative),
            vec![
                format!(r#"c_total{{otel_scope_name="lib"}} 2@{T_MS}"#),
                format!(r#"c_total{{otel_scope_name="lib"}} 5@{}"#, T_MS + 1000),
            ]
        );
    }

    #[test]
    fn accumulator_rules() {
        let a = Labels::from_pairs([("__name__", "a")]).unwrap();
        let b = Labels::from_pairs([("__name__", "b")]).unwrap();
        let mut acc = DeltaAccumulator::new();
        assert_eq!(acc.add(&a, 0, 1, 2.0), 2.0);
        assert_eq!(acc.add(&a, 10, 2, 3.0), 5.0);
        // The same interval again (a retry) replaces rather than adds.
        assert_eq!(acc.add(&a, 10, 2, 4.0), 6.0);
        assert_eq!(acc.add(&b, 0, 2, 1.0), 1.0);
        assert!(acc.add(&a, 20, 3, f64::NAN).is_nan());
        assert_eq!(acc.add(&a, 30, 4, 1.0), 7.0);
        assert!(is_stale_nan(acc.add(&a, 40, 5, stale_nan())));
        assert_eq!(acc.add(&a, 50, 6, 1.0), 1.0, "stale restarts from zero");
        assert_eq!(acc.len(), 2);
        assert_eq!(acc.forget_idle(3), 1);
        assert_eq!(acc.len(), 1);
        assert_eq!(acc.add(&b, 60, 7, 1.0), 1.0, "forgotten series restart");
    }

    #[test]
    fn colliding_attribute_names_are_joined() {
        let req = request(
            vec![],
            vec![metric(
                "g",
                "",
                Data::Gauge(Gauge {
                    data_points: vec![number(
                        1.0,
                        vec![kv("a.b", "1"), kv("a_b", "2"), kv("le", "x")],
                    )],
                }),
            )],
        );
        let out = decode(&req);
        assert_eq!(out.series[0].labels.get("a_b"), Some("1;2"));
        assert_eq!(out.series[0].labels.get("le"), Some("x"));
    }

    #[test]
    fn bad_bodies_are_errors() {
        let err = decode_otlp_metrics_json(b"{\"resourceMetrics\": 5}", NOW).unwrap_err();
        assert!(
            err.to_string().starts_with("cannot decode OTLP JSON: "),
            "{err}"
        );
        let err = decode_otlp_metrics_protobuf(b"\xff\xff\xff", NOW).unwrap_err();
        assert!(
            err.to_string().starts_with("cannot decode OTLP protobuf: "),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn garbage_never_panics(body in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_otlp_metrics_protobuf(&body, NOW);
            let _ = decode_otlp_metrics_json(&body, NOW);
        }

        #[test]
        fn accumulated_total_is_the_sum(deltas in prop::collection::vec(0u32..1000, 1..20)) {
            let l = Labels::from_pairs([("__name__", "x")]).unwrap();
            let mut acc = DeltaAccumulator::new();
            let mut last = 0.0;
            for (i, d) in deltas.iter().enumerate() {
                last = acc.add(&l, i as i64, i as i64, f64::from(*d));
            }
            prop_assert_eq!(last, deltas.iter().map(|d| f64::from(*d)).sum::<f64>());
        }
    }
}
