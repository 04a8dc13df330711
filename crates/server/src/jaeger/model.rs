//! Jaeger's JSON shapes (jaeger-query's `model/json`: `Trace`, `Span`, `KeyValue`,
//! `Process`, `DependencyLink`, and the `structuredResponse` envelope), built from our spans
//! the way Jaeger's OTLP translator maps OpenTelemetry spans.
//!
//! Hand-written with `serde_json::json!` rather than derived structs: the shape is Jaeger's
//! (camelCase, typed key/value lists, `null` warnings), not a mirror of our model, and
//! building it directly keeps each rule next to the field it shapes.

use serde_json::{json, Map, Value as JsonValue};
use sightline_model::{Attributes, Span, SpanKind, StatusCode, Value};
use sightline_query::traces::{Dependency, Operation};

/// `{"data": ..., "total": N, "limit": 0, "offset": 0, "errors": null}`. jaeger-query fills
/// `total` for the service and operation lists and leaves it 0 for traces and dependencies.
pub fn envelope(data: JsonValue, total: usize) -> JsonValue {
    json!({"data": data, "total": total, "limit": 0, "offset": 0, "errors": null})
}

/// An error answer: `data` null and one error with the HTTP status as `code`.
pub fn error_envelope(code: u16, msg: &str) -> JsonValue {
    json!({
        "data": null, "total": 0, "limit": 0, "offset": 0,
        "errors": [{"code": code, "msg": msg}],
    })
}

/// A typed key/value: `{"key", "type": "string"|"bool"|"int64"|"float64", "value"}`.
/// A NaN or infinite float (JSON has none) is shown as a string.
pub fn kv(key: &str, v: &Value) -> JsonValue {
    let (ty, value) = match v {
        Value::Str(s) => ("string", JsonValue::String(s.clone())),
        Value::Int(i) => ("int64", JsonValue::from(*i)),
        Value::Bool(b) => ("bool", JsonValue::Bool(*b)),
        Value::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => ("float64", JsonValue::Number(n)),
            None => ("string", JsonValue::String(f.to_string())),
        },
    };
    json!({"key": key, "type": ty, "value": value})
}

fn kv_str(key: &str, v: &str) -> JsonValue {
    json!({"key": key, "type": "string", "value": v})
}

fn kvs(a: &Attributes) -> Vec<JsonValue> {
    a.iter().map(|(k, v)| kv(k, v)).collect()
}

/// Nanoseconds to Jaeger's microseconds (floor, so a span never appears to start later).
pub fn micros(ns: i64) -> i64 {
    ns.div_euclid(1000)
}

/// Jaeger's spelling of a span kind (the `span.kind` tag and `spanKind` of operations):
/// `server`, `client`, ...; empty for unspecified, which Jaeger does not tag.
pub fn kind_name(k: SpanKind) -> &'static str {
    match k {
        SpanKind::Unspecified => "",
        k => k.as_str(),
    }
}

/// The span's tags: its attributes, then what Jaeger's OTLP translator adds from the span's
/// fields — `otel.scope.name`/`otel.scope.version`, `span.kind`, `otel.status_code`
/// (`OK`/`ERROR` when set), `otel.status_description`, `error: true` for an error span, and
/// `w3c.tracestate`.
pub fn span_tags(s: &Span) -> Vec<JsonValue> {
    let mut tags = kvs(&s.attributes);
    if !s.scope_name.is_empty() {
        tags.push(kv_str("otel.scope.name", &s.scope_name));
    }
    if !s.scope_version.is_empty() {
        tags.push(kv_str("otel.scope.version", &s.scope_version));
    }
    if s.kind != SpanKind::Unspecified {
        tags.push(kv_str("span.kind", kind_name(s.kind)));
    }
    match s.status_code {
        StatusCode::Unset => {}
        StatusCode::Ok => tags.push(kv_str("otel.status_code", "OK")),
        StatusCode::Error => tags.push(kv_str("otel.status_code", "ERROR")),
    }
    if !s.status_message.is_empty() {
        tags.push(kv_str("otel.status_description", &s.status_message));
    }
    if s.is_error() {
        tags.push(kv("error", &Value::Bool(true)));
    }
    if !s.trace_state.is_empty() {
        tags.push(kv_str("w3c.tracestate", &s.trace_state));
    }
    tags
}

