//! The scrape configuration in Prometheus' own YAML shape, so an existing `prometheus.yml`
//! loads unchanged: `global` (`scrape_interval` default 1m, `scrape_timeout` default 10s,
//! `external_labels`) and `scrape_configs` (`job_name`, `scrape_interval`, `scrape_timeout`,
//! `metrics_path`, `scheme`, `params`, `honor_labels`, `honor_timestamps`, `static_configs`,
//! `file_sd_configs`, `relabel_configs`, `metric_relabel_configs`, `sample_limit`).
//! Sections Sightline does not take from this file (`rule_files`, `alerting`,
//! `remote_write`, ...) and scrape keys it does not support (other service discoveries,
//! auth, TLS) are reported as warnings naming them, not silently dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::relabel::{RawRelabel, Relabel};

#[derive(Debug, Deserialize, Default)]
struct RawFile {
    #[serde(default)]
    global: RawGlobal,
    #[serde(default)]
    scrape_configs: Vec<RawScrape>,
    #[serde(flatten)]
    other: BTreeMap<String, IgnoredAny>,
}

#[derive(Debug, Deserialize, Default)]
struct RawGlobal {
    scrape_interval: Option<String>,
    scrape_timeout: Option<String>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(flatten)]
    other: BTreeMap<String, IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct RawScrape {
    job_name: String,
    scrape_interval: Option<String>,
    scrape_timeout: Option<String>,
    metrics_path: Option<String>,
    scheme: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    honor_labels: bool,
    honor_timestamps: Option<bool>,
    #[serde(default)]
    static_configs: Vec<RawGroup>,
    #[serde(default)]
    file_sd_configs: Vec<RawFileSd>,
    #[serde(default)]
    relabel_configs: Vec<RawRelabel>,
    #[serde(default)]
    metric_relabel_configs: Vec<RawRelabel>,
    #[serde(default)]
    sample_limit: usize,
    #[serde(flatten)]
    other: BTreeMap<String, IgnoredAny>,
}

/// A target group: in `static_configs` and in file_sd files (JSON or YAML).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct RawGroup {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileSd {
    files: Vec<String>,
    refresh_interval: Option<String>,
}

/// Where a job's targets come from.
#[derive(Clone, Debug)]
pub struct FileSd {
    /// Paths or globs (`*` in the file name only, as Prometheus allows), relative to the
    /// config file's directory.
    pub files: Vec<PathBuf>,
    pub refresh_interval: Duration,
}

/// One validated `scrape_configs` entry.
#[derive(Clone, Debug)]
pub struct ScrapeJob {
    pub job_name: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub metrics_path: String,
    pub scheme: String,
    pub params: BTreeMap<String, Vec<String>>,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub static_groups: Vec<RawGroup>,
    pub file_sd: Vec<FileSd>,
    pub relabel: Vec<Relabel>,
    pub metric_relabel: Vec<Relabel>,
    /// 0: no limit; otherwise a scrape with more samples fails, as in Prometheus.
    pub sample_limit: usize,
}

/// The validated file.
#[derive(Clone, Debug, Default)]
pub struct ScrapeConfig {
    pub jobs: Vec<ScrapeJob>,
    pub external_labels: BTreeMap<String, String>,
    /// Keys present in the file that Sightline ignores, for a warning at startup.
    pub ignored: Vec<String>,
}

/// Prometheus' default `scrape_interval` and `scrape_timeout`.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Prometheus' default file_sd `refresh_interval`.
const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

