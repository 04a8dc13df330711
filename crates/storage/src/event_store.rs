//! The event store for logs: per (tenant, day) partitions made of an in-memory buffer and
//! immutable part files, behind the [`LogStore`] traits.
//!
//! Fed by the ingest pipeline through [`LogAppender`]s: a commit is appended to the WAL
//! (and fsynced per policy) and then put into the buffer, both under the commit lock, so a
//! batch is visible only once durable. A background thread flushes buffers into parts
//! (`part.rs`), checkpoints the manifest (`manifest.rs`) so the covered WAL segments can be
//! deleted, merges small parts and enforces retention. Feeds the query crate through
//! [`LogQuerier`]s, which scan a snapshot (buffered chunks + `Arc`ed parts) without locks.
//!
//! # Lock order
//! `maintenance` (flush/merge/retention, the only manifest writers) → `sync` (group-commit
//! leader) → `wal` (commit lock) → `state` (buffers, parts, manifest). Scans hold none.
//!
//! # Group commit (fsync policy `always`)
//! A commit writes its frame under the `wal` lock and queues the batch as pending; then,
//! under the `sync` lock, either finds that a leader already fsynced and published it, or
//! becomes the leader: takes every pending batch, fsyncs the segment outside the `wal`
//! lock (writers keep appending), and inserts them in sequence order. So a batch is
//! visible only once durable, and visible batches are always a prefix of the sequence.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sightline_model::time::{day_name, day_of, now_ns, NANOS_PER_DAY};
use sightline_model::{LogRecord, Tenant};
use tracing::{debug, info, warn};

use crate::api::{LogAppender, LogQuerier, LogStore, ScanRequest, ScanStats, StoreStats};
use crate::dir_lock::lock_dir;
use crate::error::{Error, Result};
use crate::manifest::{parse_day, part_path, Manifest, PartEntry, MANIFEST_FILE};
use crate::part::{
    write_part_refs, Part, WriteOptions, FLUSH_ZSTD_LEVEL, MAX_BLOCK_ROWS, MERGE_ZSTD_LEVEL,
};
use crate::wal::{sync_dir, Wal};
pub use crate::wal::{FsyncPolicy, ReplayReport};

/// Buffers are flushed at least this often: bounds WAL replay time after a crash and the
/// number of WAL segments kept, while keeping parts per day few (merges fold the rest).
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(5);
/// A flush is forced when buffered records exceed this (approximate) size: bounds memory
/// and keeps a part's sort in memory cheap.
pub const DEFAULT_MAX_BUFFER_BYTES: u64 = 64 << 20;
/// Segment size: large enough that rotation (a file create + fsyncs) is rare, small enough
/// that a checkpoint frees disk soon and replay reads one segment at a time.
pub const DEFAULT_WAL_SEGMENT_BYTES: u64 = 64 << 20;
/// Parts per partition before a background merge: each part costs a file open and a scan
/// per query; 8 keeps queries cheap without rewriting data on every flush.
pub const DEFAULT_MAX_PARTS_PER_PARTITION: usize = 8;

/// Configuration of an [`EventStore`].
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Data directory; the store uses `<dir>/wal` and `<dir>/<table>`.
    pub dir: PathBuf,
    /// Name of the directory holding the parts (default `logs`; the span store uses
    /// `spans`).
    pub table: &'static str,
    /// When set, applied to each partition's records just before they are written to a
    /// part by a flush: it may drop records (trace sampling decides there, when a trace's
    /// spans are together). Queries see dropped records until that flush.
    pub flush_filter: Option<FlushFilter>,
    /// When WAL appends are fsynced (default: always).
    pub fsync: FsyncPolicy,
    /// Background flush period (default 5 s).
    pub flush_interval: Duration,
    /// Buffered bytes that force a flush (default 64 MiB).
    pub max_buffer_bytes: u64,
    /// WAL segment size (default 64 MiB).
    pub wal_segment_bytes: u64,
    /// Drop (tenant, day) partitions whose day ended longer ago than this (default: keep).
    pub retention_period: Option<Duration>,
    /// Drop the oldest day partitions while parts take more than this (default: no limit).
    pub retention_max_bytes: Option<u64>,
    /// Merge a partition's parts once it has more than this many (default 8).
    pub max_parts_per_partition: usize,
    /// Rows per part block at most (default [`MAX_BLOCK_ROWS`], which is also the cap).
    pub block_rows: usize,
}

impl StoreConfig {
    /// A configuration with the defaults above for data directory `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            table: "logs",
            flush_filter: None,
            fsync: FsyncPolicy::Always,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            max_buffer_bytes: DEFAULT_MAX_BUFFER_BYTES,
            wal_segment_bytes: DEFAULT_WAL_SEGMENT_BYTES,
            retention_period: None,
            retention_max_bytes: None,
            max_parts_per_partition: DEFAULT_MAX_PARTS_PER_PARTITION,
            block_rows: MAX_BLOCK_ROWS,
        }
    }
}

/// Drops records of one tenant before a flush writes them; see [`StoreConfig::flush_filter`].
#[derive(Clone)]
pub struct FlushFilter(pub Arc<FlushFilterFn>);

/// The function inside a [`FlushFilter`].
pub type FlushFilterFn = dyn Fn(&Tenant, &mut Vec<LogRecord>) + Send + Sync;

impl FlushFilter {
    pub fn new(f: impl Fn(&Tenant, &mut Vec<LogRecord>) + Send + Sync + 'static) -> Self {
        FlushFilter(Arc::new(f))
    }
}

impl std::fmt::Debug for FlushFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlushFilter(..)")
    }
}

/// A (tenant, day number) partition.
type Key = (Tenant, i64);
/// One committed batch's records of one partition; shared with queriers by `Arc`.
type Chunk = Arc<Vec<LogRecord>>;

