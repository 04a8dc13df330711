//! The aggregating pipes — `stats`, `histogram`, `top` — fed one matching record at a time
//! and turned into output rows at the end.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value as Json};
use sightline_model::time::format_rfc3339_ns;
use sightline_model::LogRecord;

use crate::ast::{Agg, AggFunc, FieldName, Pipe};
use crate::matcher::{field_exists, field_number, field_text};
use crate::render::number_json;

/// The state of one aggregating pipe.
pub(crate) enum Aggregator<'q> {
    Stats {
        aggs: &'q [Agg],
        by: &'q [FieldName],
        groups: HashMap<Vec<Option<String>>, Vec<AggState>>,
    },
    Histogram {
        step_ns: i64,
        buckets: BTreeMap<i64, u64>,
    },
    Top {
        n: usize,
        field: &'q FieldName,
        counts: HashMap<String, u64>,
    },
}

/// The running value of one aggregate in one group.
pub(crate) enum AggState {
    Count(u64),
    Distinct(HashSet<String>),
    /// Sum and number of values (for `sum` and `avg`).
    Sum(f64, u64),
    Min(Option<f64>),
    Max(Option<f64>),
    Values(Vec<f64>),
}

impl<'q> Aggregator<'q> {
    /// The aggregator of `pipe`, or `None` for a non-aggregating pipe.
    pub(crate) fn new(pipe: &'q Pipe) -> Option<Self> {
        Some(match pipe {
            Pipe::Stats { aggs, by } => Self::Stats {
                aggs,
                by,
                groups: HashMap::new(),
            },
            Pipe::Histogram { step_ns } => Self::Histogram {
                step_ns: *step_ns,
                buckets: BTreeMap::new(),
            },
            Pipe::Top { n, field } => Self::Top {
                n: *n,
                field,
                counts: HashMap::new(),
            },
            Pipe::Fields(_) | Pipe::Limit(_) => return None,
        })
    }

    /// Adds one matching record.
    pub(crate) fn add(&mut self, r: &LogRecord) {
        match self {
            Self::Stats { aggs, by, groups } => {
                let key: Vec<Option<String>> = by
                    .iter()
                    .map(|f| field_text(r, &f.field).map(|t| t.into_owned()))
                    .collect();
                let states = groups
                    .entry(key)
                    .or_insert_with(|| aggs.iter().map(AggState::new).collect());
                for (agg, st) in aggs.iter().zip(states.iter_mut()) {
                    st.add(agg, r);
                }
            }
            Self::Histogram { step_ns, buckets } => {
                let step = i128::from(*step_ns);
                let start = i128::from(r.timestamp).div_euclid(step) * step;
                let start = i64::try_from(start).unwrap_or(i64::MIN);
                *buckets.entry(start).or_default() += 1;
            }
            Self::Top { field, counts, .. } => {
                if let Some(t) = field_text(r, &field.field) {
                    *counts.entry(t.into_owned()).or_default() += 1;
                }
            }
        }
    }