/// One span; `process_id` names its entry in the trace's `processes`.
pub fn span_json(s: &Span, process_id: &str) -> JsonValue {
    let trace_id = s.trace_id.to_hex();
    let mut refs = Vec::new();
    if let Some(p) = s.parent_span_id {
        refs.push(json!({"refType": "CHILD_OF", "traceID": trace_id, "spanID": p.to_hex()}));
    }
    for l in &s.links {
        if let (Some(t), Some(sp)) = (l.trace_id, l.span_id) {
            refs.push(
                json!({"refType": "FOLLOWS_FROM", "traceID": t.to_hex(), "spanID": sp.to_hex()}),
            );
        }
    }
    let logs: Vec<JsonValue> = s
        .events
        .iter()
        .map(|e| {
            let mut fields = vec![kv_str("event", &e.name)];
            fields.extend(kvs(&e.attributes));
            json!({"timestamp": micros(e.time), "fields": fields})
        })
        .collect();
    json!({
        "traceID": trace_id,
        "spanID": s.span_id.to_hex(),
        "operationName": s.name,
        "references": refs,
        "startTime": micros(s.start),
        "duration": s.duration() / 1000,
        "tags": span_tags(s),
        "logs": logs,
        "processID": process_id,
        "warnings": null,
        // Sampled: every span stored here was kept.
        "flags": 1,
    })
}

/// One trace (`spans` non-empty, all of one trace): spans by start time, one process per
/// distinct (service, resource) named `p1`, `p2`, ... in order of first appearance.
///
/// # Panics
/// When `spans` is empty (a trace has at least one span; callers answer 404 instead).
pub fn trace_json(spans: &[Span]) -> JsonValue {
    let first = spans
        .first()
        .expect("BUG: a Jaeger trace is rendered from at least one span");
    let mut sorted: Vec<&Span> = spans.iter().collect();
    sorted.sort_by_key(|s| (s.start, s.span_id));
    // Few distinct processes per trace: a linear search beats hashing attribute lists.
    let mut processes: Vec<(&str, &Attributes)> = Vec::new();
    let mut out_spans = Vec::with_capacity(sorted.len());
    for s in sorted {
        let key = (s.service.as_str(), &s.resource);
        let idx = match processes.iter().position(|p| *p == key) {
            Some(i) => i,
            None => {
                processes.push(key);
                processes.len() - 1
            }
        };
        out_spans.push(span_json(s, &format!("p{}", idx + 1)));
    }
    let mut procs = Map::new();
    for (i, (service, resource)) in processes.into_iter().enumerate() {
        procs.insert(
            format!("p{}", i + 1),
            json!({"serviceName": service, "tags": kvs(resource)}),
        );
    }
    json!({
        "traceID": first.trace_id.to_hex(),
        "spans": out_spans,
        "processes": procs,
        "warnings": null,
    })
}

/// `/api/traces` and `/api/traces/<id>`: whole traces, plus per-trace errors (a trace id
/// asked for with `traceID=` that is not stored: `{"msg": "trace not found", "traceID"}`).
pub fn traces_response(traces: &[Vec<Span>], missing: &[String]) -> JsonValue {
    let data: Vec<JsonValue> = traces
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| trace_json(t))
        .collect();
    let mut out = envelope(JsonValue::Array(data), 0);
    if !missing.is_empty() {
        out["errors"] = missing
            .iter()
            .map(|id| json!({"msg": "trace not found", "traceID": id}))
            .collect();
    }
    out
}

