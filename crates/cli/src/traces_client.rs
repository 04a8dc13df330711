//! The CLI's trace commands: `traces search` asks `/api/v1/traces?...` and prints one row per
//! trace; `traces get <id>` asks `/api/v1/traces/<id>` and prints the spans as an indented
//! tree (children under their parent, in start order), then the trace's logs when asked.
//! Works on the API's JSON (docs/api.md, "Traces") only: no dependency on the query crate.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::client::{error_of, Connection};

/// `sightline traces ...`.
#[derive(clap::Subcommand)]
pub enum TracesCommand {
    /// Find traces: `sightline traces search --service api --errors --since 1h`.
    Search(SearchArgs),
    /// Print one trace as a tree: `sightline traces get <trace_id> [--logs]`.
    Get(GetArgs),
}

#[derive(clap::Args)]
pub struct SearchArgs {
    #[command(flatten)]
    conn: Connection,
    /// Only traces with a span of this service.
    #[arg(long)]
    service: Option<String>,
    /// Only traces with a span of this name (with --service: of that service).
    #[arg(long)]
    operation: Option<String>,
    /// Only traces with a span carrying this attribute, `key=value`; repeatable (all must match).
    #[arg(long = "attr", value_name = "KEY=VALUE")]
    attrs: Vec<String>,
    /// Shortest span duration, e.g. `100ms`, `1.5s`, `250us`.
    #[arg(long)]
    min_duration: Option<String>,
    /// Longest span duration, e.g. `2s`.
    #[arg(long)]
    max_duration: Option<String>,
    /// Only traces with an error span.
    #[arg(long)]
    errors: bool,
    /// Search this far back from now, e.g. `1h`, `30m`, `2d` (instead of --start/--end).
    #[arg(long, conflicts_with_all = ["start", "end"])]
    since: Option<String>,
    /// Range start: RFC 3339 or Unix seconds [default: end - 1h].
    #[arg(long)]
    start: Option<String>,
    /// Range end: RFC 3339 or Unix seconds [default: now].
    #[arg(long)]
    end: Option<String>,
    /// Most traces to return [server default: 20, at most 1000].
    #[arg(long)]
    limit: Option<usize>,
    /// Print the API's JSON rows, one a line, instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct GetArgs {
    #[command(flatten)]
    conn: Connection,
    /// The trace id: 32 hex characters.
    trace_id: String,
    /// Also print the log records carrying this trace id.
    #[arg(long)]
    logs: bool,
    /// Print the API's JSON `data` instead of the tree.
    #[arg(long)]
    json: bool,
}

pub async fn run(command: TracesCommand) -> Result<()> {
    match command {
        TracesCommand::Search(args) => search(args).await,
        TracesCommand::Get(args) => get(args).await,
    }
}

/// The query parameters of a search, in the API's names.
fn search_params(args: &SearchArgs, now_s: f64) -> Result<Vec<(&'static str, String)>> {
    let mut q: Vec<(&'static str, String)> = Vec::new();
    if let Some(s) = &args.service {
        q.push(("service", s.clone()));
    }
    if let Some(o) = &args.operation {
        q.push(("operation", o.clone()));
    }
    if !args.attrs.is_empty() {
        for a in &args.attrs {
            match a.split_once('=') {
                Some((k, _)) if !k.is_empty() => {}
                _ => bail!("--attr {a:?}: expected key=value"),
            }
            if a.contains(',') {
                bail!("--attr {a:?}: a comma cannot be sent in an attribute filter");
            }
        }
        q.push(("attributes", args.attrs.join(",")));
    }
    if let Some(d) = &args.min_duration {
        q.push(("min_duration", d.clone()));
    }
    if let Some(d) = &args.max_duration {
        q.push(("max_duration", d.clone()));
    }
    if args.errors {
        q.push(("status", "error".into()));
    }
    if let Some(since) = &args.since {
        let d = humantime::parse_duration(since)
            .with_context(|| format!("--since {since:?}: expected a duration like 1h"))?;
        q.push(("start", format!("{:.3}", now_s - d.as_secs_f64())));
        q.push(("end", format!("{now_s:.3}")));
    }
    if let Some(s) = &args.start {
        q.push(("start", s.clone()));
    }
    if let Some(e) = &args.end {
        q.push(("end", e.clone()));
    }
    if let Some(l) = args.limit {
        q.push(("limit", l.to_string()));
    }
    Ok(q)
}

async fn search(args: SearchArgs) -> Result<()> {
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("clock before 1970")?
        .as_secs_f64();
    let params = search_params(&args, now_s)?;
    let client = reqwest::Client::new();
    let resp = args
        .conn
        .request(&client, reqwest::Method::GET, "/api/v1/traces")
        .query(&params)
        .send()
        .await
        .with_context(|| format!("querying {}", args.conn.server()))?;
    if !resp.status().is_success() {
        return Err(error_of(resp).await);
    }
    let v: Value = resp.json().await.context("reading the server's answer")?;
    let rows = v["data"].as_array().cloned().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if args.json {
        for r in &rows {
            writeln!(out, "{r}")?;
        }
    } else {
        write!(out, "{}", search_table(&rows))?;
    }
    Ok(())
}

async fn get(args: GetArgs) -> Result<()> {
    let id = args.trace_id.trim();
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("trace id {id:?}: expected 32 hex characters");
    }
    let client = reqwest::Client::new();
    let mut req = args.conn.request(
        &client,
        reqwest::Method::GET,
        &format!("/api/v1/traces/{id}"),
    );
    if args.logs {
        req = req.query(&[("include", "logs")]);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("querying {}", args.conn.server()))?;
    if !resp.status().is_success() {
        return Err(error_of(resp).await);
    }
    let v: Value = resp.json().await.context("reading the server's answer")?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", v["data"])?;
    } else {
        write!(out, "{}", render_trace(&v["data"], args.logs))?;
    }
    Ok(())
}

