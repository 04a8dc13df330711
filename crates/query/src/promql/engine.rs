//! The PromQL evaluator: parses a query with `promql-parser` and evaluates it over a
//! [`SeriesQuerier`] with Prometheus 2.42 semantics.
//!
//! This evaluator is written here on purpose (the project writes its own query engines
//! rather than embedding one); its structure follows Prometheus' `promql/engine.go`. Every
//! expression is evaluated over a whole range of steps at once (an instant query is a range
//! with one step): an instant vector is held as one vector per step, a scalar as one value
//! per step. Selectors are read series by series over all steps, as Prometheus does: a
//! vector selector takes the latest sample in `[t - lookback, t]` unless it is a staleness
//! marker; a range window is `[t - range, t]` (both ends inclusive in 2.x) without
//! staleness markers; `offset` and `@` (including `start()`/`end()`) move `t`. Subqueries
//! evaluate their inner expression at the absolute multiples of their step. Aggregations
//! live in `aggregate.rs`, binary operators in `binary.rs`, function calls in
//! `functions.rs`.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{
    AtModifier, Expr, MatrixSelector, Offset, SubqueryExpr, VectorSelector,
};
use sightline_model::sample::is_stale_nan;
use sightline_model::{Labels, Sample, TimeSeries, METRIC_NAME};
use sightline_storage::SeriesQuerier;

use super::error::PromqlError;
use super::selector::vector_selector_matchers;
use super::value::{InstantSample, Value};
use super::{aggregate, binary, functions};

/// Prometheus' HTTP API refuses range queries with more points per series than this
/// (`exceeded maximum resolution of 11,000 points per timeseries`); the engine applies the
/// same limit so that no caller can make it allocate an unbounded number of steps.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// The step of a subquery written without one (`x[1h:]`): Prometheus uses the global
/// `evaluation_interval`, whose default (and the value its test files assume) is one minute.
pub const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

pub(super) type Result<T> = std::result::Result<T, PromqlError>;

/// Evaluates PromQL queries with Prometheus 2.42 semantics.
#[derive(Clone, Debug)]
pub struct Engine {
    /// How far back a vector selector looks for a sample (Prometheus'
    /// `--query.lookback-delta`, default 5 minutes; 0 or less means the default).
    pub lookback_delta_ms: i64,
    /// The most samples one query may hold in a single intermediate result (Prometheus'
    /// `--query.max-samples`, default 50 million).
    pub max_samples: usize,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            lookback_delta_ms: 300_000,
            max_samples: 50_000_000,
        }
    }
}

