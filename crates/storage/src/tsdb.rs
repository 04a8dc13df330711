//! The TSDB: Sightline's metric sample store, implementing [`crate::MetricStore`].
//!
//! Fed by: the server's metric ingest (remote write, OTLP, imports, scrapes) through
//! [`SampleAppender`]s. Feeds: PromQL evaluation through [`SeriesQuerier`]s.
//!
//! Data path: a commit is framed into the metrics WAL (`<data>/metrics/wal/`, segments
//! with magic `SLMW`, payload `tsdb/batch.rs`) and fsynced per the policy, then applied to
//! the tenant's in-memory head (`tsdb/head.rs`: Gorilla chunks `tsdb/chunk.rs`, series
//! index and postings `tsdb/index.rs`, `tsdb/postings.rs`). Maintenance cuts head data
//! older than the newest block window into immutable block files per tenant and window
//! (`<data>/metrics/<tenant>/<id>.block`, `tsdb/block.rs`, chunks re-encoded as decimal
//! chunks `tsdb/decimal.rs` where smaller), writes a head checkpoint
//! (`tsdb/checkpoint.rs`) and deletes the WAL segments it covers, merges adjacent blocks
//! (`tsdb/compact.rs`) and applies retention. Queriers merge the head and the blocks; on
//! equal timestamps the newest write wins (head over blocks, newer block over older).
//! Formats: `docs/format/tsdb-block.md`, `docs/format/tsdb-wal.md`.
//!
//! Concurrency: commits hold `gate` shared from WAL write to head apply; a cut takes it
//! exclusively only to read the WAL position, so the checkpoint written afterwards covers
//! every batch up to it. A tenant's head is write-locked while its cut data is written to
//! blocks (queries and commits of that tenant wait; others proceed).

pub mod batch;
pub mod block;
pub mod bytes;
pub mod checkpoint;
pub mod chunk;
pub mod compact;
pub mod decimal;
pub mod head;
pub mod index;
pub mod postings;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{
    Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak,
};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sightline_model::{Labels, MetricMetadata, Sample, Tenant, TimeSeries};
use tracing::{info, warn};

use self::block::Block;
use self::compact::BlockMeta;
use self::head::{merge_newer_wins, Head};
use crate::api::{LabelMatcher, MetricStore, SampleAppender, SeriesQuerier};
use crate::dir_lock::lock_dir;
use crate::error::{Error, Result};
pub use crate::wal::FsyncPolicy;
use crate::wal::{sync_dir, ReplayReport, Wal};

/// Segment magic of the metrics WAL (the log WAL uses `SLWL`): opening one as the other
/// fails loudly instead of misreading payloads.
pub const WAL_MAGIC: [u8; 4] = *b"SLMW";
/// Default block duration: Prometheus' 2h, long enough for chunks of 120 samples at a
/// 15 s interval to fill (30 min) several times over, short enough to bound head memory.
pub const DEFAULT_BLOCK_DURATION_MS: i64 = 2 * 3600 * 1000;
/// Default retention: Prometheus' 15 days.
pub const DEFAULT_RETENTION_MS: i64 = 15 * 24 * 3600 * 1000;
/// Default WAL segment size, as for the log WAL.
pub const DEFAULT_WAL_SEGMENT_BYTES: u64 = 64 << 20;
/// Default period of the background maintenance (cut, compaction, retention): frequent
/// enough that a block window is persisted within a minute of becoming due, cheap because
/// a tick that finds nothing due only reads each head's time range.
pub const DEFAULT_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

/// How the TSDB is set up.
#[derive(Clone, Debug)]
pub struct TsdbConfig {
    /// Data directory; the TSDB uses `<dir>/metrics`.
    pub dir: PathBuf,
    /// When WAL appends are fsynced (default: always).
    pub fsync: FsyncPolicy,
    /// Width of a block's time window (default 2h; a non-positive value means the default).
    pub block_duration_ms: i64,
    /// Drop blocks whose newest sample is older than the newest data minus this; 0 keeps
    /// everything (default 15 days).
    pub retention_ms: i64,
    /// Drop the oldest blocks while blocks take more bytes than this; 0 = no limit.
    pub retention_max_bytes: u64,
    /// WAL segment size (default 64 MiB).
    pub wal_segment_bytes: u64,
    /// Period of the background maintenance thread; `None` runs none (call
    /// [`Tsdb::maintain`] yourself). Default 60 s.
    pub maintenance_interval: Option<Duration>,
}

impl TsdbConfig {
    /// A configuration with the defaults above for data directory `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            fsync: FsyncPolicy::Always,
            block_duration_ms: DEFAULT_BLOCK_DURATION_MS,
            retention_ms: DEFAULT_RETENTION_MS,
            retention_max_bytes: 0,
            wal_segment_bytes: DEFAULT_WAL_SEGMENT_BYTES,
            maintenance_interval: Some(DEFAULT_MAINTENANCE_INTERVAL),
        }
    }
}

/// What opening the TSDB found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TsdbReplayReport {
    /// Block files opened.
    pub blocks: u64,
    /// WAL sequence number the head checkpoint covers (0: none).
    pub checkpoint_seq: u64,
    /// Samples restored from the checkpoint.
    pub checkpoint_samples: u64,
    /// The WAL replay (batches above the checkpoint; `records` counts samples).
    pub wal: ReplayReport,
}

