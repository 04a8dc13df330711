//! The fast path of [`crate::json_record`]: one JSON object line straight to a record,
//! deserialised with borrowed strings into a small tree of its own instead of a
//! `serde_json::Value` (no map of owned keys, no hashing, no copy of a string that has no
//! escapes until it lands in the record).
//!
//! It must give exactly what `parse_object` + `record_from_object` give, which it does by
//! mirroring them step by step: the object's entries are kept in a `Vec` with the
//! semantics of serde_json's `preserve_order` map (a repeated key keeps its first position
//! and its last value; `remove` is a swap-remove), so even attributes whose flattened keys
//! collide come out the same. Whatever it does not handle cheaply — any JSON error, a value
//! that is not an object, an object with very many keys — it leaves to the slow path
//! (`None`), which then produces the documented error message.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value as Json};
use sightline_model::{Attributes, Level, LogRecord, SpanId, TraceId, Value};

use crate::json_record::{
    number_value, severity_from_int, severity_from_str, timestamp_from_json, timestamp_from_str,
    FieldError, BAD_TIME, LEVEL_KEYS, MESSAGE_KEYS, SERVICE_KEYS, SPAN_ID_KEYS, TIMESTAMP_KEYS,
    TRACE_ID_KEYS,
};

/// Objects with more keys than this go to the slow path: repeated keys are found by a
/// linear scan, quadratic in the number of keys, which is cheaper than hashing for the
/// dozen keys of a typical log line but not for a thousand.
const MAX_FAST_KEYS: usize = 64;

/// A JSON value with borrowed strings. Arrays are kept as `serde_json::Value` because they
/// are only ever turned back into JSON text.
#[derive(Debug)]
enum Lite<'a> {
    Null,
    Bool(bool),
    Num(Number),
    Str(Cow<'a, str>),
    Arr(Json),
    /// Entries in document order, repeated keys included (resolved by [`dedup`]).
    Obj(Entries<'a>),
}

/// An object's entries: key (borrowed when it has no escapes) and value.
type Entries<'a> = Vec<(Cow<'a, str>, Lite<'a>)>;

/// The record of one JSON line, or `None` when the slow path must decide (invalid JSON,
/// not an object, too many keys). `Some(Err)` is the same [`FieldError`] the slow path
/// gives.
pub fn record_from_line(line: &str, now_ns: i64) -> Option<Result<LogRecord, FieldError>> {
    let mut de = serde_json::Deserializer::from_str(line);
    let entries = de.deserialize_map(ObjVisitor).ok()?;
    de.end().ok()?;
    let mut entries = dedup(entries)?;
    Some(build(&mut entries, now_ns))
}

/// serde_json's `preserve_order` map semantics: a repeated key keeps the position of its
/// first occurrence and the value of its last. `None` past [`MAX_FAST_KEYS`].
fn dedup(entries: Entries<'_>) -> Option<Entries<'_>> {
    (entries.len() <= MAX_FAST_KEYS).then(|| dedup_unbounded(entries))
}

/// `Map::remove` under `preserve_order`: a swap-remove of the key's entry.
fn take<'a>(entries: &mut Entries<'a>, key: &str) -> Option<Lite<'a>> {
    let pos = entries.iter().position(|(k, _)| k == key)?;
    Some(entries.swap_remove(pos).1)
}

/// `record_from_object`'s `take_first`: the first of `keys` with a non-null value, removing
/// every key it looks at up to that one.
fn take_first<'a, 'k>(entries: &mut Entries<'a>, keys: &[&'k str]) -> Option<(&'k str, Lite<'a>)> {
    for k in keys {
        if let Some(v) = take(entries, k) {
            if !matches!(v, Lite::Null) {
                return Some((k, v));
            }
        }
    }
    None
}

