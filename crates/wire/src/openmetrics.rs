//! The OpenMetrics 1.0 text format (what `/api/v1/import/openmetrics` and `promtool tsdb
//! create-blocks-from openmetrics` accept) to grouped series and metadata, and back.
//!
//! Differences from the Prometheus text format ([`crate::exposition`]): timestamps are
//! seconds as floats, converted to milliseconds exactly as Prometheus 2.42 does
//! (`int64(ts * 1000)`: the float product truncated toward zero — not rounded, so that
//! both systems agree on every sample); the body must end with `# EOF` and nothing may
//! follow it; the only comments are `# HELP`, `# TYPE`, `# UNIT` and `# EOF`; blank lines
//! and blanks inside label sets are errors; HELP also unescapes `\"`; `# UNIT` must be a
//! suffix of its family name; a repeated `# TYPE` replaces the earlier one (promtool
//! accepts it). Sample names must fit
//! the current family's type: a counter `foo` has `foo_total` and `foo_created`, a
//! histogram `foo_bucket` (with `le`), `foo_sum`, `foo_count`, `foo_created`, a gauge
//! histogram `foo_bucket`, `foo_gsum`, `foo_gcount`, a summary `foo` (with `quantile`),
//! `foo_sum`, `foo_count`, `foo_created`, an info `foo_info`, gauges, statesets and
//! unknowns `foo` itself; the bare `foo` is accepted in every family (Prometheus 2.42 and
//! promtool do, and text-format output relabelled as OpenMetrics has `# TYPE x_total
//! counter` / `x_total 1`); a name that does not fit starts an implicit untyped family.
//! Stricter than Prometheus: a histogram `_bucket` needs `le` and a summary's bare sample
//! `quantile` (Prometheus would store them, and they break `histogram_quantile`). `_created`
//! samples are kept as ordinary series, as Prometheus 2.42 does. Exemplars (`# {...} v
//! [ts]` after a sample) are ignored.
//!
//! Hand-written for the same reasons as the text format parser, sharing its line scanner.

use std::fmt::Write as _;

use sightline_model::{Labels, MetricType, Sample, METRIC_NAME};

use crate::error::{Error, Result};
use crate::exposition::{
    escape, format_value, line_str, parse_float, unescape, write_series_name, LineCursor,
    MetadataCollector, MetricBatch, SeriesGrouper,
};
use crate::metric_names::is_valid_metric_name;

/// Parses an OpenMetrics text body. Samples without a timestamp get
/// `default_timestamp_ms`.
///
/// # Errors
/// [`Error::Exposition`] naming the line and column of the first invalid line, a missing
/// `# EOF` (named at the line after the last) or text after it.
pub fn parse_openmetrics(body: &[u8], default_timestamp_ms: i64) -> Result<MetricBatch> {
    let mut series = SeriesGrouper::default();
    let mut meta = MetadataCollector::default();
    let mut family: Option<(String, MetricType)> = None;
    let mut labels = Vec::new();
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    let mut lines = 0;
    if body.is_empty() {
        return Err(Error::Exposition {
            line: 1,
            column: 1,
            reason: "missing # EOF at the end of the body".into(),
        });
    }
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        lines = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let mut cur = LineCursor::new(line_str(raw, i + 1)?, i + 1);
        match cur.peek() {
            None => return Err(cur.error("blank lines are not allowed in OpenMetrics")),
            Some(b'#') => {
                if cur.text == "# EOF" {
                    if i + 1 < body.split(|&b| b == b'\n').count() {
                        return Err(Error::Exposition {
                            line: i + 2,
                            column: 1,
                            reason: "text after # EOF".into(),
                        });
                    }
                    return Ok(MetricBatch {
                        series: series.finish(),
                        metadata: meta.list,
                    });
                }
                metadata_line(&mut cur, &mut meta, &mut family)?;
            }
            Some(_) => {
                let (l, sample) =
                    sample_line(&mut cur, default_timestamp_ms, &mut labels, &mut family)?;
                series.push(l, sample);
            }
        }
    }
    Err(Error::Exposition {
        line: lines + 1,
        column: 1,
        reason: "missing # EOF at the end of the body".into(),
    })
}

