//! Runs Prometheus' own PromQL test scripts (`tests/promql/*.test`, copied from Prometheus
//! with their Apache-2.0 license, see `tests/promql/README.md`) against our engine, as an
//! oracle for Prometheus 2.42 semantics.
//!
//! The script format is Prometheus' `promql/test.go` one, parsed here by hand because no
//! Rust crate reads it: `load <interval>` followed by series lines (`name{l="v"} 1 2+3x4 _
//! stale Inf`), `clear`, and `eval[_fail|_ordered] instant [at <duration>] <expr>` followed
//! by the expected `{labels} value` lines (or one bare scalar). Comment lines (`#`) end a
//! block like blank lines do. As Prometheus' runner does, every passing instant evaluation
//! is checked again in range mode (a range query from `t-1m` to `t+1m`, step 1m, compared
//! at `t`), except for `eval_ordered`.
//!
//! Every failing case is printed (file:line, expression, expected vs got) with a total.
//! The test fails on any failure not listed in `tests/promql/known_failures.txt` (one
//! `file:line  reason` per line); entries that now pass are printed as stale but do not
//! fail the test, so fixing the engine never breaks it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use sightline_model::sample::stale_nan;
use sightline_model::{Labels, Sample, TimeSeries};
use sightline_query::promql::{Engine, MemQuerier, Value};

/// Prometheus' `almostEqual` epsilon in `promql/test.go`: the tolerance the expected
/// values in the scripts were written for (some are printed with only 7 digits, like
/// `3.249615`). Differences above 1e-9 relative that pass this are counted as "imprecise"
/// and printed, but are not failures.
const EPSILON: f64 = 1e-6;
/// Go's `math.SmallestNonzeroFloat64`-based `minNormal` in `almostEqual`.
const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
/// The stricter relative tolerance reported (not enforced) for every value.
const STRICT_EPSILON: f64 = 1e-9;

/// One expected sample of an `eval` command: labels, value, and the line it is on.
#[derive(Clone, Debug)]
struct ExpectedSample {
    labels: Labels,
    value: f64,
}

#[derive(Clone, Debug)]
enum Expected {
    /// `{labels} value` lines (possibly none: an empty result).
    Samples(Vec<ExpectedSample>),
    /// A bare number: the result is a scalar.
    Scalar(f64),
}

#[derive(Clone, Debug)]
struct EvalCmd {
    line: usize,
    expr: String,
    at_ms: i64,
    fail: bool,
    ordered: bool,
    expected: Expected,
}

#[derive(Clone, Debug)]
enum Cmd {
    Load(Vec<TimeSeries>),
    Clear,
    Eval(EvalCmd),
    /// A command this runner does not know (e.g. `eval range` of later Prometheus
    /// versions): counted, not run.
    Skipped {
        line: usize,
        text: String,
    },
}

/// A script line that could not be parsed.
#[derive(Debug)]
struct ScriptError {
    line: usize,
    message: String,
}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, ScriptError> {
    Err(ScriptError {
        line,
        message: message.into(),
    })
}

/// Prometheus' `model.ParseDuration` in milliseconds.
fn parse_duration(s: &str) -> Option<i64> {
    sightline_model::time::parse_prometheus_duration_ms(s)
}

