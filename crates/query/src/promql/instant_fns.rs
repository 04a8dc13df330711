//! PromQL functions applied to each sample value of an instant vector, ported from
//! Prometheus 2.42's `promql/functions.go`: the math functions of `simpleFunc` (`abs`,
//! `ln`, `sin`, `deg`, `sgn`, ...), `round` (Go's `funcRound`), `clamp` (Go's
//! `funcClamp`, also `clamp_min`/`clamp_max`) and the calendar functions of `dateWrapper`
//! (`hour`, `month`, `days_in_month`, ... in UTC).
//!
//! The calendar functions convert the value to whole seconds like Go's `int64(v)` on
//! amd64 (truncation; NaN and out-of-range values become `i64::MIN`) and then split the
//! time like Go's `time.absDate`, with the same wrapping arithmetic, so even nonsense
//! inputs (`year(vector(NaN))` = 292277026596) give Prometheus' answers.

/// The math function called `name` (one argument, one result), or `None`.
pub fn math_function(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sqrt" => f64::sqrt,
        "sgn" => sgn,
        "acos" => f64::acos,
        "acosh" => f64::acosh,
        "asin" => f64::asin,
        "asinh" => f64::asinh,
        "atan" => f64::atan,
        "atanh" => f64::atanh,
        "cos" => f64::cos,
        "cosh" => f64::cosh,
        "sin" => f64::sin,
        "sinh" => f64::sinh,
        "tan" => f64::tan,
        "tanh" => f64::tanh,
        "deg" => deg,
        "rad" => rad,
        _ => return None,
    })
}

/// Go's `funcSgn`: -1, 1, or the value itself for ±0 and NaN.
fn sgn(v: f64) -> f64 {
    if v < 0.0 {
        -1.0
    } else if v > 0.0 {
        1.0
    } else {
        v
    }
}

/// Go's `funcDeg`, in the same operation order.
fn deg(v: f64) -> f64 {
    v * 180.0 / std::f64::consts::PI
}

/// Go's `funcRad`, in the same operation order.
fn rad(v: f64) -> f64 {
    v * std::f64::consts::PI / 180.0
}

/// `round(v, to_nearest)`: rounds to the nearest multiple of `to_nearest`, ties up, via
/// the inverse as Prometheus does (`floor(v / (1/n) + 0.5) * ...`), so `to_nearest` 0
/// gives NaN.
pub fn round(v: f64, to_nearest: f64) -> f64 {
    let to_nearest_inverse = 1.0 / to_nearest;
    (v * to_nearest_inverse + 0.5).floor() / to_nearest_inverse
}

/// `clamp(v, min, max)` as Prometheus 2.42 computes it per sample:
/// `max(min, min(max, v))` with Go's `math.Max`/`math.Min`, where a NaN on either side
/// wins. The whole result is empty when `max < min`, which the engine checks (see
/// [`clamp_is_empty`]). `clamp_min(v, m)` is `clamp(v, m, +Inf)`, `clamp_max(v, m)` is
/// `clamp(v, -Inf, m)`.
pub fn clamp(v: f64, min: f64, max: f64) -> f64 {
    go_max(min, go_min(max, v))
}

/// Whether `clamp(_, min, max)` returns an empty vector (Go's `funcClamp`: `max < min`).
pub fn clamp_is_empty(min: f64, max: f64) -> bool {
    max < min
}

/// Go's `math.Max`: NaN if either is NaN, +0 over -0.
fn go_max(x: f64, y: f64) -> f64 {
    if x.is_infinite() && x > 0.0 || y.is_infinite() && y > 0.0 {
        return f64::INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && x == y {
        return if x.is_sign_negative() { y } else { x };
    }
    if x > y {
        x
    } else {
        y
    }
}

/// Go's `math.Min`: NaN if either is NaN, -0 over +0.
fn go_min(x: f64, y: f64) -> f64 {
    if x.is_infinite() && x < 0.0 || y.is_infinite() && y < 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && x == y {
        return if x.is_sign_negative() { x } else { y };
    }
    if x < y {
        x
    } else {
        y
    }
}

/// The calendar function called `name` (argument: Unix seconds; result in UTC), or
/// `None`. Without an argument, Prometheus applies it to the evaluation time in seconds.
pub fn time_function(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "day_of_month" => |v| go_date(v).day as f64,
        "day_of_week" => |v| go_date(v).weekday as f64,
        "day_of_year" => |v| go_date(v).yday as f64,
        "days_in_month" => |v| {
            let d = go_date(v);
            days_in_month(d.year, d.month) as f64
        },
        "hour" => |v| go_date(v).hour as f64,
        "minute" => |v| go_date(v).minute as f64,
        "month" => |v| go_date(v).month as f64,
        "year" => |v| go_date(v).year as f64,
        _ => return None,
    })
}

/// A UTC calendar date and time of day as Go's `time.Time` accessors give them.
#[derive(Debug, PartialEq)]
struct GoDate {
    year: i64,
    /// 1..=12.
    month: u32,
    /// 1..=31.
    day: u32,
    /// 1..=366.
    yday: u32,
    /// 0 = Sunday.
    weekday: u32,
    hour: u32,
    minute: u32,
}

