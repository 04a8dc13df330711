//! Span metrics: RED series derived from every ingested span (before sampling), named and
//! labelled as the OpenTelemetry Collector's spanmetrics connector does once exported to
//! Prometheus:
//!
//! - `traces_span_metrics_calls_total` (counter),
//! - `traces_span_metrics_duration_seconds_bucket{le}`, `_sum`, `_count` (histogram),
//!
//! each labelled `service_name`, `span_name`, `span_kind` (`SPAN_KIND_SERVER`...) and
//! `status_code` (`STATUS_CODE_ERROR`...). An empty service or span name drops its label,
//! as an empty label value does everywhere in Prometheus.
//!
//! Fed by: the span ingest pipeline, one call per committed batch. Feeds: the metric store
//! (the returned samples are appended at ingest time).
//!
//! # State
//! Cumulative totals live in memory, per tenant and per (service, span name, kind, status)
//! key, until the process stops: a restart starts every counter at 0 again, which PromQL's
//! `rate`/`increase` read as a counter reset. Keys are never forgotten while running; a
//! tenant past [`MAX_KEYS_PER_TENANT`] keys has its further new keys counted in one overflow
//! series labelled only `otel_metric_overflow="true"` (the connector's
//! `aggregation_cardinality_limit` behaviour), so memory stays bounded per tenant.

use std::collections::HashMap;
use std::sync::Mutex;

use sightline_model::{
    Labels, MetricMetadata, MetricType, Sample, Span, Tenant, TimeSeries, METRIC_NAME,
};

/// Name of the calls counter.
pub const CALLS_TOTAL: &str = "traces_span_metrics_calls_total";
/// Family name of the duration histogram (series add `_bucket`, `_sum`, `_count`).
pub const DURATION_SECONDS: &str = "traces_span_metrics_duration_seconds";

/// Upper bounds of the duration buckets in seconds (`+Inf` implied): the connector's
/// default millisecond buckets (2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000,
/// 5000, 10000, 15000 ms), so dashboards built for the connector read the same `le` values.
pub const DURATION_BUCKETS: [f64; 16] = [
    0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.4, 2.0, 5.0, 10.0, 15.0,
];

/// Keys (series groups of 20 series each) one tenant may hold before new keys go to the
/// overflow series. 10 000 keys is 200 000 series: far above what a sane service/operation
/// set produces (operations named after raw URLs are the usual explosion this stops), yet
/// about 2 MB of state per tenant.
pub const MAX_KEYS_PER_TENANT: usize = 10_000;

/// Series per key: calls, one per bucket (`+Inf` included), `_sum`, `_count`.
const SERIES_PER_KEY: usize = DURATION_BUCKETS.len() + 4;

/// The label set one span is counted under.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    service: String,
    span_name: String,
    kind: &'static str,
    status: &'static str,
    /// The overflow key: every other field is empty.
    overflow: bool,
}

impl Key {
    fn overflow() -> Self {
        Key {
            service: String::new(),
            span_name: String::new(),
            kind: "",
            status: "",
            overflow: true,
        }
    }

    /// The key's labels without `__name__`.
    fn labels(&self) -> Labels {
        if self.overflow {
            return Labels::new().with("otel_metric_overflow", "true");
        }
        Labels::new()
            .with("service_name", &self.service)
            .with("span_name", &self.span_name)
            .with("span_kind", self.kind)
            .with("status_code", self.status)
    }
}

/// Running totals of one key.
#[derive(Clone, Debug, Default)]
struct Totals {
    /// Per-bucket (not cumulative) counts; the last slot is `(15, +Inf)`.
    buckets: [u64; DURATION_BUCKETS.len() + 1],
    count: u64,
    sum_seconds: f64,
}

impl Totals {
    fn add(&mut self, seconds: f64) {
        // Prometheus' `le` is inclusive: a 2 ms span is in the `le="0.002"` bucket.
        let i = DURATION_BUCKETS.partition_point(|&b| b < seconds);
        self.buckets[i] += 1;
        self.count += 1;
        self.sum_seconds += seconds;
    }

