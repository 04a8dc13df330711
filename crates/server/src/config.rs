//! Configuration: `sightline.toml`, then `SIGHTLINE_<SECTION>_<KEY>` environment overrides,
//! then command-line flags. A raw serde struct with `deny_unknown_fields` is read first and
//! then validated into [`Config`] (Quickwit's builder → config split), so a typo in a key is
//! an error naming the key instead of a silently ignored setting.
//!
//! Every key and its default is documented in `docs/configuration.md`; keep them in step.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sightline_storage::event_store::{FsyncPolicy, StoreConfig};
use sightline_storage::span_store::SamplingConfig;
use sightline_storage::tsdb::TsdbConfig;

use crate::error::ConfigError;

/// The validated configuration the server runs with.
#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    /// Main listener: native API, every HTTP ingest and query path.
    pub listen: Option<SocketAddr>,
    /// OTLP/HTTP listener (`/v1/logs`).
    pub otlp_http: Option<SocketAddr>,
    /// OTLP/gRPC listener. Parsed and validated; served once the traces issue lands.
    pub otlp_grpc: Option<SocketAddr>,
    /// Largest accepted request body, compressed and after decompression.
    pub max_body_size: usize,
    pub fsync: Fsync,
    pub flush_interval: Duration,
    pub max_buffer_size: u64,
    pub wal_segment_size: u64,
    pub retention: Option<Duration>,
    pub retention_max_size: Option<u64>,
    pub max_parts_per_partition: usize,
    pub default_limit: usize,
    pub max_limit: usize,
    /// Metric samples older than the newest minus this are dropped (`metrics.retention`).
    pub metrics_retention: Option<Duration>,
    pub metrics_retention_max_size: Option<u64>,
    pub metrics_block_duration: Duration,
    /// A Prometheus-style YAML file with `scrape_configs` (`metrics.scrape_config_file`).
    pub scrape_config_file: Option<PathBuf>,
    /// Host metrics collection period; `None` when `metrics.host_interval = "off"`.
    pub host_interval: Option<Duration>,
    /// How far back PromQL looks for a series' latest sample (`query.lookback_delta`).
    pub promql_lookback_delta_ms: i64,
    /// Spans whose day ended longer ago than this are dropped (`traces.retention`).
    pub traces_retention: Option<Duration>,
    pub traces_retention_max_size: Option<u64>,
    /// Which traces are written to parts (`traces.sampling_*`).
    pub sampling: SamplingConfig,
    pub log_level: String,
}

impl Config {
    /// The storage configuration derived from this one.
    pub fn store_config(&self) -> StoreConfig {
        let mut s = StoreConfig::new(&self.data_dir);
        s.fsync = match self.fsync {
            Fsync::Always => FsyncPolicy::Always,
            Fsync::Interval(d) => FsyncPolicy::Interval(d),
            Fsync::Never => FsyncPolicy::Never,
        };
        s.flush_interval = self.flush_interval;
        s.max_buffer_bytes = self.max_buffer_size;
        s.wal_segment_bytes = self.wal_segment_size;
        s.retention_period = self.retention;
        s.retention_max_bytes = self.retention_max_size;
        s.max_parts_per_partition = self.max_parts_per_partition;
        s
    }

    /// The span store's configuration: the log store's WAL and flush settings, its own
    /// directory (`<data>/traces`) and retention.
    pub fn span_store_config(&self) -> StoreConfig {
        let mut s = self.store_config();
        s.dir = self.data_dir.join("traces");
        s.table = "spans";
        s.retention_period = self.traces_retention;
        s.retention_max_bytes = self.traces_retention_max_size;
        s
    }

    /// The TSDB configuration derived from this one (fsync and WAL segment size shared
    /// with the log store).
    pub fn tsdb_config(&self) -> TsdbConfig {
        let mut t = TsdbConfig::new(&self.data_dir);
        t.fsync = self.store_config().fsync;
        t.wal_segment_bytes = self.wal_segment_size;
        t.block_duration_ms =
            i64::try_from(self.metrics_block_duration.as_millis()).unwrap_or(i64::MAX);
        t.retention_ms = self
            .metrics_retention
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        t.retention_max_bytes = self.metrics_retention_max_size.unwrap_or(0);
        t
    }
}

