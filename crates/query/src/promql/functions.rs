//! PromQL function calls: which functions exist (Prometheus 2.42's list), the range-vector
//! path (a matrix selector or subquery argument cut into one window per series and step,
//! handed to `range_fns.rs`; `absent_over_time`) and the instant-vector functions
//! (math, time, `round`, `clamp*`, `label_replace`, `label_join`, `absent`, `sort*`,
//! `timestamp`, `histogram_quantile`, `scalar`, `vector`, `time`, `pi`). Metric names are
//! dropped as in 2.42: by every function except `last_over_time`, `sort`, `sort_desc`,
//! `label_replace` and `label_join`.

use std::collections::HashMap;
use std::rc::Rc;

use promql_parser::label::MatchOp as ParserMatchOp;
use promql_parser::parser::{Call, Expr};
use sightline_model::{Labels, Sample, METRIC_NAME};

use super::aggregate::is_valid_label_name;
use super::engine::{
    check_unique, unwrap_parens, Elem, Ev, Evaluator, Lbl, NameDropper, Result, Steps, Vector,
};
use super::error::PromqlError;
use super::{instant_fns, quantile, range_fns};

/// The functions of Prometheus 2.42.
const FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_sum",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_replace",
    "label_join",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

/// Whether `name` is a function of Prometheus 2.42.
pub(super) fn is_supported(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

fn unimplemented(name: &str) -> PromqlError {
    PromqlError::Execution(format!("unimplemented function {name}"))
}

/// Evaluates a function call at every step.
pub(super) fn eval(ev: &Evaluator, c: &Call, s: &Steps) -> Result<Ev> {
    let name = c.func.name;
    let args: Vec<&Expr> = c.args.args.iter().map(|a| unwrap_parens(a)).collect();
    if name == "timestamp" {
        if let Some(Expr::VectorSelector(vs)) = args.first() {
            // The sample's own timestamp, not the evaluation time.
            return Ok(Ev::Vector(ev.vector_selector(vs, s, true)?));
        }
    }
    if let Some(idx) = args
        .iter()
        .position(|a| matches!(a, Expr::MatrixSelector(_) | Expr::Subquery(_)))
    {
        return range_call(ev, name, &args, idx, s);
    }
    instant_call(ev, name, &args, s)
}

/// The labels `absent(x)` outputs: those of the equality matchers of a selector `x`,
/// unless the label is also matched otherwise (Prometheus' `createLabelsForAbsentFunction`).
fn absent_labels(e: &Expr) -> Labels {
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::new(),
    };
    let mut l = Labels::new();
    let mut empty = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, ParserMatchOp::Equal) && l.get(&m.name).is_none() {
            if is_valid_label_name(&m.name) {
                l = l.with(&m.name, &m.value);
            }
        } else {
            empty.push(m.name.as_str());
        }
    }
    for name in empty {
        l = l.without(name);
    }
    l
}