/// Reads and validates a scrape configuration file.
///
/// # Errors
/// Unreadable file, YAML errors (with line and column), invalid values naming the job and key.
pub fn load(path: &Path) -> Result<ScrapeConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, base).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses a configuration given as text; relative file_sd paths resolve against `base`.
///
/// # Errors
/// As [`load`].
pub fn parse(text: &str, base: &Path) -> Result<ScrapeConfig, String> {
    let raw: RawFile = if text.trim().is_empty() {
        RawFile::default()
    } else {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())?
    };
    let mut ignored: Vec<String> = raw.other.keys().cloned().collect();
    ignored.extend(raw.global.other.keys().map(|k| format!("global.{k}")));
    let g_interval = opt_duration(
        raw.global.scrape_interval.as_deref(),
        "global.scrape_interval",
    )?
    .unwrap_or(DEFAULT_INTERVAL);
    let g_timeout = opt_duration(
        raw.global.scrape_timeout.as_deref(),
        "global.scrape_timeout",
    )?
    .unwrap_or(DEFAULT_TIMEOUT.min(g_interval));
    let mut jobs: Vec<ScrapeJob> = Vec::new();
    for (i, j) in raw.scrape_configs.into_iter().enumerate() {
        let at = format!("scrape_configs[{i}] (job {:?})", j.job_name);
        if j.job_name.is_empty() {
            return Err(format!("scrape_configs[{i}]: job_name is empty"));
        }
        if jobs.iter().any(|o| o.job_name == j.job_name) {
            return Err(format!(
                "{at}: found multiple scrape configs with job name {:?}",
                j.job_name
            ));
        }
        ignored.extend(j.other.keys().map(|k| format!("{at}.{k}")));
        let interval = opt_duration(
            j.scrape_interval.as_deref(),
            &format!("{at}.scrape_interval"),
        )?
        .unwrap_or(g_interval);
        let timeout = opt_duration(j.scrape_timeout.as_deref(), &format!("{at}.scrape_timeout"))?
            .unwrap_or(g_timeout.min(interval));
        if timeout > interval {
            return Err(format!(
                "{at}: scrape timeout greater than scrape interval for scrape config with job name {:?}",
                j.job_name
            ));
        }
        if interval.is_zero() {
            return Err(format!("{at}.scrape_interval: must be positive"));
        }
        let scheme = j.scheme.unwrap_or_else(|| "http".into());
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "{at}.scheme: expected http or https, got {scheme:?}"
            ));
        }
        let mut file_sd = Vec::new();
        for (k, f) in j.file_sd_configs.into_iter().enumerate() {
            let refresh = opt_duration(
                f.refresh_interval.as_deref(),
                &format!("{at}.file_sd_configs[{k}].refresh_interval"),
            )?
            .unwrap_or(DEFAULT_REFRESH);
            file_sd.push(FileSd {
                files: f.files.iter().map(|p| base.join(p)).collect(),
                refresh_interval: refresh,
            });
        }
        let rules = |raw: &[RawRelabel], key: &str| -> Result<Vec<Relabel>, String> {
            raw.iter()
                .enumerate()
                .map(|(k, r)| Relabel::new(r, &format!("{at}.{key}[{k}]")))
                .collect()
        };
        jobs.push(ScrapeJob {
            relabel: rules(&j.relabel_configs, "relabel_configs")?,
            metric_relabel: rules(&j.metric_relabel_configs, "metric_relabel_configs")?,
            job_name: j.job_name,
            interval,
            timeout,
            metrics_path: j.metrics_path.unwrap_or_else(|| "/metrics".into()),
            scheme,
            params: j.params,
            honor_labels: j.honor_labels,
            honor_timestamps: j.honor_timestamps.unwrap_or(true),
            static_groups: j.static_configs,
            file_sd,
            sample_limit: j.sample_limit,
        });
    }
    Ok(ScrapeConfig {
        jobs,
        external_labels: raw.global.external_labels,
        ignored,
    })
}

fn opt_duration(v: Option<&str>, key: &str) -> Result<Option<Duration>, String> {
    match v {
        None => Ok(None),
        Some(s) => parse_prom_duration(s)
            .map(Some)
            .ok_or_else(|| format!("{key}: not a valid duration: {s:?}")),
    }
}

/// Prometheus' duration syntax (`1h30m`, `15s`, `500ms`).
pub fn parse_prom_duration(s: &str) -> Option<Duration> {
    sightline_model::time::parse_prometheus_duration_ms(s)
        .and_then(|ms| u64::try_from(ms).ok())
        .map(Duration::from_millis)
}

/// Reads the target groups of one file_sd file (JSON or YAML, by extension like Prometheus).
///
/// # Errors
/// Unreadable or invalid file, naming it.
pub fn read_file_sd(path: &Path) -> Result<Vec<RawGroup>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "json" => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
        "yml" | "yaml" => {
            serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
        }
        _ => Err(format!(
            "{}: file_sd files must end in .json, .yml or .yaml",
            path.display()
        )),
    }
}

