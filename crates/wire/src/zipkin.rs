//! Zipkin v2 JSON (`POST /api/v2/spans`, `zipkin2-api.yaml`'s `ListOfSpans`) to spans.
//!
//! Mapping: `traceId` (16 or 32 hex characters; 16 is left-padded with zeros), `id`,
//! `parentId` (absent, empty or all zero = root), `name` as sent, `kind` CLIENT/SERVER/
//! PRODUCER/CONSUMER (absent = a local span = `Internal`), `timestamp`/`duration` in
//! microseconds (→ ns; `timestamp` required and positive, `duration` absent = 0),
//! `localEndpoint.serviceName` → `service` (as sent), `remoteEndpoint` → attributes
//! `peer.service`, `net.peer.ip` (ipv4, else ipv6), `net.peer.port`, `tags` → attributes
//! (numbers and booleans as their text), tag `error` → status `Error` with the tag's value as
//! message (the tag is kept), else tag `otel.status_code` (`OK`/`ERROR`) and
//! `otel.status_description`; tags `otel.scope.name`/`otel.scope.version` (or the older
//! `otel.library.*`) also fill the scope; `annotations` → events (time µs → ns, name = value),
//! `debug`/`shared` → attributes `zipkin.debug`/`zipkin.shared` only when true.
//!
//! Hand-written over `serde_json::Value` rather than derived: a derived reader's errors
//! name neither the span nor the field, and Zipkin's loose typing (tags as numbers) is
//! easier to accept explicitly. A bad span rejects the whole batch with
//! [`Error::InvalidLine`]: the line where the span starts, its 1-based index and the field.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Value as Json};
use sightline_model::{Attributes, Span, SpanEvent, SpanId, SpanKind, StatusCode, TraceId, Value};

use crate::error::{Error, Result};

/// Decodes a Zipkin v2 JSON array of spans. `now_ns` is unused: a span without a timestamp
/// is rejected rather than dated now.
///
/// # Errors
/// [`Error::InvalidJson`] when the body is not JSON; [`Error::InvalidLine`] when it is not an
/// array, or a span breaks a rule listed in the module documentation (line, span index and
/// field named).
pub fn decode_zipkin_json(body: &[u8], now_ns: i64) -> Result<Vec<Span>> {
    let _ = now_ns;
    let doc: Json = serde_json::from_slice(body).map_err(|e| Error::InvalidJson {
        line: e.line(),
        reason: e.to_string(),
    })?;
    let Json::Array(items) = doc else {
        return Err(Error::InvalidLine {
            line: 1,
            reason: format!("expected a JSON array of spans, got {}", json_kind(&doc)),
        });
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let span = span(item).map_err(|reason| Error::InvalidLine {
            line: element_lines(body).get(i).copied().unwrap_or(1),
            reason: format!("span {}: {reason}", i + 1),
        })?;
        out.push(span);
    }
    Ok(out)
}

