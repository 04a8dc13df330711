//! OTLP/gRPC end to end: the real Python `grpcio` client (with the `opentelemetry-proto`
//! messages, built by hand in `testdata/interop/otlp_grpc_client.py`) calls the three
//! collector services on `--otlp-grpc`: logs found by the log query, metrics by PromQL,
//! traces by the trace API and in the span metrics; gzip in both directions; the tenant
//! from `x-scope-orgid` metadata; malformed protobuf answered `INVALID_ARGUMENT` with a
//! message and nothing stored.

use std::process::Command;

use serde_json::Value;

use crate::otel_python::ensure_python_packages;
use crate::util::{client, repo_root, Server};

/// What the script printed: the gRPC status name, its message, whether the response
/// carried a partial success, and the trace id (traces case).
struct Outcome {
    code: String,
    message: String,
    partial_success: bool,
    trace_id: String,
}

/// Runs one case of the client script against the server's gRPC listener.
fn call(s: &Server, case: &str, marker: &str, extra: &[&str]) -> Outcome {
    let out = Command::new("python3")
        .arg(repo_root().join("testdata/interop/otlp_grpc_client.py"))
        .args([s.grpc.as_str(), case, marker])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "grpc client script failed ({case}):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad script output {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    Outcome {
        code: v["code"].as_str().unwrap().to_string(),
        message: v["message"].as_str().unwrap().to_string(),
        partial_success: v["partial_success"].as_bool().unwrap(),
        trace_id: v["trace_id"].as_str().unwrap_or("").to_string(),
    }
}

fn ensure_grpc_client() {
    ensure_python_packages(
        "grpc, opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc",
        &["grpcio", "opentelemetry-proto"],
    );
}