/// `# HELP|TYPE|UNIT name text`.
fn metadata_line(
    cur: &mut LineCursor<'_>,
    meta: &mut MetadataCollector,
    family: &mut Option<(String, MetricType)>,
) -> Result<()> {
    let keyword = match cur.rest() {
        r if r.starts_with("# HELP ") => "HELP",
        r if r.starts_with("# TYPE ") => "TYPE",
        r if r.starts_with("# UNIT ") => "UNIT",
        _ => return Err(cur.error("unexpected comment (expected # HELP, # TYPE, # UNIT or # EOF)")),
    };
    cur.pos += 7;
    let name_at = cur.pos;
    let name = cur.metric_name();
    if !is_valid_metric_name(name) || !matches!(cur.peek(), None | Some(b' ')) {
        return Err(cur.error_at(name_at, format!("invalid metric name in # {keyword}")));
    }
    if cur.peek() == Some(b' ') {
        cur.pos += 1;
    }
    let text = cur.rest();
    match keyword {
        "HELP" => meta.entry(name).help = unescape(text, true),
        "UNIT" => {
            let is_suffix = name
                .strip_suffix(text)
                .is_some_and(|rest| rest.ends_with('_'));
            if !text.is_empty() && !is_suffix {
                return Err(cur.error(format!("unit {text:?} is not a suffix of metric {name:?}")));
            }
            meta.entry(name).unit = text.to_string();
        }
        _ => {
            let t = match MetricType::parse(text) {
                Some(t) if text != "untyped" => t,
                _ => {
                    return Err(cur.error(format!(
                        "invalid metric type {text:?} (expected counter, gauge, histogram, gaugehistogram, summary, info, stateset or unknown)"
                    )))
                }
            };
            meta.entry(name).metric_type = t;
        }
    }
    let t = meta
        .get(name)
        .map_or(MetricType::Unknown, |m| m.metric_type);
    *family = Some((name.to_string(), t));
    Ok(())
}

/// The sample-name suffixes a family of type `t` has (`""` is the family name itself).
fn suffixes(t: MetricType) -> &'static [&'static str] {
    match t {
        MetricType::Counter => &["_total", "_created"],
        MetricType::Histogram => &["_bucket", "_sum", "_count", "_created"],
        MetricType::GaugeHistogram => &["_bucket", "_gsum", "_gcount"],
        MetricType::Summary => &["", "_sum", "_count", "_created"],
        MetricType::Info => &["_info"],
        MetricType::Gauge | MetricType::StateSet | MetricType::Unknown => &[""],
    }
}

/// Whether a sample named family name + `suffix` belongs to a family of type `t`. The bare
/// family name always does, as in Prometheus 2.42 (`# TYPE x_total counter` / `x_total 1`
/// is common in text-format output relabelled as OpenMetrics).
fn fits(t: MetricType, suffix: &str) -> bool {
    suffix.is_empty() || suffixes(t).contains(&suffix)
}

