//! How records and values appear in query output (JSON).

use serde_json::{Map, Value as Json};
use sightline_model::time::format_rfc3339_ns;
use sightline_model::{LogRecord, Value};

use crate::ast::{Field, FieldName};

/// A record as a JSON object: `timestamp` (RFC 3339, 9 fraction digits), `level`,
/// `service`, `message`, `attributes` (resource attributes overridden by the record's),
/// and `trace_id` / `span_id` as hex when present.
pub fn record_json(r: &LogRecord) -> Json {
    let mut attrs = Map::new();
    for (k, v) in r.resource.iter().chain(r.attributes.iter()) {
        attrs.insert(k.to_string(), value_json(v));
    }
    let mut m = Map::new();
    m.insert(
        "timestamp".into(),
        Json::String(format_rfc3339_ns(r.timestamp)),
    );
    m.insert("level".into(), Json::String(r.level().as_str().into()));
    m.insert("service".into(), Json::String(r.service.clone()));
    m.insert("message".into(), Json::String(r.body.clone()));
    m.insert("attributes".into(), Json::Object(attrs));
    if let Some(t) = r.trace_id {
        m.insert("trace_id".into(), Json::String(t.to_hex()));
    }
    if let Some(s) = r.span_id {
        m.insert("span_id".into(), Json::String(s.to_hex()));
    }
    Json::Object(m)
}

/// An attribute value as JSON; NaN and infinities become strings (JSON has no such numbers).
pub(crate) fn value_json(v: &Value) -> Json {
    match v {
        Value::Str(s) => Json::String(s.clone()),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .unwrap_or_else(|| Json::String(f.to_string())),
        Value::Bool(b) => Json::Bool(*b),
    }
}

/// A number as JSON; `null` when it is not finite.
pub(crate) fn number_json(x: f64) -> Json {
    serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number)
}

/// The `fields` projection of a record: each named field present in it, keyed by the name
/// as written; attributes keep their JSON type.
pub(crate) fn project_record(r: &LogRecord, fields: &[FieldName]) -> Json {
    let mut m = Map::new();
    for f in fields {
        let v = match &f.field {
            Field::Timestamp => Some(Json::String(format_rfc3339_ns(r.timestamp))),
            Field::Level => Some(Json::String(r.level().as_str().into())),
            Field::Service => Some(Json::String(r.service.clone())),
            Field::Message => Some(Json::String(r.body.clone())),
            Field::TraceId => r.trace_id.map(|t| Json::String(t.to_hex())),
            Field::SpanId => r.span_id.map(|s| Json::String(s.to_hex())),
            Field::Attr(k) => r.attribute(k).map(value_json),
        };
        if let Some(v) = v {
            m.insert(f.name.clone(), v);
        }
    }
    Json::Object(m)
}

/// The `fields` projection of an output row: the named keys it has.
pub(crate) fn project_row(row: Json, fields: &[FieldName]) -> Json {
    match row {
        Json::Object(mut m) => {
            let mut out = Map::new();
            for f in fields {
                if let Some(v) = m.remove(&f.name) {
                    out.insert(f.name.clone(), v);
                }
            }
            Json::Object(out)
        }
        other => other,
    }
}
