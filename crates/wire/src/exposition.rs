//! The Prometheus text exposition format 0.0.4 (what `/metrics` endpoints serve and
//! `/api/v1/import/prometheus` accepts) to grouped series and metadata, and back.
//!
//! Accepted as Prometheus 2.42's `promparse` does: `# HELP`/`# TYPE` lines (other
//! comments and blank lines ignored), `name{label="value",...} value [timestamp_ms]` with
//! spaces or tabs between the parts, a trailing comma in the label set, escapes `\\`,
//! `\"`, `\n` in label values and `\\`, `\n` in HELP (other escapes kept as written),
//! values as Go's `ParseFloat` reads them (`NaN`, `+Inf`, `-Inf`, exponents). A sample
//! without a timestamp gets the caller's default. Unlike a scrape, one body may hold many
//! samples of one series in any order (as VictoriaMetrics' endpoint of the same name): they
//! are grouped per series and sorted by time.
//!
//! Hand-written rather than using a crate because we need Prometheus' exact leniencies and
//! errors naming the line and column; the line scanner here is shared with
//! [`crate::openmetrics`].

use std::collections::HashMap;
use std::fmt::Write as _;

use sightline_model::{Labels, MetricMetadata, MetricType, Sample, TimeSeries, METRIC_NAME};

use crate::error::{Error, Result};
use crate::metric_names::{is_valid_label_name, is_valid_metric_name};

/// A decoded metrics body: series (each label set once, samples in time order, series in
/// order of first appearance) and metadata (one entry per family, in order of first
/// appearance).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricBatch {
    pub series: Vec<TimeSeries>,
    pub metadata: Vec<MetricMetadata>,
}

impl MetricBatch {
    /// The number of samples over all series.
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }
}

/// Collects samples per label set, keeping the order in which series first appear.
#[derive(Default)]
pub(crate) struct SeriesGrouper {
    index: HashMap<Labels, usize>,
    series: Vec<TimeSeries>,
}

impl SeriesGrouper {
    pub(crate) fn push(&mut self, labels: Labels, sample: Sample) {
        match self.index.get(&labels) {
            Some(&i) => self.series[i].samples.push(sample),
            None => {
                self.index.insert(labels.clone(), self.series.len());
                self.series.push(TimeSeries {
                    labels,
                    samples: vec![sample],
                });
            }
        }
    }

    /// The series, each with its samples stably sorted by timestamp.
    pub(crate) fn finish(self) -> Vec<TimeSeries> {
        let mut series = self.series;
        for s in &mut series {
            s.samples.sort_by_key(|p| p.timestamp_ms);
        }
        series
    }
}

/// Collects `# TYPE`/`# HELP`/`# UNIT` per family in order of first appearance.
#[derive(Default)]
pub(crate) struct MetadataCollector {
    index: HashMap<String, usize>,
    pub(crate) list: Vec<MetricMetadata>,
}

impl MetadataCollector {
    pub(crate) fn entry(&mut self, family: &str) -> &mut MetricMetadata {
        let i = *self.index.entry(family.to_string()).or_insert_with(|| {
            self.list.push(MetricMetadata {
                metric_family_name: family.to_string(),
                ..Default::default()
            });
            self.list.len() - 1
        });
        &mut self.list[i]
    }

    pub(crate) fn get(&self, family: &str) -> Option<&MetricMetadata> {
        self.index.get(family).map(|&i| &self.list[i])
    }
}

/// Label sets up to this size are checked for duplicate names as they are read (real
/// series have a few dozen labels at most); beyond it the quadratic scan is skipped.
const MAX_LINEAR_DUPLICATE_CHECK: usize = 64;

/// A cursor over one line that makes errors carrying the line number and column.
pub(crate) struct LineCursor<'a> {
    pub(crate) text: &'a str,
    pub(crate) pos: usize,
    pub(crate) line: usize,
}