/// `GET path` on the main listener as `tenant` (none = default); returns (status, body).
fn get(s: &Server, path: &str, query: &[(&str, &str)], tenant: Option<&str>) -> (u16, Value) {
    let mut r = client().get(s.url(path)).query(query);
    if let Some(t) = tenant {
        r = r.header("X-Scope-OrgID", t);
    }
    let r = r.send().unwrap();
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

/// Log rows matching `q` over all time, for `tenant`.
fn log_rows(s: &Server, q: &str, tenant: Option<&str>) -> Vec<Value> {
    let end = crate::util::now_secs().to_string();
    let (status, v) = get(
        s,
        "/api/v1/logs/query",
        &[("q", q), ("start", "0"), ("end", &end)],
        tenant,
    );
    assert_eq!(status, 200, "{q}: {v}");
    v["data"].as_array().unwrap().clone()
}

/// The values of a PromQL instant query's vector result, for `tenant`.
fn promql(s: &Server, q: &str, tenant: Option<&str>) -> Vec<(Value, f64)> {
    let (status, v) = get(s, "/api/v1/query", &[("query", q)], tenant);
    assert_eq!(status, 200, "{q}: {v}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["metric"].clone(),
                e["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn otlp_grpc_logs_and_metrics_with_gzip_tenants_and_bad_input() {
    ensure_grpc_client();
    let s = Server::start_with(&["--otlp-grpc", "127.0.0.1:0"], &[]);

    // Logs, plain.
    let o = call(&s, "logs", "mplain1", &[]);
    assert_eq!((o.code.as_str(), o.message.as_str()), ("OK", ""));
    assert!(!o.partial_success);
    let rows = log_rows(&s, "marker:mplain1", None);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["message"], "grpc log mplain1");
    assert_eq!(rows[0]["service"], "grpc-e2e");
    assert_eq!(rows[0]["level"], "info");

    // Logs, gzip-compressed request (and a gzip answer: grpcio accepts it by default).
    let o = call(&s, "logs", "mgzip1", &["--gzip"]);
    assert_eq!(o.code, "OK", "{}", o.message);
    assert_eq!(log_rows(&s, "marker:mgzip1", None).len(), 1);

    // Logs for another tenant: invisible to the default tenant.
    let o = call(&s, "logs", "mtenant1", &["--tenant", "team-g"]);
    assert_eq!(o.code, "OK", "{}", o.message);
    assert!(log_rows(&s, "marker:mtenant1", None).is_empty());
    assert_eq!(log_rows(&s, "marker:mtenant1", Some("team-g")).len(), 1);

    // An invalid tenant is the client's error.
    let o = call(&s, "logs", "mbadtenant", &["--tenant", "no/slashes"]);
    assert_eq!(o.code, "INVALID_ARGUMENT");
    assert!(o.message.contains("x-scope-orgid"), "{}", o.message);

    // Malformed protobuf: INVALID_ARGUMENT with a message, nothing stored.
    let before = log_rows(&s, "service:grpc-e2e", None).len();
    for extra in [&[][..], &["--gzip"][..]] {
        let o = call(&s, "malformed", "x", extra);
        assert_eq!(o.code, "INVALID_ARGUMENT", "{}", o.message);
        assert!(!o.message.is_empty());
    }
    assert_eq!(log_rows(&s, "service:grpc-e2e", None).len(), before);

    // Metrics: a counter and a gauge, found by PromQL with the OTLP name mapping.
    let o = call(&s, "metrics", "mmetric1", &[]);
    assert_eq!(o.code, "OK", "{}", o.message);
    assert!(!o.partial_success);
    let r = promql(&s, r#"grpc_e2e_requests_total{marker="mmetric1"}"#, None);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].1, 7.0);
    assert_eq!(r[0].0["job"], "grpc-e2e");
    let r = promql(&s, r#"grpc_e2e_temperature{marker="mmetric1"}"#, None);
    assert_eq!(r.iter().map(|x| x.1).collect::<Vec<_>>(), [21.5]);

    // Metrics, gzip and a tenant.
    let o = call(&s, "metrics", "mmetric2", &["--gzip", "--tenant", "team-g"]);
    assert_eq!(o.code, "OK", "{}", o.message);
    let q = r#"grpc_e2e_requests_total{marker="mmetric2"}"#;
    assert!(promql(&s, q, None).is_empty());
    assert_eq!(promql(&s, q, Some("team-g")).len(), 1);

    // Self-metrics count the batches under the gRPC protocol.
    let text = client()
        .get(s.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("sightline_rejected_batches_total")
                && l.contains(r#"protocol="otlp_grpc""#)
                && l.contains(r#"reason="bad_request""#)),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("sightline_ingested_records_total")
                && l.contains(r#"signal="logs""#)
                && l.contains(r#"protocol="otlp_grpc""#)),
        "{text}"
    );
}

#[test]
fn otlp_grpc_traces_are_stored_and_counted_in_span_metrics() {
    ensure_grpc_client();
    let s = Server::start_with(&["--otlp-grpc", "127.0.0.1:0"], &[]);

    let o = call(&s, "traces", "mtrace1", &["--gzip"]);
    assert_eq!(o.code, "OK", "{}", o.message);
    assert_eq!(o.trace_id.len(), 32);
    let (status, v) = get(&s, &format!("/api/v1/traces/{}", o.trace_id), &[], None);
    assert_eq!(status, 200, "{v}");
    let spans = v["data"]["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2, "{v}");
    assert_eq!(spans[0]["name"], "GET /checkout");
    assert_eq!(spans[0]["service"], "grpc-e2e");
    assert_eq!(spans[0]["kind"], "server");
    assert_eq!(spans[1]["name"], "charge");
    assert_eq!(spans[1]["service"], "grpc-payment");
    assert_eq!(spans[1]["parent_span_id"], spans[0]["span_id"]);
    assert_eq!(spans[1]["status"]["code"], "error");
    assert_eq!(spans[1]["status"]["message"], "card declined");
    assert_eq!(spans[1]["duration_ns"], 30_000_000);

    // Span metrics: one call per span, by service and status, duration in seconds.
    let r = promql(
        &s,
        r#"traces_span_metrics_calls_total{service_name="grpc-payment"}"#,
        None,
    );
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].1, 1.0);
    assert_eq!(r[0].0["span_name"], "charge");
    assert_eq!(r[0].0["span_kind"], "SPAN_KIND_CLIENT");
    assert_eq!(r[0].0["status_code"], "STATUS_CODE_ERROR");
    let r = promql(
        &s,
        r#"traces_span_metrics_duration_seconds_bucket{service_name="grpc-payment", le="0.05"}"#,
        None,
    );
    assert_eq!(r.iter().map(|x| x.1).collect::<Vec<_>>(), [1.0]);
    let r = promql(
        &s,
        r#"traces_span_metrics_duration_seconds_bucket{service_name="grpc-payment", le="0.01"}"#,
        None,
    );
    assert_eq!(r.iter().map(|x| x.1).collect::<Vec<_>>(), [0.0]);
    let r = promql(
        &s,
        r#"traces_span_metrics_duration_seconds_sum{service_name="grpc-e2e"}"#,
        None,
    );
    assert_eq!(r.len(), 1, "{r:?}");
    assert!((r[0].1 - 0.05).abs() < 1e-9, "{r:?}");

    // A second export of the same key accumulates.
    let o = call(&s, "traces", "mtrace2", &[]);
    assert_eq!(o.code, "OK", "{}", o.message);
    let r = promql(
        &s,
        r#"traces_span_metrics_calls_total{service_name="grpc-payment"}"#,
        None,
    );
    assert_eq!(r.iter().map(|x| x.1).collect::<Vec<_>>(), [2.0]);

    // Malformed trace export: INVALID_ARGUMENT, nothing stored.
    let o = call(&s, "malformed-traces", "x", &[]);
    assert_eq!(o.code, "INVALID_ARGUMENT", "{}", o.message);
    assert!(!o.message.is_empty());
    let (status, v) = get(&s, "/api/v1/services", &[], None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"], serde_json::json!(["grpc-e2e", "grpc-payment"]));
}
