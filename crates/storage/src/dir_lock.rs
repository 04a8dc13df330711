//! The exclusive lock a store takes on its directory (`LOCK`, an advisory file lock), so a
//! second process or store instance opening the same data fails at once instead of both
//! writing the same WAL and files.

use std::fs;
use std::path::Path;

use crate::error::{Error, Result};

/// Locks `<dir>/LOCK`; the lock lasts as long as the returned file is open. `holder` names
/// the store in the error (`"store"`, `"tsdb"`).
///
/// # Errors
/// [`Error::Io`] naming the lock file when it is held by someone else or cannot be opened.
pub(crate) fn lock_dir(dir: &Path, holder: &str) -> Result<fs::File> {
    let path = dir.join("LOCK");
    let io = |source: std::io::Error| Error::Io {
        path: path.clone(),
        source,
    };
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(io(std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            format!("directory is in use by another {holder}"),
        ))),
        Err(fs::TryLockError::Error(e)) => Err(io(e)),
    }
}