/// Counters for self-monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TsdbStats {
    pub tenants: u64,
    /// Series in the heads.
    pub series: u64,
    /// Samples appended to the heads since their last cut.
    pub samples: u64,
    pub head_chunks: u64,
    pub blocks: u64,
    pub block_bytes: u64,
    pub block_samples: u64,
    pub wal_bytes: u64,
    pub wal_segments: u64,
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One tenant: its head and its blocks (sorted by id, i.e. by age of the write).
#[derive(Debug)]
struct TenantDb {
    dir: PathBuf,
    head: RwLock<Head>,
    blocks: RwLock<Vec<Arc<Block>>>,
}

/// The metric store. Open with [`Tsdb::open`]; all methods take `&self`.
#[derive(Debug)]
pub struct Tsdb {
    cfg: TsdbConfig,
    metrics_dir: PathBuf,
    wal: Mutex<Wal>,
    gate: RwLock<()>,
    tenants: RwLock<BTreeMap<String, Arc<TenantDb>>>,
    /// One cut/compaction/retention pass at a time.
    maintenance: Mutex<()>,
    next_block_id: AtomicU64,
    closed: AtomicBool,
    background: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
    /// Exclusive lock on `metrics/LOCK` while the TSDB lives: two instances appending to
    /// one WAL would corrupt it.
    _lock: fs::File,
}

/// How much of the heads a cut persists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CutMode {
    /// Everything ([`Tsdb::flush`]).
    All,
    /// Whole block windows older than half a block behind the newest sample, once a head
    /// spans 1.5 block durations (Prometheus' rule: the head keeps the recent window open
    /// for late samples).
    Due,
}

impl Tsdb {
    /// Opens (creating if needed) the TSDB under `<cfg.dir>/metrics`: opens every block,
    /// restores the head checkpoint, replays the WAL above it, and starts the background
    /// maintenance thread when configured.
    ///
    /// # Errors
    /// [`Error::Corruption`] naming the file and offset for a damaged block, checkpoint or
    /// WAL segment (a torn WAL tail is truncated instead); I/O errors.
    pub fn open(cfg: TsdbConfig) -> Result<(Arc<Tsdb>, TsdbReplayReport)> {
        let mut cfg = cfg;
        if cfg.block_duration_ms <= 0 {
            cfg.block_duration_ms = DEFAULT_BLOCK_DURATION_MS;
        }
        let metrics_dir = cfg.dir.join("metrics");
        fs::create_dir_all(&metrics_dir).map_err(|e| io_err(&metrics_dir, e))?;
        let lock_file = lock_dir(&metrics_dir, "tsdb")?;
        let mut report = TsdbReplayReport::default();
        let mut tenants: BTreeMap<String, (Head, Vec<Arc<Block>>)> = BTreeMap::new();
        let new_head = || Head::new(cfg.block_duration_ms);

        // Blocks. The `wal` directory is scanned too: it is also the directory of a tenant
        // named "wal" (the WAL ignores files that are not segments).
        let mut max_id = 0;
        for entry in fs::read_dir(&metrics_dir).map_err(|e| io_err(&metrics_dir, e))? {
            let entry = entry.map_err(|e| io_err(&metrics_dir, e))?;
            let dir = entry.path();
            if !dir.is_dir() {
                continue;
            }
            let Some(tenant) = entry.file_name().to_str().and_then(|n| Tenant::new(n).ok()) else {
                warn!(dir = ?dir, "ignoring unexpected directory in metrics directory");
                continue;
            };
            for f in fs::read_dir(&dir).map_err(|e| io_err(&dir, e))? {
                let f = f.map_err(|e| io_err(&dir, e))?;
                let name = f.file_name();
                let name = name.to_string_lossy();
                if name.ends_with(".block.tmp") {
                    // A block write interrupted by a crash: never published.
                    fs::remove_file(f.path()).map_err(|e| io_err(&f.path(), e))?;
                    continue;
                }
                if let Some(id) = block::parse_block_name(&name) {
                    let b = Block::open(&f.path(), id)?;
                    max_id = max_id.max(id);
                    report.blocks += 1;
                    tenants
                        .entry(tenant.as_str().to_string())
                        .or_insert_with(|| (new_head(), Vec::new()))
                        .1
                        .push(Arc::new(b));
                }
            }
        }

        // Head checkpoint, then the WAL above it.
        let (checkpoint_seq, batches) = checkpoint::read(&metrics_dir)?;
        report.checkpoint_seq = checkpoint_seq;
        for b in batches {
            report.checkpoint_samples += b.samples() as u64;
            let t = tenants
                .entry(b.tenant.as_str().to_string())
                .or_insert_with(|| (new_head(), Vec::new()));
            t.0.apply(&b.series, &b.metadata);
        }
        let wal_dir = metrics_dir.join("wal");
        let (wal, wal_report) = Wal::open_with(
            &wal_dir,
            WAL_MAGIC,
            cfg.fsync,
            cfg.wal_segment_bytes,
            checkpoint_seq,
            &batch::decode,
            &mut |_, b: batch::SampleBatch| {
                let t = tenants
                    .entry(b.tenant.as_str().to_string())
                    .or_insert_with(|| (new_head(), Vec::new()));
                t.0.apply(&b.series, &b.metadata);
                b.samples() as u64
            },
        )?;
        report.wal = wal_report;

        let tenants = tenants
            .into_iter()
            .map(|(name, (head, mut blocks))| {
                blocks.sort_by_key(|b| b.id());
                let tdb = TenantDb {
                    dir: metrics_dir.join(&name),
                    head: RwLock::new(head),
                    blocks: RwLock::new(blocks),
                };
                (name, Arc::new(tdb))
            })
            .collect();
        let interval = cfg.maintenance_interval;
        let db = Arc::new(Tsdb {
            cfg,
            metrics_dir,
            wal: Mutex::new(wal),
            gate: RwLock::new(()),
            tenants: RwLock::new(tenants),
            maintenance: Mutex::new(()),
            next_block_id: AtomicU64::new(max_id + 1),
            closed: AtomicBool::new(false),
            background: Mutex::new(None),
            _lock: lock_file,
        });
        if let Some(every) = interval {
            db.start_background(every);
        }
        info!(dir = ?db.metrics_dir, blocks = report.blocks, checkpoint_seq,
            wal_batches = report.wal.batches, "tsdb opened");
        Ok((db, report))
    }

