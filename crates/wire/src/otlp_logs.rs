//! OTLP logs (`ExportLogsServiceRequest`) in protobuf and JSON to log records.
//!
//! Mapping: resource attribute `service.name` → `service` (not repeated in `resource`),
//! other resource attributes → `resource`, record attributes → `attributes`, scope
//! name/version → `otel.scope.name`/`otel.scope.version` when non-empty, `event_name` →
//! `event.name` when non-empty. Nested AnyValues: kvlists flattened to dotted keys, arrays
//! as JSON text, bytes as lowercase hex. Positions in errors are 1-based.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message;
use serde_json::Value as Json;
use sightline_model::{Attributes, LogRecord, SpanId, TraceId, Value};

use crate::error::{Error, Result};

/// Decodes an OTLP/protobuf logs export request.
///
/// # Errors
/// [`Error::OtlpProtobuf`] when prost rejects the body, or a record has a trace/span id of
/// the wrong length or a time past the year 2262 (named by resource, scope and record).
pub fn decode_otlp_logs_protobuf(body: &[u8], now_ns: i64) -> Result<Vec<LogRecord>> {
    let req =
        ExportLogsServiceRequest::decode(body).map_err(|e| Error::OtlpProtobuf(e.to_string()))?;
    convert(req, now_ns).map_err(Error::OtlpProtobuf)
}

/// Decodes an OTLP/JSON logs export request (lowerCamelCase keys, hex ids, 64-bit integers
/// as strings or numbers), via opentelemetry-proto's serde support.
///
/// # Errors
/// [`Error::OtlpJson`] when the JSON does not match the schema, or as for
/// [`decode_otlp_logs_protobuf`].
pub fn decode_otlp_logs_json(body: &[u8], now_ns: i64) -> Result<Vec<LogRecord>> {
    let req: ExportLogsServiceRequest =
        serde_json::from_slice(body).map_err(|e| Error::OtlpJson(e.to_string()))?;
    convert(req, now_ns).map_err(Error::OtlpJson)
}

/// The records of a decoded request. `Err` holds the reason with the record's position.
fn convert(req: ExportLogsServiceRequest, now_ns: i64) -> Result<Vec<LogRecord>, String> {
    let mut out = Vec::new();
    for (ri, rl) in req.resource_logs.into_iter().enumerate() {
        let mut service = String::new();
        let mut resource = Attributes::new();
        for kv in rl.resource.map(|r| r.attributes).unwrap_or_default() {
            if kv.key == "service.name" {
                service = kv.value.map(any_text).unwrap_or_default();
            } else {
                flatten_kv(String::new(), kv, &mut resource);
            }
        }
        for (si, sl) in rl.scope_logs.into_iter().enumerate() {
            let (scope_name, scope_version) =
                sl.scope.map(|s| (s.name, s.version)).unwrap_or_default();
            for (li, lr) in sl.log_records.into_iter().enumerate() {
                let at = || {
                    format!(
                        "resource {}, scope {}, log record {}",
                        ri + 1,
                        si + 1,
                        li + 1
                    )
                };
                let time = |name: &str, v: u64| {
                    i64::try_from(v)
                        .map_err(|_| format!("{}: {name} {v} is past the year 2262", at()))
                };
                let timestamp = match (
                    time("time_unix_nano", lr.time_unix_nano)?,
                    time("observed_time_unix_nano", lr.observed_time_unix_nano)?,
                ) {
                    (0, 0) => now_ns,
                    (0, observed) => observed,
                    (t, _) => t,
                };
                let trace_id = TraceId::from_bytes(&lr.trace_id).map_err(|_| {
                    format!(
                        "{}: trace_id must be 16 bytes, got {}",
                        at(),
                        lr.trace_id.len()
                    )
                })?;
                let span_id = SpanId::from_bytes(&lr.span_id).map_err(|_| {
                    format!(
                        "{}: span_id must be 8 bytes, got {}",
                        at(),
                        lr.span_id.len()
                    )
                })?;
                let mut attributes = Attributes::new();
                for kv in lr.attributes {
                    flatten_kv(String::new(), kv, &mut attributes);
                }
                for (key, v) in [
                    ("otel.scope.name", &scope_name),
                    ("otel.scope.version", &scope_version),
                    ("event.name", &lr.event_name),
                ] {
                    if !v.is_empty() {
                        attributes.insert(key.to_string(), Value::Str(v.clone()));
                    }
                }
                out.push(LogRecord {
                    timestamp,
                    observed_timestamp: now_ns,
                    // Out-of-range numbers (not in 0..=24) are treated as unspecified.
                    severity_number: u8::try_from(lr.severity_number)
                        .ok()
                        .filter(|n| *n <= 24)
                        .unwrap_or(0),
                    severity_text: lr.severity_text,
                    service: service.clone(),
                    body: lr.body.map(any_text).unwrap_or_default(),
                    resource: resource.clone(),
                    attributes,
                    trace_id,
                    span_id,
                });
            }
        }
    }
    Ok(out)
}

