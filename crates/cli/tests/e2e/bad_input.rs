//! Bad input: each case a clear 4xx whose message names the problem, nothing of the batch
//! stored, and the server still serving afterwards.

use std::io::Write;

use serde_json::Value;

use crate::util::{client, Server};

/// Sends `body` to `path`; returns (status, error message).
fn send(
    s: &Server,
    path: &str,
    ct: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String) {
    let mut r = client().post(s.url(path)).header("Content-Type", ct);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.body(body).send().unwrap();
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    let msg = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| {
            v.get("error")
                .or_else(|| v.get("message"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or(text);
    (status, msg)
}

fn expect(s: &Server, path: &str, ct: &str, body: &[u8], status: u16, needle: &str) {
    let (st, msg) = send(s, path, ct, &[], body.to_vec());
    assert_eq!(st, status, "{path} {ct}: {msg}");
    assert!(
        msg.to_lowercase().contains(&needle.to_lowercase()),
        "{path}: message {msg:?} should mention {needle:?}"
    );
}

#[test]
fn malformed_bodies_are_rejected_whole_with_a_clear_4xx() {
    let s = Server::start_with(&[], &[("SIGHTLINE_SERVER_MAX_BODY_SIZE", "64KiB")]);
    let nd = "/api/v1/logs/ingest";
    // NDJSON: the bad line is named and the good line before it is not stored.
    expect(
        &s,
        nd,
        "application/x-ndjson",
        b"{\"msg\":\"good\",\"service\":\"bad-batch\"}\n{\"msg\": oops}\n",
        400,
        "line 2",
    );
    expect(
        &s,
        nd,
        "application/x-ndjson",
        b"{\"msg\":\"a\"}\n[1,2]\n",
        400,
        "line 2",
    );
    expect(
        &s,
        nd,
        "application/x-ndjson",
        b"{\"msg\":\"a\",\"ts\":\"not a time\"}\n",
        400,
        "line 1",
    );
    expect(
        &s,
        nd,
        "application/x-ndjson",
        b"{\"msg\":\"a\",\"trace_id\":\"xyz\"}\n",
        400,
        "trace_id",
    );
    expect(
        &s,
        nd,
        "application/x-ndjson",
        b"{\"msg\":\"caf\xff\"}\n",
        400,
        "utf-8",
    );
    expect(&s, nd, "application/x-ndjson", b"", 400, "empty");
    expect(&s, nd, "application/x-ndjson", b"\n\n", 400, "no records");
    expect(&s, nd, "application/x-protobuf", b"{}", 415, "content-type");
    expect(
        &s,
        "/api/v1/logs/ingest?format=xml",
        "text/plain",
        b"hello\n",
        400,
        "unknown format",
    );
    expect(
        &s,
        "/api/v1/logs/ingest?format=regex",
        "text/plain",
        b"hello\n",
        400,
        "pattern",
    );
    expect(
        &s,
        "/api/v1/logs/ingest?format=regex&pattern=(",
        "text/plain",
        b"hello\n",
        400,
        "pattern",
    );
    expect(
        &s,
        "/api/v1/logs/ingest?format=syslog",
        "text/plain",
        b"ok line\n\xff\xfe\n",
        400,
        "line 2",
    );
    // A huge line (over the body limit) is refused with 413, compressed or not.
    let huge = format!("{{\"msg\":\"{}\"}}\n", "x".repeat(100 * 1024));
    expect(
        &s,
        nd,
        "application/x-ndjson",
        huge.as_bytes(),
        413,
        "limit",
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(huge.as_bytes()).unwrap();
    let (st, msg) = send(
        &s,
        nd,
        "application/x-ndjson",
        &[("Content-Encoding", "gzip")],
        gz.finish().unwrap(),
    );
    assert_eq!(st, 413, "{msg}");
    let (st, msg) = send(
        &s,
        nd,
        "application/x-ndjson",
        &[("Content-Encoding", "gzip")],
        b"not gzip".to_vec(),
    );
    assert_eq!(st, 400, "{msg}");
    assert!(msg.contains("gzip"), "{msg}");
    let (st, msg) = send(
        &s,
        nd,
        "application/x-ndjson",
        &[("Content-Encoding", "br")],
        b"x".to_vec(),
    );
    assert_eq!(st, 415, "{msg}");

    // OTLP: malformed protobuf, malformed JSON, wrong content type, empty body.
    expect(
        &s,
        "/v1/logs",
        "application/x-protobuf",
        b"\x0a\xff\xff\xff\xff\x0f garbage",
        400,
        "protobuf",
    );
    expect(
        &s,
        "/v1/logs",
        "application/json",
        b"{\"resourceLogs\": [",
        400,
        "json",
    );
    expect(
        &s,
        "/v1/logs",
        "application/json",
        b"{\"resourceLogs\": 5}",
        400,
        "json",
    );
    expect(&s, "/v1/logs", "text/plain", b"hello", 415, "content-type");
    expect(&s, "/v1/logs", "application/x-protobuf", b"", 400, "empty");
    // A record with a 5-byte trace id.
    let bad_ids = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"},"traceId":"0102030405"}]}]}]}"#;
    let (st, msg) = send(&s, "/v1/logs", "application/json", &[], bad_ids.to_vec());
    assert_eq!(st, 400, "{msg}");

    // Nothing of any rejected batch was stored.
    assert_eq!(s.count("*"), 0);

    // Bad queries: 400 naming the position.
    for (q, needle) in [
        ("status:>=", "position"),
        ("\"unclosed", "position"),
        ("level:error |", "position"),
        ("* | frobnicate", "position"),
        ("message:~\"(\"", "position"),
        ("(a OR b", "position"),
    ] {
        let r = client()
            .get(s.url("/api/v1/logs/query"))
            .query(&[("q", q)])
            .send()
            .unwrap();
        let st = r.status().as_u16();
        let v: Value = r.json().unwrap();
        assert_eq!(st, 400, "{q}: {v}");
        assert!(v["error"].as_str().unwrap().contains(needle), "{q}: {v}");
    }
    for (k, v) in [
        ("start", "yesterday"),
        ("limit", "-1"),
        ("limit", "100000000"),
        ("end", "x"),
    ] {
        let r = client()
            .get(s.url("/api/v1/logs/query"))
            .query(&[(k, v)])
            .send()
            .unwrap();
        assert_eq!(r.status(), 400, "{k}={v}");
        let v: Value = r.json().unwrap();
        assert!(v["error"].as_str().unwrap().contains(k), "{v}");
    }
    let r = client()
        .get(s.url("/api/v1/logs/tail"))
        .query(&[("q", "a |")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);

    // Rejections are counted by reason.
    let m = client()
        .get(s.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(m.contains("sightline_rejected_batches_total{signal=\"logs\",protocol=\"ndjson\",reason=\"bad_request\"}"), "{m}");
    assert!(m.contains("reason=\"too_large\""), "{m}");

    // Still serving.
    s.ingest_ndjson("{\"msg\":\"fine\"}\n");
    assert_eq!(s.count("fine"), 1);
}

#[test]
fn unknown_config_key_is_named_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sightline.toml");
    std::fs::write(&cfg, "[storage]\nretension = \"3d\"\n").unwrap();
    let (ok, _, err) = crate::util::cli(
        &[
            "serve",
            "--config",
            cfg.to_str().unwrap(),
            "--data-dir",
            dir.path().join("d").to_str().unwrap(),
        ],
        None,
    );
    assert!(!ok);
    assert!(err.contains("retension"), "{err}");
}
