//! The logfmt line format: `key=value key2="quoted \" value" flag`.
//!
//! Hand-written rather than a crate: the grammar is a dozen lines, the workspace has no
//! logfmt dependency, and we need exact control over errors (position-naming, no panics).

use sightline_model::{LogRecord, Value};

use crate::json_record::{severity_from_str, timestamp_from_str, typed_text_value};

/// One parsed pair; a bare key has no value.
#[derive(Debug, PartialEq)]
pub struct Pair {
    pub key: String,
    pub value: Option<String>,
}

/// Splits a logfmt line into pairs.
///
/// Keys are runs of characters other than space, `=` and `"`. Values are bare (up to the
/// next space) or double-quoted with `\"`, `\\`, `\n`, `\t`, `\r` escapes (another escaped
/// character is kept as is).
///
/// # Errors
/// A reason naming the 1-based column: an unterminated quote, or a `=`/`"` where a key
/// should start.
pub fn split_pairs(line: &str) -> Result<Vec<Pair>, String> {
    let mut pairs = Vec::new();
    let mut chars = line.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, c)) = chars.peek() else {
            break;
        };
        if c == '=' || c == '"' {
            return Err(format!(
                "expected a key at column {}, got '{c}'",
                col(line, start)
            ));
        }
        let mut key = String::new();
        while let Some((_, c)) =
            chars.next_if(|(_, c)| !c.is_whitespace() && *c != '=' && *c != '"')
        {
            key.push(c);
        }
        if chars.next_if(|(_, c)| *c == '=').is_none() {
            pairs.push(Pair { key, value: None });
            continue;
        }
        let mut value = String::new();
        if let Some((qpos, _)) = chars.next_if(|(_, c)| *c == '"') {
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, 't')) => value.push('\t'),
                        Some((_, 'r')) => value.push('\r'),
                        Some((_, e)) => value.push(e),
                        None => break,
                    },
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(format!(
                    "unterminated quoted value for key {key:?} starting at column {}",
                    col(line, qpos)
                ));
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                value.push(c);
            }
        }
        pairs.push(Pair {
            key,
            value: Some(value),
        });
    }
    Ok(pairs)
}

/// 1-based column (in characters) of byte offset `at`.
fn col(line: &str, at: usize) -> usize {
    line[..at].chars().count() + 1
}

/// A logfmt line to a record: msg/message → body (else the whole line), level/lvl/severity
/// → severity, ts/time/timestamp → timestamp (RFC 3339 or Unix number), service → service;
/// other keys are attributes (numbers typed Int/Float, `true`/`false` and bare keys Bool).
///
/// # Errors
/// The reason for a line that is not logfmt: no `key=value` pair at all, a syntax error,
/// or an unusable time.
pub fn parse_logfmt_line(line: &str, now_ns: i64) -> Result<LogRecord, String> {
    let pairs = split_pairs(line)?;
    if !pairs.iter().any(|p| p.value.is_some()) {
        return Err("no key=value pair".to_string());
    }
    let mut rec = LogRecord {
        timestamp: now_ns,
        observed_timestamp: now_ns,
        ..LogRecord::default()
    };
    let mut body = None;
    for Pair { key, value } in pairs {
        let Some(value) = value else {
            rec.attributes.insert(key, Value::Bool(true));
            continue;
        };
        match key.as_str() {
            "msg" | "message" => body = Some(value),
            "level" | "lvl" | "severity" => {
                rec.severity_number = severity_from_str(&value);
                rec.severity_text = value;
            }
            "ts" | "time" | "timestamp" => {
                rec.timestamp = timestamp_from_str(&value).ok_or_else(|| {
                    format!("key {key:?}: not a valid RFC 3339 time or Unix number")
                })?;
            }
            "service" => rec.service = value,
            _ => {
                let v = match value.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    s => typed_text_value(s),
                };
                rec.attributes.insert(key, v);
            }
        }
    }
    rec.body = body.unwrap_or_else(|| line.to_string());
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn full_line() {
        let r = parse_logfmt_line(
            r#"ts=2024-05-01T12:00:00Z level=warn msg="disk \"sda\" full" service=api status=500 took=1.5 user=bob cached retry=false"#,
            1,
        )
        .unwrap();
        assert_eq!(r.timestamp, 1_714_564_800_000_000_000);
        assert_eq!((r.severity_number, r.severity_text.as_str()), (13, "warn"));
        assert_eq!(r.body, "disk \"sda\" full");
        assert_eq!(r.service, "api");
        assert_eq!(r.attributes.get("status"), Some(&Value::Int(500)));
        assert_eq!(r.attributes.get("took"), Some(&Value::Float(1.5)));
        assert_eq!(r.attributes.get("user"), Some(&Value::Str("bob".into())));
        assert_eq!(r.attributes.get("cached"), Some(&Value::Bool(true)));
        assert_eq!(r.attributes.get("retry"), Some(&Value::Bool(false)));
        assert_eq!(r.attributes.len(), 5);
    }

    #[test]
    fn aliases() {
        for k in ["msg", "message"] {
            assert_eq!(parse_logfmt_line(&format!("{k}=hi"), 1).unwrap().body, "hi");
        }
        for k in ["level", "lvl", "severity"] {
            assert_eq!(
                parse_logfmt_line(&format!("{k}=ERROR"), 1)
                    .unwrap()
                    .severity_number,
                17
            );
        }
        for k in ["ts", "time", "timestamp"] {
            assert_eq!(
                parse_logfmt_line(&format!("{k}=1700000000"), 1)
                    .unwrap()
                    .timestamp,
                1_700_000_000_000_000_000
            );
        }
        let r = parse_logfmt_line("a=1 b=", 5).unwrap();
        assert_eq!(r.body, "a=1 b=");
        assert_eq!(r.timestamp, 5);
        assert_eq!(r.attributes.get("b"), Some(&Value::Str(String::new())));
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_logfmt_line("just some words", 1).unwrap_err(),
            "no key=value pair"
        );
        assert_eq!(
            parse_logfmt_line(r#"a=1 msg="open"#, 1).unwrap_err(),
            "unterminated quoted value for key \"msg\" starting at column 9"
        );
        assert_eq!(
            parse_logfmt_line("a=1 =x", 1).unwrap_err(),
            "expected a key at column 5, got '='"
        );
        assert_eq!(
            parse_logfmt_line("ts=soon a=1", 1).unwrap_err(),
            "key \"ts\": not a valid RFC 3339 time or Unix number"
        );
    }

    #[test]
    fn escapes() {
        let p = split_pairs(r#"k="a\\b\nc\t\q""#).unwrap();
        assert_eq!(
            p,
            [Pair {
                key: "k".into(),
                value: Some("a\\b\nc\tq".into())
            }]
        );
        assert_eq!(
            split_pairs(r#"k="x\"#).unwrap_err(),
            "unterminated quoted value for key \"k\" starting at column 3"
        );
    }

    proptest! {
        #[test]
        fn quoted_values_round_trip(
            pairs in proptest::collection::btree_map("[a-z_]{1,8}", "\\PC{0,20}", 1..6)
        ) {
            let line: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            let got = split_pairs(&line.join(" ")).unwrap();
            let want: Vec<Pair> = pairs
                .into_iter()
                .map(|(key, v)| Pair { key, value: Some(v) })
                .collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn garbage_never_panics(line in "[a-z=\"\\\\ ]{0,40}") {
            let _ = parse_logfmt_line(&line, 0);
        }
    }
}
