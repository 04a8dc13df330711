//! What every handler shares: configuration, self-metrics, the store (once the WAL replay is
//! done), the live-tail fan-out and the shutdown signal.

use std::sync::{Arc, OnceLock};

use sightline_model::{LogRecord, Tenant};
use sightline_storage::event_store::EventStore;
use tokio::sync::{broadcast, watch};

use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;

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
    pub tail: broadcast::Sender<Arc<TailBatch>>,
    /// Flips to `true` when the server starts shutting down; ends live tails.
    pub shutdown: watch::Receiver<bool>,
}

impl AppState {
    pub fn new(config: Config, shutdown: watch::Receiver<bool>) -> Self {
        AppState {
            config,
            metrics: Metrics::new(),
            store: OnceLock::new(),
            tail: broadcast::channel(TAIL_CAPACITY).0,
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

    pub fn is_ready(&self) -> bool {
        self.store.get().is_some()
    }
}
