//! NDJSON log ingestion: one JSON object per line, mapped by `json_record`.

use sightline_model::LogRecord;

use crate::error::{Error, Result};
use crate::json_fast::record_from_line;
use crate::json_record::{parse_object, record_from_object, JsonLineError};
use crate::lines::{line_str, physical_lines};

/// Decodes an NDJSON body: one JSON object per line, blank lines ignored, `\r\n` accepted.
/// Field mapping: see [`crate::json_record::record_from_object`].
///
/// # Errors
/// The first bad line, by 1-based physical line number: invalid UTF-8, invalid JSON, a
/// value that is not an object, an unusable timestamp or trace/span id. No partial result.
pub fn decode_ndjson(body: &[u8], now_ns: i64) -> Result<Vec<LogRecord>> {
    let mut out = Vec::with_capacity(max_lines(body));
    for (line, raw) in physical_lines(body) {
        let text = line_str(line, raw)?;
        if text.trim().is_empty() {
            continue;
        }
        if let Some(rec) = record_from_line(text, now_ns) {
            out.push(rec.map_err(|e| Error::InvalidField {
                line,
                field: e.field,
                reason: e.reason,
            })?);
            continue;
        }
        // Not a plain JSON object: the slow path gives the documented error (or decides).
        let obj = parse_object(text).map_err(|e| match e {
            JsonLineError::Syntax(reason) => Error::InvalidJson { line, reason },
            other => Error::InvalidLine {
                line,
                reason: other.to_string(),
            },
        })?;
        let rec = record_from_object(obj, now_ns).map_err(|e| Error::InvalidField {
            line,
            field: e.field,
            reason: e.reason,
        })?;
        out.push(rec);
    }
    Ok(out)
}

