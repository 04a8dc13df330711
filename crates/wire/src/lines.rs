//! Plain log lines to records: splits a body into lines and hands each to the parser of
//! the chosen [`LineFormat`]. A line that its parser rejects is kept, never dropped: it
//! becomes a record whose body is the raw line, with the attribute `parse_error` saying
//! why.

use regex::Regex;
use sightline_model::{LogRecord, Value};

use crate::error::{Error, Result};
use crate::json_record::{
    parse_object, record_from_object, severity_from_str, timestamp_from_str, typed_text_value,
};
use crate::{access_log, logfmt, syslog};

/// Attribute set on a record whose line could not be parsed.
pub const PARSE_ERROR_ATTR: &str = "parse_error";

/// Attribute names whose text is typed as a number (Int or Float) when it is one, in the
/// access log and regex formats (logfmt types every number).
pub const NUMERIC_FIELDS: &[&str] = &[
    "status",
    "bytes",
    "body_bytes",
    "duration",
    "request_time",
    "response_time",
    "latency",
];

/// How to read each line of a body.
#[derive(Debug, Clone)]
pub enum LineFormat {
    /// A JSON object per line, mapped like NDJSON.
    Json,
    /// `key=value key2="quoted value"` pairs.
    Logfmt,
    /// nginx access log, combined or common form, optional trailing request time.
    Nginx,
    /// Apache access log (combined or common) or Apache error log lines.
    Apache,
    /// RFC 5424 or RFC 3164 syslog, with or without `<PRI>`.
    Syslog,
    /// A user pattern whose named groups become fields and attributes.
    Regex(Regex),
}

impl LineFormat {
    /// The format called `name` (`json`, `logfmt`, `nginx`, `apache`, `syslog`, `regex`;
    /// case-insensitive). `pattern` is required for `regex` and ignored otherwise.
    ///
    /// # Errors
    /// Unknown name, `regex` without a pattern, a pattern that does not compile or has no
    /// named group.
    pub fn from_name(name: &str, pattern: Option<&str>) -> Result<LineFormat> {
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "json" => Self::Json,
            "logfmt" => Self::Logfmt,
            "nginx" => Self::Nginx,
            "apache" => Self::Apache,
            "syslog" => Self::Syslog,
            "regex" => {
                let pattern = pattern.ok_or(Error::MissingPattern)?;
                let re = Regex::new(pattern)
                    .map_err(|e| Error::InvalidPattern(e.to_string().replace('\n', " ")))?;
                if re.capture_names().flatten().next().is_none() {
                    return Err(Error::NoNamedGroups);
                }
                Self::Regex(re)
            }
            _ => return Err(Error::UnknownFormat(name.to_string())),
        })
    }
}

/// Parses a body of log lines: one record per non-empty line (a final line without a
/// newline counts; `\r\n` is handled; whitespace-only lines are skipped).
///
/// Never drops a line: a line that does not parse becomes a record with `body` = the raw
/// line, `timestamp` = `now_ns` and the attribute `parse_error` = the reason.
///
/// `service`, when given, is the service of every record of the syslog, nginx and apache
/// formats (overriding syslog's app name); for json, logfmt and regex it is used only for
/// records whose line names no service itself.
///
/// # Errors
/// Only for invalid UTF-8, naming the line; no partial result.
pub fn parse_lines(
    body: &[u8],
    format: &LineFormat,
    service: Option<&str>,
    now_ns: i64,
) -> Result<Vec<LogRecord>> {
    let mut out = Vec::new();
    for (line_no, raw) in physical_lines(body) {
        let line = line_str(line_no, raw)?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = match format {
            LineFormat::Json => parse_json_line(line, now_ns),
            LineFormat::Logfmt => logfmt::parse_logfmt_line(line, now_ns),
            LineFormat::Nginx => access_log::parse_access_line(line, now_ns),
            LineFormat::Apache => access_log::parse_apache_line(line, now_ns),
            LineFormat::Syslog => syslog::parse_syslog_line(line, now_ns),
            LineFormat::Regex(re) => parse_regex_line(re, line, now_ns),
        };
        let mut rec = parsed.unwrap_or_else(|why| unparsed_record(line, why, now_ns));
        if let Some(s) = service {
            let line_names_service = matches!(
                format,
                LineFormat::Json | LineFormat::Logfmt | LineFormat::Regex(_)
            ) && !rec.service.is_empty();
            if !line_names_service {
                rec.service = s.to_string();
            }
        }
        out.push(rec);
    }
    Ok(out)
}

/// The record kept for a line its parser rejected.
fn unparsed_record(line: &str, why: String, now_ns: i64) -> LogRecord {
    let mut rec = LogRecord {
        timestamp: now_ns,
        observed_timestamp: now_ns,
        body: line.to_string(),
        ..LogRecord::default()
    };
    rec.attributes
        .insert(PARSE_ERROR_ATTR.to_string(), Value::Str(why));
    rec
}

