//! Query parameters shared by the native query endpoints: taken from the URL and, for POST,
//! from a form or JSON body; times as RFC 3339 or Unix seconds.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::HeaderMap;
use sightline_model::time;

use crate::body::content_type;
use crate::error::ApiError;

/// One hour: the default range of a query without `start`, as Loki and VictoriaLogs use.
const DEFAULT_RANGE_NS: i64 = 3600 * time::NANOS_PER_SEC;

/// URL parameters merged with the body's (body wins), all as strings.
pub fn merge(
    url: HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<HashMap<String, String>, ApiError> {
    let mut params = url;
    if body.is_empty() {
        return Ok(params);
    }
    let ct = content_type(headers);
    if ct == "application/json" {
        let v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
        for (k, v) in v {
            let s = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => continue,
                other => other.to_string(),
            };
            params.insert(k, s);
        }
    } else if ct == "application/x-www-form-urlencoded" || ct.is_empty() {
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| ApiError::BadRequest(format!("invalid form body: {e}")))?;
        params.extend(form);
    } else {
        return Err(ApiError::UnsupportedMediaType(format!(
            "unsupported Content-Type {ct:?} (expected application/x-www-form-urlencoded or application/json)"
        )));
    }
    Ok(params)
}

/// `(start, end)` in ns: `end` defaults to now, `start` to one hour before `end`.
pub fn time_range(params: &HashMap<String, String>) -> Result<(i64, i64), ApiError> {
    let end = match params
        .get("end")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        Some(s) => parse_time("end", s)?,
        None => time::now_ns(),
    };
    let start = match params
        .get("start")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        Some(s) => parse_time("start", s)?,
        None => end.saturating_sub(DEFAULT_RANGE_NS),
    };
    if start > end {
        return Err(ApiError::BadRequest(format!(
            "parameter start ({}) is after end ({})",
            time::format_rfc3339_ns(start),
            time::format_rfc3339_ns(end)
        )));
    }
    Ok((start, end))
}

/// A time parameter: RFC 3339, or Unix seconds (fractions allowed), like Prometheus' API.
pub fn parse_time(name: &str, s: &str) -> Result<i64, ApiError> {
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs.abs() < 9.2e9 {
            return Ok((secs * 1e9).round() as i64);
        }
    }
    time::parse_rfc3339(s).map_err(|_| {
        ApiError::BadRequest(format!(
            "parameter {name}: cannot parse {s:?} as an RFC 3339 time or Unix seconds"
        ))
    })
}

/// `limit`: default and cap from `[query]`.
pub fn limit(
    params: &HashMap<String, String>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match params
        .get("limit")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        None => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(0) | Err(_) => Err(ApiError::BadRequest(format!(
                "parameter limit: expected a positive integer, got {s:?}"
            ))),
            Ok(n) if n > max => Err(ApiError::BadRequest(format!(
                "parameter limit: {n} exceeds the maximum of {max} (query.max_limit)"
            ))),
            Ok(n) => Ok(n),
        },
    }
}