/// The mapping of `record_from_object`, step for step.
fn build<'a>(entries: &mut Entries<'a>, now_ns: i64) -> Result<LogRecord, FieldError> {
    let mut rec = LogRecord {
        timestamp: now_ns,
        observed_timestamp: now_ns,
        ..LogRecord::default()
    };
    if let Some((key, v)) = take_first(entries, TIMESTAMP_KEYS) {
        let ts = match &v {
            Lite::Str(s) => timestamp_from_str(s),
            Lite::Num(n) => timestamp_from_json(&Json::Number(n.clone())),
            _ => None,
        };
        rec.timestamp = ts.ok_or_else(|| field_error(key, BAD_TIME))?;
    }
    if let Some((_, v)) = take_first(entries, LEVEL_KEYS) {
        let (number, text) = match v {
            Lite::Str(s) => (severity_from_str(&s), s.into_owned()),
            Lite::Num(n) => match n.as_i64() {
                Some(i) => {
                    let num = severity_from_int(i);
                    let text = match num {
                        0 => n.to_string(),
                        _ => Level::from_number(num).as_str().to_string(),
                    };
                    (num, text)
                }
                None => (0, n.to_string()),
            },
            other => (0, other.into_json().to_string()),
        };
        rec.severity_number = number;
        rec.severity_text = text;
    }
    if let Some((_, v)) = take_first(entries, MESSAGE_KEYS) {
        rec.body = v.into_text();
    }
    if let Some((_, v)) = take_first(entries, SERVICE_KEYS) {
        rec.service = v.into_text();
    }
    if let Some((key, v)) = take_first(entries, TRACE_ID_KEYS) {
        let s = id_string(key, &v)?;
        rec.trace_id = match s.is_empty() {
            true => None,
            false => TraceId::from_hex(s)
                .map_err(|e| field_error(key, e.to_string()))
                .map(|id| (id.0 != [0; 16]).then_some(id))?,
        };
    }
    if let Some((key, v)) = take_first(entries, SPAN_ID_KEYS) {
        let s = id_string(key, &v)?;
        rec.span_id = match s.is_empty() {
            true => None,
            false => SpanId::from_hex(s)
                .map_err(|e| field_error(key, e.to_string()))
                .map(|id| (id.0 != [0; 8]).then_some(id))?,
        };
    }
    let mut attrs = Attributes::new();
    for (k, v) in entries.drain(..) {
        flatten_into(k.into_owned(), v, &mut attrs);
    }
    rec.attributes = attrs;
    Ok(rec)
}

fn field_error(key: &str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: key.to_string(),
        reason: reason.into(),
    }
}

fn id_string<'v>(key: &str, v: &'v Lite<'_>) -> Result<&'v str, FieldError> {
    match v {
        Lite::Str(s) => Ok(s.trim()),
        Lite::Null => Ok(""),
        other => Err(field_error(
            key,
            format!("expected a hex string, got {}", other.kind()),
        )),
    }
}

/// `json_record::flatten_into` for [`Lite`] values.
fn flatten_into(key: String, v: Lite<'_>, attrs: &mut Attributes) {
    match v {
        Lite::Null => {}
        Lite::Bool(b) => attrs.insert(key, Value::Bool(b)),
        Lite::Num(n) => attrs.insert(key, number_value(&n)),
        Lite::Str(s) => attrs.insert(key, Value::Str(s.into_owned())),
        Lite::Arr(a) => attrs.insert(key, Value::Str(a.to_string())),
        Lite::Obj(entries) => {
            for (k, sub) in dedup_unbounded(entries) {
                flatten_into(format!("{key}.{k}"), sub, attrs);
            }
        }
    }
}

