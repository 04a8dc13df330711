//! The server's own metric sources, started once storage is ready: host metrics every
//! `metrics.host_interval` and the scrape manager of `metrics.scrape_config_file`. Both
//! write into the default tenant through the same appender as every ingest path.

use std::sync::Arc;
use std::time::Duration;

use sightline_model::{Labels, Tenant};
use sightline_probe::host::HostCollector;
use sightline_probe::scrape::{SampleSink, ScrapeManager};
use sightline_probe::scrape_config::ScrapeConfig;
use sightline_storage::{MetricStore, Tsdb};
use sightline_wire::exposition::MetricBatch;
use tracing::{info, warn};

use crate::pipeline::count_ingested;
use crate::state::AppState;

pub struct Collectors {
    scrape: Option<ScrapeManager>,
    host: Option<tokio::task::JoinHandle<()>>,
}

impl Collectors {
    pub async fn stop(self) {
        if let Some(h) = self.host {
            h.abort();
        }
        if let Some(s) = self.scrape {
            s.stop().await;
        }
    }
}

/// A sink committing batches to the default tenant and counting them under `protocol`.
fn sink(state: &Arc<AppState>, tsdb: Arc<Tsdb>, protocol: &'static str) -> SampleSink {
    let state = state.clone();
    Arc::new(move |batch: MetricBatch| {
        let mut app = tsdb.appender(&Tenant::default_tenant());
        for s in batch.series {
            app.append(s);
        }
        for m in batch.metadata {
            app.append_metadata(m);
        }
        let n = app.commit().map_err(|e| e.to_string())?;
        count_ingested(&state, "metrics", protocol, n, 0);
        Ok(n)
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

pub fn start(state: &Arc<AppState>, tsdb: Arc<Tsdb>, scrape: Option<ScrapeConfig>) -> Collectors {
    let scrape = scrape.map(|cfg| {
        for k in &cfg.ignored {
            warn!(key = %k, "scrape config: key not supported by Sightline, ignored");
        }
        info!(jobs = cfg.jobs.len(), "scraping");
        ScrapeManager::start(cfg, sink(state, tsdb.clone(), "scrape"))
    });
    let host = state.config.host_interval.map(|every| {
        let sink = sink(state, tsdb, "host");
        let host = hostname();
        let labels = |job: &str| {
            Labels::from_pairs([("job", job), ("instance", host.as_str())])
                .unwrap_or_else(|e| panic!("BUG: fixed labels are valid: {e}"))
        };
        let collector = Arc::new(HostCollector::new(labels("node"), labels("sightline")));
        tokio::spawn(host_loop(collector, sink, every))
    });
    Collectors { scrape, host }
}

async fn host_loop(collector: Arc<HostCollector>, sink: SampleSink, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticker.tick().await;
        let c = collector.clone();
        let s = sink.clone();
        let r = tokio::task::spawn_blocking(move || {
            let now = sightline_model::time::now_ns().div_euclid(1_000_000);
            let got = c.collect(now);
            s(MetricBatch {
                series: got.series,
                metadata: got.metadata,
            })
        })
        .await;
        match r {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!(error = %e, "cannot store host metrics"),
            Err(e) => warn!(error = %e, "host metrics task failed"),
        }
    }
}
