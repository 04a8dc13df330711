//! nginx and Apache access logs (combined and common forms) and Apache error log lines.
//!
//! Parsed with fixed regexes rather than a grammar crate: the formats are single lines with
//! fixed field order, and the regexes are the documented `log_format`/`LogFormat` strings.

use std::sync::LazyLock;

use chrono::{DateTime, NaiveDateTime};
use regex::Regex;
use sightline_model::{Level, LogRecord, Value};

use crate::json_record::typed_text_value;

/// `$remote_addr $ident $remote_user [$time_local] "$request" $status $body_bytes_sent`,
/// then optionally `"$http_referer" "$http_user_agent"`, then optionally one more field
/// (nginx's `$request_time` appended by many configs).
static ACCESS: LazyLock<Regex> = LazyLock::new(|| {
    let quoted = r#""((?:[^"\\]|\\.)*)""#;
    Regex::new(&format!(
        r#"^(\S+) \S+ (\S+) \[([^\]]+)\] {quoted} (\d{{3}}) (\d+|-)(?: {quoted} {quoted})?(?: (\S+))?\s*$"#
    ))
    .expect("BUG: access log regex must compile")
});

/// `[Sun Dec 04 04:47:44 2005] [notice] message` (Apache 2.2) and
/// `[Sun Dec 04 04:47:44.123456 2005] [core:error] [pid 123:tid 45] [client 1.2.3.4:5] message`
/// (Apache 2.4).
static APACHE_ERROR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\[(\w{3} \w{3} +\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d+)? \d{4})\] \[(?:([^\]:]*):)?([^\]:]*)\](?: \[pid (\d+)(?::tid (\d+))?\])?(?: \[client ([^\]]+)\])? ?(.*)$",
    )
    .expect("BUG: apache error regex must compile")
});

/// The common log time `10/Oct/2000:13:55:36 -0700` in nanoseconds since the epoch.
pub fn parse_clf_time(s: &str) -> Option<i64> {
    DateTime::parse_from_str(s.trim(), "%d/%b/%Y:%H:%M:%S %z")
        .ok()?
        .timestamp_nanos_opt()
}

/// An nginx access log line (combined, common, optional trailing request time).
///
/// # Errors
/// The reason when the line is not in the access log form or its time is invalid.
pub fn parse_access_line(line: &str, now_ns: i64) -> Result<LogRecord, String> {
    let c = ACCESS
        .captures(line)
        .ok_or_else(|| "not an access log line (combined or common format)".to_string())?;
    let get = |i: usize| c.get(i).map_or("", |m| m.as_str());
    let time = get(3);
    let timestamp = parse_clf_time(time).ok_or_else(|| format!("invalid time [{time}]"))?;
    let status: i64 = get(5)
        .parse()
        .map_err(|_| format!("invalid status {:?}", get(5)))?;
    let bytes: i64 = match get(6) {
        "-" => 0,
        b => b.parse().map_err(|_| format!("invalid byte count {b:?}"))?,
    };
    let level = match status {
        500.. => Level::Error,
        400.. => Level::Warn,
        _ => Level::Info,
    };
    let mut rec = LogRecord {
        timestamp,
        observed_timestamp: now_ns,
        severity_number: level.number(),
        severity_text: level.as_str().to_string(),
        body: line.to_string(),
        ..LogRecord::default()
    };
    let a = &mut rec.attributes;
    let mut put = |k: &str, v: &str| a.insert(k.to_string(), Value::Str(v.to_string()));
    put("remote_addr", get(1));
    if get(2) != "-" {
        put("remote_user", get(2));
    }
    let request = get(4);
    let parts: Vec<&str> = request.split(' ').collect();
    match parts.as_slice() {
        [method, path, protocol] => {
            put("method", method);
            put("path", path);
            put("protocol", protocol);
        }
        [method, path] => {
            put("method", method);
            put("path", path);
        }
        _ => put("request", request),
    }
    if c.get(7).is_some() {
        put("referer", get(7));
        put("user_agent", get(8));
    }
    a.insert("status".to_string(), Value::Int(status));
    a.insert("bytes".to_string(), Value::Int(bytes));
    if let Some(m) = c.get(9) {
        a.insert("request_time".to_string(), typed_text_value(m.as_str()));
    }
    Ok(rec)
}

