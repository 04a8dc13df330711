//! The CLI's HTTP client side: `ingest` and `logs` talk to a running server exactly as any
//! other client does.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use serde_json::Value;

/// How to reach the server.
#[derive(clap::Args)]
pub struct Connection {
    /// Server URL.
    #[arg(
        long,
        env = "SIGHTLINE_SERVER",
        default_value = "http://127.0.0.1:9470"
    )]
    server: String,
    /// Tenant (sent as X-Scope-OrgID) [default: the server's default tenant].
    #[arg(long, env = "SIGHTLINE_TENANT")]
    tenant: Option<String>,
}

impl Connection {
    pub fn server(&self) -> &str {
        &self.server
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.server.trim_end_matches('/'), path)
    }

    pub fn request(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let mut r = client.request(method, self.url(path));
        if let Some(t) = &self.tenant {
            r = r.header("X-Scope-OrgID", t);
        }
        r
    }
}

/// Bodies are sent in chunks of whole lines of about this size: well under the server's
/// default 16 MiB body limit, large enough that per-request overhead does not matter.
pub const CHUNK_BYTES: usize = 4 << 20;

/// `data` cut after newlines into pieces of at most `max` bytes, so no line is split.
pub fn line_chunks<'a>(name: &str, data: &'a [u8], max: usize) -> Result<Vec<&'a [u8]>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let mut end = rest.len().min(max);
        if end < rest.len() {
            match rest[..end].iter().rposition(|&b| b == b'\n') {
                Some(i) => end = i + 1,
                None => bail!("{name}: a line is longer than {max} bytes"),
            }
        }
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    Ok(out)
}

pub async fn error_of(resp: reqwest::Response) -> anyhow::Error {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let msg = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or(text);
    anyhow::anyhow!("server answered {status}: {}", msg.trim())
}

/// The named files' contents (`-` or no files: stdin), each with a name for messages.
pub fn read_inputs(files: &[PathBuf]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    if files.is_empty() || files.iter().any(|f| f.as_os_str() == "-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading stdin")?;
        inputs.push(("<stdin>".into(), buf));
    }
    for f in files.iter().filter(|f| f.as_os_str() != "-") {
        let data = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        inputs.push((f.display().to_string(), data));
    }
    Ok(inputs)
}

pub async fn ingest(
    conn: &Connection,
    format: Option<String>,
    service: Option<String>,
    pattern: Option<String>,
    files: Vec<PathBuf>,
) -> Result<()> {
    let client = reqwest::Client::new();
    let inputs = read_inputs(&files)?;
    let mut query: Vec<(&str, &str)> = Vec::new();
    if let Some(f) = &format {
        query.push(("format", f));
    }
    if let Some(s) = &service {
        query.push(("service", s));
    }
    if let Some(p) = &pattern {
        query.push(("pattern", p));
    }
    let mut total = 0u64;
    for (name, data) in inputs {
        for chunk in line_chunks(&name, &data, CHUNK_BYTES)? {
            if chunk.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let resp = conn
                .request(&client, reqwest::Method::POST, "/api/v1/logs/ingest")
                .query(&query)
                .header(
                    "Content-Type",
                    if format.is_some() {
                        "text/plain"
                    } else {
                        "application/x-ndjson"
                    },
                )
                .body(chunk.to_vec())
                .send()
                .await
                .with_context(|| format!("sending {name} to {}", conn.server))?;
            if !resp.status().is_success() {
                return Err(error_of(resp).await.context(name.clone()));
            }
            let v: Value = resp.json().await.context("reading the server's answer")?;
            total += v["accepted"].as_u64().unwrap_or(0);
        }
    }
    println!("ingested {total} records");
    Ok(())
}

pub async fn logs(
    conn: &Connection,
    query: &str,
    json: bool,
    start: Option<String>,
    end: Option<String>,
    limit: Option<usize>,
) -> Result<()> {
    let client = reqwest::Client::new();
    let mut form: Vec<(&str, String)> = vec![("q", query.to_string())];
    if let Some(s) = start {
        form.push(("start", s));
    }
    if let Some(e) = end {
        form.push(("end", e));
    }
    if let Some(l) = limit {
        form.push(("limit", l.to_string()));
    }
    let resp = conn
        .request(&client, reqwest::Method::POST, "/api/v1/logs/query")
        .form(&form)
        .send()
        .await
        .with_context(|| format!("querying {}", conn.server))?;
    if !resp.status().is_success() {
        return Err(error_of(resp).await);
    }
    let v: Value = resp.json().await.context("reading the server's answer")?;
    let rows = v["data"].as_array().cloned().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if json {
        for r in &rows {
            writeln!(out, "{r}")?;
        }
    } else {
        write!(out, "{}", table(&rows))?;
    }
    Ok(())
}

pub async fn tail(conn: &Connection, query: &str, json: bool) -> Result<()> {
    let client = reqwest::Client::new();
    let resp = conn
        .request(&client, reqwest::Method::GET, "/api/v1/logs/tail")
        .query(&[("q", query)])
        .send()
        .await
        .with_context(|| format!("connecting to {}", conn.server))?;
    if !resp.status().is_success() {
        return Err(error_of(resp).await);
    }
    let mut stream = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut event = String::new();
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk.context("reading the live tail")?);
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            if let Some(e) = line.strip_prefix("event:") {
                event = e.trim().to_string();
            } else if let Some(d) = line.strip_prefix("data:") {
                let d = d.trim_start();
                if event == "lagged" {
                    eprintln!("warning: fell behind, {d} batches skipped");
                } else if json {
                    println!("{d}");
                } else if let Ok(v) = serde_json::from_str::<Value>(d) {
                    println!("{}", record_line(&v));
                }
            } else if line.is_empty() {
                event.clear();
            }
        }
    }
    Ok(())
}

/// One record as `timestamp level service message key=value...`.
fn record_line(v: &Value) -> String {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut line = format!(
        "{} {:<5} {} {}",
        s("timestamp"),
        s("level"),
        s("service"),
        s("message")
    );
    if let Some(Value::Object(attrs)) = v.get("attributes") {
        for (k, a) in attrs {
            let a = match a {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            line.push_str(&format!(" {k}={a}"));
        }
    }
    line
}

/// Rows as an aligned table: raw records one a line, pipe results with a header.
fn table(rows: &[Value]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let is_record = rows[0].get("message").is_some() && rows[0].get("timestamp").is_some();
    if is_record && rows[0].get("attributes").is_some() {
        return rows.iter().map(|r| record_line(r) + "\n").collect();
    }
    let mut cols: Vec<String> = Vec::new();
    for r in rows {
        if let Some(o) = r.as_object() {
            for k in o.keys() {
                if !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
    }
    let cell = |r: &Value, c: &str| match r.get(c) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    let widths: Vec<usize> = cols
        .iter()
        .map(|c| {
            rows.iter()
                .map(|r| cell(r, c).len())
                .max()
                .unwrap_or(0)
                .max(c.len())
        })
        .collect();
    let mut out = String::new();
    let fmt_row = |vals: Vec<String>| {
        vals.iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
            + "\n"
    };
    out.push_str(&fmt_row(cols.clone()));
    for r in rows {
        out.push_str(&fmt_row(cols.iter().map(|c| cell(r, c)).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_pipe_rows() {
        let rows = vec![
            serde_json::json!({"level": "error", "count": 12}),
            serde_json::json!({"level": "info", "count": 3}),
        ];
        assert_eq!(table(&rows), "level  count\nerror  12\ninfo   3\n");
    }
}