/// When the WAL is fsynced: see `docs/configuration.md` for what each choice risks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// Before every acknowledgement (the default): an acknowledged batch survives power loss.
    Always,
    /// Every interval: a crash of the machine may lose up to one interval of acknowledged
    /// batches; a crash of the process alone loses nothing.
    Interval(Duration),
    /// Left to the OS.
    Never,
}

/// `sightline.toml` as written by the user.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    server: RawServer,
    storage: RawStorage,
    query: RawQuery,
    metrics: RawMetrics,
    traces: RawTraces,
    log: RawLog,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawServer {
    data_dir: String,
    listen: String,
    otlp_http: String,
    otlp_grpc: String,
    max_body_size: String,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            data_dir: "./sightline-data".into(),
            listen: "127.0.0.1:9470".into(),
            otlp_http: "127.0.0.1:4318".into(),
            otlp_grpc: "127.0.0.1:4317".into(),
            // Large enough for a 10k-record OTLP batch with big attributes; small enough
            // that one request cannot make the server allocate gigabytes.
            max_body_size: "16MiB".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawStorage {
    fsync: String,
    flush_interval: String,
    max_buffer_size: String,
    wal_segment_size: String,
    retention: String,
    retention_max_size: String,
    max_parts_per_partition: usize,
}

impl Default for RawStorage {
    fn default() -> Self {
        RawStorage {
            fsync: "always".into(),
            flush_interval: "5s".into(),
            max_buffer_size: "64MiB".into(),
            wal_segment_size: "64MiB".into(),
            retention: "30d".into(),
            retention_max_size: "0".into(),
            max_parts_per_partition: 8,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawQuery {
    default_limit: usize,
    max_limit: usize,
    lookback_delta: String,
}

impl Default for RawQuery {
    fn default() -> Self {
        RawQuery {
            default_limit: 100,
            max_limit: 10_000,
            // Prometheus' default `--query.lookback-delta`.
            lookback_delta: "5m".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawMetrics {
    retention: String,
    retention_max_size: String,
    block_duration: String,
    scrape_config_file: String,
    host_interval: String,
}

impl Default for RawMetrics {
    fn default() -> Self {
        RawMetrics {
            // Prometheus' defaults: 15 days, 2 h blocks.
            retention: "15d".into(),
            retention_max_size: "0".into(),
            block_duration: "2h".into(),
            scrape_config_file: String::new(),
            // node_exporter is typically scraped every 15 s.
            host_interval: "15s".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTraces {
    retention: String,
    retention_max_size: String,
    /// A float in the file; a string from the environment.
    sampling_ratio: toml::Value,
    sampling_service_ratios: toml::Table,
    /// A bool in the file; a string from the environment.
    sampling_keep_errors: toml::Value,
    sampling_keep_slower_than: String,
}

impl Default for RawTraces {
    fn default() -> Self {
        RawTraces {
            // Jaeger's and Tempo's usual retention is days, not weeks: traces are big.
            retention: "7d".into(),
            retention_max_size: "0".into(),
            sampling_ratio: toml::Value::Float(1.0),
            sampling_service_ratios: toml::Table::new(),
            sampling_keep_errors: toml::Value::Boolean(true),
            sampling_keep_slower_than: "0".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            level: "info".into(),
        }
    }
}

/// Command-line flags that override the file and the environment.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub data_dir: Option<String>,
    pub listen: Option<String>,
    pub otlp_http: Option<String>,
    pub otlp_grpc: Option<String>,
}

/// The sections and keys, for environment overrides (`SIGHTLINE_STORAGE_FSYNC`).
const KEYS: &[(&str, &[&str])] = &[
    (
        "server",
        &[
            "data_dir",
            "listen",
            "otlp_http",
            "otlp_grpc",
            "max_body_size",
        ],
    ),
    (
        "storage",
        &[
            "fsync",
            "flush_interval",
            "max_buffer_size",
            "wal_segment_size",
            "retention",
            "retention_max_size",
            "max_parts_per_partition",
        ],
    ),
    ("query", &["default_limit", "max_limit", "lookback_delta"]),
    (
        "metrics",
        &[
            "retention",
            "retention_max_size",
            "block_duration",
            "scrape_config_file",
            "host_interval",
        ],
    ),
    (
        "traces",
        &[
            "retention",
            "retention_max_size",
            "sampling_ratio",
            "sampling_keep_errors",
            "sampling_keep_slower_than",
        ],
    ),
    ("log", &["level"]),
];

/// Loads the configuration: the file (when given; a missing `sightline.toml` in the current
/// directory is fine, a missing `--config` file is not), the environment, the flags.
///
/// # Errors
/// Unreadable file, TOML syntax, unknown keys (named), invalid values (named).
pub fn load(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    flags: &Overrides,
) -> Result<Config, ConfigError> {
    let mut table = match path {
        Some(p) => read_table(p)?,
        None if Path::new("sightline.toml").exists() => read_table(Path::new("sightline.toml"))?,
        None => toml::Table::new(),
    };
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("SIGHTLINE_") else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        // SIGHTLINE_SERVER (the CLI's server URL) and other section-less names are not keys.
        let Some((section, key)) = rest.split_once('_') else {
            continue;
        };
        let Some((_, keys)) = KEYS.iter().find(|(s, _)| *s == section) else {
            continue;
        };
        if !keys.contains(&key) {
            return Err(ConfigError::UnknownKey(format!(
                "{name} (no key {key:?} in section [{section}])"
            )));
        }
        let value = if key == "max_parts_per_partition" || key.ends_with("_limit") {
            let n: i64 = value
                .parse()
                .map_err(|_| ConfigError::invalid(&name, &value, "expected an integer"))?;
            toml::Value::Integer(n)
        } else {
            toml::Value::String(value)
        };
        let sec = table
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = sec {
            t.insert(key.to_string(), value);
        }
    }
    let raw: RawConfig = RawConfig::deserialize(table)
        .map_err(|e| ConfigError::Parse(e.to_string().trim().replace('\n', " ")))?;
    validate(raw, flags)
}

fn read_table(p: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(p)
        .map_err(|e| ConfigError::Read(p.display().to_string(), e.to_string()))?;
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError::Parse(format!("{}: {}", p.display(), e.to_string().trim())))
}

fn validate(raw: RawConfig, flags: &Overrides) -> Result<Config, ConfigError> {
    let s = raw.server;
    let pick = |flag: &Option<String>, v: String| flag.clone().unwrap_or(v);
    let listen = parse_listen("server.listen", &pick(&flags.listen, s.listen))?;
    let otlp_http = parse_listen("server.otlp_http", &pick(&flags.otlp_http, s.otlp_http))?;
    let otlp_grpc = parse_listen("server.otlp_grpc", &pick(&flags.otlp_grpc, s.otlp_grpc))?;
    let max_body_size = parse_size("server.max_body_size", &s.max_body_size)?;
    if max_body_size == 0 {
        return Err(ConfigError::invalid(
            "server.max_body_size",
            "0",
            "must be positive",
        ));
    }
    let st = raw.storage;
    let fsync = match st.fsync.as_str() {
        "always" => Fsync::Always,
        "never" => Fsync::Never,
        other => Fsync::Interval(parse_duration("storage.fsync", other).map_err(|_| {
            ConfigError::invalid(
                "storage.fsync",
                other,
                "expected \"always\", \"never\" or an interval such as \"100ms\"",
            )
        })?),
    };
    let retention = match parse_duration("storage.retention", &st.retention)? {
        d if d.is_zero() => None,
        d => Some(d),
    };
    let retention_max_size = match parse_size("storage.retention_max_size", &st.retention_max_size)?
    {
        0 => None,
        n => Some(n as u64),
    };
    if raw.query.default_limit == 0 || raw.query.max_limit < raw.query.default_limit {
        return Err(ConfigError::invalid(
            "query.default_limit",
            &raw.query.default_limit.to_string(),
            "must be positive and at most query.max_limit",
        ));
    }
    let lookback = parse_duration("query.lookback_delta", &raw.query.lookback_delta)?;
    if lookback.is_zero() {
        return Err(ConfigError::invalid(
            "query.lookback_delta",
            &raw.query.lookback_delta,
            "must be positive",
        ));
    }
    let lookback_ms = i64::try_from(lookback.as_millis()).unwrap_or(i64::MAX);
    let m = raw.metrics;
    let metrics_retention = match parse_duration("metrics.retention", &m.retention)? {
        d if d.is_zero() => None,
        d => Some(d),
    };
    let metrics_retention_max_size =
        match parse_size("metrics.retention_max_size", &m.retention_max_size)? {
            0 => None,
            n => Some(n as u64),
        };
    let metrics_block_duration = parse_duration("metrics.block_duration", &m.block_duration)?;
    if metrics_block_duration < Duration::from_secs(60) {
        return Err(ConfigError::invalid(
            "metrics.block_duration",
            &m.block_duration,
            "must be at least 1m",
        ));
    }
    let host_interval = if m.host_interval.eq_ignore_ascii_case("off") {
        None
    } else {
        match parse_duration("metrics.host_interval", &m.host_interval)? {
            d if d.is_zero() => None,
            d => Some(d),
        }
    };
    let scrape_config_file = (!m.scrape_config_file.trim().is_empty())
        .then(|| PathBuf::from(m.scrape_config_file.trim()));
    let (traces_retention, traces_retention_max_size, sampling) = validate_traces(raw.traces)?;
    Ok(Config {
        data_dir: PathBuf::from(pick(&flags.data_dir, s.data_dir)),
        listen,
        otlp_http,
        otlp_grpc,
        max_body_size,
        fsync,
        flush_interval: parse_duration("storage.flush_interval", &st.flush_interval)?,
        max_buffer_size: parse_size("storage.max_buffer_size", &st.max_buffer_size)? as u64,
        wal_segment_size: parse_size("storage.wal_segment_size", &st.wal_segment_size)? as u64,
        retention,
        retention_max_size,
        max_parts_per_partition: st.max_parts_per_partition.max(2),
        default_limit: raw.query.default_limit,
        max_limit: raw.query.max_limit,
        promql_lookback_delta_ms: lookback_ms,
        metrics_retention,
        metrics_retention_max_size,
        metrics_block_duration,
        scrape_config_file,
        host_interval,
        traces_retention,
        traces_retention_max_size,
        sampling,
        log_level: raw.log.level,
    })
}

/// A sampling ratio: a number (or numeric string) in [0, 1].
fn parse_ratio(key: &str, v: &toml::Value) -> Result<f64, ConfigError> {
    let text = match v {
        toml::Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    };
    match text.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(ConfigError::invalid(
            key,
            &text,
            "expected a ratio between 0 and 1",
        )),
    }
}

#[allow(clippy::type_complexity)]
fn validate_traces(
    t: RawTraces,
) -> Result<(Option<Duration>, Option<u64>, SamplingConfig), ConfigError> {
    let retention = match parse_duration("traces.retention", &t.retention)? {
        d if d.is_zero() => None,
        d => Some(d),
    };
    let max_size = match parse_size("traces.retention_max_size", &t.retention_max_size)? {
        0 => None,
        n => Some(n as u64),
    };
    let default_ratio = parse_ratio("traces.sampling_ratio", &t.sampling_ratio)?;
    let mut per_service = Vec::new();
    for (service, v) in &t.sampling_service_ratios {
        let key = format!("traces.sampling_service_ratios.{service}");
        per_service.push((service.clone(), parse_ratio(&key, v)?));
    }
    let keep_errors = match &t.sampling_keep_errors {
        toml::Value::Boolean(b) => *b,
        toml::Value::String(s) if s.eq_ignore_ascii_case("true") => true,
        toml::Value::String(s) if s.eq_ignore_ascii_case("false") => false,
        other => {
            return Err(ConfigError::invalid(
                "traces.sampling_keep_errors",
                &other.to_string(),
                "expected true or false",
            ))
        }
    };
    let slower = parse_duration(
        "traces.sampling_keep_slower_than",
        &t.sampling_keep_slower_than,
    )?;
    let sampling = SamplingConfig {
        default_ratio,
        per_service,
        keep_errors,
        keep_slower_than_ns: (!slower.is_zero())
            .then(|| i64::try_from(slower.as_nanos()).unwrap_or(i64::MAX)),
    };
    Ok((retention, max_size, sampling))
}

/// `host:port`, or `off` to disable the listener.
fn parse_listen(key: &str, v: &str) -> Result<Option<SocketAddr>, ConfigError> {
    if v.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    v.parse().map(Some).map_err(|_| {
        ConfigError::invalid(
            key,
            v,
            "expected host:port (e.g. 127.0.0.1:9470) or \"off\"",
        )
    })
}

/// Durations as humantime spells them: `30s`, `5m`, `15d`, `1h 30m`; `0` for none.
pub fn parse_duration(key: &str, v: &str) -> Result<Duration, ConfigError> {
    if v.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(v.trim()).map_err(|e| {
        ConfigError::invalid(
            key,
            v,
            &format!("expected a duration such as \"30s\" or \"15d\": {e}"),
        )
    })
}

/// Sizes: a byte count, or a number with a unit `KB MB GB TB` (powers of 1000) or
/// `KiB MiB GiB TiB` (powers of 1024).
pub fn parse_size(key: &str, v: &str) -> Result<usize, ConfigError> {
    let t = v.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(ConfigError::invalid(
                key,
                v,
                "unknown size unit (use B, KB, MB, GB, KiB, MiB, GiB)",
            ))
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| ConfigError::invalid(key, v, "expected a size such as \"512MiB\""))?;
    Ok((n * mult) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let c = load(None, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(c.listen, Some("127.0.0.1:9470".parse().unwrap()));
        assert_eq!(c.otlp_http, Some("127.0.0.1:4318".parse().unwrap()));
        assert_eq!(c.data_dir, PathBuf::from("./sightline-data"));
        assert_eq!(c.max_body_size, 16 << 20);
        assert_eq!(c.fsync, Fsync::Always);
        assert_eq!(c.retention, Some(Duration::from_secs(30 * 86400)));
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        std::fs::write(
            &p,
            "[server]\nlisten = \"127.0.0.1:1\"\nmax_body_size = \"1MiB\"\n[storage]\nfsync = \"100ms\"\n",
        )
        .unwrap();
        let c = load(
            Some(&p),
            env(&[
                ("SIGHTLINE_SERVER_LISTEN", "127.0.0.1:2"),
                ("SIGHTLINE_SERVER", "http://x"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.listen, Some("127.0.0.1:2".parse().unwrap()));
        assert_eq!(c.max_body_size, 1 << 20);
        assert_eq!(c.fsync, Fsync::Interval(Duration::from_millis(100)));
        let flags = Overrides {
            listen: Some("off".into()),
            ..Default::default()
        };
        let c = load(Some(&p), env(&[]), &flags).unwrap();
        assert_eq!(c.listen, None);
    }

    #[test]
    fn unknown_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        std::fs::write(&p, "[storage]\nfsynk = \"always\"\n").unwrap();
        let e = load(Some(&p), env(&[]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("fsynk"), "{e}");
        let e = load(
            None,
            env(&[("SIGHTLINE_STORAGE_RETENTON", "1d")]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("SIGHTLINE_STORAGE_RETENTON"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = load(
            None,
            env(&[("SIGHTLINE_SERVER_MAX_BODY_SIZE", "12 parsecs")]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("server.max_body_size") || e.contains("SIGHTLINE_SERVER_MAX_BODY_SIZE"),
            "{e}"
        );
        let e = load(
            None,
            env(&[("SIGHTLINE_STORAGE_FSYNC", "sometimes")]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("storage.fsync"), "{e}");
    }

    #[test]
    fn traces_sampling_from_file_and_env() {
        let c = load(None, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(c.sampling, SamplingConfig::default());
        assert_eq!(c.traces_retention, Some(Duration::from_secs(7 * 86400)));
        assert_eq!(
            c.span_store_config().dir,
            PathBuf::from("./sightline-data/traces")
        );
        assert_eq!(c.span_store_config().table, "spans");

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        std::fs::write(
            &p,
            "[traces]\nsampling_ratio = 0.25\nsampling_keep_slower_than = \"2s\"\n\
             [traces.sampling_service_ratios]\ncheckout = 0.5\n",
        )
        .unwrap();
        let c = load(
            Some(&p),
            env(&[("SIGHTLINE_TRACES_SAMPLING_KEEP_ERRORS", "false")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.sampling.default_ratio, 0.25);
        assert_eq!(c.sampling.per_service, vec![("checkout".to_string(), 0.5)]);
        assert!(!c.sampling.keep_errors);
        assert_eq!(c.sampling.keep_slower_than_ns, Some(2_000_000_000));

        let c = load(
            None,
            env(&[("SIGHTLINE_TRACES_SAMPLING_RATIO", "0")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.sampling.default_ratio, 0.0);
        let e = load(
            None,
            env(&[("SIGHTLINE_TRACES_SAMPLING_RATIO", "1.5")]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("traces.sampling_ratio"), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("k", "512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("k", "1GB").unwrap(), 1_000_000_000);
        assert_eq!(parse_size("k", "4096").unwrap(), 4096);
        assert!(parse_size("k", "lots").is_err());
    }
}
