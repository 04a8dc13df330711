//! Errors of the PromQL engine, one kind per Prometheus HTTP API `errorType`: `bad_data`
//! (the query does not parse or has wrong argument values), `execution` (the query is
//! valid but its evaluation fails, e.g. many-to-many matching) and `internal` (storage).

/// Why a PromQL query failed; see [`PromqlError::error_type`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PromqlError {
    /// A parse error (with its position) or an invalid argument.
    #[error("{0}")]
    BadData(String),
    /// The evaluation failed (duplicate series, many-to-many matching, too many samples).
    #[error("{0}")]
    Execution(String),
    /// Reading the series failed.
    #[error("{0}")]
    Internal(String),
}

impl PromqlError {
    /// The Prometheus API `errorType` of this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            PromqlError::BadData(_) => "bad_data",
            PromqlError::Execution(_) => "execution",
            PromqlError::Internal(_) => "internal",
        }
    }

    /// The message without the kind.
    pub fn message(&self) -> &str {
        match self {
            PromqlError::BadData(m) | PromqlError::Execution(m) | PromqlError::Internal(m) => m,
        }
    }
}

impl From<sightline_storage::Error> for PromqlError {
    fn from(e: sightline_storage::Error) -> Self {
        PromqlError::Internal(format!("cannot read series: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_prometheus_error_types() {
        assert_eq!(PromqlError::BadData("x".into()).error_type(), "bad_data");
        assert_eq!(PromqlError::Execution("x".into()).error_type(), "execution");
        assert_eq!(PromqlError::Internal("x".into()).error_type(), "internal");
        assert_eq!(PromqlError::Execution("boom".into()).to_string(), "boom");
    }
}
