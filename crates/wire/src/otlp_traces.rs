//! OTLP traces (`ExportTraceServiceRequest`) in protobuf and JSON to spans.
//!
//! Mapping (as [`crate::otlp_logs`] does for logs): resource attribute `service.name` →
//! `service` (not repeated in `resource`), other resource attributes → `resource`, span
//! attributes → `attributes` (kvlists flattened to dotted keys, arrays as JSON text, bytes as
//! lowercase hex), scope name/version → `scope_name`/`scope_version`, events (exception events
//! keep their `exception.*` attributes), links, status, kind and `trace_state` as sent. An
//! empty or all-zero `parent_span_id` is a root span. An event time of 0 is the span's start.
//!
//! A span that breaks an OTLP rule rejects the whole request; the error names its position
//! ("resource R, scope S, span N", 1-based) and the field.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use prost::Message;
use sightline_model::{
    Attributes, Span, SpanEvent, SpanId, SpanKind, SpanLink, StatusCode, TraceId,
};

use crate::error::{Error, Result};
use crate::otlp_logs::{any_text, flatten_kv};

/// Decodes an OTLP/protobuf traces export request.
///
/// # Errors
/// [`Error::OtlpProtobuf`] when prost rejects the body or a span breaks a rule listed in the
/// module documentation (named by resource, scope and span).
pub fn decode_otlp_traces_protobuf(body: &[u8], now_ns: i64) -> Result<Vec<Span>> {
    let req =
        ExportTraceServiceRequest::decode(body).map_err(|e| Error::OtlpProtobuf(e.to_string()))?;
    convert(req, now_ns).map_err(Error::OtlpProtobuf)
}

/// Decodes an OTLP/JSON traces export request (lowerCamelCase keys, hex ids, 64-bit integers
/// as strings or numbers, enums as numbers), via opentelemetry-proto's serde support.
///
/// # Errors
/// [`Error::OtlpJson`] when the JSON does not match the schema, or as for
/// [`decode_otlp_traces_protobuf`].
pub fn decode_otlp_traces_json(body: &[u8], now_ns: i64) -> Result<Vec<Span>> {
    let req: ExportTraceServiceRequest =
        serde_json::from_slice(body).map_err(|e| Error::OtlpJson(e.to_string()))?;
    convert(req, now_ns).map_err(Error::OtlpJson)
}