impl Engine {
    /// Evaluates `query` at `time_ms` (Prometheus' `/api/v1/query`). The result is of the
    /// query's type: scalar, string, vector (in evaluation order: selectors by labels,
    /// `sort`/`sort_desc` by value) or matrix (for a range-vector query, sorted by labels).
    ///
    /// # Errors
    /// `bad_data` for a query that does not parse or names an unknown function,
    /// `execution` for evaluation failures (e.g. many-to-many matching), `internal` for
    /// storage errors.
    pub fn instant_query(
        &self,
        q: &dyn SeriesQuerier,
        query: &str,
        time_ms: i64,
    ) -> std::result::Result<Value, PromqlError> {
        let expr = parse_query(query)?;
        let ev = Evaluator::new(self, q, time_ms, time_ms);
        let steps = Steps {
            start: time_ms,
            step: 1,
            n: 1,
        };
        Ok(match ev.eval(&expr, &steps)? {
            Ev::Scalar(v) => Value::Scalar {
                t_ms: time_ms,
                v: v[0],
            },
            Ev::Str(s) => Value::String { t_ms: time_ms, s },
            Ev::Vector(mut vs) => Value::Vector(
                vs.pop()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|e| InstantSample {
                        labels: Rc::unwrap_or_clone(e.labels),
                        t_ms: time_ms,
                        v: e.v,
                    })
                    .collect(),
            ),
            Ev::Matrix(m) => Value::Matrix(m),
        })
    }

    /// Evaluates `query` at every `step_ms` from `start_ms` to `end_ms` (Prometheus'
    /// `/api/v1/query_range`). The result is always a matrix sorted by labels; a scalar
    /// query gives one series without labels.
    ///
    /// # Errors
    /// As [`Engine::instant_query`]; also `bad_data` for a non-positive step, an end before
    /// the start, more than [`MAX_POINTS_PER_SERIES`] steps, or a query that is not a
    /// scalar or instant vector.
    pub fn range_query(
        &self,
        q: &dyn SeriesQuerier,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> std::result::Result<Value, PromqlError> {
        if step_ms <= 0 {
            return Err(PromqlError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end_ms < start_ms {
            return Err(PromqlError::BadData(
                "end timestamp must not be before start time".into(),
            ));
        }
        let span = (end_ms as i128 - start_ms as i128) / step_ms as i128;
        if span >= MAX_POINTS_PER_SERIES as i128 {
            return Err(PromqlError::BadData(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
            ));
        }
        let expr = parse_query(query)?;
        let ty = expr.value_type();
        if ty != ValueType::Vector && ty != ValueType::Scalar {
            return Err(PromqlError::BadData(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                documented_type(ty)
            )));
        }
        let ev = Evaluator::new(self, q, start_ms, end_ms);
        let steps = Steps {
            start: start_ms,
            step: step_ms,
            n: span as usize + 1,
        };
        let series = match ev.eval(&expr, &steps)? {
            Ev::Scalar(v) => vec![TimeSeries {
                labels: Labels::new(),
                samples: v
                    .iter()
                    .enumerate()
                    .map(|(i, &value)| Sample {
                        timestamp_ms: steps.ts(i),
                        value,
                    })
                    .collect(),
            }],
            Ev::Vector(vs) => steps_to_series(&steps, vs)
                .into_iter()
                .map(|(labels, samples)| TimeSeries {
                    labels: Rc::unwrap_or_clone(labels),
                    samples,
                })
                .collect(),
            Ev::Str(_) | Ev::Matrix(_) => {
                return Err(PromqlError::BadData(
                    "invalid expression type for range query, must be Scalar or instant Vector"
                        .into(),
                ));
            }
        };
        Ok(Value::Matrix(series))
    }
}

/// Parses and checks a query: every function must be one of Prometheus 2.42's, and the
/// parser's extensions beyond 2.42 (`limitk`, `fill`, ...) are refused.
fn parse_query(query: &str) -> Result<Expr> {
    register_2_42_functions();
    if let Some(bad) = out_of_range_duration_number(query) {
        return Err(PromqlError::BadData(format!(
            "parse error: invalid duration {bad:?}"
        )));
    }
    // The parser is third-party code: a panic in it is a bad query, not a crash.
    let parsed = std::panic::catch_unwind(|| promql_parser::parser::parse(query))
        .map_err(|_| PromqlError::BadData("parse error: invalid promql query".into()))?;
    let expr = parsed.map_err(|e| PromqlError::BadData(format!("parse error: {e}")))?;
    check_supported(&expr)?;
    Ok(expr)
}

/// A number written where the parser expects a duration (after `[`, a subquery `:` or
/// `offset`) that is not a valid number of seconds: `promql-parser` 0.11 hands it to
/// `Duration::from_secs_f64`, which panics on NaN, infinities and values beyond `u64`.
fn out_of_range_duration_number(query: &str) -> Option<String> {
    let b = query.as_bytes();
    let mut i = 0;
    // Whether the previous significant token makes a number a duration.
    let mut duration_expected = false;
    let mut after_offset = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'\'' | b'`' => {
                let quote = c;
                i += 1;
                while i < b.len() && b[i] != quote {
                    i += if b[i] == b'\\' && quote != b'`' { 2 } else { 1 };
                }
                i += 1;
                duration_expected = false;
                after_offset = false;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'[' | b':' => {
                duration_expected = true;
                after_offset = false;
                i += 1;
            }
            b'-' | b'+' if after_offset => {
                duration_expected = true;
                after_offset = false;
                i += 1;
            }
            _ if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' => {
                let start = i;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'_'
                        || b[i] == b'.'
                        || (b[i] == b':' && !b[start].is_ascii_digit() && b[start] != b'.')
                        || ((b[i] == b'+' || b[i] == b'-')
                            && matches!(b[i - 1], b'e' | b'E')
                            && !b[start..i].iter().any(|x| matches!(x, b'x' | b'X'))))
                {
                    i += 1;
                }
                let word = &query[start..i];
                if duration_expected && !duration_number_ok(word) {
                    return Some(word.to_string());
                }
                after_offset = word.eq_ignore_ascii_case("offset");
                duration_expected = after_offset;
            }
            _ => {
                duration_expected = false;
                after_offset = false;
                i += 1;
            }
        }
    }
    None
}

