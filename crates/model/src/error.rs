//! Errors of the model crate: values that cannot be represented.

/// What went wrong building a model value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A tenant id that is empty, too long or has characters outside `[A-Za-z0-9_.-]`.
    #[error("invalid tenant id {0:?}: use 1 to 64 characters of A-Z a-z 0-9 _ . -")]
    InvalidTenant(String),
    /// A trace or span id that is not hex of the right length.
    #[error("invalid {kind}: {reason}")]
    InvalidId { kind: &'static str, reason: String },
    /// A timestamp that could not be parsed.
    #[error("invalid timestamp {0:?}")]
    InvalidTimestamp(String),
    /// Series labels that break an invariant (duplicate or empty name).
    #[error("invalid labels: {0}")]
    InvalidLabels(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