#[derive(Debug, Default)]
struct Buffer {
    chunks: Vec<Chunk>,
    rows: u64,
    bytes: u64,
}

/// An open part; its file is removed when the last holder lets go after it left the
/// manifest (merge, retention, failed install), so running scans never lose their file.
#[derive(Debug)]
struct PartHandle {
    part: Part,
    entry: PartEntry,
    remove_on_drop: AtomicBool,
}

impl Drop for PartHandle {
    fn drop(&mut self) {
        if self.remove_on_drop.load(Ordering::Acquire) {
            match fs::remove_file(self.part.path()) {
                Ok(()) => debug!(part = ?self.part.path(), "part file removed"),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                // Left for the orphan sweep at the next open.
                Err(error) => warn!(%error, part = ?self.part.path(), "cannot remove part file"),
            }
        }
    }
}

#[derive(Debug, Default)]
struct State {
    buffers: BTreeMap<Key, Buffer>,
    /// Buffers swapped out by a running flush: still visible until their parts are installed.
    flushing: BTreeMap<Key, Buffer>,
    parts: BTreeMap<Key, Vec<Arc<PartHandle>>>,
    manifest: Manifest,
    buffered_rows: u64,
    buffered_bytes: u64,
    /// Every batch with a sequence number up to this one is in `buffers`, `flushing` or
    /// a part (the prefix property a flush's checkpoint relies on).
    visible_seq: u64,
}

/// A batch written to the WAL, waiting for the group-commit fsync to become visible.
#[derive(Debug)]
struct Pending {
    tenant: Tenant,
    by_day: BTreeMap<i64, Vec<LogRecord>>,
}

#[derive(Debug)]
struct WalState {
    wal: Wal,
    closed: bool,
    /// Batches written but not yet fsynced (policy `Always` only), in sequence order.
    pending: Vec<Pending>,
}

/// Group commit: one committer at a time fsyncs the WAL on behalf of every batch written
/// so far, then makes them all visible.
#[derive(Debug, Default)]
struct SyncState {
    synced_seq: u64,
    failed: bool,
}

#[derive(Debug, Default)]
struct SignalState {
    stop: bool,
    flush_requested: bool,
}

/// Wakes the background thread: stop, or flush now.
#[derive(Debug, Default)]
struct Signal {
    state: Mutex<SignalState>,
    cv: Condvar,
}

impl Signal {
    fn set(&self, f: impl FnOnce(&mut SignalState)) {
        f(&mut lock(&self.state));
        self.cv.notify_all();
    }

    /// Waits up to `timeout`; returns (stop, flush requested) and clears the request.
    fn wait(&self, timeout: Duration) -> (bool, bool) {
        let guard = lock(&self.state);
        let (mut guard, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |s| !s.stop && !s.flush_requested)
            .expect("BUG: signal lock poisoned");
        let requested = std::mem::take(&mut guard.flush_requested);
        (guard.stop, requested)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
        .expect("BUG: event store lock poisoned by an earlier panic")
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The embedded log store. See the module docs.
#[derive(Debug)]
pub struct EventStore {
    cfg: StoreConfig,
    logs_dir: PathBuf,
    maintenance: Mutex<()>,
    sync: Mutex<SyncState>,
    wal: Mutex<WalState>,
    state: Mutex<State>,
    merges_total: AtomicU64,
    flushes_total: AtomicU64,
    partitions_dropped_total: AtomicU64,
    signal: Arc<Signal>,
    worker: Mutex<Option<JoinHandle<()>>>,
    /// Holds an exclusive lock on `logs/LOCK` while the store lives: two stores writing
    /// one directory would delete each other's files.
    _dir_lock: fs::File,
}

/// Splits a batch by day of timestamp.
fn group_by_day(records: Vec<LogRecord>) -> BTreeMap<i64, Vec<LogRecord>> {
    let mut by_day: BTreeMap<i64, Vec<LogRecord>> = BTreeMap::new();
    for r in records {
        by_day.entry(day_of(r.timestamp)).or_default().push(r);
    }
    by_day
}

impl State {
    fn insert(&mut self, tenant: &Tenant, by_day: BTreeMap<i64, Vec<LogRecord>>) {
        for (day, records) in by_day {
            let bytes: u64 = records.iter().map(|r| r.approx_size() as u64).sum();
            let rows = records.len() as u64;
            let buf = self.buffers.entry((tenant.clone(), day)).or_default();
            buf.chunks.push(Arc::new(records));
            buf.rows += rows;
            buf.bytes += bytes;
            self.buffered_rows += rows;
            self.buffered_bytes += bytes;
        }
    }

    /// Puts the swapped-out buffers of a failed flush back.
    fn restore_flushing(&mut self) {
        for (key, old) in std::mem::take(&mut self.flushing) {
            self.buffered_rows += old.rows;
            self.buffered_bytes += old.bytes;
            let buf = self.buffers.entry(key).or_default();
            let newer = std::mem::replace(&mut buf.chunks, old.chunks);
            buf.chunks.extend(newer);
            buf.rows += old.rows;
            buf.bytes += old.bytes;
        }
    }
}

impl EventStore {
    /// Opens the store in `cfg.dir`: loads the manifest, opens its parts, deletes orphan
    /// part files, replays the WAL past the checkpoint into buffers, and starts the
    /// background thread.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a damaged manifest, a listed part that is missing or
    /// damaged, or a WAL frame that is bad other than as a torn tail; I/O errors.
    pub fn open(cfg: StoreConfig) -> Result<(Arc<EventStore>, ReplayReport)> {
        let logs_dir = cfg.dir.join(cfg.table);
        fs::create_dir_all(&logs_dir).map_err(|e| io_err(&logs_dir, e))?;
        let dir_lock = lock_dir(&logs_dir, "store")?;
        let manifest = Manifest::load(&logs_dir)?;

        let mut parts: BTreeMap<Key, Vec<Arc<PartHandle>>> = BTreeMap::new();
        let mut listed = HashSet::new();
        for entry in &manifest.parts {
            let path = entry.path(&logs_dir);
            let key = partition_key(entry, &logs_dir)?;
            match fs::metadata(&path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Error::Corruption {
                        path,
                        offset: 0,
                        reason: format!("part {} listed in the manifest is missing", entry.id),
                    })
                }
                Err(e) => return Err(io_err(&path, e)),
            }
            let part = Part::open(&path)?;
            listed.insert(path);
            parts.entry(key).or_default().push(Arc::new(PartHandle {
                part,
                entry: entry.clone(),
                remove_on_drop: AtomicBool::new(false),
            }));
        }
        remove_orphans(&logs_dir, &listed)?;

        let mut state = State {
            parts,
            ..State::default()
        };
        let (wal, report) = Wal::open(
            &cfg.dir.join("wal"),
            cfg.fsync,
            cfg.wal_segment_bytes,
            manifest.wal_checkpoint_seq,
            &mut |batch| state.insert(&batch.tenant, group_by_day(batch.records)),
        )?;
        state.manifest = manifest;
        state.visible_seq = wal.last_seq();
        let synced_seq = wal.last_seq();
        info!(dir = ?cfg.dir, parts = state.manifest.parts.len(),
            replayed_batches = report.batches, replayed_records = report.records,
            truncated = report.truncated.is_some(), "event store opened");

        let store = Arc::new(EventStore {
            cfg,
            logs_dir,
            maintenance: Mutex::new(()),
            sync: Mutex::new(SyncState {
                synced_seq,
                failed: false,
            }),
            wal: Mutex::new(WalState {
                wal,
                closed: false,
                pending: Vec::new(),
            }),
            state: Mutex::new(state),
            merges_total: AtomicU64::new(0),
            flushes_total: AtomicU64::new(0),
            partitions_dropped_total: AtomicU64::new(0),
            signal: Arc::new(Signal::default()),
            worker: Mutex::new(None),
            _dir_lock: dir_lock,
        });
        let handle = spawn_worker(&store).map_err(|e| io_err(&store.cfg.dir, e))?;
        *lock(&store.worker) = Some(handle);
        Ok((store, report))
    }