const SECONDS_PER_MINUTE: u64 = 60;
const SECONDS_PER_HOUR: u64 = 60 * SECONDS_PER_MINUTE;
const SECONDS_PER_DAY: u64 = 24 * SECONDS_PER_HOUR;
const SECONDS_PER_WEEK: u64 = 7 * SECONDS_PER_DAY;
const DAYS_PER_400_YEARS: u64 = 365 * 400 + 97;
const DAYS_PER_100_YEARS: u64 = 365 * 100 + 24;
const DAYS_PER_4_YEARS: u64 = 365 * 4 + 1;
/// Go's `absoluteZeroYear`: the year its unsigned "absolute" time counts from.
const ABSOLUTE_ZERO_YEAR: i64 = -292_277_022_399;
/// Go's `unixToInternal + internalToAbsolute`: Unix seconds to absolute seconds.
const UNIX_TO_ABSOLUTE: i64 = {
    let unix_to_internal: i64 = (1969 * 365 + 1969 / 4 - 1969 / 100 + 1969 / 400) * 86_400;
    // Go: (absoluteZeroYear - internalYear) * 365.2425 * secondsPerDay, an exact constant.
    let absolute_to_internal =
        ((ABSOLUTE_ZERO_YEAR - 1) as i128 * 3_652_425 * 86_400 / 10_000) as i64;
    unix_to_internal - absolute_to_internal
};
/// Go's `daysBefore`: days before the start of each month in a non-leap year.
const DAYS_BEFORE: [u32; 13] = [
    0,
    31,
    31 + 28,
    31 + 28 + 31,
    31 + 28 + 31 + 30,
    31 + 28 + 31 + 30 + 31,
    31 + 28 + 31 + 30 + 31 + 30,
    31 + 28 + 31 + 30 + 31 + 30 + 31,
    31 + 28 + 31 + 30 + 31 + 30 + 31 + 31,
    31 + 28 + 31 + 30 + 31 + 30 + 31 + 31 + 30,
    31 + 28 + 31 + 30 + 31 + 30 + 31 + 31 + 30 + 31,
    31 + 28 + 31 + 30 + 31 + 30 + 31 + 31 + 30 + 31 + 30,
    365,
];

