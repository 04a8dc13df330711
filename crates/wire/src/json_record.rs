//! The mapping of one JSON object to a log record, shared by NDJSON ingestion and the
//! `json` line format, plus the field helpers (timestamps, severities, typed values) that
//! the other line formats reuse so every format reads the same field the same way.

use serde_json::{Map, Value as Json};
use sightline_model::time::{parse_rfc3339, unix_int_to_ns, unix_number_to_ns};
use sightline_model::{Attributes, Level, LogRecord, SpanId, TraceId, Value};

/// Keys read as the event time, first present wins (the others stay attributes).
pub const TIMESTAMP_KEYS: &[&str] = &["timestamp", "time", "ts", "@timestamp"];
/// Keys read as the severity.
pub const LEVEL_KEYS: &[&str] = &["level", "severity", "lvl", "loglevel"];
/// Keys read as the message.
pub const MESSAGE_KEYS: &[&str] = &["message", "msg", "body"];
/// Keys read as the service name.
pub const SERVICE_KEYS: &[&str] = &["service", "service.name", "service_name"];
/// Keys read as the trace id.
pub const TRACE_ID_KEYS: &[&str] = &["trace_id", "traceId", "trace.id"];
/// Keys read as the span id.
pub const SPAN_ID_KEYS: &[&str] = &["span_id", "spanId"];

/// A well-known field whose value cannot be used; the caller adds the line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    fn new(field: &str, reason: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "field {:?}: {}", self.field, self.reason)
    }
}

pub(crate) const BAD_TIME: &str = "not a valid RFC 3339 time or Unix number";

/// Parses one line as a JSON object. `Err` holds the reason without the line number:
/// serde_json's message with its position shortened to the column (lines are single-line).
pub fn parse_object(line: &str) -> Result<Map<String, Json>, JsonLineError> {
    match serde_json::from_str::<Json>(line) {
        Ok(Json::Object(map)) => Ok(map),
        Ok(other) => Err(JsonLineError::NotObject(json_kind(&other))),
        Err(e) => Err(JsonLineError::Syntax(serde_error_reason(&e))),
    }
}

/// Why a line is not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonLineError {
    /// Not JSON at all; the reason names the column.
    Syntax(String),
    /// JSON of another kind (`"array"`, `"string"`...).
    NotObject(&'static str),
}

impl std::fmt::Display for JsonLineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Syntax(r) => write!(f, "invalid JSON: {r}"),
            Self::NotObject(k) => write!(f, "expected a JSON object, got {k}"),
        }
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

/// serde_json's message with " at line 1 column 7" turned into " at column 7".
pub fn serde_error_reason(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match full.strip_suffix(&suffix) {
        Some(head) => format!("{head} at column {}", e.column()),
        None => full,
    }
}

/// Builds a record from a JSON object: well-known keys (see the `*_KEYS` constants) fill
/// the record fields, every other key becomes an attribute, nested objects flattened to
/// dotted keys. A missing time is `now_ns`; `observed_timestamp` is always `now_ns`.
///
/// # Errors
/// [`FieldError`] naming the key when a timestamp or trace/span id is unusable.
pub fn record_from_object(
    mut obj: Map<String, Json>,
    now_ns: i64,
) -> Result<LogRecord, FieldError> {
    let mut rec = LogRecord {
        timestamp: now_ns,
        observed_timestamp: now_ns,
        ..LogRecord::default()
    };
    if let Some((key, v)) = take_first(&mut obj, TIMESTAMP_KEYS) {
        rec.timestamp = timestamp_from_json(&v).ok_or_else(|| FieldError::new(&key, BAD_TIME))?;
    }
    if let Some((_, v)) = take_first(&mut obj, LEVEL_KEYS) {
        let (number, text) = match &v {
            Json::String(s) => (severity_from_str(s), s.clone()),
            Json::Number(n) => match n.as_i64() {
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
            other => (0, other.to_string()),
        };
        rec.severity_number = number;
        rec.severity_text = text;
    }
    if let Some((_, v)) = take_first(&mut obj, MESSAGE_KEYS) {
        rec.body = json_text(v);
    }
    if let Some((_, v)) = take_first(&mut obj, SERVICE_KEYS) {
        rec.service = json_text(v);
    }
    if let Some((key, v)) = take_first(&mut obj, TRACE_ID_KEYS) {
        let s = id_string(&key, &v)?;
        rec.trace_id = match s.is_empty() {
            true => None,
            false => TraceId::from_hex(s)
                .map_err(|e| FieldError::new(&key, e.to_string()))
                .map(|id| (id.0 != [0; 16]).then_some(id))?,
        };
    }
    if let Some((key, v)) = take_first(&mut obj, SPAN_ID_KEYS) {
        let s = id_string(&key, &v)?;
        rec.span_id = match s.is_empty() {
            true => None,
            false => SpanId::from_hex(s)
                .map_err(|e| FieldError::new(&key, e.to_string()))
                .map(|id| (id.0 != [0; 8]).then_some(id))?,
        };
    }
    let mut attrs = Attributes::new();
    for (k, v) in obj {
        flatten_into(k, v, &mut attrs);
    }
    rec.attributes = attrs;
    Ok(rec)
}

fn id_string<'a>(key: &str, v: &'a Json) -> Result<&'a str, FieldError> {
    match v {
        Json::String(s) => Ok(s.trim()),
        Json::Null => Ok(""),
        other => Err(FieldError::new(
            key,
            format!("expected a hex string, got {}", json_kind(other)),
        )),
    }
}

