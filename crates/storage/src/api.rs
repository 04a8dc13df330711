//! The storage contracts. Like Prometheus' `storage/interface.go`: a batched appender that
//! commits or rolls back, and a querier bound to one tenant and one time range.

use std::ops::ControlFlow;

use std::sync::Arc;

use sightline_model::{LogRecord, Tenant};

use crate::error::Result;

/// Adds records of one tenant; nothing is visible or durable until [`LogAppender::commit`].
pub trait LogAppender: Send {
    /// Stages one record.
    fn append(&mut self, record: LogRecord);

    /// Makes every staged record durable (per the configured fsync policy) and visible to
    /// queries, all or nothing. Returns the number of records committed.
    ///
    /// # Errors
    /// I/O errors writing the WAL; on error nothing of the batch is visible, and nothing of
    /// it is replayed after a restart.
    fn commit(self: Box<Self>) -> Result<usize>;

    /// Drops every staged record.
    fn rollback(self: Box<Self>);
}

/// What a scan should return and which hints may prune blocks.
///
/// Hints are conservative: the storage may return records that do not satisfy them (the
/// query layer filters exactly), but must never leave out a record that does.
#[derive(Clone, Debug, Default)]
pub struct ScanRequest {
    /// Tokens (see `sightline_model::text`) every wanted record contains somewhere in its
    /// body, service, string attribute values or trace/span id hex. Used against per-block
    /// bloom filters.
    pub required_tokens: Vec<String>,
    /// When set, only records whose service is one of these are wanted.
    pub services: Option<Vec<String>>,
    /// When set, the parts of each record the caller reads; the storage may leave the rest
    /// out of the records it visits (empty body, missing attributes). `None`: everything.
    pub projection: Option<Projection>,
    /// When set, only records passing this predicate are wanted. It may look at the
    /// timestamps, level, service and trace/span ids only: a block that passes the token
    /// filter is first decoded without its body and attributes and checked with it, so a
    /// false positive of the filter (or a block where few rows match, as for
    /// `level:error`) costs a cheap partial decode, and only passing rows are visited.
    pub prefilter: Option<Prefilter>,
}

/// A predicate over the always-decoded fields of a record; see [`ScanRequest::prefilter`].
#[derive(Clone)]
pub struct Prefilter(pub Arc<dyn Fn(&LogRecord) -> bool + Send + Sync>);

impl Prefilter {
    pub fn new(f: impl Fn(&LogRecord) -> bool + Send + Sync + 'static) -> Self {
        Prefilter(Arc::new(f))
    }

    pub fn test(&self, r: &LogRecord) -> bool {
        (self.0)(r)
    }
}

impl std::fmt::Debug for Prefilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prefilter(..)")
    }
}

/// Which parts of a record a scan must fill in. Timestamps, level, service and trace/span
/// ids are always filled (they are cheap); the body and attributes only when asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Projection {
    /// Whether the body (message) is read.
    pub body: bool,
    /// Attribute keys read, looked up in both record and resource attributes.
    pub attributes: Vec<String>,
}

impl Projection {
    /// Whether the attribute `key` is read.
    pub fn wants(&self, key: &str) -> bool {
        self.attributes.iter().any(|k| k == key)
    }
}

/// Work done by a scan, reported in query responses and self-metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Rows decoded and handed to the visitor.
    pub scanned_rows: u64,
    /// Bytes read from parts (compressed) and from in-memory buffers (approximate).
    pub scanned_bytes: u64,
    /// Blocks considered, and of those skipped by time, service or bloom pruning.
    pub blocks_total: u64,
    pub blocks_skipped: u64,
}

/// Reads one tenant's records within `[start, end)` (ns), bound at creation.
pub trait LogQuerier: Send {
    /// Calls `visit` with every record in range that may satisfy `req`, in no particular
    /// order; stops early when `visit` breaks.
    ///
    /// # Errors
    /// I/O errors and [`crate::Error::Corruption`] (naming file and offset) for a damaged part.
    fn scan(
        &self,
        req: &ScanRequest,
        visit: &mut dyn FnMut(&LogRecord) -> ControlFlow<()>,
    ) -> Result<ScanStats>;
}

/// Numbers about the store for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub wal_bytes: u64,
    pub wal_segments: u64,
    pub parts: u64,
    pub part_bytes: u64,
    pub buffered_rows: u64,
    pub merges_total: u64,
    pub flushes_total: u64,
    pub partitions_dropped_total: u64,
}

/// A store of log records: the event store implements it (and later a ClickHouse backend).
pub trait LogStore: Send + Sync {
    /// A new appender for `tenant`.
    fn appender(&self, tenant: &Tenant) -> Box<dyn LogAppender + '_>;

    /// A querier for `tenant` over `[start, end)` nanoseconds.
    fn querier(&self, tenant: &Tenant, start: i64, end: i64) -> Box<dyn LogQuerier + '_>;

    /// Current numbers for self-metrics.
    fn stats(&self) -> StoreStats;
}