/// Expands a file_sd pattern: a `*` (or `?`) may appear in the file name, not in directories.
pub fn expand_glob(pattern: &Path) -> Vec<PathBuf> {
    let name = pattern.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if !name.contains(['*', '?']) {
        return if pattern.exists() {
            vec![pattern.to_path_buf()]
        } else {
            Vec::new()
        };
    }
    let re = format!(
        "^{}$",
        regex::escape(name).replace(r"\*", ".*").replace(r"\?", ".")
    );
    let Ok(re) = regex::Regex::new(&re) else {
        return Vec::new();
    };
    let dir = pattern.parent().unwrap_or(Path::new("."));
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| re.is_match(n)))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMETHEUS_YML: &str = r#"
global:
  scrape_interval: 15s
  evaluation_interval: 15s
  external_labels:
    monitor: codelab
rule_files:
  - "first.rules"
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['localhost:9093']
scrape_configs:
  - job_name: prometheus
    scrape_interval: 5s
    static_configs:
      - targets: ['localhost:9090']
  - job_name: node
    metrics_path: /metrics
    honor_labels: true
    static_configs:
      - targets: ['localhost:9100', 'db:9100']
        labels:
          group: production
    file_sd_configs:
      - files: ['targets/*.json']
        refresh_interval: 1m
    relabel_configs:
      - source_labels: [__address__]
        regex: '(.*):9100'
        target_label: host
    kubernetes_sd_configs:
      - role: pod
"#;

    #[test]
    fn a_prometheus_yml_loads_unchanged() {
        let c = parse(PROMETHEUS_YML, Path::new("/etc/prometheus")).unwrap();
        assert_eq!(c.jobs.len(), 2);
        let p = &c.jobs[0];
        assert_eq!(
            (p.interval, p.timeout),
            (Duration::from_secs(5), Duration::from_secs(5))
        );
        assert_eq!(p.metrics_path, "/metrics");
        let n = &c.jobs[1];
        assert_eq!(
            (n.interval, n.timeout),
            (Duration::from_secs(15), Duration::from_secs(10))
        );
        assert!(n.honor_labels && n.honor_timestamps);
        assert_eq!(
            n.static_groups[0].targets,
            vec!["localhost:9100", "db:9100"]
        );
        assert_eq!(n.static_groups[0].labels["group"], "production");
        assert_eq!(
            n.file_sd[0].files,
            vec![PathBuf::from("/etc/prometheus/targets/*.json")]
        );
        assert_eq!(n.file_sd[0].refresh_interval, Duration::from_secs(60));
        assert_eq!(c.external_labels["monitor"], "codelab");
        assert!(c.ignored.contains(&"rule_files".to_string()));
        assert!(c.ignored.contains(&"alerting".to_string()));
        assert!(
            c.ignored
                .iter()
                .any(|k| k.ends_with("kubernetes_sd_configs")),
            "{:?}",
            c.ignored
        );
    }

    #[test]
    fn errors_name_the_job_and_key() {
        let e = parse(
            "scrape_configs:\n  - job_name: a\n    scrape_interval: 5x\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(
            e.contains("job \"a\"") && e.contains("scrape_interval"),
            "{e}"
        );
        let e = parse(
            "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(
            e.contains("scrape timeout greater than scrape interval"),
            "{e}"
        );
        let e = parse(
            "scrape_configs:\n  - job_name: a\n  - job_name: a\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(e.contains("multiple scrape configs"), "{e}");
        assert!(parse("scrape_configs: [", Path::new(".")).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_prom_duration("1h30m"),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(
            parse_prom_duration("500ms"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_prom_duration("30m1h"), None);
        assert_eq!(parse_prom_duration("1.5s"), None);
    }

    #[test]
    fn file_sd_json_yaml_and_globs() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("a.json"),
            r#"[{"targets": ["h:1"], "labels": {"env": "x"}}]"#,
        )
        .unwrap();
        std::fs::write(d.path().join("b.yml"), "- targets: ['h:2']\n").unwrap();
        std::fs::write(d.path().join("c.txt"), "").unwrap();
        let found = expand_glob(&d.path().join("*.json"));
        assert_eq!(found, vec![d.path().join("a.json")]);
        assert_eq!(read_file_sd(&found[0]).unwrap()[0].labels["env"], "x");
        assert_eq!(
            read_file_sd(&d.path().join("b.yml")).unwrap()[0].targets,
            vec!["h:2"]
        );
        assert!(read_file_sd(&d.path().join("c.txt")).is_err());
    }
}