    fn merge(&mut self, other: &Totals) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.sum_seconds += other.sum_seconds;
    }
}

/// Cumulative span-metric state of every tenant.
#[derive(Debug, Default)]
pub struct SpanMetrics {
    tenants: Mutex<HashMap<Tenant, HashMap<Key, Totals>>>,
}

impl SpanMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `spans` to the running totals of `tenant` and returns the samples (at `now_ms`)
    /// of every series they changed, ready to append to the metric store: for each touched
    /// key its calls counter, every bucket (cumulative, `+Inf` last), `_sum` and `_count`.
    pub fn observe(&self, tenant: &Tenant, spans: &[Span], now_ms: i64) -> Vec<TimeSeries> {
        if spans.is_empty() {
            return Vec::new();
        }
        // Aggregate the batch under borrowed keys first: one allocation per distinct key per
        // batch rather than per span, which matters at hundreds of thousands of spans/s.
        let mut batch: HashMap<(&str, &str, &'static str, &'static str), Totals> = HashMap::new();
        let mut order = Vec::new();
        for span in spans {
            let k = (
                span.service.as_str(),
                span.name.as_str(),
                span.kind.otlp_name(),
                span.status_code.otlp_name(),
            );
            let seconds = span.duration().max(0) as f64 / 1e9;
            batch
                .entry(k)
                .or_insert_with(|| {
                    order.push(k);
                    Totals::default()
                })
                .add(seconds);
        }
        let mut tenants = self
            .tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let keys = tenants.entry(tenant.clone()).or_default();
        let mut touched: Vec<Key> = Vec::with_capacity(order.len());
        let mut overflow_touched = false;
        for k in order {
            let mut key = Key {
                service: k.0.to_string(),
                span_name: k.1.to_string(),
                kind: k.2,
                status: k.3,
                overflow: false,
            };
            if !keys.contains_key(&key) && keys.len() >= MAX_KEYS_PER_TENANT {
                key = Key::overflow();
            }
            let totals = keys.entry(key.clone()).or_default();
            totals.merge(&batch[&k]);
            // Only the overflow key can be reached twice.
            if !key.overflow || !overflow_touched {
                overflow_touched |= key.overflow;
                touched.push(key);
            }
        }
        let mut out = Vec::with_capacity(touched.len() * SERIES_PER_KEY);
        for key in &touched {
            render(key, &keys[key], now_ms, &mut out);
        }
        out
    }

    /// Metadata of the span-metric families (counter and histogram), to append with the
    /// first samples so `/api/v1/metadata` knows their types.
    pub fn metadata() -> Vec<MetricMetadata> {
        vec![
            MetricMetadata {
                metric_family_name: CALLS_TOTAL.to_string(),
                metric_type: MetricType::Counter,
                help: "Number of spans, by service, span name, kind and status".to_string(),
                unit: String::new(),
            },
            MetricMetadata {
                metric_family_name: DURATION_SECONDS.to_string(),
                metric_type: MetricType::Histogram,
                help: "Span durations, by service, span name, kind and status".to_string(),
                unit: "seconds".to_string(),
            },
        ]
    }
}

/// Appends the series of one key at `now_ms`.
fn render(key: &Key, totals: &Totals, now_ms: i64, out: &mut Vec<TimeSeries>) {
    let base = key.labels();
    let series = |name: &str, labels: Labels, value: f64| TimeSeries {
        labels: labels.with(METRIC_NAME, name),
        samples: vec![Sample {
            timestamp_ms: now_ms,
            value,
        }],
    };
    out.push(series(CALLS_TOTAL, base.clone(), totals.count as f64));
    let bucket_name = format!("{DURATION_SECONDS}_bucket");
    let mut cumulative = 0u64;
    for (i, n) in totals.buckets.iter().enumerate() {
        cumulative += n;
        let le = match DURATION_BUCKETS.get(i) {
            Some(b) => format_le(*b),
            None => "+Inf".to_string(),
        };
        out.push(series(
            &bucket_name,
            base.clone().with("le", &le),
            cumulative as f64,
        ));
    }
    out.push(series(
        &format!("{DURATION_SECONDS}_sum"),
        base.clone(),
        totals.sum_seconds,
    ));
    out.push(series(
        &format!("{DURATION_SECONDS}_count"),
        base,
        totals.count as f64,
    ));
}