    /// Backpressure: while the unflushed buffers hold more than twice `max_buffer_bytes`
    /// (writers outpace flushes), a committer waits for a flush to make room, so memory
    /// stays bounded and senders slow down to what the store can write. After
    /// [`MAX_BACKPRESSURE_WAIT`] it goes ahead anyway (the WAL keeps the batch durable), so
    /// a flush that keeps failing does not hang every writer.
    fn wait_for_room(&self) -> Result<()> {
        let limit = self.cfg.max_buffer_bytes.saturating_mul(2);
        let deadline = Instant::now() + MAX_BACKPRESSURE_WAIT;
        loop {
            if lock(&self.state).buffered_bytes < limit {
                return Ok(());
            }
            if lock(&self.wal).closed {
                return Err(Error::Closed);
            }
            if Instant::now() > deadline {
                warn!(
                    limit,
                    "buffers stay over their limit: flushes are failing or too slow"
                );
                return Ok(());
            }
            self.signal.set(|s| s.flush_requested = true);
            std::thread::sleep(BACKPRESSURE_POLL);
        }
    }

    fn commit_batch(&self, tenant: &Tenant, records: Vec<LogRecord>) -> Result<usize> {
        let n = records.len();
        self.wait_for_room()?;
        let mut w = lock(&self.wal);
        if w.closed {
            return Err(Error::Closed);
        }
        if n == 0 {
            return Ok(0);
        }
        let over = if self.cfg.fsync == FsyncPolicy::Always {
            let seq = w.wal.write(tenant, &records)?;
            w.pending.push(Pending {
                tenant: tenant.clone(),
                by_day: group_by_day(records),
            });
            drop(w);
            self.group_sync(seq)?
        } else {
            let seq = w.wal.append(tenant, &records)?;
            let mut st = lock(&self.state);
            st.insert(tenant, group_by_day(records));
            st.visible_seq = seq;
            st.buffered_bytes > self.cfg.max_buffer_bytes
        };
        if over {
            self.signal.set(|s| s.flush_requested = true);
        }
        Ok(n)
    }

    /// Waits until batch `seq` is fsynced and visible, fsyncing as the group leader if no
    /// one else did. Returns whether the buffers are over their size limit.
    fn group_sync(&self, seq: u64) -> Result<bool> {
        let mut s = lock(&self.sync);
        if s.failed {
            return Err(io_err(
                &self.cfg.dir.join("wal"),
                std::io::Error::other("an earlier wal fsync failed; reopen the store"),
            ));
        }
        if s.synced_seq >= seq {
            return Ok(false);
        }
        let (file, path, target, batches) = {
            let mut w = lock(&self.wal);
            let batches = std::mem::take(&mut w.pending);
            (
                w.wal.current_file(),
                w.wal.current_path().to_path_buf(),
                w.wal.last_seq(),
                batches,
            )
        };
        if let Err(e) = file.sync_data() {
            // What reached the disk is unknown: no batch of this group becomes visible,
            // and the WAL takes no more appends.
            s.failed = true;
            lock(&self.wal).wal.mark_broken();
            return Err(io_err(&path, e));
        }
        let group = batches.len();
        let mut st = lock(&self.state);
        for p in batches {
            st.insert(&p.tenant, p.by_day);
        }
        st.visible_seq = target;
        s.synced_seq = target;
        if group > 1 {
            debug!(group, seq = target, "group commit");
        }
        Ok(st.buffered_bytes > self.cfg.max_buffer_bytes)
    }

