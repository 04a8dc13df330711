//! Prometheus metric and label name rules: validation of names as Prometheus 2.x accepts
//! them (`[a-zA-Z_:][a-zA-Z0-9_:]*` for metric names, the same without `:` for label
//! names) and the OpenTelemetry → Prometheus name translation (metric names with unit and
//! type suffixes, attribute keys to label names).
//!
//! The translation follows the OpenTelemetry "Prometheus and OpenMetrics Compatibility"
//! spec as implemented by the collector's `pkg/translator/prometheus` (`normalize_name.go`,
//! `normalize_label.go`), with one deliberate difference: only ASCII letters and digits are
//! kept (the collector keeps any Unicode letter, which Prometheus 2.x then rejects).

/// Whether `name` is a valid Prometheus metric name.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// Whether `name` is a valid Prometheus label name.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The kind of an OTLP metric, as far as naming cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtelKind {
    Gauge,
    /// A monotonic sum: a Prometheus counter, named with `_total`.
    MonotonicSum,
    /// A non-monotonic sum: a Prometheus gauge (no `_ratio` suffix, as in the collector).
    NonMonotonicSum,
    Histogram,
    Summary,
}

/// OTLP (UCUM) units to Prometheus base-unit words, from the collector's `unitMap`.
/// Unknown units are used as written (cleaned to `[a-zA-Z0-9_]`).
const UNIT_WORDS: &[(&str, &str)] = &[
    ("d", "days"),
    ("h", "hours"),
    ("min", "minutes"),
    ("s", "seconds"),
    ("ms", "milliseconds"),
    ("us", "microseconds"),
    ("ns", "nanoseconds"),
    ("By", "bytes"),
    ("KiBy", "kibibytes"),
    ("MiBy", "mebibytes"),
    ("GiBy", "gibibytes"),
    ("TiBy", "tibibytes"),
    ("KBy", "kilobytes"),
    ("MBy", "megabytes"),
    ("GBy", "gigabytes"),
    ("TBy", "terabytes"),
    ("m", "meters"),
    ("V", "volts"),
    ("A", "amperes"),
    ("J", "joules"),
    ("W", "watts"),
    ("g", "grams"),
    ("Cel", "celsius"),
    ("Hz", "hertz"),
    ("1", ""),
    ("%", "percent"),
];

/// The "per" part of a unit (`By/s` → `bytes_per_second`), from the collector's `perUnitMap`.
const PER_UNIT_WORDS: &[(&str, &str)] = &[
    ("s", "second"),
    ("m", "minute"),
    ("h", "hour"),
    ("d", "day"),
    ("w", "week"),
    ("mo", "month"),
    ("y", "year"),
];

