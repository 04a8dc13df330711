//! Golden tests of the log query language: each `golden/<name>.q` holds one query; its
//! rows over the fixture below (raw output limited to 10 records) must equal
//! `golden/<name>.json`. Run with `UPDATE_GOLDEN=1` to rewrite the `.json` files, then
//! review the diff.

use std::ops::ControlFlow;
use std::path::Path;

use sightline_model::{Attributes, LogRecord, TraceId, Value};
use sightline_query::{execute, parse};
use sightline_storage::bloom::record_has_tokens;
use sightline_storage::{LogQuerier, ScanRequest, ScanStats};

/// An in-memory querier that applies the pruning hints like a store would, so a wrong
/// hint shows up as a missing golden row.
struct VecQuerier(Vec<LogRecord>);

impl LogQuerier for VecQuerier {
    fn scan(
        &self,
        req: &ScanRequest,
        visit: &mut dyn FnMut(&LogRecord) -> ControlFlow<()>,
    ) -> sightline_storage::Result<ScanStats> {
        let mut stats = ScanStats::default();
        for r in &self.0 {
            if let Some(s) = &req.services {
                if !s.contains(&r.service) {
                    continue;
                }
            }
            if !record_has_tokens(r, &req.required_tokens) {
                continue;
            }
            stats.scanned_rows += 1;
            if visit(r).is_break() {
                break;
            }
        }
        Ok(stats)
    }
}

/// 2024-05-01T12:00:00Z.
const T0: i64 = 1_714_564_800_000_000_000;
const T1: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const T2: &str = "0af7651916cd43dd8448eb211c80319c";
const T3: &str = "5b8efff798038103d269b633813fc60c";

#[allow(clippy::too_many_arguments)]
fn rec(
    off_s: i64,
    service: &str,
    level: &str,
    endpoint: &str,
    path: &str,
    status: Option<Value>,
    duration_ms: Option<i64>,
    msg: &str,
    trace: Option<&str>,
) -> LogRecord {
    let mut attrs = Vec::new();
    if !endpoint.is_empty() {
        attrs.push(("endpoint".to_string(), Value::Str(endpoint.into())));
    }
    if !path.is_empty() {
        attrs.push(("path".to_string(), Value::Str(path.into())));
    }
    if let Some(s) = status {
        attrs.push(("status".to_string(), s));
    }
    if let Some(d) = duration_ms {
        attrs.push(("duration_ms".to_string(), Value::Int(d)));
    }
    let number = match level {
        "debug" => 5,
        "info" => 9,
        "warn" => 13,
        "error" => 17,
        "fatal" => 21,
        // Text only: the level comes from `severity_text`.
        _ => 0,
    };
    LogRecord {
        timestamp: T0 + off_s * 1_000_000_000,
        observed_timestamp: T0 + off_s * 1_000_000_000,
        severity_number: number,
        severity_text: level.into(),
        service: service.into(),
        body: msg.into(),
        resource: Attributes::from_pairs([
            ("host".to_string(), Value::Str(format!("{service}-1"))),
            ("region".to_string(), Value::Str("eu".into())),
        ]),
        attributes: Attributes::from_pairs(attrs),
        trace_id: trace.map(|t| TraceId::from_hex(t).unwrap()),
        span_id: None,
    }
}

fn int(i: i64) -> Option<Value> {
    Some(Value::Int(i))
}

