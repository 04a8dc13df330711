//! Traces end to end: the real OpenTelemetry Python SDK exporting one known trace (and two
//! correlated logs) over OTLP/gRPC and OTLP/HTTP with default exporter settings, checked
//! through the native trace API, the log query, the service map, the Jaeger API, span
//! metrics (PromQL) and the CLI; OTLP/HTTP JSON and Zipkin v2 ingest; bad input; sampling.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span::SpanKind, status::StatusCode, ResourceSpans, ScopeSpans, Span as ProtoSpan, Status,
};
use prost::Message;
use serde_json::Value;
use sightline_model::time::parse_rfc3339;

use crate::otel_python::ensure_python_packages;
use crate::util::{client, repo_root, Server};

// ---------------------------------------------------------------------------------------
// Helpers shared with traces_crash.rs.

/// Nanoseconds since the epoch, now.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn str_kv(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_string())),
        }),
        ..Default::default()
    }
}

fn int_kv(key: &str, v: i64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

/// One OTLP span: `id` and `parent` become big-endian 8-byte span ids (0 is not allowed).
pub fn proto_span(
    trace: [u8; 16],
    id: u64,
    parent: Option<u64>,
    name: &str,
    start_ns: u64,
    end_ns: u64,
    error: bool,
) -> ProtoSpan {
    ProtoSpan {
        trace_id: trace.to_vec(),
        span_id: id.to_be_bytes().to_vec(),
        parent_span_id: parent.map(|p| p.to_be_bytes().to_vec()).unwrap_or_default(),
        name: name.to_string(),
        kind: if parent.is_none() {
            SpanKind::Server as i32
        } else {
            SpanKind::Internal as i32
        },
        start_time_unix_nano: start_ns,
        end_time_unix_nano: end_ns,
        attributes: vec![int_kv("idx", id as i64)],
        status: Some(Status {
            code: if error {
                StatusCode::Error as i32
            } else {
                StatusCode::Unset as i32
            },
            message: if error {
                "failed".into()
            } else {
                String::new()
            },
        }),
        ..Default::default()
    }
}

/// An `ExportTraceServiceRequest` body (protobuf) with `spans` under one service.
pub fn otlp_body(service: &str, spans: Vec<ProtoSpan>) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![str_kv("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "e2e".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// The 32-hex form of a trace id.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// POSTs `body` to `url` with `content_type`; returns (status, body as lossy text).
pub fn post(url: &str, content_type: &str, body: Vec<u8>) -> (u16, String) {
    let r = client()
        .post(url)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .unwrap();
    let st = r.status().as_u16();
    (
        st,
        String::from_utf8_lossy(&r.bytes().unwrap()).into_owned(),
    )
}

/// GET `path` on the main listener with `query`; returns (status, JSON body).
pub fn get(s: &Server, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let r = client().get(s.url(path)).query(query).send().unwrap();
    let st = r.status().as_u16();
    let text = r.text().unwrap();
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("GET {path} {query:?}: {st}, not JSON ({e}): {text}"));
    (st, v)
}

/// GET that must answer 200; returns the body.
pub fn get_ok(s: &Server, path: &str, query: &[(&str, &str)]) -> Value {
    let (st, v) = get(s, path, query);
    assert_eq!(st, 200, "GET {path} {query:?}: {v}");
    v
}

/// The spans of trace `id` (native API); an empty list when it answers 404.
pub fn trace_spans(s: &Server, id: &str) -> Vec<Value> {
    let (st, v) = get(s, &format!("/api/v1/traces/{id}"), &[]);
    match st {
        200 => v["data"]["spans"].as_array().unwrap().clone(),
        404 => Vec::new(),
        _ => panic!("GET trace {id}: {st} {v}"),
    }
}

fn ns(v: &Value) -> i64 {
    parse_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap_or_else(|e| panic!("bad time {v}: {e}"))
}

/// A search window (Unix seconds) around now.
fn window() -> (String, String) {
    let now = now_ns() / 1_000_000_000;
    ((now - 600).to_string(), (now + 60).to_string())
}

/// `GET /api/v1/query` vector result as (metric labels, value).
fn prom_vector(s: &Server, q: &str) -> Vec<(Value, String)> {
    let v = get_ok(s, "/api/v1/query", &[("query", q)]);
    assert_eq!(v["status"], "success", "{q}: {v}");
    assert_eq!(v["data"]["resultType"], "vector", "{q}: {v}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["metric"].clone(), e["value"][1].as_str().unwrap().into()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Interop with the OpenTelemetry Python SDK.

/// What testdata/interop/otel_traces.py sent: the trace id and span id by span name.
struct SdkTrace {
    trace_id: String,
    spans: BTreeMap<String, String>,
}

/// Runs the script with exporter `kind` and, when given, `OTEL_EXPORTER_OTLP_COMPRESSION`
/// (unset otherwise: the exporter's default settings).
fn run_sdk(s: &Server, kind: &str, compression: Option<&str>) -> SdkTrace {
    let (import, package) = match kind {
        "grpc" => (
            "opentelemetry.sdk, opentelemetry.exporter.otlp.proto.grpc",
            "opentelemetry-exporter-otlp-proto-grpc",
        ),
        _ => (
            "opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http",
            "opentelemetry-exporter-otlp-proto-http",
        ),
    };
    ensure_python_packages(import, &["opentelemetry-sdk", package]);
    let endpoint = if kind == "grpc" { &s.grpc } else { &s.otlp };
    let mut cmd = Command::new("python3");
    cmd.arg(repo_root().join("testdata/interop/otel_traces.py"))
        .arg(kind)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_INSECURE", "true")
        .env_remove("OTEL_EXPORTER_OTLP_COMPRESSION");
    if let Some(c) = compression {
        cmd.env("OTEL_EXPORTER_OTLP_COMPRESSION", c);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "python SDK script ({kind}) failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    SdkTrace {
        trace_id: v["trace_id"].as_str().unwrap().to_string(),
        spans: v["spans"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect(),
    }
}

/// The script's tree: (name, parent name, kind, service).
const TREE: [(&str, Option<&str>, &str, &str); 6] = [
    ("GET /checkout", None, "server", "shop-frontend"),
    (
        "SELECT orders",
        Some("GET /checkout"),
        "client",
        "shop-frontend",
    ),
    ("render", Some("GET /checkout"), "internal", "shop-frontend"),
    (
        "validate",
        Some("GET /checkout"),
        "internal",
        "shop-frontend",
    ),
    (
        "POST /pay",
        Some("GET /checkout"),
        "client",
        "shop-frontend",
    ),
    ("charge", Some("POST /pay"), "server", "payments"),
];

/// The native API's trace equals what the script sent, exactly.
fn check_native_trace(s: &Server, sdk: &SdkTrace) -> Vec<Value> {
    let id = &sdk.trace_id;
    let v = get_ok(s, &format!("/api/v1/traces/{id}"), &[]);
    assert_eq!(v["data"]["trace_id"], *id, "{v}");
    assert!(
        v["data"].get("logs").is_none_or(Value::is_null),
        "logs only with include=logs: {v}"
    );
    let spans = v["data"]["spans"].as_array().unwrap().clone();
    assert_eq!(spans.len(), 6, "{v}");
    let starts: Vec<i64> = spans.iter().map(|s| ns(&s["start"])).collect();
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1]),
        "spans sorted by start: {starts:?}"
    );
    let by_name: BTreeMap<&str, &Value> = spans
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s))
        .collect();
    let name_of: BTreeMap<&str, &str> = sdk
        .spans
        .iter()
        .map(|(n, id)| (id.as_str(), n.as_str()))
        .collect();
    assert_eq!(
        by_name.keys().copied().collect::<BTreeSet<_>>(),
        sdk.spans
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>()
    );
    for (name, parent, kind, service) in TREE {
        let sp = by_name[name];
        assert_eq!(sp["trace_id"], *id, "{name}: {sp}");
        assert_eq!(sp["span_id"], sdk.spans[name], "{name}: {sp}");
        let got_parent = sp["parent_span_id"].as_str().map(|p| name_of[p]);
        assert_eq!(got_parent, parent, "parent of {name}: {sp}");
        assert_eq!(sp["kind"], kind, "kind of {name}");
        assert_eq!(sp["service"], service, "service of {name}");
        let (start, end) = (ns(&sp["start"]), ns(&sp["end"]));
        assert_eq!(
            sp["duration_ns"].as_i64(),
            Some(end - start),
            "{name}: {sp}"
        );
        if let Some(p) = parent {
            let p = by_name[p];
            assert!(
                start >= ns(&p["start"]) && end <= ns(&p["end"]),
                "{name} lies within its parent: {sp} / {p}"
            );
        }
        let res = &sp["resource"];
        assert_eq!(res["deployment.environment"], "test", "{name}: {res}");
        assert_eq!(res["telemetry.sdk.language"], "python", "{name}: {res}");
        let (version, scope) = if service == "payments" {
            (
                "0.9.0",
                serde_json::json!({"name": "shop.payments", "version": ""}),
            )
        } else {
            (
                "1.2.3",
                serde_json::json!({"name": "shop.frontend", "version": "2.0.0"}),
            )
        };
        assert_eq!(res["service.version"], version, "{name}: {res}");
        assert_eq!(sp["scope"], scope, "{name}");
        assert_eq!(sp["links"], serde_json::json!([]), "{name}");
        let (code, message) = match name {
            "GET /checkout" => ("ok", ""),
            "validate" => ("error", "boom"),
            _ => ("unset", ""),
        };
        assert_eq!(
            sp["status"],
            serde_json::json!({"code": code, "message": message}),
            "status of {name}"
        );
        if name != "render" && name != "validate" {
            assert_eq!(sp["events"], serde_json::json!([]), "{name}");
        }
    }

    // Attribute types are kept: ints stay ints, floats floats, bools bools.
    let root = &by_name["GET /checkout"]["attributes"];
    assert_eq!(root["http.request.method"], "GET");
    assert_eq!(root["http.route"], "/checkout");
    assert!(root["http.response.status_code"].is_i64(), "{root}");
    assert_eq!(root["http.response.status_code"], 200);
    let db = &by_name["SELECT orders"]["attributes"];
    assert_eq!(
        *db,
        serde_json::json!({
            "db.system": "postgresql",
            "db.statement": "SELECT * FROM orders WHERE cart_id = $1",
            "db.rows": 3,
        })
    );
    assert!(db["db.rows"].is_i64(), "{db}");
    let pay = &by_name["charge"]["attributes"];
    assert!(pay["payment.amount"].is_f64(), "{pay}");
    assert_eq!(pay["payment.amount"].as_f64(), Some(45.99));
    assert_eq!(pay["payment.approved"], true);
    assert_eq!(
        by_name["POST /pay"]["attributes"]["server.address"],
        "payments"
    );

    // Events: the render event, and the exception recorded as an `exception` event.
    let render = by_name["render"];
    let ev = render["events"].as_array().unwrap();
    assert_eq!(ev.len(), 1, "{render}");
    assert_eq!(ev[0]["name"], "cache miss");
    assert_eq!(
        ev[0]["attributes"],
        serde_json::json!({"cache.key": "cart:42", "cache.size": 17})
    );
    let t = ns(&ev[0]["time"]);
    assert!(
        t >= ns(&render["start"]) && t <= ns(&render["end"]),
        "{render}"
    );
    let validate = by_name["validate"];
    let ev = validate["events"].as_array().unwrap();
    assert_eq!(ev.len(), 1, "{validate}");
    assert_eq!(ev[0]["name"], "exception");
    assert_eq!(ev[0]["attributes"]["exception.type"], "ValueError");
    assert_eq!(ev[0]["attributes"]["exception.message"], "boom");
    assert!(
        ev[0]["attributes"]["exception.stacktrace"]
            .as_str()
            .is_some_and(|st| st.contains("ValueError: boom")),
        "{validate}"
    );

    // The payments call slept 60 ms; the root covers it.
    let charge = by_name["charge"]["duration_ns"].as_i64().unwrap();
    assert!(charge >= 60_000_000, "charge took {charge} ns");
    assert!(by_name["GET /checkout"]["duration_ns"].as_i64().unwrap() >= charge);
    spans
}