    /// Writes every buffer (all tenants and days) into new parts, checkpoints the manifest
    /// and deletes the WAL segments it covers. Commits may run concurrently; queries see
    /// the flushed rows throughout, exactly once.
    ///
    /// # Errors
    /// I/O errors writing parts or the manifest; the buffers are kept (and the WAL) then.
    pub fn flush(&self) -> Result<()> {
        let _m = lock(&self.maintenance);
        self.flush_locked()
    }

    fn flush_locked(&self) -> Result<()> {
        let (checkpoint, old_checkpoint, todo) = {
            let mut w = lock(&self.wal);
            // Every batch so far goes to closed segments, deletable after the checkpoint.
            w.wal.rotate()?;
            let mut st = lock(&self.state);
            assert!(
                st.flushing.is_empty(),
                "BUG: flush found a flush in progress"
            );
            st.flushing = std::mem::take(&mut st.buffers);
            st.buffered_rows = 0;
            st.buffered_bytes = 0;
            let todo: Vec<(Key, Vec<Chunk>)> = st
                .flushing
                .iter()
                .map(|(k, b)| (k.clone(), b.chunks.clone()))
                .collect();
            (st.visible_seq, st.manifest.wal_checkpoint_seq, todo)
        };
        if todo.is_empty() && checkpoint == old_checkpoint {
            self.drop_wal_segments(checkpoint);
            return Ok(());
        }
        let started = Instant::now();
        match self.write_flush(checkpoint, &todo) {
            Ok((manifest, handles)) => {
                let rows: u64 = handles.iter().map(|(_, h)| h.entry.rows).sum();
                let mut st = lock(&self.state);
                for (key, h) in handles {
                    st.parts.entry(key).or_default().push(h);
                }
                st.manifest = manifest;
                let flushed = std::mem::take(&mut st.flushing);
                drop(st);
                // Freeing the buffered records takes a while: not under the state lock,
                // which every commit and query takes.
                drop(flushed);
                self.flushes_total.fetch_add(1, Ordering::Relaxed);
                info!(
                    rows,
                    partitions = todo.len(),
                    checkpoint,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "flushed buffers to parts"
                );
                self.drop_wal_segments(checkpoint);
                Ok(())
            }
            Err(error) => {
                lock(&self.state).restore_flushing();
                warn!(%error, "flush failed; buffers kept");
                Err(error)
            }
        }
    }