    fn start_background(self: &Arc<Self>, every: Duration) {
        let (tx, rx) = mpsc::channel::<()>();
        let weak: Weak<Tsdb> = Arc::downgrade(self);
        // The WAL is synced at the fsync interval; maintenance runs at its own period.
        let tick = match self.cfg.fsync {
            FsyncPolicy::Interval(d) => d.min(every),
            _ => every,
        };
        let handle = std::thread::Builder::new()
            .name("tsdb-maintenance".into())
            .spawn(move || {
                let mut last = Instant::now();
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(tick) {
                    let Some(db) = weak.upgrade() else { return };
                    if let FsyncPolicy::Interval(_) = db.cfg.fsync {
                        if let Err(error) = lock(&db.wal).sync() {
                            warn!(%error, "metrics wal sync failed");
                        }
                    }
                    if last.elapsed() >= every {
                        last = Instant::now();
                        if let Err(error) = db.maintain() {
                            warn!(%error, "tsdb maintenance failed");
                        }
                    }
                }
            })
            .expect("BUG: cannot spawn the tsdb maintenance thread");
        *lock(&self.background) = Some((tx, handle));
    }

    fn tenant(&self, tenant: &str) -> Option<Arc<TenantDb>> {
        read(&self.tenants).get(tenant).cloned()
    }

    fn tenant_or_create(&self, tenant: &str) -> Arc<TenantDb> {
        if let Some(t) = self.tenant(tenant) {
            return t;
        }
        write(&self.tenants)
            .entry(tenant.to_string())
            .or_insert_with(|| {
                Arc::new(TenantDb {
                    dir: self.metrics_dir.join(tenant),
                    head: RwLock::new(Head::new(self.cfg.block_duration_ms)),
                    blocks: RwLock::new(Vec::new()),
                })
            })
            .clone()
    }

    fn tenants(&self) -> Vec<(String, Arc<TenantDb>)> {
        read(&self.tenants)
            .iter()
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect()
    }

