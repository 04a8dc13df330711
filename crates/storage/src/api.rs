//! The storage contracts. Like Prometheus' `storage/interface.go`: a batched appender that
//! commits or rolls back, and a querier bound to one tenant and one time range.

use std::ops::ControlFlow;

use std::sync::Arc;

use sightline_model::{Labels, LogRecord, MetricMetadata, Tenant, TimeSeries, TraceId};

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
    /// When set, only records whose trace id is one of these are wanted (a record without
    /// a trace id is not). Parts look the ids up in their trace-id index and skip blocks
    /// without them; in a block, only rows with one of them are built.
    pub trace_ids: Option<Vec<TraceId>>,
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

// ---- Metrics (TSDB) contracts -------------------------------------------------------------

/// How a [`LabelMatcher`] compares a label's value (an absent label has the value `""`).
#[derive(Clone, Debug)]
pub enum MatchOp {
    Equal,
    NotEqual,
    /// Fully anchored, as in Prometheus: `a.*` matches the whole value.
    Regex(regex::Regex),
    NotRegex(regex::Regex),
}

/// One label matcher of a PromQL selector (`name="v"`, `!=`, `=~`, `!~`).
#[derive(Clone, Debug)]
pub struct LabelMatcher {
    pub name: String,
    /// The value or the regex source as written (without the anchors).
    pub value: String,
    pub op: MatchOp,
}

/// Which comparison a matcher makes; see [`LabelMatcher::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchKind {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl LabelMatcher {
    /// A matcher; regexes are anchored at both ends (`^(?:value)$`) like Prometheus'.
    ///
    /// # Errors
    /// A regex that does not compile.
    pub fn new(name: &str, kind: MatchKind, value: &str) -> Result<Self, regex::Error> {
        let anchored = || regex::Regex::new(&format!("^(?:{value})$"));
        let op = match kind {
            MatchKind::Equal => MatchOp::Equal,
            MatchKind::NotEqual => MatchOp::NotEqual,
            MatchKind::Regex => MatchOp::Regex(anchored()?),
            MatchKind::NotRegex => MatchOp::NotRegex(anchored()?),
        };
        Ok(LabelMatcher {
            name: name.to_string(),
            value: value.to_string(),
            op,
        })
    }

    /// Whether a label value (`""` when the label is absent) satisfies the matcher.
    pub fn matches(&self, v: &str) -> bool {
        match &self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Regex(re) => re.is_match(v),
            MatchOp::NotRegex(re) => !re.is_match(v),
        }
    }

    /// Whether the series with `labels` satisfies the matcher.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }
}

/// Adds samples of one tenant; nothing is visible or durable until [`SampleAppender::commit`].
pub trait SampleAppender: Send {
    /// Stages samples of one series (any order, any age: out-of-order and historic samples
    /// are accepted). A sample with the same series and timestamp as a stored one replaces it.
    fn append(&mut self, series: TimeSeries);

    /// Stages what a sender said about a metric family.
    fn append_metadata(&mut self, metadata: MetricMetadata);

    /// Makes every staged sample durable (per the fsync policy) and visible, all or
    /// nothing. Returns the number of samples committed.
    ///
    /// # Errors
    /// I/O errors writing the WAL; on error nothing of the batch is visible or replayed.
    fn commit(self: Box<Self>) -> Result<usize>;

    /// Drops every staged sample.
    fn rollback(self: Box<Self>);
}

/// Reads one tenant's series. Times are milliseconds, ranges inclusive at both ends.
pub trait SeriesQuerier: Send {
    /// Every series matching all `matchers` that has a sample in `[start_ms, end_ms]`, with
    /// those samples in time order; series sorted by labels.
    ///
    /// # Errors
    /// I/O errors and [`crate::Error::Corruption`] naming file and offset.
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<TimeSeries>>;

    /// Label names of the series matching `matchers` (all series when empty) with samples in
    /// the range, sorted.
    fn label_names(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>>;

    /// Values of label `name` over the matching series with samples in the range, sorted.
    fn label_values(
        &self,
        name: &str,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>>;

    /// Metadata of metric families (all, or those named `metric`).
    fn metadata(&self, metric: Option<&str>) -> Result<Vec<MetricMetadata>>;
}

/// A store of metric samples: the TSDB implements it.
pub trait MetricStore: Send + Sync {
    fn appender(&self, tenant: &Tenant) -> Box<dyn SampleAppender + '_>;
    fn querier(&self, tenant: &Tenant) -> Box<dyn SeriesQuerier + '_>;
}
