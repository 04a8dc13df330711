//! Operator endpoints: `POST /api/v1/admin/flush` writes every buffered row to parts now
//! (tests and backups use it; the background flush does the same every flush interval).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;

use crate::error::ApiError;
use crate::state::AppState;

pub async fn flush(
    State(state): State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let store = state.store()?;
    tokio::task::spawn_blocking(move || store.flush())
        .await
        .map_err(|e| ApiError::Internal(format!("flush task failed: {e}")))?
        .map_err(ApiError::storage)?;
    Ok(Json(serde_json::json!({"status": "ok"})))
}