/// A number as Go's `strconv.ParseFloat` reads it in the scripts (`Inf`, `+Inf`, `NaN`,
/// `.5`, `1e3`).
fn parse_number(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "inf" | "+inf" => return Some(f64::INFINITY),
        "-inf" => return Some(f64::NEG_INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    s.parse().ok()
}

/// Reads `name{a="b", ...}` (name and braces both optional) from the start of `s`,
/// returning the labels and the rest of the line.
fn parse_metric(s: &str, line: usize) -> Result<(Labels, &str), ScriptError> {
    let name_len = s
        .char_indices()
        .take_while(|&(i, c)| {
            c == '_' || c == ':' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
        })
        .count();
    let name = &s[..name_len];
    let mut rest = &s[name_len..];
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !name.is_empty() {
        pairs.push(("__name__".to_string(), name.to_string()));
    }
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let consumed;
        loop {
            // Skip separators.
            while let Some(&(_, c)) = chars.peek() {
                if c.is_whitespace() || c == ',' {
                    chars.next();
                } else {
                    break;
                }
            }
            let Some(&(i, c)) = chars.peek() else {
                return err(line, "unterminated label set");
            };
            if c == '}' {
                consumed = i + 1;
                break;
            }
            // Label name.
            let start = i;
            let mut end = i;
            while let Some(&(j, c)) = chars.peek() {
                if c == '_' || c.is_ascii_alphanumeric() {
                    end = j + c.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let lname = &body[start..end];
            if lname.is_empty() {
                return err(line, format!("bad label name at {:?}", &body[start..]));
            }
            while let Some(&(_, c)) = chars.peek() {
                if c.is_whitespace() {
                    chars.next();
                } else {
                    break;
                }
            }
            if chars.next().map(|(_, c)| c) != Some('=') {
                return err(line, format!("expected '=' after label {lname}"));
            }
            while let Some(&(_, c)) = chars.peek() {
                if c.is_whitespace() {
                    chars.next();
                } else {
                    break;
                }
            }
            let quote = match chars.next() {
                Some((_, q @ ('"' | '\'' | '`'))) => q,
                _ => return err(line, format!("expected a quoted value for label {lname}")),
            };
            let mut value = String::new();
            loop {
                match chars.next() {
                    None => return err(line, "unterminated label value"),
                    Some((_, c)) if c == quote => break,
                    Some((_, '\\')) if quote != '`' => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, 't')) => value.push('\t'),
                        Some((_, c)) => value.push(c),
                        None => return err(line, "unterminated escape"),
                    },
                    Some((_, c)) => value.push(c),
                }
            }
            pairs.push((lname.to_string(), value));
        }
        rest = &body[consumed..];
    }
    // Later duplicates (e.g. `__name__` given twice) replace earlier ones, as in Go.
    let mut dedup: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in pairs {
        dedup.insert(k, v);
    }
    let labels = Labels::from_pairs(dedup).map_err(|e| ScriptError {
        line,
        message: format!("bad labels: {e}"),
    })?;
    Ok((labels, rest.trim()))
}

/// Expands the value list of a series line (Prometheus' series description grammar):
/// `_` (no sample), `_xN` (N missing), `stale`, `v`, `vxN` (N+1 copies), `v+dxN` / `v-dxN`
/// (N+1 values, adding `d` each time, accumulated as Go does).
fn parse_values(s: &str, line: usize) -> Result<Vec<Option<f64>>, ScriptError> {
    let mut out = Vec::new();
    for tok in s.split_whitespace() {
        if tok == "_" {
            out.push(None);
            continue;
        }
        if let Some(n) = tok.strip_prefix("_x") {
            let n: usize = n
                .parse()
                .or_else(|_| err(line, format!("bad repetition {tok:?}")))?;
            out.extend(std::iter::repeat_n(None, n));
            continue;
        }
        if tok == "stale" {
            out.push(Some(stale_nan()));
            continue;
        }
        // Split off a trailing `xN` repetition.
        let (head, times) = match tok.rfind('x') {
            Some(i)
                if i > 0
                    && tok[i + 1..].bytes().all(|b| b.is_ascii_digit())
                    && i + 1 < tok.len() =>
            {
                let n: u64 = tok[i + 1..]
                    .parse()
                    .or_else(|_| err(line, format!("bad repetition {tok:?}")))?;
                (&tok[..i], Some(n))
            }
            _ => (tok, None),
        };
        // Split `v+d` / `v-d` at a sign that is not the leading one nor an exponent's.
        let bytes = head.as_bytes();
        let split = (1..bytes.len())
            .find(|&i| matches!(bytes[i], b'+' | b'-') && !matches!(bytes[i - 1], b'e' | b'E'));
        let (value, offset) = match split {
            Some(i) => (&head[..i], Some(&head[i..])),
            None => (head, None),
        };
        let Some(mut v) = parse_number(value) else {
            return err(line, format!("bad value {tok:?}"));
        };
        match (offset, times) {
            (None, None) => out.push(Some(v)),
            (None, Some(n)) => out.extend(std::iter::repeat_n(Some(v), n as usize + 1)),
            (Some(off), Some(n)) => {
                let Some(d) = parse_number(off) else {
                    return err(line, format!("bad offset in {tok:?}"));
                };
                for _ in 0..=n {
                    out.push(Some(v));
                    v += d;
                }
            }
            (Some(_), None) => return err(line, format!("offset without repetition in {tok:?}")),
        }
    }
    Ok(out)
}

