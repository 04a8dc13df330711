//! The ingest pipeline every surface calls after decoding: commit the batch through the
//! storage appender (durable before it returns), count it, hand log batches to live tails.

use std::sync::Arc;

use sightline_model::{LogRecord, Span, Tenant};
use sightline_storage::{LogStore, MetricStore};
use sightline_wire::exposition::MetricBatch;

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
    count_ingested(state, "logs", protocol, n, bytes);
    if let Some(records) = tail {
        // No subscriber left is fine: the send error only means nobody is tailing.
        let _ = state.tail.send(Arc::new(TailBatch { tenant, records }));
    }
    Ok(n)
}

/// Commits a decoded metric batch for `tenant`, all or nothing, and counts it (samples).
///
/// # Errors
/// 503 before the metrics WAL replay is done; 500 when the WAL write fails.
pub async fn ingest_samples(
    state: &Arc<AppState>,
    tenant: Tenant,
    batch: MetricBatch,
    protocol: &'static str,
    bytes: usize,
) -> Result<usize, ApiError> {
    let store = state.metric_store()?;
    let n = tokio::task::spawn_blocking(move || {
        let mut app = store.appender(&tenant);
        for s in batch.series {
            app.append(s);
        }
        for m in batch.metadata {
            app.append_metadata(m);
        }
        app.commit()
    })
    .await
    .map_err(|e| ApiError::Internal(format!("ingest task failed: {e}")))?
    .map_err(ApiError::storage)?;
    count_ingested(state, "metrics", protocol, n, bytes);
    Ok(n)
}

/// Commits `spans` for `tenant` as one batch, all or nothing, then the span-metric samples
/// they produce (every span counts, whatever sampling later keeps), and counts them.
///
/// The spans are durable before the span metrics are: a crash between the two commits
/// loses that batch's span-metric increments, never spans. The increments are computed
/// first (the spans then move into the store without a copy), so a batch whose WAL write
/// fails stays counted in the span metrics (a disk error, logged).
///
/// # Errors
/// 503 before the WAL replays are done; 500 when a WAL write fails (nothing of the span
/// batch is then visible or replayed).
pub async fn ingest_spans(
    state: &Arc<AppState>,
    tenant: Tenant,
    spans: Vec<Span>,
    protocol: &'static str,
    bytes: usize,
) -> Result<usize, ApiError> {
    let store = state.span_store()?;
    let metric_store = state.metric_store()?;
    let st = state.clone();
    let n = tokio::task::spawn_blocking(move || {
        let series =
            st.span_metrics
                .observe(&tenant, &spans, sightline_model::time::now_ns() / 1_000_000);
        let n = store.append(&tenant, spans)?;
        let mut app = metric_store.appender(&tenant);
        if !series.is_empty() {
            for m in crate::spanmetrics::SpanMetrics::metadata() {
                app.append_metadata(m);
            }
        }
        for s in series {
            app.append(s);
        }
        app.commit()?;
        Ok::<usize, sightline_storage::Error>(n)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("ingest task failed: {e}")))?
    .map_err(ApiError::storage)?;
    count_ingested(state, "traces", protocol, n, bytes);
    Ok(n)
}

/// Counts an accepted batch of `n` records (samples for metrics) and `bytes`.
pub fn count_ingested(state: &AppState, signal: &str, protocol: &str, n: usize, bytes: usize) {
    let labels = [("signal", signal), ("protocol", protocol)];
    state
        .metrics
        .inc("sightline_ingested_records_total", &labels, n as u64);
    if bytes > 0 {
        state
            .metrics
            .inc("sightline_ingested_bytes_total", &labels, bytes as u64);
    }
}

/// Counts a rejected log batch and passes the error on.
pub fn rejected(state: &AppState, protocol: &'static str, e: ApiError) -> ApiError {
    count_rejected(state, "logs", protocol, e)
}

/// Counts a rejected metric batch and passes the error on.
pub fn rejected_metrics(state: &AppState, protocol: &'static str, e: ApiError) -> ApiError {
    count_rejected(state, "metrics", protocol, e)
}

fn count_rejected(state: &AppState, signal: &str, protocol: &str, e: ApiError) -> ApiError {
    state.metrics.inc(
        "sightline_rejected_batches_total",
        &[
            ("signal", signal),
            ("protocol", protocol),
            ("reason", e.reason()),
        ],
        1,
    );
    e
}

/// Counts a rejected span batch and passes the error on.
pub fn rejected_spans(state: &AppState, protocol: &'static str, e: ApiError) -> ApiError {
    count_rejected(state, "traces", protocol, e)
}
