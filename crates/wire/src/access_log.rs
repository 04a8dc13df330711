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
    let s = s.trim();
    if let Some(ns) = clf_time_fast(s.as_bytes()) {
        return Some(ns);
    }
    DateTime::parse_from_str(s, "%d/%b/%Y:%H:%M:%S %z")
        .ok()?
        .timestamp_nanos_opt()
}

/// The exact 26-byte form `DD/Mon/YYYY:HH:MM:SS +HHMM` by hand, ~20x cheaper than
/// chrono's format-string parser; `None` for anything else (other shapes, leap seconds,
/// years outside 1900..=2200), which chrono then decides, so results never differ.
fn clf_time_fast(b: &[u8]) -> Option<i64> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    if b.len() != 26
        || b[2] != b'/'
        || b[6] != b'/'
        || b[11] != b':'
        || b[14] != b':'
        || b[17] != b':'
        || b[20] != b' '
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let day = num(0..2)?;
    let month = MONTHS.iter().position(|m| m[..] == b[3..6])? as i64 + 1;
    let year = num(7..11)?;
    let (hour, min, sec) = (num(12..14)?, num(15..17)?, num(18..20)?);
    let sign = match b[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (off_h, off_m) = (num(22..24)?, num(24..26)?);
    if !(1900..=2200).contains(&year)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 59
        || off_h > 23
        || off_m > 59
    {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec
        - sign * (off_h * 3600 + off_m * 60);
    Some(secs * 1_000_000_000)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The groups of [`ACCESS`] (index 0 unused), found by hand for ASCII lines: the regex
/// with its captures costs several microseconds a line, a third of an nginx line's
/// ingest. The scan takes the regex's first choice at every branch (greedy repeats, the
/// optional groups tried first) and gives up (`None`, the regex decides) wherever that
/// choice fails, so whenever it answers it is the match the regex's leftmost-first
/// semantics pick.
fn access_groups_fast(line: &str) -> Option<[Option<&str>; 10]> {
    /// The ASCII characters of Unicode `White_Space`, which is what `\s` means.
    fn ws(c: u8) -> bool {
        matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ')
    }
    if !line.is_ascii() {
        return None;
    }
    let b = line.as_bytes();
    let mut i = 0;
    let mut g: [Option<&str>; 10] = [None; 10];
    // `\S+`: greedy, at least one.
    let non_ws = |i: &mut usize| -> Option<&str> {
        let start = *i;
        while *i < b.len() && !ws(b[*i]) {
            *i += 1;
        }
        (*i > start).then(|| &line[start..*i])
    };
    let lit = |i: &mut usize, c: u8| -> Option<()> { (b.get(*i) == Some(&c)).then(|| *i += 1) };
    // `"((?:[^"\\]|\\.)*)"`
    let quoted = |i: &mut usize| -> Option<&str> {
        lit(i, b'"')?;
        let start = *i;
        loop {
            match *b.get(*i)? {
                b'"' => break,
                b'\\' => match b.get(*i + 1) {
                    Some(&c) if c != b'\n' => *i += 2,
                    _ => return None,
                },
                _ => *i += 1,
            }
        }
        let s = &line[start..*i];
        *i += 1;
        Some(s)
    };
    g[1] = Some(non_ws(&mut i)?);
    lit(&mut i, b' ')?;
    non_ws(&mut i)?;
    lit(&mut i, b' ')?;
    g[2] = Some(non_ws(&mut i)?);
    lit(&mut i, b' ')?;
    lit(&mut i, b'[')?;
    let start = i;
    while i < b.len() && b[i] != b']' {
        i += 1;
    }
    if i == start {
        return None;
    }
    g[3] = Some(&line[start..i]);
    lit(&mut i, b']')?;
    lit(&mut i, b' ')?;
    g[4] = Some(quoted(&mut i)?);
    lit(&mut i, b' ')?;
    let status = b.get(i..i + 3)?;
    if !status.iter().all(u8::is_ascii_digit) {
        return None;
    }
    g[5] = Some(&line[i..i + 3]);
    i += 3;
    lit(&mut i, b' ')?;
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == start {
        lit(&mut i, b'-')?;
    }
    g[6] = Some(&line[start..i]);
    if b[i..].starts_with(b" \"") {
        i += 1;
        g[7] = Some(quoted(&mut i)?);
        lit(&mut i, b' ')?;
        g[8] = Some(quoted(&mut i)?);
    }
    if b.len() > i + 1 && b[i] == b' ' && !ws(b[i + 1]) {
        i += 1;
        g[9] = non_ws(&mut i);
    }
    g[0] = Some(line);
    b[i..].iter().all(|&c| ws(c)).then_some(g)
}

/// An nginx access log line (combined, common, optional trailing request time).
///
/// # Errors
/// The reason when the line is not in the access log form or its time is invalid.
pub fn parse_access_line(line: &str, now_ns: i64) -> Result<LogRecord, String> {
    let g = match access_groups_fast(line) {
        Some(g) => g,
        None => {
            let c = ACCESS
                .captures(line)
                .ok_or_else(|| "not an access log line (combined or common format)".to_string())?;
            std::array::from_fn(|i| c.get(i).map(|m| m.as_str()))
        }
    };
    let get = |i: usize| g[i].unwrap_or("");
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
    if g[7].is_some() {
        put("referer", get(7));
        put("user_agent", get(8));
    }
    a.insert("status".to_string(), Value::Int(status));
    a.insert("bytes".to_string(), Value::Int(bytes));
    if let Some(m) = g[9] {
        a.insert("request_time".to_string(), typed_text_value(m));
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

    /// The regex's groups, the reference the hand scan must agree with.
    fn regex_groups(line: &str) -> Option<[Option<&str>; 10]> {
        let c = ACCESS.captures(line)?;
        Some(std::array::from_fn(|i| c.get(i).map(|m| m.as_str())))
    }

    #[test]
    fn hand_scan_agrees_with_the_regex() {
        for line in [
            r#"93.180.71.3 - - [17/May/2015:08:05:32 +0000] "GET /downloads/product_1 HTTP/1.1" 304 0 "-" "Debian APT-HTTP/1.3 (0.8.16~exp12ubuntu10.21)""#,
            r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#,
            r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 - 0.5"#,
            r#"10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "POST /a\"b HTTP/2.0" 201 17 "https://x/" "curl/8" 0.042"#,
            r#"10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "a" "b" 0.1   "#,
            r#"10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "a" "b" 0.1 x"#,
            r#"10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "a" x"#,
            r#"10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "a"#,
            r#"10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 2000 1"#,
            r#"10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 12a"#,
            r#"10.0.0.1 - - [] "GET / HTTP/1.1" 200 1"#,
            r#"10.0.0.1  - - [x] "" 200 -"#,
            "10.0.0.1 - - [x] \"a\\\" 200 -",
            "10.0.0.1 - - [x] \"\" 200 1 \"\" \"\"\t",
            "10.0.0.1 - - [x] \"\" 200 1\x0b",
            "10.0.0.1 - - [x] \"\" 200 1 \x0b",
        ] {
            let fast = access_groups_fast(line);
            if fast.is_some() {
                assert_eq!(fast, regex_groups(line), "{line:?}");
            }
        }
        let common = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#;
        assert!(
            access_groups_fast(common).is_some(),
            "the usual form takes the fast path"
        );
    }

    #[test]
    fn hand_clf_time_agrees_with_chrono() {
        let chrono_time = |s: &str| {
            DateTime::parse_from_str(s, "%d/%b/%Y:%H:%M:%S %z")
                .ok()
                .and_then(|t| t.timestamp_nanos_opt())
        };
        for s in [
            "10/Oct/2000:13:55:36 -0700",
            "29/Feb/2024:23:59:59 +1430",
            "29/Feb/2023:00:00:00 +0000",
            "31/Dec/1999:23:59:59 -0000",
            "01/Mar/2100:00:00:00 +0100",
            "00/Jan/2020:00:00:00 +0000",
            "31/Apr/2020:00:00:00 +0000",
            "01/Jan/2020:24:00:00 +0000",
            "01/Jan/2020:00:00:60 +0000",
            "01/jan/2020:00:00:00 +0000",
            "1/Jan/2020:00:00:00 +0000",
        ] {
            if let Some(ns) = clf_time_fast(s.as_bytes()) {
                assert_eq!(Some(ns), chrono_time(s), "{s}");
            }
            assert_eq!(parse_clf_time(s), chrono_time(s), "{s}");
        }
        assert!(clf_time_fast(b"10/Oct/2000:13:55:36 -0700").is_some());
    }

    proptest::proptest! {
        #[test]
        fn hand_clf_time_agrees_on_random_times(
            d in 0u32..33, m in 0usize..13, y in 1890u32..2210, h in 0u32..25, mi in 0u32..61,
            s in 0u32..61, sign in proptest::bool::ANY, oh in 0u32..25, om in 0u32..61,
        ) {
            const M: [&str; 13] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
                "Oct", "Nov", "Dec", "Foo"];
            let t = format!("{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02} {}{oh:02}{om:02}", M[m],
                if sign { '+' } else { '-' });
            let want = DateTime::parse_from_str(&t, "%d/%b/%Y:%H:%M:%S %z")
                .ok()
                .and_then(|t| t.timestamp_nanos_opt());
            if let Some(ns) = clf_time_fast(t.as_bytes()) {
                proptest::prop_assert_eq!(Some(ns), want, "{}", t);
            }
            proptest::prop_assert_eq!(parse_clf_time(&t), want, "{}", t);
        }

        #[test]
        fn hand_scan_agrees_on_loggy_lines(
            line in r#"[0-9a-z]{1,3}( |  |\t)[-a]( [-a-z]{1,2})? \[[0-9a-z ]{0,3}\]? "([a-z/ ]|\\[a"])*"? [0-9]{2,4} ([0-9]{0,3}|-)( "[a-z]{0,2}"( "[a-z\\]{0,2}")?)?( [0-9.a-z]{0,3})?[ \t]{0,2}"#,
        ) {
            if let Some(fast) = access_groups_fast(&line) {
                proptest::prop_assert_eq!(Some(fast), regex_groups(&line), "{:?}", line);
            }
        }
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