    /// Writes the parts of a flush and the manifest naming them; nothing is installed.
    #[allow(clippy::type_complexity)]
    fn write_flush(
        &self,
        checkpoint: u64,
        todo: &[(Key, Vec<Chunk>)],
    ) -> Result<(Manifest, Vec<(Key, Arc<PartHandle>)>)> {
        let mut manifest = lock(&self.state).manifest.clone();
        let ids: Vec<u64> = todo
            .iter()
            .map(|_| {
                manifest.next_part_id += 1;
                manifest.next_part_id - 1
            })
            .collect();
        // Partitions are independent: write them on up to FLUSH_THREADS threads. The
        // chunks stay visible to queries meanwhile; the part is written from references
        // to their records (no copy) unless a flush filter needs records of its own.
        let written = parallel_map(todo.len(), FLUSH_THREADS, |i| {
            let (key, chunks) = &todo[i];
            if let Some(filter) = &self.cfg.flush_filter {
                let mut records: Vec<LogRecord> =
                    Vec::with_capacity(chunks.iter().map(|c| c.len()).sum());
                for c in chunks {
                    records.extend(c.iter().cloned());
                }
                (filter.0)(&key.0, &mut records);
                if records.is_empty() {
                    return Ok(None);
                }
                let mut refs: Vec<&LogRecord> = records.iter().collect();
                return self
                    .write_new_part(key, ids[i], &mut refs, FLUSH_ZSTD_LEVEL)
                    .map(Some);
            }
            let mut refs: Vec<&LogRecord> =
                Vec::with_capacity(chunks.iter().map(|c| c.len()).sum());
            for c in chunks {
                refs.extend(c.iter());
            }
            self.write_new_part(key, ids[i], &mut refs, FLUSH_ZSTD_LEVEL)
                .map(Some)
        });
        let mut handles = Vec::with_capacity(todo.len());
        let mut first_error = None;
        for ((key, _), h) in todo.iter().zip(written) {
            match h {
                Ok(Some(h)) => {
                    manifest.parts.push(h.entry.clone());
                    handles.push((key.clone(), h));
                }
                Ok(None) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let result = match first_error {
            Some(e) => Err(e),
            None => {
                manifest.wal_checkpoint_seq = checkpoint;
                manifest.store(&self.logs_dir)
            }
        };
        if let Err(e) = result {
            for (_, h) in &handles {
                h.remove_on_drop.store(true, Ordering::Release);
            }
            return Err(e);
        }
        Ok((manifest, handles))
    }

    fn drop_wal_segments(&self, checkpoint: u64) {
        let mut w = lock(&self.wal);
        if let Err(error) = w.wal.remove_checkpointed(checkpoint) {
            // Harmless: the segments' batches are skipped on replay; retried next flush.
            warn!(%error, checkpoint, "cannot remove checkpointed wal segments");
        }
    }

    /// Writes `<id>.part.tmp` (zstd at `level`) and renames it to `<id>.part` in the
    /// partition's directory.
    fn write_new_part(
        &self,
        key: &Key,
        id: u64,
        records: &mut [&LogRecord],
        level: i32,
    ) -> Result<Arc<PartHandle>> {
        let day = day_name(key.1);
        let path = part_path(&self.logs_dir, key.0.as_str(), &day, id);
        let dir = path
            .parent()
            .expect("BUG: part path has a parent")
            .to_path_buf();
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
            sync_dir(dir.parent().expect("BUG: day dir has a parent"))?;
            sync_dir(&self.logs_dir)?;
        }
        let tmp = dir.join(format!("{id}.part.tmp"));
        let opts = WriteOptions {
            level,
            block_rows: self.cfg.block_rows,
        };
        let meta = match write_part_refs(&tmp, records, &opts) {
            Ok(m) => m,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
        sync_dir(&dir)?;
        let entry = PartEntry {
            tenant: key.0.as_str().to_string(),
            day,
            id,
            rows: meta.rows,
            bytes: meta.bytes,
            min_ts: meta.min_ts,
            max_ts: meta.max_ts,
        };
        let handle = PartHandle {
            part: Part::open(&path)?,
            entry,
            remove_on_drop: AtomicBool::new(false),
        };
        Ok(Arc::new(handle))
    }

    /// Merges every partition with more than one part into one part.
    ///
    /// # Errors
    /// I/O errors and corruption reading or writing parts or the manifest.
    pub fn merge_now(&self) -> Result<()> {
        self.merge_over(1)
    }

    fn merge_over(&self, max_parts: usize) -> Result<()> {
        let _m = lock(&self.maintenance);
        let candidates: Vec<(Key, Vec<Arc<PartHandle>>)> = lock(&self.state)
            .parts
            .iter()
            .filter(|(_, v)| v.len() > max_parts)
            .filter_map(|(k, v)| {
                let picked = if max_parts <= 1 {
                    v.clone()
                } else {
                    pick_merge(v)
                };
                (picked.len() >= 2).then(|| (k.clone(), picked))
            })
            .collect();
        for (key, olds) in candidates {
            self.merge_partition(&key, &olds)?;
        }
        Ok(())
    }

    fn merge_partition(&self, key: &Key, olds: &[Arc<PartHandle>]) -> Result<()> {
        let started = Instant::now();
        let mut records = Vec::new();
        for h in olds {
            records.extend(h.part.read_all()?);
        }
        let mut manifest = lock(&self.state).manifest.clone();
        let id = manifest.next_part_id;
        manifest.next_part_id += 1;
        let mut refs: Vec<&LogRecord> = records.iter().collect();
        let new = self.write_new_part(key, id, &mut refs, MERGE_ZSTD_LEVEL)?;
        let old_ids: HashSet<u64> = olds.iter().map(|h| h.entry.id).collect();
        manifest.parts.retain(|p| !old_ids.contains(&p.id));
        manifest.parts.push(new.entry.clone());
        if let Err(e) = manifest.store(&self.logs_dir) {
            new.remove_on_drop.store(true, Ordering::Release);
            return Err(e);
        }
        {
            let mut st = lock(&self.state);
            let list = st.parts.entry(key.clone()).or_default();
            list.retain(|h| !old_ids.contains(&h.entry.id));
            list.push(new.clone());
            st.manifest = manifest;
        }
        for h in olds {
            h.remove_on_drop.store(true, Ordering::Release);
        }
        self.merges_total.fetch_add(1, Ordering::Relaxed);
        info!(tenant = %key.0, day = %new.entry.day, parts = olds.len(), rows = new.entry.rows,
            elapsed_ms = started.elapsed().as_millis() as u64, "merged parts");
        Ok(())
    }

    /// Drops whole (tenant, day) partitions: those whose day ended more than
    /// `retention_period` before `now_ns`, then the oldest days while parts take more than
    /// `retention_max_bytes`. Only flushed parts are considered.
    ///
    /// # Errors
    /// I/O errors writing the manifest.
    pub fn enforce_retention(&self, now_ns: i64) -> Result<()> {
        let (period, max_bytes) = (self.cfg.retention_period, self.cfg.retention_max_bytes);
        if period.is_none() && max_bytes.is_none() {
            return Ok(());
        }
        let _m = lock(&self.maintenance);
        let (mut manifest, drop_keys) = {
            let st = lock(&self.state);
            // Oldest first; ties by tenant for a stable order.
            let mut keys: Vec<(i64, Tenant, u64)> = st
                .parts
                .iter()
                .map(|(k, v)| (k.1, k.0.clone(), v.iter().map(|h| h.entry.bytes).sum()))
                .collect();
            keys.sort();
            let mut total: u64 = keys.iter().map(|k| k.2).sum();
            let mut drop_keys = Vec::new();
            let cutoff = period
                .map(|p| now_ns.saturating_sub(i64::try_from(p.as_nanos()).unwrap_or(i64::MAX)));
            for (day, tenant, bytes) in keys {
                let day_end = (day + 1).saturating_mul(NANOS_PER_DAY);
                let expired = cutoff.is_some_and(|c| day_end <= c);
                let oversize = max_bytes.is_some_and(|m| total > m);
                if expired || oversize {
                    total -= bytes;
                    drop_keys.push((tenant, day));
                }
            }
            (st.manifest.clone(), drop_keys)
        };
        if drop_keys.is_empty() {
            return Ok(());
        }
        let dropped: HashSet<(String, String)> = drop_keys
            .iter()
            .map(|(t, d)| (t.as_str().to_string(), day_name(*d)))
            .collect();
        manifest
            .parts
            .retain(|p| !dropped.contains(&(p.tenant.clone(), p.day.clone())));
        manifest.store(&self.logs_dir)?;
        let mut st = lock(&self.state);
        for key in &drop_keys {
            for h in st.parts.remove(key).unwrap_or_default() {
                h.remove_on_drop.store(true, Ordering::Release);
            }
            info!(tenant = %key.0, day = %day_name(key.1), "retention dropped partition");
        }
        st.manifest = manifest;
        drop(st);
        self.partitions_dropped_total
            .fetch_add(drop_keys.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Stops the background thread and flushes; later commits fail with [`Error::Closed`].
    ///
    /// # Errors
    /// Errors of the final flush (the WAL still holds the data then).
    pub fn close(&self) -> Result<()> {
        {
            let mut w = lock(&self.wal);
            if w.closed {
                return Ok(());
            }
            w.closed = true;
        }
        self.signal.set(|s| s.stop = true);
        if let Some(h) = lock(&self.worker).take() {
            if h.thread().id() != std::thread::current().id() && h.join().is_err() {
                warn!("event store background thread panicked");
            }
        }
        self.flush()?;
        lock(&self.wal).wal.sync()?;
        info!(dir = ?self.cfg.dir, "event store closed");
        Ok(())
    }

    fn background_cycle(&self) {
        if let Err(error) = self.flush() {
            warn!(%error, "background flush failed");
        }
        if let Err(error) = self.merge_over(self.cfg.max_parts_per_partition.max(1)) {
            warn!(%error, "background merge failed");
        }
        if let Err(error) = self.enforce_retention(now_ns()) {
            warn!(%error, "background retention failed");
        }
    }

    fn sync_wal(&self) {
        if let Err(error) = lock(&self.wal).wal.sync() {
            warn!(%error, "background wal fsync failed");
        }
    }
}

impl Drop for EventStore {
    fn drop(&mut self) {
        // The thread holds only a `Weak`; it exits at its next wake-up.
        self.signal.set(|s| s.stop = true);
    }
}

/// Threads a flush writes partitions on. A flush is mostly CPU (sort, encode, compress,
/// filters), and usually has one or two partitions (today, and yesterday around midnight);
/// two threads use the second core without taking every core from the ingest handlers.
const FLUSH_THREADS: usize = 2;

/// `f(0..n)` on up to `threads` scoped threads (the calling thread is one of them), results
/// in index order.
fn parallel_map<T: Send>(n: usize, threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = threads.min(n);
    if threads <= 1 {
        return (0..n).map(f).collect();
    }
    let next = AtomicU64::new(0);
    let work = || {
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed) as usize;
            if i >= n {
                return out;
            }
            out.push((i, f(i)));
        }
    };
    let mut all: Vec<(usize, T)> = std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut all = work();
        for h in helpers {
            all.extend(h.join().expect("BUG: flush thread panicked"));
        }
        all
    });
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, t)| t).collect()
}

