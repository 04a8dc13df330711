//! What every handler shares: configuration, self-metrics, the log, metric and span stores
//! (once their WAL replays are done), the span-metric totals, the live-tail fan-out and the shutdown signal.

use std::sync::{Arc, OnceLock};

use sightline_model::{LogRecord, Tenant, TimeSeries};
use sightline_storage::event_store::EventStore;
use sightline_storage::{SpanStore, Tsdb};
use sightline_wire::otlp_metrics::{DeltaAccumulator, DeltaPoint};
use tokio::sync::{broadcast, watch};

use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::spanmetrics::SpanMetrics;

/// Records of one committed batch, sent to live-tail subscribers after the commit.
pub struct TailBatch {
    pub tenant: Tenant,
    pub records: Vec<LogRecord>,
}

/// Batches a slow tail subscriber may fall behind before it is told it lagged: enough for a
/// few seconds of a busy server, bounded so a stuck client cannot hold memory.
const TAIL_CAPACITY: usize = 1024;

pub struct AppState {
    pub config: Config,
    pub metrics: Metrics,
    store: OnceLock<Arc<EventStore>>,
    metric_store: OnceLock<Arc<Tsdb>>,
    span_store: OnceLock<Arc<SpanStore>>,
    /// RED metrics derived from every ingested span.
    pub span_metrics: SpanMetrics,
    pub tail: broadcast::Sender<Arc<TailBatch>>,
    /// Running totals of OTLP delta-temporality series, per tenant.
    otlp_deltas: std::sync::Mutex<std::collections::HashMap<Tenant, DeltaAccumulator>>,
    /// Flips to `true` when the server starts shutting down; ends live tails.
    pub shutdown: watch::Receiver<bool>,
}

impl AppState {
    pub fn new(config: Config, shutdown: watch::Receiver<bool>) -> Self {
        AppState {
            config,
            metrics: Metrics::new(),
            store: OnceLock::new(),
            metric_store: OnceLock::new(),
            span_store: OnceLock::new(),
            span_metrics: SpanMetrics::new(),
            tail: broadcast::channel(TAIL_CAPACITY).0,
            otlp_deltas: Default::default(),
            shutdown,
        }
    }

    /// Installs the store once the replay is done; from then on the server is ready.
    pub fn set_store(&self, store: Arc<EventStore>) {
        if self.store.set(store).is_err() {
            panic!("BUG: store installed twice");
        }
    }

    /// The store, or 503 while the WAL is still being replayed.
    pub fn store(&self) -> Result<Arc<EventStore>, ApiError> {
        self.store
            .get()
            .cloned()
            .ok_or_else(|| ApiError::Unavailable("not ready: replaying the write-ahead log".into()))
    }

    /// Installs the metric store once its WAL replay is done.
    pub fn set_metric_store(&self, store: Arc<Tsdb>) {
        if self.metric_store.set(store).is_err() {
            panic!("BUG: metric store installed twice");
        }
    }

    /// The metric store, or 503 while its WAL is still being replayed.
    pub fn metric_store(&self) -> Result<Arc<Tsdb>, ApiError> {
        self.metric_store.get().cloned().ok_or_else(|| {
            ApiError::Unavailable("not ready: replaying the metrics write-ahead log".into())
        })
    }

    /// Installs the span store once its WAL replay is done.
    pub fn set_span_store(&self, store: Arc<SpanStore>) {
        if self.span_store.set(store).is_err() {
            panic!("BUG: span store installed twice");
        }
    }

    /// The span store, or 503 while its WAL is still being replayed.
    pub fn span_store(&self) -> Result<Arc<SpanStore>, ApiError> {
        self.span_store.get().cloned().ok_or_else(|| {
            ApiError::Unavailable("not ready: replaying the traces write-ahead log".into())
        })
    }

    /// Turns OTLP delta points into cumulative series (state kept per tenant and series in
    /// memory: after a restart a delta series starts from 0 again, which PromQL reads as a
    /// counter reset).
    pub fn accumulate_deltas(&self, tenant: &Tenant, deltas: Vec<DeltaPoint>) -> Vec<TimeSeries> {
        let mut all = self
            .otlp_deltas
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.entry(tenant.clone()).or_default().accumulate(deltas)
    }

    pub fn is_ready(&self) -> bool {
        self.store.get().is_some()
            && self.metric_store.get().is_some()
            && self.span_store.get().is_some()
    }
}