/// The spans of a decoded request. `Err` holds the reason with the span's position.
/// `now_ns` is not needed: spans without times are rejected rather than dated now.
fn convert(req: ExportTraceServiceRequest, _now_ns: i64) -> Result<Vec<Span>, String> {
    let mut out = Vec::new();
    for (ri, rs) in req.resource_spans.into_iter().enumerate() {
        let mut service = String::new();
        let mut resource = Attributes::new();
        for kv in rs.resource.map(|r| r.attributes).unwrap_or_default() {
            if kv.key == "service.name" {
                service = kv.value.map(any_text).unwrap_or_default();
            } else {
                flatten_kv(String::new(), kv, &mut resource);
            }
        }
        for (si, ss) in rs.scope_spans.into_iter().enumerate() {
            let (scope_name, scope_version) =
                ss.scope.map(|s| (s.name, s.version)).unwrap_or_default();
            for (ni, sp) in ss.spans.into_iter().enumerate() {
                let at = format!("resource {}, scope {}, span {}", ri + 1, si + 1, ni + 1);
                let fail = |reason: String| format!("{at}: {reason}");
                let trace_id = required_trace_id("trace_id", &sp.trace_id).map_err(fail)?;
                let span_id = required_span_id("span_id", &sp.span_id).map_err(fail)?;
                let parent_span_id = SpanId::from_bytes(&sp.parent_span_id).map_err(|_| {
                    fail(format!(
                        "parent_span_id must be 8 bytes or empty, got {}",
                        sp.parent_span_id.len()
                    ))
                })?;
                let start =
                    span_time("start_time_unix_nano", sp.start_time_unix_nano).map_err(fail)?;
                let end = span_time("end_time_unix_nano", sp.end_time_unix_nano).map_err(fail)?;
                if end < start {
                    return Err(fail(
                        "end_time_unix_nano before start_time_unix_nano".to_string(),
                    ));
                }
                let events = sp
                    .events
                    .into_iter()
                    .enumerate()
                    .map(|(ei, e)| {
                        event(e, start).map_err(|r| fail(format!("event {}: {r}", ei + 1)))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let links = sp
                    .links
                    .into_iter()
                    .enumerate()
                    .map(|(li, l)| link(l).map_err(|r| fail(format!("link {}: {r}", li + 1))))
                    .collect::<Result<Vec<_>, _>>()?;
                let (status_code, status_message) = sp
                    .status
                    .map(|s| (StatusCode::from_number(s.code), s.message))
                    .unwrap_or_default();
                out.push(Span {
                    trace_id,
                    span_id,
                    parent_span_id,
                    trace_state: sp.trace_state,
                    name: sp.name,
                    kind: SpanKind::from_number(sp.kind),
                    start,
                    end,
                    status_code,
                    status_message,
                    service: service.clone(),
                    resource: resource.clone(),
                    scope_name: scope_name.clone(),
                    scope_version: scope_version.clone(),
                    attributes: attributes(sp.attributes),
                    events,
                    links,
                });
            }
        }
    }
    Ok(out)
}

fn attributes(kvs: Vec<opentelemetry_proto::tonic::common::v1::KeyValue>) -> Attributes {
    let mut attrs = Attributes::new();
    for kv in kvs {
        flatten_kv(String::new(), kv, &mut attrs);
    }
    attrs
}

/// A trace id that must be present: 16 bytes, not all zero.
fn required_trace_id(field: &str, b: &[u8]) -> Result<TraceId, String> {
    match TraceId::from_bytes(b) {
        Ok(Some(id)) => Ok(id),
        Ok(None) if b.is_empty() => Err(format!("{field} is missing")),
        Ok(None) => Err(format!("{field} is all zero")),
        Err(_) => Err(format!("{field} must be 16 bytes, got {}", b.len())),
    }
}

/// A span id that must be present: 8 bytes, not all zero.
fn required_span_id(field: &str, b: &[u8]) -> Result<SpanId, String> {
    match SpanId::from_bytes(b) {
        Ok(Some(id)) => Ok(id),
        Ok(None) if b.is_empty() => Err(format!("{field} is missing")),
        Ok(None) => Err(format!("{field} is all zero")),
        Err(_) => Err(format!("{field} must be 8 bytes, got {}", b.len())),
    }
}

/// A span start or end: not 0 (unset) and representable as i64 nanoseconds.
fn span_time(field: &str, v: u64) -> Result<i64, String> {
    match i64::try_from(v) {
        Ok(0) => Err(format!("{field} is 0")),
        Ok(t) => Ok(t),
        Err(_) => Err(format!("{field} {v} is past the year 2262")),
    }
}

fn event(e: Event, span_start: i64) -> Result<SpanEvent, String> {
    let time = match i64::try_from(e.time_unix_nano) {
        Ok(0) => span_start,
        Ok(t) => t,
        Err(_) => {
            return Err(format!(
                "time_unix_nano {} is past the year 2262",
                e.time_unix_nano
            ))
        }
    };
    Ok(SpanEvent {
        time,
        name: e.name,
        attributes: attributes(e.attributes),
    })
}

fn link(l: Link) -> Result<SpanLink, String> {
    let trace_id = TraceId::from_bytes(&l.trace_id)
        .map_err(|_| format!("trace_id must be 16 bytes, got {}", l.trace_id.len()))?;
    let span_id = SpanId::from_bytes(&l.span_id)
        .map_err(|_| format!("span_id must be 8 bytes, got {}", l.span_id.len()))?;
    Ok(SpanLink {
        trace_id,
        span_id,
        trace_state: l.trace_state,
        attributes: attributes(l.attributes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{
        any_value, AnyValue, InstrumentationScope, KeyValue, KeyValueList,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{
        ResourceSpans, ScopeSpans, Span as OtlpSpan, Status,
    };
    use proptest::prelude::*;
    use sightline_model::Value;

    const NOW: i64 = 1_700_000_000_000_000_000;
    const T0: u64 = 1_544_712_660_000_000_000;

    fn kv(key: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    fn s(x: &str) -> any_value::Value {
        any_value::Value::StringValue(x.into())
    }

    fn good_span() -> OtlpSpan {
        OtlpSpan {
            trace_id: (1..=16).collect(),
            span_id: (1..=8).collect(),
            name: "op".into(),
            start_time_unix_nano: T0,
            end_time_unix_nano: T0 + 1_000,
            ..Default::default()
        }
    }

    fn request(spans: Vec<OtlpSpan>, resource: Vec<KeyValue>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "lib".into(),
                        version: "1.2".into(),
                        ..Default::default()
                    }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn err_of(sp: OtlpSpan) -> String {
        let body = request(vec![good_span(), sp], vec![]).encode_to_vec();
        decode_otlp_traces_protobuf(&body, NOW)
            .unwrap_err()
            .to_string()
    }

    /// The OTLP spec's `examples/trace.json` (opentelemetry-proto), with a parent, an
    /// exception event, a link and an error status added.
    const SPEC_EXAMPLE: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}},{"key":"host.name","value":{"stringValue":"h1"}}]},
      "scopeSpans":[{"scope":{"name":"my.library","version":"1.0.0","attributes":[{"key":"my.scope.attribute","value":{"stringValue":"some scope attribute"}}]},
      "spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","parentSpanId":"EEE19B7EC3C1B173","name":"I'm a server span",
        "startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000","kind":2,"traceState":"k=v",
        "attributes":[{"key":"my.span.attr","value":{"stringValue":"some value"}},{"key":"n","value":{"intValue":"7"}},
          {"key":"m","value":{"kvlistValue":{"values":[{"key":"a","value":{"boolValue":true}}]}}}],
        "events":[{"timeUnixNano":"1544712660500000000","name":"exception","attributes":[{"key":"exception.type","value":{"stringValue":"ValueError"}},
          {"key":"exception.message","value":{"stringValue":"bad"}},{"key":"exception.stacktrace","value":{"stringValue":"Traceback..."}}]}],
        "links":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","traceState":"x=y","attributes":[{"key":"l","value":{"doubleValue":1.5}}]}],
        "status":{"code":2,"message":"boom"}}]}]}]}"#;

    #[test]
    fn spec_json_example() {
        for body in [
            SPEC_EXAMPLE.to_string(),
            // The older form: 64-bit integers as JSON numbers, lowercase hex ids.
            SPEC_EXAMPLE
                .replace(r#""1544712660000000000""#, "1544712660000000000")
                .replace(r#""1544712661000000000""#, "1544712661000000000")
                .replace(
                    "5B8EFFF798038103D269B633813FC60C",
                    "5b8efff798038103d269b633813fc60c",
                ),
        ] {
            let v = decode_otlp_traces_json(body.as_bytes(), NOW).unwrap();
            assert_eq!(v.len(), 1);
            let sp = &v[0];
            assert_eq!(sp.trace_id.to_hex(), "5b8efff798038103d269b633813fc60c");
            assert_eq!(sp.span_id.to_hex(), "eee19b7ec3c1b174");
            assert_eq!(sp.parent_span_id.unwrap().to_hex(), "eee19b7ec3c1b173");
            assert_eq!(sp.name, "I'm a server span");
            assert_eq!(sp.kind, SpanKind::Server);
            assert_eq!(sp.trace_state, "k=v");
            assert_eq!(sp.start, 1_544_712_660_000_000_000);
            assert_eq!(sp.duration(), 1_000_000_000);
            assert_eq!(sp.service, "my.service");
            assert_eq!(sp.resource.get("host.name"), Some(&Value::Str("h1".into())));
            assert_eq!(sp.resource.len(), 1);
            assert_eq!(
                (sp.scope_name.as_str(), sp.scope_version.as_str()),
                ("my.library", "1.0.0")
            );
            assert_eq!(sp.attributes.get("n"), Some(&Value::Int(7)));
            assert_eq!(sp.attributes.get("m.a"), Some(&Value::Bool(true)));
            assert_eq!(sp.attributes.len(), 3);
            assert_eq!(sp.status_code, StatusCode::Error);
            assert_eq!(sp.status_message, "boom");
            assert!(sp.is_error());
            let e = &sp.events[0];
            assert_eq!(
                (e.time, e.name.as_str()),
                (1_544_712_660_500_000_000, "exception")
            );
            assert_eq!(
                e.attributes.get("exception.type"),
                Some(&Value::Str("ValueError".into()))
            );
            assert_eq!(
                e.attributes.get("exception.message"),
                Some(&Value::Str("bad".into()))
            );
            assert_eq!(
                e.attributes.get("exception.stacktrace"),
                Some(&Value::Str("Traceback...".into()))
            );
            let l = &sp.links[0];
            assert_eq!(
                l.trace_id.unwrap().to_hex(),
                "0102030405060708090a0b0c0d0e0f10"
            );
            assert_eq!(l.span_id.unwrap().to_hex(), "0102030405060708");
            assert_eq!(l.trace_state, "x=y");
            assert_eq!(l.attributes.get("l"), Some(&Value::Float(1.5)));
        }
    }

    #[test]
    fn protobuf_mapping() {
        let mut sp = good_span();
        sp.parent_span_id = vec![0; 8];
        sp.kind = 99;
        sp.status = Some(Status {
            code: 1,
            message: String::new(),
        });
        sp.attributes = vec![kv(
            "k",
            any_value::Value::KvlistValue(KeyValueList {
                values: vec![kv("x", s("y"))],
            }),
        )];
        sp.events = vec![Event {
            time_unix_nano: 0,
            name: "e".into(),
            ..Default::default()
        }];
        sp.links = vec![Link::default()];
        let req = request(
            vec![sp],
            vec![
                kv("service.name", s("api")),
                kv("deployment.environment", s("prod")),
            ],
        );
        let v = decode_otlp_traces_protobuf(&req.encode_to_vec(), NOW).unwrap();
        let sp = &v[0];
        assert_eq!(sp.parent_span_id, None, "an all-zero parent is a root");
        assert_eq!(sp.kind, SpanKind::Unspecified);
        assert_eq!(sp.status_code, StatusCode::Ok);
        assert_eq!(sp.service, "api");
        assert_eq!(
            sp.resource.get("deployment.environment"),
            Some(&Value::Str("prod".into()))
        );
        assert_eq!(sp.resource.get("service.name"), None);
        assert_eq!(
            (sp.scope_name.as_str(), sp.scope_version.as_str()),
            ("lib", "1.2")
        );
        assert_eq!(sp.attributes.get("k.x"), Some(&Value::Str("y".into())));
        assert_eq!(
            sp.events[0].time, sp.start,
            "event time 0 is the span's start"
        );
        assert_eq!((sp.links[0].trace_id, sp.links[0].span_id), (None, None));
    }

    #[test]
    fn empty_requests() {
        assert!(decode_otlp_traces_json(b"{}", NOW).unwrap().is_empty());
        assert!(decode_otlp_traces_protobuf(b"", NOW).unwrap().is_empty());
        let body = br#"{"resourceSpans":[{"future":1,"scopeSpans":[{"spans":[]}]}]}"#;
        assert!(decode_otlp_traces_json(body, NOW).unwrap().is_empty());
    }

    #[test]
    fn id_errors() {
        let p = "cannot decode OTLP protobuf: resource 1, scope 1, span 2: ";
        let mut sp = good_span();
        sp.trace_id = vec![1; 15];
        assert_eq!(err_of(sp), format!("{p}trace_id must be 16 bytes, got 15"));
        let mut sp = good_span();
        sp.trace_id = vec![0; 16];
        assert_eq!(err_of(sp), format!("{p}trace_id is all zero"));
        let mut sp = good_span();
        sp.trace_id = vec![];
        assert_eq!(err_of(sp), format!("{p}trace_id is missing"));
        let mut sp = good_span();
        sp.span_id = vec![1; 9];
        assert_eq!(err_of(sp), format!("{p}span_id must be 8 bytes, got 9"));
        let mut sp = good_span();
        sp.span_id = vec![0; 8];
        assert_eq!(err_of(sp), format!("{p}span_id is all zero"));
        let mut sp = good_span();
        sp.parent_span_id = vec![1; 4];
        assert_eq!(
            err_of(sp),
            format!("{p}parent_span_id must be 8 bytes or empty, got 4")
        );
        let mut sp = good_span();
        sp.links = vec![
            Link::default(),
            Link {
                trace_id: vec![1; 3],
                ..Default::default()
            },
        ];
        assert_eq!(
            err_of(sp),
            format!("{p}link 2: trace_id must be 16 bytes, got 3")
        );
        let mut sp = good_span();
        sp.links = vec![Link {
            span_id: vec![1; 3],
            ..Default::default()
        }];
        assert_eq!(
            err_of(sp),
            format!("{p}link 1: span_id must be 8 bytes, got 3")
        );
    }

    #[test]
    fn time_errors() {
        let p = "cannot decode OTLP protobuf: resource 1, scope 1, span 2: ";
        let mut sp = good_span();
        sp.start_time_unix_nano = 0;
        assert_eq!(err_of(sp), format!("{p}start_time_unix_nano is 0"));
        let mut sp = good_span();
        sp.end_time_unix_nano = 0;
        assert_eq!(err_of(sp), format!("{p}end_time_unix_nano is 0"));
        let mut sp = good_span();
        sp.end_time_unix_nano = u64::MAX;
        assert_eq!(
            err_of(sp),
            format!("{p}end_time_unix_nano {} is past the year 2262", u64::MAX)
        );
        let mut sp = good_span();
        sp.start_time_unix_nano = 1 << 63;
        assert!(
            err_of(sp).ends_with("start_time_unix_nano 9223372036854775808 is past the year 2262")
        );
        let mut sp = good_span();
        sp.end_time_unix_nano = T0 - 1;
        assert_eq!(
            err_of(sp),
            format!("{p}end_time_unix_nano before start_time_unix_nano")
        );
        let mut sp = good_span();
        sp.events = vec![
            Event::default(),
            Event {
                time_unix_nano: u64::MAX,
                ..Default::default()
            },
        ];
        assert!(err_of(sp).starts_with(&format!("{p}event 2: time_unix_nano ")));
        // A zero-length span is fine.
        let mut sp = good_span();
        sp.end_time_unix_nano = T0;
        let v = decode_otlp_traces_protobuf(&request(vec![sp], vec![]).encode_to_vec(), NOW);
        assert_eq!(v.unwrap()[0].duration(), 0);
    }

    #[test]
    fn json_errors_name_position() {
        let body = r#"{"resourceSpans":[{"scopeSpans":[{},{"spans":[{"traceId":"0102","spanId":"0102030405060708","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;
        assert_eq!(
            decode_otlp_traces_json(body.as_bytes(), NOW).unwrap_err().to_string(),
            "cannot decode OTLP JSON: resource 1, scope 2, span 1: trace_id must be 16 bytes, got 2"
        );
        for bad in [
            "nope",
            r#"{"resourceSpans":5}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"zz"}]}]}]}"#,
        ] {
            let e = decode_otlp_traces_json(bad.as_bytes(), NOW)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("cannot decode OTLP JSON: "), "{e}");
        }
        let e = decode_otlp_traces_protobuf(&[0xff, 0xff, 0xff], NOW).unwrap_err();
        assert!(matches!(e, Error::OtlpProtobuf(_)), "{e}");
    }

    /// A span as the property test generates it: what goes in and what must come out.
    #[derive(Debug, Clone)]
    struct Gen {
        trace: [u8; 16],
        span: [u8; 8],
        parent: Option<[u8; 8]>,
        name: String,
        kind: i32,
        start: u64,
        dur: u64,
        status: i32,
        msg: String,
        attrs: Vec<(String, i64)>,
        events: Vec<(u64, String)>,
    }

    fn nonzero<const N: usize>() -> impl Strategy<Value = [u8; N]> {
        prop::array::uniform::<_, N>(any::<u8>())
            .prop_filter("not all zero", |a| a.iter().any(|b| *b != 0))
    }

    fn gen() -> impl Strategy<Value = Gen> {
        (
            (
                nonzero::<16>(),
                nonzero::<8>(),
                prop::option::of(nonzero::<8>()),
            ),
            (
                "[a-z /]{0,12}",
                0..6i32,
                1..(1u64 << 62),
                0..(1u64 << 40),
                0..3i32,
                "\\PC{0,8}",
            ),
            prop::collection::vec(("[a-z.]{1,6}", any::<i64>()), 0..4),
            prop::collection::vec((1..(1u64 << 62), "[a-z]{0,6}"), 0..3),
        )
            .prop_map(
                |((trace, span, parent), (name, kind, start, dur, status, msg), attrs, events)| {
                    Gen {
                        trace,
                        span,
                        parent,
                        name,
                        kind,
                        start,
                        dur,
                        status,
                        msg,
                        attrs,
                        events,
                    }
                },
            )
    }

    fn to_otlp(g: &Gen) -> OtlpSpan {
        OtlpSpan {
            trace_id: g.trace.to_vec(),
            span_id: g.span.to_vec(),
            parent_span_id: g.parent.map(|p| p.to_vec()).unwrap_or_default(),
            name: g.name.clone(),
            kind: g.kind,
            start_time_unix_nano: g.start,
            end_time_unix_nano: g.start + g.dur,
            status: Some(Status {
                code: g.status,
                message: g.msg.clone(),
            }),
            attributes: g
                .attrs
                .iter()
                .map(|(k, v)| kv(k, any_value::Value::IntValue(*v)))
                .collect(),
            events: g
                .events
                .iter()
                .map(|(t, n)| Event {
                    time_unix_nano: *t,
                    name: n.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn expected(g: &Gen) -> Span {
        Span {
            trace_id: TraceId(g.trace),
            span_id: SpanId(g.span),
            parent_span_id: g.parent.map(SpanId),
            name: g.name.clone(),
            kind: SpanKind::from_number(g.kind),
            start: g.start as i64,
            end: (g.start + g.dur) as i64,
            status_code: StatusCode::from_number(g.status),
            status_message: g.msg.clone(),
            service: "svc".into(),
            scope_name: "lib".into(),
            scope_version: "1.2".into(),
            attributes: Attributes::from_pairs(
                g.attrs.iter().map(|(k, v)| (k.clone(), Value::Int(*v))),
            ),
            events: g
                .events
                .iter()
                .map(|(t, n)| SpanEvent {
                    time: *t as i64,
                    name: n.clone(),
                    attributes: Attributes::new(),
                })
                .collect(),
            ..Default::default()
        }
    }

    proptest! {
        #[test]
        fn protobuf_and_json_roundtrip(gens in prop::collection::vec(gen(), 0..5)) {
            let req = request(gens.iter().map(to_otlp).collect(), vec![kv("service.name", s("svc"))]);
            let want: Vec<Span> = gens.iter().map(expected).collect();
            prop_assert_eq!(&decode_otlp_traces_protobuf(&req.encode_to_vec(), NOW).unwrap(), &want);
            let json = serde_json::to_vec(&req).unwrap();
            prop_assert_eq!(&decode_otlp_traces_json(&json, NOW).unwrap(), &want);
        }

        #[test]
        fn garbage_never_panics(body in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_otlp_traces_protobuf(&body, NOW);
            let _ = decode_otlp_traces_json(&body, NOW);
        }

        #[test]
        fn corrupted_protobuf_never_panics(g in gen(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut body = request(vec![to_otlp(&g)], vec![]).encode_to_vec();
            let i = pos.index(body.len());
            body[i] = byte;
            let _ = decode_otlp_traces_protobuf(&body, NOW);
            body.truncate(i);
            let _ = decode_otlp_traces_protobuf(&body, NOW);
        }

        #[test]
        fn garbage_json_is_an_error(s in "[\\[\\]{}\":,a-z0-9 ]{0,60}") {
            // Any of these either decodes or is a clean error naming OTLP JSON.
            if let Err(e) = decode_otlp_traces_json(s.as_bytes(), NOW) {
                prop_assert!(e.to_string().starts_with("cannot decode OTLP JSON: "));
            }
        }
    }
}