    /// Writes one batch to the WAL (fsynced per policy) and applies it to the head.
    fn commit(
        &self,
        tenant: &Tenant,
        series: &[TimeSeries],
        metadata: &[MetricMetadata],
    ) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let _gate = read(&self.gate);
        let (file, path) = {
            let mut wal = lock(&self.wal);
            wal.write_payload(&|seq| batch::encode(seq, tenant.as_str(), series, metadata))?;
            (wal.current_file(), wal.current_path().to_path_buf())
        };
        if self.cfg.fsync == FsyncPolicy::Always {
            // Outside the WAL lock: concurrent committers' fsyncs overlap (group commit).
            if let Err(e) = file.sync_data() {
                lock(&self.wal).mark_broken();
                return Err(io_err(&path, e));
            }
        }
        write(&self.tenant_or_create(tenant.as_str()).head).apply(series, metadata);
        Ok(())
    }

    /// Persists every head sample into blocks, writes a checkpoint and trims the WAL.
    ///
    /// # Errors
    /// I/O errors; after one, the cut data is back in the head (nothing is lost).
    pub fn flush(&self) -> Result<()> {
        self.cut(CutMode::All)
    }

    /// One maintenance pass: persist due head windows, compact blocks, apply retention.
    ///
    /// # Errors
    /// I/O and corruption errors of the failed step (later steps are skipped).
    pub fn maintain(&self) -> Result<()> {
        self.cut(CutMode::Due)?;
        self.compact()?;
        self.apply_retention()
    }

    fn cut_point(&self, head: &Head, mode: CutMode) -> Option<Option<i64>> {
        let bd = self.cfg.block_duration_ms;
        match mode {
            CutMode::All => Some(None),
            CutMode::Due => {
                let (lo, hi) = head.time_range()?;
                if hi.saturating_sub(lo) < bd.saturating_mul(3) / 2 {
                    return None;
                }
                let before = hi.saturating_sub(bd / 2).div_euclid(bd).saturating_mul(bd);
                (lo < before).then_some(Some(before))
            }
        }
    }

    fn cut(&self, mode: CutMode) -> Result<()> {
        let _m = lock(&self.maintenance);
        let tenants = self.tenants();
        if mode == CutMode::Due
            && !tenants
                .iter()
                .any(|(_, t)| self.cut_point(&read(&t.head), mode).is_some())
        {
            return Ok(());
        }
        let seq = {
            // Every commit up to `seq` is in a head once no commit holds the gate.
            let _gate = write(&self.gate);
            let mut wal = lock(&self.wal);
            wal.rotate()?;
            wal.last_seq()
        };
        for (name, tdb) in &tenants {
            let mut head = write(&tdb.head);
            let Some(before) = self.cut_point(&head, mode) else {
                continue;
            };
            let data = head.cut(before);
            if data.is_empty() {
                continue;
            }
            let n_series = data.len();
            // Moved, not copied: a series within one window (the usual case) keeps its
            // sample vector, so the cut holds the samples once.
            let mut windows = split_by_window(data, self.cfg.block_duration_ms);
            let mut written = Vec::new();
            // Each window's samples are dropped once its block is written.
            while let Some((_, series)) = windows.pop_first() {
                let id = self.next_block_id.fetch_add(1, Ordering::Relaxed);
                match block::write(&tdb.dir, id, &series) {
                    Ok(b) => written.push(Arc::new(b)),
                    Err(e) => {
                        // Put back what is not in a block yet (the head's precedence makes
                        // any copy in a written block harmless).
                        head.apply(&series, &[]);
                        for series in windows.values() {
                            head.apply(series, &[]);
                        }
                        let mut blocks = write(&tdb.blocks);
                        blocks.extend(written);
                        return Err(e);
                    }
                }
            }
            info!(tenant = %name, blocks = written.len(), series = n_series, "tsdb head cut into blocks");
            write(&tdb.blocks).extend(written);
        }
        let states: Vec<checkpoint::TenantState> = tenants
            .iter()
            .map(|(name, tdb)| {
                let (series, meta) = read(&tdb.head).snapshot();
                (name.clone(), series, meta)
            })
            .collect();
        checkpoint::write(&self.metrics_dir, seq, &states)?;
        lock(&self.wal).remove_checkpointed(seq)?;
        Ok(())
    }

    /// Merges blocks per [`compact::plan`] until nothing is left to merge.
    fn compact(&self) -> Result<()> {
        let _m = lock(&self.maintenance);
        let ranges = compact::ranges(self.cfg.block_duration_ms);
        for (name, tdb) in self.tenants() {
            loop {
                let blocks = read(&tdb.blocks).clone();
                let head_max = read(&tdb.head).time_range().map_or(i64::MIN, |r| r.1);
                let newest = blocks.iter().map(|b| b.max_t()).fold(head_max, i64::max);
                let metas: Vec<BlockMeta> = blocks.iter().map(meta).collect();
                let Some(ids) = compact::plan(&metas, &ranges, newest) else {
                    break;
                };
                let sources: Vec<&Arc<Block>> =
                    blocks.iter().filter(|b| ids.contains(&b.id())).collect();
                let mut merged: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
                for b in &sources {
                    for ts in b.select(&[], i64::MIN, i64::MAX)? {
                        let e = merged.entry(ts.labels).or_default();
                        *e = merge_newer_wins(e, &ts.samples);
                    }
                }
                let series: Vec<TimeSeries> = merged
                    .into_iter()
                    .map(|(labels, samples)| TimeSeries { labels, samples })
                    .collect();
                let id = self.next_block_id.fetch_add(1, Ordering::Relaxed);
                let new = Arc::new(block::write(&tdb.dir, id, &series)?);
                info!(tenant = %name, sources = ids.len(), block = id, "tsdb blocks compacted");
                {
                    let mut list = write(&tdb.blocks);
                    list.retain(|b| !ids.contains(&b.id()));
                    list.push(new);
                    list.sort_by_key(|b| b.id());
                }
                remove_block_files(&tdb.dir, sources.iter().map(|b| b.path()))?;
            }
        }
        Ok(())
    }

    fn apply_retention(&self) -> Result<()> {
        if self.cfg.retention_ms <= 0 && self.cfg.retention_max_bytes == 0 {
            return Ok(());
        }
        let _m = lock(&self.maintenance);
        let tenants = self.tenants();
        let mut all = Vec::new();
        let mut newest = i64::MIN;
        for (_, tdb) in &tenants {
            if let Some((_, hi)) = read(&tdb.head).time_range() {
                newest = newest.max(hi);
            }
            for b in read(&tdb.blocks).iter() {
                newest = newest.max(b.max_t());
                all.push(meta(b));
            }
        }
        let doomed = compact::retention(
            &all,
            newest,
            self.cfg.retention_ms,
            self.cfg.retention_max_bytes,
        );
        if doomed.is_empty() {
            return Ok(());
        }
        for (name, tdb) in &tenants {
            let removed: Vec<Arc<Block>> = {
                let mut list = write(&tdb.blocks);
                let (gone, kept) = list.drain(..).partition(|b| doomed.contains(&b.id()));
                *list = kept;
                gone
            };
            if !removed.is_empty() {
                info!(tenant = %name, blocks = removed.len(), "tsdb retention dropped blocks");
                remove_block_files(&tdb.dir, removed.iter().map(|b| b.path()))?;
            }
        }
        Ok(())
    }

    /// Counters over every tenant.
    pub fn stats(&self) -> TsdbStats {
        let mut s = TsdbStats::default();
        for (_, tdb) in self.tenants() {
            s.tenants += 1;
            let h = read(&tdb.head).stats();
            s.series += h.series;
            s.samples += h.samples;
            s.head_chunks += h.chunks;
            for b in read(&tdb.blocks).iter() {
                s.blocks += 1;
                s.block_bytes += b.bytes();
                s.block_samples += b.samples();
            }
        }
        let wal = lock(&self.wal);
        s.wal_bytes = wal.bytes();
        s.wal_segments = wal.segments();
        s
    }

    /// Stops the background thread and syncs the WAL; later commits fail with
    /// [`Error::Closed`]. Head data stays in the WAL and checkpoint (no flush: reopening
    /// replays it).
    ///
    /// # Errors
    /// I/O errors syncing the WAL.
    pub fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        if let Some((tx, handle)) = lock(&self.background).take() {
            drop(tx);
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
        let _gate = write(&self.gate);
        lock(&self.wal).sync()
    }
}

fn meta(b: &Arc<Block>) -> BlockMeta {
    BlockMeta {
        id: b.id(),
        min_t: b.min_t(),
        max_t: b.max_t(),
        bytes: b.bytes(),
    }
}