/// A duration parameter in Go's / Jaeger's syntax (`time.ParseDuration`): one or more
/// decimal numbers each with a unit, `500ns`, `100us` (or `µs`), `1.5ms`, `2s`, `1m30s`,
/// `2h`; returned in nanoseconds (fractions below 1 ns are dropped). A bare number has no
/// unit and is refused, as is a sign: a negative duration filters nothing.
///
/// Hand-written rather than `humantime`: humantime reads `1m` as a minute but also accepts
/// `1month`, spaces and no `µs`, and Jaeger clients send exactly Go's syntax.
///
/// # Errors
/// 400 `<name>: ...` for anything else, or a duration over `i64::MAX` ns (about 292 years).
pub fn parse_duration(name: &str, s: &str) -> Result<i64, ApiError> {
    let bad = |reason: &str| {
        ApiError::BadRequest(format!(
            "{name}: cannot parse {s:?} as a duration ({reason}; examples: 1.5ms, 100us, 2s, 1m30s)"
        ))
    };
    if s.is_empty() {
        return Err(bad("empty"));
    }
    let mut rest = s;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits_end);
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad("expected a number"));
        }
        if frac_part.contains('.') {
            return Err(bad("two decimal points in one number"));
        }
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let unit_ns: u128 = match unit {
            "ns" => 1,
            // U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU, as Go accepts both.
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(bad("missing unit")),
            _ => return Err(bad(&format!("unknown unit {unit:?}"))),
        };
        let too_long = || bad("out of range");
        // More than 30 digits cannot fit even in u128 arithmetic below, and is absurd anyway.
        if int_part.len() > 30 {
            return Err(too_long());
        }
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| too_long())?
        };
        let mut ns = whole.checked_mul(unit_ns).ok_or_else(too_long)?;
        // Fraction digits past nanosecond precision of the largest unit do not matter.
        let frac = &frac_part[..frac_part.len().min(18)];
        if !frac.is_empty() {
            let f: u128 = frac.parse().map_err(|_| too_long())?;
            ns += f * unit_ns / 10u128.pow(frac.len() as u32);
        }
        total = total.checked_add(ns).ok_or_else(too_long)?;
        if total > i64::MAX as u128 {
            return Err(too_long());
        }
        rest = next;
    }
    Ok(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(
            parse_time("start", "1700000000").unwrap(),
            1_700_000_000_000_000_000
        );
        assert_eq!(
            parse_time("start", "1700000000.5").unwrap(),
            1_700_000_000_500_000_000
        );
        assert_eq!(
            parse_time("start", "2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000_000_000
        );
        let e = parse_time("start", "yesterday").unwrap_err().to_string();
        assert!(e.contains("parameter start"), "{e}");
    }

    #[test]
    fn range_defaults_to_last_hour() {
        let mut p = HashMap::new();
        p.insert("end".to_string(), "1700003600".to_string());
        assert_eq!(
            time_range(&p).unwrap(),
            (1_700_000_000_000_000_000, 1_700_003_600_000_000_000)
        );
        p.insert("start".to_string(), "1800000000".to_string());
        assert!(time_range(&p).is_err());
    }

    #[test]
    fn limits() {
        let mut p = HashMap::new();
        assert_eq!(limit(&p, 100, 1000).unwrap(), 100);
        p.insert("limit".to_string(), "5000".to_string());
        assert!(limit(&p, 100, 1000)
            .unwrap_err()
            .to_string()
            .contains("query.max_limit"));
        p.insert("limit".to_string(), "x".to_string());
        assert!(limit(&p, 100, 1000).is_err());
    }
    #[test]
    fn durations_in_go_syntax() {
        let d = |s| parse_duration("min_duration", s);
        assert_eq!(d("500ns").unwrap(), 500);
        assert_eq!(d("100us").unwrap(), 100_000);
        assert_eq!(d("250\u{b5}s").unwrap(), 250_000);
        assert_eq!(d("250\u{3bc}s").unwrap(), 250_000);
        assert_eq!(d("1.5ms").unwrap(), 1_500_000);
        assert_eq!(d(".5s").unwrap(), 500_000_000);
        assert_eq!(d("2s").unwrap(), 2_000_000_000);
        assert_eq!(d("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(d("1h0.5m").unwrap(), 3_630_000_000_000);
        assert_eq!(d("1.0000000001s").unwrap(), 1_000_000_000);
        for bad in [
            "",
            "100",
            "0",
            "1.5",
            "-1s",
            "+1s",
            "1x",
            "1 s",
            "s",
            "1..5s",
            "1.2.3s",
            "abc",
            "1d",
            "1sec",
            "99999999999h",
            "1000000000000000000000000000000000s",
        ] {
            let e = d(bad).unwrap_err();
            assert!(matches!(e, ApiError::BadRequest(_)), "{bad:?}");
            assert!(e.to_string().starts_with("min_duration: "), "{bad:?}: {e}");
        }
    }
}