/// A call with a range-vector argument at `idx`; the other arguments are scalars.
fn range_call(ev: &Evaluator, name: &str, args: &[&Expr], idx: usize, s: &Steps) -> Result<Ev> {
    let input = ev.range_input(args[idx], s)?;
    if name == "absent_over_time" {
        let mut present = vec![false; s.n];
        for (_, samples) in &input.series {
            input.windows(s, samples, |i, _, _, _| {
                present[i] = true;
                Ok(())
            })?;
        }
        let labels = Rc::new(absent_labels(args[idx]));
        return Ok(Ev::Vector(
            present
                .into_iter()
                .map(|p| {
                    if p {
                        Vec::new()
                    } else {
                        vec![Elem {
                            labels: labels.clone(),
                            v: 1.0,
                        }]
                    }
                })
                .collect(),
        ));
    }
    let f = range_fns::range_function(name).ok_or_else(|| unimplemented(name))?;
    let params: Vec<Vec<f64>> = args
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != idx)
        .map(|(_, a)| ev.eval_scalar(a, s))
        .collect::<Result<_>>()?;
    let keep_name = name == "last_over_time";
    let mut out: Vec<Vector> = vec![Vec::new(); s.n];
    let mut names = NameDropper::default();
    let mut pbuf = Vec::with_capacity(params.len());
    // rate/increase scan each window for counter resets; with the running count of
    // resets per series, windows without one (nearly all) skip the scan.
    let hint_resets = name == "rate" || name == "increase";
    let mut drops: Vec<u32> = Vec::new();
    for (labels, samples) in &input.series {
        let out_labels = if keep_name {
            labels.clone()
        } else {
            names.drop_name(labels)
        };
        if hint_resets {
            drops.clear();
            let mut n = 0u32;
            drops.push(0);
            for w in samples.windows(2) {
                n += u32::from(w[1].value < w[0].value);
                drops.push(n);
            }
        }
        input.windows(s, samples, |i, start, end, window| {
            // The window is a subslice of `samples`: its position gives the reset counts.
            let no_resets = hint_resets && {
                let lo = (window.as_ptr() as usize - samples.as_ptr() as usize)
                    / std::mem::size_of::<Sample>();
                debug_assert!(lo + window.len() <= samples.len(), "BUG: window outside");
                drops[lo + window.len() - 1] == drops[lo]
            };
            pbuf.clear();
            pbuf.extend(params.iter().map(|p| p[i]));
            range_fns::check_params(name, &pbuf).map_err(PromqlError::Execution)?;
            let r = f(&range_fns::RangeArgs {
                samples: window,
                range_start_ms: start,
                // Prometheus anchors predict_linear's intercept at the evaluation time
                // itself (`enh.Ts`), not at the window's end moved by offset or `@`.
                eval_ms: if name == "predict_linear" {
                    s.ts(i)
                } else {
                    end
                },
                params: &pbuf,
                no_resets,
            });
            if let Some(v) = r {
                out[i].push(Elem {
                    labels: out_labels.clone(),
                    v,
                });
            }
            Ok(())
        })?;
    }
    if !keep_name {
        names.check_unique()?;
    }
    Ok(Ev::Vector(out))
}

/// Applies `f` to every sample of every step, dropping the metric name.
fn map_values(vs: Vec<Vector>, mut f: impl FnMut(usize, f64) -> f64) -> Result<Ev> {
    let mut names = NameDropper::default();
    let out: Vec<Vector> = vs
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            v.into_iter()
                .map(|e| Elem {
                    labels: names.drop_name(&e.labels),
                    v: f(i, e.v),
                })
                .collect()
        })
        .collect();
    names.check_unique()?;
    Ok(Ev::Vector(out))
}

fn string_arg(e: &Expr) -> Result<String> {
    match e {
        Expr::StringLiteral(s) => Ok(s.val.clone()),
        _ => Err(PromqlError::BadData(
            "expected a string literal argument".into(),
        )),
    }
}