/// Takes the exclusive lock on `<logs_dir>/LOCK`.
/// How long a committer waits for room in the buffers before going ahead (see
/// `wait_for_room`): long enough to ride out a large flush, short enough that a broken
/// disk shows up as slow requests rather than hung ones.
const MAX_BACKPRESSURE_WAIT: Duration = Duration::from_secs(30);

/// How often a waiting committer looks again: small against a flush (hundreds of ms).
const BACKPRESSURE_POLL: Duration = Duration::from_millis(10);

/// Rows a background merge writes at most. A merge reads its inputs into memory, so this
/// bounds its memory (about 1 KiB a row in memory at worst) and keeps big parts from being
/// rewritten again and again (write amplification): a part this big is final for the
/// background merger; `merge_now` still merges everything.
const MAX_MERGE_ROWS: u64 = 1_000_000;

/// The parts of one partition a background merge takes: the smallest first, as many as fit
/// under [`MAX_MERGE_ROWS`] (size-tiered, like ClickHouse and VictoriaLogs pick small parts
/// first). Fewer than two means nothing worth merging.
fn pick_merge(parts: &[Arc<PartHandle>]) -> Vec<Arc<PartHandle>> {
    let rows: Vec<u64> = parts.iter().map(|h| h.entry.rows).collect();
    pick_merge_indices(&rows, MAX_MERGE_ROWS)
        .into_iter()
        .map(|i| parts[i].clone())
        .collect()
}

/// Indices into `rows` (part sizes) of the parts to merge: smallest first while the sum
/// stays within `cap` (the first two are taken even if they exceed it together, so a
/// merge makes progress); parts of `cap` rows or more are never taken.
fn pick_merge_indices(rows: &[u64], cap: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| rows[i]);
    let mut sum = 0u64;
    let mut picked = Vec::new();
    for i in order {
        if rows[i] >= cap || (sum + rows[i] > cap && picked.len() >= 2) {
            break;
        }
        sum += rows[i];
        picked.push(i);
    }
    if picked.len() < 2 {
        picked.clear();
    }
    picked
}

fn partition_key(entry: &PartEntry, logs_dir: &Path) -> Result<Key> {
    let bad = |reason: String| Error::Corruption {
        path: logs_dir.join(MANIFEST_FILE),
        offset: 0,
        reason,
    };
    let tenant = Tenant::new(&entry.tenant).map_err(|e| bad(format!("part {}: {e}", entry.id)))?;
    let day = parse_day(&entry.day).ok_or_else(|| {
        bad(format!(
            "part {} has malformed day {:?}",
            entry.id, entry.day
        ))
    })?;
    Ok((tenant, day))
}

/// Deletes files under `<logs>/<tenant>/<day>/` that the manifest does not list (parts of
/// an interrupted flush or merge, `.tmp` files, parts dropped while a query held them),
/// then empty directories, and a leftover `MANIFEST.tmp`.
fn remove_orphans(logs_dir: &Path, listed: &HashSet<PathBuf>) -> Result<()> {
    let read = |d: &Path| fs::read_dir(d).map_err(|e| io_err(d, e));
    for tenant in read(logs_dir)? {
        let tenant = tenant.map_err(|e| io_err(logs_dir, e))?.path();
        if !tenant.is_dir() {
            if tenant.file_name().is_some_and(|n| n == "MANIFEST.tmp") {
                fs::remove_file(&tenant).map_err(|e| io_err(&tenant, e))?;
            }
            continue;
        }
        for day in read(&tenant)? {
            let day = day.map_err(|e| io_err(&tenant, e))?.path();
            if !day.is_dir() {
                continue;
            }
            let mut kept = 0;
            for file in read(&day)? {
                let file = file.map_err(|e| io_err(&day, e))?.path();
                if listed.contains(&file) || file.is_dir() {
                    kept += 1;
                    continue;
                }
                info!(file = ?file, "removing orphan part file");
                fs::remove_file(&file).map_err(|e| io_err(&file, e))?;
            }
            if kept == 0 {
                fs::remove_dir(&day).map_err(|e| io_err(&day, e))?;
            }
        }
        if read(&tenant)?.next().is_none() {
            fs::remove_dir(&tenant).map_err(|e| io_err(&tenant, e))?;
        }
    }
    Ok(())
}

