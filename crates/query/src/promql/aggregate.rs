//! PromQL aggregation operators (`sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`,
//! `stdvar`, `topk`, `bottomk`, `quantile`, `count_values`) with `by`/`without`, computed
//! as Prometheus 2.42's `aggregation()`: the same float algorithms (plain summation, the
//! incremental mean for `avg` with its infinity handling, Welford's update for
//! `stddev`/`stdvar`), the same heaps for `topk`/`bottomk` and groups output in order of
//! first appearance.

use std::collections::HashMap;
use std::rc::Rc;

use promql_parser::parser::{AggregateExpr, LabelModifier};
use sightline_model::{Labels, METRIC_NAME};

use super::binary::retain;
use super::engine::{check_unique, go_float, unwrap_parens, Elem, Ev, Evaluator, Result, Steps};
use super::error::PromqlError;
use super::quantile::quantile;

/// The aggregation operators of Prometheus 2.42.
pub(super) fn is_supported(op: &str) -> bool {
    matches!(
        op,
        "sum"
            | "avg"
            | "min"
            | "max"
            | "count"
            | "group"
            | "stddev"
            | "stdvar"
            | "topk"
            | "bottomk"
            | "quantile"
            | "count_values"
    )
}

/// The parameter of an aggregation at one step.
#[derive(Clone, Copy, Debug)]
pub(super) enum Param<'a> {
    None,
    Num(f64),
    Str(&'a str),
}