/// Removes and returns the first of `keys` present with a non-null value. Null values of
/// well-known keys are dropped like null attributes.
fn take_first(obj: &mut Map<String, Json>, keys: &[&str]) -> Option<(String, Json)> {
    for k in keys {
        if let Some(v) = obj.remove(*k) {
            if !v.is_null() {
                return Some((k.to_string(), v));
            }
        }
    }
    None
}

/// A string as is, anything else as its JSON text.
fn json_text(v: Json) -> String {
    match v {
        Json::String(s) => s,
        other => other.to_string(),
    }
}

/// Adds `v` under `key`, flattening objects to `key.sub` (null skipped, arrays as JSON
/// text). Depth is bounded by serde_json's recursion limit (128).
pub fn flatten_into(key: String, v: Json, attrs: &mut Attributes) {
    match v {
        Json::Null => {}
        Json::Bool(b) => attrs.insert(key, Value::Bool(b)),
        Json::Number(n) => attrs.insert(key, number_value(&n)),
        Json::String(s) => attrs.insert(key, Value::Str(s)),
        Json::Array(_) => attrs.insert(key, Value::Str(v.to_string())),
        Json::Object(map) => {
            for (k, sub) in map {
                flatten_into(format!("{key}.{k}"), sub, attrs);
            }
        }
    }
}

/// A JSON number as `Int` when integral and within i64, else `Float`.
pub(crate) fn number_value(n: &serde_json::Number) -> Value {
    if let Some(i) = n.as_i64() {
        return Value::Int(i);
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    float_value(f)
}

/// `Int` for integral floats inside i64's range, else `Float`.
fn float_value(f: f64) -> Value {
    // 2^63 as f64 is exactly representable; anything below it fits an i64.
    if f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        Value::Int(f as i64)
    } else {
        Value::Float(f)
    }
}

/// A text value typed the way text formats (logfmt, regex groups) type numbers: an integer
/// is `Int`, a decimal number is `Float`, anything else stays a string.
pub fn typed_text_value(s: &str) -> Value {
    if looks_numeric(s) {
        if let Ok(i) = s.parse::<i64>() {
            return Value::Int(i);
        }
        if let Ok(f) = s.parse::<f64>() {
            if f.is_finite() {
                return Value::Float(f);
            }
        }
    }
    Value::Str(s.to_string())
}

/// Digits with an optional sign, point and exponent; rejects `inf`, `nan` and other words
/// Rust's float parser would accept.
fn looks_numeric(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    !digits.is_empty()
        && digits[0].is_ascii_digit()
        && digits
            .iter()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'-' | b'+'))
}

/// A timestamp from a JSON value: RFC 3339 string, Unix number (unit by magnitude) or a
/// numeric string. `None` when unusable.
pub fn timestamp_from_json(v: &Json) -> Option<i64> {
    match v {
        Json::String(s) => timestamp_from_str(s),
        Json::Number(n) => match n.as_i64() {
            Some(i) => unix_int_to_ns(i).ok(),
            // The shortest decimal text of the float: read exactly, not via f64 * 1e9.
            None => timestamp_from_str(&n.to_string()),
        },
        _ => None,
    }
}

/// A timestamp from text: RFC 3339 or a Unix number (unit by magnitude, fractions kept).
pub fn timestamp_from_str(s: &str) -> Option<i64> {
    let s = s.trim();
    if looks_numeric(s) {
        if let Ok(i) = s.parse::<i64>() {
            return unix_int_to_ns(i).ok();
        }
        if let Some(ns) = decimal_unix_to_ns(s) {
            return Some(ns);
        }
        return unix_number_to_ns(s.parse::<f64>().ok()?).ok();
    }
    parse_rfc3339(s).ok()
}

/// `<digits>.<digits>` as a Unix time, exactly: an f64 holds only ~16 digits, which loses
/// the microseconds of a nanosecond time. Unit by the magnitude of the integer part, with
/// the thresholds of `sightline_model::time::unix_int_to_ns`. `None` for other shapes.
fn decimal_unix_to_ns(s: &str) -> Option<i64> {
    let (int, frac) = s.split_once('.')?;
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let i: i64 = int.parse().ok()?;
    let unit_digits: u32 = if i < 100_000_000_000 {
        9
    } else if i < 100_000_000_000_000 {
        6
    } else if i < 100_000_000_000_000_000 {
        3
    } else {
        0
    };
    let mut frac_ns: i64 = 0;
    for (k, d) in frac.bytes().take(unit_digits as usize).enumerate() {
        frac_ns += i64::from(d - b'0') * 10i64.pow(unit_digits - 1 - k as u32);
    }
    i.checked_mul(10i64.pow(unit_digits))?.checked_add(frac_ns)
}

