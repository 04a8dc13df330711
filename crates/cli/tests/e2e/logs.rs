//! Every ingest path and every example query of ARCHITECTURE.md §5, with exact results.

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::{json, Value};

use crate::util::{cli, client, now_secs, Server};

const NS: i64 = 1_000_000_000;
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// A 5-minute boundary about 50 minutes ago, so the default one-hour range covers the
/// fixture and `histogram 5m` buckets are predictable.
fn base_secs() -> i64 {
    let now = now_secs() as i64;
    (now - 50 * 60) / 300 * 300
}

fn fixture(t: i64) -> String {
    let rows = [
        json!({"ts": t, "level": "info", "service": "api", "message": "GET /users 200", "status": 200, "path": "/users", "endpoint": "/users", "duration_ms": 12}),
        json!({"ts": t + 10, "level": "error", "service": "api", "message": "connection refused to db:5432", "status": 503, "path": "/orders", "endpoint": "/orders", "duration_ms": 1500, "trace_id": TRACE, "span_id": "00f067aa0ba902b7"}),
        json!({"ts": t + 20, "level": "error", "service": "api", "message": "upstream error: Connection Refused", "status": 502, "path": "/orders", "endpoint": "/orders", "duration_ms": 900}),
        json!({"ts": t + 30, "level": "warn", "service": "api", "message": "timeout after 250ms", "status": 504, "path": "/health", "endpoint": "/health", "duration_ms": 250}),
        json!({"ts": t + 40, "level": "info", "service": "api", "message": "GET /health 200", "status": 200, "path": "/health", "endpoint": "/health", "duration_ms": 2}),
        json!({"ts": t + 300, "level": "error", "service": "web", "message": "connection refused", "status": 500, "path": "/checkout", "endpoint": "/checkout", "duration_ms": 300}),
        json!({"ts": t + 330, "level": "info", "service": "web", "message": "rendered page", "status": 200, "path": "/users", "endpoint": "/users", "duration_ms": 40, "trace_id": TRACE}),
        json!({"ts": t + 660, "level": "debug", "service": "db", "message": "timeout after 1200ms waiting for lock", "duration_ms": 1200}),
        json!({"ts": t + 661, "level": "info", "service": "api", "message": "GET /users 200", "status": 200, "path": "/users", "endpoint": "/users", "duration_ms": 20}),
        json!({"ts": t + 720, "level": "error", "service": "api", "message": "connection refused", "status": 500, "path": "/health", "endpoint": "/health", "duration_ms": 30}),
    ];
    rows.iter().map(|r| r.to_string() + "\n").collect()
}

fn messages(rows: &[Value]) -> Vec<&str> {
    rows.iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect()
}

