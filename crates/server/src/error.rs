//! Errors of the server crate, and the one place that maps error kinds to HTTP status codes
//! (Quickwit's `ServiceErrorCode`): handlers return [`ApiError`], never build statuses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// A configuration problem; the message names the key or environment variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {0}: {1}")]
    Read(String, String),
    #[error("invalid configuration: {0}")]
    Parse(String),
    #[error("unknown configuration key {0}")]
    UnknownKey(String),
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
}

impl ConfigError {
    pub fn invalid(key: &str, value: &str, reason: &str) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// What an API request can fail with. The message is shown to the client, so it names the
/// field, line or position and never leaks internals (storage errors are logged in full and
/// answered with a short message).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The body exceeds `server.max_body_size` (413).
    #[error("{0}")]
    TooLarge(String),
    /// The content type is not one this endpoint speaks (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Still replaying the WAL, or shutting down (503).
    #[error("{0}")]
    Unavailable(String),
    /// Storage failed (500); details are in the server log.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The label value for `sightline_rejected_batches_total{reason=...}`.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::TooLarge(_) => "too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "storage",
        }
    }

    /// Logs a storage error in full and returns the client-facing error.
    pub fn storage(e: sightline_storage::Error) -> Self {
        match e {
            sightline_storage::Error::Closed => {
                ApiError::Unavailable("server is shutting down".into())
            }
            e => {
                tracing::error!(error = %e, "storage error");
                // Corruption names a file and offset: that is what an operator needs, and it
                // is no secret from the people who run the server.
                ApiError::Internal(format!("storage error: {e}"))
            }
        }
    }
}

/// Native endpoints answer `{"error": "..."}`.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.to_string() });
        (self.status(), Json(body)).into_response()
    }
}