fn parse_json_line(line: &str, now_ns: i64) -> Result<LogRecord, String> {
    if let Some(rec) = crate::json_fast::record_from_line(line, now_ns) {
        return rec.map_err(|e| e.to_string());
    }
    let obj = parse_object(line).map_err(|e| e.to_string())?;
    record_from_object(obj, now_ns).map_err(|e| e.to_string())
}

/// Named groups of `re` to fields: timestamp/time/ts, level/severity, message/msg and
/// service fill the record like NDJSON keys; other groups become attributes (typed as
/// numbers for [`NUMERIC_FIELDS`]). Without a message group the body is the whole line.
fn parse_regex_line(re: &Regex, line: &str, now_ns: i64) -> Result<LogRecord, String> {
    let caps = re
        .captures(line)
        .ok_or_else(|| "line does not match the pattern".to_string())?;
    let mut rec = LogRecord {
        timestamp: now_ns,
        observed_timestamp: now_ns,
        body: line.to_string(),
        ..LogRecord::default()
    };
    for name in re.capture_names().flatten() {
        let Some(m) = caps.name(name) else { continue };
        let text = m.as_str();
        match name {
            "timestamp" | "time" | "ts" => {
                rec.timestamp = timestamp_from_str(text)
                    .or_else(|| access_log::parse_clf_time(text))
                    .ok_or_else(|| {
                        format!("group {name:?}: not a valid RFC 3339, Unix or common log time")
                    })?;
            }
            "level" | "severity" => {
                rec.severity_number = severity_from_str(text);
                rec.severity_text = text.to_string();
            }
            "message" | "msg" => rec.body = text.to_string(),
            "service" => rec.service = text.to_string(),
            _ => {
                let v = match NUMERIC_FIELDS.contains(&name) {
                    true => typed_text_value(text),
                    false => Value::Str(text.to_string()),
                };
                rec.attributes.insert(name.to_string(), v);
            }
        }
    }
    Ok(rec)
}

/// The physical lines of `body` with their 1-based numbers, without the `\n` and a
/// trailing `\r`. A final line without a newline is included; an empty body has no line.
pub fn physical_lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    let empty = body.is_empty();
    body.split(|&b| b == b'\n')
        .filter(move |_| !empty)
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix(b"\r").unwrap_or(l)))
}

