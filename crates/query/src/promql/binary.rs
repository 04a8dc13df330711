//! PromQL binary operators, as Prometheus 2.42's `VectorBinop`, `VectorscalarBinop`,
//! `scalarBinop` and the set operators `and`/`or`/`unless`: vector matching with
//! `on`/`ignoring` and `group_left`/`group_right`, comparison filters and `bool`, and the
//! metric-name dropping rules (arithmetic drops `__name__`, comparisons keep it unless
//! `bool` is given; `atan2` keeps it, as in 2.42).

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};
use sightline_model::{Labels, METRIC_NAME};

use super::engine::{
    check_unique, go_labels_string, Elem, Ev, Evaluator, Lbl, Result, Steps, Vector,
};
use super::error::PromqlError;

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "%" => Op::Mod,
            "^" => Op::Pow,
            "atan2" => Op::Atan2,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            "<" => Op::Lt,
            ">=" => Op::Ge,
            "<=" => Op::Le,
            "and" => Op::And,
            "or" => Op::Or,
            "unless" => Op::Unless,
            _ => return None,
        })
    }

    fn is_comparison(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Gt | Op::Lt | Op::Ge | Op::Le)
    }

    /// Prometheus' `shouldDropMetricName`: the arithmetic operators but not `atan2`.
    fn drops_metric_name(self) -> bool {
        matches!(
            self,
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Mod | Op::Pow
        )
    }
}

/// Prometheus' `vectorElemBinop`: the value and, for comparisons, whether it is kept (a
/// comparison's value is its left operand).
pub(super) fn elem_binop(op: Op, l: f64, r: f64) -> (f64, bool) {
    match op {
        Op::Add => (l + r, true),
        Op::Sub => (l - r, true),
        Op::Mul => (l * r, true),
        Op::Div => (l / r, true),
        Op::Mod => (l % r, true),
        Op::Pow => (l.powf(r), true),
        Op::Atan2 => (l.atan2(r), true),
        Op::Eq => (l, l == r),
        Op::Ne => (l, l != r),
        Op::Gt => (l, l > r),
        Op::Lt => (l, l < r),
        Op::Ge => (l, l >= r),
        Op::Le => (l, l <= r),
        Op::And | Op::Or | Op::Unless => {
            panic!("BUG: set operator {op:?} reached the element operator")
        }
    }
}

/// Prometheus' `scalarBinop`: comparisons give 0 or 1 (the parser requires `bool`).
pub(super) fn scalar_binop(op: Op, l: f64, r: f64) -> f64 {
    let (v, keep) = elem_binop(op, l, r);
    if op.is_comparison() {
        if keep {
            1.0
        } else {
            0.0
        }
    } else {
        v
    }
}

/// How the two sides of a vector operation are matched.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Matching {
    pub card: Card,
    /// `on(...)` when true, `ignoring(...)` (or no modifier) when false.
    pub on: bool,
    pub labels: Vec<String>,
    /// The `group_left(...)`/`group_right(...)` labels copied from the "one" side.
    pub include: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

impl Matching {
    fn from_expr(b: &BinaryExpr, set_op: bool) -> Matching {
        let mut m = Matching {
            card: if set_op {
                Card::ManyToMany
            } else {
                Card::OneToOne
            },
            on: false,
            labels: Vec::new(),
            include: Vec::new(),
        };
        if let Some(modifier) = &b.modifier {
            match &modifier.matching {
                Some(LabelModifier::Include(l)) => {
                    m.on = true;
                    m.labels = l.labels.clone();
                }
                Some(LabelModifier::Exclude(l)) => m.labels = l.labels.clone(),
                None => {}
            }
            match &modifier.card {
                VectorMatchCardinality::ManyToOne(l) if !set_op => {
                    m.card = Card::ManyToOne;
                    m.include = l.labels.clone();
                }
                VectorMatchCardinality::OneToMany(l) if !set_op => {
                    m.card = Card::OneToMany;
                    m.include = l.labels.clone();
                }
                _ => {}
            }
        }
        m
    }

    /// The join key of a series: the `on` labels, or all but the `ignoring` labels and
    /// the metric name.
    fn signature(&self, l: &Labels) -> String {
        let mut key = String::new();
        for (k, v) in l.iter() {
            let included = if self.on {
                self.labels.iter().any(|n| n == k)
            } else {
                k != METRIC_NAME && !self.labels.iter().any(|n| n == k)
            };
            if included {
                key.push_str(k);
                key.push('\u{ff}');
                key.push_str(v);
                key.push('\u{ff}');
            }
        }
        key
    }