/// Evaluates an aggregation at every step.
pub(super) fn eval(ev: &Evaluator, a: &AggregateExpr, s: &Steps) -> Result<Ev> {
    let op = a.op.to_string();
    let (without, mut grouping) = match &a.modifier {
        None => (false, Vec::new()),
        Some(LabelModifier::Include(l)) => (false, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (true, l.labels.clone()),
    };
    grouping.sort();
    let param = match &a.param {
        None => None,
        Some(p) => Some(ev.eval(unwrap_parens(p), s)?),
    };
    let input = ev.eval_vector(&a.expr, s)?;
    let mut out = Vec::with_capacity(input.len());
    // The input's steps share their label sets (`Rc`s): each one's key is computed once.
    let mut keys = GroupKeys::default();
    for (i, vec) in input.iter().enumerate() {
        let p = match &param {
            None => Param::None,
            Some(Ev::Scalar(v)) => Param::Num(v[i]),
            Some(Ev::Str(s)) => Param::Str(s),
            Some(_) => {
                return Err(PromqlError::BadData(format!(
                    "invalid parameter of aggregation {op}"
                )));
            }
        };
        let r = aggregate_keyed(&op, &grouping, without, p, vec, &mut keys)?;
        check_unique(&r)?;
        out.push(r);
    }
    Ok(Ev::Vector(out))
}

/// One group's running state.
struct Group {
    labels: Labels,
    value: f64,
    mean: f64,
    count: u64,
    /// `topk`/`bottomk`: a heap as Go's `container/heap`; `quantile`: the values.
    heap: Vec<Elem>,
}

/// The grouping key of `l`: the `by` labels, or all but the `without` labels and the
/// metric name.
fn grouping_key(l: &Labels, grouping: &[String], without: bool) -> String {
    let mut key = String::new();
    for (k, v) in l.iter() {
        let included = if without {
            k != METRIC_NAME && !grouping.iter().any(|g| g == k)
        } else {
            grouping.iter().any(|g| g == k)
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

/// Grouping keys interned per input label set across the steps of one aggregation: a
/// range query evaluates the same series at every step, and building the key string for
/// every series at every step was most of `sum(rate(x[5m]))`'s time.
#[derive(Default)]
pub(super) struct GroupKeys {
    /// By label-set address; the `Rc` held here keeps the address from being reused by
    /// another label set while the cache lives.
    by_ptr: HashMap<*const Labels, (Rc<Labels>, u32)>,
    ids: HashMap<String, u32>,
    /// The previous vector's (address, key id) by position: steps of a range query list
    /// the same series in the same order, so most lookups are one pointer comparison.
    prev: Vec<(*const Labels, u32)>,
    cur: Vec<(*const Labels, u32)>,
    /// Group index + 1 per key id within the current vector (0: no group yet).
    slots: Vec<usize>,
}

impl GroupKeys {
    fn intern(&mut self, key: String) -> u32 {
        let n = self.ids.len() as u32;
        *self.ids.entry(key).or_insert(n)
    }

    /// The key id of the `pos`-th element `l` of the current vector.
    fn id(&mut self, pos: usize, l: &Rc<Labels>, grouping: &[String], without: bool) -> u32 {
        let ptr = Rc::as_ptr(l);
        let id = match self.prev.get(pos) {
            Some(&(p, id)) if p == ptr => id,
            _ => {
                if let Some((_, id)) = self.by_ptr.get(&ptr) {
                    *id
                } else {
                    let id = self.intern(grouping_key(l, grouping, without));
                    self.by_ptr.insert(ptr, (l.clone(), id));
                    id
                }
            }
        };
        self.cur.push((ptr, id));
        id
    }

    /// Starts a vector: the last one's positions become the hints.
    fn start(&mut self) {
        std::mem::swap(&mut self.prev, &mut self.cur);
        self.cur.clear();
    }

    /// The group index of key `id` in the current vector.
    fn group(&self, id: u32) -> Option<usize> {
        self.slots.get(id as usize).and_then(|&g| g.checked_sub(1))
    }

    fn set_group(&mut self, id: u32, g: usize) {
        let i = id as usize;
        if self.slots.len() <= i {
            self.slots.resize(i + 1, 0);
        }
        self.slots[i] = g + 1;
    }
}

/// Whether `s` is a valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub(super) fn is_valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`.
pub(super) fn format_float_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// Aggregates one vector (Prometheus' `aggregation()`); `grouping` is sorted.
#[cfg(test)]
pub(super) fn aggregate(
    op: &str,
    grouping: &[String],
    without: bool,
    param: Param,
    vec: &[Elem],
) -> Result<Vec<Elem>> {
    aggregate_keyed(op, grouping, without, param, vec, &mut GroupKeys::default())
}

/// [`aggregate`] with grouping keys cached in `keys` (used with one `grouping`/`without`).
pub(super) fn aggregate_keyed(
    op: &str,
    grouping: &[String],
    without: bool,
    param: Param,
    vec: &[Elem],
    keys: &mut GroupKeys,
) -> Result<Vec<Elem>> {
    let mut k: i64 = 0;
    if op == "topk" || op == "bottomk" {
        let f = match param {
            Param::Num(f) => f,
            _ => f64::NAN,
        };
        // Go's convertibleToInt64 (NaN fails both comparisons).
        if !(-9_223_372_036_854_775_808.0..=9_223_372_036_854_774_784.0).contains(&f) {
            return Err(PromqlError::Execution(format!(
                "Scalar value {} overflows int64",
                go_float(f)
            )));
        }
        k = f as i64;
        if k < 1 {
            return Ok(Vec::new());
        }
    }
    let q = match param {
        Param::Num(f) => f,
        _ => f64::NAN,
    };
    let mut grouping: Vec<String> = grouping.to_vec();
    let mut value_label = "";
    if op == "count_values" {
        value_label = match param {
            Param::Str(s) => s,
            _ => "",
        };
        if !is_valid_label_name(value_label) {
            return Err(PromqlError::Execution(format!(
                "invalid label name {value_label:?}"
            )));
        }
        if !without {
            grouping.push(value_label.to_string());
            grouping.sort();
        }
    }

    keys.start();
    let mut group_keys: Vec<u32> = Vec::new();
    let mut groups: Vec<Group> = Vec::new();
    for (pos, s) in vec.iter().enumerate() {
        let counted;
        let (metric, key): (&Labels, u32) = if op == "count_values" {
            counted = (*s.labels).clone().with(value_label, &format_float_f(s.v));
            let key = keys.intern(grouping_key(&counted, &grouping, without));
            (&counted, key)
        } else {
            (&s.labels, keys.id(pos, &s.labels, &grouping, without))
        };
        let Some(gi) = keys.group(key) else {
            let labels = if without {
                retain(metric, |k| {
                    k != METRIC_NAME && !grouping.iter().any(|g| g == k)
                })
            } else if !grouping.is_empty() {
                retain(metric, |k| grouping.iter().any(|g| g == k))
            } else {
                Labels::new()
            };
            let mut g = Group {
                labels,
                value: s.v,
                mean: s.v,
                count: 1,
                heap: Vec::new(),
            };
            match op {
                "stdvar" | "stddev" => g.value = 0.0,
                "topk" | "bottomk" | "quantile" => g.heap.push(s.clone()),
                "group" => g.value = 1.0,
                _ => {}
            }
            keys.set_group(key, groups.len());
            group_keys.push(key);
            groups.push(g);
            continue;
        };
        let g = &mut groups[gi];
        match op {
            "sum" => g.value += s.v,
            "avg" => {
                g.count += 1;
                if g.mean.is_infinite() {
                    if s.v.is_infinite() && (g.mean > 0.0) == (s.v > 0.0) {
                        // Infinities of the same sign: the mean is already right.
                        continue;
                    }
                    if !s.v.is_infinite() && !s.v.is_nan() {
                        // An infinite mean stays infinite with a finite value added
                        // (the update below would compute Inf - Inf = NaN).
                        continue;
                    }
                }
                // Dividing each side of the `-` by the count avoids float64 overflows.
                g.mean += s.v / g.count as f64 - g.mean / g.count as f64;
            }
            "group" => {}
            "max" => {
                if g.value < s.v || g.value.is_nan() {
                    g.value = s.v;
                }
            }
            "min" => {
                if g.value > s.v || g.value.is_nan() {
                    g.value = s.v;
                }
            }
            "count" | "count_values" => g.count += 1,
            "stdvar" | "stddev" => {
                g.count += 1;
                let delta = s.v - g.mean;
                g.mean += delta / g.count as f64;
                g.value += delta * (s.v - g.mean);
            }
            "topk" => {
                // Min-heap: the smallest kept value (NaN counts as smallest) on top.
                let less = |a: &Elem, b: &Elem| a.v.is_nan() || a.v < b.v;
                if (g.heap.len() as i64) < k || g.heap[0].v < s.v || g.heap[0].v.is_nan() {
                    if g.heap.len() as i64 == k {
                        if k == 1 {
                            g.heap[0] = s.clone();
                            continue;
                        }
                        heap_pop(&mut g.heap, less);
                    }
                    heap_push(&mut g.heap, s.clone(), less);
                }
            }
            "bottomk" => {
                let less = |a: &Elem, b: &Elem| a.v.is_nan() || a.v > b.v;
                if (g.heap.len() as i64) < k || g.heap[0].v > s.v || g.heap[0].v.is_nan() {
                    if g.heap.len() as i64 == k {
                        if k == 1 {
                            g.heap[0] = s.clone();
                            continue;
                        }
                        heap_pop(&mut g.heap, less);
                    }
                    heap_push(&mut g.heap, s.clone(), less);
                }
            }
            "quantile" => g.heap.push(s.clone()),
            _ => {
                return Err(PromqlError::BadData(format!(
                    "unknown aggregation operator {op:?}"
                )));
            }
        }
    }

    for &k in &group_keys {
        keys.slots[k as usize] = 0;
    }
    let mut out = Vec::with_capacity(groups.len());
    for mut g in groups {
        let value = match op {
            "avg" => g.mean,
            "count" | "count_values" => g.count as f64,
            "stdvar" => g.value / g.count as f64,
            "stddev" => (g.value / g.count as f64).sqrt(),
            "topk" | "bottomk" => {
                // The heap holds the kept samples worst first; output them best first
                // (Go's sort.Sort is an insertion sort for so few elements, hence stable).
                let topk = op == "topk";
                let less = |a: &Elem, b: &Elem| {
                    if topk {
                        a.v.is_nan() || a.v < b.v
                    } else {
                        a.v.is_nan() || a.v > b.v
                    }
                };
                if g.heap.len() > 1 {
                    stable_sort_by_less(&mut g.heap, |a, b| less(b, a));
                }
                out.extend(g.heap);
                continue;
            }
            "quantile" => {
                let mut values: Vec<f64> = g.heap.iter().map(|e| e.v).collect();
                quantile(q, &mut values)
            }
            _ => g.value,
        };
        out.push(Elem {
            labels: Rc::new(g.labels),
            v: value,
        });
    }
    Ok(out)
}

/// Go's `container/heap.Push`.
fn heap_push<T>(h: &mut Vec<T>, x: T, less: impl Fn(&T, &T) -> bool) {
    h.push(x);
    let mut j = h.len() - 1;
    while j > 0 {
        let i = (j - 1) / 2;
        if i == j || !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

/// Go's `container/heap.Pop` (the popped element is discarded).
fn heap_pop<T>(h: &mut Vec<T>, less: impl Fn(&T, &T) -> bool) {
    let n = h.len() - 1;
    h.swap(0, n);
    // down(h, 0, n)
    let mut i = 0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        let j2 = j1 + 1;
        if j2 < n && less(&h[j2], &h[j1]) {
            j = j2;
        }
        if !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
    h.pop();
}

/// Go's insertion sort (what `sort.Sort` does for at most 12 elements): stable.
fn stable_sort_by_less<T>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && less(&v[j], &v[j - 1]) {
            v.swap(j, j - 1);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elem(pairs: &[(&str, &str)], v: f64) -> Elem {
        Elem {
            labels: Rc::new(Labels::from_pairs(pairs.iter().copied()).unwrap()),
            v,
        }
    }

    fn values(out: &[Elem]) -> Vec<f64> {
        out.iter().map(|e| e.v).collect()
    }

    #[test]
    fn cached_keys_follow_label_sets_across_steps() {
        let a = elem(&[("job", "a"), ("i", "1")], 1.0);
        let b = elem(&[("job", "b"), ("i", "1")], 2.0);
        let a2 = elem(&[("job", "a"), ("i", "2")], 4.0);
        let by = ["job".to_string()];
        let mut keys = GroupKeys::default();
        let step = |keys: &mut GroupKeys, v: &[Elem]| {
            let out = aggregate_keyed("sum", &by, false, Param::None, v, keys).unwrap();
            out.iter()
                .map(|e| (e.labels.to_string(), e.v))
                .collect::<Vec<_>>()
        };
        let (ja, jb) = ("{job=\"a\"}".to_string(), "{job=\"b\"}".to_string());
        assert_eq!(
            step(&mut keys, &[a.clone(), b.clone()]),
            vec![(ja.clone(), 1.0), (jb.clone(), 2.0)]
        );
        // Another order, a series missing, a new label set in the same group.
        assert_eq!(
            step(&mut keys, &[b.clone(), a2.clone(), a.clone()]),
            vec![(jb.clone(), 2.0), (ja.clone(), 5.0)]
        );
        assert_eq!(step(&mut keys, &[a2]), vec![(ja, 4.0)]);
        assert_eq!(step(&mut keys, &[]), vec![]);
        assert_eq!(step(&mut keys, &[b]), vec![(jb, 2.0)]);
    }

    #[test]
    fn sum_by_and_without_group_labels() {
        let v = vec![
            elem(&[("__name__", "x"), ("job", "a"), ("i", "1")], 1.0),
            elem(&[("__name__", "x"), ("job", "b"), ("i", "1")], 2.0),
            elem(&[("__name__", "x"), ("job", "a"), ("i", "2")], 4.0),
        ];
        let by = aggregate("sum", &["job".into()], false, Param::None, &v).unwrap();
        assert_eq!(values(&by), vec![5.0, 2.0]);
        assert_eq!(by[0].labels.to_string(), "{job=\"a\"}");
        let without = aggregate("sum", &["i".into()], true, Param::None, &v).unwrap();
        assert_eq!(values(&without), vec![5.0, 2.0]);
        assert_eq!(without[1].labels.to_string(), "{job=\"b\"}");
        let all = aggregate("sum", &[], false, Param::None, &v).unwrap();
        assert_eq!(values(&all), vec![7.0]);
        assert!(all[0].labels.is_empty());
    }

    #[test]
    fn avg_uses_the_incremental_mean_and_keeps_infinities() {
        let v = vec![elem(&[("a", "1")], 1.0), elem(&[("a", "2")], 2.0)];
        assert_eq!(
            values(&aggregate("avg", &[], false, Param::None, &v).unwrap()),
            vec![1.5]
        );
        let big = vec![elem(&[("a", "1")], f64::MAX), elem(&[("a", "2")], f64::MAX)];
        // A plain sum would overflow to +Inf.
        assert_eq!(
            values(&aggregate("avg", &[], false, Param::None, &big).unwrap()),
            vec![f64::MAX]
        );
        let inf = vec![elem(&[("a", "1")], f64::INFINITY), elem(&[("a", "2")], 3.0)];
        assert_eq!(
            values(&aggregate("avg", &[], false, Param::None, &inf).unwrap()),
            vec![f64::INFINITY]
        );
    }

    #[test]
    fn stddev_stdvar_min_max_count_group() {
        let v: Vec<Elem> = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
            .iter()
            .enumerate()
            .map(|(i, &x)| elem(&[("i", &i.to_string())], x))
            .collect();
        let one = |op: &str| aggregate(op, &[], false, Param::None, &v).unwrap()[0].v;
        assert_eq!(one("stddev"), 2.0);
        assert_eq!(one("stdvar"), 4.0);
        assert_eq!(one("min"), 2.0);
        assert_eq!(one("max"), 9.0);
        assert_eq!(one("count"), 8.0);
        assert_eq!(one("group"), 1.0);
        // NaN is replaced by any later value in min/max.
        let n = vec![elem(&[("i", "1")], f64::NAN), elem(&[("i", "2")], 3.0)];
        assert_eq!(
            aggregate("max", &[], false, Param::None, &n).unwrap()[0].v,
            3.0
        );
    }

    #[test]
    fn topk_bottomk_keep_series_labels_and_order() {
        let v = vec![
            elem(&[("__name__", "x"), ("i", "1")], 1.0),
            elem(&[("__name__", "x"), ("i", "2")], 5.0),
            elem(&[("__name__", "x"), ("i", "3")], f64::NAN),
            elem(&[("__name__", "x"), ("i", "4")], 3.0),
        ];
        let top = aggregate("topk", &[], false, Param::Num(2.0), &v).unwrap();
        assert_eq!(values(&top), vec![5.0, 3.0]);
        assert_eq!(top[0].labels.metric_name(), Some("x"));
        let bottom = aggregate("bottomk", &[], false, Param::Num(2.9), &v).unwrap();
        assert_eq!(values(&bottom), vec![1.0, 3.0]);
        assert!(aggregate("topk", &[], false, Param::Num(0.0), &v)
            .unwrap()
            .is_empty());
        let err = aggregate("topk", &[], false, Param::Num(f64::NAN), &v).unwrap_err();
        assert_eq!(err.to_string(), "Scalar value NaN overflows int64");
    }

    #[test]
    fn count_values_adds_the_value_label() {
        let v = vec![
            elem(&[("i", "1")], 1.0),
            elem(&[("i", "2")], 1.0),
            elem(&[("i", "3")], 2.5),
        ];
        let out = aggregate("count_values", &[], false, Param::Str("val"), &v).unwrap();
        assert_eq!(values(&out), vec![2.0, 1.0]);
        assert_eq!(out[0].labels.to_string(), "{val=\"1\"}");
        assert_eq!(out[1].labels.to_string(), "{val=\"2.5\"}");
        let err = aggregate("count_values", &[], false, Param::Str("a-b"), &v).unwrap_err();
        assert_eq!(err.error_type(), "execution");
    }

    #[test]
    fn go_heap_matches_container_heap() {
        let less = |a: &i32, b: &i32| a < b;
        let mut h = Vec::new();
        for x in [5, 3, 8, 1, 9, 2] {
            heap_push(&mut h, x, less);
        }
        assert_eq!(h[0], 1);
        heap_pop(&mut h, less);
        assert_eq!(h[0], 2);
        assert_eq!(h.len(), 5);
    }
}