/// Whether a word in duration position is safe for the parser: a duration with units, or
/// a number of seconds in `[0, 2^64)`.
fn duration_number_ok(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return false;
    }
    let value = if let Some(hex) = lower.strip_prefix("0x") {
        hex.chars()
            .filter_map(|c| c.to_digit(16))
            .fold(0.0f64, |acc, d| acc * 16.0 + d as f64)
    } else {
        match lower.parse::<f64>() {
            Ok(v) => v,
            // Units (`5m`) or not a number at all: the parser checks it.
            Err(_) => return true,
        }
    };
    value.is_finite() && (0.0..1.8e19).contains(&value)
}

/// Teaches the parser the 2.42 functions it no longer knows (`holt_winters` was renamed
/// `double_exponential_smoothing` in Prometheus 3, which the parser follows).
fn register_2_42_functions() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let holt_winters = promql_parser::parser::Function::new(
            "holt_winters",
            vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
            0,
            ValueType::Vector,
            false,
        );
        // Only fails for a name the parser already has, which would be fine as well.
        let _ = promql_parser::parser::register_extra_functions(vec![holt_winters]);
    });
}

fn check_supported(e: &Expr) -> Result<()> {
    match e {
        Expr::Aggregate(a) => {
            let op = a.op.to_string();
            if !aggregate::is_supported(&op) {
                return Err(PromqlError::BadData(format!(
                    "parse error: unknown aggregation operator {op:?}"
                )));
            }
            check_supported(&a.expr)?;
            if let Some(p) = &a.param {
                check_supported(p)?;
            }
            Ok(())
        }
        Expr::Unary(u) => check_supported(&u.expr),
        Expr::Binary(b) => {
            if let Some(m) = &b.modifier {
                if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
                    return Err(PromqlError::BadData(
                        "parse error: fill modifiers are not supported".into(),
                    ));
                }
            }
            check_supported(&b.lhs)?;
            check_supported(&b.rhs)
        }
        Expr::Paren(p) => check_supported(&p.expr),
        Expr::Subquery(s) => check_supported(&s.expr),
        Expr::Call(c) => {
            if !functions::is_supported(c.func.name) {
                return Err(PromqlError::BadData(format!(
                    "parse error: unknown function with name {:?}",
                    c.func.name
                )));
            }
            c.args.args.iter().try_for_each(|a| check_supported(a))
        }
        Expr::Extension(_) => Err(PromqlError::BadData(
            "parse error: extension expressions are not supported".into(),
        )),
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_) => Ok(()),
    }
}

/// Prometheus' `parser.DocumentedType`.
fn documented_type(t: ValueType) -> &'static str {
    match t {
        ValueType::Vector => "instant vector",
        ValueType::Matrix => "range vector",
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
    }
}

/// Labels shared between the samples of one series at different steps.
pub(super) type Lbl = Rc<Labels>;

/// One sample of an instant vector at one step.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Elem {
    pub labels: Lbl,
    pub v: f64,
}

/// An instant vector at one step.
pub(super) type Vector = Vec<Elem>;

