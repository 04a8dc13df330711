//! The scrape manager: for every job of a [`ScrapeConfig`], discovers targets (static
//! groups, file_sd files re-read every `refresh_interval`), runs one loop per target that
//! fetches `/metrics` every `scrape_interval`, and writes the samples with Prometheus'
//! target labels, `honor_labels`/`honor_timestamps`, `metric_relabel_configs`, the report
//! series (`up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
//! `scrape_samples_post_metric_relabeling`, `scrape_series_added`) and staleness markers:
//! a series missing from a scrape, every series of a failed scrape, and every series of a
//! target that went away get `StaleNaN` at that scrape's time, as Prometheus does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sightline_model::sample::stale_nan;
use sightline_model::{Labels, Sample, TimeSeries, METRIC_NAME};
use sightline_wire::exposition::{parse_prometheus_text, MetricBatch};
use sightline_wire::openmetrics::parse_openmetrics;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::relabel::relabel;
use crate::scrape_config::{expand_glob, read_file_sd, RawGroup, ScrapeConfig, ScrapeJob};

/// Where scraped samples go: commits one batch durably (the server's metric pipeline).
/// Called on a blocking thread.
pub type SampleSink = Arc<dyn Fn(MetricBatch) -> Result<usize, String> + Send + Sync>;

/// What Prometheus 2.42 sends as `Accept`, preferring OpenMetrics.
const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// Largest scrape body read: a guard against a runaway target, far above real exporters
/// (node_exporter answers ~100 KiB).
const MAX_BODY: usize = 64 << 20;

/// One target after relabelling.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// The labels every scraped series gets (`job`, `instance`, group labels...).
    pub labels: Labels,
    pub url: String,
}

/// Targets of `job` from target `groups`: Prometheus' `PopulateLabels`: `__address__`,
/// `__scheme__`, `__metrics_path__`, `__scrape_interval__`, `__scrape_timeout__`,
/// `__param_*` and `job`, then `relabel_configs`, then `instance` defaults to the address
/// and `__`-prefixed labels are dropped.
pub fn targets_of(job: &ScrapeJob, groups: &[RawGroup]) -> Vec<Target> {
    let mut out = Vec::new();
    for g in groups {
        for addr in &g.targets {
            let mut pairs: BTreeMap<String, String> = BTreeMap::new();
            pairs.insert("job".into(), job.job_name.clone());
            pairs.insert("__scheme__".into(), job.scheme.clone());
            pairs.insert("__metrics_path__".into(), job.metrics_path.clone());
            pairs.insert("__scrape_interval__".into(), fmt_duration(job.interval));
            pairs.insert("__scrape_timeout__".into(), fmt_duration(job.timeout));
            for (k, v) in &job.params {
                if let Some(first) = v.first() {
                    pairs.insert(format!("__param_{k}"), first.clone());
                }
            }
            for (k, v) in &g.labels {
                pairs.insert(k.clone(), v.clone());
            }
            pairs.insert("__address__".into(), addr.clone());
            let Ok(l) = Labels::from_pairs(pairs) else {
                continue;
            };
            let Some(l) = relabel(&l, &job.relabel) else {
                continue;
            };
            let Some(address) = l.get("__address__").map(str::to_string) else {
                continue;
            };
            let scheme = l.get("__scheme__").unwrap_or("http").to_string();
            let path = l.get("__metrics_path__").unwrap_or("/metrics").to_string();
            let mut params: Vec<(String, String)> = Vec::new();
            for (k, v) in &job.params {
                let val = l
                    .get(&format!("__param_{k}"))
                    .map(str::to_string)
                    .or_else(|| v.first().cloned());
                if let Some(val) = val {
                    params.push((k.clone(), val));
                }
            }
            let mut url = format!("{scheme}://{address}{path}");
            if !params.is_empty() {
                url.push('?');
                url.push_str(&serde_urlencode(&params));
            }
            let mut final_labels = l.clone();
            if final_labels.get("instance").is_none() {
                final_labels = final_labels.with("instance", &address);
            }
            let names: Vec<String> = final_labels
                .iter()
                .filter(|(k, _)| k.starts_with("__"))
                .map(|(k, _)| k.to_string())
                .collect();
            for n in names {
                final_labels = final_labels.without(&n);
            }
            out.push(Target {
                labels: final_labels,
                url,
            });
        }
    }
    out.sort_by(|a, b| a.url.cmp(&b.url).then_with(|| a.labels.cmp(&b.labels)));
    out.dedup();
    out
}