/// [`dedup`] without the size bound, for nested objects (their size was bounded by the
/// top-level check only for the top level; a large nested object is rare and still
/// correct, just slower).
fn dedup_unbounded(entries: Entries<'_>) -> Entries<'_> {
    let mut out: Entries<'_> = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        match out.iter_mut().find(|(ok, _)| *ok == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

impl Lite<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Lite::Null => "null",
            Lite::Bool(_) => "a boolean",
            Lite::Num(_) => "a number",
            Lite::Str(_) => "a string",
            Lite::Arr(_) => "an array",
            Lite::Obj(_) => "an object",
        }
    }

    /// The `serde_json::Value` the slow path would hold (map insertion keeps the first
    /// position and the last value of a repeated key, as serde_json's own parse does).
    fn into_json(self) -> Json {
        match self {
            Lite::Null => Json::Null,
            Lite::Bool(b) => Json::Bool(b),
            Lite::Num(n) => Json::Number(n),
            Lite::Str(s) => Json::String(s.into_owned()),
            Lite::Arr(a) => a,
            Lite::Obj(entries) => {
                let mut map = serde_json::Map::with_capacity(entries.len());
                for (k, v) in entries {
                    map.insert(k.into_owned(), v.into_json());
                }
                Json::Object(map)
            }
        }
    }

    /// `json_record::json_text`: a string as is, anything else as its JSON text.
    fn into_text(self) -> String {
        match self {
            Lite::Str(s) => s.into_owned(),
            Lite::Num(n) => n.to_string(),
            other => other.into_json().to_string(),
        }
    }
}

/// Reads an object's entries (keys borrowed where they have no escapes).
struct ObjVisitor;

impl<'de> Visitor<'de> for ObjVisitor {
    type Value = Entries<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some(k) = map.next_key_seed(KeySeed)? {
            let v = map.next_value_seed(LiteSeed)?;
            out.push((k, v));
        }
        Ok(out)
    }
}

/// A key as `Cow::Borrowed` when serde_json can lend it (no escapes).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(StrVisitor)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Any JSON value as a [`Lite`]; each `visit_*` builds what serde_json's own `Value`
/// visitor builds from the same call, so numbers come out identical.
struct LiteSeed;

impl<'de> DeserializeSeed<'de> for LiteSeed {
    type Value = Lite<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(LiteVisitor)
    }
}

struct LiteVisitor;