/// Parses a whole script into commands (Prometheus' `Test.parse`).
fn parse_script(text: &str) -> Result<Vec<Cmd>, ScriptError> {
    // As Go's getLines: trimmed, comment lines blanked.
    let lines: Vec<&str> = text
        .lines()
        .map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                ""
            } else {
                l
            }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        let lineno = i + 1;
        i += 1;
        if l.is_empty() {
            continue;
        }
        let (word, rest) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
        let rest = rest.trim();
        match word.to_ascii_lowercase().as_str() {
            "clear" => cmds.push(Cmd::Clear),
            "load" => {
                let Some(gap) = parse_duration(rest) else {
                    return err(lineno, format!("bad load interval {rest:?}"));
                };
                let mut series = Vec::new();
                while i < lines.len() && !lines[i].is_empty() {
                    let (labels, values) = parse_metric(lines[i], i + 1)?;
                    let values = parse_values(values, i + 1)?;
                    let samples = values
                        .iter()
                        .enumerate()
                        .filter_map(|(k, v)| {
                            v.map(|value| Sample {
                                timestamp_ms: k as i64 * gap,
                                value,
                            })
                        })
                        .collect();
                    series.push(TimeSeries { labels, samples });
                    i += 1;
                }
                cmds.push(Cmd::Load(series));
            }
            "eval" | "eval_fail" | "eval_ordered" => {
                let (mode, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                if mode != "instant" {
                    cmds.push(Cmd::Skipped {
                        line: lineno,
                        text: l.to_string(),
                    });
                    while i < lines.len() && !lines[i].is_empty() {
                        i += 1;
                    }
                    continue;
                }
                let after = after.trim();
                let (at_ms, expr) = match after.strip_prefix("at ") {
                    Some(a) => {
                        let a = a.trim_start();
                        let (d, e) = a.split_once(char::is_whitespace).unwrap_or((a, ""));
                        let Some(ms) = parse_duration(d) else {
                            return err(lineno, format!("bad eval time {d:?}"));
                        };
                        (ms, e.trim())
                    }
                    None => (0, after),
                };
                let mut samples = Vec::new();
                let mut scalar = None;
                while i < lines.len() && !lines[i].is_empty() {
                    let def = lines[i];
                    i += 1;
                    if let Some(v) = parse_number(def) {
                        // Go stops reading expectations after a scalar.
                        scalar = Some(v);
                        break;
                    }
                    let (labels, values) = parse_metric(def, i)?;
                    let values = parse_values(values, i)?;
                    match values.as_slice() {
                        [Some(value)] => samples.push(ExpectedSample {
                            labels,
                            value: *value,
                        }),
                        _ => return err(i, "expected exactly one value per result line"),
                    }
                }
                cmds.push(Cmd::Eval(EvalCmd {
                    line: lineno,
                    expr: expr.to_string(),
                    at_ms,
                    fail: word == "eval_fail",
                    ordered: word == "eval_ordered",
                    expected: match scalar {
                        Some(v) => Expected::Scalar(v),
                        None => Expected::Samples(samples),
                    },
                }));
            }
            _ => cmds.push(Cmd::Skipped {
                line: lineno,
                text: l.to_string(),
            }),
        }
    }
    Ok(cmds)
}

/// Prometheus' `almostEqual` (NaN equals NaN).
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || diff < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / (a.abs() + b.abs()) < epsilon
}

/// A result in the shape compared: a scalar, or labelled samples in result order.
enum Got {
    Scalar(f64),
    Samples(Vec<(Labels, f64)>),
}

fn describe_got(got: &Got) -> String {
    match got {
        Got::Scalar(v) => format!("scalar {v}"),
        Got::Samples(s) if s.is_empty() => "empty vector".to_string(),
        Got::Samples(s) => {
            let mut out = String::new();
            for (l, v) in s {
                let _ = write!(out, "\n        {l} {v}");
            }
            out
        }
    }
}