fn ts(secs: i64) -> String {
    // RFC 3339 with nanoseconds, as the API returns it.
    let days = secs.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000000000Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// Howard Hinnant's days-to-civil, to format expected timestamps independently of the server.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[test]
fn architecture_example_queries() {
    let s = Server::start();
    let t = base_secs();
    let v = s.ingest_ndjson(&fixture(t));
    assert_eq!(v["accepted"], 10);

    // Half the checks before a flush (rows in the buffer), all after (rows in parts).
    for flushed in [false, true] {
        if flushed {
            s.flush();
        }
        let q = |q: &str| s.rows(q);

        let r = q(r#"service:api level:error "connection refused""#);
        assert_eq!(
            messages(&r),
            [
                "connection refused",
                "upstream error: Connection Refused",
                "connection refused to db:5432"
            ],
            "flushed={flushed}"
        );
        // The response shape of a raw record.
        let rec = r
            .iter()
            .find(|r| r["message"] == "connection refused to db:5432")
            .unwrap();
        assert_eq!(rec["timestamp"], ts(t + 10));
        assert_eq!(rec["level"], "error");
        assert_eq!(rec["service"], "api");
        assert_eq!(rec["trace_id"], TRACE);
        assert_eq!(rec["span_id"], "00f067aa0ba902b7");
        assert_eq!(rec["attributes"]["status"], 503);
        assert_eq!(rec["attributes"]["path"], "/orders");
        assert!(
            r[0].get("trace_id").is_none(),
            "absent ids are omitted: {}",
            r[0]
        );

        let r = q("status:>=500 -path:/health");
        assert_eq!(
            messages(&r),
            [
                "connection refused",
                "upstream error: Connection Refused",
                "connection refused to db:5432"
            ]
        );
        assert_eq!(r[0]["service"], "web");

        let r = q(&format!("trace_id:{TRACE}"));
        assert_eq!(
            messages(&r),
            ["rendered page", "connection refused to db:5432"]
        );

        let r = q(r#"message:~"timeout after \d+ms""#);
        assert_eq!(
            messages(&r),
            [
                "timeout after 1200ms waiting for lock",
                "timeout after 250ms"
            ]
        );

        assert_eq!(q("* | stats count()"), vec![json!({"count": 10})]);
        assert_eq!(
            q("* | stats count() by level"),
            vec![
                json!({"level": "error", "count": 4}),
                json!({"level": "info", "count": 4}),
                json!({"level": "debug", "count": 1}),
                json!({"level": "warn", "count": 1}),
            ]
        );

        let r = q("* | stats p95(duration_ms), avg(duration_ms) by endpoint");
        let by: std::collections::BTreeMap<String, (f64, f64)> = r
            .iter()
            .map(|row| {
                (
                    row["endpoint"].as_str().unwrap_or("<none>").to_string(),
                    (
                        row["p95(duration_ms)"].as_f64().unwrap(),
                        row["avg(duration_ms)"].as_f64().unwrap(),
                    ),
                )
            })
            .collect();
        assert_eq!(by.len(), 5, "{r:?}");
        assert_eq!(by["/orders"], (1500.0, 1200.0));
        assert_eq!(by["/checkout"], (300.0, 300.0));
        assert_eq!(by["<none>"], (1200.0, 1200.0));
        assert_eq!(by["/users"].1, 24.0);
        assert_eq!(by["/health"].1, 94.0);
        // p95 of [12, 20, 40] and [2, 30, 250]: between the second and the largest value.
        assert!(by["/users"].0 > 20.0 && by["/users"].0 <= 40.0, "{r:?}");
        assert!(by["/health"].0 > 30.0 && by["/health"].0 <= 250.0, "{r:?}");

        let h = q("* | histogram 5m");
        let times: Vec<String> = h
            .iter()
            .map(|r| r["time"].as_str().unwrap().replace(".000000000Z", "Z"))
            .collect();
        let want: Vec<String> = [t, t + 300, t + 600]
            .iter()
            .map(|s| ts(*s).replace(".000000000Z", "Z"))
            .collect();
        assert_eq!(times, want, "{h:?}");
        let h = q("* | histogram 5m");
        let counts: Vec<i64> = h.iter().map(|r| r["count"].as_i64().unwrap()).collect();
        assert_eq!(counts, [5, 2, 3], "{h:?}");

        assert_eq!(
            q("* | top 10 path"),
            vec![
                json!({"path": "/health", "count": 3}),
                json!({"path": "/users", "count": 3}),
                json!({"path": "/orders", "count": 2}),
                json!({"path": "/checkout", "count": 1}),
            ]
        );

        let r = q("* | fields timestamp, message");
        assert_eq!(r.len(), 10);
        assert_eq!(
            r[0],
            json!({"timestamp": ts(t + 720), "message": "connection refused"})
        );
    }

    // Defaults: no start/end → the last hour, which holds the whole fixture.
    let r = client()
        .get(s.url("/api/v1/logs/query"))
        .query(&[("q", "service:db")])
        .send()
        .unwrap();
    let v: Value = r.json().unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert!(v["stats"]["scanned_rows"].as_u64().unwrap() >= 1);
    assert!(v["stats"]["elapsed_ms"].is_number());

    // POST form and limit.
    let v: Value = client()
        .post(s.url("/api/v1/logs/query"))
        .form(&[
            ("q", "level:error"),
            ("limit", "2"),
            ("start", &(t - 1).to_string()),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        messages(v["data"].as_array().unwrap()),
        ["connection refused", "connection refused"]
    );

    // Fields with counts.
    let v: Value = client()
        .get(s.url("/api/v1/logs/fields"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let fields: Vec<(String, u64)> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(fields.contains(&("status".to_string(), 9)), "{fields:?}");
    assert!(
        fields.contains(&("duration_ms".to_string(), 10)),
        "{fields:?}"
    );
    assert!(fields.contains(&("trace_id".to_string(), 2)), "{fields:?}");
}

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn otlp_request(service: &str, n: usize, t_ns: u64) -> ExportLogsServiceRequest {
    let records = (0..n)
        .map(|i| LogRecord {
            time_unix_nano: t_ns + i as u64,
            severity_number: 17,
            severity_text: "ERROR".into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!(
                    "otlp record {i} payment declined"
                ))),
            }),
            attributes: vec![
                kv("http.status_code", any_value::Value::IntValue(402)),
                kv("customer", any_value::Value::StringValue(format!("c{i}"))),
            ],
            trace_id: hex(TRACE),
            span_id: hex("00f067aa0ba902b7"),
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    kv(
                        "service.name",
                        any_value::Value::StringValue(service.into()),
                    ),
                    kv(
                        "deployment.environment",
                        any_value::Value::StringValue("prod".into()),
                    ),
                ],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[test]
fn otlp_http_protobuf_json_and_gzip_on_both_listeners() {
    let s = Server::start();
    let t = (now_secs() - 600) * NS as u64;
    let c = client();
    let post = |base: &str, ct: &str, body: Vec<u8>, gz: bool| {
        let mut r = c.post(format!("{base}/v1/logs")).header("Content-Type", ct);
        if gz {
            r = r.header("Content-Encoding", "gzip");
        }
        let r = r.body(body).send().unwrap();
        let st = r.status();
        let body = r.bytes().unwrap();
        assert!(st.is_success(), "{st} {}", String::from_utf8_lossy(&body));
        body
    };
    let pb = otlp_request("checkout", 3, t).encode_to_vec();
    let resp = post(&s.main, "application/x-protobuf", pb.clone(), false);
    assert!(
        resp.is_empty(),
        "an empty ExportLogsServiceResponse is zero bytes"
    );
    post(
        &s.otlp,
        "application/x-protobuf",
        otlp_request("billing", 2, t).encode_to_vec(),
        false,
    );
    post(
        &s.otlp,
        "application/x-protobuf",
        gzip(&otlp_request("gzipped", 4, t).encode_to_vec()),
        true,
    );

    // OTLP/JSON as the specification spells it: hex ids, lowerCamelCase, int64 as string.
    let j = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "jsonsvc"}}]},
        "scopeLogs": [{"scope": {"name": "my.library"}, "logRecords": [{
            "timeUnixNano": (t + 5).to_string(),
            "severityNumber": 13, "severityText": "WARN",
            "body": {"stringValue": "json record low stock"},
            "attributes": [{"key": "sku", "value": {"stringValue": "A-17"}}, {"key": "qty", "value": {"intValue": "3"}}],
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174"
        }]}]
    }]});
    let resp = post(
        &s.otlp,
        "application/json",
        j.to_string().into_bytes(),
        false,
    );
    assert_eq!(serde_json::from_slice::<Value>(&resp).unwrap(), json!({}));

    assert_eq!(s.count("service:checkout"), 3);
    assert_eq!(s.count("service:billing"), 2);
    assert_eq!(s.count("service:gzipped"), 4);
    let r = s.rows("customer:c1 service:checkout");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["message"], "otlp record 1 payment declined");
    assert_eq!(r[0]["level"], "error");
    assert_eq!(r[0]["attributes"]["http.status_code"], 402);
    assert_eq!(r[0]["attributes"]["deployment.environment"], "prod");
    assert_eq!(r[0]["trace_id"], TRACE);
    assert_eq!(s.count("deployment.environment:prod"), 9);
    assert_eq!(s.count(&format!("trace_id:{TRACE}")), 9);

    let r = s.rows("trace_id:5b8efff798038103d269b633813fc60c");
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["service"], "jsonsvc");
    assert_eq!(r[0]["level"], "warn");
    assert_eq!(r[0]["attributes"]["qty"], 3);
    assert_eq!(r[0]["span_id"], "eee19b7ec3c1b174");
    assert_eq!(s.count("qty:>2 sku:A-17"), 1);

    let m = c.get(s.url("/metrics")).send().unwrap().text().unwrap();
    assert!(
        m.contains(
            "sightline_ingested_records_total{signal=\"logs\",protocol=\"otlp_http_protobuf\"} 9"
        ),
        "{m}"
    );
    assert!(
        m.contains(
            "sightline_ingested_records_total{signal=\"logs\",protocol=\"otlp_http_json\"} 1"
        ),
        "{m}"
    );
    assert!(m.contains("sightline_wal_bytes "), "{m}");
    assert!(
        m.contains("sightline_query_duration_seconds_count{kind=\"logs\"}"),
        "{m}"
    );
}

