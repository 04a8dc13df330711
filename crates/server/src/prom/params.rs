//! Request parameters of the Prometheus API: URL query and form body merged as Prometheus'
//! `r.FormValue` sees them (repeated keys such as `match[]` kept), and its time and duration
//! syntaxes (`parseTime`, `parseDuration` in Prometheus' `web/api/v1/api.go`).

use axum::body::Bytes;
use axum::http::HeaderMap;
use sightline_model::time;

use crate::body::content_type;

/// Why a parameter was refused; becomes a `bad_data` error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParamError(pub String);

/// All parameters in order: URL first, then the form body of a POST.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses the raw URL query and, for `application/x-www-form-urlencoded` (or untyped)
    /// bodies, the form.
    pub fn parse(
        raw_query: Option<&str>,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Self, ParamError> {
        let mut v: Vec<(String, String)> = match raw_query {
            Some(q) => serde_urlencoded::from_str(q)
                .map_err(|e| ParamError(format!("invalid query string: {e}")))?,
            None => Vec::new(),
        };
        if !body.is_empty() {
            let ct = content_type(headers);
            if ct == "application/x-www-form-urlencoded" || ct.is_empty() {
                let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
                    .map_err(|e| ParamError(format!("invalid form body: {e}")))?;
                v.extend(form);
            } else {
                return Err(ParamError(format!(
                    "unsupported Content-Type {ct:?} (expected application/x-www-form-urlencoded)"
                )));
            }
        }
        Ok(Params(v))
    }

    /// The first value of `name` that is not empty, like Go's `FormValue` (which returns
    /// the first value; an empty one counts as absent for every parameter Prometheus reads).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (`match[]`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A time parameter in ms, or `default` when absent.
    pub fn time_ms(&self, name: &str, default: i64) -> Result<i64, ParamError> {
        match self.get(name) {
            None => Ok(default),
            Some(s) => {
                parse_time_ms(s).map_err(|e| ParamError(format!("invalid parameter {name:?}: {e}")))
            }
        }
    }
}

/// The smallest and largest times Prometheus' API accepts (`minTime`/`maxTime`, ms): the
/// defaults of `start`/`end` for metadata endpoints.
pub const MIN_TIME_MS: i64 = -9_223_309_901_257_974;
pub const MAX_TIME_MS: i64 = 9_223_309_901_257_974;

/// Unix seconds (fractions rounded to the millisecond) or RFC 3339, as Prometheus parses.
pub fn parse_time_ms(s: &str) -> Result<i64, String> {
    if let Ok(t) = s.parse::<f64>() {
        if t.is_finite() {
            let secs = t.trunc();
            let frac = ((t - secs) * 1000.0).round();
            let ms = secs * 1000.0 + frac;
            if (MIN_TIME_MS as f64..=MAX_TIME_MS as f64).contains(&ms) {
                return Ok(ms as i64);
            }
        }
    }
    if let Ok(ns) = time::parse_rfc3339(s) {
        return Ok(ns.div_euclid(1_000_000));
    }
    // Prometheus' own formatting of minTime/maxTime, sent back by some clients.
    match s {
        "-292273086-05-16T16:47:06Z" => Ok(MIN_TIME_MS),
        "292277025-08-18T07:12:54.999999999Z" => Ok(MAX_TIME_MS),
        _ => Err(format!("cannot parse {s:?} to a valid timestamp")),
    }
}

/// Seconds as a float, or a Prometheus duration (`1h30m`, `5m`, `15s`, `100ms`), in ms.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    if let Ok(d) = s.parse::<f64>() {
        let ms = d * 1000.0;
        if !ms.is_finite() || ms.abs() > i64::MAX as f64 / 1e6 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(ms.round() as i64);
    }
    time::parse_prometheus_duration_ms(s)
        .ok_or_else(|| format!("cannot parse {s:?} to a valid duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_like_prometheus() {
        assert_eq!(parse_time_ms("1700000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time_ms("1700000000.1234").unwrap(), 1_700_000_000_123);
        assert_eq!(parse_time_ms("-1.5").unwrap(), -1500);
        assert_eq!(
            parse_time_ms("2023-11-14T22:13:20.5Z").unwrap(),
            1_700_000_000_500
        );
        let e = parse_time_ms("yesterday").unwrap_err();
        assert_eq!(e, "cannot parse \"yesterday\" to a valid timestamp");
    }

    #[test]
    fn durations_like_prometheus() {
        assert_eq!(parse_duration_ms("15").unwrap(), 15_000);
        assert_eq!(parse_duration_ms("0.5").unwrap(), 500);
        assert_eq!(parse_duration_ms("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration_ms("100ms").unwrap(), 100);
        assert_eq!(parse_duration_ms("1d").unwrap(), 86_400_000);
        assert!(parse_duration_ms("30m1h").is_err(), "units out of order");
        assert!(parse_duration_ms("1.5h").is_err());
        assert!(parse_duration_ms("").is_err());
        assert!(parse_duration_ms("1e300").is_err());
    }

    #[test]
    fn repeated_and_form_params() {
        let mut h = HeaderMap::new();
        h.insert(
            "content-type",
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let p = Params::parse(
            Some("match[]=up&match[]=foo&time="),
            &h,
            &Bytes::from_static(b"query=sum%28up%29&match[]=bar"),
        )
        .unwrap();
        assert_eq!(p.all("match[]"), vec!["up", "foo", "bar"]);
        assert_eq!(p.get("query"), Some("sum(up)"));
        assert_eq!(p.get("time"), None);
        assert_eq!(p.time_ms("time", 7).unwrap(), 7);
    }
}