    /// The labels the signature is made of (Go's `MatchLabels`), for error messages.
    fn match_labels(&self, l: &Labels) -> Labels {
        retain(l, |k| {
            if self.on {
                self.labels.iter().any(|n| n == k)
            } else {
                k != METRIC_NAME && !self.labels.iter().any(|n| n == k)
            }
        })
    }
}

/// `l` with only the labels for which `keep` holds.
pub(super) fn retain(l: &Labels, keep: impl Fn(&str) -> bool) -> Labels {
    Labels::from_pairs(l.iter().filter(|(k, _)| keep(k)))
        .expect("BUG: a subset of valid labels is valid")
}

/// Evaluates a binary expression at every step.
pub(super) fn eval(ev: &Evaluator, b: &BinaryExpr, s: &Steps) -> Result<Ev> {
    let op_name = b.op.to_string();
    let op = Op::parse(&op_name).ok_or_else(|| {
        PromqlError::BadData(format!("binary operator {op_name:?} is not supported"))
    })?;
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ev.eval(&b.lhs, s)?;
    let rhs = ev.eval(&b.rhs, s)?;
    match (lhs, rhs) {
        (Ev::Scalar(l), Ev::Scalar(r)) => Ok(Ev::Scalar(
            l.iter()
                .zip(&r)
                .map(|(&l, &r)| scalar_binop(op, l, r))
                .collect(),
        )),
        (Ev::Vector(l), Ev::Scalar(r)) => {
            per_step(l, |i, v| Ok(vector_scalar(op, v, r[i], false, return_bool)))
        }
        (Ev::Scalar(l), Ev::Vector(r)) => {
            per_step(r, |i, v| Ok(vector_scalar(op, v, l[i], true, return_bool)))
        }
        (Ev::Vector(l), Ev::Vector(r)) => {
            let set_op = matches!(op, Op::And | Op::Or | Op::Unless);
            let m = Matching::from_expr(b, set_op);
            let mut r = r.into_iter();
            per_step(l, |_, lv| {
                let rv = r.next().unwrap_or_default();
                match op {
                    Op::And => Ok(vector_and(lv, &rv, &m)),
                    Op::Or => Ok(vector_or(lv, rv, &m)),
                    Op::Unless => Ok(vector_unless(lv, &rv, &m)),
                    _ => vector_binop(op, &lv, &rv, &m, return_bool),
                }
            })
        }
        _ => Err(PromqlError::BadData(
            "binary expression must contain only scalar and instant vector types".into(),
        )),
    }
}

fn per_step(input: Vec<Vector>, mut f: impl FnMut(usize, Vector) -> Result<Vector>) -> Result<Ev> {
    let mut out = Vec::with_capacity(input.len());
    for (i, v) in input.into_iter().enumerate() {
        let r = f(i, v)?;
        check_unique(&r)?;
        out.push(r);
    }
    Ok(Ev::Vector(out))
}

/// Prometheus' `VectorscalarBinop`; `swap` when the scalar is the left operand.
pub(super) fn vector_scalar(op: Op, v: Vector, s: f64, swap: bool, return_bool: bool) -> Vector {
    let mut out = Vec::with_capacity(v.len());
    let mut dropped: HashMap<Lbl, Lbl> = HashMap::new();
    for mut e in v {
        let (l, r) = if swap { (s, e.v) } else { (e.v, s) };
        let (mut value, mut keep) = elem_binop(op, l, r);
        // A comparison always keeps the vector element's value, even on the right.
        if op.is_comparison() && swap {
            value = r;
        }
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if keep {
            e.v = value;
            if op.drops_metric_name() || return_bool {
                e.labels = drop_name_cached(&mut dropped, &e.labels);
            }
            out.push(e);
        }
    }
    out
}

fn drop_name_cached(cache: &mut HashMap<Lbl, Lbl>, l: &Lbl) -> Lbl {
    if l.metric_name().is_none() {
        return l.clone();
    }
    cache
        .entry(l.clone())
        .or_insert_with(|| Rc::new((**l).clone().without(METRIC_NAME)))
        .clone()
}