impl<'de> Visitor<'de> for LiteVisitor {
    type Value = Lite<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Lite::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Lite::Num(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Lite::Num(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Number::from_f64(v).map_or(Lite::Null, Lite::Num))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Lite::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Lite::Str(Cow::Owned(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Lite::Str(Cow::Owned(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Lite::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Lite::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element::<Json>()? {
            items.push(v);
        }
        Ok(Lite::Arr(Json::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        ObjVisitor.visit_map(map).map(Lite::Obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json_record::{parse_object, record_from_object};
    use proptest::prelude::*;

    const NOW: i64 = 1_700_000_000_000_000_000;

    /// The slow path's answer: `None` when the line is not a JSON object.
    fn slow(line: &str) -> Option<Result<LogRecord, FieldError>> {
        parse_object(line)
            .ok()
            .map(|obj| record_from_object(obj, NOW))
    }

    fn same(line: &str) {
        let fast = record_from_line(line, NOW);
        match (&fast, slow(line)) {
            (Some(f), Some(s)) => assert_eq!(f, &s, "{line}"),
            (None, _) => {}
            (Some(f), None) => panic!("fast path accepted {line:?} as {f:?}"),
        }
    }

    #[test]
    fn matches_the_slow_path_on_tricky_objects() {
        for line in [
            r#"{"ts":"2024-05-01T12:00:00.5Z","level":"WARNING","msg":"disk full","service":"api","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","http":{"status":500,"path":"/x"},"tags":["a",1],"ok":true,"none":null,"ratio":0.5}"#,
            r#"{"msg":"a","message":"b","time":1,"ts":"x"}"#,
            r#"{"timestamp":null,"trace_id":"","span_id":null}"#,
            r#"{"a":3.0,"b":3.5,"c":1e300,"d":18446744073709551615,"e":-0,"f":-0.0}"#,
            r#"{"a.b":1,"a":{"b":2},"z":{"y":{"x":[{"k":1,"k":2}]}}}"#,
            r#"{"a":{"b":1,"b":{"c":2}},"a":{"b":3},"x":1,"x":null}"#,
            r#"{"level":50,"msg":{"a":1,"a":2},"service":42}"#,
            r#"{"level":1000,"service":true,"message":[1,2]}"#,
            r#"{"level":true}"#,
            r#"{"level":{"x":1}}"#,
            r#"{"level":2.5,"ts":1700000123.25}"#,
            r#"{"ts":18446744073709551615}"#,
            r#"{"ts":true}"#,
            r#"{"traceId":"abc"}"#,
            r#"{"span_id":5}"#,
            r#"{"trace_id":{"a":1}}"#,
            r#"{"trace_id":" 4bf92f3577b34da6a3ce929d0e0e4736 "}"#,
            r#"{"trace_id":"00000000000000000000000000000000"}"#,
            r#"{"m\u0065ssage":"esc\"aped","k\n":"v\u00e9"}"#,
            r#"{"msg":null,"message":null,"body":"b"}"#,
            r#"{"trace_id":null,"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","trace.id":"x"}"#,
            "{}",
            "[1]",
            "{\"a\": }",
            "{} x",
            "\"s\"",
        ] {
            same(line);
        }
    }

    #[test]
    fn leaves_errors_and_large_objects_to_the_slow_path() {
        assert!(record_from_line("{\"a\": }", NOW).is_none());
        assert!(record_from_line("[1]", NOW).is_none());
        assert!(record_from_line("{} {}", NOW).is_none());
        let big: Vec<String> = (0..=MAX_FAST_KEYS)
            .map(|i| format!("\"k{i}\":{i}"))
            .collect();
        let big = format!("{{{}}}", big.join(","));
        assert!(record_from_line(&big, NOW).is_none());
        assert!(slow(&big).unwrap().is_ok());
        let e = record_from_line(r#"{"ts":"x"}"#, NOW).unwrap().unwrap_err();
        assert_eq!((e.field.as_str(), e.reason.as_str()), ("ts", BAD_TIME));
    }

    fn json_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            any::<i64>().prop_map(|i| i.to_string()),
            any::<u64>().prop_map(|i| i.to_string()),
            (-1e20f64..1e20).prop_map(|f| f.to_string()),
            Just("1.7e9".to_string()),
            Just("\"2024-05-01T12:00:00Z\"".to_string()),
            Just("\"4bf92f3577b34da6a3ce929d0e0e4736\"".to_string()),
            Just("\"00f067aa0ba902b7\"".to_string()),
            "[a-z\\\\\" ]{0,6}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                proptest::collection::vec((key(), inner), 0..4).prop_map(|v| {
                    let e: Vec<String> = v.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                    format!("{{{}}}", e.join(","))
                }),
            ]
        })
    }

    fn key() -> impl Strategy<Value = String> {
        let names: Vec<&'static str> = TIMESTAMP_KEYS
            .iter()
            .chain(LEVEL_KEYS)
            .chain(MESSAGE_KEYS)
            .chain(SERVICE_KEYS)
            .chain(TRACE_ID_KEYS)
            .chain(SPAN_ID_KEYS)
            .chain(&["a", "a.b", "b", "x"])
            .copied()
            .collect();
        proptest::sample::select(names).prop_map(|k| format!("\"{k}\""))
    }

    proptest! {
        #[test]
        fn same_records_as_the_slow_path(
            entries in proptest::collection::vec((key(), json_value()), 0..10),
        ) {
            let e: Vec<String> = entries.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
            let line = format!("{{{}}}", e.join(","));
            let fast = record_from_line(&line, NOW);
            prop_assert!(fast.is_some(), "valid object left to the slow path: {}", line);
            prop_assert_eq!(fast, slow(&line), "{}", line);
        }

        #[test]
        fn garbage_never_panics_and_is_never_accepted_alone(line in r#"[{}\[\]":,0-9a-z.\-\\e ]{0,80}"#) {
            if let Some(fast) = record_from_line(&line, NOW) {
                prop_assert_eq!(Some(fast), slow(&line));
            }
        }
    }
}
