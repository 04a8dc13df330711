//! The CLI's metrics commands: `import` sends Prometheus text or OpenMetrics files to
//! `/api/v1/import/{prometheus,openmetrics}`; `query` runs PromQL through
//! `/api/v1/query` or `/api/v1/query_range` and prints the result.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::client::{error_of, line_chunks, read_inputs, Connection, CHUNK_BYTES};

/// The exposition formats `import` speaks.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ImportFormat {
    /// Prometheus text format 0.0.4, timestamps in milliseconds.
    Prometheus,
    /// OpenMetrics 1.0 text, timestamps in seconds, ends with `# EOF`.
    Openmetrics,
}

const EOF_LINE: &[u8] = b"# EOF";

pub async fn import(conn: &Connection, format: ImportFormat, files: Vec<PathBuf>) -> Result<()> {
    let client = reqwest::Client::new();
    let inputs = read_inputs(&files)?;
    let (path, content_type) = match format {
        ImportFormat::Prometheus => ("/api/v1/import/prometheus", "text/plain; version=0.0.4"),
        ImportFormat::Openmetrics => (
            "/api/v1/import/openmetrics",
            "application/openmetrics-text; version=1.0.0",
        ),
    };
    let mut total = 0u64;
    for (name, data) in inputs {
        let data = match format {
            ImportFormat::Prometheus => data,
            // Every request must be a complete OpenMetrics exposition: the file's `# EOF`
            // is taken off here and added to each chunk sent.
            ImportFormat::Openmetrics => trim_eof(&data)
                .with_context(|| format!("{name}: an OpenMetrics file must end with `# EOF`"))?
                .to_vec(),
        };
        for chunk in line_chunks(&name, &data, CHUNK_BYTES)? {
            let mut body = chunk.to_vec();
            if matches!(format, ImportFormat::Openmetrics) {
                body.extend_from_slice(b"# EOF\n");
            }
            let resp = conn
                .request(&client, reqwest::Method::POST, path)
                .header("Content-Type", content_type)
                .body(body)
                .send()
                .await
                .with_context(|| format!("sending {name} to {}", conn.server()))?;
            if !resp.status().is_success() {
                return Err(error_of(resp).await.context(name.clone()));
            }
            let v: Value = resp.json().await.context("reading the server's answer")?;
            total += v["accepted"].as_u64().unwrap_or(0);
        }
    }
    println!("imported {total} samples");
    Ok(())
}

/// The file without its final `# EOF` line (and anything but blank space after it).
fn trim_eof(data: &[u8]) -> Option<&[u8]> {
    let end = data.iter().rposition(|b| !b.is_ascii_whitespace())? + 1;
    let body = &data[..end];
    let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    (&body[start..] == EOF_LINE).then_some(&data[..start])
}

/// What `query` evaluates.
pub struct QueryArgs {
    pub query: String,
    /// Instant query time, or the end of a range (RFC 3339 or Unix seconds).
    pub time: Option<String>,
    /// A range query over this duration before `time` (e.g. `1h`).
    pub range: Option<String>,
    /// The range query's step (e.g. `1m`).
    pub step: Option<String>,
    pub json: bool,
}

pub async fn query(conn: &Connection, args: QueryArgs) -> Result<()> {
    let client = reqwest::Client::new();
    let mut form: Vec<(&str, String)> = vec![("query", args.query.clone())];
    let path = match &args.range {
        None => {
            if let Some(t) = &args.time {
                form.push(("time", t.clone()));
            }
            "/api/v1/query"
        }
        Some(range) => {
            let range_s = humantime::parse_duration(range)
                .with_context(|| format!("--range {range:?}: expected a duration like 1h"))?
                .as_secs_f64();
            let end = match &args.time {
                Some(t) => parse_seconds(t)?,
                None => std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .context("clock before 1970")?
                    .as_secs_f64(),
            };
            let step = args.step.clone().unwrap_or_else(|| {
                // About 250 points, like Grafana's default resolution.
                format!("{}", (range_s / 250.0).max(1.0).round())
            });
            form.push(("start", format!("{:.3}", end - range_s)));
            form.push(("end", format!("{end:.3}")));
            form.push(("step", step));
            "/api/v1/query_range"
        }
    };
    if args.range.is_none() && args.step.is_some() {
        bail!("--step needs --range");
    }
    let resp = conn
        .request(&client, reqwest::Method::POST, path)
        .form(&form)
        .send()
        .await
        .with_context(|| format!("querying {}", conn.server()))?;
    if !resp.status().is_success() {
        return Err(error_of(resp).await);
    }
    let v: Value = resp.json().await.context("reading the server's answer")?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", v["data"])?;
    } else {
        write!(out, "{}", render(&v["data"]))?;
    }
    Ok(())
}

fn parse_seconds(t: &str) -> Result<f64> {
    if let Ok(s) = t.parse::<f64>() {
        return Ok(s);
    }
    let ns = sightline_model::time::parse_rfc3339(t)
        .map_err(|_| anyhow::anyhow!("--time {t:?}: expected RFC 3339 or Unix seconds"))?;
    Ok(ns as f64 / 1e9)
}

/// `{__name__="up", job="x"}` as Prometheus prints a series.
fn series_name(metric: &Value) -> String {
    let Some(m) = metric.as_object() else {
        return "{}".into();
    };
    let name = m.get("__name__").and_then(Value::as_str).unwrap_or("");
    let labels: Vec<String> = m
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={}", v))
        .collect();
    format!("{name}{{{}}}", labels.join(", "))
}

/// A query result as text: one `series value` line per vector element; per series of a
/// matrix its name, then `  time value` lines.
fn render(data: &Value) -> String {
    let mut out = String::new();
    let result = &data["result"];
    match data["resultType"].as_str() {
        Some("vector") => {
            for s in result.as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "{} {}\n",
                    series_name(&s["metric"]),
                    s["value"][1].as_str().unwrap_or("")
                ));
            }
        }
        Some("matrix") => {
            for s in result.as_array().into_iter().flatten() {
                out.push_str(&series_name(&s["metric"]));
                out.push('\n');
                for p in s["values"].as_array().into_iter().flatten() {
                    out.push_str(&format!("  {} {}\n", p[0], p[1].as_str().unwrap_or("")));
                }
            }
        }
        _ => out.push_str(&format!("{}\n", result[1].as_str().unwrap_or(""))),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eof_is_taken_off_only_at_the_end() {
        assert_eq!(trim_eof(b"a 1\n# EOF\n"), Some(&b"a 1\n"[..]));
        assert_eq!(trim_eof(b"a 1\n# EOF"), Some(&b"a 1\n"[..]));
        assert_eq!(trim_eof(b"# EOF\na 1\n"), None);
        assert_eq!(trim_eof(b""), None);
    }

    #[test]
    fn renders_vectors_and_matrices() {
        let v = serde_json::json!({"resultType": "vector", "result": [
            {"metric": {"__name__": "up", "job": "api"}, "value": [1, "1"]}]});
        assert_eq!(render(&v), "up{job=\"api\"} 1\n");
        let m = serde_json::json!({"resultType": "matrix", "result": [
            {"metric": {"job": "api"}, "values": [[1, "1"], [2.5, "NaN"]]}]});
        assert_eq!(render(&m), "{job=\"api\"}\n  1 1\n  2.5 NaN\n");
        let s = serde_json::json!({"resultType": "scalar", "result": [1, "2"]});
        assert_eq!(render(&s), "2\n");
    }
}