fn lookup(table: &[(&str, &'static str)], key: &str) -> Option<&'static str> {
    table.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// `s` split into runs of ASCII letters and digits (everything else separates).
fn tokens(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// The Prometheus unit word for an OTLP unit (`s` → `seconds`, `By/s` →
/// `bytes_per_second`, `{packets}` and `1` → empty), used as the metadata unit.
pub fn prometheus_unit(unit: &str) -> String {
    let mut out = Vec::new();
    unit_tokens(unit, &[], &mut out);
    out.join("_")
}

/// Appends the unit's tokens (skipping those already in `existing`) to `out`.
fn unit_tokens(unit: &str, existing: &[String], out: &mut Vec<String>) {
    let mut parts = unit.splitn(2, '/');
    let main = parts.next().unwrap_or("").trim();
    let has = |out: &Vec<String>, w: &str| existing.iter().chain(out.iter()).any(|t| t == w);
    if !main.is_empty() && !main.contains(['{', '}']) {
        let word = tokens(lookup(UNIT_WORDS, main).unwrap_or(main)).join("_");
        if !word.is_empty() && !has(out, &word) {
            out.push(word);
        }
    }
    if let Some(per) = parts.next().map(str::trim) {
        if !per.is_empty() && !per.contains(['{', '}']) {
            let word = tokens(lookup(PER_UNIT_WORDS, per).unwrap_or(per)).join("_");
            if !word.is_empty() && !has(out, &word) {
                out.push("per".into());
                out.push(word);
            }
        }
    }
}

/// The Prometheus metric name of an OTLP metric: the name split into ASCII alphanumeric
/// tokens joined by `_`, then the unit word unless already a token (`s` → `seconds`,
/// `By/s` → `bytes_per_second`, units in braces and `1` add nothing), then `_total` for
/// monotonic sums (moved to the end if present) or `_ratio` for gauges with unit `1`, and
/// a leading `_` when the result starts with a digit. Histogram and summary names are the
/// family name; the caller adds `_bucket`/`_sum`/`_count`.
pub fn otel_metric_name(name: &str, unit: &str, kind: OtelKind) -> String {
    let mut toks = tokens(name);
    let mut unit_toks = Vec::new();
    unit_tokens(unit, &toks, &mut unit_toks);
    toks.extend(unit_toks);
    if kind == OtelKind::MonotonicSum {
        toks.retain(|t| t != "total");
        toks.push("total".into());
    }
    if unit == "1" && kind == OtelKind::Gauge {
        toks.retain(|t| t != "ratio");
        toks.push("ratio".into());
    }
    let joined = toks.join("_");
    if joined.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{joined}")
    } else {
        joined
    }
}

/// The Prometheus label name of an OTLP attribute key: characters outside `[a-zA-Z0-9_]`
/// become `_`; a key starting with a digit gets `key_` in front, one starting with a
/// single `_` gets `key` in front (names starting `__` are Prometheus-reserved but kept, as
/// in the collector). Empty keys stay empty (the caller drops them).
pub fn sanitize_label_name(key: &str) -> String {
    if key.is_empty() {
        return String::new();
    }
    let cleaned: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.starts_with(|c: char| c.is_ascii_digit()) {
        format!("key_{cleaned}")
    } else if cleaned.starts_with('_') && !cleaned.starts_with("__") {
        format!("key{cleaned}")
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_validation() {
        for ok in ["up", "a:b_c", "_x", ":x", "node_cpu_seconds_total"] {
            assert!(is_valid_metric_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a.b", "é"] {
            assert!(!is_valid_metric_name(bad), "{bad}");
        }
        assert!(is_valid_label_name("__name__"));
        assert!(is_valid_label_name("le"));
        for bad in ["", "a:b", "1x", "a b"] {
            assert!(!is_valid_label_name(bad), "{bad}");
        }
    }

    #[test]
    fn otel_names_follow_collector_rules() {
        use OtelKind::*;
        let cases = [
            (
                "http.server.duration",
                "s",
                Histogram,
                "http_server_duration_seconds",
            ),
            (
                "http.server.duration",
                "ms",
                Histogram,
                "http_server_duration_milliseconds",
            ),
            (
                "system.network.io",
                "By",
                MonotonicSum,
                "system_network_io_bytes_total",
            ),
            ("requests_total", "", MonotonicSum, "requests_total"),
            ("total_requests", "", MonotonicSum, "requests_total"),
            ("queue.size", "{items}", NonMonotonicSum, "queue_size"),
            ("cpu.utilization", "1", Gauge, "cpu_utilization_ratio"),
            ("cpu.utilization", "1", NonMonotonicSum, "cpu_utilization"),
            ("throughput", "By/s", Gauge, "throughput_bytes_per_second"),
            ("latency_seconds", "s", Gauge, "latency_seconds"),
            ("2xx.count", "", Gauge, "_2xx_count"),
            ("mem", "MiBy", Gauge, "mem_mebibytes"),
            ("weird", "furlongs", Gauge, "weird_furlongs"),
            ("jobs", "{jobs}/min", Gauge, "jobs_per_min"),
        ];
        for (name, unit, kind, want) in cases {
            assert_eq!(otel_metric_name(name, unit, kind), want, "{name} {unit}");
        }
        assert_eq!(prometheus_unit("By/s"), "bytes_per_second");
        assert_eq!(prometheus_unit("1"), "");
        assert_eq!(prometheus_unit("{req}"), "");
    }

    #[test]
    fn label_sanitising() {
        assert_eq!(sanitize_label_name("http.method"), "http_method");
        assert_eq!(sanitize_label_name("0day"), "key_0day");
        assert_eq!(sanitize_label_name("_private"), "key_private");
        assert_eq!(sanitize_label_name("__reserved"), "__reserved");
        assert_eq!(sanitize_label_name("a-b/c"), "a_b_c");
        assert_eq!(sanitize_label_name(""), "");
    }
}
