//! Sightline's own metrics, exposed at `/metrics` in the Prometheus text format (0.0.4).
//!
//! Hand-written on purpose: the server needs a handful of labelled counters, one histogram
//! and gauges read from storage at scrape time; the text format is a few lines of
//! formatting, and a registry crate would add a dependency without removing any code here.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use sightline_storage::StoreStats;

/// Families: name, type, help. Every series rendered belongs to one of these.
const FAMILIES: &[(&str, &str, &str)] = &[
    (
        "sightline_ingested_records_total",
        "counter",
        "Records accepted, by signal and protocol.",
    ),
    (
        "sightline_ingested_bytes_total",
        "counter",
        "Request body bytes accepted (after decompression), by signal and protocol.",
    ),
    (
        "sightline_rejected_batches_total",
        "counter",
        "Batches rejected whole, by signal, protocol and reason.",
    ),
    (
        "sightline_queries_total",
        "counter",
        "Queries answered, by kind and outcome.",
    ),
];

/// Upper bounds of the query duration histogram, seconds: from a cached needle lookup to a
/// full scan of a large range.
const QUERY_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// The registry. Cheap enough to lock per request: one map update per batch or query.
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
    query_durations: Mutex<BTreeMap<String, Histogram>>,
    start_time: f64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            counters: Mutex::new(BTreeMap::new()),
            query_durations: Mutex::new(BTreeMap::new()),
            start_time: sightline_model::time::now_ns() as f64 / 1e9,
        }
    }

    /// Adds `by` to the counter `name{labels}`.
    ///
    /// # Panics
    /// When `name` is not one of [`FAMILIES`] (a bug).
    pub fn inc(&self, name: &'static str, labels: &[(&str, &str)], by: u64) {
        assert!(
            FAMILIES.iter().any(|(n, _, _)| *n == name),
            "BUG: metric {name} is not declared in FAMILIES"
        );
        let key = (name, render_labels(labels));
        *self
            .counters
            .lock()
            .expect("BUG: metrics lock poisoned")
            .entry(key)
            .or_default() += by;
    }

    /// Records one query of `kind` that took `secs`.
    pub fn observe_query(&self, kind: &str, secs: f64) {
        let mut h = self
            .query_durations
            .lock()
            .expect("BUG: metrics lock poisoned");
        let h = h.entry(kind.to_string()).or_default();
        if h.counts.is_empty() {
            h.counts = vec![0; QUERY_BUCKETS.len()];
        }
        for (i, le) in QUERY_BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// The exposition text; `store` is `None` until the WAL replay finished.
    pub fn render(&self, store: Option<StoreStats>) -> String {
        let mut out = String::new();
        let counters = self.counters.lock().expect("BUG: metrics lock poisoned");
        for (name, kind, help) in FAMILIES {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for ((n, labels), v) in counters.iter() {
                if n == name {
                    let _ = writeln!(out, "{name}{labels} {v}");
                }
            }
        }
        drop(counters);

        let name = "sightline_query_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Query latency, by kind.\n# TYPE {name} histogram"
        );
        for (kind, h) in self
            .query_durations
            .lock()
            .expect("BUG: metrics lock poisoned")
            .iter()
        {
            for (le, c) in QUERY_BUCKETS.iter().zip(&h.counts) {
                let _ = writeln!(out, "{name}_bucket{{kind=\"{kind}\",le=\"{le}\"}} {c}");
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{kind=\"{kind}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "{name}_sum{{kind=\"{kind}\"}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{kind=\"{kind}\"}} {}", h.count);
        }

        if let Some(s) = store {
            let gauges: [(&str, &str, &str, u64); 8] = [
                (
                    "sightline_wal_bytes",
                    "gauge",
                    "Bytes in WAL segments on disk.",
                    s.wal_bytes,
                ),
                (
                    "sightline_wal_segments",
                    "gauge",
                    "WAL segment files on disk.",
                    s.wal_segments,
                ),
                (
                    "sightline_parts",
                    "gauge",
                    "Event store parts on disk.",
                    s.parts,
                ),
                (
                    "sightline_part_bytes",
                    "gauge",
                    "Bytes in event store parts on disk.",
                    s.part_bytes,
                ),
                (
                    "sightline_buffered_rows",
                    "gauge",
                    "Rows committed but not yet flushed to parts.",
                    s.buffered_rows,
                ),
                (
                    "sightline_flushes_total",
                    "counter",
                    "Buffer flushes to parts.",
                    s.flushes_total,
                ),
                (
                    "sightline_merges_total",
                    "counter",
                    "Part merges.",
                    s.merges_total,
                ),
                (
                    "sightline_partitions_dropped_total",
                    "counter",
                    "Partitions dropped by retention.",
                    s.partitions_dropped_total,
                ),
            ];
            for (name, kind, help, v) in gauges {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP sightline_build_info Build of this Sightline.\n# TYPE sightline_build_info gauge\nsightline_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(
            out,
            "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {}",
            self.start_time
        );
        out
    }
}

/// `{a="x",b="y"}` with label values escaped per the text format.
fn render_labels(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let mut s = String::from("{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let v = v
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = write!(s, "{k}=\"{v}\"");
    }
    s.push('}');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::new();
        m.inc(
            "sightline_ingested_records_total",
            &[("signal", "logs"), ("protocol", "ndjson")],
            3,
        );
        m.inc(
            "sightline_ingested_records_total",
            &[("signal", "logs"), ("protocol", "ndjson")],
            2,
        );
        m.inc("sightline_rejected_batches_total", &[("reason", "a\"b")], 1);
        m.observe_query("logs", 0.02);
        let t = m.render(None);
        assert!(
            t.contains("sightline_ingested_records_total{signal=\"logs\",protocol=\"ndjson\"} 5\n"),
            "{t}"
        );
        assert!(
            t.contains("sightline_rejected_batches_total{reason=\"a\\\"b\"} 1\n"),
            "{t}"
        );
        assert!(
            t.contains("sightline_query_duration_seconds_bucket{kind=\"logs\",le=\"0.01\"} 0\n"),
            "{t}"
        );
        assert!(
            t.contains("sightline_query_duration_seconds_bucket{kind=\"logs\",le=\"0.025\"} 1\n"),
            "{t}"
        );
        assert!(
            t.contains("sightline_query_duration_seconds_count{kind=\"logs\"} 1\n"),
            "{t}"
        );
    }
}