/// `/api/services`: names, `total` their number.
pub fn services_response(services: &[String]) -> JsonValue {
    envelope(json!(services), services.len())
}

/// `/api/services/<s>/operations` (legacy): distinct operation names, sorted.
pub fn operation_names_response(ops: &[Operation]) -> JsonValue {
    let mut names: Vec<&str> = ops.iter().map(|o| o.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    envelope(json!(names), names.len())
}

/// `/api/operations?service=`: `[{"name", "spanKind"}]`.
pub fn operations_response(ops: &[Operation]) -> JsonValue {
    let data: Vec<JsonValue> = ops
        .iter()
        .map(|o| json!({"name": o.name, "spanKind": kind_name(o.span_kind)}))
        .collect();
    envelope(JsonValue::Array(data), ops.len())
}

/// `/api/dependencies`: `[{"parent", "child", "callCount"}]`.
pub fn dependencies_response(deps: &[Dependency]) -> JsonValue {
    let data: Vec<JsonValue> = deps
        .iter()
        .map(|d| json!({"parent": d.parent, "child": d.child, "callCount": d.call_count}))
        .collect();
    envelope(JsonValue::Array(data), 0)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::PathBuf;

    use sightline_model::{SpanEvent, SpanId, SpanLink, TraceId};

    use super::*;

    /// 2023-11-14T22:13:20Z.
    const T0: i64 = 1_700_000_000_000_000_000;
    const MS: i64 = 1_000_000;

    fn attrs(pairs: &[(&str, Value)]) -> Attributes {
        Attributes::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())))
    }

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    fn trace_a() -> Vec<Span> {
        let tid = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        let web1 = attrs(&[
            ("host.name", s("web-1")),
            ("telemetry.sdk.language", s("python")),
        ]);
        let root = Span {
            trace_id: tid,
            span_id: SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            name: "GET /checkout".into(),
            kind: SpanKind::Server,
            start: T0,
            end: T0 + 120 * MS + 499,
            service: "frontend".into(),
            resource: web1.clone(),
            scope_name: "opentelemetry.instrumentation.flask".into(),
            scope_version: "0.48b0".into(),
            attributes: attrs(&[
                ("http.method", s("GET")),
                ("http.status_code", Value::Int(200)),
            ]),
            ..Span::default()
        };
        let call = Span {
            trace_id: tid,
            span_id: SpanId::from_hex("b7ad6b7169203331").unwrap(),
            parent_span_id: Some(root.span_id),
            name: "POST /pay".into(),
            kind: SpanKind::Client,
            start: T0 + 10 * MS,
            end: T0 + 90 * MS,
            status_code: StatusCode::Ok,
            service: "frontend".into(),
            resource: web1.clone(),
            scope_name: "opentelemetry.instrumentation.requests".into(),
            attributes: attrs(&[("http.url", s("http://payments/pay"))]),
            links: vec![
                SpanLink {
                    trace_id: Some(TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap()),
                    span_id: Some(SpanId::from_hex("53995c3f42cd8ad8").unwrap()),
                    ..SpanLink::default()
                },
                // A link without ids is no reference.
                SpanLink::default(),
            ],
            ..Span::default()
        };
        let pay = Span {
            trace_id: tid,
            span_id: SpanId::from_hex("e457b5a2e4d86bd1").unwrap(),
            parent_span_id: Some(call.span_id),
            name: "POST /pay".into(),
            kind: SpanKind::Server,
            start: T0 + 12 * MS,
            end: T0 + 88 * MS,
            status_code: StatusCode::Error,
            status_message: "card declined".into(),
            service: "payments".into(),
            resource: attrs(&[("host.name", s("pay-1")), ("process.pid", Value::Int(42))]),
            attributes: attrs(&[
                ("retry.backoff", Value::Float(1.5)),
                ("cached", Value::Bool(false)),
            ]),
            events: vec![SpanEvent {
                time: T0 + 80 * MS + 250_000,
                name: "exception".into(),
                attributes: attrs(&[
                    ("exception.type", s("CardDeclined")),
                    ("exception.message", s("insufficient funds")),
                ]),
            }],
            ..Span::default()
        };
        // Same service on another host: a process of its own.
        let render = Span {
            trace_id: tid,
            span_id: SpanId::from_hex("1a2b3c4d5e6f7081").unwrap(),
            parent_span_id: Some(root.span_id),
            trace_state: "vendor=1".into(),
            name: "render".into(),
            kind: SpanKind::Internal,
            start: T0 + 95 * MS,
            end: T0 + 118 * MS,
            service: "frontend".into(),
            resource: attrs(&[
                ("host.name", s("web-2")),
                ("telemetry.sdk.language", s("python")),
            ]),
            ..Span::default()
        };
        // Out of order on purpose: rendering sorts by start.
        vec![render, pay, root, call]
    }

    fn trace_b() -> Vec<Span> {
        vec![Span {
            trace_id: TraceId::from_hex("5b8efff798038103d269b633813fc60c").unwrap(),
            span_id: SpanId::from_hex("eee19b7ec3c1b174").unwrap(),
            name: "GET /health".into(),
            kind: SpanKind::Unspecified,
            start: T0 + 3_000 * MS,
            end: T0 + 3_000 * MS + 800_000,
            service: "frontend".into(),
            resource: attrs(&[("host.name", s("web-1"))]),
            ..Span::default()
        }]
    }

    fn golden_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/jaeger")
    }

    /// Compares with `testdata/jaeger/<name>`; `UPDATE_GOLDEN=1` rewrites the file instead
    /// (review the diff).
    fn golden(name: &str, got: &JsonValue) {
        let path = golden_dir().join(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
            std::fs::create_dir_all(golden_dir()).unwrap();
            let text = serde_json::to_string_pretty(got).unwrap() + "\n";
            std::fs::write(&path, text).unwrap();
            return;
        }
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 creates it)", path.display()));
        let want: JsonValue = serde_json::from_str(&text).unwrap();
        assert_eq!(
            got, &want,
            "{name} differs from the golden file (UPDATE_GOLDEN=1 to regenerate, then review)"
        );
    }

    fn operations() -> Vec<Operation> {
        vec![
            Operation {
                name: "GET /checkout".into(),
                span_kind: SpanKind::Server,
            },
            Operation {
                name: "GET /health".into(),
                span_kind: SpanKind::Unspecified,
            },
            Operation {
                name: "POST /pay".into(),
                span_kind: SpanKind::Client,
            },
            Operation {
                name: "render".into(),
                span_kind: SpanKind::Internal,
            },
        ]
    }

    #[test]
    fn responses_match_golden_files() {
        golden("trace.json", &traces_response(&[trace_a()], &[]));
        golden(
            "search.json",
            &traces_response(&[trace_b(), trace_a()], &[]),
        );
        golden(
            "services.json",
            &services_response(&["frontend".into(), "payments".into()]),
        );
        golden("operations.json", &operations_response(&operations()));
        let mut legacy = operations();
        legacy.push(Operation {
            name: "POST /pay".into(),
            span_kind: SpanKind::Server,
        });
        golden("operation-names.json", &operation_names_response(&legacy));
        golden(
            "dependencies.json",
            &dependencies_response(&[Dependency {
                parent: "frontend".into(),
                child: "payments".into(),
                call_count: 1,
                error_count: 1,
            }]),
        );
        golden("error.json", &error_envelope(404, "trace not found"));
    }

    fn is_hex(v: &JsonValue, len: usize) -> bool {
        v.as_str().is_some_and(|s| {
            s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
    }

    /// Unix microseconds between 2001 and 5138: a ns or ms value is far outside.
    fn is_micros(v: &JsonValue) -> bool {
        v.as_i64()
            .is_some_and(|t| (1_000_000_000_000_000..100_000_000_000_000_000).contains(&t))
    }

    fn check_kv(kv: &JsonValue) {
        let obj = kv.as_object().unwrap();
        assert_eq!(obj.len(), 3, "{kv}");
        assert!(obj["key"].is_string(), "{kv}");
        let ok = match obj["type"].as_str().unwrap() {
            "string" => obj["value"].is_string(),
            "bool" => obj["value"].is_boolean(),
            "int64" => obj["value"].is_i64(),
            "float64" => obj["value"].is_f64(),
            _ => false,
        };
        assert!(ok, "value does not match its type: {kv}");
    }

    fn check_envelope(r: &JsonValue) {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, ["data", "errors", "limit", "offset", "total"]);
    }

    /// Jaeger's structural rules for a trace response.
    fn check_traces(r: &JsonValue) {
        check_envelope(r);
        for t in r["data"].as_array().unwrap() {
            assert!(is_hex(&t["traceID"], 32), "{}", t["traceID"]);
            assert_eq!(t["warnings"], JsonValue::Null);
            let processes = t["processes"].as_object().unwrap();
            for p in processes.values() {
                assert!(p["serviceName"].is_string());
                p["tags"].as_array().unwrap().iter().for_each(check_kv);
            }
            let spans = t["spans"].as_array().unwrap();
            assert!(!spans.is_empty());
            let ids: HashSet<&str> = spans
                .iter()
                .map(|s| s["spanID"].as_str().unwrap())
                .collect();
            assert_eq!(ids.len(), spans.len(), "span ids are unique");
            let mut used = HashSet::new();
            let mut last_start = 0;
            for s in spans {
                assert_eq!(s["traceID"], t["traceID"]);
                assert!(is_hex(&s["spanID"], 16));
                assert!(s["operationName"].is_string());
                let pid = s["processID"].as_str().unwrap();
                assert!(processes.contains_key(pid), "process {pid} missing");
                used.insert(pid);
                assert!(is_micros(&s["startTime"]), "startTime {}", s["startTime"]);
                let start = s["startTime"].as_i64().unwrap();
                assert!(start >= last_start, "spans are in start order");
                last_start = start;
                let duration = s["duration"].as_i64().unwrap();
                assert!(
                    (0..3_600_000_000).contains(&duration),
                    "duration {duration} µs"
                );
                assert_eq!(s["flags"], 1);
                assert_eq!(s["warnings"], JsonValue::Null);
                for r in s["references"].as_array().unwrap() {
                    assert!(is_hex(&r["traceID"], 32) && is_hex(&r["spanID"], 16));
                    match r["refType"].as_str().unwrap() {
                        "CHILD_OF" => {
                            assert_eq!(r["traceID"], t["traceID"]);
                            assert!(ids.contains(r["spanID"].as_str().unwrap()), "{r}");
                        }
                        "FOLLOWS_FROM" => {}
                        other => panic!("unknown refType {other}"),
                    }
                }
                s["tags"].as_array().unwrap().iter().for_each(check_kv);
                for l in s["logs"].as_array().unwrap() {
                    assert!(is_micros(&l["timestamp"]));
                    let ts = l["timestamp"].as_i64().unwrap();
                    assert!(ts >= start && ts <= start + duration, "log inside its span");
                    let fields = l["fields"].as_array().unwrap();
                    fields.iter().for_each(check_kv);
                    assert_eq!(fields[0]["key"], "event");
                }
            }
            assert_eq!(used.len(), processes.len(), "every process is used");
        }
    }

    #[test]
    fn golden_files_have_jaegers_structure() {
        let read = |name: &str| -> JsonValue {
            serde_json::from_str(&std::fs::read_to_string(golden_dir().join(name)).unwrap())
                .unwrap()
        };
        for name in ["trace.json", "search.json"] {
            check_traces(&read(name));
        }
        for name in ["services.json", "operation-names.json"] {
            let r = read(name);
            check_envelope(&r);
            let data = r["data"].as_array().unwrap();
            assert!(data.iter().all(JsonValue::is_string));
            assert_eq!(r["total"], data.len());
        }
        let ops = read("operations.json");
        check_envelope(&ops);
        for o in ops["data"].as_array().unwrap() {
            assert!(o["name"].is_string() && o["spanKind"].is_string(), "{o}");
        }
        let deps = read("dependencies.json");
        check_envelope(&deps);
        for d in deps["data"].as_array().unwrap() {
            assert!(d["parent"].is_string() && d["child"].is_string() && d["callCount"].is_u64());
        }
        let err = read("error.json");
        check_envelope(&err);
        assert_eq!(err["data"], JsonValue::Null);
        assert_eq!(err["errors"][0]["code"], 404);
        assert!(err["errors"][0]["msg"].is_string());
    }

    #[test]
    fn span_fields_map_as_jaegers_otlp_translator_does() {
        let spans = trace_a();
        let t = trace_json(&spans);
        let by_op = |name: &str, kind: &str| {
            t["spans"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| {
                    s["operationName"] == name
                        && s["tags"]
                            .as_array()
                            .unwrap()
                            .contains(&kv_str("span.kind", kind))
                })
                .unwrap()
                .clone()
        };
        let pay = by_op("POST /pay", "server");
        let tags = pay["tags"].as_array().unwrap();
        for want in [
            kv_str("otel.status_code", "ERROR"),
            kv_str("otel.status_description", "card declined"),
            json!({"key": "error", "type": "bool", "value": true}),
            json!({"key": "retry.backoff", "type": "float64", "value": 1.5}),
        ] {
            assert!(tags.contains(&want), "{want} not in {tags:?}");
        }
        assert_eq!(pay["startTime"], (T0 + 12 * MS) / 1000);
        assert_eq!(pay["duration"], 76_000);
        assert_eq!(pay["logs"][0]["timestamp"], (T0 + 80 * MS + 250_000) / 1000);
        let root = by_op("GET /checkout", "server");
        assert_eq!(root["references"], json!([]));
        assert_eq!(root["duration"], 120_000, "sub-µs rest is truncated");
        assert!(!root["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "error"));
        let call = by_op("POST /pay", "client");
        assert_eq!(
            call["references"],
            json!([
                {"refType": "CHILD_OF", "traceID": "4bf92f3577b34da6a3ce929d0e0e4736", "spanID": "00f067aa0ba902b7"},
                {"refType": "FOLLOWS_FROM", "traceID": "0af7651916cd43dd8448eb211c80319c", "spanID": "53995c3f42cd8ad8"},
            ])
        );
        // frontend@web-1, payments, frontend@web-2 in order of first appearance.
        assert_eq!(root["processID"], "p1");
        assert_eq!(call["processID"], "p1");
        assert_eq!(pay["processID"], "p2");
        assert_eq!(by_op("render", "internal")["processID"], "p3");
        assert_eq!(t["processes"]["p3"]["serviceName"], "frontend");
        assert_eq!(
            t["processes"]["p2"]["tags"],
            json!([{"key": "host.name", "type": "string", "value": "pay-1"},
                   {"key": "process.pid", "type": "int64", "value": 42}])
        );
    }

    #[test]
    fn odd_values() {
        assert_eq!(
            kv("x", &Value::Float(f64::NAN)),
            json!({"key": "x", "type": "string", "value": "NaN"})
        );
        assert_eq!(micros(-1), -1, "floor, not truncation");
        assert_eq!(micros(1999), 1);
        assert_eq!(kind_name(SpanKind::Unspecified), "");
        let missing = traces_response(&[], &["00ff".to_string()]);
        assert_eq!(missing["data"], json!([]));
        assert_eq!(
            missing["errors"],
            json!([{"msg": "trace not found", "traceID": "00ff"}])
        );
    }
}