/// An Apache line: the access log forms of [`parse_access_line`], or an error log line
/// (`[date] [level] message`, 2.2 and 2.4 forms; the local time is taken as UTC).
///
/// # Errors
/// The reason when the line is in neither form or its time is invalid.
pub fn parse_apache_line(line: &str, now_ns: i64) -> Result<LogRecord, String> {
    if !line.starts_with('[') {
        return parse_access_line(line, now_ns);
    }
    let c = APACHE_ERROR
        .captures(line)
        .ok_or_else(|| "not an apache access or error log line".to_string())?;
    let get = |i: usize| c.get(i).map_or("", |m| m.as_str());
    let time: String = get(1).split_whitespace().collect::<Vec<_>>().join(" ");
    let timestamp = NaiveDateTime::parse_from_str(&time, "%a %b %d %H:%M:%S%.f %Y")
        .ok()
        .and_then(|t| t.and_utc().timestamp_nanos_opt())
        .ok_or_else(|| format!("invalid time [{}]", get(1)))?;
    let level_text = get(3).trim();
    let mut rec = LogRecord {
        timestamp,
        observed_timestamp: now_ns,
        severity_number: Level::parse(level_text).map_or(0, Level::number),
        severity_text: level_text.to_string(),
        body: get(7).to_string(),
        ..LogRecord::default()
    };
    let a = &mut rec.attributes;
    if let Some(m) = c.get(2) {
        a.insert("module".to_string(), Value::Str(m.as_str().to_string()));
    }
    for (i, key) in [(4, "pid"), (5, "tid")] {
        if let Some(m) = c.get(i) {
            a.insert(key.to_string(), typed_text_value(m.as_str()));
        }
    }
    if let Some(m) = c.get(6) {
        a.insert("client".to_string(), Value::Str(m.as_str().to_string()));
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000_000_000;

    fn s(v: &str) -> Option<Value> {
        Some(Value::Str(v.into()))
    }

    #[test]
    fn nginx_combined() {
        let line = r#"93.180.71.3 - - [17/May/2015:08:05:32 +0000] "GET /downloads/product_1 HTTP/1.1" 304 0 "-" "Debian APT-HTTP/1.3 (0.8.16~exp12ubuntu10.21)""#;
        let r = parse_access_line(line, NOW).unwrap();
        assert_eq!(r.timestamp, 1_431_849_932_000_000_000);
        assert_eq!(r.observed_timestamp, NOW);
        assert_eq!(r.body, line);
        assert_eq!(r.severity_number, Level::Info.number());
        let a = &r.attributes;
        assert_eq!(a.get("remote_addr").cloned(), s("93.180.71.3"));
        assert_eq!(a.get("remote_user"), None);
        assert_eq!(a.get("method").cloned(), s("GET"));
        assert_eq!(a.get("path").cloned(), s("/downloads/product_1"));
        assert_eq!(a.get("protocol").cloned(), s("HTTP/1.1"));
        assert_eq!(a.get("status"), Some(&Value::Int(304)));
        assert_eq!(a.get("bytes"), Some(&Value::Int(0)));
        assert_eq!(a.get("referer").cloned(), s("-"));
        assert_eq!(
            a.get("user_agent").cloned(),
            s("Debian APT-HTTP/1.3 (0.8.16~exp12ubuntu10.21)")
        );
    }

    #[test]
    fn common_form_user_and_severity() {
        let line = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#;
        let r = parse_access_line(line, NOW).unwrap();
        assert_eq!(r.timestamp, 971_211_336_000_000_000);
        assert_eq!(r.attributes.get("remote_user").cloned(), s("frank"));
        assert_eq!(r.attributes.get("bytes"), Some(&Value::Int(2326)));
        assert_eq!(r.attributes.get("referer"), None);
        let l503 = line.replace(" 200 2326", " 503 -");
        let r = parse_access_line(&l503, NOW).unwrap();
        assert_eq!((r.severity_number, r.severity_text.as_str()), (17, "error"));
        assert_eq!(r.attributes.get("bytes"), Some(&Value::Int(0)));
        let r = parse_access_line(&line.replace(" 200 ", " 404 "), NOW).unwrap();
        assert_eq!(r.severity_number, 13);
    }

    #[test]
    fn nginx_request_time_and_escaped_quotes() {
        let line = r#"10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "POST /a\"b HTTP/2.0" 201 17 "https://x/" "curl/8" 0.042"#;
        let r = parse_access_line(line, NOW).unwrap();
        assert_eq!(r.attributes.get("request_time"), Some(&Value::Float(0.042)));
        assert_eq!(r.attributes.get("path").cloned(), s(r#"/a\"b"#));
        assert_eq!(r.attributes.get("user_agent").cloned(), s("curl/8"));
    }

    #[test]
    fn access_errors() {
        assert_eq!(
            parse_access_line("hello", NOW).unwrap_err(),
            "not an access log line (combined or common format)"
        );
        assert_eq!(
            parse_access_line(
                r#"1.2.3.4 - - [99/Foo/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1"#,
                NOW
            )
            .unwrap_err(),
            "invalid time [99/Foo/2000:13:55:36 -0700]"
        );
        let r = parse_access_line(
            r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "\x16\x03" 400 0"#,
            NOW,
        )
        .unwrap();
        assert_eq!(r.attributes.get("request").cloned(), s(r"\x16\x03"));
    }

    #[test]
    fn apache_error_forms() {
        let r = parse_apache_line("[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties", NOW).unwrap();
        assert_eq!(r.timestamp, 1_133_671_664_000_000_000);
        assert_eq!((r.severity_number, r.severity_text.as_str()), (9, "notice"));
        assert_eq!(
            r.body,
            "workerEnv.init() ok /etc/httpd/conf/workers2.properties"
        );
        let r = parse_apache_line(
            "[Sun Dec 04 04:47:44.123456 2005] [core:error] [pid 123:tid 77] [client 1.2.3.4:5] File does not exist: /x",
            NOW,
        )
        .unwrap();
        assert_eq!(r.timestamp, 1_133_671_664_123_456_000);
        assert_eq!((r.severity_number, r.severity_text.as_str()), (17, "error"));
        assert_eq!(r.attributes.get("module").cloned(), s("core"));
        assert_eq!(r.attributes.get("pid"), Some(&Value::Int(123)));
        assert_eq!(r.attributes.get("tid"), Some(&Value::Int(77)));
        assert_eq!(r.attributes.get("client").cloned(), s("1.2.3.4:5"));
        assert_eq!(r.body, "File does not exist: /x");
        let r = parse_apache_line("[Mon Dec  5 04:47:44 2005] [warn] x", NOW).unwrap();
        assert_eq!(r.severity_number, 13);
        assert!(parse_apache_line(
            r#"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1"#,
            NOW
        )
        .is_ok());
        assert_eq!(
            parse_apache_line("[oops", NOW).unwrap_err(),
            "not an apache access or error log line"
        );
        assert_eq!(
            parse_apache_line("[Sun Foo 04 04:47:44 2005] [notice] x", NOW).unwrap_err(),
            "invalid time [Sun Foo 04 04:47:44 2005]"
        );
    }
}