fn ingest_lines(s: &Server, query: &[(&str, &str)], body: &str) -> Value {
    let r = client()
        .post(s.url("/api/v1/logs/ingest"))
        .query(query)
        .header("Content-Type", "text/plain")
        .body(body.to_string())
        .send()
        .unwrap();
    let st = r.status();
    let text = r.text().unwrap();
    assert!(st.is_success(), "{query:?}: {st} {text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn raw_line_formats() {
    let s = Server::start();
    let now = now_secs() as i64 - 120;
    let iso = |off: i64| ts(now + off).replace(".000000000Z", "Z");

    let v = ingest_lines(
        &s,
        &[("format", "nginx"), ("service", "edge")],
        &format!(
            "127.0.0.1 - frank [{}] \"GET /apache_pb.gif HTTP/1.1\" 200 2326 \"http://example.com/start.html\" \"Mozilla/4.08\"\n\
             10.0.0.2 - - [{}] \"POST /api/orders HTTP/1.1\" 503 17 \"-\" \"curl/8.0\"\n\
             this is not an access log line\n",
            clf(now),
            clf(now + 1)
        ),
    );
    assert_eq!(v["accepted"], 3);
    assert_eq!(s.count("service:edge"), 3);
    let r = s.rows("service:edge status:>=500");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["attributes"]["method"], "POST");
    assert_eq!(r[0]["attributes"]["path"], "/api/orders");
    assert_eq!(r[0]["attributes"]["bytes"], 17);
    assert_eq!(r[0]["level"], "error");
    assert_eq!(r[0]["timestamp"], ts(now + 1));
    let r = s.rows("service:edge parse_error:*");
    assert_eq!(
        messages(&r),
        ["this is not an access log line"],
        "unparsable lines are kept"
    );

    ingest_lines(
        &s,
        &[("format", "logfmt"), ("service", "lf")],
        &format!(
            "ts={} level=warn msg=\"disk almost full\" disk=sda1 used_pct=91.5\n",
            iso(2)
        ),
    );
    let r = s.rows("service:lf used_pct:>90");
    assert_eq!(messages(&r), ["disk almost full"]);
    assert_eq!(r[0]["level"], "warn");
    assert_eq!(r[0]["attributes"]["disk"], "sda1");

    ingest_lines(
        &s,
        &[("format", "json"), ("service", "js")],
        &format!("{{\"time\":\"{}\",\"severity\":\"ERROR\",\"msg\":\"boom\",\"http\":{{\"status\":500}}}}\nnot json\n", iso(3)),
    );
    assert_eq!(s.count("service:js"), 2);
    assert_eq!(messages(&s.rows("service:js http.status:500")), ["boom"]);

    ingest_lines(
        &s,
        &[("format", "syslog")],
        "<34>1 2026-11-20T22:14:15.003Z mymachine.example.com su 77 ID47 - 'su root' failed for lonvick on /dev/pts/8\n\
         Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186\n",
    );
    let r = s.rows("appname:su");
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["attributes"]["hostname"], "mymachine.example.com");
    // PRI 34 = auth.crit; the OpenTelemetry data model maps syslog Critical to FATAL2.
    assert_eq!(r[0]["level"], "fatal");
    assert_eq!(s.count("hostname:LabSZ webmaster"), 1);

    ingest_lines(
        &s,
        &[("format", "apache"), ("service", "httpd")],
        "[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6\n",
    );
    let r = s.rows("service:httpd");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["level"], "error");
    assert_eq!(r[0]["timestamp"], "2005-12-04T04:47:44.000000000Z");

    ingest_lines(
        &s,
        &[
            ("format", "regex"),
            ("service", "rx"),
            (
                "pattern",
                r"^(?P<level>\w+) (?P<user>\w+) took (?P<duration>\d+)ms$",
            ),
        ],
        "INFO alice took 35ms\nWARN bob took 950ms\nsomething else\n",
    );
    assert_eq!(s.count("service:rx"), 3);
    assert_eq!(messages(&s.rows("service:rx duration:>100")).len(), 1);
    assert_eq!(
        s.rows("service:rx duration:>100")[0]["attributes"]["user"],
        "bob"
    );
}