    /// The output rows.
    pub(crate) fn finish(self) -> Vec<Json> {
        match self {
            Self::Stats {
                aggs,
                by,
                mut groups,
            } => {
                if by.is_empty() && groups.is_empty() {
                    groups.insert(Vec::new(), aggs.iter().map(AggState::new).collect());
                }
                let mut rows: Vec<(Vec<Option<String>>, Vec<Json>)> = groups
                    .into_iter()
                    .map(|(k, states)| {
                        let vals = states
                            .into_iter()
                            .zip(aggs.iter())
                            .map(|(s, a)| s.finish(a));
                        (k, vals.collect())
                    })
                    .collect();
                rows.sort_by(|(ka, va), (kb, vb)| {
                    let num = |v: &[Json]| v.first().and_then(Json::as_f64);
                    cmp_desc(num(va), num(vb)).then_with(|| ka.cmp(kb))
                });
                rows.into_iter()
                    .map(|(key, vals)| {
                        let mut m = Map::new();
                        for (f, k) in by.iter().zip(key) {
                            m.insert(f.name.clone(), k.map_or(Json::Null, Json::String));
                        }
                        for (a, v) in aggs.iter().zip(vals) {
                            m.insert(a.name.clone(), v);
                        }
                        Json::Object(m)
                    })
                    .collect()
            }
            Self::Histogram { buckets, .. } => buckets
                .into_iter()
                .map(|(start, n)| {
                    let mut m = Map::new();
                    m.insert("time".into(), Json::String(format_rfc3339_ns(start)));
                    m.insert("count".into(), Json::from(n));
                    Json::Object(m)
                })
                .collect(),
            Self::Top { n, field, counts } => {
                let mut v: Vec<(String, u64)> = counts.into_iter().collect();
                v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                v.truncate(n);
                v.into_iter()
                    .map(|(val, c)| {
                        let mut m = Map::new();
                        m.insert(field.name.clone(), Json::String(val));
                        m.insert("count".into(), Json::from(c));
                        Json::Object(m)
                    })
                    .collect()
            }
        }
    }
}

/// Descending order of optional numbers, missing ones last.
fn cmp_desc(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

impl AggState {
    fn new(agg: &Agg) -> Self {
        match agg.func {
            AggFunc::Count => Self::Count(0),
            AggFunc::CountDistinct => Self::Distinct(HashSet::new()),
            AggFunc::Sum | AggFunc::Avg => Self::Sum(0.0, 0),
            AggFunc::Min => Self::Min(None),
            AggFunc::Max => Self::Max(None),
            AggFunc::Percentile(_) => Self::Values(Vec::new()),
        }
    }

    fn add(&mut self, agg: &Agg, r: &LogRecord) {
        let num = || {
            agg.field
                .as_ref()
                .and_then(|f| field_number(r, &f.field))
                .filter(|x| !x.is_nan())
        };
        match self {
            Self::Count(n) => {
                if agg.field.as_ref().is_none_or(|f| field_exists(r, &f.field)) {
                    *n += 1;
                }
            }
            Self::Distinct(set) => {
                if let Some(t) = agg.field.as_ref().and_then(|f| field_text(r, &f.field)) {
                    if !set.contains(t.as_ref()) {
                        set.insert(t.into_owned());
                    }
                }
            }
            Self::Sum(s, n) => {
                if let Some(x) = num() {
                    *s += x;
                    *n += 1;
                }
            }
            Self::Min(m) => {
                if let Some(x) = num() {
                    *m = Some(m.map_or(x, |m| m.min(x)));
                }
            }
            Self::Max(m) => {
                if let Some(x) = num() {
                    *m = Some(m.map_or(x, |m| m.max(x)));
                }
            }
            Self::Values(v) => {
                if let Some(x) = num() {
                    v.push(x);
                }
            }
        }
    }

    fn finish(self, agg: &Agg) -> Json {
        match self {
            Self::Count(n) => Json::from(n),
            Self::Distinct(s) => Json::from(s.len() as u64),
            Self::Sum(_, 0) if agg.func == AggFunc::Avg => Json::Null,
            Self::Sum(s, n) if agg.func == AggFunc::Avg => number_json(s / n as f64),
            Self::Sum(s, _) => number_json(s),
            Self::Min(m) | Self::Max(m) => m.map_or(Json::Null, number_json),
            Self::Values(mut v) => match agg.func {
                AggFunc::Percentile(p) => nearest_rank(&mut v, p).map_or(Json::Null, number_json),
                _ => Json::Null,
            },
        }
    }
}

/// The `p`-th percentile by nearest rank: the smallest value with at least `p`% of the
/// values at or below it (`p0` is the minimum). `None` for no values.
fn nearest_rank(v: &mut [f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = (p / 100.0 * v.len() as f64).ceil() as usize;
    v.get(rank.clamp(1, v.len()) - 1).copied()
}