/// A duration in nanoseconds the way people read it: `850ns`, `12.3µs`, `12.3ms`, `1.50s`,
/// `2m05s`.
pub fn format_duration(ns: i64) -> String {
    let ns = ns.max(0);
    let f = ns as f64;
    match ns {
        0..=999 => format!("{ns}ns"),
        1_000..=999_999 => format!("{:.1}µs", f / 1e3),
        1_000_000..=999_999_999 => format!("{:.1}ms", f / 1e6),
        1_000_000_000..=59_999_999_999 => format!("{:.2}s", f / 1e9),
        _ => {
            let s = ns / 1_000_000_000;
            format!("{}m{:02}s", s / 60, s % 60)
        }
    }
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Search rows as an aligned table.
fn search_table(rows: &[Value]) -> String {
    if rows.is_empty() {
        return "no traces found\n".into();
    }
    let header = [
        "TRACE ID",
        "ROOT SERVICE",
        "ROOT OPERATION",
        "START",
        "DURATION",
        "SPANS",
        "ERRORS",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                text(r, "trace_id"),
                text(r, "root_service"),
                text(r, "root_operation"),
                text(r, "start"),
                format_duration(r["duration_ns"].as_i64().unwrap_or(0)),
                text(r, "span_count"),
                text(r, "error_count"),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |vals: &[String]| {
        vals.iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
            + "\n"
    };
    let mut out = line(&header.map(String::from));
    for c in &cells {
        out.push_str(&line(c));
    }
    out
}

/// A span's start for ordering: nanoseconds from its RFC 3339 `start` (0 when unreadable).
fn start_ns(span: &Value) -> i64 {
    span.get("start")
        .and_then(Value::as_str)
        .and_then(|s| sightline_model::time::parse_rfc3339(s).ok())
        .unwrap_or(0)
}

/// One tree line: `name [service] 12.3ms`, with ` ERROR: message` for an error span.
fn span_line(span: &Value, depth: usize) -> String {
    let mut line = format!(
        "{}{} [{}] {}",
        "  ".repeat(depth),
        text(span, "name"),
        text(span, "service"),
        format_duration(span["duration_ns"].as_i64().unwrap_or(0))
    );
    if span["status"]["code"].as_str() == Some("error") {
        line.push_str(" ERROR");
        let msg = text(&span["status"], "message");
        if !msg.is_empty() {
            line.push_str(": ");
            line.push_str(&msg);
        }
    }
    line.push('\n');
    line
}

/// A trace (`data` of `/api/v1/traces/<id>`) as text: a header, the spans as a tree
/// (children indented under their parent, siblings by start; a span whose parent is not in
/// the trace is shown as a root), then with `with_logs` its log records, one a line.
pub fn render_trace(data: &Value, with_logs: bool) -> String {
    let spans: Vec<&Value> = data["spans"].as_array().into_iter().flatten().collect();
    let id_of = |s: &Value| text(s, "span_id");
    let ids: HashSet<String> = spans.iter().map(|s| id_of(s)).collect();
    let mut children: HashMap<String, Vec<usize>> = HashMap::new();
    let mut roots: Vec<usize> = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        let parent = text(s, "parent_span_id");
        if parent.is_empty() || !ids.contains(&parent) || parent == id_of(s) {
            roots.push(i);
        } else {
            children.entry(parent).or_default().push(i);
        }
    }
    let by_start = |v: &mut Vec<usize>| v.sort_by_key(|&i| (start_ns(spans[i]), i));
    by_start(&mut roots);
    children.values_mut().for_each(by_start);

    let mut out = format!(
        "trace {} ({} span{})\n",
        text(data, "trace_id"),
        spans.len(),
        if spans.len() == 1 { "" } else { "s" }
    );
    let mut shown = vec![false; spans.len()];
    let walk = |start: usize, out: &mut String, shown: &mut Vec<bool>| {
        let mut stack = vec![(start, 0usize)];
        while let Some((i, depth)) = stack.pop() {
            if std::mem::replace(&mut shown[i], true) {
                continue;
            }
            out.push_str(&span_line(spans[i], depth));
            if let Some(kids) = children.get(&id_of(spans[i])) {
                stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
            }
        }
    };
    for &r in &roots {
        walk(r, &mut out, &mut shown);
    }
    // Spans in a parent cycle are reachable from no root: shown rather than lost.
    for i in 0..spans.len() {
        if !shown[i] {
            walk(i, &mut out, &mut shown);
        }
    }

    if with_logs {
        let logs: Vec<&Value> = data["logs"].as_array().into_iter().flatten().collect();
        out.push_str(&format!(
            "\n{} log record{}\n",
            logs.len(),
            if logs.len() == 1 { "" } else { "s" }
        ));
        for l in logs {
            out.push_str(&format!(
                "{} {:<5} {} {}\n",
                text(l, "timestamp"),
                text(l, "level"),
                text(l, "service"),
                text(l, "message")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// A trace as `/api/v1/traces/<id>?include=logs` answers (docs/api.md), spans sorted by
    /// start as the API sends them except `db` (listed first though it starts later), with a
    /// span whose parent was never received.
    const FIXTURE: &str = r#"{"data": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "spans": [
      {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "0000000000000003", "parent_span_id": "0000000000000002",
       "name": "SELECT users", "kind": "client", "service": "api", "start": "2024-05-01T12:00:00.020000000Z",
       "end": "2024-05-01T12:00:00.032300000Z", "duration_ns": 12300000, "status": {"code": "error", "message": "timeout"},
       "attributes": {"db.system": "postgresql"}, "resource": {}, "scope": {"name": "", "version": ""}, "events": [], "links": [], "trace_state": ""},
      {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "0000000000000001", "parent_span_id": null,
       "name": "GET /", "kind": "server", "service": "web", "start": "2024-05-01T12:00:00Z",
       "end": "2024-05-01T12:00:01.5Z", "duration_ns": 1500000000, "status": {"code": "unset", "message": ""},
       "attributes": {}, "resource": {}, "scope": {"name": "", "version": ""}, "events": [], "links": [], "trace_state": ""},
      {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "0000000000000002", "parent_span_id": "0000000000000001",
       "name": "GET /users", "kind": "client", "service": "web", "start": "2024-05-01T12:00:00.010000000Z",
       "end": "2024-05-01T12:00:00.050000000Z", "duration_ns": 40000000, "status": {"code": "ok", "message": ""},
       "attributes": {}, "resource": {}, "scope": {"name": "", "version": ""}, "events": [], "links": [], "trace_state": ""},
      {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "0000000000000004", "parent_span_id": "0000000000000001",
       "name": "render", "kind": "internal", "service": "web", "start": "2024-05-01T12:00:00.060000000Z",
       "end": "2024-05-01T12:00:00.060000850Z", "duration_ns": 850, "status": {"code": "error", "message": ""},
       "attributes": {}, "resource": {}, "scope": {"name": "", "version": ""}, "events": [], "links": [], "trace_state": ""},
      {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "0000000000000009", "parent_span_id": "00000000000000ff",
       "name": "orphan", "kind": "consumer", "service": "worker", "start": "2024-05-01T12:00:02Z",
       "end": "2024-05-01T12:00:02.000010Z", "duration_ns": 10000, "status": {"code": "unset", "message": ""},
       "attributes": {}, "resource": {}, "scope": {"name": "", "version": ""}, "events": [], "links": [], "trace_state": ""}],
     "logs": [{"timestamp": "2024-05-01T12:00:00.031000000Z", "level": "error", "service": "api", "message": "query timed out",
       "attributes": {"db": "users"}, "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "0000000000000003"}]}}"#;

    #[test]
    fn renders_the_tree_by_parent_and_start() {
        let v: Value = serde_json::from_str(FIXTURE).unwrap();
        assert_eq!(
            render_trace(&v["data"], false),
            "trace 4bf92f3577b34da6a3ce929d0e0e4736 (5 spans)\n\
             GET / [web] 1.50s\n\
             \x20 GET /users [web] 40.0ms\n\
             \x20   SELECT users [api] 12.3ms ERROR: timeout\n\
             \x20 render [web] 850ns ERROR\n\
             orphan [worker] 10.0µs\n"
        );
        let with_logs = render_trace(&v["data"], true);
        assert!(
            with_logs.ends_with(
                "orphan [worker] 10.0µs\n\n1 log record\n\
                 2024-05-01T12:00:00.031000000Z error api query timed out\n"
            ),
            "{with_logs}"
        );
    }

    #[test]
    fn parent_cycles_and_empty_traces_do_not_hang() {
        let v = serde_json::json!({"trace_id": "ab", "spans": [
            {"span_id": "1", "parent_span_id": "2", "name": "a", "service": "s", "duration_ns": 1},
            {"span_id": "2", "parent_span_id": "1", "name": "b", "service": "s", "duration_ns": 2}]});
        assert_eq!(
            render_trace(&v, false),
            "trace ab (2 spans)\na [s] 1ns\n  b [s] 2ns\n"
        );
        assert_eq!(
            render_trace(&serde_json::json!({}), true),
            "trace  (0 spans)\n\n0 log records\n"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(0), "0ns");
        assert_eq!(format_duration(999), "999ns");
        assert_eq!(format_duration(1_500), "1.5µs");
        assert_eq!(format_duration(12_345_678), "12.3ms");
        assert_eq!(format_duration(2_000_000_000), "2.00s");
        assert_eq!(format_duration(125_000_000_000), "2m05s");
        assert_eq!(format_duration(-5), "0ns");
    }

    #[test]
    fn search_table_columns() {
        let rows = vec![
            serde_json::json!({"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "root_service": "web", "root_operation": "GET /", "start": "2024-05-01T12:00:00.000000000Z",
            "duration_ns": 1500000000, "span_count": 5, "error_count": 2, "services": {"web": 3, "api": 2}}),
        ];
        assert_eq!(
            search_table(&rows),
            "TRACE ID                          ROOT SERVICE  ROOT OPERATION  START                           DURATION  SPANS  ERRORS\n\
             4bf92f3577b34da6a3ce929d0e0e4736  web           GET /           2024-05-01T12:00:00.000000000Z  1.50s     5      2\n"
        );
        assert_eq!(search_table(&[]), "no traces found\n");
    }

    #[derive(clap::Parser)]
    struct T {
        #[command(subcommand)]
        c: TracesCommand,
    }

    fn params(argv: &[&str]) -> Result<Vec<(&'static str, String)>> {
        let t = T::try_parse_from(argv)?;
        let TracesCommand::Search(a) = t.c else {
            panic!("not a search")
        };
        search_params(&a, 1_700_000_000.0)
    }

    #[test]
    fn search_flags_become_api_parameters() {
        let p = params(&[
            "t",
            "search",
            "--service",
            "api",
            "--operation",
            "GET /",
            "--attr",
            "http.status_code=500",
            "--attr",
            "env=prod",
            "--min-duration",
            "100ms",
            "--max-duration",
            "2s",
            "--errors",
            "--since",
            "1h",
            "--limit",
            "5",
        ])
        .unwrap();
        let want: Vec<(&str, String)> = vec![
            ("service", "api".into()),
            ("operation", "GET /".into()),
            ("attributes", "http.status_code=500,env=prod".into()),
            ("min_duration", "100ms".into()),
            ("max_duration", "2s".into()),
            ("status", "error".into()),
            ("start", "1699996400.000".into()),
            ("end", "1700000000.000".into()),
            ("limit", "5".into()),
        ];
        assert_eq!(p, want);
        let p = params(&[
            "t",
            "search",
            "--start",
            "2024-05-01T00:00:00Z",
            "--end",
            "1714600000",
        ])
        .unwrap();
        assert_eq!(
            p,
            vec![
                ("start", "2024-05-01T00:00:00Z".to_string()),
                ("end", "1714600000".to_string())
            ]
        );
        assert!(params(&["t", "search", "--since", "1h", "--start", "5"]).is_err());
        let e = params(&["t", "search", "--attr", "novalue"])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "--attr \"novalue\": expected key=value");
        assert!(params(&["t", "search", "--attr", "a=b,c"]).is_err());
        assert!(params(&["t", "search", "--since", "soon"]).is_err());
    }
}