/// One span; `Err` is "field: reason".
fn span(item: Json) -> Result<Span, String> {
    let Json::Object(mut o) = item else {
        return Err(format!("expected an object, got {}", json_kind(&item)));
    };
    let trace_id = trace_id(&o)?;
    let span_id = match opt_str(&o, "id")? {
        None => return Err("id: missing".into()),
        Some(s) => match SpanId::from_hex(s) {
            Ok(id) if id == SpanId::default() => return Err("id: all zero".into()),
            Ok(id) => id,
            Err(e) => return Err(format!("id: {e}")),
        },
    };
    let parent_span_id = match opt_str(&o, "parentId")? {
        None | Some("") => None,
        Some(s) => {
            let id = SpanId::from_hex(s).map_err(|e| format!("parentId: {e}"))?;
            (id != SpanId::default()).then_some(id)
        }
    };
    let kind = match opt_str(&o, "kind")? {
        None => SpanKind::Internal,
        Some(k) => match k {
            "CLIENT" => SpanKind::Client,
            "SERVER" => SpanKind::Server,
            "PRODUCER" => SpanKind::Producer,
            "CONSUMER" => SpanKind::Consumer,
            other => {
                return Err(format!(
                    "kind: {other:?} is not one of CLIENT, SERVER, PRODUCER, CONSUMER"
                ))
            }
        },
    };
    let start = match micros(&o, "timestamp")? {
        None | Some(0) => return Err("timestamp: missing".into()),
        Some(t) => t,
    };
    let duration = micros(&o, "duration")?.unwrap_or(0);
    let end = start
        .checked_add(duration)
        .ok_or("duration: the span ends past the year 2262")?;
    let name = opt_str(&o, "name")?.unwrap_or("").to_string();
    let service = match o.get("localEndpoint") {
        None | Some(Json::Null) => String::new(),
        Some(Json::Object(ep)) => opt_str(ep, "serviceName")
            .map_err(|e| format!("localEndpoint.{e}"))?
            .unwrap_or("")
            .to_string(),
        Some(other) => {
            return Err(format!(
                "localEndpoint: expected an object, got {}",
                json_kind(other)
            ))
        }
    };

    let mut attributes = Attributes::new();
    match o.remove("remoteEndpoint") {
        None | Some(Json::Null) => {}
        Some(Json::Object(ep)) => {
            remote_endpoint(&ep, &mut attributes).map_err(|e| format!("remoteEndpoint.{e}"))?
        }
        Some(other) => {
            return Err(format!(
                "remoteEndpoint: expected an object, got {}",
                json_kind(&other)
            ))
        }
    }
    match o.remove("tags") {
        None | Some(Json::Null) => {}
        Some(Json::Object(tags)) => {
            for (k, v) in tags {
                let text = match v {
                    Json::String(s) => s,
                    Json::Number(n) => n.to_string(),
                    Json::Bool(b) => b.to_string(),
                    other => {
                        return Err(format!(
                            "tags.{k}: expected a string, got {}",
                            json_kind(&other)
                        ))
                    }
                };
                attributes.insert(k, Value::Str(text));
            }
        }
        Some(other) => {
            return Err(format!(
                "tags: expected an object, got {}",
                json_kind(&other)
            ))
        }
    }
    for key in ["debug", "shared"] {
        match o.get(key) {
            None | Some(Json::Null) | Some(Json::Bool(false)) => {}
            Some(Json::Bool(true)) => attributes.insert(format!("zipkin.{key}"), Value::Bool(true)),
            Some(other) => {
                return Err(format!(
                    "{key}: expected a boolean, got {}",
                    json_kind(other)
                ))
            }
        }
    }
    let tag = |k: &str| attributes.get(k).and_then(Value::as_str);
    let (status_code, status_message) = if let Some(msg) = tag("error") {
        (StatusCode::Error, msg.to_string())
    } else {
        let code = tag("otel.status_code")
            .and_then(StatusCode::parse)
            .unwrap_or_default();
        let msg = match code {
            StatusCode::Error => tag("otel.status_description").unwrap_or("").to_string(),
            _ => String::new(),
        };
        (code, msg)
    };
    let scope_tag = |a: &str, b: &str| tag(a).or_else(|| tag(b)).unwrap_or("").to_string();
    let scope_name = scope_tag("otel.scope.name", "otel.library.name");
    let scope_version = scope_tag("otel.scope.version", "otel.library.version");

    let events = match o.get("annotations") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(ai, a)| annotation(a).map_err(|e| format!("annotations[{ai}].{e}")))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(format!(
                "annotations: expected an array, got {}",
                json_kind(other)
            ))
        }
    };

    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: String::new(),
        name,
        kind,
        start,
        end,
        status_code,
        status_message,
        service,
        resource: Attributes::new(),
        scope_name,
        scope_version,
        attributes,
        events,
        links: Vec::new(),
    })
}

fn trace_id(o: &Map<String, Json>) -> Result<TraceId, String> {
    let s = opt_str(o, "traceId")?.ok_or("traceId: missing")?;
    let padded;
    let full = match s.len() {
        16 => {
            padded = format!("0000000000000000{s}");
            padded.as_str()
        }
        32 => s,
        n => {
            return Err(format!(
                "traceId: expected 16 or 32 hex characters, got {n}"
            ))
        }
    };
    match TraceId::from_hex(full) {
        Ok(id) if id == TraceId::default() => Err("traceId: all zero".into()),
        Ok(id) => Ok(id),
        Err(e) => Err(format!("traceId: {e}")),
    }
}