fn describe_expected(e: &Expected) -> String {
    match e {
        Expected::Scalar(v) => format!("scalar {v}"),
        Expected::Samples(s) if s.is_empty() => "empty vector".to_string(),
        Expected::Samples(s) => {
            let mut out = String::new();
            for x in s {
                let _ = write!(out, "\n        {} {}", x.labels, x.value);
            }
            out
        }
    }
}

/// Compares like Prometheus' `evalCmd.compareResult`; `Err` says what differs. Pushes a
/// note to `imprecise` for values equal only at [`EPSILON`].
fn compare(
    e: &Expected,
    got: &Got,
    ordered: bool,
    imprecise: &mut Vec<String>,
) -> Result<(), String> {
    let mut check = |exp: f64, got: f64, what: &str| -> bool {
        if !almost_equal(exp, got, EPSILON) {
            return false;
        }
        if !almost_equal(exp, got, STRICT_EPSILON) {
            imprecise.push(format!("{what}: expected {exp}, got {got}"));
        }
        true
    };
    match (e, got) {
        (Expected::Scalar(exp), Got::Scalar(v)) => {
            if check(*exp, *v, "scalar") {
                Ok(())
            } else {
                Err(format!("expected scalar {exp} but got {v}"))
            }
        }
        (Expected::Samples(exp), Got::Samples(got)) => {
            let want: BTreeMap<&Labels, (usize, f64)> = exp
                .iter()
                .enumerate()
                .map(|(i, s)| (&s.labels, (i, s.value)))
                .collect();
            let mut seen = BTreeSet::new();
            for (pos, (labels, v)) in got.iter().enumerate() {
                let Some(&(exp_pos, exp_v)) = want.get(labels) else {
                    return Err(format!("unexpected metric {labels} {v} in result"));
                };
                if ordered && exp_pos != pos {
                    return Err(format!(
                        "expected metric {labels} at position {} but was at {}",
                        exp_pos + 1,
                        pos + 1
                    ));
                }
                if !check(exp_v, *v, &labels.to_string()) {
                    return Err(format!("expected {exp_v} for {labels} but got {v}"));
                }
                if !seen.insert(labels) {
                    return Err(format!("metric {labels} appears twice in the result"));
                }
            }
            for s in exp {
                if !seen.contains(&s.labels) {
                    return Err(format!(
                        "expected metric {} with {} not found",
                        s.labels, s.value
                    ));
                }
            }
            Ok(())
        }
        (Expected::Scalar(_), Got::Samples(_)) => Err("expected a scalar, got a vector".into()),
        (Expected::Samples(_), Got::Scalar(_)) => Err("expected a vector, got a scalar".into()),
    }
}

/// Runs `f`, turning a panic into an error message.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "non-string panic".into());
        format!("engine panicked: {msg}")
    })
}

/// The outcome of one `eval` command: `Ok` or what went wrong.
fn run_eval(
    engine: &Engine,
    q: &MemQuerier,
    cmd: &EvalCmd,
    imprecise: &mut Vec<String>,
) -> Result<(), String> {
    let res = guarded(|| engine.instant_query(q, &cmd.expr, cmd.at_ms))?;
    if cmd.fail {
        return match res {
            Err(_) => Ok(()),
            Ok(v) => Err(format!(
                "expected an error but got a {} result",
                v.type_name()
            )),
        };
    }
    let value = res.map_err(|e| format!("unexpected error: {e}"))?;
    let got = match value {
        Value::Scalar { v, .. } => Got::Scalar(v),
        Value::Vector(samples) => {
            Got::Samples(samples.into_iter().map(|s| (s.labels, s.v)).collect())
        }
        Value::Matrix(_) => return Err("received range result on instant evaluation".into()),
        Value::String { s, .. } => return Err(format!("received string result {s:?}")),
    };
    let was_scalar = matches!(got, Got::Scalar(_));
    compare(&cmd.expected, &got, cmd.ordered, imprecise).map_err(|m| {
        format!(
            "{m}\n      expected: {}\n      got: {}",
            describe_expected(&cmd.expected),
            describe_got(&got)
        )
    })?;

    // Range mode, as Prometheus' runner checks it (ordering is undefined there).
    if cmd.ordered {
        return Ok(());
    }
    let range = guarded(|| {
        engine.range_query(q, &cmd.expr, cmd.at_ms - 60_000, cmd.at_ms + 60_000, 60_000)
    })?
    .map_err(|e| format!("range mode: unexpected error: {e}"))?;
    let Value::Matrix(series) = range else {
        return Err(format!(
            "range mode: expected a matrix, got a {}",
            range.type_name()
        ));
    };
    let at_t: Vec<(Labels, f64)> = series
        .into_iter()
        .filter_map(|s| {
            let labels = s.labels;
            s.samples
                .iter()
                .find(|p| p.timestamp_ms == cmd.at_ms)
                .map(|p| (labels, p.value))
        })
        .collect();
    let got = if was_scalar {
        match at_t.first() {
            Some((_, v)) => Got::Scalar(*v),
            None => return Err("range mode: no point at the evaluation time".into()),
        }
    } else {
        Got::Samples(at_t)
    };
    compare(&cmd.expected, &got, false, imprecise).map_err(|m| {
        format!(
            "range mode: {m}\n      expected: {}\n      got: {}",
            describe_expected(&cmd.expected),
            describe_got(&got)
        )
    })
}