fn instant_call(ev: &Evaluator, name: &str, args: &[&Expr], s: &Steps) -> Result<Ev> {
    let ts_secs = |i: usize| s.ts(i) as f64 / 1000.0;
    match name {
        "time" => Ok(Ev::Scalar((0..s.n).map(ts_secs).collect())),
        "pi" => Ok(Ev::Scalar(vec![std::f64::consts::PI; s.n])),
        "vector" => {
            let v = ev.eval_scalar(args[0], s)?;
            let labels = Rc::new(Labels::new());
            Ok(Ev::Vector(
                v.into_iter()
                    .map(|v| {
                        vec![Elem {
                            labels: labels.clone(),
                            v,
                        }]
                    })
                    .collect(),
            ))
        }
        "scalar" => {
            let vs = ev.eval_vector(args[0], s)?;
            Ok(Ev::Scalar(
                vs.iter()
                    .map(|v| if v.len() == 1 { v[0].v } else { f64::NAN })
                    .collect(),
            ))
        }
        "timestamp" => {
            let vs = ev.eval_vector(args[0], s)?;
            map_values(vs, |i, _| ts_secs(i))
        }
        "round" => {
            let vs = ev.eval_vector(args[0], s)?;
            let to = match args.get(1) {
                Some(a) => ev.eval_scalar(a, s)?,
                None => vec![1.0; s.n],
            };
            map_values(vs, |i, v| instant_fns::round(v, to[i]))
        }
        "clamp" | "clamp_min" | "clamp_max" => {
            let vs = ev.eval_vector(args[0], s)?;
            let a = ev.eval_scalar(args[1], s)?;
            let b = match args.get(2) {
                Some(e) => ev.eval_scalar(e, s)?,
                None => vec![f64::NAN; s.n],
            };
            let bounds = |i: usize| match name {
                "clamp" => (a[i], b[i]),
                "clamp_min" => (a[i], f64::INFINITY),
                _ => (f64::NEG_INFINITY, a[i]),
            };
            let vs: Vec<Vector> = vs
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let (min, max) = bounds(i);
                    if name == "clamp" && instant_fns::clamp_is_empty(min, max) {
                        Vec::new()
                    } else {
                        v
                    }
                })
                .collect();
            map_values(vs, |i, v| {
                let (min, max) = bounds(i);
                instant_fns::clamp(v, min, max)
            })
        }
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute"
        | "month" | "year" => {
            let f = instant_fns::time_function(name).ok_or_else(|| unimplemented(name))?;
            match args.first() {
                None => {
                    let labels = Rc::new(Labels::new());
                    Ok(Ev::Vector(
                        (0..s.n)
                            .map(|i| {
                                vec![Elem {
                                    labels: labels.clone(),
                                    v: f((s.ts(i).div_euclid(1000)) as f64),
                                }]
                            })
                            .collect(),
                    ))
                }
                Some(a) => {
                    let vs = ev.eval_vector(a, s)?;
                    map_values(vs, |_, v| f(v))
                }
            }
        }
        "sort" | "sort_desc" => {
            let mut vs = ev.eval_vector(args[0], s)?;
            let desc = name == "sort_desc";
            for v in &mut vs {
                // NaN last in both orders.
                v.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ if desc => b.v.partial_cmp(&a.v).unwrap_or(std::cmp::Ordering::Equal),
                    _ => a.v.partial_cmp(&b.v).unwrap_or(std::cmp::Ordering::Equal),
                });
            }
            Ok(Ev::Vector(vs))
        }
        "label_replace" => label_replace(ev, args, s),
        "label_join" => label_join(ev, args, s),
        "absent" => {
            let vs = ev.eval_vector(args[0], s)?;
            let labels = Rc::new(absent_labels(args[0]));
            Ok(Ev::Vector(
                vs.into_iter()
                    .map(|v| {
                        if v.is_empty() {
                            vec![Elem {
                                labels: labels.clone(),
                                v: 1.0,
                            }]
                        } else {
                            Vec::new()
                        }
                    })
                    .collect(),
            ))
        }
        "histogram_quantile" => {
            let q = ev.eval_scalar(args[0], s)?;
            let vs = ev.eval_vector(args[1], s)?;
            let mut out = Vec::with_capacity(vs.len());
            for (i, v) in vs.iter().enumerate() {
                let r = histogram_quantile(q[i], v);
                check_unique(&r)?;
                out.push(r);
            }
            Ok(Ev::Vector(out))
        }
        // Native histograms are not stored: these functions see no histogram samples.
        "histogram_count" | "histogram_sum" | "histogram_fraction" => {
            for a in args {
                ev.eval(a, s)?;
            }
            Ok(Ev::Vector(vec![Vec::new(); s.n]))
        }
        _ => {
            if let Some(f) = instant_fns::math_function(name) {
                let vs = ev.eval_vector(args[0], s)?;
                return map_values(vs, |_, v| f(v));
            }
            Err(unimplemented(name))
        }
    }
}

/// Go's `strconv.ParseFloat` for a bucket bound (`+Inf`, `1e3`, `0.5`).
fn parse_le(s: &str) -> Option<f64> {
    let t = s.trim_start_matches('+');
    if t.len() + 1 < s.len() {
        return None;
    }
    match t.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => Some(if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }),
        _ => s.parse::<f64>().ok(),
    }
}