/// `name{labels} value [timestamp] [# exemplar]`.
fn sample_line(
    cur: &mut LineCursor<'_>,
    default_timestamp_ms: i64,
    labels: &mut Vec<(String, String)>,
    family: &mut Option<(String, MetricType)>,
) -> Result<(Labels, Sample)> {
    labels.clear();
    let name_at = cur.pos;
    let name = cur.metric_name();
    if !is_valid_metric_name(name) {
        return Err(cur.error_at(name_at, "expected a metric name"));
    }
    labels.push((METRIC_NAME.to_string(), name.to_string()));
    if cur.peek() == Some(b'{') {
        cur.pos += 1;
        cur.label_set(false, labels)?;
    }
    // Which family the sample belongs to, and whether its name fits the family's type.
    if let Some((fam, t)) = family.as_ref() {
        match name.strip_prefix(fam.as_str()) {
            Some(suffix) if fits(*t, suffix) => {
                let needs = match (*t, suffix) {
                    (MetricType::Histogram | MetricType::GaugeHistogram, "_bucket") => Some("le"),
                    (MetricType::Summary, "") => Some("quantile"),
                    _ => None,
                };
                if let Some(label) = needs {
                    if !labels.iter().any(|(k, _)| k == label) {
                        return Err(cur.error_at(
                            name_at,
                            format!(
                                "sample {name:?} of {} {fam:?} has no {label:?} label",
                                t.as_str()
                            ),
                        ));
                    }
                }
            }
            _ => *family = None,
        }
    }
    if cur.peek() != Some(b' ') {
        return Err(cur.error("expected a space before the value"));
    }
    cur.pos += 1;
    let value_at = cur.pos;
    let text = cur.take_while(|b| b != b' ');
    if text.is_empty() {
        return Err(cur.error_at(value_at, "expected a value"));
    }
    let value = parse_float(text)
        .ok_or_else(|| cur.error_at(value_at, format!("invalid value {text:?}")))?;
    let mut timestamp_ms = default_timestamp_ms;
    if cur.peek() == Some(b' ') && !cur.rest().starts_with(" #") {
        cur.pos += 1;
        let ts_at = cur.pos;
        let text = cur.take_while(|b| b != b' ');
        let secs = parse_float(text).filter(|t| t.is_finite()).ok_or_else(|| {
            cur.error_at(
                ts_at,
                format!("invalid timestamp {text:?} (expected seconds)"),
            )
        })?;
        // Exactly Prometheus' `int64(ts * 1000)` (Rust's `as` saturates where Go's
        // conversion of an out-of-range float is undefined).
        timestamp_ms = (secs * 1000.0) as i64;
    }
    if !cur.at_end() && !cur.rest().starts_with(" # ") {
        return Err(cur.error(
            "unexpected text after the sample (expected end of line or ' # ' and an exemplar)",
        ));
    }
    let labels =
        Labels::from_pairs(labels.drain(..)).map_err(|e| cur.error_at(name_at, e.to_string()))?;
    Ok((
        labels,
        Sample {
            timestamp_ms,
            value,
        },
    ))
}

/// Milliseconds as OpenMetrics seconds that read back to the same milliseconds under
/// Prometheus' truncating conversion: `s.mmm` when that suffices, else `s.mmm5` (half a
/// millisecond away from zero, which truncates back to `mmm` whatever the float error).
pub fn format_openmetrics_timestamp(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    let plain = format!("{sign}{}.{:03}", abs / 1000, abs % 1000);
    let reads_back = |s: &str| s.parse::<f64>().map(|f| (f * 1000.0) as i64) == Ok(ms);
    if reads_back(&plain) {
        plain
    } else {
        format!("{plain}5")
    }
}