fn spawn_worker(store: &Arc<EventStore>) -> std::io::Result<JoinHandle<()>> {
    let weak: Weak<EventStore> = Arc::downgrade(store);
    let signal = store.signal.clone();
    let flush_every = store.cfg.flush_interval.max(Duration::from_millis(1));
    let sync_every = match store.cfg.fsync {
        FsyncPolicy::Interval(d) => Some(d.max(Duration::from_millis(1))),
        _ => None,
    };
    std::thread::Builder::new()
        .name("sightline-logs-maintenance".into())
        .spawn(move || {
            let mut next_flush = Instant::now() + flush_every;
            let mut next_sync = sync_every.map(|d| Instant::now() + d);
            loop {
                let wake = next_sync.map_or(next_flush, |s| s.min(next_flush));
                let (stop, requested) = signal.wait(wake.saturating_duration_since(Instant::now()));
                if stop {
                    break;
                }
                let Some(store) = weak.upgrade() else { break };
                let now = Instant::now();
                if let (Some(at), Some(every)) = (next_sync, sync_every) {
                    if now >= at {
                        store.sync_wal();
                        next_sync = Some(now + every);
                    }
                }
                if requested || now >= next_flush {
                    store.background_cycle();
                    next_flush = Instant::now() + flush_every;
                }
            }
            debug!("event store background thread stopped");
        })
}

struct EventAppender<'a> {
    store: &'a EventStore,
    tenant: Tenant,
    staged: Vec<LogRecord>,
}

impl LogAppender for EventAppender<'_> {
    fn append(&mut self, record: LogRecord) {
        self.staged.push(record);
    }

    fn commit(self: Box<Self>) -> Result<usize> {
        let this = *self;
        this.store.commit_batch(&this.tenant, this.staged)
    }

    fn rollback(self: Box<Self>) {}
}

/// A snapshot of one tenant's data over `[start, end)`.
struct EventQuerier {
    start: i64,
    end: i64,
    chunks: Vec<Chunk>,
    parts: Vec<Arc<PartHandle>>,
}

impl LogQuerier for EventQuerier {
    fn scan(
        &self,
        req: &ScanRequest,
        visit: &mut dyn FnMut(&LogRecord) -> ControlFlow<()>,
    ) -> Result<ScanStats> {
        let mut stats = ScanStats::default();
        for chunk in &self.chunks {
            for r in chunk.iter() {
                if r.timestamp < self.start || r.timestamp >= self.end {
                    continue;
                }
                if req
                    .services
                    .as_ref()
                    .is_some_and(|s| !s.contains(&r.service))
                {
                    continue;
                }
                if req
                    .trace_ids
                    .as_ref()
                    .is_some_and(|t| !r.trace_id.is_some_and(|id| t.contains(&id)))
                {
                    continue;
                }
                stats.scanned_rows += 1;
                stats.scanned_bytes += r.approx_size() as u64;
                if visit(r).is_break() {
                    return Ok(stats);
                }
            }
        }
        for h in &self.parts {
            let mut stopped = false;
            let s = h.part.scan(self.start, self.end, req, &mut |r| {
                let flow = visit(r);
                stopped = flow.is_break();
                flow
            })?;
            stats.scanned_rows += s.scanned_rows;
            stats.scanned_bytes += s.scanned_bytes;
            stats.blocks_total += s.blocks_total;
            stats.blocks_skipped += s.blocks_skipped;
            if stopped {
                break;
            }
        }
        Ok(stats)
    }
}

