//! Query parameters of the Jaeger API as jaeger-query reads them (`query_parser.go`): times
//! in Unix microseconds (dependencies: milliseconds), durations in Go syntax, tags as a
//! JSON object (`tags=`) or `key:value` pairs (`tag=`, repeated).

use sightline_model::time::NANOS_PER_SEC;
use sightline_model::{SpanKind, TraceId};
use sightline_query::traces::TraceQuery;

use crate::error::ApiError;
use crate::native::params::parse_duration;
use crate::native::traces::MAX_TRACE_LIMIT;

/// Traces a search returns without `limit` (jaeger-query's `defaultQueryLimit`).
pub const DEFAULT_LIMIT: usize = 100;
/// Range of a search without `start` (jaeger-query's `defaultTraceQueryLookbackDuration`).
pub const DEFAULT_SEARCH_LOOKBACK_NS: i64 = 2 * 24 * 3600 * NANOS_PER_SEC;
/// Range of `/api/dependencies` without `lookback` (jaeger-query's
/// `defaultDependencyLookbackDuration`).
pub const DEFAULT_DEPENDENCY_LOOKBACK_NS: i64 = 24 * 3600 * NANOS_PER_SEC;

/// What `/api/traces?...` asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Search {
    /// `traceID=` given (repeated): these traces, whatever the other filters say. The ids as
    /// written are kept for the per-trace "not found" errors.
    ByIds(Vec<(String, Option<TraceId>)>),
    Query(TraceQuery),
}

/// The first non-empty value of `name` (Go's `FormValue` reads the first).
pub fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn all<'a>(pairs: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    pairs
        .iter()
        .filter(move |(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn bad(msg: String) -> ApiError {
    ApiError::BadRequest(msg)
}

/// A Jaeger trace id: 1 to 32 hex characters, left-padded with zeros (Jaeger writes 64-bit
/// ids as 16 characters). `None` for the all-zero id, which is never stored.
///
/// # Errors
/// 400 `traceID: ...`.
pub fn parse_trace_id(s: &str) -> Result<Option<TraceId>, ApiError> {
    if s.is_empty() || s.len() > 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(format!(
            "traceID: expected 1 to 32 hex characters, got {s:?}"
        )));
    }
    let padded = format!("{s:0>32}");
    let id = TraceId::from_hex(&padded).map_err(|e| bad(format!("traceID: {e}")))?;
    Ok((id != TraceId::default()).then_some(id))
}

/// An integer time parameter in `unit_ns` units since the epoch, as ns.
fn epoch(pairs: &[(String, String)], name: &str, unit_ns: i64) -> Result<Option<i64>, ApiError> {
    let Some(s) = first(pairs, name) else {
        return Ok(None);
    };
    s.parse::<i64>()
        .ok()
        .and_then(|v| v.checked_mul(unit_ns))
        .map(Some)
        .ok_or_else(|| {
            let unit = if unit_ns == 1000 {
                "microseconds"
            } else {
                "milliseconds"
            };
            bad(format!(
                "{name}: expected an integer of Unix {unit}, got {s:?}"
            ))
        })
}

/// `lookback` of a search (`1h`, `2d`, ... as the Jaeger UI sends it). jaeger-query ignores
/// it; here it sets the range when `start` is absent. Values it cannot read (`custom`) are
/// ignored, as jaeger-query does.
fn search_lookback(pairs: &[(String, String)]) -> Option<i64> {
    let s = first(pairs, "lookback")?;
    if let Some(days) = s.strip_suffix('d').and_then(|d| d.parse::<i64>().ok()) {
        return days
            .checked_mul(24 * 3600 * NANOS_PER_SEC)
            .filter(|d| *d > 0);
    }
    parse_duration("lookback", s).ok().filter(|d| *d > 0)
}

