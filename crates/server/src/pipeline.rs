//! The ingest pipeline every log surface calls after decoding: commit the batch through the
//! storage appender (durable before it returns), count it, hand it to live tails.

use std::sync::Arc;

use sightline_model::{LogRecord, Tenant};
use sightline_storage::LogStore;

use crate::error::ApiError;
use crate::state::{AppState, TailBatch};

/// Commits `records` for `tenant` as one batch, all or nothing. `protocol` and `bytes` are
/// for the self-metrics.
///
/// # Errors
/// 503 before the WAL replay is done or while shutting down; 500 when the WAL write fails
/// (nothing of the batch is then visible or replayed).
pub async fn ingest_logs(
    state: &Arc<AppState>,
    tenant: Tenant,
    records: Vec<LogRecord>,
    protocol: &'static str,
    bytes: usize,
) -> Result<usize, ApiError> {
    let store = state.store()?;
    let tail = if state.tail.receiver_count() > 0 {
        Some(records.clone())
    } else {
        None
    };
    let t = tenant.clone();
    let n = tokio::task::spawn_blocking(move || {
        let mut app = store.appender(&t);
        for r in records {
            app.append(r);
        }
        app.commit()
    })
    .await
    .map_err(|e| ApiError::Internal(format!("ingest task failed: {e}")))?
    .map_err(ApiError::storage)?;
    let labels = [("signal", "logs"), ("protocol", protocol)];
    state
        .metrics
        .inc("sightline_ingested_records_total", &labels, n as u64);
    state
        .metrics
        .inc("sightline_ingested_bytes_total", &labels, bytes as u64);
    if let Some(records) = tail {
        // No subscriber left is fine: the send error only means nobody is tailing.
        let _ = state.tail.send(Arc::new(TailBatch { tenant, records }));
    }
    Ok(n)
}

/// Counts a rejected batch and passes the error on.
pub fn rejected(state: &AppState, protocol: &'static str, e: ApiError) -> ApiError {
    state.metrics.inc(
        "sightline_rejected_batches_total",
        &[
            ("signal", "logs"),
            ("protocol", protocol),
            ("reason", e.reason()),
        ],
        1,
    );
    e
}
