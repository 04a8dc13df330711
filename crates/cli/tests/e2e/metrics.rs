//! Metrics end to end: imports in both text formats and the Prometheus query API, host
//! metrics, scraping a real `prometheus-client` app (with staleness when it goes away),
//! a real Prometheus remote-writing what it scrapes from a real node exporter, and
//! acknowledged samples surviving SIGKILL.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sightline_model::{Labels, Sample, TimeSeries};

use crate::otel_python::ensure_python_packages;
use crate::util::{cli, client, ensure_debian_package, free_port, repo_root, Peer, Server};

const NO_HOST: (&str, &str) = ("SIGHTLINE_METRICS_HOST_INTERVAL", "off");

/// `GET /api/v1/query` (at `time` when given); panics unless it answers success.
fn instant(s: &Server, q: &str, time: Option<&str>) -> Value {
    let mut params = vec![("query", q)];
    if let Some(t) = time {
        params.push(("time", t));
    }
    let r = client()
        .get(s.url("/api/v1/query"))
        .query(&params)
        .send()
        .unwrap();
    let status = r.status();
    let v: Value = r.json().unwrap();
    assert!(status.is_success(), "{q}: {status} {v}");
    assert_eq!(v["status"], "success", "{q}: {v}");
    v["data"].clone()
}