fn serde_urlencode(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Prometheus' duration formatting for `__scrape_interval__` (`15s`, `1m`, `1m30s`).
fn fmt_duration(d: Duration) -> String {
    sightline_model::time::format_prometheus_duration_ms(
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
    )
}

/// Merges target labels into a scraped series' labels (Prometheus' `mutateSampleLabels`):
/// with `honor_labels` the scraped value wins; otherwise the target's does and a clashing
/// scraped label is kept as `exported_<name>`.
pub fn merge_target_labels(scraped: &Labels, target: &Labels, honor: bool) -> Labels {
    let mut out = scraped.clone();
    for (k, v) in target.iter() {
        match scraped.get(k) {
            Some(_) if honor => {}
            Some(existing) => {
                let mut name = format!("exported_{k}");
                while scraped.get(&name).is_some() {
                    name = format!("exported_{name}");
                }
                out = out.with(&name, existing).with(k, v);
            }
            None => out = out.with(k, v),
        }
    }
    out
}

/// A running scrape manager; dropping it (or [`ScrapeManager::stop`]) ends every loop
/// without staleness markers, as Prometheus does at shutdown.
pub struct ScrapeManager {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ScrapeManager {
    /// Starts discovery and scrape loops for every job on the current Tokio runtime.
    pub fn start(cfg: ScrapeConfig, sink: SampleSink) -> Self {
        let (stop, rx) = watch::channel(false);
        let client = reqwest::Client::builder()
            .user_agent(concat!("Sightline/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|e| panic!("BUG: cannot build the HTTP client: {e}"));
        let tasks = cfg
            .jobs
            .into_iter()
            .map(|job| {
                tokio::spawn(run_job(
                    Arc::new(job),
                    client.clone(),
                    sink.clone(),
                    rx.clone(),
                ))
            })
            .collect();
        ScrapeManager { stop, tasks }
    }

    /// Stops every loop and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Discovery for one job: keeps one loop per current target.
async fn run_job(
    job: Arc<ScrapeJob>,
    client: reqwest::Client,
    sink: SampleSink,
    mut stop: watch::Receiver<bool>,
) {
    let mut running: HashMap<Target, (watch::Sender<bool>, tokio::task::JoinHandle<()>)> =
        HashMap::new();
    let refresh = job.file_sd.iter().map(|f| f.refresh_interval).min();
    loop {
        let mut groups = job.static_groups.clone();
        for f in &job.file_sd {
            for pattern in &f.files {
                for path in expand_glob(pattern) {
                    match read_file_sd(&path) {
                        Ok(g) => groups.extend(g),
                        Err(e) => warn!(job = %job.job_name, error = %e, "file_sd: skipping file"),
                    }
                }
            }
        }
        let wanted: HashSet<Target> = targets_of(&job, &groups).into_iter().collect();
        running.retain(|t, (tx, _)| {
            let keep = wanted.contains(t);
            if !keep {
                // The loop writes end-of-run staleness markers, then exits.
                let _ = tx.send(true);
            }
            keep
        });
        for t in wanted {
            if let std::collections::hash_map::Entry::Vacant(e) = running.entry(t.clone()) {
                let (tx, rx) = watch::channel(false);
                let h = tokio::spawn(scrape_loop(
                    job.clone(),
                    t,
                    client.clone(),
                    sink.clone(),
                    rx,
                    stop.clone(),
                ));
                e.insert((tx, h));
            }
        }
        let wait = refresh.unwrap_or(Duration::from_secs(3600 * 24 * 365));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    for (_, (_, h)) in running {
        let _ = h.await;
    }
}

fn now_ms() -> i64 {
    sightline_model::time::now_ns().div_euclid(1_000_000)
}

/// One target's loop. `removed` flips when discovery drops the target (write staleness
/// markers, then stop); `shutdown` when the server stops (just stop).
async fn scrape_loop(
    job: Arc<ScrapeJob>,
    target: Target,
    client: reqwest::Client,
    sink: SampleSink,
    mut removed: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Spread targets over the interval (Prometheus offsets by a hash of the target).
    let mut h = std::collections::hash_map::DefaultHasher::new();
    target.url.hash(&mut h);
    let offset = Duration::from_millis(h.finish() % job.interval.as_millis().max(1) as u64);
    let mut last: HashSet<Labels> = HashSet::new();
    tokio::select! {
        _ = tokio::time::sleep(offset) => {}
        _ = shutdown.wait_for(|s| *s) => return,
        _ = removed.wait_for(|s| *s) => return,
    }
    let mut ticker = tokio::time::interval(job.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let gone = tokio::select! {
            _ = ticker.tick() => false,
            _ = shutdown.wait_for(|s| *s) => return,
            // An error means discovery ended (shutdown): stop without markers.
            r = removed.wait_for(|s| *s) => match r {
                Ok(_) => true,
                Err(_) => return,
            },
        };
        if gone {
            let batch = stale_batch(&last, now_ms());
            let _ = write(&sink, batch).await;
            debug!(target = %target.url, "target removed: staleness markers written");
            return;
        }
        let t0 = now_ms();
        let started = Instant::now();
        let result = scrape_once(&client, &job, &target, t0).await;
        let duration = started.elapsed().as_secs_f64();
        let mut batch = MetricBatch::default();
        let mut current: HashSet<Labels> = HashSet::new();
        let (up, scraped, post) = match result {
            Ok(scraped_batch) => {
                let n_scraped = scraped_batch.sample_count();
                let mut post = 0usize;
                for mut s in scraped_batch.series {
                    let merged = merge_target_labels(&s.labels, &target.labels, job.honor_labels);
                    let Some(l) = relabel(&merged, &job.metric_relabel) else {
                        continue;
                    };
                    if !job.honor_timestamps {
                        for p in &mut s.samples {
                            p.timestamp_ms = t0;
                        }
                    }
                    post += s.samples.len();
                    current.insert(l.clone());
                    batch.series.push(TimeSeries {
                        labels: l,
                        samples: s.samples,
                    });
                }
                batch.metadata = scraped_batch.metadata;
                if job.sample_limit > 0 && post > job.sample_limit {
                    warn!(target = %target.url, limit = job.sample_limit, samples = post, "scrape exceeded sample_limit");
                    batch.series.clear();
                    batch.metadata.clear();
                    current.clear();
                    (0.0, n_scraped, 0)
                } else {
                    (1.0, n_scraped, post)
                }
            }
            Err(e) => {
                debug!(target = %target.url, error = %e, "scrape failed");
                (0.0, 0, 0)
            }
        };
        let added = current.difference(&last).count();
        let mut stale = stale_batch(&last.difference(&current).cloned().collect(), t0);
        batch.series.append(&mut stale.series);
        for (name, v) in [
            ("up", up),
            ("scrape_duration_seconds", duration),
            ("scrape_samples_scraped", scraped as f64),
            ("scrape_samples_post_metric_relabeling", post as f64),
            ("scrape_series_added", added as f64),
        ] {
            let l = target.labels.clone().with(METRIC_NAME, name);
            current.insert(l.clone());
            batch.series.push(TimeSeries {
                labels: l,
                samples: vec![Sample {
                    timestamp_ms: t0,
                    value: v,
                }],
            });
        }
        last = current;
        if let Err(e) = write(&sink, batch).await {
            warn!(target = %target.url, error = %e, "cannot store scraped samples");
        }
    }
}

fn stale_batch(series: &HashSet<Labels>, t_ms: i64) -> MetricBatch {
    let mut series: Vec<&Labels> = series.iter().collect();
    series.sort();
    MetricBatch {
        series: series
            .into_iter()
            .map(|l| TimeSeries {
                labels: l.clone(),
                samples: vec![Sample {
                    timestamp_ms: t_ms,
                    value: stale_nan(),
                }],
            })
            .collect(),
        metadata: Vec::new(),
    }
}

async fn write(sink: &SampleSink, batch: MetricBatch) -> Result<usize, String> {
    if batch.series.is_empty() {
        return Ok(0);
    }
    let sink = sink.clone();
    tokio::task::spawn_blocking(move || sink(batch))
        .await
        .map_err(|e| format!("sink task failed: {e}"))?
}

/// Fetches and decodes one scrape.
async fn scrape_once(
    client: &reqwest::Client,
    job: &ScrapeJob,
    target: &Target,
    t0: i64,
) -> Result<MetricBatch, String> {
    let resp = client
        .get(&target.url)
        .header("Accept", ACCEPT)
        .header(
            "X-Prometheus-Scrape-Timeout-Seconds",
            format!("{}", job.timeout.as_secs_f64()),
        )
        .timeout(job.timeout)
        .send()
        .await
        .map_err(|e| format!("GET {}: {e}", target.url))?;
    if !resp.status().is_success() {
        return Err(format!(
            "GET {}: server returned HTTP status {}",
            target.url,
            resp.status()
        ));
    }
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("GET {}: {e}", target.url))?;
    if body.len() > MAX_BODY {
        return Err(format!(
            "GET {}: body larger than {MAX_BODY} bytes",
            target.url
        ));
    }
    if ct.starts_with("application/openmetrics-text") {
        parse_openmetrics(&body, t0).map_err(|e| e.to_string())
    } else {
        parse_prometheus_text(&body, t0).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape_config::parse;
    use std::path::Path;

    fn job(yaml: &str) -> ScrapeJob {
        parse(yaml, Path::new(".")).unwrap().jobs.remove(0)
    }

    #[test]
    fn target_labels_like_prometheus() {
        let j = job("scrape_configs:\n  - job_name: node\n    scrape_interval: 15s\n    params: {module: [http_2xx]}\n    static_configs:\n      - targets: ['a:9100']\n        labels: {env: prod}\n    relabel_configs:\n      - source_labels: [__address__]\n        regex: '(.*):9100'\n        target_label: host\n      - source_labels: [env]\n        regex: dev\n        action: drop\n");
        let t = targets_of(&j, &j.static_groups);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].url, "http://a:9100/metrics?module=http_2xx");
        let l: Vec<_> = t[0].labels.iter().collect();
        assert_eq!(
            l,
            vec![
                ("env", "prod"),
                ("host", "a"),
                ("instance", "a:9100"),
                ("job", "node")
            ]
        );
        // A dropped target does not appear.
        let dev = vec![RawGroup {
            targets: vec!["b:9100".into()],
            labels: [("env".to_string(), "dev".to_string())].into(),
        }];
        assert!(targets_of(&j, &dev).is_empty());
    }

    #[test]
    fn honor_labels_and_exported_prefix() {
        let scraped =
            Labels::from_pairs([("__name__", "m"), ("job", "inner"), ("x", "1")]).unwrap();
        let target = Labels::from_pairs([("job", "outer"), ("instance", "h:1")]).unwrap();
        let merged = merge_target_labels(&scraped, &target, false);
        assert_eq!(merged.get("job"), Some("outer"));
        assert_eq!(merged.get("exported_job"), Some("inner"));
        assert_eq!(merged.get("instance"), Some("h:1"));
        let honored = merge_target_labels(&scraped, &target, true);
        assert_eq!(honored.get("job"), Some("inner"));
        assert_eq!(honored.get("exported_job"), None);
        assert_eq!(honored.get("instance"), Some("h:1"));
    }

    #[test]
    fn durations_format_like_go() {
        assert_eq!(fmt_duration(Duration::from_secs(15)), "15s");
        assert_eq!(fmt_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1s500ms");
    }
}