fn remove_block_files<'a>(dir: &Path, paths: impl Iterator<Item = &'a Path>) -> Result<()> {
    for p in paths {
        match fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(p, e)),
        }
    }
    sync_dir(dir)
}

/// Splits cut series (sorted by labels) by block window; each window's list stays sorted.
fn split_by_window(data: Vec<TimeSeries>, block_ms: i64) -> BTreeMap<i64, Vec<TimeSeries>> {
    let mut out: BTreeMap<i64, Vec<TimeSeries>> = BTreeMap::new();
    let window = |s: &Sample| s.timestamp_ms.div_euclid(block_ms);
    for ts in data {
        let (Some(first), Some(last)) = (ts.samples.first(), ts.samples.last()) else {
            continue;
        };
        let (w, last_w) = (window(first), window(last));
        if w == last_w {
            out.entry(w).or_default().push(ts);
            continue;
        }
        let mut rest = &ts.samples[..];
        while let Some(first) = rest.first() {
            let w = window(first);
            let n = rest.partition_point(|s| window(s) == w);
            out.entry(w).or_default().push(TimeSeries {
                labels: ts.labels.clone(),
                samples: rest[..n].to_vec(),
            });
            rest = &rest[n..];
        }
    }
    out
}

impl Drop for Tsdb {
    fn drop(&mut self) {
        // Dropping the sender ends the background thread; it holds only a Weak.
        lock(&self.background).take();
    }
}

/// Stages one tenant's samples until commit.
struct TsdbAppender<'a> {
    db: &'a Tsdb,
    tenant: Tenant,
    series: Vec<TimeSeries>,
    metadata: Vec<MetricMetadata>,
}

impl SampleAppender for TsdbAppender<'_> {
    fn append(&mut self, series: TimeSeries) {
        self.series.push(series);
    }

    fn append_metadata(&mut self, metadata: MetricMetadata) {
        self.metadata.push(metadata);
    }

    fn commit(self: Box<Self>) -> Result<usize> {
        let n = self.series.iter().map(|s| s.samples.len()).sum();
        if self.series.is_empty() && self.metadata.is_empty() {
            return Ok(0);
        }
        self.db.commit(&self.tenant, &self.series, &self.metadata)?;
        Ok(n)
    }

    fn rollback(self: Box<Self>) {}
}

/// Reads one tenant: merges the head and the blocks.
struct TsdbQuerier {
    tenant: Option<Arc<TenantDb>>,
}

impl TsdbQuerier {
    fn series_labels(&self, matchers: &[LabelMatcher], start: i64, end: i64) -> BTreeSet<Labels> {
        let Some(tdb) = &self.tenant else {
            return BTreeSet::new();
        };
        let (mut out, blocks): (BTreeSet<Labels>, _) = {
            let head = read(&tdb.head);
            (
                head.series_labels(matchers, start, end)
                    .into_iter()
                    .collect(),
                read(&tdb.blocks).clone(),
            )
        };
        for b in blocks {
            out.extend(b.series_labels(matchers, start, end));
        }
        out
    }
}

impl SeriesQuerier for TsdbQuerier {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<TimeSeries>> {
        let Some(tdb) = &self.tenant else {
            return Ok(Vec::new());
        };
        // Head first, blocks listed under the same head lock: a concurrent cut moves data
        // from one to the other atomically for us.
        let (head_part, blocks) = {
            let head = read(&tdb.head);
            (
                head.select(matchers, start_ms, end_ms),
                read(&tdb.blocks).clone(),
            )
        };
        let mut sources = Vec::with_capacity(blocks.len() + 1);
        for b in &blocks {
            let part = b.select(matchers, start_ms, end_ms)?;
            if !part.is_empty() {
                sources.push(part);
            }
        }
        if sources.is_empty() {
            return Ok(head_part);
        }
        sources.push(head_part);
        // Oldest source first; newer ones win on equal timestamps.
        let mut merged: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
        for part in sources {
            for ts in part {
                match merged.get_mut(&ts.labels) {
                    Some(e) => *e = merge_newer_wins(e, &ts.samples),
                    None => {
                        merged.insert(ts.labels, ts.samples);
                    }
                }
            }
        }
        Ok(merged
            .into_iter()
            .map(|(labels, samples)| TimeSeries { labels, samples })
            .collect())
    }