/// A line as UTF-8.
///
/// # Errors
/// [`Error::InvalidUtf8`] with the line number and the offset of the first bad byte in it.
pub fn line_str(line: usize, raw: &[u8]) -> Result<&str> {
    std::str::from_utf8(raw).map_err(|e| Error::InvalidUtf8 {
        line,
        byte: e.valid_up_to(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_700_000_000_000_000_000;

    fn parse(body: &str, f: &LineFormat) -> Vec<LogRecord> {
        parse_lines(body.as_bytes(), f, None, NOW).unwrap()
    }

    fn parse_error(r: &LogRecord) -> Option<&str> {
        r.attributes.get(PARSE_ERROR_ATTR).and_then(Value::as_str)
    }

    #[test]
    fn format_names_and_errors() {
        for n in ["json", "logfmt", "nginx", "apache", "syslog", "JSON"] {
            assert!(LineFormat::from_name(n, None).is_ok(), "{n}");
        }
        let e = LineFormat::from_name("xml", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown format \"xml\" (expected one of json, logfmt, nginx, apache, syslog, regex)"
        );
        assert_eq!(
            LineFormat::from_name("regex", None)
                .unwrap_err()
                .to_string(),
            "format regex needs a pattern"
        );
        assert!(LineFormat::from_name("regex", Some("(a"))
            .unwrap_err()
            .to_string()
            .starts_with("invalid pattern: "));
        assert_eq!(
            LineFormat::from_name("regex", Some("(a)b")).unwrap_err(),
            Error::NoNamedGroups
        );
        assert!(matches!(
            LineFormat::from_name("regex", Some("(?P<msg>.*)")),
            Ok(LineFormat::Regex(_))
        ));
    }

    #[test]
    fn line_splitting() {
        let lines: Vec<_> = physical_lines(b"a\r\n\nb\nc").collect();
        assert_eq!(lines, [(1, &b"a"[..]), (2, b""), (3, b"b"), (4, b"c")]);
        assert_eq!(physical_lines(b"").count(), 0);
        assert_eq!(physical_lines(b"x\n").count(), 1);
        assert_eq!(physical_lines(b"\n").count(), 0);
    }

    #[test]
    fn invalid_utf8_names_line() {
        let e = parse_lines(b"ok\nok\n\xc3\x28", &LineFormat::Logfmt, None, NOW).unwrap_err();
        assert_eq!(e.to_string(), "line 3: invalid UTF-8 at byte 0");
    }

    #[test]
    fn json_lines_keep_bad_lines() {
        let v = parse(
            "{\"msg\":\"a\",\"level\":\"info\"}\nnot json\n[1]\n{\"ts\":\"bad\"}\n",
            &LineFormat::Json,
        );
        assert_eq!(v.len(), 4);
        assert_eq!((v[0].body.as_str(), v[0].severity_number), ("a", 9));
        assert_eq!(parse_error(&v[0]), None);
        assert_eq!(v[1].body, "not json");
        assert_eq!(
            parse_error(&v[1]),
            Some("invalid JSON: expected ident at column 2")
        );
        assert_eq!(
            parse_error(&v[2]),
            Some("expected a JSON object, got an array")
        );
        assert_eq!(
            parse_error(&v[3]),
            Some("field \"ts\": not a valid RFC 3339 time or Unix number")
        );
        assert_eq!(v[3].timestamp, NOW);
    }

    #[test]
    fn service_argument() {
        let body = b"{\"msg\":\"a\",\"service\":\"own\"}\n{\"msg\":\"b\"}\nnot json";
        let v = parse_lines(body, &LineFormat::Json, Some("arg"), NOW).unwrap();
        let s: Vec<_> = v.iter().map(|r| r.service.as_str()).collect();
        assert_eq!(s, ["own", "arg", "arg"]);
        let line = b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed";
        let v = parse_lines(line, &LineFormat::Syslog, Some("arg"), NOW).unwrap();
        assert_eq!(v[0].service, "arg");
        let v = parse_lines(line, &LineFormat::Syslog, None, NOW).unwrap();
        assert_eq!(v[0].service, "su");
    }

    #[test]
    fn regex_format() {
        let f = LineFormat::from_name(
            "regex",
            Some(r"^(?P<ts>\S+) \[(?P<level>\w+)\] (?P<service>\w+): (?P<msg>.*?)(?: status=(?P<status>\d+))?(?: user=(?P<user>\w+))?$"),
        )
        .unwrap();
        let v = parse(
            "2024-05-01T12:00:00Z [ERROR] billing: charge failed status=502 user=bob\n\
             2024-05-01T12:00:01Z [info] billing: ok\n\
             garbage\n\
             yesterday [info] billing: ok\n",
            &f,
        );
        assert_eq!(v.len(), 4);
        assert_eq!(v[0].timestamp, 1_714_564_800_000_000_000);
        assert_eq!(
            (v[0].severity_number, v[0].severity_text.as_str()),
            (17, "ERROR")
        );
        assert_eq!(v[0].service, "billing");
        assert_eq!(v[0].body, "charge failed");
        assert_eq!(v[0].attribute("status"), Some(&Value::Int(502)));
        assert_eq!(v[0].attribute("user"), Some(&Value::Str("bob".into())));
        assert_eq!(v[1].attribute("status"), None);
        assert_eq!(parse_error(&v[1]), None);
        assert_eq!(parse_error(&v[2]), Some("line does not match the pattern"));
        assert_eq!(v[2].body, "garbage");
        assert_eq!(
            parse_error(&v[3]),
            Some("group \"ts\": not a valid RFC 3339, Unix or common log time")
        );
    }

    #[test]
    fn regex_without_message_group_keeps_line() {
        let f = LineFormat::from_name("regex", Some(r"took (?P<duration>\S+)ms")).unwrap();
        let v = parse("it took 12.5ms", &f);
        assert_eq!(v[0].body, "it took 12.5ms");
        assert_eq!(v[0].attribute("duration"), Some(&Value::Float(12.5)));
    }

    fn formats() -> Vec<LineFormat> {
        vec![
            LineFormat::Json,
            LineFormat::Logfmt,
            LineFormat::Nginx,
            LineFormat::Apache,
            LineFormat::Syslog,
            LineFormat::from_name("regex", Some(r"(?P<ts>\S+) (?P<level>\S+) (?P<status>\S+)"))
                .unwrap(),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            for f in formats() {
                let _ = parse_lines(&body, &f, Some("s"), NOW);
            }
        }

        #[test]
        fn every_nonblank_line_gives_one_record(lines in proptest::collection::vec("[ -~]{0,60}", 0..8)) {
            let body = lines.join("\n");
            let want = lines.iter().filter(|l| !l.trim().is_empty()).count();
            for f in formats() {
                let v = parse_lines(body.as_bytes(), &f, None, NOW).unwrap();
                prop_assert_eq!(v.len(), want);
            }
        }

        #[test]
        fn loggy_lines_never_panic(line in r#"[<>0-9 \[\]:a-zA-Z"=\-/.+T]{0,80}"#) {
            for f in formats() {
                let _ = parse_lines(line.as_bytes(), &f, None, NOW);
            }
        }
    }
}
