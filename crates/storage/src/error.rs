//! Errors of the storage crate.

use std::path::PathBuf;

/// What went wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Damaged on-disk data: names the file and the byte offset where decoding failed.
    #[error("data corruption in {path} at offset {offset}: {reason}")]
    Corruption {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// The store is shutting down or was closed.
    #[error("storage is closed")]
    Closed,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
