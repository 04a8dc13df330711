//! Sightline's embedded storage. Everything enters through an [`LogAppender`] and leaves
//! through a [`LogQuerier`]; nothing else in the workspace touches files under the data dir.
//!
//! Fed by: the server's ingest pipeline (decoded, validated batches of model records).
//! Feeds: the query crate (scans with pruning hints) and the server's self-metrics.
//!
//! Layout: `wal.rs` (write-ahead log), `event_store.rs` (tenant/day partitions, in-memory
//! buffers, parts, merges, retention), `part.rs` (the immutable columnar part file),
//! `encoding.rs` (typed column encodings), `bloom.rs` (per-block token filters).

pub mod api;
pub mod bloom;
mod dir_lock;
pub mod encoding;
pub mod error;
pub mod event_store;
pub mod manifest;
pub mod part;
pub mod span_store;
pub mod wal;

pub use api::{
    LabelMatcher, LogAppender, LogQuerier, LogStore, MatchKind, MatchOp, MetricStore, Prefilter,
    Projection, SampleAppender, ScanRequest, ScanStats, SeriesQuerier, StoreStats,
};
pub use error::{Error, Result};
pub use event_store::{EventStore, FlushFilter, FsyncPolicy, ReplayReport, StoreConfig};
pub use span_store::{SamplingConfig, SpanScan, SpanStore};
pub mod tsdb;
pub use tsdb::{Tsdb, TsdbConfig, TsdbReplayReport, TsdbStats};
