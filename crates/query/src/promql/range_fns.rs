//! PromQL functions over the samples of one series' range-vector window (`rate(x[5m])`,
//! `avg_over_time(x[1h])`, ...), ported from Prometheus 2.42's `promql/functions.go`.
//!
//! The engine selects the window `[range_start_ms, eval_ms]` (both ends inclusive, as in
//! Prometheus 2.x), drops staleness markers, and calls the function looked up by
//! [`range_function`]; `None` means "no output sample for this series". Each function
//! names the Go function it follows. The floating-point operations are done in the same
//! order as in Go (including the Kahan-Neumaier compensated sums of `kahanSumInc`), with
//! only `+ - * /` and `sqrt`, so results should agree with Prometheus on amd64 (where Go
//! does not fuse multiply-adds either) to the last bit; `tests/promql/
//! sightline_functions.test` checks them against Prometheus 2.42's own answers.

use sightline_model::Sample;

use super::quantile::quantile;

/// The input of a range function: one series' samples in the window, plus the scalar
/// parameters of the call.
#[derive(Clone, Copy, Debug)]
pub struct RangeArgs<'a> {
    /// The samples in `[range_start_ms, eval_ms]`, in time order, without staleness markers.
    pub samples: &'a [Sample],
    /// The window's start: `eval_ms` minus the selector's range.
    pub range_start_ms: i64,
    /// The window's end: the evaluation time minus the selector's `offset`, or the `@` time
    /// (Prometheus' `rangeEnd`). Exception: `predict_linear` anchors its intercept here,
    /// and Prometheus anchors it at the evaluation step's time, so for `predict_linear`
    /// pass the step time (it reads no other time), or call [`predict_linear_at`].
    pub eval_ms: i64,
    /// Scalar arguments: `predict_linear` → `[t_seconds]`, `quantile_over_time` → `[q]`,
    /// `holt_winters` → `[sf, tf]`; empty for the others.
    pub params: &'a [f64],
    /// `true` when the caller knows that no sample is below its predecessor (no counter
    /// reset), so `rate`/`increase` skip their reset scan (the result is the same: the
    /// scan would add nothing); `false` when unknown.
    pub no_resets: bool,
}

/// A range function: `None` when the series produces no output sample.
pub type RangeFn = fn(&RangeArgs) -> Option<f64>;

/// The range function called `name`, or `None` if `name` is not one handled here.
pub fn range_function(name: &str) -> Option<RangeFn> {
    Some(match name {
        "rate" => rate,
        "increase" => increase,
        "delta" => delta,
        "irate" => irate,
        "idelta" => idelta,
        "deriv" => deriv,
        "predict_linear" => predict_linear,
        "resets" => resets,
        "changes" => changes,
        "avg_over_time" => avg_over_time,
        "min_over_time" => min_over_time,
        "max_over_time" => max_over_time,
        "sum_over_time" => sum_over_time,
        "count_over_time" => count_over_time,
        "stddev_over_time" => stddev_over_time,
        "stdvar_over_time" => stdvar_over_time,
        "last_over_time" => last_over_time,
        "present_over_time" => present_over_time,
        "quantile_over_time" => quantile_over_time,
        // Prometheus 3's name for holt_winters, the only one promql-parser 0.11 knows.
        "holt_winters" | "double_exponential_smoothing" => holt_winters,
        _ => return None,
    })
}

/// How many scalar parameters (`RangeArgs::params`) the range function `name` takes.
pub fn param_count(name: &str) -> usize {
    match name {
        "predict_linear" | "quantile_over_time" => 1,
        "holt_winters" | "double_exponential_smoothing" => 2,
        _ => 0,
    }
}

/// Checks the scalar parameters of a call whose values Prometheus rejects at evaluation
/// (only `holt_winters`' factors: Go's `funcHoltWinters` panics with these messages, which
/// Prometheus' engine recovers and reports as an `execution` error).
///
/// # Errors
/// The message Prometheus 2.42 gives, e.g. `invalid smoothing factor. Expected: 0 < sf <
/// 1, got: 1.000000`.
pub fn check_params(name: &str, params: &[f64]) -> Result<(), String> {
    if name != "holt_winters" && name != "double_exponential_smoothing" {
        return Ok(());
    }
    let (sf, tf) = match params {
        [sf, tf] => (*sf, *tf),
        _ => {
            return Err(format!(
                "holt_winters takes 2 parameters, got {}",
                params.len()
            ));
        }
    };
    // Written as in Go, so that NaN passes (both comparisons are false).
    if sf <= 0.0 || sf >= 1.0 {
        return Err(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {}",
            go_f_format(sf)
        ));
    }
    if tf <= 0.0 || tf >= 1.0 {
        return Err(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {}",
            go_f_format(tf)
        ));
    }
    Ok(())
}