/// Prometheus' `VectorBinop` for one-to-one, many-to-one and one-to-many matching.
pub(super) fn vector_binop(
    op: Op,
    lhs: &Vector,
    rhs: &Vector,
    m: &Matching,
    return_bool: bool,
) -> Result<Vector> {
    if m.card == Card::ManyToMany {
        panic!("BUG: many-to-many matching is only for set operators");
    }
    let (lhs, rhs) = if m.card == Card::OneToMany {
        (rhs, lhs)
    } else {
        (lhs, rhs)
    };
    // The right side is the "one" side: its signatures must be unique.
    let mut right: HashMap<String, &Elem> = HashMap::with_capacity(rhs.len());
    for rs in rhs {
        let sig = m.signature(&rs.labels);
        if let Some(dup) = right.get(&sig) {
            let side = if m.card == Card::OneToMany {
                "left"
            } else {
                "right"
            };
            return Err(PromqlError::Execution(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                go_labels_string(&m.match_labels(&rs.labels)),
                go_labels_string(&rs.labels),
                go_labels_string(&dup.labels),
            )));
        }
        right.insert(sig, rs);
    }
    // For one-to-one: the signatures already matched; for many-to-one: the result label
    // sets produced per signature.
    let mut matched: HashMap<String, HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    for ls in lhs {
        let sig = m.signature(&ls.labels);
        let Some(rs) = right.get(&sig) else {
            continue;
        };
        let (vl, vr) = if m.card == Card::OneToMany {
            (rs.v, ls.v)
        } else {
            (ls.v, rs.v)
        };
        let (mut value, keep) = elem_binop(op, vl, vr);
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let mut metric = result_metric(&ls.labels, &rs.labels, op, m);
        if return_bool {
            metric = metric.without(METRIC_NAME);
        }
        match matched.get_mut(&sig) {
            Some(_) if m.card == Card::OneToOne => {
                return Err(PromqlError::Execution(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                ));
            }
            Some(set) => {
                if !set.insert(metric.clone()) {
                    return Err(PromqlError::Execution(
                        "multiple matches for labels: grouping labels must ensure unique matches"
                            .into(),
                    ));
                }
            }
            None => {
                let mut set = HashSet::new();
                if m.card != Card::OneToOne {
                    set.insert(metric.clone());
                }
                matched.insert(sig, set);
            }
        }
        out.push(Elem {
            labels: Rc::new(metric),
            v: value,
        });
    }
    Ok(out)
}

/// Prometheus' `resultMetric`: the "many" side's labels, restricted to the `on` labels
/// (or without the `ignoring` ones) for one-to-one matching, plus the `group_x` labels
/// taken from the "one" side.
fn result_metric(lhs: &Labels, rhs: &Labels, op: Op, m: &Matching) -> Labels {
    let mut l = lhs.clone();
    if op.drops_metric_name() {
        l = l.without(METRIC_NAME);
    }
    if m.card == Card::OneToOne {
        if m.on {
            l = retain(&l, |k| m.labels.iter().any(|n| n == k));
        } else {
            l = retain(&l, |k| !m.labels.iter().any(|n| n == k));
        }
    }
    for name in &m.include {
        l = l.with(name, rhs.get(name).unwrap_or(""));
    }
    l
}

/// `lhs and rhs`: the left samples whose signature is on the right.
fn vector_and(lhs: Vector, rhs: &Vector, m: &Matching) -> Vector {
    let right: HashSet<String> = rhs.iter().map(|e| m.signature(&e.labels)).collect();
    lhs.into_iter()
        .filter(|e| right.contains(&m.signature(&e.labels)))
        .collect()
}

/// `lhs or rhs`: all left samples, then the right ones whose signature is not on the left.
fn vector_or(lhs: Vector, rhs: Vector, m: &Matching) -> Vector {
    let left: HashSet<String> = lhs.iter().map(|e| m.signature(&e.labels)).collect();
    let mut out = lhs;
    out.extend(
        rhs.into_iter()
            .filter(|e| !left.contains(&m.signature(&e.labels))),
    );
    out
}

/// `lhs unless rhs`: the left samples whose signature is not on the right.
fn vector_unless(lhs: Vector, rhs: &Vector, m: &Matching) -> Vector {
    let right: HashSet<String> = rhs.iter().map(|e| m.signature(&e.labels)).collect();
    lhs.into_iter()
        .filter(|e| !right.contains(&m.signature(&e.labels)))
        .collect()
}