/// The batch in OpenMetrics: per metadata entry `# TYPE` (`unknown` for unknown), `# HELP`
/// and `# UNIT` when non-empty, followed by the series of that family (by the suffix
/// rules above); then the series of no described family; then `# EOF`. Reads back with
/// [`parse_openmetrics`] to an equal batch (series may be regrouped by family) when every
/// series fits its family and no two described families share series.
pub fn write_openmetrics(batch: &MetricBatch) -> String {
    let mut out = String::new();
    let mut written = vec![false; batch.series.len()];
    let write_series = |out: &mut String, i: usize| {
        let s = &batch.series[i];
        for p in &s.samples {
            write_series_name(out, &s.labels);
            let _ = writeln!(
                out,
                " {} {}",
                format_value(p.value),
                format_openmetrics_timestamp(p.timestamp_ms)
            );
        }
    };
    for m in &batch.metadata {
        let fam = &m.metric_family_name;
        let _ = writeln!(out, "# TYPE {fam} {}", m.metric_type.as_str());
        if !m.help.is_empty() {
            let _ = writeln!(out, "# HELP {fam} {}", escape(&m.help, true));
        }
        if !m.unit.is_empty() {
            let _ = writeln!(out, "# UNIT {fam} {}", m.unit);
        }
        for (i, s) in batch.series.iter().enumerate() {
            let fits = s.labels.metric_name().is_some_and(|n| {
                n.strip_prefix(fam.as_str())
                    .is_some_and(|suffix| fits(m.metric_type, suffix))
            });
            if fits && !written[i] {
                written[i] = true;
                write_series(&mut out, i);
            }
        }
    }
    for (i, done) in written.iter().enumerate() {
        if !done {
            write_series(&mut out, i);
        }
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::tests::arb_batch;
    use proptest::prelude::*;
    use sightline_model::MetricMetadata;

    fn parse(text: &str) -> Result<MetricBatch> {
        parse_openmetrics(text.as_bytes(), 42)
    }

    #[test]
    fn parses_families_with_suffixes() {
        let text =
            "# TYPE req counter\n# HELP req Requests \\\"served\\\".\n# UNIT req_seconds seconds\n\
            req_total{code=\"200\"} 10 1700000000.5\n\
            req_created{code=\"200\"} 1699990000\n\
            # TYPE lat histogram\n\
            lat_bucket{le=\"0.1\"} 1 1700000000\n\
            lat_bucket{le=\"+Inf\"} 2 1700000000\n\
            lat_sum 0.3 1700000000\n\
            lat_count 2 1700000000\n\
            # TYPE build info\n\
            build_info{version=\"1.2\"} 1 # {trace_id=\"abc\"} 1 1700000000\n\
            other 5\n\
            # EOF\n";
        let b = parse(text).unwrap();
        let names: Vec<String> = b.series.iter().map(|s| s.labels.to_string()).collect();
        assert_eq!(
            names,
            vec![
                r#"req_total{code="200"}"#,
                r#"req_created{code="200"}"#,
                r#"lat_bucket{le="0.1"}"#,
                r#"lat_bucket{le="+Inf"}"#,
                "lat_sum{}",
                "lat_count{}",
                r#"build_info{version="1.2"}"#,
                "other{}",
            ]
        );
        assert_eq!(b.series[0].samples[0].timestamp_ms, 1_700_000_000_500);
        assert_eq!(b.series[1].samples[0].value, 1_699_990_000.0);
        assert_eq!(b.series[1].samples[0].timestamp_ms, 42);
        assert_eq!(b.series[7].samples[0].timestamp_ms, 42);
        assert_eq!(b.metadata[0].help, "Requests \"served\".");
        assert_eq!(b.metadata[0].metric_type, MetricType::Counter);
        assert_eq!(
            b.metadata[1],
            MetricMetadata {
                metric_family_name: "req_seconds".into(),
                metric_type: MetricType::Unknown,
                help: String::new(),
                unit: "seconds".into()
            }
        );
        assert_eq!(b.metadata[3].metric_type, MetricType::Info);
    }

    #[test]
    fn accepts_client_golang_counters() {
        // Text-format output with `# EOF` added; promtool imports it.
        let text = "# HELP go_memstats_alloc_bytes_total Total bytes.\n\
            # TYPE go_memstats_alloc_bytes_total counter\n\
            go_memstats_alloc_bytes_total 3.1801352e+07\n# EOF\n";
        let b = parse(text).unwrap();
        assert_eq!(b.series[0].samples[0].value, 31_801_352.0);
        assert_eq!(b.metadata[0].metric_type, MetricType::Counter);
    }

    #[test]
    fn timestamps_truncate_like_prometheus() {
        // 0.0019 s * 1000 = 1.9 ms: Prometheus keeps 1, so do we.
        let b = parse("a 1 0.0019\na 2 -0.0019\na 3 1700000000.123\n# EOF").unwrap();
        let ts: Vec<i64> = b.series[0].samples.iter().map(|s| s.timestamp_ms).collect();
        assert_eq!(ts, vec![-1, 1, (1_700_000_000.123f64 * 1000.0) as i64]);
    }

    #[test]
    fn errors_name_line_and_column() {
        let cases = [
            ("a 1\n", "line 2, column 1: missing # EOF at the end of the body"),
            ("a 1\n# EOF\nb 2\n", "line 3, column 1: text after # EOF"),
            ("a 1\n\n# EOF\n", "line 2, column 1: blank lines are not allowed in OpenMetrics"),
            ("# random\n# EOF\n", "line 1, column 1: unexpected comment (expected # HELP, # TYPE, # UNIT or # EOF)"),
            ("# TYPE h histogram\nh_bucket 1\n# EOF\n", "line 2, column 1: sample \"h_bucket\" of histogram \"h\" has no \"le\" label"),
            ("# UNIT a_bytes seconds\n# EOF\n", "line 1, column 16: unit \"seconds\" is not a suffix of metric \"a_bytes\""),
            ("a{b=\"c\",} 1\n# EOF\n", "line 1, column 9: expected a label name"),
            ("# TYPE a untyped\n# EOF\n", "line 1, column 10: invalid metric type \"untyped\" (expected counter, gauge, histogram, gaugehistogram, summary, info, stateset or unknown)"),
            ("a 1 x\n# EOF\n", "line 1, column 5: invalid timestamp \"x\" (expected seconds)"),
            ("a 1 NaN\n# EOF\n", "line 1, column 5: invalid timestamp \"NaN\" (expected seconds)"),
            ("a{b=\"c\", d=\"e\"} 1\n# EOF\n", "line 1, column 9: expected a label name"),
            ("", "line 1, column 1: missing # EOF at the end of the body"),
            ("a 1 2 3\n# EOF\n", "line 1, column 6: unexpected text after the sample (expected end of line or ' # ' and an exemplar)"),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).unwrap_err().to_string(), want, "{text:?}");
        }
    }

    #[test]
    fn timestamp_format_reads_back() {
        for ms in [
            0,
            1,
            -1,
            999,
            1_700_000_000_123,
            -1_700_000_000_123,
            1_234_567_890_001,
        ] {
            let s = format_openmetrics_timestamp(ms);
            assert_eq!((s.parse::<f64>().unwrap() * 1000.0) as i64, ms, "{s}");
        }
        assert_eq!(format_openmetrics_timestamp(1500), "1.500");
    }

    #[test]
    fn writes_families_before_their_series() {
        let text = "# TYPE c counter\n# HELP c help\nc_total 1 1.000\nc_created 0 0.000\nx 2 2.000\n# EOF\n";
        let b = parse(text).unwrap();
        assert_eq!(write_openmetrics(&b), text);
    }

    fn arb_om_batch() -> impl Strategy<Value = MetricBatch> {
        (arb_batch(), any::<bool>()).prop_map(|(mut b, units)| {
            for m in &mut b.metadata {
                if units {
                    m.unit = m.metric_family_name["fam_".len()..].to_string();
                }
            }
            b
        })
    }

    proptest! {
        #[test]
        fn openmetrics_round_trips(batch in arb_om_batch()) {
            let text = write_openmetrics(&batch);
            let back = parse_openmetrics(text.as_bytes(), 0).unwrap();
            prop_assert_eq!(back, batch);
        }

        #[test]
        fn timestamps_round_trip(ms in -4_000_000_000_000_000i64..4_000_000_000_000_000) {
            let s = format_openmetrics_timestamp(ms);
            prop_assert_eq!((s.parse::<f64>().unwrap() * 1000.0) as i64, ms);
        }

        #[test]
        fn garbage_never_panics(body in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_openmetrics(&body, 0);
        }

        #[test]
        fn mutated_text_never_panics(batch in arb_om_batch(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut text = write_openmetrics(&batch).into_bytes();
            let i = at.index(text.len());
            text[i] = byte;
            if let Err(e) = parse_openmetrics(&text, 0) {
                prop_assert!(e.to_string().starts_with("line "));
            }
        }
    }
}