/// Go's `int64(f)` on amd64 (CVTTSD2SQ): truncation, with NaN and out-of-range values
/// giving `i64::MIN`.
fn go_f64_to_i64(v: f64) -> i64 {
    // 2^63 as f64: the first value out of range upwards.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    // NaN is outside every range, so it takes the first branch too.
    if !(-TWO_POW_63..TWO_POW_63).contains(&v) {
        i64::MIN
    } else {
        v as i64
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` of `year`, as Go's `32 - time.Date(y, m, 32, ...).Day()` gives.
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `time.Unix(int64(v), 0).UTC()` split into its calendar fields, following Go's
/// `absDate`, `absWeekday` and `absClock` (wrapping arithmetic included).
fn go_date(v: f64) -> GoDate {
    let sec = go_f64_to_i64(v);
    let abs = sec.wrapping_add(UNIX_TO_ABSOLUTE) as u64;

    let mut d = abs / SECONDS_PER_DAY;
    let mut n = d / DAYS_PER_400_YEARS;
    let mut y = 400 * n;
    d -= DAYS_PER_400_YEARS * n;

    n = d / DAYS_PER_100_YEARS;
    n -= n >> 2;
    y += 100 * n;
    d -= DAYS_PER_100_YEARS * n;

    n = d / DAYS_PER_4_YEARS;
    y += 4 * n;
    d -= DAYS_PER_4_YEARS * n;

    n = d / 365;
    n -= n >> 2;
    y += n;
    d -= 365 * n;

    let year = (y as i64).wrapping_add(ABSOLUTE_ZERO_YEAR);
    let yday = d as u32;

    let mut day = yday;
    let (month, day) = 'md: {
        if is_leap(year) {
            if day > 31 + 29 - 1 {
                day -= 1;
            } else if day == 31 + 29 - 1 {
                break 'md (2, 29);
            }
        }
        let mut month = day / 31;
        let end = DAYS_BEFORE[month as usize + 1];
        let begin = if day >= end {
            month += 1;
            end
        } else {
            DAYS_BEFORE[month as usize]
        };
        (month + 1, day - begin + 1)
    };

    // The absolute epoch is a Monday (Go's absWeekday adds Monday's offset).
    let weekday = ((abs.wrapping_add(SECONDS_PER_DAY) % SECONDS_PER_WEEK) / SECONDS_PER_DAY) as u32;
    let hour = ((abs % SECONDS_PER_DAY) / SECONDS_PER_HOUR) as u32;
    let minute = ((abs % SECONDS_PER_HOUR) / SECONDS_PER_MINUTE) as u32;
    GoDate {
        year,
        month,
        day,
        yday: yday + 1,
        weekday,
        hour,
        minute,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, v: f64) -> f64 {
        time_function(name).expect("known time function")(v)
    }

    #[test]
    fn math_functions() {
        let f = |n: &str| math_function(n).expect(n);
        assert_eq!(f("abs")(-2.5), 2.5);
        assert_eq!(f("ceil")(1.2), 2.0);
        assert_eq!(f("floor")(-1.2), -2.0);
        assert_eq!(f("sqrt")(16.0), 4.0);
        assert_eq!(f("ln")(1.0), 0.0);
        assert_eq!(f("log2")(8.0), 3.0);
        assert_eq!(f("log10")(1000.0), 3.0);
        assert_eq!(f("exp")(0.0), 1.0);
        assert_eq!(f("deg")(std::f64::consts::PI), 180.0);
        assert_eq!(f("rad")(180.0), std::f64::consts::PI);
        assert_eq!(f("sgn")(-3.0), -1.0);
        assert_eq!(f("sgn")(3.0), 1.0);
        assert!(f("sgn")(-0.0).is_sign_negative());
        assert!(f("sgn")(f64::NAN).is_nan());
        assert!(f("ln")(-1.0).is_nan());
        assert!(f("acosh")(0.5).is_nan());
        assert_eq!(f("atanh")(1.0), f64::INFINITY);
        assert!(math_function("rate").is_none());
    }

    #[test]
    fn round_ties_up_and_to_multiples() {
        assert_eq!(round(2.5, 1.0), 3.0);
        assert_eq!(round(-2.5, 1.0), -2.0);
        assert_eq!(round(1.24, 0.1), 1.2);
        assert_eq!(round(17.0, 5.0), 15.0);
        assert_eq!(round(17.5, 5.0), 20.0);
        assert!(round(2.5, 0.0).is_nan());
        assert!(round(f64::NAN, 1.0).is_nan());
    }

    #[test]
    fn clamp_rules() {
        assert_eq!(clamp(5.0, 1.0, 3.0), 3.0);
        assert_eq!(clamp(-5.0, 1.0, 3.0), 1.0);
        assert_eq!(clamp(2.0, 1.0, 3.0), 2.0);
        assert!(clamp(f64::NAN, 1.0, 3.0).is_nan());
        assert!(clamp(5.0, f64::NAN, 3.0).is_nan());
        assert!(clamp(5.0, 1.0, f64::NAN).is_nan());
        assert_eq!(clamp(5.0, f64::NEG_INFINITY, 3.0), 3.0);
        assert_eq!(clamp(-5.0, 1.0, f64::INFINITY), 1.0);
        assert!(clamp_is_empty(3.0, 2.0));
        assert!(!clamp_is_empty(2.0, 2.0));
        assert!(!clamp_is_empty(f64::NAN, 2.0));
    }

    #[test]
    fn calendar_fields_in_utc() {
        // 2023-01-31T13:45:00Z, a Tuesday, day 31 of the year.
        let v = 1_675_172_700.0;
        assert_eq!(t("year", v), 2023.0);
        assert_eq!(t("month", v), 1.0);
        assert_eq!(t("day_of_month", v), 31.0);
        assert_eq!(t("day_of_year", v), 31.0);
        assert_eq!(t("day_of_week", v), 2.0);
        assert_eq!(t("hour", v), 13.0);
        assert_eq!(t("minute", v), 45.0);
        assert_eq!(t("days_in_month", v), 31.0);
        // 2024-02-29T00:00:00Z: leap day.
        let leap = 1_709_164_800.0;
        assert_eq!(t("month", leap), 2.0);
        assert_eq!(t("day_of_month", leap), 29.0);
        assert_eq!(t("days_in_month", leap), 29.0);
        assert_eq!(t("day_of_year", leap), 60.0);
        // 2024-12-31: day 366.
        assert_eq!(t("day_of_year", 1_735_603_200.0), 366.0);
        // The epoch was a Thursday.
        assert_eq!(t("day_of_week", 0.0), 4.0);
        assert_eq!(t("days_in_month", 0.0), 31.0);
    }

    #[test]
    fn negative_and_fractional_seconds_truncate_like_go() {
        // -1 s is 1969-12-31T23:59:59Z; -0.5 truncates to 0.
        assert_eq!(t("hour", -1.0), 23.0);
        assert_eq!(t("year", -1.0), 1969.0);
        assert_eq!(t("year", -0.5), 1970.0);
        assert_eq!(t("year", -1e12), -29719.0);
        assert_eq!(t("year", 1e15), 31_690_708.0);
    }

    #[test]
    fn nan_and_inf_match_prometheus_on_amd64() {
        // Values observed from promtool 2.42 (Go's int64(NaN) = MinInt64, then wrapping).
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 9.3e18] {
            assert_eq!(t("year", v), 292_277_026_596.0);
            assert_eq!(t("month", v), 12.0);
            assert_eq!(t("day_of_month", v), 4.0);
            assert_eq!(t("day_of_week", v), 0.0);
            assert_eq!(t("hour", v), 15.0);
            assert_eq!(t("minute", v), 30.0);
            assert_eq!(t("days_in_month", v), 31.0);
            assert_eq!(t("day_of_year", v), 339.0);
        }
        assert_eq!(t("minute", -1e17), 13.0);
        assert!(time_function("time").is_none());
    }
}