/// The fixture: 40 records over 1700 s from T0 (services api/web/db).
#[rustfmt::skip]
fn fixture() -> Vec<LogRecord> {
    vec![
        rec(0, "api", "info", "GET /users", "/api/users", int(200), Some(12), "request completed", None),
        rec(20, "api", "info", "GET /users", "/api/users", int(200), Some(15), "request completed", None),
        rec(45, "web", "info", "GET /", "/", int(200), Some(30), "page rendered", None),
        rec(60, "api", "error", "POST /orders", "/api/orders", int(500), Some(250), "upstream error: connection refused by db:5432", Some(T1)),
        rec(75, "db", "warn", "", "", None, Some(900), "slow query took 900ms", None),
        rec(90, "api", "info", "GET /health", "/health", int(200), Some(1), "health check ok", None),
        rec(130, "api", "error", "POST /orders", "/api/orders", int(503), Some(3000), "timeout after 250ms waiting for db", Some(T1)),
        rec(150, "web", "error", "GET /", "/", int(502), Some(40), "Connection refused to api", None),
        rec(200, "db", "error", "", "", None, None, "connection refused: too many clients", None),
        rec(240, "api", "info", "GET /users", "/api/users", int(200), Some(20), "request completed", None),
        rec(290, "api", "info", "GET /health", "/health", int(500), Some(2), "health check failed", None),
        rec(310, "web", "warn", "GET /login", "/login", int(401), Some(25), "login failed for user bob", None),
        rec(330, "api", "error", "GET /users", "/api/users", int(500), Some(120), "connection refused while reading users", Some(T2)),
        rec(360, "api", "debug", "GET /users", "/api/users", int(200), Some(8), "cache hit users", None),
        rec(400, "db", "info", "", "", None, Some(5), "checkpoint complete", None),
        rec(420, "api", "warn", "POST /orders", "/api/orders", int(429), Some(3), "rate limited", None),
        rec(480, "web", "info", "GET /", "/", int(200), Some(35), "page rendered", None),
        rec(530, "api", "error", "POST /orders", "/api/orders", int(500), Some(1200), "timeout after 1200ms calling payments", Some(T2)),
        rec(600, "api", "info", "GET /users", "/api/users", int(200), Some(18), "request completed", None),
        rec(610, "api", "fatal", "", "", None, None, "panic: index out of range", None),
        rec(700, "web", "info", "GET /login", "/login", int(200), Some(22), "login ok for user alice", None),
        rec(720, "db", "error", "", "", None, None, "deadlock detected", None),
        rec(800, "api", "info", "GET /health", "/health", int(200), Some(1), "health check ok", None),
        rec(860, "api", "error", "GET /users", "/api/users", int(504), Some(5000), "Timeout after 5000ms", Some(T3)),
        rec(900, "web", "warn", "GET /", "/", int(200), Some(800), "slow render", None),
        rec(930, "api", "info", "POST /orders", "/api/orders", int(201), Some(95), "order created", Some(T3)),
        rec(1000, "db", "info", "", "", None, Some(7), "vacuum finished", None),
        rec(1030, "api", "error", "POST /orders", "/api/orders", int(500), Some(60), "connection refused", None),
        rec(1100, "web", "error", "GET /login", "/login", int(500), Some(45), "session store: connection refused", None),
        rec(1150, "api", "info", "GET /users", "/api/users", int(200), Some(14), "request completed", None),
        rec(1200, "api", "info", "GET /health", "/health", int(200), Some(1), "health check ok", None),
        rec(1230, "api", "warn", "GET /users", "/api/users", int(200), Some(700), "slow request", None),
        rec(1300, "db", "fatal", "", "", None, None, "out of disk space", None),
        rec(1320, "web", "info", "GET /", "/", int(200), Some(28), "page rendered", None),
        rec(1400, "api", "info", "POST /orders", "/api/orders", int(201), Some(110), "order created", None),
        rec(1450, "api", "error", "GET /users", "/api/users", Some(Value::Str("500".into())), Some(300), "timeout after 300ms reading cache", None),
        rec(1500, "web", "debug", "GET /", "/", int(200), Some(4), "template cached", None),
        rec(1560, "api", "info", "GET /health", "/health", int(200), Some(2), "health check ok", None),
        rec(1620, "db", "WARNING", "", "", None, Some(1500), "replication lag 1500ms", None),
        rec(1700, "api", "info", "GET /users", "/api/users", int(200), Some(16), "request completed", None),
    ]
}

/// Raw record output limit used for every golden query.
const LIMIT: usize = 10;

#[test]
fn golden_queries() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let querier = VecQuerier(fixture());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "q"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 9,
        "golden queries missing in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for q_path in &files {
        let text = std::fs::read_to_string(q_path).unwrap();
        let q = parse(text.trim()).unwrap_or_else(|e| panic!("{}: {e}", q_path.display()));
        let out = execute(&q, &querier, LIMIT).unwrap();
        let got = serde_json::Value::Array(out.rows);
        let json_path = q_path.with_extension("json");
        if update {
            std::fs::write(
                &json_path,
                serde_json::to_string_pretty(&got).unwrap() + "\n",
            )
            .unwrap();
            continue;
        }
        let want: serde_json::Value = match std::fs::read_to_string(&json_path) {
            Ok(s) => serde_json::from_str(&s).unwrap(),
            Err(e) => panic!("{}: {e} (run with UPDATE_GOLDEN=1)", json_path.display()),
        };
        // Compared as JSON values: key order may differ with serde_json's features.
        if got != want {
            failures.push(format!(
                "{}\n--- want\n{}\n--- got\n{}",
                q_path.display(),
                serde_json::to_string_pretty(&want).unwrap(),
                serde_json::to_string_pretty(&got).unwrap()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn hints_prune_but_do_not_change_results() {
    let querier = VecQuerier(fixture());
    let q = parse(r#"service:api level:error "connection refused""#).unwrap();
    let out = execute(&q, &querier, 100).unwrap();
    assert_eq!(out.rows.len(), 3);
    // Only api records were handed to the query.
    assert_eq!(out.stats.scanned_rows, 24);
    let q = parse("trace_id:4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    assert_eq!(execute(&q, &querier, 100).unwrap().stats.scanned_rows, 2);
}