/// A bucket bound as Prometheus writes it (Go's `strconv.FormatFloat(b, 'f', -1, 64)` for
/// these values): shortest round-trip decimal, no exponent, no trailing `.0`.
fn format_le(b: f64) -> String {
    // Rust's `Display` for f64 is the shortest round-trip form and never uses an exponent.
    format!("{b}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::{SpanKind, StatusCode};

    fn span(service: &str, name: &str, status: StatusCode, dur_ns: i64) -> Span {
        Span {
            service: service.into(),
            name: name.into(),
            kind: SpanKind::Server,
            status_code: status,
            start: 1_000,
            end: 1_000 + dur_ns,
            ..Span::default()
        }
    }

    fn value(out: &[TimeSeries], name: &str, extra: &[(&str, &str)]) -> Option<f64> {
        out.iter()
            .find(|s| {
                s.labels.metric_name() == Some(name)
                    && extra.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            })
            .map(|s| s.samples[0].value)
    }

    #[test]
    fn counts_equal_spans_per_key() {
        let m = SpanMetrics::new();
        let t = Tenant::default_tenant();
        let spans = vec![
            span("checkout", "GET /cart", StatusCode::Ok, 1_000_000),
            span("checkout", "GET /cart", StatusCode::Ok, 3_000_000),
            span("checkout", "GET /cart", StatusCode::Error, 5_000_000),
            span("payment", "charge", StatusCode::Unset, 7_000_000),
        ];
        let out = m.observe(&t, &spans, 42);
        let ok = [
            ("service_name", "checkout"),
            ("status_code", "STATUS_CODE_OK"),
        ];
        assert_eq!(value(&out, CALLS_TOTAL, &ok), Some(2.0));
        let err = [
            ("service_name", "checkout"),
            ("status_code", "STATUS_CODE_ERROR"),
        ];
        assert_eq!(value(&out, CALLS_TOTAL, &err), Some(1.0));
        let pay = [("service_name", "payment"), ("span_name", "charge")];
        assert_eq!(value(&out, CALLS_TOTAL, &pay), Some(1.0));
        let count = format!("{DURATION_SECONDS}_count");
        assert_eq!(value(&out, &count, &ok), Some(2.0));
        // 3 keys × (calls + 17 buckets + sum + count).
        assert_eq!(out.len(), 3 * 20);
        assert!(out.iter().all(|s| s.samples
            == vec![Sample {
                timestamp_ms: 42,
                value: s.samples[0].value
            }]));

        // Cumulative across batches; only touched keys are returned.
        let out = m.observe(&t, &spans[..1], 43);
        assert_eq!(out.len(), 20);
        assert_eq!(value(&out, CALLS_TOTAL, &ok), Some(3.0));
        assert_eq!(out[0].samples[0].timestamp_ms, 43);
    }

    #[test]
    fn labels_are_exactly_the_connectors() {
        let m = SpanMetrics::new();
        let out = m.observe(
            &Tenant::default_tenant(),
            &[span("svc", "op", StatusCode::Error, 1)],
            0,
        );
        let calls = &out[0];
        assert_eq!(
            calls.labels.to_string(),
            r#"traces_span_metrics_calls_total{service_name="svc", span_kind="SPAN_KIND_SERVER", span_name="op", status_code="STATUS_CODE_ERROR"}"#
        );
        let les: Vec<&str> = out.iter().filter_map(|s| s.labels.get("le")).collect();
        assert_eq!(
            les,
            [
                "0.002", "0.004", "0.006", "0.008", "0.01", "0.05", "0.1", "0.2", "0.4", "0.8",
                "1", "1.4", "2", "5", "10", "15", "+Inf"
            ]
        );
    }

    #[test]
    fn buckets_are_cumulative_monotone_and_sum_is_seconds() {
        let m = SpanMetrics::new();
        let durations_ns = [
            0,
            1_000_000,
            2_000_000,
            2_000_001,
            9_000_000,
            150_000_000,
            1_000_000_000,
            20_000_000_000,
        ];
        let spans: Vec<Span> = durations_ns
            .iter()
            .map(|&d| span("s", "op", StatusCode::Unset, d))
            .collect();
        let out = m.observe(&Tenant::default_tenant(), &spans, 0);
        let bucket = format!("{DURATION_SECONDS}_bucket");
        let b = |le: &str| value(&out, &bucket, &[("le", le)]).unwrap();
        // le is inclusive: 0, 1 ms and exactly 2 ms are in le="0.002".
        assert_eq!(b("0.002"), 3.0);
        assert_eq!(b("0.004"), 4.0);
        assert_eq!(b("0.01"), 5.0);
        assert_eq!(b("0.2"), 6.0);
        assert_eq!(b("1"), 7.0);
        assert_eq!(b("15"), 7.0);
        assert_eq!(b("+Inf"), 8.0);
        let values: Vec<f64> = out
            .iter()
            .filter(|s| s.labels.metric_name() == Some(bucket.as_str()))
            .map(|s| s.samples[0].value)
            .collect();
        assert_eq!(values.len(), 17);
        assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
        let sum = value(&out, &format!("{DURATION_SECONDS}_sum"), &[]).unwrap();
        let want: f64 = durations_ns.iter().map(|&d| d as f64 / 1e9).sum();
        assert!((sum - want).abs() < 1e-9, "{sum} vs {want}");
        assert_eq!(
            value(&out, &format!("{DURATION_SECONDS}_count"), &[]),
            Some(8.0)
        );
    }

    #[test]
    fn negative_durations_count_as_zero() {
        let m = SpanMetrics::new();
        let out = m.observe(
            &Tenant::default_tenant(),
            &[span("s", "op", StatusCode::Unset, -5)],
            0,
        );
        let sum = value(&out, &format!("{DURATION_SECONDS}_sum"), &[]);
        assert_eq!(sum, Some(0.0));
    }

    #[test]
    fn tenants_are_counted_apart() {
        let m = SpanMetrics::new();
        let a = Tenant::new("a").unwrap();
        let b = Tenant::new("b").unwrap();
        let s = [span("s", "op", StatusCode::Unset, 1)];
        m.observe(&a, &s, 0);
        m.observe(&a, &s, 0);
        let out = m.observe(&b, &s, 0);
        assert_eq!(value(&out, CALLS_TOTAL, &[]), Some(1.0));
    }

    #[test]
    fn keys_past_the_limit_go_to_the_overflow_series() {
        let m = SpanMetrics::new();
        let t = Tenant::default_tenant();
        let spans: Vec<Span> = (0..MAX_KEYS_PER_TENANT + 3)
            .map(|i| span("s", &format!("op{i}"), StatusCode::Unset, 1))
            .collect();
        let out = m.observe(&t, &spans, 0);
        let overflow = [("otel_metric_overflow", "true")];
        assert_eq!(value(&out, CALLS_TOTAL, &overflow), Some(3.0));
        assert_eq!(out.len(), (MAX_KEYS_PER_TENANT + 1) * 20);
        // A known key keeps counting under its own labels.
        let out = m.observe(&t, &spans[..1], 0);
        assert_eq!(value(&out, CALLS_TOTAL, &[("span_name", "op0")]), Some(2.0));
        assert_eq!(out.len(), 20);
        let state = m.tenants.lock().unwrap();
        assert_eq!(state[&t].len(), MAX_KEYS_PER_TENANT + 1);
    }

    #[test]
    fn empty_batch_changes_nothing() {
        let m = SpanMetrics::new();
        assert!(m.observe(&Tenant::default_tenant(), &[], 0).is_empty());
    }
}