/// The vector result of an instant query as (labels without `__name__`... as JSON, value).
fn vector(s: &Server, q: &str, time: Option<&str>) -> Vec<(Value, String)> {
    let d = instant(s, q, time);
    assert_eq!(d["resultType"], "vector", "{q}: {d}");
    d["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["metric"].clone(),
                e["value"][1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

const PROM_TEXT: &str = "\
# HELP http_requests_total Requests served.
# TYPE http_requests_total counter
http_requests_total{job=\"api\",code=\"200\"} 0 1700000000000
http_requests_total{job=\"api\",code=\"500\"} 1 1700000000000
http_requests_total{job=\"api\",code=\"200\"} 30 1700000030000
http_requests_total{job=\"api\",code=\"200\"} 15 1700000015000
http_requests_total{job=\"api\",code=\"500\"} 2 1700000060000
http_requests_total{job=\"api\",code=\"200\"} 45 1700000045000
http_requests_total{job=\"api\",code=\"200\"} 60 1700000060000
";

#[test]
fn imported_samples_answer_through_the_prometheus_api_and_cli() {
    let s = Server::start_with(&[], &[NO_HOST]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.prom");
    std::fs::write(&file, PROM_TEXT).unwrap();
    let (ok, out, err) = cli(
        &[
            "import",
            "--server",
            &s.main,
            "--format",
            "prometheus",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("imported 7 samples"), "{out}");

    // Latest sample within the lookback, per series, at the evaluation time.
    let mut v = vector(&s, "http_requests_total", Some("1700000050"));
    v.sort_by(|a, b| a.0["code"].as_str().cmp(&b.0["code"].as_str()));
    assert_eq!(v.len(), 2);
    assert_eq!(
        v[0].0,
        serde_json::json!({"__name__": "http_requests_total", "code": "200", "job": "api"})
    );
    assert_eq!(v[0].1, "45");
    assert_eq!(v[1].1, "1");
    assert_eq!(
        vector(&s, "sum by (job) (http_requests_total)", Some("1700000060"))[0].1,
        "62"
    );
    assert_eq!(
        vector(
            &s,
            "max_over_time(http_requests_total{code=\"200\"}[1m])",
            Some("1700000060")
        )[0]
        .1,
        "60"
    );
    assert_eq!(
        vector(
            &s,
            "http_requests_total{code=\"200\"} offset 30s",
            Some("1700000060")
        )[0]
        .1,
        "30"
    );
    assert_eq!(
        vector(&s, "count(http_requests_total > 10)", Some("1700000060"))[0].1,
        "1"
    );
    // Before the first sample and after the lookback: nothing.
    assert!(vector(&s, "http_requests_total", Some("1699999999")).is_empty());
    assert!(vector(&s, "http_requests_total", Some("1700000400")).is_empty());

    // Range query: one point per step.
    let r: Value = client()
        .get(s.url("/api/v1/query_range"))
        .query(&[
            ("query", "http_requests_total{code=\"200\"}"),
            ("start", "1700000000"),
            ("end", "1700000060"),
            ("step", "15s"),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(r["data"]["resultType"], "matrix", "{r}");
    assert_eq!(
        r["data"]["result"][0]["values"],
        serde_json::json!([
            [1700000000, "0"],
            [1700000015, "15"],
            [1700000030, "30"],
            [1700000045, "45"],
            [1700000060, "60"]
        ])
    );

    // Metadata endpoints, GET and form POST.
    let series: Value = client()
        .post(s.url("/api/v1/series"))
        .form(&[
            ("match[]", "http_requests_total{code=\"500\"}"),
            ("start", "1699999000"),
            ("end", "1700001000"),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        series["data"],
        serde_json::json!([{"__name__": "http_requests_total", "code": "500", "job": "api"}])
    );
    let labels: Value = client()
        .get(s.url("/api/v1/labels"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        labels["data"],
        serde_json::json!(["__name__", "code", "job"])
    );
    let values: Value = client()
        .get(s.url("/api/v1/label/code/values"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(values["data"], serde_json::json!(["200", "500"]));
    let md: Value = client()
        .get(s.url("/api/v1/metadata"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        md["data"]["http_requests_total"][0]["type"], "counter",
        "{md}"
    );
    assert_eq!(
        md["data"]["http_requests_total"][0]["help"],
        "Requests served."
    );
    let bi: Value = client()
        .get(s.url("/api/v1/status/buildinfo"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(bi["status"], "success");

    // OpenMetrics: seconds and `# EOF`.
    let om = dir.path().join("data.om");
    std::fs::write(&om, "# TYPE temp gauge\ntemp{room=\"a\"} 21.5 1700000000.5\ntemp{room=\"a\"} 22 1700000010\n# EOF\n").unwrap();
    let (ok, out, err) = cli(
        &[
            "import",
            "--server",
            &s.main,
            "--format",
            "openmetrics",
            om.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    assert_eq!(vector(&s, "temp", Some("1700000005"))[0].1, "21.5");
    assert_eq!(
        vector(&s, "timestamp(temp)", Some("1700000005"))[0].1,
        "1700000000.5"
    );

    // The CLI's query command.
    let (ok, out, err) = cli(
        &[
            "query",
            "--server",
            &s.main,
            "--time",
            "1700000060",
            "sum(http_requests_total)",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out, "{} 62\n");

    // Bad input: 400 naming the line; bad queries: Prometheus' error shape.
    let r = client()
        .post(s.url("/api/v1/import/prometheus"))
        .body("ok_metric 1\nbad metric{ 2\n")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let e = r.text().unwrap();
    assert!(e.contains("line 2"), "{e}");
    assert!(
        vector(&s, "ok_metric", None).is_empty(),
        "a rejected batch must leave nothing"
    );
    let r = client()
        .post(s.url("/api/v1/import/openmetrics"))
        .body("a 1\n")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400, "missing # EOF");
    let r = client()
        .get(s.url("/api/v1/query"))
        .query(&[("query", "sum(")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().unwrap();
    assert_eq!(
        (v["status"].as_str(), v["errorType"].as_str()),
        (Some("error"), Some("bad_data")),
        "{v}"
    );
    let r = client()
        .get(s.url("/api/v1/query_range"))
        .query(&[
            ("query", "up"),
            ("start", "10"),
            ("end", "20"),
            ("step", "0"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .unwrap()
        .contains("zero or negative query resolution step widths"));
}

#[test]
fn host_metrics_are_collected_with_node_exporter_names() {
    let s = Server::start_with(&[], &[("SIGHTLINE_METRICS_HOST_INTERVAL", "1s")]);
    let mem = poll(
        "node_memory_MemTotal_bytes",
        Duration::from_secs(20),
        || {
            let v = vector(&s, "node_memory_MemTotal_bytes", None);
            (!v.is_empty()).then_some(v)
        },
    );
    assert_eq!(mem[0].0["job"], "node");
    assert!(mem[0].1.parse::<f64>().unwrap() > 1e8);
    let cpus = std::thread::available_parallelism().unwrap().get();
    let idle = vector(&s, "count(node_cpu_seconds_total{mode=\"idle\"})", None);
    assert_eq!(idle[0].1, cpus.to_string());
    let rss = vector(&s, "process_resident_memory_bytes{job=\"sightline\"}", None);
    assert!(rss[0].1.parse::<f64>().unwrap() > 1e6, "{rss:?}");
    for m in [
        "node_load1",
        "node_filesystem_avail_bytes",
        "node_network_receive_bytes_total",
        "process_open_fds",
        "process_threads",
    ] {
        assert!(!vector(&s, m, None).is_empty(), "{m} missing");
    }
}

#[test]
fn scrapes_a_prometheus_client_app_and_marks_it_stale_when_gone() {
    ensure_python_packages("prometheus_client", &["prometheus-client"]);
    let port = free_port();
    let mut app = Command::new("python3")
        .arg(repo_root().join("testdata/interop/prom_client_app.py"))
        .env("PORT", port.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(app.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n        labels:\n          env: test\n"),
    )
    .unwrap();
    let s = Server::start_with(
        &[],
        &[
            NO_HOST,
            (
                "SIGHTLINE_METRICS_SCRAPE_CONFIG_FILE",
                cfg.to_str().unwrap(),
            ),
        ],
    );
    let v = poll("app_requests_total", Duration::from_secs(20), || {
        let v = vector(&s, "app_requests_total", None);
        (!v.is_empty()).then_some(v)
    });
    let instance = format!("127.0.0.1:{port}");
    assert_eq!(
        v[0].0,
        serde_json::json!({"__name__": "app_requests_total", "env": "test", "instance": instance, "job": "app", "path": "/api"})
    );
    assert_eq!(v[0].1, "42");
    assert_eq!(vector(&s, "app_temperature", None)[0].1, "3.5");
    assert_eq!(
        vector(&s, "app_latency_seconds_bucket{le=\"0.5\"}", None)[0].1,
        "2"
    );
    assert_eq!(vector(&s, "app_latency_seconds_count", None)[0].1, "3");
    assert_eq!(vector(&s, "up{job=\"app\"}", None)[0].1, "1");
    assert!(
        vector(&s, "scrape_samples_scraped{job=\"app\"}", None)[0]
            .1
            .parse::<f64>()
            .unwrap()
            > 5.0
    );
    let md: Value = client()
        .get(s.url("/api/v1/metadata"))
        .query(&[("metric", "app_temperature")])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(md["data"]["app_temperature"][0]["type"], "gauge", "{md}");

    // The target goes away: the next scrapes fail, `up` turns 0 and the series are marked
    // stale at once (not kept for the 5-minute lookback).
    app.kill().unwrap();
    app.wait().unwrap();
    poll("up == 0", Duration::from_secs(20), || {
        (vector(&s, "up{job=\"app\"}", None)
            .first()
            .map(|e| e.1.clone())
            == Some("0".into()))
        .then_some(())
    });
    assert!(
        vector(&s, "app_requests_total", None).is_empty(),
        "a stale series must not be returned"
    );
}

#[test]
fn prometheus_remote_writes_what_it_scrapes_from_node_exporter() {
    ensure_debian_package("prometheus", "prometheus");
    ensure_debian_package("prometheus-node-exporter", "prometheus-node-exporter");
    let s = Server::start_with(&[], &[NO_HOST]);
    let dir = tempfile::tempdir().unwrap();
    let ne_port = free_port();
    let mut ne = Peer::spawn(
        "node-exporter",
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{ne_port}")),
        dir.path().join("ne.log"),
    );
    ne.wait_http_ok(
        &format!("http://127.0.0.1:{ne_port}/metrics"),
        Duration::from_secs(30),
    );
    let prom_port = free_port();
    let cfg = dir.path().join("prom.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\nremote_write:\n  - url: {}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n",
            s.main
        ),
    )
    .unwrap();
    let mut prom = Peer::spawn(
        "prometheus",
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("prom-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}")),
        dir.path().join("prom.log"),
    );
    let prom_url = format!("http://127.0.0.1:{prom_port}");
    prom.wait_http_ok(&format!("{prom_url}/-/ready"), Duration::from_secs(60));
    // Wait until a few scrapes have reached Sightline.
    poll(
        "node_cpu_seconds_total via remote write",
        Duration::from_secs(60),
        || {
            let v = vector(
                &s,
                "count_over_time(node_cpu_seconds_total{mode=\"idle\",cpu=\"0\"}[1m])",
                None,
            );
            (v.first()
                .is_some_and(|e| e.1.parse::<f64>().unwrap() >= 4.0))
            .then_some(())
        },
    );
    // Compare a few seconds back (both have that data) at one evaluation time.
    let t = format!(
        "{:.3}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
            - 3.0
    );
    for q in [
        "node_cpu_seconds_total",
        "node_memory_MemTotal_bytes",
        "node_network_receive_bytes_total",
        "up",
        "scrape_samples_scraped",
    ] {
        let theirs: Value = client()
            .get(format!("{prom_url}/api/v1/query"))
            .query(&[("query", q), ("time", t.as_str())])
            .send()
            .unwrap()
            .json()
            .unwrap();
        let mut theirs: Vec<(Value, String)> = theirs["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["metric"].clone(),
                    e["value"][1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let mut ours = vector(&s, q, Some(&t));
        theirs.sort_by_key(|e| e.0.to_string());
        ours.sort_by_key(|e| e.0.to_string());
        assert!(!theirs.is_empty(), "{q}: Prometheus has no data");
        assert_eq!(ours, theirs, "{q} differs at {t}");
    }
}

/// Remote-write bodies made with our encoder (snappy + protobuf as Prometheus sends).
fn write_request(batch: usize) -> Vec<u8> {
    let series: Vec<TimeSeries> = (0..10)
        .map(|k| TimeSeries {
            labels: Labels::from_pairs([
                ("__name__", "crash_test".to_string()),
                ("batch", batch.to_string()),
                ("k", k.to_string()),
            ])
            .unwrap(),
            samples: (0..10)
                .map(|i| Sample {
                    timestamp_ms: 1_700_000_000_000 + i * 1000,
                    value: (batch * 100 + i as usize) as f64,
                })
                .collect(),
        })
        .collect();
    sightline_wire::remote_write::encode_write_request(&series, &[])
}

#[test]
fn acknowledged_samples_survive_sigkill() {
    let mut s = Server::start_with(&[], &[NO_HOST]);
    let mut acked: Vec<usize> = Vec::new();
    let mut batch = 0usize;
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("CRASH_SEED={seed}");
    let mut rng = seed;
    for _round in 0..4 {
        // xorshift: a kill after a random number of batches, sent from a second thread so
        // the kill lands while requests are in flight.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let n = 20 + (rng % 40) as usize;
        let url = s.url("/api/v1/write");
        let start = batch;
        let sender = std::thread::spawn(move || {
            let c = client();
            let mut ok = Vec::new();
            for b in start..start + n {
                let r = c
                    .post(&url)
                    .header("Content-Encoding", "snappy")
                    .header("Content-Type", "application/x-protobuf")
                    .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                    .body(write_request(b))
                    .send();
                match r {
                    Ok(r) if r.status() == 204 => ok.push(b),
                    _ => break,
                }
            }
            ok
        });
        std::thread::sleep(Duration::from_millis(50 + rng % 400));
        s.kill9();
        acked.extend(sender.join().unwrap());
        batch += n;
        s.spawn();
        s.wait_ready();
    }
    assert!(!acked.is_empty());
    let v = vector(
        &s,
        "count by (batch) (count_over_time(crash_test[1d]))",
        Some("1700000010"),
    );
    let found: std::collections::HashMap<String, String> = v
        .into_iter()
        .map(|(m, c)| (m["batch"].as_str().unwrap().to_string(), c))
        .collect();
    for b in &acked {
        assert_eq!(
            found.get(&b.to_string()).map(String::as_str),
            Some("10"),
            "acked batch {b} lost or partial"
        );
    }
    // Unacknowledged batches are all or nothing too.
    for (b, c) in &found {
        assert_eq!(c, "10", "batch {b} partially present");
    }
    let sum = vector(
        &s,
        "sum(count_over_time(crash_test[1d]))",
        Some("1700000010"),
    );
    assert_eq!(sum[0].1, (found.len() * 100).to_string());
}

fn run_otel_metrics(s: &Server, temporality: &str) {
    ensure_python_packages(
        "opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http",
        &[
            "opentelemetry-sdk",
            "opentelemetry-exporter-otlp-proto-http",
        ],
    );
    let out = Command::new("python3")
        .arg(repo_root().join("testdata/interop/otel_metrics.py"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &s.otlp)
        .env(
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
            temporality,
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python SDK script failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn opentelemetry_python_sdk_metrics_arrive_as_prometheus_series() {
    for temporality in ["cumulative", "delta"] {
        let s = Server::start_with(&[], &[NO_HOST]);
        run_otel_metrics(&s, temporality);
        let orders = vector(&s, "app_orders_total", None);
        assert_eq!(orders.len(), 1, "{temporality}: {orders:?}");
        assert_eq!(orders[0].0["job"], "checkout");
        assert_eq!(orders[0].0["instance"], "pod-1");
        assert_eq!(orders[0].0["region"], "eu");
        // Two exports: 5, then 7 in total (deltas 5 and 2 accumulated).
        assert_eq!(orders[0].1, "7", "{temporality}");
        assert_eq!(
            vector(
                &s,
                "http_server_duration_milliseconds_count{route=\"/pay\"}",
                None
            )[0]
            .1,
            "3",
            "{temporality}"
        );
        assert_eq!(
            vector(&s, "http_server_duration_milliseconds_sum", None)[0].1,
            "330"
        );
        assert_eq!(
            vector(
                &s,
                "http_server_duration_milliseconds_bucket{le=\"25\"}",
                None
            )[0]
            .1,
            "2"
        );
        assert_eq!(
            vector(
                &s,
                "http_server_duration_milliseconds_bucket{le=\"+Inf\"}",
                None
            )[0]
            .1,
            "3"
        );
        assert_eq!(vector(&s, "app_queue_depth", None)[0].1, "4");
        let info = vector(&s, "target_info", None);
        assert_eq!(info[0].0["deployment_environment"], "test", "{info:?}");
    }
}

#[test]
fn a_damaged_metric_block_is_a_clear_error_naming_file_and_offset() {
    let mut s = Server::start_with(&[], &[NO_HOST]);
    let r = client()
        .post(s.url("/api/v1/import/prometheus"))
        .body(PROM_TEXT)
        .send()
        .unwrap();
    assert!(r.status().is_success());
    let r = client().post(s.url("/api/v1/admin/flush")).send().unwrap();
    assert!(r.status().is_success());
    s.stop();
    let tenant_dir = s.dir.join("metrics").join("default");
    let blocks: Vec<_> = std::fs::read_dir(&tenant_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "block"))
        .collect();
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    let victim = &blocks[0];
    let mut bytes = std::fs::read(victim).unwrap();
    let off = bytes.len() / 3;
    bytes[off] ^= 0x5a;
    std::fs::write(victim, bytes).unwrap();
    s.spawn();
    // Either the server refuses to start, or the damaged block's data answers with an
    // error: both must name the file and the offset, never panic or return wrong data.
    let deadline = Instant::now() + Duration::from_secs(30);
    let name = victim.file_name().unwrap().to_str().unwrap().to_string();
    loop {
        if let Some(st) = s.child.as_mut().unwrap().try_wait().unwrap() {
            assert!(!st.success());
            std::thread::sleep(Duration::from_millis(100));
            break;
        }
        if let Ok(r) = client().get(s.url("/ready")).send() {
            if r.status().is_success() {
                let r = client()
                    .get(s.url("/api/v1/query"))
                    .query(&[("query", "http_requests_total"), ("time", "1700000050")])
                    .send()
                    .unwrap();
                assert_eq!(r.status(), 500, "a damaged block must not answer data");
                let body = r.text().unwrap();
                assert!(body.contains("internal"), "{body}");
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "neither failed nor ready; log:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = s.log();
    assert!(
        log.contains(&name) && log.contains("offset"),
        "the error names file and offset: {log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}