fn testdata_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promql")
}

/// `file:line` keys from the known-failures file.
fn known_failures() -> BTreeMap<String, String> {
    let path = testdata_dir().join("known_failures.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (key, reason) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (key.to_string(), reason.trim().to_string())
        })
        .collect()
}

#[test]
fn prometheus_test_scripts() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(testdata_dir())
        .expect("tests/promql exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .test files in tests/promql");

    let known = known_failures();
    let engine = Engine::default();
    let mut failures: Vec<(String, String)> = Vec::new();
    let mut imprecise: BTreeSet<String> = BTreeSet::new();
    let (mut cases, mut skipped) = (0usize, 0usize);

    let prev_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for path in &files {
        let name = path
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .to_string();
        let text = std::fs::read_to_string(path).expect("readable test file");
        let cmds = match parse_script(&text) {
            Ok(c) => c,
            Err(e) => {
                failures.push((
                    format!("{name}:{}", e.line),
                    format!("script error: {}", e.message),
                ));
                continue;
            }
        };
        let mut store: Vec<TimeSeries> = Vec::new();
        let mut querier = MemQuerier::new(Vec::new());
        let mut dirty = false;
        for cmd in cmds {
            match cmd {
                Cmd::Load(series) => {
                    store.extend(series);
                    dirty = true;
                }
                Cmd::Clear => {
                    store.clear();
                    dirty = true;
                }
                Cmd::Skipped { line, text } => {
                    skipped += 1;
                    println!("skipped {name}:{line}: {text}");
                }
                Cmd::Eval(e) => {
                    if dirty {
                        querier = MemQuerier::new(store.clone());
                        dirty = false;
                    }
                    cases += 1;
                    let mut notes = Vec::new();
                    let key = format!("{name}:{}", e.line);
                    match run_eval(&engine, &querier, &e, &mut notes) {
                        Ok(()) => {
                            for n in notes {
                                imprecise.insert(format!("{key} {}: {n}", e.expr));
                            }
                        }
                        Err(m) => failures.push((key, format!("{}\n    {m}", e.expr))),
                    }
                }
            }
        }
    }
    std::panic::set_hook(prev_hook);

    let failed: BTreeSet<&str> = failures.iter().map(|(k, _)| k.as_str()).collect();
    let mut unexpected = 0usize;
    for (key, msg) in &failures {
        let tag = if known.contains_key(key) {
            "known failure"
        } else {
            unexpected += 1;
            "FAIL"
        };
        println!("{tag} {key}: {msg}");
    }
    for n in &imprecise {
        println!("imprecise (passes at 1e-6, not 1e-9): {n}");
    }
    let stale: Vec<&String> = known
        .keys()
        .filter(|k| !failed.contains(k.as_str()))
        .collect();
    for k in &stale {
        println!("stale known-failures entry (now passes): {k}");
    }
    println!(
        "promql test scripts: {} files, {cases} cases, {} passed, {} failed ({} known, {unexpected} unexpected), {} imprecise, {skipped} commands skipped, {} stale known-failures entries",
        files.len(),
        cases - failed.len(),
        failed.len(),
        failed.len() - unexpected,
        imprecise.len(),
        stale.len()
    );
    assert_eq!(
        unexpected, 0,
        "{unexpected} PromQL test cases fail that are not in tests/promql/known_failures.txt (see the output above)"
    );
}