/// A time in the common log format, `10/Oct/2000:13:55:36 +0000`.
fn clf(secs: i64) -> String {
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{d:02}/{}/{y}:{:02}:{:02}:{:02} +0000",
        MON[m as usize - 1],
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

#[test]
fn tenants_are_isolated() {
    let s = Server::start();
    let c = client();
    for (tenant, n) in [("team-a", 2), ("team-b", 3)] {
        let body: String = (0..n)
            .map(|i| format!("{{\"msg\":\"hello {i}\",\"service\":\"svc\"}}\n"))
            .collect();
        let r = c
            .post(s.url("/api/v1/logs/ingest"))
            .header("X-Scope-OrgID", tenant)
            .body(body)
            .send()
            .unwrap();
        assert!(r.status().is_success());
    }
    let count = |tenant: Option<&str>| {
        let mut r = c
            .get(s.url("/api/v1/logs/query"))
            .query(&[("q", "* | stats count()")]);
        if let Some(t) = tenant {
            r = r.header("X-Scope-OrgID", t);
        }
        r.send().unwrap().json::<Value>().unwrap()["data"][0]["count"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(count(Some("team-a")), 2);
    assert_eq!(count(Some("team-b")), 3);
    assert_eq!(count(None), 0);
    s.flush();
    assert_eq!(count(Some("team-a")), 2);
    assert_eq!(count(Some("team-b")), 3);
    let r = c
        .get(s.url("/api/v1/logs/query"))
        .header("X-Scope-OrgID", "../etc")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[test]
fn live_tail_streams_matching_records() {
    let s = Server::start();
    let resp = client()
        .get(s.url("/api/v1/logs/tail"))
        .query(&[("q", "level:error")])
        .send()
        .unwrap();
    assert!(resp.status().is_success());
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(resp).lines() {
            let Ok(line) = line else { break };
            if let Some(d) = line.strip_prefix("data:") {
                let _ = tx.send(d.trim().to_string());
            }
        }
    });
    // The subscription is registered before the response headers are sent.
    s.ingest_ndjson("{\"level\":\"info\",\"msg\":\"ignored\"}\n{\"level\":\"error\",\"msg\":\"tailed one\",\"service\":\"t\"}\n");
    let got: Value =
        serde_json::from_str(&rx.recv_timeout(Duration::from_secs(10)).unwrap()).unwrap();
    assert_eq!(got["message"], "tailed one");
    assert_eq!(got["service"], "t");
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "info record must not be tailed"
    );
}

#[test]
fn durable_across_sigterm_and_sigkill_restarts() {
    let mut s = Server::start();
    s.ingest_ndjson("{\"msg\":\"before term\",\"service\":\"r\"}\n");
    assert!(s.stop().success(), "clean exit on SIGTERM");
    s.restart();
    assert_eq!(s.count("service:r"), 1);
    s.ingest_ndjson("{\"msg\":\"before kill\",\"service\":\"r\"}\n");
    s.kill9();
    s.restart();
    assert_eq!(
        messages(&s.rows("service:r")),
        ["before kill", "before term"]
    );
    s.flush();
    s.kill9();
    s.restart();
    assert_eq!(
        s.count("service:r"),
        2,
        "a flushed batch is not replayed twice"
    );
}

#[test]
fn cli_ingest_and_logs() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("app.log");
    std::fs::write(
        &f,
        "level=error msg=\"card declined\" user=7\nlevel=info msg=\"paid\" user=8\n",
    )
    .unwrap();
    let (ok, out, err) = cli(
        &[
            "ingest",
            "--server",
            &s.main,
            "--format",
            "logfmt",
            "--service",
            "shop",
            f.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "ingested 2 records");
    let (ok, out, err) = cli(
        &["ingest", "--server", &s.main, "-"],
        Some(b"{\"msg\":\"from stdin\",\"service\":\"shop\"}\n"),
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "ingested 1 records");

    let (ok, out, err) = cli(
        &[
            "logs",
            "--server",
            &s.main,
            "service:shop | stats count() by level",
        ],
        None,
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["level", "count"]
    );
    // error 1, info 1, and the stdin record without a level.
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[1..]
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["error", "1"]),
        "{out}"
    );

    let (ok, out, err) = cli(&["logs", "--server", &s.main, "--json", "user:7"], None);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["message"], "card declined");

    let (ok, out, _) = cli(&["logs", "--server", &s.main, "card"], None);
    assert!(ok);
    assert!(
        out.contains("error")
            && out.contains("shop")
            && out.contains("card declined")
            && out.contains("user=7"),
        "{out}"
    );

    let (ok, _, err) = cli(&["logs", "--server", &s.main, "status:>="], None);
    assert!(!ok);
    assert!(err.contains("position"), "{err}");

    // --follow prints records committed after it started.
    let mut follow = std::process::Command::new(crate::util::bin())
        .args([
            "logs",
            "--server",
            &s.main,
            "--follow",
            "--json",
            "service:shop",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let line = loop {
        s.ingest_ndjson("{\"msg\":\"followed\",\"service\":\"shop\"}\n");
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(300)) {
            break l;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "follow printed nothing"
        );
    };
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(
        serde_json::from_str::<Value>(&line).unwrap()["message"],
        "followed"
    );
}
