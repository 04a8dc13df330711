//! Quantile estimation, ported from Prometheus 2.42's `promql/quantile.go`:
//! [`bucket_quantile`] (Go's `bucketQuantile`, with `coalesceBuckets` and
//! `ensureMonotonic`) for `histogram_quantile` over classic `le` buckets, and [`quantile`]
//! (Go's `quantile`) for the `quantile` aggregation and `quantile_over_time`.

use std::cmp::Ordering;

/// The `q`-quantile of a classic histogram given as `(upper bound, cumulative count)`
/// buckets in any order (they are sorted here), interpolating linearly within the bucket
/// holding the rank, with a lower bound of 0 for the first bucket if its upper bound is
/// positive.
///
/// As in Prometheus 2.42: NaN if `q` is NaN, -Inf if `q < 0`, +Inf if `q > 1`; NaN if the
/// highest bucket is not `+Inf`, if fewer than 2 buckets remain after merging buckets
/// with equal bounds, or if there are no observations. A rank in the `+Inf` bucket gives
/// the second-highest bound; one in a first bucket with a bound `<= 0` gives that bound.
/// Decreasing counts (from non-atomic scrapes or `rate`) are raised to the running
/// maximum first.
pub fn bucket_quantile(q: f64, buckets: &mut Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // Go sorts with `a.upperBound < b.upperBound`; bounds come from parsed `le` labels,
    // a NaN bound sorts first here (Go's order would be unspecified).
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or_else(|| nan_first(a.0, b.0)));
    match buckets.last() {
        Some(&(le, _)) if le == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    coalesce_buckets(buckets);
    ensure_monotonic(buckets);
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    // Go's sort.Search over all but the last bucket: the first with count >= rank.
    let b = search(buckets.len() - 1, |i| buckets[i].1 >= rank);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let mut bucket_start = 0.0;
    let bucket_end = buckets[b].0;
    let mut count = buckets[b].1;
    if b > 0 {
        bucket_start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

fn nan_first(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// Go's `sort.Search`: the smallest `i` in `[0, n)` with `pred(i)`, or `n` (binary
/// search, assuming `pred` is false then true).
fn search(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if !pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Go's `coalesceBuckets`: merges adjacent buckets with the same upper bound (summing
/// their counts). The input is sorted.
fn coalesce_buckets(buckets: &mut Vec<(f64, f64)>) {
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(le, count) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == le => last.1 += count,
            _ => merged.push((le, count)),
        }
    }
    *buckets = merged;
}

/// Go's `ensureMonotonic`: raises every count to the maximum of the counts before it.
fn ensure_monotonic(buckets: &mut [(f64, f64)]) {
    let Some(first) = buckets.first() else {
        return;
    };
    let mut max = first.1;
    for b in buckets.iter_mut().skip(1) {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
}

/// The `q`-quantile of `values` (sorted in place, NaN first), interpolating between the
/// two closest ranks: Go's `quantile`. NaN for no values or a NaN `q`, -Inf for `q < 0`,
/// +Inf for `q > 1`.
pub fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // Go's vectorByValueHeap order: NaN is less than everything.
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or_else(|| nan_first(*a, *b)));
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower_index = rank.floor().max(0.0);
    let upper_index = (n - 1.0).min(lower_index + 1.0);
    let weight = rank - rank.floor();
    values[lower_index as usize] * (1.0 - weight) + values[upper_index as usize] * weight
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bq(q: f64, buckets: &[(f64, f64)]) -> f64 {
        bucket_quantile(q, &mut buckets.to_vec())
    }

    const INF: f64 = f64::INFINITY;

    #[test]
    fn interpolates_within_the_bucket() {
        // 10 observations: 2 in (0,1], 6 in (1,2], 2 in (2,+Inf).
        let b = [(1.0, 2.0), (2.0, 8.0), (INF, 10.0)];
        // Median: rank 5, in (1,2]: 1 + 1 * (5-2)/6 = 1.5.
        assert_eq!(bq(0.5, &b), 1.5);
        // Rank 1 in the first bucket, interpolated from 0: 0.5.
        assert_eq!(bq(0.1, &b), 0.5);
        // Rank 9.5 is in the +Inf bucket: the second-highest bound.
        assert_eq!(bq(0.95, &b), 2.0);
        // Order of the input does not matter.
        assert_eq!(bq(0.5, &[(INF, 10.0), (1.0, 2.0), (2.0, 8.0)]), 1.5);
    }

    #[test]
    fn q_out_of_range_or_nan() {
        let b = [(1.0, 2.0), (INF, 10.0)];
        assert_eq!(bq(-0.1, &b), f64::NEG_INFINITY);
        assert_eq!(bq(1.1, &b), INF);
        assert!(bq(f64::NAN, &b).is_nan());
        assert_eq!(bq(0.0, &b), 0.0);
        assert_eq!(bq(1.0, &b), 1.0);
    }

    #[test]
    fn missing_inf_bucket_too_few_buckets_or_no_observations_is_nan() {
        assert!(bq(0.5, &[(1.0, 2.0), (2.0, 8.0)]).is_nan());
        assert!(bq(0.5, &[(INF, 8.0)]).is_nan());
        assert!(bq(0.5, &[]).is_nan());
        assert!(bq(0.5, &[(1.0, 0.0), (INF, 0.0)]).is_nan());
        // Two +Inf buckets coalesce into one: fewer than 2 buckets.
        assert!(bq(0.5, &[(INF, 1.0), (INF, 2.0)]).is_nan());
    }

    #[test]
    fn non_monotonic_counts_are_raised_to_the_envelope() {
        // (1,2] says 4 < 5: raised to 5, so nothing is in (1,2] and the median (rank 5)
        // is the end of the first bucket.
        let b = [(1.0, 5.0), (2.0, 4.0), (3.0, 10.0), (INF, 10.0)];
        assert_eq!(bq(0.5, &b), 1.0);
        // Rank 7.5 in (2,3] with 5 observations: 2 + 2.5/5 = 2.5.
        assert_eq!(bq(0.75, &b), 2.5);
    }

    #[test]
    fn non_positive_first_bucket_returns_its_bound() {
        let b = [(-1.0, 5.0), (1.0, 10.0), (INF, 10.0)];
        assert_eq!(bq(0.2, &b), -1.0);
        // Rank 7.5 in (-1,1]: -1 + 2 * 2.5/5 = 0.
        assert_eq!(bq(0.75, &b), 0.0);
    }

    #[test]
    fn equal_bounds_are_merged() {
        let b = [(1.0, 1.0), (1.0, 1.0), (2.0, 4.0), (INF, 4.0)];
        // Merged: (1, 2), (2, 4): median rank 2 in the first bucket: 1.
        assert_eq!(bq(0.5, &b), 1.0);
    }

    #[test]
    fn quantile_interpolates_between_ranks() {
        assert_eq!(quantile(0.5, &mut [3.0, 1.0, 2.0, 4.0]), 2.5);
        assert_eq!(quantile(0.0, &mut [3.0, 1.0, 2.0]), 1.0);
        assert_eq!(quantile(1.0, &mut [3.0, 1.0, 2.0]), 3.0);
        assert_eq!(quantile(0.25, &mut [0.0, 10.0]), 2.5);
        assert_eq!(quantile(0.9, &mut [7.0]), 7.0);
    }

    proptest::proptest! {
        /// Any input, however broken (NaN bounds and counts, no +Inf, duplicates), gives a
        /// value and never panics; with a +Inf bucket and finite counts, the result lies
        /// within the finite bounds (or 0, the assumed lower bound).
        #[test]
        fn bucket_quantile_is_total(
            q in proptest::prop_oneof![0.0..=1.0f64, proptest::num::f64::ANY],
            raw in proptest::collection::vec(
                (proptest::num::f64::ANY, proptest::num::f64::ANY), 0..8),
            finite in proptest::collection::vec((-100.0..100.0f64, 0.0..50.0f64), 1..8),
        ) {
            let _ = bucket_quantile(q, &mut raw.clone());
            if (0.0..=1.0).contains(&q) {
                let mut b = finite.clone();
                b.push((f64::INFINITY, 60.0));
                let v = bucket_quantile(q, &mut b);
                let lo = finite.iter().map(|x| x.0).fold(0.0f64, f64::min);
                let hi = finite.iter().map(|x| x.0).fold(0.0f64, f64::max);
                proptest::prop_assert!(v >= lo && v <= hi, "{} not in [{}, {}]", v, lo, hi);
            }
        }

        /// `quantile` is monotonic in `q` and stays within the values' range.
        #[test]
        fn quantile_is_monotonic(
            values in proptest::collection::vec(-1e6..1e6f64, 1..20),
            q1 in 0.0..=1.0f64,
            q2 in 0.0..=1.0f64,
        ) {
            let (lo_q, hi_q) = if q1 <= q2 { (q1, q2) } else { (q2, q1) };
            let a = quantile(lo_q, &mut values.clone());
            let b = quantile(hi_q, &mut values.clone());
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            // Interpolation may round by an ulp or so.
            let slack = 1e-9 * (max.abs() + min.abs() + 1.0);
            proptest::prop_assert!(a <= b + slack);
            proptest::prop_assert!(a >= min - slack && b <= max + slack);
        }
    }

    #[test]
    fn quantile_special_cases() {
        assert!(quantile(0.5, &mut []).is_nan());
        assert!(quantile(f64::NAN, &mut [1.0]).is_nan());
        assert_eq!(quantile(-1.0, &mut [1.0]), f64::NEG_INFINITY);
        assert_eq!(quantile(2.0, &mut [1.0]), INF);
        // NaN sorts first, as in Go: the max of [NaN, 1, 2] is 2, the min NaN.
        assert_eq!(quantile(1.0, &mut [1.0, f64::NAN, 2.0]), 2.0);
        assert!(quantile(0.0, &mut [1.0, f64::NAN, 2.0]).is_nan());
    }
}