/// `histogram_quantile(q, v)` at one step: buckets grouped by their labels without `le`,
/// output without `le` and the metric name, in order of first appearance.
fn histogram_quantile(q: f64, v: &[Elem]) -> Vector {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<(Labels, Vec<(f64, f64)>)> = Vec::new();
    for e in v {
        let Some(le) = e.labels.get("le").and_then(parse_le) else {
            continue;
        };
        let key = (*e.labels).clone().without("le");
        let gi = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key.without(METRIC_NAME), Vec::new()));
            groups.len() - 1
        });
        groups[gi].1.push((le, e.v));
    }
    groups
        .into_iter()
        .map(|(labels, mut buckets)| Elem {
            labels: Rc::new(labels),
            v: quantile::bucket_quantile(q, &mut buckets),
        })
        .collect()
}

/// Go's `regexp.Regexp.Expand` template syntax, which the `regex` crate shares (`$1`,
/// `${name}`, `$$`; `$1x` names the group `1x`).
fn label_replace(ev: &Evaluator, args: &[&Expr], s: &Steps) -> Result<Ev> {
    let vs = ev.eval_vector(args[0], s)?;
    let dst = string_arg(args[1])?;
    let repl = string_arg(args[2])?;
    let src = string_arg(args[3])?;
    let regex_str = string_arg(args[4])?;
    let re = regex::Regex::new(&format!("^(?:{regex_str})$")).map_err(|_| {
        PromqlError::Execution(format!(
            "invalid regular expression in label_replace(): {regex_str}"
        ))
    })?;
    if !is_valid_label_name(&dst) {
        return Err(PromqlError::Execution(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let mut cache: HashMap<Lbl, Lbl> = HashMap::new();
    let mut out = Vec::with_capacity(vs.len());
    for v in vs {
        let r: Vector = v
            .into_iter()
            .map(|e| {
                let labels = cache
                    .entry(e.labels.clone())
                    .or_insert_with(|| {
                        let src_val = e.labels.get(&src).unwrap_or("");
                        match re.captures(src_val) {
                            None => e.labels.clone(),
                            Some(caps) => {
                                let mut res = String::new();
                                caps.expand(&repl, &mut res);
                                Rc::new((*e.labels).clone().with(&dst, &res))
                            }
                        }
                    })
                    .clone();
                Elem { labels, v: e.v }
            })
            .collect();
        check_unique(&r)?;
        out.push(r);
    }
    Ok(Ev::Vector(out))
}

fn label_join(ev: &Evaluator, args: &[&Expr], s: &Steps) -> Result<Ev> {
    let vs = ev.eval_vector(args[0], s)?;
    let dst = string_arg(args[1])?;
    let sep = string_arg(args[2])?;
    let mut srcs = Vec::new();
    for a in &args[3..] {
        let src = string_arg(a)?;
        if !is_valid_label_name(&src) {
            return Err(PromqlError::Execution(format!(
                "invalid source label name in label_join(): {src}"
            )));
        }
        srcs.push(src);
    }
    if !is_valid_label_name(&dst) {
        return Err(PromqlError::Execution(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    let mut cache: HashMap<Lbl, Lbl> = HashMap::new();
    let mut out = Vec::with_capacity(vs.len());
    for v in vs {
        let r: Vector = v
            .into_iter()
            .map(|e| {
                let labels = cache
                    .entry(e.labels.clone())
                    .or_insert_with(|| {
                        let joined: Vec<&str> =
                            srcs.iter().map(|n| e.labels.get(n).unwrap_or("")).collect();
                        Rc::new((*e.labels).clone().with(&dst, &joined.join(&sep)))
                    })
                    .clone();
                Elem { labels, v: e.v }
            })
            .collect();
        check_unique(&r)?;
        out.push(r);
    }
    Ok(Ev::Vector(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bounds_parse_like_go() {
        assert_eq!(parse_le("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_le("0.5"), Some(0.5));
        assert_eq!(parse_le("1e3"), Some(1000.0));
        assert_eq!(parse_le("++1"), None);
        assert_eq!(parse_le("abc"), None);
    }

    #[test]
    fn the_2_42_function_list() {
        assert!(is_supported("holt_winters"));
        assert!(is_supported("label_join"));
        assert!(!is_supported("sort_by_label"));
        assert!(!is_supported("mad_over_time"));
    }
}