#[cfg(test)]
mod parser_tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Some(300_000));
        assert_eq!(parse_duration("8000s"), Some(8_000_000));
        assert_eq!(parse_duration("1ms"), Some(1));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration("0m"), Some(0));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn series_values_expand_like_prometheus() {
        let v = parse_values("0+10x3 _ 5 _x2 stale 1x1 8000-10x1 Inf -Inf", 1).unwrap();
        let got: Vec<String> = v
            .iter()
            .map(|x| match x {
                None => "_".to_string(),
                Some(f) if sightline_model::sample::is_stale_nan(*f) => "stale".to_string(),
                Some(f) => f.to_string(),
            })
            .collect();
        assert_eq!(
            got,
            [
                "0", "10", "20", "30", "_", "5", "_", "_", "stale", "1", "1", "8000", "7990",
                "inf", "-inf"
            ]
        );
        assert!(parse_values("1+2", 1).is_err());
        assert!(parse_values("abc", 1).is_err());
    }

    #[test]
    fn metrics_with_labels() {
        let (l, rest) = parse_metric(r#"http_requests{path="/foo", job='x\'y'} 1 2"#, 1).unwrap();
        assert_eq!(l.get("__name__"), Some("http_requests"));
        assert_eq!(l.get("path"), Some("/foo"));
        assert_eq!(l.get("job"), Some("x'y"));
        assert_eq!(rest, "1 2");
        let (l, rest) = parse_metric("{} 3", 1).unwrap();
        assert!(l.is_empty());
        assert_eq!(rest, "3");
        assert!(parse_metric(r#"x{a="b" 1"#, 1).is_err());
    }

    #[test]
    fn script_commands() {
        let cmds = parse_script(
            "# c\nload 5m\n  a{x=\"1\"} 1 2\n\neval instant at 5m a\n  a{x=\"1\"} 2\n\neval_fail instant at 0m foo(\n\neval instant at 1ms time()\n  0.001\n\nclear\neval range from 0 to 1m step 1m a\n",
        )
        .unwrap();
        assert!(
            matches!(&cmds[0], Cmd::Load(s) if s.len() == 1 && s[0].samples.len() == 2 && s[0].samples[1].timestamp_ms == 300_000)
        );
        assert!(
            matches!(&cmds[1], Cmd::Eval(e) if e.at_ms == 300_000 && e.line == 5 && matches!(&e.expected, Expected::Samples(s) if s.len() == 1))
        );
        assert!(matches!(&cmds[2], Cmd::Eval(e) if e.fail && e.expr == "foo("));
        assert!(
            matches!(&cmds[3], Cmd::Eval(e) if matches!(e.expected, Expected::Scalar(v) if v == 0.001))
        );
        assert!(matches!(cmds[4], Cmd::Clear));
        assert!(matches!(cmds[5], Cmd::Skipped { line: 14, .. }));
    }

    #[test]
    fn comparison_rules() {
        let l = Labels::from_pairs([("a", "b")]).unwrap();
        let exp = Expected::Samples(vec![ExpectedSample {
            labels: l.clone(),
            value: f64::NAN,
        }]);
        let mut notes = Vec::new();
        assert!(compare(
            &exp,
            &Got::Samples(vec![(l.clone(), f64::NAN)]),
            false,
            &mut notes
        )
        .is_ok());
        assert!(compare(
            &exp,
            &Got::Samples(vec![(l.clone(), 1.0)]),
            false,
            &mut notes
        )
        .is_err());
        assert!(compare(&exp, &Got::Samples(vec![]), false, &mut notes).is_err());
        assert!(compare(&exp, &Got::Scalar(f64::NAN), false, &mut notes).is_err());
        let exp = Expected::Scalar(3.249615);
        assert!(compare(&exp, &Got::Scalar(3.249615361854384), false, &mut notes).is_ok());
        assert_eq!(notes.len(), 1);
        assert!(compare(&exp, &Got::Scalar(3.25), false, &mut notes).is_err());
    }
}