/// `include=logs` and the log query `trace_id:<id>` find the two logs written in the trace.
fn check_correlated_logs(s: &Server, sdk: &SdkTrace) {
    let id = &sdk.trace_id;
    let v = get_ok(s, &format!("/api/v1/traces/{id}"), &[("include", "logs")]);
    assert_eq!(v["data"]["spans"].as_array().unwrap().len(), 6, "{v}");
    let logs = v["data"]["logs"].as_array().unwrap();
    let got: Vec<(&str, &str, &str, &str)> = logs
        .iter()
        .map(|l| {
            (
                l["message"].as_str().unwrap(),
                l["level"].as_str().unwrap(),
                l["trace_id"].as_str().unwrap(),
                l["span_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "rendering cart",
                "info",
                id.as_str(),
                sdk.spans["render"].as_str()
            ),
            (
                "validation failed",
                "error",
                id.as_str(),
                sdk.spans["validate"].as_str()
            ),
        ],
        "oldest first: {v}"
    );
    for l in logs {
        assert_eq!(l["service"], "shop-frontend", "{l}");
        assert_eq!(l["attributes"]["cart_id"], "c-42", "{l}");
    }
    let rows = s.rows(&format!("trace_id:{id}"));
    let mut msgs: Vec<&str> = rows
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    msgs.sort();
    assert_eq!(msgs, ["rendering cart", "validation failed"], "{rows:?}");
}

/// Trace search, services, operations and the service map.
fn check_search(s: &Server, sdk: &SdkTrace) {
    let id = sdk.trace_id.as_str();
    let (start, end) = window();
    let search = |extra: &[(&str, &str)]| -> Vec<Value> {
        let mut q = vec![("start", start.as_str()), ("end", end.as_str())];
        q.extend_from_slice(extra);
        let v = get_ok(s, "/api/v1/traces", &q);
        assert!(v["stats"]["scanned_rows"].is_u64(), "{v}");
        v["data"].as_array().unwrap().clone()
    };
    let ids = |rows: &[Value]| -> Vec<String> {
        rows.iter()
            .map(|r| r["trace_id"].as_str().unwrap().to_string())
            .collect()
    };

    let rows = search(&[("service", "shop-frontend"), ("status", "error")]);
    assert_eq!(ids(&rows), [id], "{rows:?}");
    let r = &rows[0];
    assert_eq!(r["root_service"], "shop-frontend", "{r}");
    assert_eq!(r["root_operation"], "GET /checkout", "{r}");
    assert_eq!(r["span_count"], 6, "{r}");
    assert_eq!(r["error_count"], 1, "{r}");
    assert_eq!(
        r["services"],
        serde_json::json!({"shop-frontend": 5, "payments": 1}),
        "{r}"
    );
    assert!(r["duration_ns"].as_i64().unwrap() >= 60_000_000, "{r}");
    let native_root = trace_spans(s, id)
        .into_iter()
        .find(|sp| sp["name"] == "GET /checkout")
        .unwrap();
    assert_eq!(ns(&r["start"]), ns(&native_root["start"]), "{r}");

    // Filters that keep it and filters that drop it.
    for (filter, found) in [
        (vec![("service", "payments")], true),
        (vec![("service", "no-such-service")], false),
        (
            vec![("service", "shop-frontend"), ("operation", "SELECT orders")],
            true,
        ),
        (
            vec![("service", "shop-frontend"), ("operation", "DELETE orders")],
            false,
        ),
        (vec![("attributes", "db.system=postgresql")], true),
        (vec![("attributes", "db.system=postgresql,db.rows=3")], true),
        (vec![("attributes", "db.system=mysql")], false),
        (vec![("min_duration", "40ms")], true),
        (vec![("min_duration", "1m30s")], false),
        (vec![("max_duration", "1h")], true),
        (
            vec![("service", "shop-frontend"), ("min_duration", "2s")],
            false,
        ),
    ] {
        let rows = search(&filter);
        let want: Vec<&str> = if found { vec![id] } else { vec![] };
        assert_eq!(ids(&rows), want, "search {filter:?}: {rows:?}");
    }
    // Outside the time range.
    let v = get_ok(
        s,
        "/api/v1/traces",
        &[
            ("service", "shop-frontend"),
            ("start", "1000"),
            ("end", "2000"),
        ],
    );
    assert_eq!(v["data"], serde_json::json!([]), "{v}");

    let v = get_ok(s, "/api/v1/services", &[("start", &start), ("end", &end)]);
    assert_eq!(v["data"], serde_json::json!(["payments", "shop-frontend"]));
    let v = get_ok(
        s,
        "/api/v1/services/shop-frontend/operations",
        &[("start", &start), ("end", &end)],
    );
    let ops: BTreeSet<(String, String)> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_string(),
                o["span_kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = TREE
        .iter()
        .filter(|t| t.3 == "shop-frontend")
        .map(|t| (t.0.to_string(), t.2.to_string()))
        .collect();
    assert_eq!(ops, want, "{v}");
    let v = get_ok(s, "/api/v1/services/payments/operations", &[]);
    assert_eq!(
        v["data"],
        serde_json::json!([{"name": "charge", "span_kind": "server"}])
    );
    let v = get_ok(
        s,
        "/api/v1/dependencies",
        &[("start", &start), ("end", &end)],
    );
    assert_eq!(
        v["data"],
        serde_json::json!([{"parent": "shop-frontend", "child": "payments", "call_count": 1, "error_count": 0}]),
        "the service map"
    );
}

/// The Jaeger API returns the same trace as the native API.
fn check_jaeger(s: &Server, sdk: &SdkTrace, native: &[Value]) {
    let id = sdk.trace_id.as_str();
    let v = get_ok(s, &format!("/jaeger/api/traces/{id}"), &[]);
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{v}");
    assert_jaeger_trace_equals(&data[0], id, native);

    let now_us = now_ns() / 1000;
    let (start, end) = (
        (now_us - 600_000_000).to_string(),
        (now_us + 60_000_000).to_string(),
    );
    let jsearch = |extra: &[(&str, &str)]| -> Vec<Value> {
        let mut q = vec![
            ("service", "shop-frontend"),
            ("start", start.as_str()),
            ("end", end.as_str()),
            ("limit", "20"),
        ];
        q.extend_from_slice(extra);
        let v = get_ok(s, "/jaeger/api/traces", &q);
        v["data"].as_array().unwrap().clone()
    };
    let found = jsearch(&[]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_jaeger_trace_equals(&found[0], id, native);
    assert_eq!(
        jsearch(&[("tags", r#"{"db.system":"postgresql"}"#)]).len(),
        1
    );
    assert_eq!(jsearch(&[("tags", r#"{"db.system":"mysql"}"#)]).len(), 0);
    assert_eq!(jsearch(&[("minDuration", "40ms")]).len(), 1);
    assert_eq!(jsearch(&[("minDuration", "2s")]).len(), 0);
    assert_eq!(jsearch(&[("operation", "GET /checkout")]).len(), 1);

    let v = get_ok(s, "/jaeger/api/services", &[]);
    let mut services: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    services.sort();
    assert_eq!(services, ["payments", "shop-frontend"], "{v}");
    let v = get_ok(s, "/jaeger/api/services/shop-frontend/operations", &[]);
    let mut ops: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    ops.sort();
    let mut want: Vec<&str> = TREE
        .iter()
        .filter(|t| t.3 == "shop-frontend")
        .map(|t| t.0)
        .collect();
    want.sort();
    assert_eq!(ops, want, "{v}");
    let v = get_ok(s, "/jaeger/api/operations", &[("service", "payments")]);
    assert_eq!(
        v["data"],
        serde_json::json!([{"name": "charge", "spanKind": "server"}])
    );
    let end_ms = (now_ns() / 1_000_000 + 60_000).to_string();
    let v = get_ok(
        s,
        "/jaeger/api/dependencies",
        &[("endTs", &end_ms), ("lookback", "3600000")],
    );
    let deps = v["data"].as_array().unwrap();
    assert_eq!(deps.len(), 1, "{v}");
    assert_eq!(deps[0]["parent"], "shop-frontend");
    assert_eq!(deps[0]["child"], "payments");
    assert_eq!(deps[0]["callCount"], 1);
}

fn assert_jaeger_trace_equals(t: &Value, id: &str, native: &[Value]) {
    assert_eq!(t["traceID"], id, "{t}");
    let spans = t["spans"].as_array().unwrap();
    assert_eq!(spans.len(), native.len(), "{t}");
    let jids: BTreeSet<&str> = spans
        .iter()
        .map(|s| s["spanID"].as_str().unwrap())
        .collect();
    let nids: BTreeSet<&str> = native
        .iter()
        .map(|s| s["span_id"].as_str().unwrap())
        .collect();
    assert_eq!(jids, nids);
    for js in spans {
        let n = native
            .iter()
            .find(|n| n["span_id"] == js["spanID"])
            .unwrap();
        assert_eq!(js["traceID"], id);
        assert_eq!(js["operationName"], n["name"], "{js}");
        let (jt, nt) = (js["startTime"].as_i64().unwrap(), ns(&n["start"]) / 1000);
        assert!((jt - nt).abs() <= 1, "start {jt} us vs {nt} us: {js}");
        let (jd, nd) = (
            js["duration"].as_i64().unwrap(),
            n["duration_ns"].as_i64().unwrap() / 1000,
        );
        assert!((jd - nd).abs() <= 1, "duration {jd} us vs {nd} us: {js}");
        let refs: Vec<(&str, &str)> = js["references"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|r| {
                        (
                            r["refType"].as_str().unwrap(),
                            r["spanID"].as_str().unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        match n["parent_span_id"].as_str() {
            Some(p) => assert_eq!(refs, [("CHILD_OF", p)], "{js}"),
            None => assert!(refs.is_empty(), "{js}"),
        }
        let pid = js["processID"].as_str().unwrap();
        assert_eq!(t["processes"][pid]["serviceName"], n["service"], "{t}");
        let tag = |k: &str| {
            js["tags"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["key"] == k)
                .map(|x| x["value"].clone())
        };
        if n["status"]["code"] == "error" {
            assert_eq!(tag("error"), Some(Value::Bool(true)), "{js}");
        }
        if n["name"] == "SELECT orders" {
            assert_eq!(tag("db.system"), Some("postgresql".into()), "{js}");
        }
    }
}

/// The single value of an instant query that must return one series.
fn prom_scalar(s: &Server, q: &str) -> String {
    let v = prom_vector(s, q);
    assert_eq!(v.len(), 1, "{q}: {v:?}");
    v[0].1.clone()
}

/// Span metrics count every span by service and status.
fn check_span_metrics(s: &Server) {
    let mut v = prom_vector(
        s,
        "sum by (service_name, status_code) (traces_span_metrics_calls_total)",
    );
    v.sort_by_key(|e| e.0.to_string());
    let got: Vec<(String, String, String)> = v
        .iter()
        .map(|(m, val)| {
            (
                m["service_name"].as_str().unwrap_or_default().to_string(),
                m["status_code"].as_str().unwrap_or_default().to_string(),
                val.clone(),
            )
        })
        .collect();
    let want: Vec<(String, String, String)> = [
        ("payments", "STATUS_CODE_UNSET", "1"),
        ("shop-frontend", "STATUS_CODE_ERROR", "1"),
        ("shop-frontend", "STATUS_CODE_OK", "1"),
        ("shop-frontend", "STATUS_CODE_UNSET", "3"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(got, want);
    let v = prom_vector(s, r#"traces_span_metrics_calls_total{span_name="charge"}"#);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].0["service_name"], "payments");
    assert_eq!(v[0].0["span_kind"], "SPAN_KIND_SERVER");
    assert_eq!(v[0].1, "1");
    assert_eq!(
        prom_scalar(s, "sum(traces_span_metrics_duration_seconds_count)"),
        "6"
    );
    // charge took 60 ms or more: above the 0.05 s bucket, inside +Inf.
    let v = prom_vector(
        s,
        r#"sum by (le) (traces_span_metrics_duration_seconds_bucket{span_name="charge", le=~"0.05|\\+Inf"})"#,
    );
    let mut v: Vec<(String, String)> = v
        .into_iter()
        .map(|(m, c)| (m["le"].as_str().unwrap().to_string(), c))
        .collect();
    v.sort();
    assert_eq!(
        v,
        [
            ("+Inf".to_string(), "1".to_string()),
            ("0.05".into(), "0".into())
        ]
    );
    let secs: f64 = prom_scalar(
        s,
        r#"traces_span_metrics_duration_seconds_sum{span_name="charge"}"#,
    )
    .parse()
    .unwrap();
    assert!((0.06..60.0).contains(&secs), "charge: {secs} s");
}

/// `sightline traces get <id>` prints the indented tree; `traces search` finds the trace.
fn check_cli(s: &Server, sdk: &SdkTrace) {
    let run = |args: &[&str]| -> String {
        let out = Command::new(crate::util::bin())
            .args(args)
            .env("SIGHTLINE_SERVER", &s.main)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "sightline {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let out = run(&["traces", "get", &sdk.trace_id]);
    // The column where the span's name starts (the leftmost, should a header repeat it).
    let column = |name: &str| -> usize {
        out.lines()
            .filter_map(|l| l.find(name).map(|i| l[..i].chars().count()))
            .min()
            .unwrap_or_else(|| panic!("no line for {name}:\n{out}"))
    };
    for (name, parent, _, _) in TREE {
        if let Some(p) = parent {
            assert!(
                column(name) > column(p),
                "{name} is indented under {p}:\n{out}"
            );
        }
    }
    let charge = out.lines().find(|l| l.contains("charge")).unwrap();
    assert!(charge.contains("ms"), "durations are printed: {out}");
    let out = run(&["traces", "search", "--service", "shop-frontend"]);
    assert!(out.contains(&sdk.trace_id), "{out}");
    let out = run(&["traces", "search", "--service", "no-such-service"]);
    assert!(!out.contains(&sdk.trace_id), "{out}");
}

fn interop(kind: &str) {
    let s = Server::start_with(
        &["--otlp-grpc", "127.0.0.1:0"],
        &[("SIGHTLINE_METRICS_HOST_INTERVAL", "off")],
    );
    let sdk = run_sdk(&s, kind, None);
    assert_eq!(sdk.trace_id.len(), 32);
    let native = check_native_trace(&s, &sdk);
    check_correlated_logs(&s, &sdk);
    check_search(&s, &sdk);
    check_jaeger(&s, &sdk, &native);
    check_span_metrics(&s);
    check_cli(&s, &sdk);
    // Everything still holds once the spans moved from memory to parts.
    s.flush();
    assert_eq!(check_native_trace(&s, &sdk), native);
    check_correlated_logs(&s, &sdk);

    // Again with gzip, as `OTEL_EXPORTER_OTLP_COMPRESSION=gzip` configures it.
    let again = run_sdk(&s, kind, Some("gzip"));
    assert_ne!(again.trace_id, sdk.trace_id);
    check_native_trace(&s, &again);
    check_correlated_logs(&s, &again);
    let v = get_ok(&s, "/api/v1/dependencies", &[]);
    assert_eq!(v["data"][0]["call_count"], 2, "{v}");
    assert_eq!(
        prom_scalar(&s, "sum(traces_span_metrics_calls_total)"),
        "12"
    );
}

#[test]
fn opentelemetry_python_sdk_traces_over_grpc() {
    interop("grpc");
}

#[test]
fn opentelemetry_python_sdk_traces_over_http() {
    interop("http");
}

// ---------------------------------------------------------------------------------------
// OTLP/HTTP JSON, Zipkin, bad input.

#[test]
fn otlp_json_and_zipkin_spans_are_stored_and_bad_input_is_rejected_whole() {
    let s = Server::start_with(&[], &[("SIGHTLINE_METRICS_HOST_INTERVAL", "off")]);
    let now = now_ns();
    let json_trace = "5b8efff798038103d269b633813fc60c";
    let span_json = |trace: &str, span: &str, start: u64, end: u64| {
        format!(
            r#"{{"traceId":"{trace}","spanId":"{span}","name":"json span","kind":2,"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}","attributes":[{{"key":"n","value":{{"intValue":"7"}}}},{{"key":"ratio","value":{{"doubleValue":0.5}}}}],"status":{{"code":2,"message":"bad"}}}}"#
        )
    };
    let body = |spans: &[String]| {
        format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"json-svc"}}}}]}},"scopeSpans":[{{"scope":{{"name":"j"}},"spans":[{}]}}]}}]}}"#,
            spans.join(",")
        )
        .into_bytes()
    };
    let otlp = format!("{}/v1/traces", s.otlp);
    let good = span_json(json_trace, "eee19b7ec3c1b174", now - 5_000_000, now);
    let (st, text) = post(&otlp, "application/json", body(std::slice::from_ref(&good)));
    assert_eq!(st, 200, "{text}");
    let resp: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(resp.is_object(), "an ExportTraceServiceResponse: {text}");
    let spans = trace_spans(&s, json_trace);
    assert_eq!(spans.len(), 1);
    let sp = &spans[0];
    assert_eq!(sp["span_id"], "eee19b7ec3c1b174");
    assert_eq!(sp["service"], "json-svc");
    assert_eq!(sp["kind"], "server");
    assert_eq!(sp["duration_ns"], 5_000_000);
    assert_eq!(sp["attributes"], serde_json::json!({"n": 7, "ratio": 0.5}));
    assert!(sp["attributes"]["n"].is_i64());
    assert_eq!(
        sp["status"],
        serde_json::json!({"code": "error", "message": "bad"})
    );
    assert_eq!(sp["parent_span_id"], Value::Null);

    // Protobuf on the main listener too, and gzip.
    let trace = [7u8; 16];
    let pb = otlp_body(
        "pb-svc",
        vec![proto_span(trace, 1, None, "pb", now - 1000, now, false)],
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&pb).unwrap();
    let r = client()
        .post(s.url("/v1/traces"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");
    assert_eq!(trace_spans(&s, &hex(&trace)).len(), 1);

    // Tenants are apart: a trace sent as `acme` is found only as `acme`.
    let acme = [0xac; 16];
    let r = client()
        .post(s.url("/v1/traces"))
        .header("Content-Type", "application/x-protobuf")
        .header("X-Scope-OrgID", "acme")
        .body(otlp_body(
            "acme-svc",
            vec![proto_span(acme, 1, None, "a", now - 1000, now, false)],
        ))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        trace_spans(&s, &hex(&acme)).is_empty(),
        "not in the default tenant"
    );
    let r = client()
        .get(s.url(&format!("/api/v1/traces/{}", hex(&acme))))
        .header("X-Scope-OrgID", "acme")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().unwrap();
    assert_eq!(v["data"]["spans"][0]["service"], "acme-svc", "{v}");

    // Bad OTLP bodies: 400 naming the problem, nothing of the batch stored.
    let lost = "0af7651916cd43dd8448eb211c80319c";
    let good_lost = span_json(lost, "b7ad6b7169203331", now - 1000, now);
    let expect_400 = |ct: &str, body: Vec<u8>, needles: &[&str]| {
        let (st, text) = post(&otlp, ct, body);
        assert_eq!(st, 400, "{ct}: {text}");
        let low = text.to_lowercase();
        assert!(
            needles.iter().any(|n| low.contains(n)),
            "{text:?} should mention one of {needles:?}"
        );
    };
    expect_400(
        "application/x-protobuf",
        b"\x0a\xff\xff\xff\xff\x0f garbage".to_vec(),
        &["protobuf"],
    );
    expect_400(
        "application/json",
        b"{\"resourceSpans\": [".to_vec(),
        &["json"],
    );
    expect_400(
        "application/json",
        b"{\"resourceSpans\": 5}".to_vec(),
        &["json"],
    );
    // A 5-byte trace id after a good span.
    expect_400(
        "application/json",
        body(&[
            good_lost.clone(),
            span_json("0102030405", "b7ad6b7169203332", now - 10, now),
        ]),
        &["trace"],
    );
    // A 3-byte span id.
    expect_400(
        "application/json",
        body(&[good_lost.clone(), span_json(lost, "0a0b0c", now - 10, now)]),
        &["span"],
    );
    // The end before the start.
    expect_400(
        "application/json",
        body(&[
            good_lost.clone(),
            span_json(lost, "b7ad6b7169203333", now, now - 1_000_000),
        ]),
        &["end", "start", "duration"],
    );
    // Protobuf with a 5-byte trace id.
    let mut bad = proto_span([9u8; 16], 1, None, "x", now - 10, now, false);
    bad.trace_id = vec![1, 2, 3, 4, 5];
    expect_400(
        "application/x-protobuf",
        otlp_body(
            "bad",
            vec![
                proto_span([9u8; 16], 2, None, "y", now - 10, now, false),
                bad,
            ],
        ),
        &["trace"],
    );
    assert!(
        trace_spans(&s, lost).is_empty(),
        "a rejected batch stored nothing"
    );
    assert!(trace_spans(&s, &hex(&[9u8; 16])).is_empty());

    // Bad trace ids and unknown ids on the query side.
    for bad in [
        "xyz",
        "0af7651916cd43dd8448eb211c80319",
        &"0".repeat(32),
        "0af7651916cd43dd8448eb211c80319cc",
    ] {
        let (st, v) = get(&s, &format!("/api/v1/traces/{bad}"), &[]);
        assert_eq!(st, 400, "{bad}: {v}");
        assert!(v["error"].as_str().unwrap().contains("trace_id"), "{v}");
    }
    let unknown = "1af7651916cd43dd8448eb211c80319c";
    let (st, v) = get(&s, &format!("/api/v1/traces/{unknown}"), &[]);
    assert_eq!(st, 404, "{v}");
    assert_eq!(v["error"], format!("trace {unknown} not found"));
    for (param, value) in [
        ("min_duration", "12"),
        ("min_duration", "fast"),
        ("max_duration", "-5ms"),
        ("status", "bogus"),
        ("limit", "many"),
        ("start", "yesterday-ish"),
    ] {
        let (st, v) = get(&s, "/api/v1/traces", &[(param, value)]);
        assert_eq!(st, 400, "{param}={value}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains(param),
            "{param}={value}: {v}"
        );
    }

    // Zipkin v2: a valid array is stored (202) and found; a broken one is refused whole.
    let zt = "463ac35c9f6413ad48485a3953bb6124";
    let ts = now / 1000 - 2_000_000;
    let zipkin = format!(
        r#"[{{"traceId":"{zt}","id":"a2fb4a1d1a96d312","kind":"SERVER","name":"get /api","timestamp":{ts},"duration":1431,"localEndpoint":{{"serviceName":"zipkin-front","ipv4":"10.0.0.1"}},"tags":{{"http.method":"GET","http.path":"/api"}},"annotations":[{{"timestamp":{a},"value":"wr"}}]}},
            {{"traceId":"{zt}","parentId":"a2fb4a1d1a96d312","id":"0020000000000001","kind":"CLIENT","name":"select","timestamp":{c},"duration":200,"localEndpoint":{{"serviceName":"zipkin-front"}},"remoteEndpoint":{{"serviceName":"mysql"}}}}]"#,
        a = ts + 100,
        c = ts + 300,
    );
    let zurl = s.url("/api/v2/spans");
    let (st, text) = post(&zurl, "application/json", zipkin.into_bytes());
    assert_eq!(st, 202, "{text}");
    let spans = trace_spans(&s, zt);
    assert_eq!(spans.len(), 2, "{spans:?}");
    let (root, child) = (&spans[0], &spans[1]);
    assert_eq!(root["name"], "get /api");
    assert_eq!(root["kind"], "server");
    assert_eq!(root["service"], "zipkin-front");
    assert_eq!(root["parent_span_id"], Value::Null);
    assert_eq!(root["duration_ns"], 1_431_000);
    assert_eq!(ns(&root["start"]), ts as i64 * 1000);
    assert_eq!(root["attributes"]["http.method"], "GET");
    assert_eq!(root["events"][0]["name"], "wr", "{root}");
    assert_eq!(ns(&root["events"][0]["time"]), (ts as i64 + 100) * 1000);
    assert_eq!(child["name"], "select");
    assert_eq!(child["kind"], "client");
    assert_eq!(child["parent_span_id"], "a2fb4a1d1a96d312");
    assert_eq!(child["span_id"], "0020000000000001");
    let zlost = "563ac35c9f6413ad48485a3953bb6124";
    for broken in [
        "not json".to_string(),
        r#"{"traceId":"563ac35c9f6413ad48485a3953bb6124"}"#.to_string(),
        format!(
            r#"[{{"traceId":"{zlost}","id":"a2fb4a1d1a96d312","name":"ok","timestamp":{ts},"duration":1}},{{"traceId":"zz","id":"a2fb4a1d1a96d313","name":"bad","timestamp":{ts},"duration":1}}]"#
        ),
        format!(
            r#"[{{"traceId":"{zlost}","id":"a2fb4a1d1a96d312","name":"ok","timestamp":{ts},"duration":1}},{{"traceId":"{zlost}","name":"no id","timestamp":{ts},"duration":1}}]"#
        ),
    ] {
        let (st, text) = post(&zurl, "application/json", broken.clone().into_bytes());
        assert_eq!(st, 400, "{broken}: {text}");
        assert!(!text.trim().is_empty(), "the 400 says why: {broken}");
    }
    assert!(
        trace_spans(&s, zlost).is_empty(),
        "a broken Zipkin batch stored nothing"
    );

    // The server still serves, and the services of the stored spans are listed.
    let v = get_ok(&s, "/api/v1/services", &[]);
    assert_eq!(
        v["data"],
        serde_json::json!(["json-svc", "pb-svc", "zipkin-front"])
    );
}

/// A malformed or invalid OTLP/gRPC export answers `INVALID_ARGUMENT` with a message (sent
/// by Python's grpcio as raw bytes, so the server's decoder sees exactly these bytes).
#[test]
fn grpc_export_of_bad_spans_is_invalid_argument() {
    ensure_python_packages("grpc", &["grpcio"]);
    let s = Server::start_with(&["--otlp-grpc", "127.0.0.1:0"], &[]);
    let target = s.grpc.trim_start_matches("http://").to_string();
    let call = |body: &[u8]| -> String {
        let script = r#"
import sys, grpc
ch = grpc.insecure_channel(sys.argv[1])
f = ch.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
try:
    f(sys.stdin.buffer.read(), timeout=20)
    print("OK")
except grpc.RpcError as e:
    print(e.code().name, e.details())
"#;
        let mut child = Command::new("python3")
            .args(["-c", script, &target])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(body).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let now = now_ns();
    let ok_trace = [3u8; 16];
    let good = otlp_body(
        "grpc-svc",
        vec![proto_span(ok_trace, 1, None, "ok", now - 10, now, false)],
    );
    assert_eq!(call(&good), "OK");
    assert_eq!(trace_spans(&s, &hex(&ok_trace)).len(), 1);

    let out = call(b"\x0a\xff\xff\xff\xff\x0f garbage");
    assert!(out.starts_with("INVALID_ARGUMENT "), "{out}");
    assert!(
        out.len() > "INVALID_ARGUMENT ".len() + 5,
        "with a message: {out}"
    );
    let mut bad = proto_span([4u8; 16], 2, None, "bad", now - 10, now, false);
    bad.span_id = vec![1, 2, 3];
    let body = otlp_body(
        "grpc-svc",
        vec![
            proto_span([4u8; 16], 1, None, "good", now - 10, now, false),
            bad,
        ],
    );
    let out = call(&body);
    assert!(out.starts_with("INVALID_ARGUMENT "), "{out}");
    assert!(out.to_lowercase().contains("span"), "{out}");
    assert!(
        trace_spans(&s, &hex(&[4u8; 16])).is_empty(),
        "nothing of the batch stored"
    );
}

// ---------------------------------------------------------------------------------------
// Sampling.

#[test]
fn sampling_keeps_error_slow_and_always_sampled_traces_and_span_metrics_count_all() {
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("sightline.toml");
    // Per-service ratios are file-only (docs/configuration.md); the rest from the environment.
    std::fs::write(
        &cfg,
        "[traces]\nsampling_service_ratios = { always = 1.0 }\nsampling_keep_slower_than = \"1s\"\n",
    )
    .unwrap();
    let mut s = Server::start_with(
        &["--config", cfg.to_str().unwrap()],
        &[
            ("SIGHTLINE_METRICS_HOST_INTERVAL", "off"),
            ("SIGHTLINE_TRACES_SAMPLING_RATIO", "0"),
            ("SIGHTLINE_TRACES_SAMPLING_KEEP_ERRORS", "true"),
        ],
    );
    let now = now_ns();
    let ms = 1_000_000u64;
    // (trace, service, spans, error span?, root duration): ok, error, slow, always-sampled.
    let traces: [([u8; 16], &str, bool, u64); 4] = [
        ([0x11; 16], "sampled", false, 10 * ms),
        ([0x22; 16], "sampled", true, 10 * ms),
        ([0x33; 16], "sampled", false, 1500 * ms),
        ([0x44; 16], "always", false, 10 * ms),
    ];
    for (trace, service, error, dur) in traces {
        let spans = vec![
            proto_span(trace, 1, None, "root", now - dur, now, false),
            proto_span(
                trace,
                2,
                Some(1),
                "child-a",
                now - dur + ms,
                now - ms,
                error,
            ),
            proto_span(
                trace,
                3,
                Some(1),
                "child-b",
                now - dur + ms,
                now - ms,
                false,
            ),
        ];
        let (st, text) = post(
            &format!("{}/v1/traces", s.otlp),
            "application/x-protobuf",
            otlp_body(service, spans),
        );
        assert_eq!(st, 200, "{text}");
    }
    // Durable and queryable before the flush.
    assert_eq!(trace_spans(&s, &hex(&[0x22; 16])).len(), 3);
    s.flush();
    let kept = |s: &Server| -> Vec<usize> {
        traces
            .iter()
            .map(|t| trace_spans(s, &hex(&t.0)).len())
            .collect()
    };
    assert_eq!(
        kept(&s),
        [0, 3, 3, 3],
        "ok trace dropped; error, slow, always kept whole"
    );
    let (start, end) = window();
    let v = get_ok(
        &s,
        "/api/v1/traces",
        &[("service", "sampled"), ("start", &start), ("end", &end)],
    );
    assert_eq!(v["data"].as_array().unwrap().len(), 2, "{v}");
    // A late span of a trace kept by a tail rule is kept too; one of a dropped trace is not.
    for trace in [[0x22; 16], [0x11; 16]] {
        let late = proto_span(trace, 4, Some(1), "late", now - ms, now, false);
        let (st, text) = post(
            &format!("{}/v1/traces", s.otlp),
            "application/x-protobuf",
            otlp_body("sampled", vec![late]),
        );
        assert_eq!(st, 200, "{text}");
    }
    s.flush();
    assert_eq!(
        kept(&s),
        [0, 4, 3, 3],
        "the late span of the error trace is kept"
    );
    // Span metrics counted every span, sampled out or not.
    assert_eq!(
        prom_scalar(&s, "sum(traces_span_metrics_calls_total)"),
        "14"
    );
    assert_eq!(
        prom_scalar(
            &s,
            r#"sum(traces_span_metrics_calls_total{service_name="sampled", status_code="STATUS_CODE_ERROR"})"#,
        ),
        "1"
    );
    // A restart does not bring the dropped trace back from the WAL.
    assert!(s.stop().success());
    s.restart();
    assert_eq!(kept(&s), [0, 4, 3, 3]);
}