/// The OTel severity number of a level name, or of a numeric string (see
/// [`severity_from_int`]); 0 when unknown.
pub fn severity_from_str(s: &str) -> u8 {
    match Level::parse(s) {
        Some(l) => l.number(),
        None => s.trim().parse::<i64>().map(severity_from_int).unwrap_or(0),
    }
}

/// A numeric level: pino/bunyan's 10..60 in steps of 10 first, then an OTel severity
/// number 1..=24; anything else is 0 (unspecified).
pub fn severity_from_int(i: i64) -> u8 {
    let level = match i {
        10 => Level::Trace,
        20 => Level::Debug,
        30 => Level::Info,
        40 => Level::Warn,
        50 => Level::Error,
        60 => Level::Fatal,
        // Checked range: the cast cannot truncate.
        1..=24 => return i as u8,
        _ => Level::Unspecified,
    };
    level.number()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(line: &str) -> Result<LogRecord, FieldError> {
        record_from_object(parse_object(line).unwrap(), 7)
    }

    #[test]
    fn severity_numbers() {
        assert_eq!(severity_from_int(30), 9);
        assert_eq!(severity_from_int(50), 17);
        assert_eq!(severity_from_int(60), 21);
        assert_eq!(severity_from_int(10), 1);
        assert_eq!(severity_from_int(14), 14);
        assert_eq!(severity_from_int(0), 0);
        assert_eq!(severity_from_int(99), 0);
        assert_eq!(severity_from_str("WARNING"), 13);
        assert_eq!(severity_from_str("40"), 13);
        assert_eq!(severity_from_str("whatever"), 0);
    }

    #[test]
    fn decimal_times_are_exact() {
        let s = 1_700_000_123i64 * 1_000_000_000;
        assert_eq!(
            timestamp_from_str("1700000123.123456789"),
            Some(s + 123_456_789)
        );
        assert_eq!(timestamp_from_str("1700000123250.5"), Some(s + 250_500_000));
        assert_eq!(
            timestamp_from_str("1700000123250500.7"),
            Some(s + 250_500_700)
        );
        assert_eq!(
            timestamp_from_str("1700000123250500700.9"),
            Some(s + 250_500_700)
        );
        assert_eq!(
            timestamp_from_str("1.7e9"),
            Some(1_700_000_000 * 1_000_000_000)
        );
        assert_eq!(timestamp_from_str("99999999999999999999.5"), None);
        assert_eq!(timestamp_from_str("-1.5"), None);
    }

    #[test]
    fn typed_text() {
        assert_eq!(typed_text_value("500"), Value::Int(500));
        assert_eq!(typed_text_value("-2.5"), Value::Float(-2.5));
        assert_eq!(typed_text_value("inf"), Value::Str("inf".into()));
        assert_eq!(typed_text_value("1.2.3"), Value::Str("1.2.3".into()));
        assert_eq!(typed_text_value(""), Value::Str("".into()));
    }

    #[test]
    fn numeric_level_text_is_level_name() {
        let r = rec(r#"{"level":50}"#).unwrap();
        assert_eq!((r.severity_number, r.severity_text.as_str()), (17, "error"));
        let r = rec(r#"{"level":1000}"#).unwrap();
        assert_eq!((r.severity_number, r.severity_text.as_str()), (0, "1000"));
    }

    #[test]
    fn first_alias_wins_others_stay_attributes() {
        let r = rec(r#"{"msg":"a","message":"b","time":1,"ts":"x"}"#).unwrap();
        assert_eq!(r.body, "b");
        assert_eq!(r.attribute("msg"), Some(&Value::Str("a".into())));
        assert_eq!(r.timestamp, 1_000_000_000);
        assert_eq!(r.attribute("ts"), Some(&Value::Str("x".into())));
        let e = rec(r#"{"time":"x"}"#).unwrap_err();
        assert_eq!(e.field, "time");
        let e = rec(r#"{"ts":"x"}"#).unwrap_err();
        assert_eq!(e.field, "ts");
    }

    #[test]
    fn null_well_known_field_is_missing() {
        let r = rec(r#"{"timestamp":null,"trace_id":"","span_id":null}"#).unwrap();
        assert_eq!(r.timestamp, 7);
        assert_eq!(r.trace_id, None);
        assert!(r.attributes.is_empty());
    }

    #[test]
    fn float_integral_is_int() {
        let r = rec(r#"{"a":3.0,"b":3.5,"c":1e300,"d":18446744073709551615}"#).unwrap();
        assert_eq!(r.attribute("a"), Some(&Value::Int(3)));
        assert_eq!(r.attribute("b"), Some(&Value::Float(3.5)));
        assert_eq!(r.attribute("c"), Some(&Value::Float(1e300)));
        assert_eq!(
            r.attribute("d"),
            Some(&Value::Float(18446744073709551615.0))
        );
    }
}