/// The value of an expression over all steps of an evaluation.
#[derive(Debug)]
pub(super) enum Ev {
    /// One value per step.
    Scalar(Vec<f64>),
    Str(String),
    /// One vector per step.
    Vector(Vec<Vector>),
    /// A range vector; only at the top of an instant query.
    Matrix(Vec<TimeSeries>),
}

/// The evaluation times: `start + i * step` for `i < n`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Steps {
    pub start: i64,
    pub step: i64,
    pub n: usize,
}

impl Steps {
    pub fn ts(&self, i: usize) -> i64 {
        self.start
            .saturating_add(self.step.saturating_mul(i as i64))
    }

    pub fn end(&self) -> i64 {
        self.ts(self.n - 1)
    }
}

/// How a selector's reference time follows the evaluation time: fixed by `@`, moved back
/// by `offset`.
#[derive(Clone, Copy, Debug)]
pub(super) struct TimeRef {
    at: Option<i64>,
    offset_ms: i64,
}

impl TimeRef {
    pub fn at(&self, ts: i64) -> i64 {
        self.at.unwrap_or(ts).saturating_sub(self.offset_ms)
    }
}

/// The series of a range-vector argument (matrix selector or subquery), ready to be cut
/// into per-step windows.
pub(super) struct RangeInput {
    /// Time-ordered samples without staleness markers.
    pub series: Vec<(Lbl, Vec<Sample>)>,
    pub range_ms: i64,
    pub time: TimeRef,
}

impl RangeInput {
    /// Calls `f(step index, window start, window end, samples)` for each step where the
    /// series `samples` has samples in the window `[t - range, t]`.
    pub fn windows(
        &self,
        steps: &Steps,
        samples: &[Sample],
        mut f: impl FnMut(usize, i64, i64, &[Sample]) -> Result<()>,
    ) -> Result<()> {
        let (mut lo, mut hi) = (0, 0);
        for i in 0..steps.n {
            let end = self.time.at(steps.ts(i));
            let start = end.saturating_sub(self.range_ms);
            while hi < samples.len() && samples[hi].timestamp_ms <= end {
                hi += 1;
            }
            while lo < hi && samples[lo].timestamp_ms < start {
                lo += 1;
            }
            if lo < hi {
                f(i, start, end, &samples[lo..hi])?;
            }
        }
        Ok(())
    }
}

/// The state of one query evaluation.
pub(super) struct Evaluator<'a> {
    querier: &'a dyn SeriesQuerier,
    lookback_ms: i64,
    max_samples: usize,
    query_start_ms: i64,
    query_end_ms: i64,
}

impl<'a> Evaluator<'a> {
    fn new(engine: &Engine, querier: &'a dyn SeriesQuerier, start: i64, end: i64) -> Self {
        Evaluator {
            querier,
            // As Prometheus' NewEngine: a zero lookback means the default.
            lookback_ms: if engine.lookback_delta_ms > 0 {
                engine.lookback_delta_ms
            } else {
                Engine::default().lookback_delta_ms
            },
            max_samples: engine.max_samples,
            query_start_ms: start,
            query_end_ms: end,
        }
    }