/// Tags of a search: `tags={"k":"v",...}` (a JSON object; numbers and booleans are taken
/// as their text) or `tags=k=v k2="v 2"` (logfmt, as typed in Grafana's tags field), and
/// `tag=k:v` repeated. Sorted by key; a later value of a key wins.
///
/// # Errors
/// 400 `tags: ...` / `tag: ...` for a malformed value.
pub fn tags(pairs: &[(String, String)]) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = std::collections::BTreeMap::new();
    for t in all(pairs, "tag") {
        let Some((k, v)) = t.split_once(':') else {
            return Err(bad(format!("tag: expected key:value, got {t:?}")));
        };
        if k.is_empty() {
            return Err(bad(format!("tag: empty key in {t:?}")));
        }
        out.insert(k.to_string(), v.to_string());
    }
    for t in all(pairs, "tags") {
        if t.starts_with('{') {
            let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(t)
                .map_err(|e| bad(format!("tags: invalid JSON object: {e}")))?;
            for (k, v) in map {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    other => {
                        return Err(bad(format!(
                            "tags: value of {k:?} must be a string, number or boolean, got {other}"
                        )))
                    }
                };
                if k.is_empty() {
                    return Err(bad("tags: empty key".into()));
                }
                out.insert(k, v);
            }
        } else {
            for (k, v) in logfmt(t)? {
                out.insert(k, v);
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// `k=v k2="v 2"`: space-separated pairs, a value optionally double-quoted (with `\"` and
/// `\\` escapes). Hand-written: a dozen lines, and the only logfmt reader the server needs.
fn logfmt(s: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') || key.is_empty() {
            return Err(bad(format!(
                "tags: expected a JSON object or key=value pairs, got {s:?}"
            )));
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(bad(format!("tags: unterminated quote in {s:?}"))),
                    },
                    Some(c) => value.push(c),
                    None => return Err(bad(format!("tags: unterminated quote in {s:?}"))),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, value));
    }
}

/// The search of `/api/traces?service=&operation=&tags=&minDuration=&maxDuration=&start=
/// &end=&limit=&lookback=` (or `traceID=` repeated). `start`/`end` are inclusive Unix
/// microseconds; `end` defaults to now, `start` to `end` − `lookback` (default 2 days).
/// The tag `error=true` (and `otel.status_code=ERROR`), which this API shows on error
/// spans, selects error spans as the native `status=error` does. A `limit` over the native
/// maximum is lowered to it (Jaeger has no maximum; clients ask for 1500).
///
/// # Errors
/// 400 naming the parameter; `service` is required unless `traceID` is given.
pub fn search(pairs: &[(String, String)], now_ns: i64) -> Result<Search, ApiError> {
    let ids: Vec<&str> = all(pairs, "traceID").collect();
    let start = epoch(pairs, "start", 1000)?;
    let end = epoch(pairs, "end", 1000)?;
    if !ids.is_empty() {
        let mut out = Vec::new();
        for id in ids {
            out.push((id.to_string(), parse_trace_id(id)?));
        }
        return Ok(Search::ByIds(out));
    }
    let service = first(pairs, "service")
        .ok_or_else(|| bad("service: parameter 'service' is required".into()))?;
    let end_ns = end.unwrap_or(now_ns);
    let start_ns = match start {
        Some(s) => s,
        None => end_ns.saturating_sub(search_lookback(pairs).unwrap_or(DEFAULT_SEARCH_LOOKBACK_NS)),
    };
    if start_ns > end_ns {
        return Err(bad("start: after end".into()));
    }
    let duration = |name| {
        first(pairs, name)
            .map(|s| parse_duration(name, s))
            .transpose()
    };
    let min_duration_ns = duration("minDuration")?;
    let max_duration_ns = duration("maxDuration")?;
    if let (Some(min), Some(max)) = (min_duration_ns, max_duration_ns) {
        if max < min {
            return Err(bad("maxDuration: shorter than minDuration".into()));
        }
    }
    let limit = match first(pairs, "limit") {
        None => DEFAULT_LIMIT,
        Some(s) => match s.parse::<i64>() {
            Ok(0) => DEFAULT_LIMIT,
            Ok(n) if n > 0 => (n as u64).min(MAX_TRACE_LIMIT as u64) as usize,
            _ => {
                return Err(bad(format!(
                    "limit: expected a non-negative integer, got {s:?}"
                )))
            }
        },
    };
    let mut errors_only = false;
    let mut attributes = Vec::new();
    for (k, v) in tags(pairs)? {
        match (k.as_str(), v.as_str()) {
            ("error", v) if v.eq_ignore_ascii_case("true") => errors_only = true,
            ("otel.status_code", "ERROR") => errors_only = true,
            _ => attributes.push((k, v)),
        }
    }
    Ok(Search::Query(TraceQuery {
        service: Some(service.to_string()),
        operation: first(pairs, "operation").map(str::to_string),
        attributes,
        min_duration_ns,
        max_duration_ns,
        errors_only,
        start_ns,
        // The query's range is half-open; Jaeger's end microsecond is included whole.
        end_ns: end_ns.saturating_add(1000),
        limit,
    }))
}

