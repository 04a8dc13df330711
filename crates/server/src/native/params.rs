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
}