/// Newlines in `body` plus one: the records it can hold at most, to size the output once.
fn max_lines(body: &[u8]) -> usize {
    body.iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sightline_model::{SpanId, TraceId, Value};

    const NOW: i64 = 1_700_000_000_000_000_000;

    fn one(line: &str) -> LogRecord {
        let mut v = decode_ndjson(line.as_bytes(), NOW).unwrap();
        assert_eq!(v.len(), 1);
        v.pop().unwrap()
    }

    fn err(body: &str) -> String {
        decode_ndjson(body.as_bytes(), NOW).unwrap_err().to_string()
    }

    #[test]
    fn full_record() {
        let r = one(
            r#"{"ts":"2024-05-01T12:00:00.5Z","level":"WARNING","msg":"disk full","service":"api","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","http":{"status":500,"path":"/x"},"tags":["a",1],"ok":true,"none":null,"ratio":0.5}"#,
        );
        assert_eq!(r.timestamp, 1_714_564_800_500_000_000);
        assert_eq!(r.observed_timestamp, NOW);
        assert_eq!(r.severity_text, "WARNING");
        assert_eq!(r.severity_number, 13);
        assert_eq!(r.body, "disk full");
        assert_eq!(r.service, "api");
        assert_eq!(
            r.trace_id,
            Some(TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap())
        );
        assert_eq!(
            r.span_id,
            Some(SpanId::from_hex("00f067aa0ba902b7").unwrap())
        );
        assert_eq!(r.attribute("http.status"), Some(&Value::Int(500)));
        assert_eq!(r.attribute("http.path"), Some(&Value::Str("/x".into())));
        assert_eq!(r.attribute("tags"), Some(&Value::Str(r#"["a",1]"#.into())));
        assert_eq!(r.attribute("ok"), Some(&Value::Bool(true)));
        assert_eq!(r.attribute("ratio"), Some(&Value::Float(0.5)));
        assert_eq!(r.attribute("none"), None);
        assert_eq!(r.attributes.len(), 5);
        assert!(r.resource.is_empty());
    }

    #[test]
    fn timestamp_aliases_and_units() {
        let s = 1_700_000_123i64;
        let ns = s * 1_000_000_000;
        for key in ["timestamp", "time", "ts", "@timestamp"] {
            assert_eq!(one(&format!(r#"{{"{key}":{s}}}"#)).timestamp, ns, "{key}");
        }
        assert_eq!(one(&format!(r#"{{"ts":{}}}"#, s * 1000)).timestamp, ns);
        assert_eq!(one(&format!(r#"{{"ts":{}}}"#, s * 1_000_000)).timestamp, ns);
        assert_eq!(one(&format!(r#"{{"ts":{ns}}}"#)).timestamp, ns);
        assert_eq!(one(&format!(r#"{{"ts":"{s}"}}"#)).timestamp, ns);
        assert_eq!(
            one(&format!(r#"{{"ts":{s}.25}}"#)).timestamp,
            ns + 250_000_000
        );
        assert_eq!(
            one(&format!(r#"{{"ts":"{s}.25"}}"#)).timestamp,
            ns + 250_000_000
        );
        assert_eq!(
            one(r#"{"ts":"2024-05-01T14:00:00+02:00"}"#).timestamp,
            1_714_564_800_000_000_000
        );
        assert_eq!(one(r#"{"msg":"x"}"#).timestamp, NOW);
    }

    #[test]
    fn level_aliases() {
        for key in ["level", "severity", "lvl", "loglevel"] {
            let r = one(&format!(r#"{{"{key}":"err"}}"#));
            assert_eq!(
                (r.severity_number, r.severity_text.as_str()),
                (17, "err"),
                "{key}"
            );
        }
        for (n, want) in [
            (10, 1),
            (20, 5),
            (30, 9),
            (40, 13),
            (50, 17),
            (60, 21),
            (3, 3),
            (24, 24),
        ] {
            assert_eq!(
                one(&format!(r#"{{"level":{n}}}"#)).severity_number,
                want,
                "{n}"
            );
        }
        let r = one(r#"{"level":"chatty"}"#);
        assert_eq!((r.severity_number, r.severity_text.as_str()), (0, "chatty"));
    }

    #[test]
    fn message_service_and_id_aliases() {
        for key in ["message", "msg", "body"] {
            assert_eq!(one(&format!(r#"{{"{key}":"hi"}}"#)).body, "hi", "{key}");
        }
        assert_eq!(one(r#"{"msg":{"a":1}}"#).body, r#"{"a":1}"#);
        assert_eq!(one(r#"{"msg":42}"#).body, "42");
        for key in ["service", "service.name", "service_name"] {
            assert_eq!(
                one(&format!(r#"{{"{key}":"svc"}}"#)).service,
                "svc",
                "{key}"
            );
        }
        let t = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        for key in ["trace_id", "traceId", "trace.id"] {
            let r = one(&format!(
                r#"{{"{key}":"4bf92f3577b34da6a3ce929d0e0e4736"}}"#
            ));
            assert_eq!(r.trace_id, Some(t), "{key}");
        }
        for key in ["span_id", "spanId"] {
            let r = one(&format!(r#"{{"{key}":"00f067aa0ba902b7"}}"#));
            assert!(r.span_id.is_some(), "{key}");
        }
        let r =
            one(r#"{"trace_id":"00000000000000000000000000000000","span_id":"0000000000000000"}"#);
        assert_eq!((r.trace_id, r.span_id), (None, None));
    }

    #[test]
    fn blank_lines_crlf_and_no_final_newline() {
        let v = decode_ndjson(b"{\"msg\":\"a\"}\r\n\r\n  \n{\"msg\":\"b\"}", NOW).unwrap();
        let bodies: Vec<_> = v.iter().map(|r| r.body.as_str()).collect();
        assert_eq!(bodies, ["a", "b"]);
        assert!(decode_ndjson(b"", NOW).unwrap().is_empty());
    }

    #[test]
    fn error_messages_name_the_line() {
        assert_eq!(
            err("{}\n\n{\"a\": }"),
            "line 3: invalid JSON: expected value at column 7"
        );
        assert_eq!(
            err("{}\n[1]"),
            "line 2: expected a JSON object, got an array"
        );
        assert_eq!(
            err("{}\n{\"timestamp\":\"yesterday\"}"),
            "line 2: field \"timestamp\": not a valid RFC 3339 time or Unix number"
        );
        assert_eq!(
            err("{\"ts\":-5}"),
            "line 1: field \"ts\": not a valid RFC 3339 time or Unix number"
        );
        assert_eq!(
            err("{}\n{}\n{\"traceId\":\"abc\"}"),
            "line 3: field \"traceId\": invalid trace id: expected 32 hex characters, got 3"
        );
        assert!(err("{\"span_id\":\"zz0067aa0ba902b7\"}")
            .starts_with("line 1: field \"span_id\": invalid span id"));
        assert_eq!(
            err("{\"span_id\":5}"),
            "line 1: field \"span_id\": expected a hex string, got a number"
        );
        assert_eq!(err("{}\n{}\n{}\n{}\n{\"a\":\"x\u{0}\"}\n"), "line 5: invalid JSON: control character (\\u0000-\\u001F) found while parsing a string at column 8");
        let mut body = b"{}\n{}\n{}\n{}\n{\"message\":\"".to_vec();
        body.push(0xff);
        body.extend_from_slice(b"\"}");
        assert_eq!(
            decode_ndjson(&body, NOW).unwrap_err().to_string(),
            "line 5: invalid UTF-8 at byte 12"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_ndjson(&body, NOW);
        }

        #[test]
        fn json_shaped_garbage_never_panics(body in r#"[{}\[\]":,0-9a-z.\-\n \\e]{0,120}"#) {
            let _ = decode_ndjson(body.as_bytes(), NOW);
        }

        #[test]
        fn encode_decode_round_trip(
            body in "\\PC{0,40}",
            service in "[a-z]{0,10}",
            ts in 100_000_000_000_000_000i64..9_000_000_000_000_000_000,
            level in 1u8..=24,
            attrs in proptest::collection::btree_map("[a-z]{1,8}", any::<i64>(), 0..5),
        ) {
            let mut obj = serde_json::Map::new();
            obj.insert("ts".into(), ts.to_string().parse::<serde_json::Value>().unwrap());
            obj.insert("msg".into(), body.clone().into());
            obj.insert("level".into(), level.into());
            for (k, v) in &attrs {
                obj.insert(format!("a_{k}"), (*v).into());
            }
            if !service.is_empty() {
                obj.insert("service".into(), service.clone().into());
            }
            let line = serde_json::Value::Object(obj).to_string();
            let r = decode_ndjson(line.as_bytes(), NOW).unwrap().pop().unwrap();
            prop_assert_eq!(r.timestamp, ts);
            prop_assert_eq!(&r.body, &body);
            prop_assert_eq!(&r.service, &service);
            let want_level = if level % 10 == 0 && level <= 60 { crate::json_record::severity_from_int(level.into()) } else { level };
            prop_assert_eq!(r.severity_number, want_level);
            prop_assert_eq!(r.attributes.len(), attrs.len());
            for (k, v) in &attrs {
                prop_assert_eq!(r.attribute(&format!("a_{k}")), Some(&Value::Int(*v)));
            }
        }
    }
}