/// Adds `kv` under `prefix.key` (or `key` at the top), flattening kvlists.
pub(crate) fn flatten_kv(prefix: String, kv: KeyValue, attrs: &mut Attributes) {
    let key = match prefix.is_empty() {
        true => kv.key,
        false => format!("{prefix}.{}", kv.key),
    };
    let Some(v) = kv.value.and_then(|v| v.value) else {
        return;
    };
    use any_value::Value as V;
    let value = match v {
        V::StringValue(s) => Value::Str(s),
        V::BoolValue(b) => Value::Bool(b),
        V::IntValue(i) => Value::Int(i),
        V::DoubleValue(f) => Value::Float(f),
        V::BytesValue(b) => Value::Str(const_hex::encode(b)),
        V::ArrayValue(a) => Value::Str(any_json(V::ArrayValue(a)).to_string()),
        V::KvlistValue(l) => {
            for sub in l.values {
                flatten_kv(key.clone(), sub, attrs);
            }
            return;
        }
        // A profiling-only reference into a string table logs do not have: ignored as
        // the OTLP spec asks.
        V::StringValueStrindex(_) => return,
    };
    attrs.insert(key, value);
}

/// An AnyValue as text: strings as is, bytes as hex, empty as "", others as JSON text.
pub(crate) fn any_text(v: AnyValue) -> String {
    match v.value {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s,
        Some(any_value::Value::BytesValue(b)) => const_hex::encode(b),
        Some(other) => any_json(other).to_string(),
    }
}