    /// Evaluates `e` at every step of `s`.
    pub fn eval(&self, e: &Expr, s: &Steps) -> Result<Ev> {
        match e {
            Expr::NumberLiteral(n) => Ok(Ev::Scalar(vec![n.val; s.n])),
            Expr::StringLiteral(l) => Ok(Ev::Str(l.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, s),
            Expr::Unary(u) => match self.eval(&u.expr, s)? {
                Ev::Scalar(v) => Ok(Ev::Scalar(v.into_iter().map(|x| -x).collect())),
                Ev::Vector(steps) => {
                    let mut names = NameDropper::default();
                    let out: Vec<Vector> = steps
                        .into_iter()
                        .map(|vec| {
                            vec.into_iter()
                                .map(|e| Elem {
                                    labels: names.drop_name(&e.labels),
                                    v: -e.v,
                                })
                                .collect()
                        })
                        .collect();
                    names.check_unique()?;
                    Ok(Ev::Vector(out))
                }
                _ => Err(type_error("unary expression", "scalar or instant vector")),
            },
            Expr::VectorSelector(vs) => Ok(Ev::Vector(self.vector_selector(vs, s, false)?)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                // A range vector is a result only at the top of an instant query; as a
                // function argument it is cut into windows by `functions.rs`.
                let input = self.range_input(e, s)?;
                let t = s.start;
                let mut out = Vec::new();
                for (labels, samples) in input.series {
                    let end = input.time.at(t);
                    let start = end.saturating_sub(input.range_ms);
                    let window: Vec<Sample> = samples
                        .into_iter()
                        .filter(|p| p.timestamp_ms >= start && p.timestamp_ms <= end)
                        .collect();
                    if !window.is_empty() {
                        out.push(TimeSeries {
                            labels: Rc::unwrap_or_clone(labels),
                            samples: window,
                        });
                    }
                }
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                Ok(Ev::Matrix(out))
            }
            Expr::Aggregate(a) => aggregate::eval(self, a, s),
            Expr::Binary(b) => binary::eval(self, b, s),
            Expr::Call(c) => functions::eval(self, c, s),
            Expr::Extension(_) => Err(PromqlError::BadData(
                "extension expressions are not supported".into(),
            )),
        }
    }

    /// Evaluates `e`, which must be of scalar type, to one value per step.
    pub fn eval_scalar(&self, e: &Expr, s: &Steps) -> Result<Vec<f64>> {
        match self.eval(e, s)? {
            Ev::Scalar(v) => Ok(v),
            _ => Err(type_error("expression", "scalar")),
        }
    }

    /// Evaluates `e`, which must be of instant-vector type, to one vector per step.
    pub fn eval_vector(&self, e: &Expr, s: &Steps) -> Result<Vec<Vector>> {
        match self.eval(e, s)? {
            Ev::Vector(v) => Ok(v),
            _ => Err(type_error("expression", "instant vector")),
        }
    }

    /// Fails when a result would hold more than `max_samples` samples.
    pub fn check_samples(&self, n: usize) -> Result<()> {
        if n > self.max_samples {
            return Err(PromqlError::Execution(
                "query processing would load too many samples into memory in query execution"
                    .into(),
            ));
        }
        Ok(())
    }

    fn time_ref(&self, at: &Option<AtModifier>, offset: &Option<Offset>) -> TimeRef {
        let at = at.as_ref().map(|a| match a {
            AtModifier::Start => self.query_start_ms,
            AtModifier::End => self.query_end_ms,
            AtModifier::At(t) => system_time_ms(*t),
        });
        let offset_ms = match offset {
            None => 0,
            Some(Offset::Pos(d)) => duration_ms(*d),
            Some(Offset::Neg(d)) => -duration_ms(*d),
        };
        TimeRef { at, offset_ms }
    }

    /// The series matching `vs` with samples in `[mint, maxt]`.
    fn select(&self, vs: &VectorSelector, mint: i64, maxt: i64) -> Result<Vec<TimeSeries>> {
        let mut sets = vector_selector_matchers(vs);
        if sets.len() == 1 {
            let only = sets.pop().unwrap_or_else(|| panic!("BUG: one matcher set"));
            return Ok(self.querier.select(&only, mint, maxt)?);
        }
        // `{a="1" or b="2"}`: the union of the alternatives.
        let mut all: Vec<TimeSeries> = Vec::new();
        let mut seen = HashSet::new();
        for group in &sets {
            for s in self.querier.select(group, mint, maxt)? {
                if seen.insert(s.labels.clone()) {
                    all.push(s);
                }
            }
        }
        all.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(all)
    }

    /// An instant-vector selector at every step: per series, the latest sample in
    /// `[t - lookback, t]` unless it is a staleness marker. With `timestamps`, the value is
    /// the sample's timestamp in seconds and the metric name is dropped (`timestamp(x)`).
    pub fn vector_selector(
        &self,
        vs: &VectorSelector,
        s: &Steps,
        timestamps: bool,
    ) -> Result<Vec<Vector>> {
        let time = self.time_ref(&vs.at, &vs.offset);
        let (first, last) = (time.at(s.start), time.at(s.end()));
        let series = self.select(vs, first.saturating_sub(self.lookback_ms), last)?;
        let mut out: Vec<Vector> = vec![Vec::new(); s.n];
        let mut total = 0usize;
        for ts in series {
            let labels = Rc::new(if timestamps {
                ts.labels.without(METRIC_NAME)
            } else {
                ts.labels
            });
            let samples = ts.samples;
            let mut next = 0;
            for (i, vec) in out.iter_mut().enumerate() {
                let t = time.at(s.ts(i));
                while next < samples.len() && samples[next].timestamp_ms <= t {
                    next += 1;
                }
                if next == 0 {
                    continue;
                }
                let p = samples[next - 1];
                if p.timestamp_ms < t.saturating_sub(self.lookback_ms) || is_stale_nan(p.value) {
                    continue;
                }
                total += 1;
                vec.push(Elem {
                    labels: labels.clone(),
                    v: if timestamps {
                        p.timestamp_ms as f64 / 1000.0
                    } else {
                        p.value
                    },
                });
            }
            self.check_samples(total)?;
        }
        Ok(out)
    }

    /// The series of a matrix selector or subquery (`e`, parentheses removed) covering the
    /// windows of every step of `s`.
    pub fn range_input(&self, e: &Expr, s: &Steps) -> Result<RangeInput> {
        match unwrap_parens(e) {
            Expr::MatrixSelector(ms) => self.matrix_input(ms, s),
            Expr::Subquery(sq) => self.subquery_input(sq, s),
            _ => Err(type_error("range vector argument", "range vector")),
        }
    }

    fn matrix_input(&self, ms: &MatrixSelector, s: &Steps) -> Result<RangeInput> {
        let time = self.time_ref(&ms.vs.at, &ms.vs.offset);
        let range_ms = duration_ms(ms.range);
        let (first, last) = (time.at(s.start), time.at(s.end()));
        let selected = self.select(&ms.vs, first.saturating_sub(range_ms), last)?;
        let mut total = 0usize;
        let series = selected
            .into_iter()
            .map(|ts| {
                let samples: Vec<Sample> = ts
                    .samples
                    .into_iter()
                    .filter(|p| !is_stale_nan(p.value))
                    .collect();
                total += samples.len();
                (Rc::new(ts.labels), samples)
            })
            .collect();
        self.check_samples(total)?;
        Ok(RangeInput {
            series,
            range_ms,
            time,
        })
    }

    /// Evaluates a subquery's inner expression at the multiples of its step that fall in
    /// the windows of the steps of `s`.
    fn subquery_input(&self, sq: &SubqueryExpr, s: &Steps) -> Result<RangeInput> {
        let time = self.time_ref(&sq.at, &sq.offset);
        let range_ms = duration_ms(sq.range);
        let interval = sq
            .step
            .map(duration_ms)
            .filter(|&i| i > 0)
            .unwrap_or(DEFAULT_SUBQUERY_STEP_MS);
        let (first, last) = (time.at(s.start), time.at(s.end()));
        let inner_start = align_up(first.saturating_sub(range_ms), interval);
        let mut input = RangeInput {
            series: Vec::new(),
            range_ms,
            time,
        };
        if inner_start > last {
            return Ok(input);
        }
        let n = (last as i128 - inner_start as i128) / interval as i128 + 1;
        if n > self.max_samples as i128 {
            self.check_samples(usize::MAX)?;
        }
        let inner = Steps {
            start: inner_start,
            step: interval,
            n: n as usize,
        };
        input.series = match self.eval(&sq.expr, &inner)? {
            Ev::Vector(vs) => steps_to_series(&inner, vs),
            Ev::Scalar(v) => vec![(
                Rc::new(Labels::new()),
                v.iter()
                    .enumerate()
                    .map(|(i, &value)| Sample {
                        timestamp_ms: inner.ts(i),
                        value,
                    })
                    .collect(),
            )],
            _ => return Err(type_error("subquery", "instant vector")),
        };
        Ok(input)
    }
}

/// Turns one vector per step into series (sorted by labels) with one sample per step
/// where they have a value.
pub(super) fn steps_to_series(s: &Steps, vs: Vec<Vector>) -> Vec<(Lbl, Vec<Sample>)> {
    let mut index: HashMap<Lbl, usize> = HashMap::new();
    let mut series: Vec<(Lbl, Vec<Sample>)> = Vec::new();
    for (i, vec) in vs.into_iter().enumerate() {
        let t = s.ts(i);
        for e in vec {
            let k = *index.entry(e.labels.clone()).or_insert_with(|| {
                series.push((e.labels.clone(), Vec::new()));
                series.len() - 1
            });
            series[k].1.push(Sample {
                timestamp_ms: t,
                value: e.v,
            });
        }
    }
    series.sort_by(|a, b| a.0.cmp(&b.0));
    series
}

/// Drops the metric name of series labels, remembering which input label sets map to
/// each output so that two series ending up with the same labels are reported as
/// Prometheus does (`vector cannot contain metrics with the same labelset`).
#[derive(Default)]
pub(super) struct NameDropper {
    cache: HashMap<Lbl, Lbl>,
}

impl NameDropper {
    pub fn drop_name(&mut self, l: &Lbl) -> Lbl {
        self.cache
            .entry(l.clone())
            .or_insert_with(|| {
                if l.metric_name().is_none() {
                    l.clone()
                } else {
                    Rc::new((**l).clone().without(METRIC_NAME))
                }
            })
            .clone()
    }