/// Go's `%f` (6 decimals, `NaN`, `+Inf`, `-Inf`).
fn go_f_format(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v:.6}")
    }
}

/// Go's `time.Duration.Seconds()` for a millisecond duration: whole seconds plus the
/// fraction, computed separately (it can differ from `ms / 1000.0` in the last bit).
fn duration_seconds(ms: i64) -> f64 {
    let nanos = ms.saturating_mul(1_000_000);
    let sec = nanos / 1_000_000_000;
    let nsec = nanos % 1_000_000_000;
    sec as f64 + nsec as f64 / 1e9
}

/// One step of Kahan-Neumaier summation: Go's `kahanSumInc`.
fn kahan_sum_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    // Neumaier's improvement: swap if the next term is larger than the sum.
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Go's `extrapolatedRate` (float samples only): the increase over the window, corrected
/// for counter resets if `is_counter`, extrapolated towards the window's ends when the
/// first/last samples are within 110% of the average sample spacing of them (else by half
/// that spacing), never below a counter's zero point; per second if `is_rate`.
fn extrapolated_rate(a: &RangeArgs, is_counter: bool, is_rate: bool) -> Option<f64> {
    let s = a.samples;
    if s.len() < 2 {
        return None;
    }
    let first = s[0];
    let last = s[s.len() - 1];
    let mut result = last.value - first.value;
    if is_counter && !a.no_resets {
        let mut prev = first.value;
        for cur in &s[1..] {
            if cur.value < prev {
                result += prev;
            }
            prev = cur.value;
        }
    }
    let mut duration_to_start = (first.timestamp_ms - a.range_start_ms) as f64 / 1000.0;
    let duration_to_end = (a.eval_ms - last.timestamp_ms) as f64 / 1000.0;
    let sampled_interval = (last.timestamp_ms - first.timestamp_ms) as f64 / 1000.0;
    let average_duration_between_samples = sampled_interval / (s.len() - 1) as f64;

    if is_counter && result > 0.0 && first.value >= 0.0 {
        // Counters cannot be negative: do not extrapolate past the zero point.
        let duration_to_zero = sampled_interval * (first.value / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }

    // 110%: an allowance for jitter in the scrape interval (Prometheus' constant).
    let extrapolation_threshold = average_duration_between_samples * 1.1;
    let mut extrapolate_to_interval = sampled_interval;
    if duration_to_start < extrapolation_threshold {
        extrapolate_to_interval += duration_to_start;
    } else {
        extrapolate_to_interval += average_duration_between_samples / 2.0;
    }
    if duration_to_end < extrapolation_threshold {
        extrapolate_to_interval += duration_to_end;
    } else {
        extrapolate_to_interval += average_duration_between_samples / 2.0;
    }
    let mut factor = extrapolate_to_interval / sampled_interval;
    if is_rate {
        factor /= duration_seconds(a.eval_ms - a.range_start_ms);
    }
    Some(result * factor)
}

/// `rate`: Go's `funcRate`.
fn rate(a: &RangeArgs) -> Option<f64> {
    extrapolated_rate(a, true, true)
}

/// `increase`: Go's `funcIncrease`.
fn increase(a: &RangeArgs) -> Option<f64> {
    extrapolated_rate(a, true, false)
}

/// `delta`: Go's `funcDelta`.
fn delta(a: &RangeArgs) -> Option<f64> {
    extrapolated_rate(a, false, false)
}

/// Go's `instantValue`: the difference of the last two samples (per second if `is_rate`,
/// where a decrease counts as a counter reset).
fn instant_value(a: &RangeArgs, is_rate: bool) -> Option<f64> {
    let s = a.samples;
    if s.len() < 2 {
        return None;
    }
    let last = s[s.len() - 1];
    let previous = s[s.len() - 2];
    let mut result = if is_rate && last.value < previous.value {
        last.value
    } else {
        last.value - previous.value
    };
    let sampled_interval = last.timestamp_ms - previous.timestamp_ms;
    if sampled_interval == 0 {
        return None;
    }
    if is_rate {
        result /= sampled_interval as f64 / 1000.0;
    }
    Some(result)
}

/// `irate`: Go's `funcIrate`.
fn irate(a: &RangeArgs) -> Option<f64> {
    instant_value(a, true)
}

/// `idelta`: Go's `funcIdelta`.
fn idelta(a: &RangeArgs) -> Option<f64> {
    instant_value(a, false)
}

/// Go's `linearRegression`: least-squares slope, and the intercept at `intercept_ms`,
/// with compensated sums; a constant series has slope 0 (NaN if the constant is ±Inf).
fn linear_regression(samples: &[Sample], intercept_ms: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = samples[0].value;
    let mut const_y = true;
    for (i, sample) in samples.iter().enumerate() {
        if const_y && i > 0 && sample.value != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (sample.timestamp_ms - intercept_ms) as f64 / 1e3;
        (sum_x, c_x) = kahan_sum_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_sum_inc(sample.value, sum_y, c_y);
        (sum_xy, c_xy) = kahan_sum_inc(x * sample.value, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_sum_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let sum_x = sum_x + c_x;
    let sum_y = sum_y + c_y;
    let sum_xy = sum_xy + c_xy;
    let sum_x2 = sum_x2 + c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// `deriv`: Go's `funcDeriv` (regression anchored at the first sample, for precision).
fn deriv(a: &RangeArgs) -> Option<f64> {
    if a.samples.len() < 2 {
        return None;
    }
    Some(linear_regression(a.samples, a.samples[0].timestamp_ms).0)
}

/// `predict_linear(v, t)` with the regression's intercept at `a.eval_ms` (see
/// [`RangeArgs::eval_ms`]).
fn predict_linear(a: &RangeArgs) -> Option<f64> {
    predict_linear_at(a.samples, a.eval_ms, param(a, 0))
}

/// `predict_linear(v, t_seconds)` as Go's `funcPredictLinear`: the value the least-squares
/// line through `samples` reaches `t_seconds` after `step_ms`, the evaluation step's time
/// (Prometheus' `enh.Ts`, which differs from the window's end under `offset` or `@`).
/// `None` with fewer than 2 samples.
pub fn predict_linear_at(samples: &[Sample], step_ms: i64, t_seconds: f64) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let (slope, intercept) = linear_regression(samples, step_ms);
    Some(slope * t_seconds + intercept)
}

/// `resets`: Go's `funcResets`.
fn resets(a: &RangeArgs) -> Option<f64> {
    let first = a.samples.first()?;
    let mut prev = first.value;
    let mut resets = 0usize;
    for s in &a.samples[1..] {
        if s.value < prev {
            resets += 1;
        }
        prev = s.value;
    }
    Some(resets as f64)
}

/// `changes`: Go's `funcChanges` (NaN to NaN is no change).
fn changes(a: &RangeArgs) -> Option<f64> {
    let first = a.samples.first()?;
    let mut prev = first.value;
    let mut changes = 0usize;
    for s in &a.samples[1..] {
        let cur = s.value;
        if cur != prev && !(cur.is_nan() && prev.is_nan()) {
            changes += 1;
        }
        prev = cur;
    }
    Some(changes as f64)
}

/// `avg_over_time`: Go's `funcAvgOverTime` (incremental mean with a compensated sum,
/// keeping an infinite mean once reached).
fn avg_over_time(a: &RangeArgs) -> Option<f64> {
    if a.samples.is_empty() {
        return None;
    }
    let (mut mean, mut count, mut c) = (0.0f64, 0.0f64, 0.0f64);
    for s in a.samples {
        let v = s.value;
        count += 1.0;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                // Inf of the same sign: the mean is already right.
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                // A finite value cannot move an infinite mean (Inf - Inf would be NaN).
                continue;
            }
        }
        (mean, c) = kahan_sum_inc(v / count - mean / count, mean, c);
    }
    if mean.is_infinite() {
        return Some(mean);
    }
    Some(mean + c)
}

/// `count_over_time`: Go's `funcCountOverTime`.
fn count_over_time(a: &RangeArgs) -> Option<f64> {
    if a.samples.is_empty() {
        return None;
    }
    Some(a.samples.len() as f64)
}

/// `max_over_time`: Go's `funcMaxOverTime` (NaN only if all values are NaN).
fn max_over_time(a: &RangeArgs) -> Option<f64> {
    let mut max = a.samples.first()?.value;
    for s in a.samples {
        if s.value > max || max.is_nan() {
            max = s.value;
        }
    }
    Some(max)
}

/// `min_over_time`: Go's `funcMinOverTime` (NaN only if all values are NaN).
fn min_over_time(a: &RangeArgs) -> Option<f64> {
    let mut min = a.samples.first()?.value;
    for s in a.samples {
        if s.value < min || min.is_nan() {
            min = s.value;
        }
    }
    Some(min)
}

/// `sum_over_time`: Go's `funcSumOverTime` (compensated sum).
fn sum_over_time(a: &RangeArgs) -> Option<f64> {
    if a.samples.is_empty() {
        return None;
    }
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    for s in a.samples {
        (sum, c) = kahan_sum_inc(s.value, sum, c);
    }
    if sum.is_infinite() {
        return Some(sum);
    }
    Some(sum + c)
}

/// The population variance as Go's `funcStdvarOverTime` computes it (Welford's update
/// with compensated sums for the mean and the squared deviations).
fn variance(samples: &[Sample]) -> f64 {
    let mut count = 0.0f64;
    let (mut mean, mut c_mean) = (0.0f64, 0.0f64);
    let (mut aux, mut c_aux) = (0.0f64, 0.0f64);
    for s in samples {
        let v = s.value;
        count += 1.0;
        let delta = v - (mean + c_mean);
        (mean, c_mean) = kahan_sum_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_sum_inc(delta * (v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// `stddev_over_time`: Go's `funcStddevOverTime`.
fn stddev_over_time(a: &RangeArgs) -> Option<f64> {
    if a.samples.is_empty() {
        return None;
    }
    Some(variance(a.samples).sqrt())
}

/// `stdvar_over_time`: Go's `funcStdvarOverTime`.
fn stdvar_over_time(a: &RangeArgs) -> Option<f64> {
    if a.samples.is_empty() {
        return None;
    }
    Some(variance(a.samples))
}

/// `last_over_time`: Go's `funcLastOverTime`.
fn last_over_time(a: &RangeArgs) -> Option<f64> {
    a.samples.last().map(|s| s.value)
}

/// `present_over_time`: Go's `funcPresentOverTime`.
fn present_over_time(a: &RangeArgs) -> Option<f64> {
    if a.samples.is_empty() {
        return None;
    }
    Some(1.0)
}

/// `quantile_over_time(q, v)`: Go's `funcQuantileOverTime`.
fn quantile_over_time(a: &RangeArgs) -> Option<f64> {
    if a.samples.is_empty() {
        return None;
    }
    let mut values: Vec<f64> = a.samples.iter().map(|s| s.value).collect();
    Some(quantile(param(a, 0), &mut values))
}

/// Go's `calcTrendValue`.
fn calc_trend_value(i: usize, tf: f64, s0: f64, s1: f64, b: f64) -> f64 {
    if i == 0 {
        return b;
    }
    let x = tf * (s1 - s0);
    let y = (1.0 - tf) * b;
    x + y
}

/// `holt_winters(v, sf, tf)`: Go's `funcHoltWinters` (double exponential smoothing). The
/// factors' range is checked by [`check_params`]; here they are used as given.
fn holt_winters(a: &RangeArgs) -> Option<f64> {
    let s = a.samples;
    let sf = param(a, 0);
    let tf = param(a, 1);
    if s.len() < 2 {
        return None;
    }
    let mut s0 = 0.0f64;
    let mut s1 = s[0].value;
    let mut b = s[1].value - s[0].value;
    for (i, sample) in s.iter().enumerate().skip(1) {
        let x = sf * sample.value;
        b = calc_trend_value(i - 1, tf, s0, s1, b);
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

/// Parameter `i`, or NaN if the engine passed too few (a caller bug that must not panic a
/// query; the result is then NaN, visible in tests).
fn param(a: &RangeArgs, i: usize) -> f64 {
    debug_assert!(
        i < a.params.len(),
        "BUG: range function called with {} parameters, needs {}",
        a.params.len(),
        i + 1
    );
    a.params.get(i).copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(points: &[(i64, f64)]) -> Vec<Sample> {
        points
            .iter()
            .map(|&(timestamp_ms, value)| Sample {
                timestamp_ms,
                value,
            })
            .collect()
    }

    fn call(
        name: &str,
        points: &[(i64, f64)],
        start: i64,
        end: i64,
        params: &[f64],
    ) -> Option<f64> {
        let s = samples(points);
        let f = range_function(name).expect("known function");
        f(&RangeArgs {
            samples: &s,
            range_start_ms: start,
            eval_ms: end,
            params,
            no_resets: false,
        })
    }

    fn assert_close(got: Option<f64>, want: f64) {
        let got = got.expect("a sample");
        assert!(
            (got - want).abs() <= 1e-12 * want.abs().max(1.0),
            "got {got}, want {want}"
        );
    }

    /// A counter going 0, 10, ..., 100 every 10 s over a 100 s window ending at the last
    /// sample: no extrapolation is needed.
    fn linear_counter() -> Vec<(i64, f64)> {
        (0..=10).map(|i| (i * 10_000, i as f64 * 10.0)).collect()
    }

    #[test]
    fn rate_and_increase_without_extrapolation() {
        let p = linear_counter();
        assert_close(call("increase", &p, 0, 100_000, &[]), 100.0);
        assert_close(call("rate", &p, 0, 100_000, &[]), 1.0);
        assert_close(call("delta", &p, 0, 100_000, &[]), 100.0);
    }

    #[test]
    fn counter_resets_add_the_value_before_the_reset() {
        // 10, 20, 5 (reset), 15: increase = 15 - 10 + 20 = 25 over 30 s of samples.
        let p = [(0, 10.0), (10_000, 20.0), (20_000, 5.0), (30_000, 15.0)];
        // Window exactly the sampled interval: no extrapolation.
        assert_close(call("increase", &p, 0, 30_000, &[]), 25.0);
        assert_close(call("resets", &p, 0, 30_000, &[]), 1.0);
        // delta does not treat the drop as a reset.
        assert_close(call("delta", &p, 0, 30_000, &[]), 5.0);
    }

    #[test]
    fn extrapolation_reaches_near_boundaries_and_stops_at_far_ones() {
        // Samples at 10 s..=90 s every 10 s, window [0, 100 s]: both ends are 10 s away,
        // below 1.1 × 10 s, so extrapolate fully: 80 * 100/80 = 100.
        let p: Vec<_> = (1..=9)
            .map(|i| (i * 10_000, 1000.0 + i as f64 * 10.0))
            .collect();
        assert_close(call("delta", &p, 0, 100_000, &[]), 100.0);
        // Window [-50 s, 150 s]: ends are 60 s away, so extrapolate by half the spacing
        // (5 s) each side: 80 * 90/80 = 90.
        assert_close(call("delta", &p, -50_000, 150_000, &[]), 90.0);
        assert_close(call("rate", &p, -50_000, 150_000, &[]), 90.0 / 200.0);
    }

    #[test]
    fn counter_extrapolation_stops_at_zero() {
        // 5 at 10 s, 15 at 20 s, window [0, 20 s]: the zero point is 5 s before the first
        // sample (less than the 10 s to the start), so increase = 10 * 15/10 = 15.
        let p = [(10_000, 5.0), (20_000, 15.0)];
        assert_close(call("increase", &p, 0, 20_000, &[]), 15.0);
        // delta is not a counter: extrapolated the full 10 s: 10 * 20/10 = 20.
        assert_close(call("delta", &p, 0, 20_000, &[]), 20.0);
    }

    #[test]
    fn rate_needs_two_samples() {
        assert_eq!(call("rate", &[(0, 1.0)], 0, 60_000, &[]), None);
        assert_eq!(call("increase", &[], 0, 60_000, &[]), None);
        assert_eq!(call("irate", &[(0, 1.0)], 0, 60_000, &[]), None);
        assert_eq!(call("idelta", &[(0, 1.0)], 0, 60_000, &[]), None);
        assert_eq!(call("deriv", &[(0, 1.0)], 0, 60_000, &[]), None);
        assert_eq!(
            call("holt_winters", &[(0, 1.0)], 0, 60_000, &[0.5, 0.5]),
            None
        );
    }

    #[test]
    fn irate_and_idelta_use_the_last_two_samples() {
        let p = [(0, 1.0), (10_000, 50.0), (15_000, 60.0)];
        assert_close(call("irate", &p, 0, 15_000, &[]), 2.0);
        assert_close(call("idelta", &p, 0, 15_000, &[]), 10.0);
        // A drop is a reset for irate (the new value is the increase), not for idelta.
        let p = [(0, 1.0), (10_000, 50.0), (15_000, 20.0)];
        assert_close(call("irate", &p, 0, 15_000, &[]), 4.0);
        assert_close(call("idelta", &p, 0, 15_000, &[]), -30.0);
        // Equal timestamps would divide by zero: no sample.
        assert_eq!(call("irate", &[(5, 1.0), (5, 2.0)], 0, 15_000, &[]), None);
    }

    #[test]
    fn deriv_and_predict_linear() {
        // y = 2x + 3 (x in seconds).
        let p: Vec<_> = (0..5).map(|i| (i * 1000, 2.0 * i as f64 + 3.0)).collect();
        assert_close(call("deriv", &p, 0, 4000, &[]), 2.0);
        // At eval 4 s, 10 s ahead: y(14) = 31.
        assert_close(call("predict_linear", &p, 0, 4000, &[10.0]), 31.0);
        // A constant series: slope 0, prediction the constant; ±Inf constant gives NaN.
        let c = [(0, 7.0), (1000, 7.0)];
        assert_close(call("deriv", &c, 0, 1000, &[]), 0.0);
        assert_close(call("predict_linear", &c, 0, 1000, &[100.0]), 7.0);
        let inf = [(0, f64::INFINITY), (1000, f64::INFINITY)];
        assert!(call("deriv", &inf, 0, 1000, &[]).unwrap().is_nan());
        // Anchored at the step time 1 s after the window (as with `offset 1s`): y(4+1+10).
        let s = samples(&p);
        assert_close(predict_linear_at(&s, 5000, 10.0), 33.0);
        assert_eq!(predict_linear_at(&s[..1], 5000, 10.0), None);
    }

    #[test]
    fn changes_treats_nan_to_nan_as_no_change() {
        let p = [(0, 1.0), (1, 1.0), (2, f64::NAN), (3, f64::NAN), (4, 2.0)];
        assert_close(call("changes", &p, 0, 4, &[]), 2.0);
        assert_close(call("resets", &p, 0, 4, &[]), 0.0);
    }

    #[test]
    fn over_time_aggregations() {
        let p = [
            (0, 2.0),
            (1, 4.0),
            (2, 4.0),
            (3, 4.0),
            (4, 5.0),
            (5, 5.0),
            (6, 7.0),
            (7, 9.0),
        ];
        assert_close(call("avg_over_time", &p, 0, 7, &[]), 5.0);
        assert_close(call("sum_over_time", &p, 0, 7, &[]), 40.0);
        assert_close(call("count_over_time", &p, 0, 7, &[]), 8.0);
        assert_close(call("min_over_time", &p, 0, 7, &[]), 2.0);
        assert_close(call("max_over_time", &p, 0, 7, &[]), 9.0);
        assert_close(call("stdvar_over_time", &p, 0, 7, &[]), 4.0);
        assert_close(call("stddev_over_time", &p, 0, 7, &[]), 2.0);
        assert_close(call("last_over_time", &p, 0, 7, &[]), 9.0);
        assert_close(call("present_over_time", &p, 0, 7, &[]), 1.0);
        assert_close(call("quantile_over_time", &p, 0, 7, &[0.5]), 4.5);
        assert_eq!(call("sum_over_time", &[], 0, 7, &[]), None);
        assert_eq!(call("last_over_time", &[], 0, 7, &[]), None);
    }

    #[test]
    fn compensated_sum_keeps_small_terms() {
        // A naive sum gives 0 here; Prometheus 2.42 (Kahan-Neumaier) gives 1.
        let p = [(0, 1e100), (1, 1.0), (2, -1e100)];
        assert_close(call("sum_over_time", &p, 0, 2, &[]), 1.0);
    }

    #[test]
    fn min_max_skip_nan_and_avg_keeps_inf() {
        let p = [(0, f64::NAN), (1, 3.0), (2, 1.0)];
        assert_close(call("max_over_time", &p, 0, 2, &[]), 3.0);
        assert_close(call("min_over_time", &p, 0, 2, &[]), 1.0);
        let p = [(0, f64::INFINITY), (1, 1.0)];
        assert_eq!(call("avg_over_time", &p, 0, 1, &[]), Some(f64::INFINITY));
        let p = [(0, f64::INFINITY), (1, f64::NEG_INFINITY)];
        assert!(call("avg_over_time", &p, 0, 1, &[]).unwrap().is_nan());
    }

    #[test]
    fn holt_winters_hand_computed() {
        // 1, 3, 6 with sf = tf = 0.5:
        // i=1: b = 2 (initial), s1 = 0.5*3 + 0.5*(1+2) = 3
        // i=2: b = 0.5*(3-1) + 0.5*2 = 2, s1 = 0.5*6 + 0.5*(3+2) = 5.5
        let p = [(0, 1.0), (1, 3.0), (2, 6.0)];
        assert_close(call("holt_winters", &p, 0, 2, &[0.5, 0.5]), 5.5);
    }

    #[test]
    fn holt_winters_params_are_checked() {
        assert!(check_params("holt_winters", &[0.5, 0.5]).is_ok());
        assert_eq!(
            check_params("holt_winters", &[1.0, 0.5]).unwrap_err(),
            "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000"
        );
        assert_eq!(
            check_params("holt_winters", &[0.5, 0.0]).unwrap_err(),
            "invalid trend factor. Expected: 0 < tf < 1, got: 0.000000"
        );
        assert!(check_params("rate", &[]).is_ok());
        assert!(check_params("double_exponential_smoothing", &[0.5, 1.5]).is_err());
    }

    #[test]
    fn duration_seconds_matches_go() {
        assert_eq!(duration_seconds(1500), 1.5);
        assert_eq!(duration_seconds(300_000), 300.0);
        assert_eq!(duration_seconds(1234), 1.0 + 234_000_000.0 / 1e9);
    }

    proptest::proptest! {
        /// Every function accepts any window (NaN, ±Inf, equal timestamps, empty) with the
        /// right number of parameters without panicking, and gives no sample for an empty one.
        #[test]
        fn functions_are_total(
            mut points in proptest::collection::vec(
                (-1_000_000i64..1_000_000, proptest::num::f64::ANY), 0..12),
            params in proptest::collection::vec(proptest::num::f64::ANY, 2),
        ) {
            points.sort_by_key(|p| p.0);
            let s = samples(&points);
            for name in ALL {
                let f = range_function(name).unwrap();
                let args = RangeArgs {
                    samples: &s,
                    range_start_ms: -1_000_000,
                    eval_ms: 1_000_000,
                    params: &params[..param_count(name)],
                    no_resets: false,
                };
                let r = f(&args);
                let monotonic = s
                    .windows(2)
                    .all(|w| w[1].value.partial_cmp(&w[0].value) != Some(std::cmp::Ordering::Less));
                if monotonic {
                    // The hint changes nothing when it is true.
                    let hinted = f(&RangeArgs { no_resets: true, ..args });
                    proptest::prop_assert_eq!(r.map(f64::to_bits), hinted.map(f64::to_bits));
                }
                if s.is_empty() {
                    proptest::prop_assert!(r.is_none(), "{} gave {:?}", name, r);
                }
            }
        }
    }

    const ALL: [&str; 20] = [
        "rate",
        "irate",
        "increase",
        "delta",
        "idelta",
        "deriv",
        "predict_linear",
        "resets",
        "changes",
        "avg_over_time",
        "min_over_time",
        "max_over_time",
        "sum_over_time",
        "count_over_time",
        "stddev_over_time",
        "stdvar_over_time",
        "last_over_time",
        "present_over_time",
        "quantile_over_time",
        "holt_winters",
    ];

    #[test]
    fn lookup_knows_every_function_and_param_counts() {
        for name in ALL {
            assert!(range_function(name).is_some(), "{name}");
        }
        assert!(range_function("abs").is_none());
        assert_eq!(param_count("holt_winters"), 2);
        assert_eq!(param_count("quantile_over_time"), 1);
        assert_eq!(param_count("rate"), 0);
    }
}
