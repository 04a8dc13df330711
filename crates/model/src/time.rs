//! Time conversions. Stored timestamps are i64 nanoseconds since the Unix epoch (UTC),
//! which covers the years 1678 to 2262.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::{Error, Result};

pub const NANOS_PER_SEC: i64 = 1_000_000_000;
pub const NANOS_PER_DAY: i64 = 86_400 * NANOS_PER_SEC;

/// Now, in nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// RFC 3339 with nanoseconds and `Z`, e.g. `2024-05-01T12:00:00.123456789Z`.
pub fn format_rfc3339_ns(ns: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Parses RFC 3339 (any offset, any fraction) to nanoseconds since the epoch.
///
/// # Errors
/// [`Error::InvalidTimestamp`] when `s` is not RFC 3339 or outside the representable range.
pub fn parse_rfc3339(s: &str) -> Result<i64> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .and_then(|d| d.timestamp_nanos_opt())
        .ok_or_else(|| Error::InvalidTimestamp(s.to_string()))
}

/// A Unix timestamp number to nanoseconds, its unit told apart by magnitude:
/// below 1e11 seconds, below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds.
/// (1e11 s is the year 5138; 1e11 ms is 1973: so any date from 1973 to 5138 reads right in
/// every unit.) Fractions are kept.
///
/// # Errors
/// [`Error::InvalidTimestamp`] for NaN, infinities, negatives and values past year 2262.
pub fn unix_number_to_ns(x: f64) -> Result<i64> {
    if !x.is_finite() || x < 0.0 {
        return Err(Error::InvalidTimestamp(x.to_string()));
    }
    let ns = if x < 1e11 {
        x * 1e9
    } else if x < 1e14 {
        x * 1e6
    } else if x < 1e17 {
        x * 1e3
    } else {
        x
    };
    if ns >= i64::MAX as f64 {
        return Err(Error::InvalidTimestamp(x.to_string()));
    }
    Ok(ns.round() as i64)
}

/// An integer Unix timestamp to nanoseconds, unit by magnitude as in [`unix_number_to_ns`],
/// exact for integers (no float rounding of nanosecond values).
///
/// # Errors
/// [`Error::InvalidTimestamp`] for negatives and values past year 2262.
pub fn unix_int_to_ns(x: i64) -> Result<i64> {
    let r = if x < 0 {
        None
    } else if x < 100_000_000_000 {
        x.checked_mul(1_000_000_000)
    } else if x < 100_000_000_000_000 {
        x.checked_mul(1_000_000)
    } else if x < 100_000_000_000_000_000 {
        x.checked_mul(1_000)
    } else {
        Some(x)
    };
    r.ok_or_else(|| Error::InvalidTimestamp(x.to_string()))
}

/// Days since the epoch of a nanosecond timestamp (the event store's partition key).
pub fn day_of(ns: i64) -> i64 {
    ns.div_euclid(NANOS_PER_DAY)
}

/// `YYYY-MM-DD` of a day number.
pub fn day_name(day: i64) -> String {
    DateTime::<Utc>::from_timestamp(day * 86_400, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| format!("day{day}"))
}

/// Units of Prometheus' duration syntax, largest first, in milliseconds.
const PROM_UNITS: [(&str, i64); 7] = [
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

/// Prometheus' duration syntax (`model.ParseDuration`) in milliseconds: `1h30m`, `15s`,
/// `500ms`, `1d`, `2w`, `1y`; integer amounts, units in decreasing order, each at most
/// once; `0` alone is allowed. `None` for anything else or on overflow.
pub fn parse_prometheus_duration_ms(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let (mut rest, mut next, mut total) = (s, 0usize, 0i64);
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let pos = PROM_UNITS[next..].iter().position(|(u, _)| *u == unit)? + next;
        total = total.checked_add(n.checked_mul(PROM_UNITS[pos].1)?)?;
        next = pos + 1;
    }
    Some(total)
}

/// A non-negative duration in Prometheus' notation (`model.Duration.String`): `15s`,
/// `1m30s`, `1s500ms`, `0s`.
pub fn format_prometheus_duration_ms(ms: i64) -> String {
    if ms <= 0 {
        return "0s".into();
    }
    let mut rest = ms;
    let mut out = String::new();
    for (unit, size) in PROM_UNITS {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_durations() {
        assert_eq!(parse_prometheus_duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(parse_prometheus_duration_ms("500ms"), Some(500));
        assert_eq!(parse_prometheus_duration_ms("1d"), Some(86_400_000));
        assert_eq!(parse_prometheus_duration_ms("0"), Some(0));
        assert_eq!(
            parse_prometheus_duration_ms("30m1h"),
            None,
            "units out of order"
        );
        assert_eq!(parse_prometheus_duration_ms("1m1m"), None, "unit twice");
        assert_eq!(parse_prometheus_duration_ms("1.5s"), None);
        assert_eq!(parse_prometheus_duration_ms(""), None);
        assert_eq!(parse_prometheus_duration_ms("99999999999999999y"), None);
        assert_eq!(format_prometheus_duration_ms(15_000), "15s");
        assert_eq!(format_prometheus_duration_ms(90_000), "1m30s");
        assert_eq!(format_prometheus_duration_ms(1500), "1s500ms");
        assert_eq!(format_prometheus_duration_ms(0), "0s");
        for ms in [1, 999, 61_000, 3_600_000, 86_400_001] {
            let f = format_prometheus_duration_ms(ms);
            assert_eq!(parse_prometheus_duration_ms(&f), Some(ms), "{f}");
        }
    }

    #[test]
    fn units_by_magnitude() {
        let s = 1_700_000_000i64;
        assert_eq!(unix_int_to_ns(s).unwrap(), s * 1_000_000_000);
        assert_eq!(unix_int_to_ns(s * 1000).unwrap(), s * 1_000_000_000);
        assert_eq!(unix_int_to_ns(s * 1_000_000).unwrap(), s * 1_000_000_000);
        assert_eq!(
            unix_int_to_ns(s * 1_000_000_000).unwrap(),
            s * 1_000_000_000
        );
        assert_eq!(
            unix_number_to_ns(1_700_000_000.5).unwrap(),
            s * 1_000_000_000 + 500_000_000
        );
        assert!(unix_number_to_ns(f64::NAN).is_err());
        assert!(unix_int_to_ns(-1).is_err());
    }

    #[test]
    fn rfc3339_round_trip() {
        let ns = parse_rfc3339("2024-05-01T12:00:00.123456789+02:00").unwrap();
        assert_eq!(format_rfc3339_ns(ns), "2024-05-01T10:00:00.123456789Z");
        assert!(parse_rfc3339("yesterday").is_err());
        assert_eq!(day_name(day_of(ns)), "2024-05-01");
    }
}