impl LogStore for EventStore {
    fn appender(&self, tenant: &Tenant) -> Box<dyn LogAppender + '_> {
        Box::new(EventAppender {
            store: self,
            tenant: tenant.clone(),
            staged: Vec::new(),
        })
    }

    fn querier(&self, tenant: &Tenant, start: i64, end: i64) -> Box<dyn LogQuerier + '_> {
        let mut q = EventQuerier {
            start,
            end,
            chunks: Vec::new(),
            parts: Vec::new(),
        };
        if start < end {
            let range = (tenant.clone(), day_of(start))..=(tenant.clone(), day_of(end - 1));
            let st = lock(&self.state);
            for buffers in [&st.buffers, &st.flushing] {
                for (_, b) in buffers.range(range.clone()) {
                    q.chunks.extend(b.chunks.iter().cloned());
                }
            }
            for (_, list) in st.parts.range(range) {
                q.parts.extend(
                    list.iter()
                        .filter(|h| h.entry.max_ts >= start && h.entry.min_ts < end)
                        .cloned(),
                );
            }
        }
        Box::new(q)
    }

    fn stats(&self) -> StoreStats {
        let (wal_bytes, wal_segments) = {
            let w = lock(&self.wal);
            (w.wal.bytes(), w.wal.segments())
        };
        let st = lock(&self.state);
        StoreStats {
            wal_bytes,
            wal_segments,
            parts: st.parts.values().map(|v| v.len() as u64).sum(),
            part_bytes: st.manifest.part_bytes(),
            buffered_rows: st.buffered_rows + st.flushing.values().map(|b| b.rows).sum::<u64>(),
            merges_total: self.merges_total.load(Ordering::Relaxed),
            flushes_total: self.flushes_total.load(Ordering::Relaxed),
            partitions_dropped_total: self.partitions_dropped_total.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ts: i64) -> LogRecord {
        LogRecord {
            timestamp: ts,
            body: ts.to_string(),
            ..Default::default()
        }
    }

    #[test]
    fn writers_wait_for_flushes_when_buffers_are_full() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = StoreConfig::new(dir.path());
        cfg.fsync = FsyncPolicy::Never;
        cfg.max_buffer_bytes = 4096;
        cfg.flush_interval = Duration::from_secs(3600);
        let (store, _) = EventStore::open(cfg).unwrap();
        let t = Tenant::new("t").unwrap();
        let batch_bytes: u64 = (0..20).map(|i| rec(i).approx_size() as u64).sum();
        for b in 0..200 {
            store
                .commit_batch(&t, (0..20).map(|i| rec(b * 20 + i)).collect())
                .unwrap();
            let buffered = lock(&store.state).buffered_bytes;
            assert!(
                buffered < 2 * 4096 + batch_bytes,
                "batch {b}: {buffered} bytes buffered"
            );
        }
        assert!(store.stats().flushes_total > 0);
        store.close().unwrap();
    }

    #[test]
    fn parallel_map_keeps_index_order() {
        for threads in [1, 2, 3, 8] {
            for n in [0, 1, 2, 5, 17] {
                let got = parallel_map(n, threads, |i| i * 10);
                let want: Vec<usize> = (0..n).map(|i| i * 10).collect();
                assert_eq!(got, want, "{threads} threads, {n} items");
            }
        }
    }

    #[test]
    fn a_flush_writes_every_partition_and_queries_see_each_row_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = StoreConfig::new(dir.path());
        cfg.fsync = FsyncPolicy::Never;
        cfg.flush_interval = Duration::from_secs(3600);
        let (store, _) = EventStore::open(cfg).unwrap();
        let tenants = [Tenant::new("a").unwrap(), Tenant::new("b").unwrap()];
        for t in &tenants {
            let batch: Vec<LogRecord> = (0..5)
                .flat_map(|day| (0..3).map(move |i| rec(day * NANOS_PER_DAY + i)))
                .collect();
            store.commit_batch(t, batch).unwrap();
        }
        store.flush().unwrap();
        let stats = store.stats();
        assert_eq!((stats.parts, stats.buffered_rows), (10, 0));
        for t in &tenants {
            let q = store.querier(t, 0, 5 * NANOS_PER_DAY);
            let mut seen = Vec::new();
            q.scan(&ScanRequest::default(), &mut |r| {
                seen.push(r.timestamp);
                ControlFlow::Continue(())
            })
            .unwrap();
            seen.sort_unstable();
            let want: Vec<i64> = (0..5)
                .flat_map(|day| (0..3).map(move |i| day * NANOS_PER_DAY + i))
                .collect();
            assert_eq!(seen, want);
        }
        store.close().unwrap();
        drop(store);
        let (store, report) = EventStore::open(StoreConfig::new(dir.path())).unwrap();
        assert_eq!(report.records, 0, "the checkpoint covers every batch");
        assert_eq!(store.stats().parts, 10);
    }

    #[test]
    fn merge_picks_small_parts_under_the_cap() {
        assert_eq!(pick_merge_indices(&[50, 10, 30, 20], 100), vec![1, 3, 2]);
        assert_eq!(
            pick_merge_indices(&[100, 5, 7], 100),
            vec![1, 2],
            "big parts are final"
        );
        assert_eq!(pick_merge_indices(&[100, 200, 5], 100), Vec::<usize>::new());
        assert_eq!(
            pick_merge_indices(&[60, 70, 80], 100),
            vec![0, 1],
            "progress over the cap"
        );
    }

    #[test]
    fn config_defaults() {
        let c = StoreConfig::new("/data");
        assert_eq!(c.dir, Path::new("/data"));
        assert_eq!(c.fsync, FsyncPolicy::Always);
        assert_eq!(c.flush_interval, Duration::from_secs(5));
        assert_eq!(
            (c.max_buffer_bytes, c.wal_segment_bytes),
            (64 << 20, 64 << 20)
        );
        assert_eq!(c.max_parts_per_partition, 8);
        assert!(c.retention_period.is_none() && c.retention_max_bytes.is_none());
    }

    #[test]
    fn batches_split_by_day_including_before_epoch() {
        let g = group_by_day(vec![
            rec(-1),
            rec(0),
            rec(NANOS_PER_DAY - 1),
            rec(NANOS_PER_DAY),
        ]);
        let days: Vec<(i64, usize)> = g.iter().map(|(d, v)| (*d, v.len())).collect();
        assert_eq!(days, [(-1, 1), (0, 2), (1, 1)]);
    }

    #[test]
    fn restoring_a_failed_flush_merges_with_newer_buffers() {
        let t = Tenant::new("t").unwrap();
        let mut st = State::default();
        st.insert(&t, group_by_day(vec![rec(1), rec(2)]));
        st.flushing = std::mem::take(&mut st.buffers);
        st.buffered_rows = 0;
        st.buffered_bytes = 0;
        st.insert(&t, group_by_day(vec![rec(3)]));
        st.restore_flushing();
        assert!(st.flushing.is_empty());
        assert_eq!(st.buffered_rows, 3);
        let buf = &st.buffers[&(t, 0)];
        assert_eq!(buf.rows, 3);
        let order: Vec<i64> = buf
            .chunks
            .iter()
            .flat_map(|c| c.iter().map(|r| r.timestamp))
            .collect();
        assert_eq!(order, [1, 2, 3]);
        assert_eq!(st.buffered_bytes, buf.bytes);
    }
}