    /// Fails when two input label sets were mapped to the same output.
    pub fn check_unique(&self) -> Result<()> {
        let mut seen = HashSet::with_capacity(self.cache.len());
        for out in self.cache.values() {
            if !seen.insert(out) {
                return Err(duplicate_labelset());
            }
        }
        Ok(())
    }
}

/// Fails when a vector holds two samples with the same labels.
pub(super) fn check_unique(v: &Vector) -> Result<()> {
    if v.len() < 2 {
        return Ok(());
    }
    let mut seen = HashSet::with_capacity(v.len());
    for e in v {
        if !seen.insert(&*e.labels) {
            return Err(duplicate_labelset());
        }
    }
    Ok(())
}

pub(super) fn duplicate_labelset() -> PromqlError {
    PromqlError::Execution("vector cannot contain metrics with the same labelset".into())
}

pub(super) fn type_error(what: &str, expected: &str) -> PromqlError {
    PromqlError::BadData(format!("expected {expected} in {what}"))
}

/// `e` without enclosing parentheses.
pub(super) fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

/// Milliseconds of a duration, saturating at `i64::MAX`.
pub(super) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Milliseconds since the Unix epoch (negative before it), saturating.
fn system_time_ms(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => duration_ms(d),
        Err(e) => -duration_ms(e.duration()),
    }
}

/// The first multiple of `interval` at or after `t` (Prometheus' subquery alignment).
fn align_up(t: i64, interval: i64) -> i64 {
    let r = t.rem_euclid(interval);
    if r == 0 {
        t
    } else {
        t.saturating_sub(r).saturating_add(interval)
    }
}

/// Go's `labels.Labels.String()`: `{__name__="x", a="b"}` (all labels inside the braces).
pub(super) fn go_labels_string(l: &Labels) -> String {
    let parts: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// Go's `%v` of a float64 (shortest representation; exponent form from 1e21 and below
/// 1e-4), used in error messages.
pub(super) fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e21).contains(&a) {
        let s = format!("{v:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match e.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', e),
        };
        format!("{m}e{sign}{digits:0>2}")
    } else {
        format!("{v}")
    }
}