fn remote_endpoint(ep: &Map<String, Json>, attrs: &mut Attributes) -> Result<(), String> {
    if let Some(s) = opt_str(ep, "serviceName")?.filter(|s| !s.is_empty()) {
        attrs.insert("peer.service".into(), Value::Str(s.to_string()));
    }
    let v4 = opt_str(ep, "ipv4")?.filter(|s| !s.is_empty());
    if let Some(ip) = v4 {
        ip.parse::<Ipv4Addr>()
            .map_err(|_| format!("ipv4: {ip:?} is not an IPv4 address"))?;
    }
    let v6 = opt_str(ep, "ipv6")?.filter(|s| !s.is_empty());
    if let Some(ip) = v6 {
        ip.parse::<Ipv6Addr>()
            .map_err(|_| format!("ipv6: {ip:?} is not an IPv6 address"))?;
    }
    if let Some(ip) = v4.or(v6) {
        attrs.insert("net.peer.ip".into(), Value::Str(ip.to_string()));
    }
    match ep.get("port") {
        None | Some(Json::Null) => {}
        Some(p) => match p.as_u64().filter(|p| *p <= u64::from(u16::MAX)) {
            // Zipkin: "0 or absent if unknown".
            Some(0) => {}
            Some(port) => attrs.insert("net.peer.port".into(), Value::Int(port as i64)),
            None => return Err(format!("port: {p} is not a port number")),
        },
    }
    Ok(())
}

fn annotation(a: &Json) -> Result<SpanEvent, String> {
    let Json::Object(o) = a else {
        return Err(format!("expected an object, got {}", json_kind(a)));
    };
    let time = micros(o, "timestamp")?.ok_or("timestamp: missing")?;
    Ok(SpanEvent {
        time,
        name: opt_str(o, "value")?.unwrap_or("").to_string(),
        attributes: Attributes::new(),
    })
}

/// A string field; absent or null is `None`.
fn opt_str<'a>(o: &'a Map<String, Json>, key: &str) -> Result<Option<&'a str>, String> {
    match o.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!(
            "{key}: expected a string, got {}",
            json_kind(other)
        )),
    }
}

/// A non-negative integer of microseconds as nanoseconds; absent or null is `None`.
fn micros(o: &Map<String, Json>, key: &str) -> Result<Option<i64>, String> {
    let v = match o.get(key) {
        None | Some(Json::Null) => return Ok(None),
        Some(v) => v,
    };
    let Json::Number(n) = v else {
        return Err(format!(
            "{key}: expected an integer of microseconds, got {}",
            json_kind(v)
        ));
    };
    match (n.as_i64(), n.as_u64()) {
        (Some(us), _) if us < 0 => Err(format!("{key}: {us} is negative")),
        (Some(us), _) => us
            .checked_mul(1_000)
            .map(Some)
            .ok_or_else(|| format!("{key}: {us} µs is past the year 2262")),
        (None, Some(us)) => Err(format!("{key}: {us} µs is past the year 2262")),
        _ => Err(format!("{key}: {n} is not an integer")),
    }
}

fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// The 1-based line on which each element of the top-level JSON array starts. Only called
/// for an error message, on a body serde_json has already accepted as an array.
fn element_lines(body: &[u8]) -> Vec<usize> {
    let mut lines = Vec::new();
    let (mut line, mut depth) = (1usize, 0usize);
    let (mut in_str, mut escaped, mut expect_value) = (false, false, false);
    for &b in body {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            if b == b'\n' {
                line += 1;
            }
            continue;
        }
        if depth == 1 && expect_value && !b.is_ascii_whitespace() && b != b']' {
            lines.push(line);
            expect_value = false;
        }
        match b {
            b'\n' => line += 1,
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth == 1 {
                    expect_value = true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => expect_value = true,
            _ => {}
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_700_000_000_000_000_000;

    /// The example of zipkin2-api.yaml / the Zipkin quickstart, with annotations, a remote
    /// endpoint and an error tag.
    const EXAMPLE: &str = r#"[{
      "id": "352bff9a74ca9ad2",
      "traceId": "5af7183fb1d4cf5f",
      "parentId": "6b221d5bc9e6496c",
      "name": "get /api",
      "timestamp": 1556604172355737,
      "duration": 1431,
      "kind": "SERVER",
      "localEndpoint": {"serviceName": "backend", "ipv4": "192.168.99.1", "port": 3306},
      "remoteEndpoint": {"serviceName": "frontend", "ipv6": "::1", "port": 58648},
      "annotations": [{"timestamp": 1556604172355800, "value": "wr"}],
      "tags": {"http.method": "GET", "http.path": "/api", "error": "timeout", "n": 5},
      "debug": true,
      "shared": false
    },
    {"id": "6b221d5bc9e6496c", "traceId": "463ac35c9f6413ad48485a3953bb6124", "timestamp": 1556604172355000}]"#;

    #[test]
    fn example_mapping() {
        let v = decode_zipkin_json(EXAMPLE.as_bytes(), NOW).unwrap();
        assert_eq!(v.len(), 2);
        let s = &v[0];
        assert_eq!(s.trace_id.to_hex(), "00000000000000005af7183fb1d4cf5f");
        assert_eq!(s.span_id.to_hex(), "352bff9a74ca9ad2");
        assert_eq!(s.parent_span_id.unwrap().to_hex(), "6b221d5bc9e6496c");
        assert_eq!(s.name, "get /api");
        assert_eq!(s.kind, SpanKind::Server);
        assert_eq!(s.start, 1_556_604_172_355_737_000);
        assert_eq!(s.duration(), 1_431_000);
        assert_eq!(s.service, "backend");
        let a = |k: &str| s.attributes.get(k).cloned();
        assert_eq!(a("peer.service"), Some(Value::Str("frontend".into())));
        assert_eq!(a("net.peer.ip"), Some(Value::Str("::1".into())));
        assert_eq!(a("net.peer.port"), Some(Value::Int(58648)));
        assert_eq!(a("http.method"), Some(Value::Str("GET".into())));
        assert_eq!(a("n"), Some(Value::Str("5".into())));
        assert_eq!(
            a("error"),
            Some(Value::Str("timeout".into())),
            "the tag is kept"
        );
        assert_eq!(a("zipkin.debug"), Some(Value::Bool(true)));
        assert_eq!(a("zipkin.shared"), None, "only when true");
        assert_eq!(s.attributes.len(), 8);
        assert_eq!(
            (s.status_code, s.status_message.as_str()),
            (StatusCode::Error, "timeout")
        );
        assert_eq!(s.events.len(), 1);
        assert_eq!(
            (s.events[0].time, s.events[0].name.as_str()),
            (1_556_604_172_355_800_000, "wr")
        );
        assert!(s.resource.is_empty());

        let s = &v[1];
        assert_eq!(s.trace_id.to_hex(), "463ac35c9f6413ad48485a3953bb6124");
        assert_eq!(s.parent_span_id, None);
        assert_eq!(s.kind, SpanKind::Internal, "no kind = a local span");
        assert_eq!(s.duration(), 0, "no duration = 0");
        assert_eq!((s.service.as_str(), s.name.as_str()), ("", ""));
        assert_eq!(s.status_code, StatusCode::Unset);
    }

    #[test]
    fn otel_exporter_tags() {
        let body = r#"[{"id":"0000000000000001","traceId":"00000000000000000000000000000001","timestamp":5,
          "kind":"CLIENT","parentId":"0000000000000000","remoteEndpoint":{"ipv4":"10.0.0.1","ipv6":"::1","port":0},
          "tags":{"otel.status_code":"ERROR","otel.status_description":"bad","otel.scope.name":"lib","otel.library.version":"2"}}]"#;
        let s = &decode_zipkin_json(body.as_bytes(), NOW).unwrap()[0];
        assert_eq!(
            (s.status_code, s.status_message.as_str()),
            (StatusCode::Error, "bad")
        );
        assert_eq!(
            (s.scope_name.as_str(), s.scope_version.as_str()),
            ("lib", "2")
        );
        assert_eq!(s.parent_span_id, None, "an all-zero parent is a root");
        assert_eq!(s.kind, SpanKind::Client);
        assert_eq!(
            s.attributes.get("net.peer.ip"),
            Some(&Value::Str("10.0.0.1".into()))
        );
        assert_eq!(s.attributes.get("net.peer.port"), None, "port 0 is unknown");
        assert_eq!(s.start, 5_000);
    }

    #[test]
    fn empty_array() {
        assert!(decode_zipkin_json(b" [ ] ", NOW).unwrap().is_empty());
    }

    fn err(body: &str) -> String {
        decode_zipkin_json(body.as_bytes(), NOW)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_line_span_and_field() {
        let ok = r#"{"id":"0000000000000001","traceId":"0000000000000001","timestamp":1}"#;
        let case = |fields: &str| {
            let bad = format!(
                r#"{{"id":"0000000000000002","traceId":"0000000000000001","timestamp":1{fields}}}"#
            );
            err(&format!("[{ok},\n{bad}]"))
        };
        assert_eq!(
            case(r#","traceId":"abc""#),
            "line 2: span 2: traceId: expected 16 or 32 hex characters, got 3"
        );
        assert!(case(r#","traceId":"zz00000000000000""#).starts_with("line 2: span 2: traceId: "));
        assert_eq!(
            case(r#","traceId":"0000000000000000""#),
            "line 2: span 2: traceId: all zero"
        );
        assert_eq!(
            case(r#","traceId":null"#),
            "line 2: span 2: traceId: missing"
        );
        assert_eq!(
            case(r#","traceId":5"#),
            "line 2: span 2: traceId: expected a string, got a number"
        );
        assert_eq!(case(r#","id":null"#), "line 2: span 2: id: missing");
        assert_eq!(
            case(r#","id":"0000000000000000""#),
            "line 2: span 2: id: all zero"
        );
        assert!(case(r#","id":"12""#).starts_with("line 2: span 2: id: "));
        assert!(case(r#","parentId":"xyz""#).starts_with("line 2: span 2: parentId: "));
        assert_eq!(
            case(r#","timestamp":-5"#),
            "line 2: span 2: timestamp: -5 is negative"
        );
        assert_eq!(
            case(r#","timestamp":null"#),
            "line 2: span 2: timestamp: missing"
        );
        assert_eq!(
            case(r#","timestamp":1.5"#),
            "line 2: span 2: timestamp: 1.5 is not an integer"
        );
        assert_eq!(
            case(r#","timestamp":"1""#),
            "line 2: span 2: timestamp: expected an integer of microseconds, got a string"
        );
        assert_eq!(
            case(r#","timestamp":18446744073709551615"#),
            "line 2: span 2: timestamp: 18446744073709551615 µs is past the year 2262"
        );
        assert_eq!(
            case(r#","timestamp":9223372036854776"#),
            "line 2: span 2: timestamp: 9223372036854776 µs is past the year 2262"
        );
        assert_eq!(
            case(r#","timestamp":9223372036854774,"duration":9999"#),
            "line 2: span 2: duration: the span ends past the year 2262"
        );
        assert_eq!(
            case(r#","duration":-1"#),
            "line 2: span 2: duration: -1 is negative"
        );
        assert_eq!(
            case(r#","kind":"client""#),
            r#"line 2: span 2: kind: "client" is not one of CLIENT, SERVER, PRODUCER, CONSUMER"#
        );
        assert_eq!(
            case(r#","remoteEndpoint":{"ipv4":"1.2.3"}"#),
            r#"line 2: span 2: remoteEndpoint.ipv4: "1.2.3" is not an IPv4 address"#
        );
        assert_eq!(
            case(r#","remoteEndpoint":{"ipv6":"zz::"}"#),
            r#"line 2: span 2: remoteEndpoint.ipv6: "zz::" is not an IPv6 address"#
        );
        assert_eq!(
            case(r#","remoteEndpoint":{"port":70000}"#),
            "line 2: span 2: remoteEndpoint.port: 70000 is not a port number"
        );
        assert_eq!(
            case(r#","localEndpoint":{"serviceName":1}"#),
            "line 2: span 2: localEndpoint.serviceName: expected a string, got a number"
        );
        assert_eq!(
            case(r#","tags":{"a":{}}"#),
            "line 2: span 2: tags.a: expected a string, got an object"
        );
        assert_eq!(
            case(r#","tags":[]"#),
            "line 2: span 2: tags: expected an object, got an array"
        );
        assert_eq!(
            case(r#","annotations":[{"value":"x"}]"#),
            "line 2: span 2: annotations[0].timestamp: missing"
        );
        assert_eq!(
            case(r#","debug":"yes""#),
            "line 2: span 2: debug: expected a boolean, got a string"
        );
        assert_eq!(
            err(&format!("[{ok}, 5]")),
            "line 1: span 2: expected an object, got a number"
        );
        assert_eq!(
            err(r#"{"id":"1"}"#),
            "line 1: expected a JSON array of spans, got an object"
        );
        assert!(
            err("[{").starts_with("line 1: invalid JSON: "),
            "{}",
            err("[{")
        );
    }

    #[test]
    fn element_lines_skip_strings_and_nesting() {
        let body = b"[\n{\"a\":\"x,\\\"[\\n\",\"b\":[1,\n2]},\n\n 7 ,\"s\"]";
        assert_eq!(element_lines(body), vec![2, 5, 5]);
        assert_eq!(element_lines(b"[]"), Vec::<usize>::new());
    }

    /// trace id, span id, parent id, name, timestamp µs, duration µs, tags.
    type ArbSpan = (
        u128,
        u64,
        Option<u64>,
        String,
        u32,
        u32,
        Vec<(String, String)>,
    );

    fn arb_span() -> impl Strategy<Value = ArbSpan> {
        (
            1..u128::MAX,
            1..u64::MAX,
            prop::option::of(1..u64::MAX),
            "\\PC{0,10}",
            1..u32::MAX,
            any::<u32>(),
            prop::collection::vec(("[a-z.]{1,8}", "\\PC{0,8}"), 0..4),
        )
    }

    proptest! {
        /// Spans written as Zipkin JSON decode to what was written.
        #[test]
        fn encoded_spans_decode((trace, id, parent, name, ts, dur, tags) in arb_span()) {
            let mut o = serde_json::json!({
                "traceId": format!("{trace:032x}"), "id": format!("{id:016x}"), "name": name,
                "timestamp": ts, "duration": dur, "kind": "PRODUCER",
                "tags": {},
            });
            if let Some(p) = parent {
                o["parentId"] = Json::String(format!("{p:016x}"));
            }
            for (k, v) in &tags {
                o["tags"][k] = Json::String(v.clone());
            }
            let body = serde_json::to_vec(&Json::Array(vec![o])).unwrap();
            let v = decode_zipkin_json(&body, NOW).unwrap();
            let s = &v[0];
            prop_assert_eq!(s.trace_id, TraceId(trace.to_be_bytes()));
            prop_assert_eq!(s.span_id, SpanId(id.to_be_bytes()));
            prop_assert_eq!(s.parent_span_id, parent.map(|p| SpanId(p.to_be_bytes())));
            prop_assert_eq!(&s.name, &name);
            prop_assert_eq!((s.start, s.duration()), (i64::from(ts) * 1000, i64::from(dur) * 1000));
            let want = Attributes::from_pairs(tags.into_iter().map(|(k, v)| (k, Value::Str(v))));
            prop_assert_eq!(&s.attributes, &want);
        }

        #[test]
        fn garbage_never_panics(body in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_zipkin_json(&body, NOW);
        }

        #[test]
        fn json_garbage_is_a_clean_error(s in "[\\[\\]{}\":,a-zA-Z0-9 \\n.-]{0,80}") {
            let _ = decode_zipkin_json(s.as_bytes(), NOW);
            let arr = format!("[{s}]");
            if let Err(e) = decode_zipkin_json(arr.as_bytes(), NOW) {
                prop_assert!(e.to_string().starts_with("line "), "{}", e);
            }
        }
    }
}
