//! Errors of the query crate: a syntax error pointing into the query text, or a storage
//! error from the scan that fed the evaluation.

use std::fmt;

/// A query that does not parse, with the 0-based character offset where parsing stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 0-based offset in characters (not bytes) into the query text.
    pub position: usize,
    /// What was expected or what is wrong, lowercase, no trailing period.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(position: usize, message: impl Into<String>) -> Self {
        Self {
            position,
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "syntax error at position {}: {}",
            self.position, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// What went wrong running a query.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("cannot read storage: {0}")]
    Storage(#[from] sightline_storage::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