    fn label_names(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>> {
        let names: BTreeSet<String> = self
            .series_labels(matchers, start_ms, end_ms)
            .iter()
            .flat_map(|l| l.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>())
            .collect();
        Ok(names.into_iter().collect())
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>> {
        let values: BTreeSet<String> = self
            .series_labels(matchers, start_ms, end_ms)
            .iter()
            .filter_map(|l| l.get(name).map(str::to_string))
            .collect();
        Ok(values.into_iter().collect())
    }

    fn metadata(&self, metric: Option<&str>) -> Result<Vec<MetricMetadata>> {
        Ok(self
            .tenant
            .as_ref()
            .map(|t| read(&t.head).metadata(metric))
            .unwrap_or_default())
    }
}

impl MetricStore for Tsdb {
    fn appender(&self, tenant: &Tenant) -> Box<dyn SampleAppender + '_> {
        Box::new(TsdbAppender {
            db: self,
            tenant: tenant.clone(),
            series: Vec::new(),
            metadata: Vec::new(),
        })
    }

    fn querier(&self, tenant: &Tenant) -> Box<dyn SeriesQuerier + '_> {
        Box::new(TsdbQuerier {
            tenant: self.tenant(tenant.as_str()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::MatchKind;
    use proptest::prelude::*;
    use sightline_model::sample::STALE_NAN_BITS;
    use sightline_model::MetricType;

    const H: i64 = 3_600_000;

    fn cfg(dir: &Path) -> TsdbConfig {
        TsdbConfig {
            maintenance_interval: None,
            retention_ms: 0,
            ..TsdbConfig::new(dir)
        }
    }

    fn tenant() -> Tenant {
        Tenant::new("t1").unwrap()
    }

    fn l(name: &str, job: &str) -> Labels {
        Labels::from_pairs([("__name__", name), ("job", job)]).unwrap()
    }

    fn ts(labels: Labels, pts: &[(i64, f64)]) -> TimeSeries {
        TimeSeries {
            labels,
            samples: pts
                .iter()
                .map(|&(t, v)| Sample {
                    timestamp_ms: t,
                    value: v,
                })
                .collect(),
        }
    }

    fn commit(db: &Tsdb, series: Vec<TimeSeries>) -> usize {
        let mut app = db.appender(&tenant());
        for s in series {
            app.append(s);
        }
        app.commit().unwrap()
    }

    type Model = BTreeMap<Labels, BTreeMap<i64, u64>>;

    fn dump(db: &Tsdb, start: i64, end: i64) -> Vec<(Labels, Vec<(i64, u64)>)> {
        db.querier(&tenant())
            .select(&[], start, end)
            .unwrap()
            .into_iter()
            .map(|s| {
                (
                    s.labels,
                    s.samples
                        .iter()
                        .map(|x| (x.timestamp_ms, x.value.to_bits()))
                        .collect(),
                )
            })
            .collect()
    }

    fn expect(model: &Model, start: i64, end: i64) -> Vec<(Labels, Vec<(i64, u64)>)> {
        model
            .iter()
            .filter_map(|(l, m)| {
                let v: Vec<(i64, u64)> = m.range(start..=end).map(|(t, b)| (*t, *b)).collect();
                (!v.is_empty()).then(|| (l.clone(), v))
            })
            .collect()
    }

    #[test]
    fn commit_is_visible_and_survives_close_and_crash() {
        let dir = tempfile::tempdir().unwrap();
        let (db, report) = Tsdb::open(cfg(dir.path())).unwrap();
        assert_eq!(report, TsdbReplayReport::default());
        assert_eq!(
            commit(
                &db,
                vec![ts(
                    l("up", "a"),
                    &[(1000, 1.0), (2000, f64::from_bits(STALE_NAN_BITS))]
                )]
            ),
            2
        );
        let mut app = db.appender(&tenant());
        app.append_metadata(MetricMetadata {
            metric_family_name: "up".into(),
            metric_type: MetricType::Gauge,
            help: "target up".into(),
            unit: String::new(),
        });
        app.commit().unwrap();
        let mut app = db.appender(&tenant());
        app.append(ts(l("up", "b"), &[(5, 5.0)]));
        app.rollback();
        let want = vec![(
            l("up", "a"),
            vec![(1000, 1f64.to_bits()), (2000, STALE_NAN_BITS)],
        )];
        assert_eq!(dump(&db, 0, 5000), want);
        db.close().unwrap();
        assert!(matches!(db.appender(&tenant()).commit(), Ok(0)));
        let mut app = db.appender(&tenant());
        app.append(ts(l("up", "c"), &[(1, 1.0)]));
        assert!(matches!(app.commit(), Err(Error::Closed)));
        assert!(
            matches!(Tsdb::open(cfg(dir.path())), Err(Error::Io { .. })),
            "a second instance on the same directory is refused"
        );
        drop(db);

        let (db, report) = Tsdb::open(cfg(dir.path())).unwrap();
        assert_eq!((report.wal.batches, report.wal.records), (2, 2));
        assert_eq!(dump(&db, 0, 5000), want);
        assert_eq!(
            db.querier(&tenant()).metadata(Some("up")).unwrap()[0].help,
            "target up"
        );
        // Crash: no close, no flush.
        commit(&db, vec![ts(l("up", "a"), &[(1500, 1.5)])]);
        drop(db);
        let (db, _) = Tsdb::open(cfg(dir.path())).unwrap();
        assert_eq!(dump(&db, 0, 5000)[0].1.len(), 3);
        // Other tenants see nothing.
        let other = Tenant::new("t2").unwrap();
        assert!(db.querier(&other).select(&[], 0, 5000).unwrap().is_empty());
    }

    #[test]
    fn flush_writes_blocks_checkpoints_and_trims_wal() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Tsdb::open(cfg(dir.path())).unwrap();
        // Three 2h windows; one out-of-order write and one overwrite.
        commit(
            &db,
            vec![ts(l("m", "a"), &[(0, 1.0), (3 * H, 2.0), (5 * H, 3.0)])],
        );
        commit(&db, vec![ts(l("m", "a"), &[(H, 4.0), (3 * H, 20.0)])]);
        let mut app = db.appender(&tenant());
        app.append_metadata(MetricMetadata {
            metric_family_name: "m".into(),
            ..Default::default()
        });
        app.commit().unwrap();
        db.flush().unwrap();
        let s = db.stats();
        assert_eq!((s.blocks, s.block_samples, s.samples), (3, 4, 0));
        let want = vec![(
            l("m", "a"),
            vec![
                (0, 1f64.to_bits()),
                (H, 4f64.to_bits()),
                (3 * H, 20f64.to_bits()),
                (5 * H, 3f64.to_bits()),
            ],
        )];
        assert_eq!(dump(&db, i64::MIN, i64::MAX), want);
        // Data after the flush lands in the head and wins over blocks.
        commit(&db, vec![ts(l("m", "a"), &[(H, 40.0)])]);
        assert_eq!(dump(&db, H, H)[0].1, vec![(H, 40f64.to_bits())]);
        assert_eq!(
            db.stats().wal_segments,
            1,
            "checkpointed segments are deleted"
        );
        drop(db);
        let (db, report) = Tsdb::open(cfg(dir.path())).unwrap();
        assert_eq!(report.blocks, 3);
        assert!(report.checkpoint_seq > 0);
        assert_eq!(report.wal.batches, 1);
        assert_eq!(dump(&db, H, H)[0].1, vec![(H, 40f64.to_bits())]);
        assert_eq!(db.querier(&tenant()).metadata(None).unwrap().len(), 1);
        let files: Vec<_> = fs::read_dir(dir.path().join("metrics/t1"))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 3);
    }

    #[test]
    fn maintenance_cuts_due_windows_compacts_and_retains() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Tsdb::open(TsdbConfig {
            block_duration_ms: H,
            ..cfg(dir.path())
        })
        .unwrap();
        // 7 hours of one sample per 10 min.
        let pts: Vec<(i64, f64)> = (0..42).map(|i| (i * 600_000, i as f64)).collect();
        commit(&db, vec![ts(l("m", "a"), &pts), ts(l("n", "b"), &pts)]);
        db.maintain().unwrap();
        // Head keeps the newest window (>= 6h); hours 0..6 became blocks, and the two
        // complete 3h windows were compacted into one block each.
        let s = db.stats();
        assert_eq!(s.blocks, 2, "{s:?}");
        assert_eq!(s.block_samples, 2 * 36);
        let want: Model = [l("m", "a"), l("n", "b")]
            .into_iter()
            .map(|lb| (lb, pts.iter().map(|(t, v)| (*t, v.to_bits())).collect()))
            .collect();
        assert_eq!(
            dump(&db, i64::MIN, i64::MAX),
            expect(&want, i64::MIN, i64::MAX)
        );
        let m = LabelMatcher::new("job", MatchKind::NotEqual, "a").unwrap();
        let q = db.querier(&tenant());
        assert_eq!(q.select(std::slice::from_ref(&m), 0, 0).unwrap().len(), 1);
        assert_eq!(
            q.label_names(&[], 0, 7 * H).unwrap(),
            vec!["__name__", "job"]
        );
        assert_eq!(q.label_values("job", &[m], 0, 7 * H).unwrap(), vec!["b"]);
        assert_eq!(
            q.label_values("job", &[], 6 * H, 7 * H).unwrap(),
            vec!["a", "b"]
        );
        drop(q);
        drop(db);

        // Reopen with a 3h age limit: the oldest 3h block goes.
        let (db, _) = Tsdb::open(TsdbConfig {
            block_duration_ms: H,
            retention_ms: 3 * H,
            ..cfg(dir.path())
        })
        .unwrap();
        db.maintain().unwrap();
        assert_eq!(db.stats().blocks, 1);
        assert_eq!(dump(&db, i64::MIN, i64::MAX)[0].1[0].0, 3 * H);
        drop(db);
        // And a size limit of one byte drops every block.
        let (db, _) = Tsdb::open(TsdbConfig {
            block_duration_ms: H,
            retention_max_bytes: 1,
            ..cfg(dir.path())
        })
        .unwrap();
        db.maintain().unwrap();
        assert_eq!(db.stats().blocks, 0);
        assert_eq!(dump(&db, i64::MIN, i64::MAX)[0].1[0].0, 6 * H);
    }

    #[test]
    fn corrupted_block_fails_open_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Tsdb::open(cfg(dir.path())).unwrap();
        commit(&db, vec![ts(l("m", "a"), &[(0, 1.0), (1, 2.0)])]);
        db.flush().unwrap();
        drop(db);
        let path = block::block_path(&dir.path().join("metrics/t1"), 1);
        let mut data = fs::read(&path).unwrap();
        let n = data.len();
        data[n - 30] ^= 0xff; // inside the footer
        fs::write(&path, &data).unwrap();
        match Tsdb::open(cfg(dir.path())) {
            Err(Error::Corruption {
                path: p,
                offset,
                reason,
            }) => {
                assert_eq!(p, path);
                assert!(offset > 0, "{reason}");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn corrupted_chunk_is_reported_at_query_time() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Tsdb::open(cfg(dir.path())).unwrap();
        commit(&db, vec![ts(l("m", "a"), &[(0, 1.0), (1, 2.0)])]);
        db.flush().unwrap();
        drop(db);
        let path = block::block_path(&dir.path().join("metrics/t1"), 1);
        let mut data = fs::read(&path).unwrap();
        data[12] ^= 0x01; // first chunk's bytes
        fs::write(&path, &data).unwrap();
        let (db, _) = Tsdb::open(cfg(dir.path())).unwrap();
        let res = db.querier(&tenant()).select(&[], 0, 10);
        match res {
            Err(Error::Corruption {
                path: p,
                offset,
                reason,
            }) => {
                assert_eq!((p, offset), (path, 8));
                assert!(reason.contains("crc"), "{reason}");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn torn_wal_tail_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Tsdb::open(cfg(dir.path())).unwrap();
        commit(&db, vec![ts(l("m", "a"), &[(0, 1.0)])]);
        commit(&db, vec![ts(l("m", "a"), &[(1, 2.0)])]);
        drop(db);
        let wal_dir = dir.path().join("metrics/wal");
        let seg = fs::read_dir(&wal_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .max()
            .unwrap();
        let len = fs::metadata(&seg).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (db, report) = Tsdb::open(cfg(dir.path())).unwrap();
        assert!(report.wal.truncated.is_some());
        assert_eq!(dump(&db, 0, 10)[0].1, vec![(0, 1f64.to_bits())]);
    }

    #[test]
    fn concurrent_commits_and_flushes_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Tsdb::open(TsdbConfig {
            block_duration_ms: 1000,
            ..cfg(dir.path())
        })
        .unwrap();
        std::thread::scope(|scope| {
            for w in 0..3 {
                let db = &db;
                scope.spawn(move || {
                    for i in 0..40i64 {
                        let job = format!("w{w}");
                        commit(db, vec![ts(l("m", &job), &[(i * 100, i as f64)])]);
                    }
                });
            }
            for _ in 0..5 {
                db.flush().unwrap();
                db.maintain().unwrap();
            }
        });
        let check = |db: &Tsdb| {
            let got = dump(db, i64::MIN, i64::MAX);
            assert_eq!(got.len(), 3);
            for (_, pts) in got {
                let want: Vec<(i64, u64)> =
                    (0..40).map(|i| (i * 100, (i as f64).to_bits())).collect();
                assert_eq!(pts, want);
            }
        };
        check(&db);
        db.flush().unwrap();
        check(&db);
        drop(db);
        let (db, _) = Tsdb::open(cfg(dir.path())).unwrap();
        check(&db);
    }

    #[test]
    fn background_thread_runs_maintenance() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Tsdb::open(TsdbConfig {
            block_duration_ms: 1000,
            fsync: FsyncPolicy::Interval(Duration::from_millis(5)),
            maintenance_interval: Some(Duration::from_millis(20)),
            ..cfg(dir.path())
        })
        .unwrap();
        let pts: Vec<(i64, f64)> = (0..50).map(|i| (i * 100, 1.0)).collect();
        commit(&db, vec![ts(l("m", "a"), &pts)]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while db.stats().blocks == 0 {
            assert!(
                Instant::now() < deadline,
                "no block was cut in the background"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        db.close().unwrap();
        assert_eq!(dump(&db, i64::MIN, i64::MAX)[0].1.len(), 50);
    }

    #[test]
    fn many_series_append_sanity() {
        // Not a benchmark: checks 100k series x 10 samples go through commit, flush and
        // query in one piece (timings are printed, never asserted).
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Tsdb::open(TsdbConfig {
            fsync: FsyncPolicy::Never,
            ..cfg(dir.path())
        })
        .unwrap();
        let started = Instant::now();
        for chunk in 0..10 {
            let mut app = db.appender(&tenant());
            for i in 0..10_000 {
                let labels = Labels::from_pairs([
                    ("__name__", "node_cpu_seconds_total"),
                    ("cpu", &*format!("{}", chunk * 10_000 + i)),
                ])
                .unwrap();
                let samples = (0..10)
                    .map(|k| Sample {
                        timestamp_ms: k * 15_000,
                        value: k as f64,
                    })
                    .collect();
                app.append(TimeSeries { labels, samples });
            }
            assert_eq!(app.commit().unwrap(), 100_000);
        }
        let appended = started.elapsed();
        assert_eq!(db.stats().series, 100_000);
        db.flush().unwrap();
        let m = LabelMatcher::new("cpu", MatchKind::Equal, "12345").unwrap();
        assert_eq!(
            db.querier(&tenant()).select(&[m], 0, 200_000).unwrap()[0]
                .samples
                .len(),
            10
        );
        eprintln!(
            "100k series x 10 samples: append {appended:?}, total {:?}",
            started.elapsed()
        );
    }

    #[derive(Clone, Debug)]
    enum Op {
        Commit(Vec<(usize, i64, u8)>),
        Flush,
        Maintain,
        Reopen,
        Crash,
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => proptest::collection::vec((0..4usize, 0..(8 * H), any::<u8>()), 1..12).prop_map(Op::Commit),
            1 => Just(Op::Flush),
            1 => Just(Op::Maintain),
            1 => Just(Op::Reopen),
            1 => Just(Op::Crash),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn prop_tsdb_matches_naive_model(ops in proptest::collection::vec(arb_op(), 1..14),
                                         start in 0..(8 * H), len in 0..(8 * H)) {
            let dir = tempfile::tempdir().unwrap();
            let config = || TsdbConfig { block_duration_ms: H, fsync: FsyncPolicy::Never, ..cfg(dir.path()) };
            let (mut db, _) = Tsdb::open(config()).unwrap();
            let names = ["a", "b", "c", "d"];
            let mut model = Model::new();
            // Coarse timestamps (multiples of 10 min) so duplicates are frequent.
            for op in ops {
                match op {
                    Op::Commit(samples) => {
                        let mut app = db.appender(&tenant());
                        for (s, t, v) in samples {
                            let t = t / 600_000 * 600_000;
                            let v = if v == 0 { f64::from_bits(STALE_NAN_BITS) } else { f64::from(v) };
                            app.append(ts(l("m", names[s]), &[(t, v)]));
                            model.entry(l("m", names[s])).or_default().insert(t, v.to_bits());
                        }
                        app.commit().unwrap();
                    }
                    Op::Flush => db.flush().unwrap(),
                    Op::Maintain => db.maintain().unwrap(),
                    Op::Reopen => {
                        db.close().unwrap();
                        drop(db);
                        db = Tsdb::open(config()).unwrap().0;
                    }
                    Op::Crash => {
                        drop(db);
                        db = Tsdb::open(config()).unwrap().0;
                    }
                }
                prop_assert_eq!(dump(&db, start, start + len), expect(&model, start, start + len));
            }
            prop_assert_eq!(dump(&db, i64::MIN, i64::MAX), expect(&model, i64::MIN, i64::MAX));
        }
    }
}
