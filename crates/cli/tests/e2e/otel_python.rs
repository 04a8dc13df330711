//! Interop: the real OpenTelemetry Python SDK (`opentelemetry-sdk` and
//! `opentelemetry-exporter-otlp-proto-http` from PyPI, installed here when missing) sends
//! logs with default exporter settings; they are found by attribute and by trace id.

use std::process::Command;

use crate::util::{repo_root, Server};

/// Installs the SDK when it is not importable; fails loudly (never skips) when it cannot.
pub fn ensure_python_packages(import: &str, packages: &[&str]) {
    let have = Command::new("python3")
        .args(["-c", &format!("import {import}")])
        .status();
    if matches!(have, Ok(s) if s.success()) {
        return;
    }
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(packages)
        .output()
        .expect("python3 must be installed for the interop tests");
    assert!(
        out.status.success(),
        "pip install {packages:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run_sdk(s: &Server, compression: &str) -> (String, String) {
    let out = Command::new("python3")
        .arg(repo_root().join("testdata/interop/otel_logs.py"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &s.otlp)
        .env("OTEL_EXPORTER_OTLP_COMPRESSION", compression)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python SDK script failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut ids = stdout.split_whitespace();
    (
        ids.next().unwrap().to_string(),
        ids.next().unwrap().to_string(),
    )
}

#[test]
fn opentelemetry_python_sdk_logs_are_found_by_attribute_and_trace_id() {
    ensure_python_packages(
        "opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http",
        &[
            "opentelemetry-sdk",
            "opentelemetry-exporter-otlp-proto-http",
        ],
    );
    let s = Server::start();
    let (trace_id, span_id) = run_sdk(&s, "none");

    let r = s.rows("order_id:o-1001");
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["message"], "payment failed for order o-1001");
    assert_eq!(r[0]["level"], "error");
    assert_eq!(r[0]["service"], "py-checkout");
    assert_eq!(r[0]["attributes"]["amount_cents"], 4599);
    assert_eq!(r[0]["attributes"]["deployment.environment"], "interop");
    assert_eq!(r[0]["trace_id"], trace_id);
    assert_eq!(r[0]["span_id"], span_id);

    let r = s.rows(&format!("trace_id:{trace_id}"));
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["attributes"]["order_id"], "o-1001");

    assert_eq!(s.count("service:py-checkout in_stock:true sku:sku-42"), 1);
    assert_eq!(
        s.count("service:py-checkout duration_ms:>800 level:warn"),
        1
    );
    assert_eq!(s.count("service:py-checkout"), 3);

    // The same with gzip, as `OTEL_EXPORTER_OTLP_COMPRESSION=gzip` configures it.
    let (trace2, _) = run_sdk(&s, "gzip");
    assert_ne!(trace2, trace_id);
    assert_eq!(s.count(&format!("trace_id:{trace2}")), 1);
    assert_eq!(s.count("service:py-checkout"), 6);
}