impl<'a> LineCursor<'a> {
    pub(crate) fn new(text: &'a str, line: usize) -> Self {
        LineCursor { text, pos: 0, line }
    }

    pub(crate) fn error_at(&self, pos: usize, reason: impl Into<String>) -> Error {
        Error::Exposition {
            line: self.line,
            column: pos + 1,
            reason: reason.into(),
        }
    }

    pub(crate) fn error(&self, reason: impl Into<String>) -> Error {
        self.error_at(self.pos, reason)
    }

    pub(crate) fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    /// Skips spaces and tabs; returns how many were skipped.
    pub(crate) fn skip_blanks(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Takes bytes while `pred` holds.
    pub(crate) fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    /// A run of characters up to a space or tab (or the end).
    pub(crate) fn token(&mut self) -> &'a str {
        self.take_while(|b| b != b' ' && b != b'\t')
    }

    /// A metric name at the cursor (possibly empty: the caller checks).
    pub(crate) fn metric_name(&mut self) -> &'a str {
        self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
    }

    /// A `{name="value",...}` label set after the opening brace (already consumed), up to
    /// and including the closing brace. `lenient` allows blanks around the parts (the
    /// Prometheus text format does, OpenMetrics does not).
    pub(crate) fn label_set(
        &mut self,
        lenient: bool,
        out: &mut Vec<(String, String)>,
    ) -> Result<()> {
        let mut first = true;
        loop {
            if lenient {
                self.skip_blanks();
            }
            // Here after `{` or `,`. OpenMetrics (like promtool) has no trailing comma:
            // `}` here only for an empty set.
            if self.peek() == Some(b'}') && (lenient || first) {
                self.pos += 1;
                return Ok(());
            }
            let start = self.pos;
            let name = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !is_valid_label_name(name) {
                return Err(self.error_at(start, "expected a label name"));
            }
            if lenient {
                self.skip_blanks();
            }
            if self.peek() != Some(b'=') {
                return Err(self.error(format!("expected '=' after label name {name:?}")));
            }
            self.pos += 1;
            if lenient {
                self.skip_blanks();
            }
            if self.peek() != Some(b'"') {
                return Err(
                    self.error(format!("expected '\"' to open the value of label {name:?}"))
                );
            }
            self.pos += 1;
            let value = self.quoted(name)?;
            // Checked here, to name the column, while the set is small; a huge label set
            // is checked by `Labels::from_pairs` (sorting) so a line cannot cost O(n²).
            if out.len() <= MAX_LINEAR_DUPLICATE_CHECK && out.iter().any(|(n, _)| n == name) {
                return Err(self.error_at(start, format!("duplicate label name {name:?}")));
            }
            out.push((name.to_string(), value));
            first = false;
            if lenient {
                self.skip_blanks();
            }
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error("expected ',' or '}' after a label value")),
            }
        }
    }

    /// A label value after its opening quote, through the closing quote, unescaped.
    fn quoted(&mut self, name: &str) -> Result<String> {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        let mut i = self.pos;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => {
                    let raw = &self.text[start..i];
                    self.pos = i + 1;
                    return Ok(unescape(raw, true));
                }
                _ => i += 1,
            }
        }
        Err(self.error_at(start, format!("unterminated value of label {name:?}")))
    }
}