/// An AnyValue as JSON: kvlists as objects, bytes as hex strings, non-finite doubles as
/// strings (JSON has no NaN).
pub(crate) fn any_json(v: any_value::Value) -> Json {
    use any_value::Value as V;
    let inner = |v: Option<AnyValue>| v.and_then(|v| v.value).map_or(Json::Null, any_json);
    match v {
        V::StringValue(s) => Json::String(s),
        V::BoolValue(b) => Json::Bool(b),
        V::IntValue(i) => Json::from(i),
        V::DoubleValue(f) => serde_json::Number::from_f64(f)
            .map_or_else(|| Json::String(f.to_string()), Json::Number),
        V::BytesValue(b) => Json::String(const_hex::encode(b)),
        V::ArrayValue(a) => Json::Array(a.values.into_iter().map(|x| inner(Some(x))).collect()),
        V::KvlistValue(l) => Json::Object(
            l.values
                .into_iter()
                .map(|kv| (kv.key, inner(kv.value)))
                .collect(),
        ),
        V::StringValueStrindex(_) => Json::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, InstrumentationScope, KeyValueList};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord as OtlpRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use proptest::prelude::*;

    const NOW: i64 = 1_700_000_000_000_000_000;

    fn anyv(v: any_value::Value) -> Option<AnyValue> {
        Some(AnyValue { value: Some(v) })
    }

    fn kv(key: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: anyv(v),
            ..Default::default()
        }
    }

    fn s(x: &str) -> any_value::Value {
        any_value::Value::StringValue(x.into())
    }

    fn request(records: Vec<OtlpRecord>, resource: Vec<KeyValue>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "lib".into(),
                        version: String::new(),
                        ..Default::default()
                    }),
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    /// The example of the OTLP spec / opentelemetry-proto `examples/logs.json`, in the
    /// current spec's form (64-bit integers as strings).
    const SPEC_EXAMPLE: &str = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]},
      "scopeLogs":[{"scope":{"name":"my.library","version":"1.0.0","attributes":[{"key":"my.scope.attribute","value":{"stringValue":"some scope attribute"}}]},
      "logRecords":[{"timeUnixNano":"1544712660300000000","observedTimeUnixNano":"1544712660300000000","severityNumber":10,"severityText":"Information",
        "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","body":{"stringValue":"Example log record"},
        "attributes":[{"key":"string.attribute","value":{"stringValue":"some string"}},{"key":"boolean.attribute","value":{"boolValue":true}},
          {"key":"int.attribute","value":{"intValue":"10"}},{"key":"double.attribute","value":{"doubleValue":637.704}},
          {"key":"array.attribute","value":{"arrayValue":{"values":[{"stringValue":"many"},{"stringValue":"values"}]}}},
          {"key":"map.attribute","value":{"kvlistValue":{"values":[{"key":"some.map.key","value":{"stringValue":"some value"}}]}}}]}]}]}]}"#;

    #[test]
    fn spec_json_example() {
        for body in [
            SPEC_EXAMPLE.to_string(),
            // The older example form: 64-bit integers as JSON numbers.
            SPEC_EXAMPLE
                .replace(r#""1544712660300000000""#, "1544712660300000000")
                .replace(r#""intValue":"10""#, r#""intValue":10"#),
        ] {
            let v = decode_otlp_logs_json(body.as_bytes(), NOW).unwrap();
            assert_eq!(v.len(), 1);
            let r = &v[0];
            assert_eq!(r.timestamp, 1_544_712_660_300_000_000);
            assert_eq!(r.observed_timestamp, NOW);
            assert_eq!(
                (r.severity_number, r.severity_text.as_str()),
                (10, "Information")
            );
            assert_eq!(r.service, "my.service");
            assert!(r.resource.is_empty());
            assert_eq!(r.body, "Example log record");
            assert_eq!(
                r.trace_id.unwrap().to_hex(),
                "5b8efff798038103d269b633813fc60c"
            );
            assert_eq!(r.span_id.unwrap().to_hex(), "eee19b7ec3c1b174");
            let a = &r.attributes;
            assert_eq!(
                a.get("string.attribute"),
                Some(&Value::Str("some string".into()))
            );
            assert_eq!(a.get("boolean.attribute"), Some(&Value::Bool(true)));
            assert_eq!(a.get("int.attribute"), Some(&Value::Int(10)));
            assert_eq!(a.get("double.attribute"), Some(&Value::Float(637.704)));
            assert_eq!(
                a.get("array.attribute"),
                Some(&Value::Str(r#"["many","values"]"#.into()))
            );
            assert_eq!(
                a.get("map.attribute.some.map.key"),
                Some(&Value::Str("some value".into()))
            );
            assert_eq!(
                a.get("otel.scope.name"),
                Some(&Value::Str("my.library".into()))
            );
            assert_eq!(
                a.get("otel.scope.version"),
                Some(&Value::Str("1.0.0".into()))
            );
            assert_eq!(a.len(), 8);
        }
    }

    #[test]
    fn json_errors() {
        let e = decode_otlp_logs_json(b"{\"resourceLogs\":5}", NOW)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot decode OTLP JSON: invalid type: integer `5`"),
            "{e}"
        );
        let e = decode_otlp_logs_json(b"nope", NOW).unwrap_err().to_string();
        assert!(e.starts_with("cannot decode OTLP JSON: "), "{e}");
        let body =
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{},{},{"traceId":"0102030405"}]}]}]}"#;
        assert_eq!(
            decode_otlp_logs_json(body.as_bytes(), NOW).unwrap_err().to_string(),
            "cannot decode OTLP JSON: resource 1, scope 1, log record 3: trace_id must be 16 bytes, got 5"
        );
        assert!(decode_otlp_logs_json(
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"spanId":"zz"}]}]}]}"#,
            NOW
        )
        .is_err());
    }

    #[test]
    fn empty_and_unknown_fields_json() {
        assert!(decode_otlp_logs_json(b"{}", NOW).unwrap().is_empty());
        let body = br#"{"resourceLogs":[{"future":1,"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"},"future":{"a":[1]}}]}]}]}"#;
        let v = decode_otlp_logs_json(body, NOW).unwrap();
        assert_eq!((v[0].body.as_str(), v[0].timestamp), ("x", NOW));
    }

    /// Where opentelemetry-proto 0.33's serde is stricter than the proto3 JSON mapping the
    /// OTLP spec refers to: these are rejected (cleanly) rather than read as defaults.
    #[test]
    fn serde_gaps_are_clean_errors() {
        let wrap = |rec: &str| {
            format!(r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{rec}]}}]}}]}}"#)
        };
        for rec in [
            r#"{"attributes":[{"value":{"stringValue":"x"}}]}"#,
            r#"{"attributes":[{"key":"a","value":{"doubleValue":"NaN"}}]}"#,
            r#"{"attributes":null}"#,
        ] {
            let e = decode_otlp_logs_json(wrap(rec).as_bytes(), NOW)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("cannot decode OTLP JSON: "), "{e}");
        }
        // Unknown keys inside an AnyValue and base64 bytes are fine.
        let v = decode_otlp_logs_json(
            wrap(r#"{"attributes":[{"key":"a","value":{"stringValue":"x","future":1}},{"key":"b","value":{"bytesValue":"AQI="}}]}"#).as_bytes(),
            NOW,
        )
        .unwrap();
        assert_eq!(v[0].attributes.get("a"), Some(&Value::Str("x".into())));
        assert_eq!(v[0].attributes.get("b"), Some(&Value::Str("0102".into())));
    }

    #[test]
    fn times_ids_and_bodies() {
        use any_value::Value as V;
        let rec = |t: u64, o: u64| OtlpRecord {
            time_unix_nano: t,
            observed_time_unix_nano: o,
            ..Default::default()
        };
        let mut records = vec![rec(5, 6), rec(0, 6), rec(0, 0)];
        records.push(OtlpRecord {
            trace_id: vec![0; 16],
            span_id: vec![0; 8],
            body: anyv(V::KvlistValue(KeyValueList {
                values: vec![
                    kv("a", V::IntValue(1)),
                    kv(
                        "b",
                        V::ArrayValue(ArrayValue {
                            values: vec![AnyValue {
                                value: Some(V::DoubleValue(f64::NAN)),
                            }],
                        }),
                    ),
                ],
            })),
            severity_number: 99,
            ..Default::default()
        });
        records.push(OtlpRecord {
            body: anyv(V::BytesValue(vec![0xab, 0x01])),
            attributes: vec![
                kv("raw", V::BytesValue(vec![0xff])),
                KeyValue {
                    key: "empty".into(),
                    ..Default::default()
                },
            ],
            event_name: "login".into(),
            ..Default::default()
        });
        records.push(OtlpRecord {
            body: anyv(V::IntValue(7)),
            ..Default::default()
        });
        let req = request(
            records,
            vec![
                kv("host.name", s("h1")),
                kv(
                    "k8s",
                    V::KvlistValue(KeyValueList {
                        values: vec![kv("pod", s("p"))],
                    }),
                ),
            ],
        );
        let v = decode_otlp_logs_protobuf(&req.encode_to_vec(), NOW).unwrap();
        let times: Vec<_> = v.iter().take(3).map(|r| r.timestamp).collect();
        assert_eq!(times, [5, 6, NOW]);
        assert_eq!(v[0].service, "");
        assert_eq!(
            v[0].resource.get("host.name"),
            Some(&Value::Str("h1".into()))
        );
        assert_eq!(v[0].resource.get("k8s.pod"), Some(&Value::Str("p".into())));
        assert_eq!(
            v[0].attributes.get("otel.scope.name"),
            Some(&Value::Str("lib".into()))
        );
        assert_eq!(v[0].attributes.get("otel.scope.version"), None);
        assert_eq!(v[0].body, "");
        assert_eq!((v[3].trace_id, v[3].span_id), (None, None));
        assert_eq!(v[3].body, r#"{"a":1,"b":["NaN"]}"#);
        assert_eq!(v[3].severity_number, 0);
        assert_eq!(v[4].body, "ab01");
        assert_eq!(v[4].attributes.get("raw"), Some(&Value::Str("ff".into())));
        assert_eq!(v[4].attributes.get("empty"), None);
        assert_eq!(
            v[4].attributes.get("event.name"),
            Some(&Value::Str("login".into()))
        );
        assert_eq!(v[5].body, "7");
    }

    #[test]
    fn protobuf_errors() {
        let e = decode_otlp_logs_protobuf(b"\x0a\x05\x01", NOW)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cannot decode OTLP protobuf: "), "{e}");
        let bad = |trace: Vec<u8>, span: Vec<u8>| {
            let ok = OtlpRecord::default();
            let rec = OtlpRecord {
                trace_id: trace,
                span_id: span,
                ..Default::default()
            };
            let req = request(vec![ok.clone(), ok, rec], vec![]);
            decode_otlp_logs_protobuf(&req.encode_to_vec(), NOW)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            bad(vec![1; 5], vec![]),
            "cannot decode OTLP protobuf: resource 1, scope 1, log record 3: trace_id must be 16 bytes, got 5"
        );
        assert_eq!(
            bad(vec![1; 16], vec![1; 9]),
            "cannot decode OTLP protobuf: resource 1, scope 1, log record 3: span_id must be 8 bytes, got 9"
        );
        let req = request(
            vec![OtlpRecord {
                time_unix_nano: u64::MAX,
                ..Default::default()
            }],
            vec![],
        );
        assert_eq!(
            decode_otlp_logs_protobuf(&req.encode_to_vec(), NOW).unwrap_err().to_string(),
            format!("cannot decode OTLP protobuf: resource 1, scope 1, log record 1: time_unix_nano {} is past the year 2262", u64::MAX)
        );
    }

    fn arb_record() -> impl Strategy<Value = OtlpRecord> {
        (
            0u64..i64::MAX as u64,
            0i32..=24,
            "\\PC{0,10}",
            "\\PC{0,30}",
            proptest::collection::btree_map("[a-z]{1,6}", any::<i64>(), 0..4),
            proptest::option::of(any::<[u8; 16]>()),
            proptest::option::of(any::<[u8; 8]>()),
        )
            .prop_map(|(t, sev, text, body, attrs, trace, span)| OtlpRecord {
                time_unix_nano: t,
                severity_number: sev,
                severity_text: text,
                body: anyv(s(&body)),
                attributes: attrs
                    .into_iter()
                    .map(|(k, v)| kv(&k, any_value::Value::IntValue(v)))
                    .collect(),
                trace_id: trace.map(Vec::from).unwrap_or_default(),
                span_id: span.map(Vec::from).unwrap_or_default(),
                ..Default::default()
            })
    }

    proptest! {
        #[test]
        fn protobuf_round_trip(records in proptest::collection::vec(arb_record(), 0..5), svc in "[a-z]{1,8}") {
            let req = request(records.clone(), vec![kv("service.name", s(&svc))]);
            for got in [
                decode_otlp_logs_protobuf(&req.encode_to_vec(), NOW).unwrap(),
                decode_otlp_logs_json(serde_json::to_string(&req).unwrap().as_bytes(), NOW).unwrap(),
            ] {
                prop_assert_eq!(got.len(), records.len());
                for (r, want) in got.iter().zip(&records) {
                    let t = match want.time_unix_nano { 0 => NOW, t => t as i64 };
                    prop_assert_eq!(r.timestamp, t);
                    prop_assert_eq!(i32::from(r.severity_number), want.severity_number);
                    prop_assert_eq!(&r.severity_text, &want.severity_text);
                    prop_assert_eq!(&r.service, &svc);
                    prop_assert_eq!(Some(r.body.clone()), want.body.clone().map(any_text));
                    prop_assert_eq!(r.trace_id, TraceId::from_bytes(&want.trace_id).unwrap());
                    prop_assert_eq!(r.span_id, SpanId::from_bytes(&want.span_id).unwrap());
                    prop_assert_eq!(r.attributes.len(), want.attributes.len() + 1);
                    for a in &want.attributes {
                        let Some(any_value::Value::IntValue(i)) = a.value.as_ref().and_then(|v| v.value.clone()) else {
                            panic!("BUG: generated attributes are ints")
                        };
                        prop_assert_eq!(r.attributes.get(&a.key), Some(&Value::Int(i)));
                    }
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_otlp_logs_protobuf(&body, NOW);
            let _ = decode_otlp_logs_json(&body, NOW);
        }

        #[test]
        fn corrupted_encoding_never_panics(records in proptest::collection::vec(arb_record(), 1..3), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
            let mut bytes = request(records, vec![]).encode_to_vec();
            for (i, b) in flips {
                let i = i.index(bytes.len());
                bytes[i] ^= b;
            }
            let _ = decode_otlp_logs_protobuf(&bytes, NOW);
        }
    }
}
