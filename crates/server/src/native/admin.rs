//! Operator endpoints: `POST /api/v1/admin/flush` writes every buffered log row and span to
//! parts (trace sampling decides then) and every metric sample in the TSDB head to blocks
//! now (tests and backups use it; background
//! flushes and block cuts do the same on their schedules).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;

use crate::error::ApiError;
use crate::state::AppState;

pub async fn flush(
    State(state): State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let store = state.store()?;
    let tsdb = state.metric_store()?;
    let spans = state.span_store()?;
    tokio::task::spawn_blocking(move || {
        store.flush()?;
        spans.flush()?;
        tsdb.flush()
    })
    .await
    .map_err(|e| ApiError::Internal(format!("flush task failed: {e}")))?
    .map_err(ApiError::storage)?;
    Ok(Json(serde_json::json!({"status": "ok"})))
}