/// Undoes `\\`, `\n` and (when `quote`) `\"`; other escapes are kept as written, as in
/// Prometheus' replacers.
pub(crate) fn unescape(raw: &str, quote: bool) -> String {
    if !raw.contains('\\') {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quote => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Escapes a label value (`quote`) or HELP text for writing.
pub(crate) fn escape(s: &str, quote: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// A sample value as Go's `strconv.ParseFloat` reads it: decimal or exponent notation,
/// `NaN`, `Inf`/`Infinity` with an optional sign, in any case.
pub(crate) fn parse_float(s: &str) -> Option<f64> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    // Rust's parser accepts the same decimal, `inf`, `infinity` and `nan` forms as Go's;
    // Go's hex floats and `_` separators (with a base prefix) are not accepted: no
    // exporter writes them.
    if unsigned.is_empty()
        || !unsigned
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'+' || b == b'-')
    {
        return None;
    }
    s.parse::<f64>().ok()
}

/// A value for writing: integers without a fraction, otherwise the shortest text that
/// reads back to the same bits; `NaN`, `+Inf`, `-Inf` as Prometheus writes them.
pub(crate) fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else if v == v.trunc() && v.abs() < 1e15 && !(v == 0.0 && v.is_sign_negative()) {
        format!("{}", v as i64)
    } else {
        format!("{v:?}")
    }
}

/// The text of line `line` (1-based) as UTF-8, or an error naming the first bad byte.
pub(crate) fn line_str(raw: &[u8], line: usize) -> Result<&str> {
    std::str::from_utf8(raw).map_err(|e| Error::Exposition {
        line,
        column: e.valid_up_to() + 1,
        reason: "invalid UTF-8".into(),
    })
}

/// Parses a Prometheus text exposition body. Samples without a timestamp get
/// `default_timestamp_ms`.
///
/// # Errors
/// [`Error::Exposition`] naming the line and column of the first line that is not a
/// comment, blank or a valid sample (bad name, label set, value or timestamp, duplicate
/// label, unknown `# TYPE`).
pub fn parse_prometheus_text(body: &[u8], default_timestamp_ms: i64) -> Result<MetricBatch> {
    let mut series = SeriesGrouper::default();
    let mut meta = MetadataCollector::default();
    let mut labels = Vec::new();
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let mut cur = LineCursor::new(line_str(raw, i + 1)?, i + 1);
        cur.skip_blanks();
        match cur.peek() {
            None => continue,
            Some(b'#') => {
                cur.pos += 1;
                comment(&mut cur, &mut meta)?;
            }
            Some(_) => {
                let (l, sample) = sample_line(&mut cur, default_timestamp_ms, &mut labels)?;
                series.push(l, sample);
            }
        }
    }
    Ok(MetricBatch {
        series: series.finish(),
        metadata: meta.list,
    })
}

/// A comment line after its `#`: HELP and TYPE are recorded, others ignored.
fn comment(cur: &mut LineCursor<'_>, meta: &mut MetadataCollector) -> Result<()> {
    if cur.skip_blanks() == 0 {
        return Ok(());
    }
    let keyword = cur.token();
    if keyword != "HELP" && keyword != "TYPE" {
        return Ok(());
    }
    if cur.skip_blanks() == 0 {
        return Ok(());
    }
    let name_at = cur.pos;
    let name = cur.metric_name();
    if !is_valid_metric_name(name) || !matches!(cur.peek(), None | Some(b' ' | b'\t')) {
        return Err(cur.error_at(name_at, format!("invalid metric name in # {keyword}")));
    }
    cur.skip_blanks();
    if keyword == "HELP" {
        meta.entry(name).help = unescape(cur.rest(), false);
        return Ok(());
    }
    let type_at = cur.pos;
    let t = cur.token();
    cur.skip_blanks();
    let metric_type = match MetricType::parse(t) {
        Some(
            t @ (MetricType::Counter
            | MetricType::Gauge
            | MetricType::Histogram
            | MetricType::Summary
            | MetricType::Unknown),
        ) if cur.at_end() => t,
        _ => {
            return Err(cur.error_at(
                type_at,
                format!(
                "invalid metric type {:?} (expected counter, gauge, histogram, summary or untyped)",
                cur.text[type_at..].trim_end()
            ),
            ))
        }
    };
    meta.entry(name).metric_type = metric_type;
    Ok(())
}