/// `/api/dependencies?endTs=<ms>&lookback=<ms>`: the half-open ns range
/// `[endTs − lookback, endTs]` (`endTs` default now, `lookback` default 24 h).
///
/// # Errors
/// 400 `endTs: ...` / `lookback: ...`.
pub fn dependencies_range(pairs: &[(String, String)], now_ns: i64) -> Result<(i64, i64), ApiError> {
    let end = epoch(pairs, "endTs", 1_000_000)?.unwrap_or(now_ns);
    let lookback = match first(pairs, "lookback") {
        None => DEFAULT_DEPENDENCY_LOOKBACK_NS,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|ms| *ms >= 0)
            .and_then(|ms| ms.checked_mul(1_000_000))
            .ok_or_else(|| {
                bad(format!(
                    "lookback: expected a non-negative integer of milliseconds, got {s:?}"
                ))
            })?,
    };
    Ok((end.saturating_sub(lookback), end.saturating_add(1)))
}

/// `spanKind` of `/api/operations`: absent or empty for every kind.
///
/// # Errors
/// 400 `spanKind: ...` for an unknown kind.
pub fn span_kind(pairs: &[(String, String)]) -> Result<Option<SpanKind>, ApiError> {
    match first(pairs, "spanKind") {
        None => Ok(None),
        Some(s) => SpanKind::parse(s)
            .map(Some)
            .ok_or_else(|| bad(format!("spanKind: unknown span kind {s:?} (expected server, client, producer, consumer, internal or unspecified)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000_000_000;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn query(p: &[(&str, &str)]) -> TraceQuery {
        match search(&pairs(p), NOW).unwrap() {
            Search::Query(q) => q,
            other => panic!("expected a query, got {other:?}"),
        }
    }

    fn bad_request(e: ApiError) -> String {
        assert!(matches!(e, ApiError::BadRequest(_)), "{e:?}");
        e.to_string()
    }

    #[test]
    fn trace_ids_may_be_short_and_are_left_padded() {
        let id = parse_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
            .unwrap()
            .unwrap();
        assert_eq!(id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let short = parse_trace_id("a3ce929d0e0e4736").unwrap().unwrap();
        assert_eq!(short.to_hex(), "0000000000000000a3ce929d0e0e4736");
        assert_eq!(parse_trace_id("0000").unwrap(), None);
        for bad in ["", "xyz", "4bf92f3577b34da6a3ce929d0e0e47360", "-1"] {
            let e = bad_request(parse_trace_id(bad).unwrap_err());
            assert!(e.starts_with("traceID: "), "{bad:?}: {e}");
        }
    }

    #[test]
    fn search_defaults_follow_jaeger_query() {
        let q = query(&[("service", "web")]);
        assert_eq!(q.service.as_deref(), Some("web"));
        assert_eq!(q.limit, DEFAULT_LIMIT);
        assert_eq!(q.end_ns, NOW + 1000);
        assert_eq!(q.start_ns, NOW - DEFAULT_SEARCH_LOOKBACK_NS);
        // lookback sets the range when start is absent; what it cannot read is ignored.
        assert_eq!(
            query(&[("service", "web"), ("lookback", "1h")]).start_ns,
            NOW - 3600 * NANOS_PER_SEC
        );
        assert_eq!(
            query(&[("service", "web"), ("lookback", "7d")]).start_ns,
            NOW - 7 * 24 * 3600 * NANOS_PER_SEC
        );
        assert_eq!(
            query(&[("service", "web"), ("lookback", "custom")]).start_ns,
            NOW - DEFAULT_SEARCH_LOOKBACK_NS
        );
        assert_eq!(
            query(&[("service", "web"), ("limit", "0")]).limit,
            DEFAULT_LIMIT
        );
        assert_eq!(
            query(&[("service", "web"), ("limit", "1500")]).limit,
            MAX_TRACE_LIMIT
        );
    }

    #[test]
    fn search_reads_every_parameter() {
        let q = query(&[
            ("service", "web"),
            ("operation", "GET /"),
            ("start", "1700000000000000"),
            ("end", "1700000060000000"),
            ("minDuration", "1.5ms"),
            ("maxDuration", "2s"),
            ("limit", "20"),
            (
                "tags",
                r#"{"http.status_code":200,"error":"true","k":"v w"}"#,
            ),
            ("tag", "a:b:c"),
        ]);
        assert_eq!(
            q,
            TraceQuery {
                service: Some("web".into()),
                operation: Some("GET /".into()),
                attributes: vec![
                    ("a".into(), "b:c".into()),
                    ("http.status_code".into(), "200".into()),
                    ("k".into(), "v w".into()),
                ],
                min_duration_ns: Some(1_500_000),
                max_duration_ns: Some(2_000_000_000),
                errors_only: true,
                start_ns: NOW,
                end_ns: NOW + 60_000_000_000 + 1000,
                limit: 20,
            }
        );
    }

    #[test]
    fn tags_as_logfmt() {
        let t = tags(&pairs(&[(
            "tags",
            r#"http.method=GET  msg="a \"b\" c" empty="#,
        )]))
        .unwrap();
        assert_eq!(
            t,
            vec![
                ("empty".to_string(), String::new()),
                ("http.method".to_string(), "GET".to_string()),
                ("msg".to_string(), r#"a "b" c"#.to_string()),
            ]
        );
        let q = query(&[("service", "s"), ("tags", "otel.status_code=ERROR")]);
        assert!(q.errors_only && q.attributes.is_empty());
    }

    #[test]
    fn bad_search_parameters_name_the_parameter() {
        for (p, name) in [
            (vec![], "service: "),
            (vec![("service", "s"), ("limit", "-1")], "limit: "),
            (vec![("service", "s"), ("limit", "x")], "limit: "),
            (vec![("service", "s"), ("start", "1h")], "start: "),
            (
                vec![("service", "s"), ("end", "99999999999999999999")],
                "end: ",
            ),
            (
                vec![("service", "s"), ("start", "9223372036854775807")],
                "start: ",
            ),
            (
                vec![("service", "s"), ("start", "2"), ("end", "1")],
                "start: ",
            ),
            (
                vec![("service", "s"), ("minDuration", "100")],
                "minDuration: ",
            ),
            (
                vec![("service", "s"), ("maxDuration", "-1s")],
                "maxDuration: ",
            ),
            (
                vec![
                    ("service", "s"),
                    ("minDuration", "2s"),
                    ("maxDuration", "1s"),
                ],
                "maxDuration: ",
            ),
            (vec![("service", "s"), ("tags", "{\"k\":")], "tags: "),
            (vec![("service", "s"), ("tags", "[1]")], "tags: "),
            (vec![("service", "s"), ("tags", r#"{"k":[1]}"#)], "tags: "),
            (vec![("service", "s"), ("tags", "novalue")], "tags: "),
            (vec![("service", "s"), ("tags", r#"k="open"#)], "tags: "),
            (vec![("service", "s"), ("tag", "novalue")], "tag: "),
            (vec![("traceID", "nothex")], "traceID: "),
        ] {
            let e = bad_request(search(&pairs(&p), NOW).unwrap_err());
            assert!(e.starts_with(name), "{p:?}: {e}");
        }
    }

    #[test]
    fn trace_ids_win_over_filters() {
        let s = search(
            &pairs(&[("traceID", "01"), ("traceID", "0"), ("service", "ignored")]),
            NOW,
        )
        .unwrap();
        let mut one = [0u8; 16];
        one[15] = 1;
        assert_eq!(
            s,
            Search::ByIds(vec![("01".into(), Some(TraceId(one))), ("0".into(), None)])
        );
    }

    #[test]
    fn dependency_range_in_milliseconds() {
        let (s, e) = dependencies_range(
            &pairs(&[("endTs", "1700000000000"), ("lookback", "60000")]),
            0,
        )
        .unwrap();
        assert_eq!((s, e), (NOW - 60_000_000_000, NOW + 1));
        let (s, e) = dependencies_range(&[], NOW).unwrap();
        assert_eq!((s, e), (NOW - DEFAULT_DEPENDENCY_LOOKBACK_NS, NOW + 1));
        for (p, name) in [
            (vec![("endTs", "soon")], "endTs: "),
            (vec![("lookback", "1h")], "lookback: "),
            (vec![("lookback", "-5")], "lookback: "),
        ] {
            let e = bad_request(dependencies_range(&pairs(&p), NOW).unwrap_err());
            assert!(e.starts_with(name), "{p:?}: {e}");
        }
    }

    #[test]
    fn span_kinds() {
        assert_eq!(span_kind(&[]).unwrap(), None);
        assert_eq!(
            span_kind(&pairs(&[("spanKind", "server")])).unwrap(),
            Some(SpanKind::Server)
        );
        let e = bad_request(span_kind(&pairs(&[("spanKind", "sideways")])).unwrap_err());
        assert!(e.starts_with("spanKind: "), "{e}");
    }
}