/// `name{labels} value [timestamp]` in the text format.
fn sample_line(
    cur: &mut LineCursor<'_>,
    default_timestamp_ms: i64,
    labels: &mut Vec<(String, String)>,
) -> Result<(Labels, Sample)> {
    labels.clear();
    let name_at = cur.pos;
    let name = cur.metric_name();
    if !is_valid_metric_name(name) {
        return Err(cur.error_at(name_at, "expected a metric name"));
    }
    labels.push((METRIC_NAME.to_string(), name.to_string()));
    let mut blanks = cur.skip_blanks();
    if cur.peek() == Some(b'{') {
        cur.pos += 1;
        cur.label_set(true, labels)?;
        blanks = cur.skip_blanks();
    }
    if blanks == 0 && !cur.at_end() {
        return Err(cur.error("expected a blank before the value"));
    }
    let value_at = cur.pos;
    let text = cur.token();
    if text.is_empty() {
        return Err(cur.error_at(value_at, "expected a value"));
    }
    let value = parse_float(text)
        .ok_or_else(|| cur.error_at(value_at, format!("invalid value {text:?}")))?;
    cur.skip_blanks();
    let mut timestamp_ms = default_timestamp_ms;
    if !cur.at_end() {
        let ts_at = cur.pos;
        let text = cur.token();
        timestamp_ms = text.parse::<i64>().map_err(|_| {
            cur.error_at(
                ts_at,
                format!("invalid timestamp {text:?} (expected integer milliseconds)"),
            )
        })?;
        cur.skip_blanks();
        if !cur.at_end() {
            return Err(cur.error("unexpected text after the timestamp"));
        }
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

/// Writes `labels` as `name{a="x",b="y"}` (the braces left out when there are no other
/// labels).
pub(crate) fn write_series_name(out: &mut String, labels: &Labels) {
    out.push_str(labels.metric_name().unwrap_or(""));
    let mut first = true;
    for (k, v) in labels.iter().filter(|(k, _)| *k != METRIC_NAME) {
        out.push(if first { '{' } else { ',' });
        first = false;
        let _ = write!(out, "{k}=\"{}\"", escape(v, true));
    }
    if !first {
        out.push('}');
    }
}

/// The batch in the text format: `# HELP` (when non-empty) and `# TYPE` per metadata entry
/// (units are not part of this format and are left out), then every sample with its
/// millisecond timestamp. Series should have a metric name; `parse_prometheus_text` reads
/// the result back to an equal batch when metadata units are empty.
pub fn write_prometheus_text(batch: &MetricBatch) -> String {
    let mut out = String::new();
    for m in &batch.metadata {
        if !m.help.is_empty() {
            let _ = writeln!(
                out,
                "# HELP {} {}",
                m.metric_family_name,
                escape(&m.help, false)
            );
        }
        let t = match m.metric_type {
            MetricType::Unknown => "untyped",
            t => t.as_str(),
        };
        let _ = writeln!(out, "# TYPE {} {t}", m.metric_family_name);
    }
    for s in &batch.series {
        for p in &s.samples {
            write_series_name(&mut out, &s.labels);
            let _ = writeln!(out, " {} {}", format_value(p.value), p.timestamp_ms);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    const DEFAULT_TS: i64 = 1_700_000_000_000;

    fn series(text: &str) -> Vec<(String, Vec<(i64, f64)>)> {
        parse_prometheus_text(text.as_bytes(), DEFAULT_TS)
            .unwrap()
            .series
            .into_iter()
            .map(|s| {
                (
                    s.labels.to_string(),
                    s.samples
                        .iter()
                        .map(|p| (p.timestamp_ms, p.value))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn parses_a_node_exporter_style_body() {
        let text = "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n\
            # TYPE node_cpu_seconds_total counter\n\
            node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 1234.5\n\
            node_cpu_seconds_total{cpu=\"0\",mode=\"user\",} 12 1700000001000\n\
            \n\
            # some comment\n\
            go_goroutines 7\n";
        let batch = parse_prometheus_text(text.as_bytes(), DEFAULT_TS).unwrap();
        assert_eq!(
            batch.metadata,
            vec![MetricMetadata {
                metric_family_name: "node_cpu_seconds_total".into(),
                metric_type: MetricType::Counter,
                help: "Seconds the CPUs spent in each mode.".into(),
                unit: String::new(),
            }]
        );
        assert_eq!(
            series(text),
            vec![
                (
                    r#"node_cpu_seconds_total{cpu="0", mode="idle"}"#.to_string(),
                    vec![(DEFAULT_TS, 1234.5)]
                ),
                (
                    r#"node_cpu_seconds_total{cpu="0", mode="user"}"#.to_string(),
                    vec![(1_700_000_001_000, 12.0)]
                ),
                ("go_goroutines{}".to_string(), vec![(DEFAULT_TS, 7.0)]),
            ]
        );
    }

    #[test]
    fn groups_samples_of_a_series_in_any_order() {
        let text = "a 3 3000\nb 1 1000\na{} 1 1000\na 2 2000\n";
        assert_eq!(
            series(text),
            vec![
                ("a{}".into(), vec![(1000, 1.0), (2000, 2.0), (3000, 3.0)]),
                ("b{}".into(), vec![(1000, 1.0)]),
            ]
        );
    }

    #[test]
    fn special_values_escapes_and_blanks() {
        let text = "x{p=\"a\\\"b\\\\c\\nd\\t\"}\tNaN\nx +Inf\ny  -Inf   5\r\nz 1e3\n# HELP z a\\\\b\\nc\\\"\n";
        let b = parse_prometheus_text(text.as_bytes(), DEFAULT_TS).unwrap();
        assert_eq!(b.series[0].labels.get("p"), Some("a\"b\\c\nd\\t"));
        assert!(b.series[0].samples[0].value.is_nan());
        assert_eq!(b.series[1].samples[0].value, f64::INFINITY);
        assert_eq!(b.series[2].samples[0].value, f64::NEG_INFINITY);
        assert_eq!(b.series[2].samples[0].timestamp_ms, 5);
        assert_eq!(b.series[3].samples[0].value, 1000.0);
        assert_eq!(b.metadata[0].help, "a\\b\nc\\\"");
    }

    #[test]
    fn errors_name_line_and_column() {
        let cases = [
            ("ok 1\n1bad 2\n", "line 2, column 1: expected a metric name"),
            ("a{b=\"c\" 1\n", "line 1, column 9: expected ',' or '}' after a label value"),
            ("a{b=\"c\",b=\"d\"} 1\n", "line 1, column 9: duplicate label name \"b\""),
            ("a xyz\n", "line 1, column 3: invalid value \"xyz\""),
            ("a 1 1.5\n", "line 1, column 5: invalid timestamp \"1.5\" (expected integer milliseconds)"),
            ("a 1 2 3\n", "line 1, column 7: unexpected text after the timestamp"),
            ("a{b=\"c\n", "line 1, column 6: unterminated value of label \"b\""),
            ("# TYPE a bogus\n", "line 1, column 10: invalid metric type \"bogus\" (expected counter, gauge, histogram, summary or untyped)"),
            ("a\n", "line 1, column 2: expected a value"),
            ("a{1=\"x\"} 1\n", "line 1, column 3: expected a label name"),
        ];
        for (text, want) in cases {
            let err = parse_prometheus_text(text.as_bytes(), 0).unwrap_err();
            assert_eq!(err.to_string(), want, "{text:?}");
        }
        let err = parse_prometheus_text(b"a 1\nb\xff 2\n", 0).unwrap_err();
        assert_eq!(err.to_string(), "line 2, column 2: invalid UTF-8");
    }

    #[test]
    fn duplicate_in_a_huge_label_set_is_still_an_error() {
        let mut line = String::from("m{");
        for i in 0..200 {
            line.push_str(&format!("l{i}=\"v\","));
        }
        line.push_str("l150=\"again\"} 1\n");
        let err = parse_prometheus_text(line.as_bytes(), 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1, column 1: invalid labels: duplicate label name \"l150\""
        );
    }

    #[test]
    fn untyped_and_write_format() {
        let b = parse_prometheus_text(b"# TYPE u untyped\nu 1\n", 0).unwrap();
        assert_eq!(b.metadata[0].metric_type, MetricType::Unknown);
        let text = write_prometheus_text(&b);
        assert_eq!(text, "# TYPE u untyped\nu 1 0\n");
        let labels = Labels::from_pairs([("__name__", "m"), ("q", "a\"\n\\")]).unwrap();
        let batch = MetricBatch {
            series: vec![TimeSeries {
                labels,
                samples: vec![Sample {
                    timestamp_ms: -5,
                    value: 0.1,
                }],
            }],
            metadata: vec![],
        };
        assert_eq!(
            write_prometheus_text(&batch),
            "m{q=\"a\\\"\\n\\\\\"} 0.1 -5\n"
        );
    }

    pub(crate) fn arb_batch() -> impl Strategy<Value = MetricBatch> {
        let value = prop_oneof![
            any::<f64>().prop_filter("not NaN", |v| !v.is_nan()),
            (-1000i64..1000).prop_map(|v| v as f64),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
        ];
        let samples =
            prop::collection::btree_map(-1_000_000_000_000i64..4_000_000_000_000, value, 1..4);
        let labels = (
            "[a-zA-Z_:][a-zA-Z0-9_:]{0,6}",
            prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,5}", "\\PC{0,6}", 0..3),
        )
            .prop_map(|(name, rest)| {
                Labels::from_pairs(
                    rest.into_iter()
                        .filter(|(k, _)| k != METRIC_NAME)
                        .chain([(METRIC_NAME.to_string(), name)]),
                )
                .unwrap()
            });
        let series = prop::collection::btree_map(labels, samples, 0..5).prop_map(|m| {
            m.into_iter()
                .map(|(labels, samples)| TimeSeries {
                    labels,
                    samples: samples
                        .into_iter()
                        .map(|(timestamp_ms, value)| Sample {
                            timestamp_ms,
                            value,
                        })
                        .collect(),
                })
                .collect::<Vec<_>>()
        });
        let meta_type = prop_oneof![
            Just(MetricType::Counter),
            Just(MetricType::Gauge),
            Just(MetricType::Histogram),
            Just(MetricType::Summary),
            Just(MetricType::Unknown),
        ];
        let metadata =
            prop::collection::btree_map("fam_[a-z]{1,5}", (meta_type, "\\PC{0,10}"), 0..3)
                .prop_map(|m| {
                    m.into_iter()
                        .map(|(name, (metric_type, help))| MetricMetadata {
                            metric_family_name: name,
                            metric_type,
                            help: help.trim_start_matches([' ', '\t']).to_string(),
                            unit: String::new(),
                        })
                        .collect::<Vec<_>>()
                });
        (series, metadata).prop_map(|(series, metadata)| MetricBatch { series, metadata })
    }

    proptest! {
        #[test]
        fn text_round_trips(batch in arb_batch()) {
            let text = write_prometheus_text(&batch);
            let back = parse_prometheus_text(text.as_bytes(), 0).unwrap();
            prop_assert_eq!(back, batch);
        }

        #[test]
        fn garbage_never_panics(body in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_prometheus_text(&body, 0);
        }

        #[test]
        fn mutated_text_never_panics(batch in arb_batch(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut text = write_prometheus_text(&batch).into_bytes();
            if !text.is_empty() {
                let i = at.index(text.len());
                text[i] = byte;
            }
            if let Err(e) = parse_prometheus_text(&text, 0) {
                prop_assert!(e.to_string().starts_with("line "));
            }
        }
    }
}
