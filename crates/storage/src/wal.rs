//! The write-ahead log: every committed batch of log records is framed, checksummed and
//! appended here before it becomes visible, so that a crash loses nothing acknowledged
//! (per the fsync policy). Fed by the event store's appender; replayed into the event
//! store's in-memory buffers on open. Segments are deleted once the manifest's checkpoint
//! covers all their batches. Byte layout: `docs/format/wal.md`.
//!
//! The format is hand-written (not serde/prost) because it must be byte-exact, append-only
//! and self-delimiting so that a torn tail can be told from corruption, and because it is
//! on the ingest hot path.
//!
//! The segment/frame/sequence layer is payload-agnostic ([`Wal::open_with`],
//! [`Wal::append_payload`]): the log batches here and the TSDB's sample batches
//! (`tsdb/batch.rs`, in its own directory with its own segment magic) share it. A payload
//! only has to start with its batch sequence number (u64 LE).

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sightline_model::{Attributes, LogRecord, SpanId, Tenant, TraceId, Value};
use tracing::{debug, info, warn};

use crate::encoding::{put_ivarint, put_str, put_uvarint};
use crate::error::{Error, Result};

/// First bytes of every log WAL segment file.
pub const MAGIC: [u8; 4] = *b"SLWL";
/// Format version written after the magic.
pub const VERSION: u32 = 1;
/// Magic (4 bytes) + version (u32 LE).
pub const HEADER_LEN: u64 = 8;
/// Payload length (u32 LE) + CRC-32 (u32 LE).
pub const FRAME_HEADER_LEN: usize = 8;

/// When appended batches are forced to stable storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fdatasync` before a commit returns: an acknowledged batch survives a power loss.
    #[default]
    Always,
    /// A background fsync every interval: batches acknowledged within the last interval
    /// may be lost on power loss (not on a process crash: they are in the page cache).
    Interval(Duration),
    /// Never fsync explicitly: the OS decides when data reaches the disk.
    Never,
}

/// What replaying the WAL on open found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Batches replayed (newer than the manifest checkpoint).
    pub batches: u64,
    /// Records in those batches.
    pub records: u64,
    /// A torn tail that was cut off: the segment and the offset it was truncated at.
    pub truncated: Option<(PathBuf, u64)>,
}

/// One decoded WAL batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub seq: u64,
    pub tenant: Tenant,
    pub records: Vec<LogRecord>,
}

#[derive(Debug)]
struct Segment {
    index: u64,
    path: PathBuf,
    bytes: u64,
    /// Highest batch sequence number in the segment; 0 when it holds none.
    max_batch: u64,
}

/// The write-ahead log of one store: a directory of segment files.
///
/// # Invariants
/// Batch sequence numbers are strictly increasing across frames and segments; only the
/// current (last) segment is appended to.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    /// Segment magic: tells a log WAL from a metrics WAL.
    magic: [u8; 4],
    policy: FsyncPolicy,
    segment_bytes: u64,
    closed: Vec<Segment>,
    current: Segment,
    /// Shared so a group-commit leader can fsync it without holding the WAL lock.
    file: Arc<File>,
    last_seq: u64,
    dirty: bool,
    /// Set when a failed write could not be undone: later appends would follow garbage.
    broken: bool,
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Fsyncs a directory so that created, renamed or removed entries are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:020}.wal"))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir`, replays every batch with a sequence
    /// number above `checkpoint` into `apply`, and starts a fresh segment for appends.
    ///
    /// # Errors
    /// [`Error::Corruption`] naming the segment and frame offset for a bad frame that is
    /// not a torn tail (in a segment other than the last, or followed by a valid frame);
    /// I/O errors.
    pub fn open(
        dir: &Path,
        policy: FsyncPolicy,
        segment_bytes: u64,
        checkpoint: u64,
        apply: &mut dyn FnMut(Batch),
    ) -> Result<(Wal, ReplayReport)> {
        Self::open_with(
            dir,
            MAGIC,
            policy,
            segment_bytes,
            checkpoint,
            &decode_batch,
            &mut |_, batch: Batch| {
                let n = batch.records.len() as u64;
                apply(batch);
                n
            },
        )
    }

    /// Like [`Wal::open`] for any payload: segments start with `magic`; `decode` turns a
    /// frame's payload (its first 8 bytes are the sequence number) into a `T` or says why it
    /// cannot (then the frame is bad, as for a CRC mismatch); `apply` gets every batch above
    /// `checkpoint` with its sequence number and returns how many records it held.
    ///
    /// # Errors
    /// As [`Wal::open`].
    pub fn open_with<T>(
        dir: &Path,
        magic: [u8; 4],
        policy: FsyncPolicy,
        segment_bytes: u64,
        checkpoint: u64,
        decode: &dyn Fn(&[u8]) -> Result<T, String>,
        apply: &mut dyn FnMut(u64, T) -> u64,
    ) -> Result<(Wal, ReplayReport)> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let mut indexes = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
            let entry = entry.map_err(|e| io_err(dir, e))?;
            let name = entry.file_name();
            match name.to_str().and_then(parse_segment_name) {
                Some(i) => indexes.push(i),
                None => warn!(file = ?entry.path(), "ignoring unexpected file in wal directory"),
            }
        }
        indexes.sort_unstable();

        let mut report = ReplayReport::default();
        let mut closed = Vec::new();
        let mut last_seq = 0u64;
        let count = indexes.len();
        for (n, index) in indexes.into_iter().enumerate() {
            let path = segment_path(dir, index);
            let is_last = n + 1 == count;
            let data = fs::read(&path).map_err(|e| io_err(&path, e))?;
            let scan = scan_frames(&data, last_seq, &magic, decode);
            let mut max_batch = 0;
            for (seq, batch) in scan.batches {
                last_seq = seq;
                max_batch = seq;
                if seq > checkpoint {
                    report.batches += 1;
                    report.records += apply(seq, batch);
                }
            }
            let mut bytes = data.len() as u64;
            if let Some(bad) = scan.bad {
                let torn = is_last && !bad.followed_by_valid;
                if !torn {
                    return Err(Error::Corruption {
                        path,
                        offset: bad.offset,
                        reason: bad.reason,
                    });
                }
                warn!(segment = ?path, offset = bad.offset, reason = %bad.reason,
                    "truncating torn wal tail");
                if bad.offset < HEADER_LEN {
                    // Not even a whole header: the segment was being created.
                    fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
                    sync_dir(dir)?;
                    report.truncated = Some((path, bad.offset));
                    continue;
                }
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| io_err(&path, e))?;
                f.set_len(bad.offset)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| io_err(&path, e))?;
                bytes = bad.offset;
                report.truncated = Some((path.clone(), bad.offset));
            }
            closed.push(Segment {
                index,
                path,
                bytes,
                max_batch,
            });
        }

        let next_index = closed.last().map_or(1, |s| s.index + 1);
        let (current, file) = create_segment(dir, next_index, &magic)?;
        info!(dir = ?dir, batches = report.batches, records = report.records,
            segments = closed.len(), "wal replayed");
        Ok((
            Wal {
                dir: dir.to_path_buf(),
                magic,
                policy,
                segment_bytes: segment_bytes.max(HEADER_LEN + 1),
                closed,
                current,
                file: Arc::new(file),
                last_seq: last_seq.max(checkpoint),
                dirty: false,
                broken: false,
            },
            report,
        ))
    }

    /// Appends one batch of `tenant`'s records, fsyncs per the policy, and returns the
    /// batch's sequence number. On error the segment is cut back so nothing of the batch
    /// is replayed later.
    ///
    /// # Errors
    /// I/O errors; a batch over 4 GiB encoded; every append after a failure that could
    /// not be undone.
    pub fn append(&mut self, tenant: &Tenant, records: &[LogRecord]) -> Result<u64> {
        self.append_inner(
            &|seq| encode_batch(seq, tenant.as_str(), records),
            self.policy == FsyncPolicy::Always,
        )
    }

    /// Appends one batch like [`Wal::append`] but never fsyncs: for group commit, where
    /// the caller fsyncs [`Wal::current_file`] afterwards, outside the WAL lock.
    ///
    /// # Errors
    /// As [`Wal::append`].
    pub fn write(&mut self, tenant: &Tenant, records: &[LogRecord]) -> Result<u64> {
        self.append_inner(&|seq| encode_batch(seq, tenant.as_str(), records), false)
    }

    /// Appends one frame whose payload `encode` builds from the batch's sequence number
    /// (the payload must start with it, u64 LE); fsyncs per the policy. Returns the
    /// sequence number.
    ///
    /// # Errors
    /// As [`Wal::append`].
    ///
    /// # Panics
    /// "BUG:" when the payload does not start with the sequence number.
    pub fn append_payload(&mut self, encode: &dyn Fn(u64) -> Vec<u8>) -> Result<u64> {
        self.append_inner(encode, self.policy == FsyncPolicy::Always)
    }

    /// Like [`Wal::append_payload`] but never fsyncs (group commit; see [`Wal::write`]).
    ///
    /// # Errors
    /// As [`Wal::append`].
    pub fn write_payload(&mut self, encode: &dyn Fn(u64) -> Vec<u8>) -> Result<u64> {
        self.append_inner(encode, false)
    }

    fn append_inner(&mut self, encode: &dyn Fn(u64) -> Vec<u8>, sync: bool) -> Result<u64> {
        if self.broken {
            return Err(io_err(
                &self.current.path,
                std::io::Error::other("wal is unusable after an earlier write failure"),
            ));
        }
        let seq = self.last_seq + 1;
        let payload = encode(seq);
        assert!(
            payload.get(..8) == Some(&seq.to_le_bytes()[..]),
            "BUG: wal payload does not start with its sequence number {seq}"
        );
        let len = u32::try_from(payload.len()).map_err(|_| {
            io_err(
                &self.current.path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "wal batch of {} bytes exceeds the 4 GiB frame limit",
                        payload.len()
                    ),
                ),
            )
        })?;
        let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        frame.extend_from_slice(&payload);

        let old_len = self.current.bytes;
        let written = (&*self.file).write_all(&frame).and_then(|()| {
            if sync {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            // Cut the partial frame off so a later frame does not follow garbage.
            let undone = self
                .file
                .set_len(old_len)
                .and_then(|()| (&*self.file).seek(SeekFrom::Start(old_len)).map(|_| ()));
            if undone.is_err() {
                self.broken = true;
            }
            return Err(io_err(&self.current.path, e));
        }
        self.current.bytes += frame.len() as u64;
        self.current.max_batch = seq;
        self.last_seq = seq;
        self.dirty = !sync;
        if self.current.bytes >= self.segment_bytes {
            // The batch is already durable: a failed rotation must not fail its commit;
            // the next append tries again.
            if let Err(error) = self.rotate() {
                warn!(%error, "wal segment rotation failed");
            }
        }
        Ok(seq)
    }

    /// The segment file being appended to (rotated segments are fsynced when closed).
    pub fn current_file(&self) -> Arc<File> {
        self.file.clone()
    }

    /// The path of the segment being appended to.
    pub fn current_path(&self) -> &Path {
        &self.current.path
    }

    /// Refuses every later append: a group-commit fsync of the current segment failed,
    /// so what reached the disk is unknown.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Fsyncs the current segment if anything was appended since the last sync.
    ///
    /// # Errors
    /// I/O errors; after one, the WAL refuses further appends (the page cache state is
    /// unknown).
    pub fn sync(&mut self) -> Result<()> {
        if self.dirty {
            if let Err(e) = self.file.sync_data() {
                self.broken = true;
                return Err(io_err(&self.current.path, e));
            }
            self.dirty = false;
        }
        Ok(())
    }

    /// Closes the current segment (when it holds any batch) and starts a new one, so that
    /// every batch appended so far lies in a closed segment.
    ///
    /// # Errors
    /// I/O errors syncing the old or creating the new segment.
    pub fn rotate(&mut self) -> Result<()> {
        if self.current.max_batch == 0 {
            return Ok(());
        }
        // Synced whatever the policy (rarely: once per segment): replay requires every
        // segment but the last to be whole, or it reports corruption.
        if let Err(e) = self.file.sync_data() {
            self.broken = true;
            return Err(io_err(&self.current.path, e));
        }
        let (next, file) = create_segment(&self.dir, self.current.index + 1, &self.magic)?;
        let old = std::mem::replace(&mut self.current, next);
        self.file = Arc::new(file);
        self.dirty = false;
        debug!(segment = ?old.path, bytes = old.bytes, "wal segment closed");
        self.closed.push(old);
        Ok(())
    }

    /// Deletes closed segments whose batches all have sequence numbers `<= checkpoint`.
    /// Returns how many were deleted.
    ///
    /// # Errors
    /// I/O errors removing a file.
    pub fn remove_checkpointed(&mut self, checkpoint: u64) -> Result<usize> {
        let n = self
            .closed
            .iter()
            .take_while(|s| s.max_batch <= checkpoint)
            .count();
        for seg in self.closed.drain(..n) {
            fs::remove_file(&seg.path).map_err(|e| io_err(&seg.path, e))?;
            debug!(segment = ?seg.path, "wal segment removed after checkpoint");
        }
        if n > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(n)
    }

    /// The sequence number of the last appended batch (or the checkpoint when none).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Bytes in all segment files.
    pub fn bytes(&self) -> u64 {
        self.closed.iter().map(|s| s.bytes).sum::<u64>() + self.current.bytes
    }

    /// Number of segment files, the current one included.
    pub fn segments(&self) -> u64 {
        self.closed.len() as u64 + 1
    }

    pub fn policy(&self) -> FsyncPolicy {
        self.policy
    }
}

/// Creates a segment with its header, synced (with its directory entry) whatever the
/// policy, so that a later segment never exists without its predecessors being whole.
fn create_segment(dir: &Path, index: u64, magic: &[u8; 4]) -> Result<(Segment, File)> {
    let path = segment_path(dir, index);
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .map_err(|e| io_err(&path, e))?;
    let mut header = [0u8; HEADER_LEN as usize];
    header[..4].copy_from_slice(magic);
    header[4..].copy_from_slice(&VERSION.to_le_bytes());
    file.write_all(&header).map_err(|e| io_err(&path, e))?;
    file.sync_all().map_err(|e| io_err(&path, e))?;
    sync_dir(dir)?;
    Ok((
        Segment {
            index,
            path,
            bytes: HEADER_LEN,
            max_batch: 0,
        },
        file,
    ))
}

/// A frame that could not be read.
#[derive(Debug)]
struct BadFrame {
    offset: u64,
    reason: String,
    /// Whether a valid frame (with a higher sequence number) follows somewhere after it.
    followed_by_valid: bool,
}

#[derive(Debug)]
struct SegmentScan<T> {
    /// Sequence number and decoded payload of each good frame.
    batches: Vec<(u64, T)>,
    bad: Option<BadFrame>,
}

/// [`scan_frames`] for log batches.
#[cfg(test)]
fn scan_segment(data: &[u8], prev_seq: u64) -> SegmentScan<Batch> {
    scan_frames(data, prev_seq, &MAGIC, &decode_batch)
}

/// Reads the frames of one segment's bytes; `prev_seq` is the last sequence number seen
/// in earlier segments. Stops at the first bad frame.
fn scan_frames<T>(
    data: &[u8],
    prev_seq: u64,
    magic: &[u8; 4],
    decode: &dyn Fn(&[u8]) -> Result<T, String>,
) -> SegmentScan<T> {
    let mut batches = Vec::new();
    if data.len() < HEADER_LEN as usize {
        let bad = BadFrame {
            offset: 0,
            reason: format!(
                "segment header is {} bytes, expected {HEADER_LEN}",
                data.len()
            ),
            followed_by_valid: false,
        };
        return SegmentScan {
            batches,
            bad: Some(bad),
        };
    }
    if data[..4] != magic[..] || data[4..8] != VERSION.to_le_bytes() {
        let bad = BadFrame {
            offset: 0,
            reason: "segment header has a wrong magic or version".to_string(),
            followed_by_valid: true, // a whole but wrong header is never a torn write
        };
        return SegmentScan {
            batches,
            bad: Some(bad),
        };
    }
    let mut off = HEADER_LEN as usize;
    let mut last = prev_seq;
    while off < data.len() {
        match read_frame(data, off, last, decode) {
            Ok((seq, batch, next)) => {
                last = seq;
                batches.push((seq, batch));
                off = next;
            }
            Err(reason) => {
                let followed_by_valid = valid_frame_after(data, off + 1, last, decode);
                return SegmentScan {
                    batches,
                    bad: Some(BadFrame {
                        offset: off as u64,
                        reason,
                        followed_by_valid,
                    }),
                };
            }
        }
    }
    SegmentScan { batches, bad: None }
}

/// Reads the frame at `off`; returns the sequence number, the decoded payload and the
/// offset after the frame.
fn read_frame<T>(
    data: &[u8],
    off: usize,
    prev_seq: u64,
    decode: &dyn Fn(&[u8]) -> Result<T, String>,
) -> Result<(u64, T, usize), String> {
    let rest = &data[off..];
    if rest.len() < FRAME_HEADER_LEN {
        return Err(format!(
            "incomplete frame header: {} of {FRAME_HEADER_LEN} bytes",
            rest.len()
        ));
    }
    let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    if rest.len() - FRAME_HEADER_LEN < len {
        return Err(format!(
            "incomplete frame: payload length {len} but {} bytes remain",
            rest.len() - FRAME_HEADER_LEN
        ));
    }
    let payload = &rest[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len];
    let actual = crc32fast::hash(payload);
    if actual != crc {
        return Err(format!(
            "frame crc mismatch: stored {crc:#010x}, computed {actual:#010x}"
        ));
    }
    if payload.len() < 8 {
        return Err(format!(
            "frame payload of {len} bytes has no batch sequence number"
        ));
    }
    let seq = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
    if seq <= prev_seq {
        return Err(format!("batch sequence {seq} does not follow {prev_seq}"));
    }
    let batch = decode(payload)?;
    Ok((seq, batch, off + FRAME_HEADER_LEN + len))
}

/// How far above the last good sequence number a frame found after a bad one may be to
/// count as "valid data follows": sequence numbers are dense, so a real later frame is
/// within a few of it; the bound only keeps the search cheap over garbage.
const RESYNC_SEQ_WINDOW: u64 = 1 << 20;

/// Whether any offset at or after `from` starts a frame that checks out (length fits, CRC
/// matches, decodes, sequence number above `last_seq`): then a bad frame before it is
/// corruption, not a torn tail.
fn valid_frame_after<T>(
    data: &[u8],
    from: usize,
    last_seq: u64,
    decode: &dyn Fn(&[u8]) -> Result<T, String>,
) -> bool {
    let mut off = from;
    while off + FRAME_HEADER_LEN + 8 <= data.len() {
        let rest = &data[off..];
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        if len >= 8 && len <= rest.len() - FRAME_HEADER_LEN {
            let seq = u64::from_le_bytes(rest[8..16].try_into().expect("8 bytes"));
            if seq > last_seq
                && seq - last_seq <= RESYNC_SEQ_WINDOW
                && read_frame(data, off, last_seq, decode).is_ok()
            {
                return true;
            }
        }
        off += 1;
    }
    false
}

// ---- batch payload codec -------------------------------------------------------------

const TAG_STR: u8 = 0;
const TAG_INT: u8 = 1;
const TAG_FLOAT: u8 = 2;
const TAG_BOOL: u8 = 3;
const FLAG_TRACE: u8 = 1;
const FLAG_SPAN: u8 = 2;

fn put_attrs(out: &mut Vec<u8>, attrs: &Attributes) {
    put_uvarint(out, attrs.len() as u64);
    for (k, v) in attrs.iter() {
        put_str(out, k);
        match v {
            Value::Str(s) => {
                out.push(TAG_STR);
                put_str(out, s);
            }
            Value::Int(i) => {
                out.push(TAG_INT);
                put_ivarint(out, *i);
            }
            Value::Float(f) => {
                out.push(TAG_FLOAT);
                out.extend_from_slice(&f.to_bits().to_le_bytes());
            }
            Value::Bool(b) => {
                out.push(TAG_BOOL);
                out.push(u8::from(*b));
            }
        }
    }
}

/// Encodes one batch payload (see `docs/format/wal.md`).
pub fn encode_batch(seq: u64, tenant: &str, records: &[LogRecord]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(32 + records.iter().map(|r| r.approx_size() + 16).sum::<usize>());
    out.extend_from_slice(&seq.to_le_bytes());
    put_str(&mut out, tenant);
    put_uvarint(&mut out, records.len() as u64);
    for r in records {
        put_ivarint(&mut out, r.timestamp);
        put_ivarint(&mut out, r.observed_timestamp);
        out.push(r.severity_number);
        put_str(&mut out, &r.severity_text);
        put_str(&mut out, &r.service);
        put_str(&mut out, &r.body);
        put_attrs(&mut out, &r.resource);
        put_attrs(&mut out, &r.attributes);
        let flags = if r.trace_id.is_some() { FLAG_TRACE } else { 0 }
            | if r.span_id.is_some() { FLAG_SPAN } else { 0 };
        out.push(flags);
        if let Some(t) = r.trace_id {
            out.extend_from_slice(&t.0);
        }
        if let Some(s) = r.span_id {
            out.extend_from_slice(&s.0);
        }
    }
    out
}

/// A bounds-checked cursor over a payload; errors name the field and payload offset.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.data.len() - self.pos < n {
            return Err(format!(
                "{what} needs {n} bytes but {} remain at payload offset {}",
                self.data.len() - self.pos,
                self.pos
            ));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    fn uvarint(&mut self, what: &str) -> Result<u64, String> {
        let start = self.pos;
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8(what)?;
            if shift == 63 && b > 1 {
                break;
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!(
            "{what} is an overlong varint at payload offset {start}"
        ))
    }

    fn ivarint(&mut self, what: &str) -> Result<i64, String> {
        let u = self.uvarint(what)?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn string(&mut self, what: &str) -> Result<String, String> {
        let start = self.pos;
        let len = self.uvarint(what)?;
        let len = usize::try_from(len).map_err(|_| format!("{what} length {len} too large"))?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| format!("{what} at payload offset {start} is not valid utf-8"))
    }

    fn attrs(&mut self, what: &str) -> Result<Attributes, String> {
        let n = self.uvarint(what)?;
        let mut pairs = Vec::new();
        for i in 0..n {
            let key = self.string(&format!("{what} key {i}"))?;
            let tag_at = self.pos;
            let value = match self.u8(&format!("{what} {key:?} type"))? {
                TAG_STR => Value::Str(self.string(&format!("{what} {key:?}"))?),
                TAG_INT => Value::Int(self.ivarint(&format!("{what} {key:?}"))?),
                TAG_FLOAT => {
                    let b = self.take(8, &format!("{what} {key:?}"))?;
                    Value::Float(f64::from_bits(u64::from_le_bytes(
                        b.try_into().expect("8 bytes"),
                    )))
                }
                TAG_BOOL => match self.u8(&format!("{what} {key:?}"))? {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    b => return Err(format!("{what} {key:?} has bool byte {b}")),
                },
                t => {
                    return Err(format!(
                        "{what} {key:?} has unknown value type {t} at payload offset {tag_at}"
                    ))
                }
            };
            pairs.push((key, value));
        }
        Ok(Attributes::from_pairs(pairs))
    }
}

/// Decodes one batch payload.
///
/// # Errors
/// A reason naming the field and payload offset that could not be decoded.
pub fn decode_batch(payload: &[u8]) -> Result<Batch, String> {
    let mut r = Reader {
        data: payload,
        pos: 0,
    };
    let seq = u64::from_le_bytes(r.take(8, "batch sequence")?.try_into().expect("8 bytes"));
    let tenant = r.string("tenant")?;
    let tenant = Tenant::new(&tenant).map_err(|e| format!("tenant: {e}"))?;
    let count = r.uvarint("record count")?;
    // Each record takes at least 9 bytes, so a count above len/9 is garbage; never
    // allocate from an unchecked count.
    let mut records = Vec::with_capacity((count as usize).min(payload.len() / 9));
    for i in 0..count {
        let timestamp = r.ivarint(&format!("record {i} timestamp"))?;
        let observed_timestamp = r.ivarint(&format!("record {i} observed timestamp"))?;
        let severity_number = r.u8(&format!("record {i} severity number"))?;
        let severity_text = r.string(&format!("record {i} severity text"))?;
        let service = r.string(&format!("record {i} service"))?;
        let body = r.string(&format!("record {i} body"))?;
        let resource = r.attrs(&format!("record {i} resource attribute"))?;
        let attributes = r.attrs(&format!("record {i} attribute"))?;
        let flags = r.u8(&format!("record {i} id flags"))?;
        if flags & !(FLAG_TRACE | FLAG_SPAN) != 0 {
            return Err(format!("record {i} has unknown id flags {flags:#04x}"));
        }
        let trace_id = if flags & FLAG_TRACE != 0 {
            let b = r.take(16, &format!("record {i} trace id"))?;
            Some(TraceId(b.try_into().expect("16 bytes")))
        } else {
            None
        };
        let span_id = if flags & FLAG_SPAN != 0 {
            let b = r.take(8, &format!("record {i} span id"))?;
            Some(SpanId(b.try_into().expect("8 bytes")))
        } else {
            None
        };
        records.push(LogRecord {
            timestamp,
            observed_timestamp,
            severity_number,
            severity_text,
            service,
            body,
            resource,
            attributes,
            trace_id,
            span_id,
        });
    }
    if r.pos != payload.len() {
        return Err(format!(
            "{} trailing bytes after {count} records",
            payload.len() - r.pos
        ));
    }
    Ok(Batch {
        seq,
        tenant,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(i: i64) -> LogRecord {
        LogRecord {
            timestamp: 1_700_000_000_000_000_000 + i,
            observed_timestamp: -i,
            severity_number: 9,
            severity_text: "INFO".into(),
            service: "api".into(),
            body: format!("request {i} done"),
            resource: Attributes::from_pairs([("host".to_string(), Value::Str("a".into()))]),
            attributes: Attributes::from_pairs([
                ("status".to_string(), Value::Int(200)),
                ("ratio".to_string(), Value::Float(0.5)),
                ("ok".to_string(), Value::Bool(true)),
            ]),
            trace_id: Some(TraceId([7; 16])),
            span_id: Some(SpanId([3; 8])),
        }
    }

    fn frame(seq: u64, records: &[LogRecord]) -> Vec<u8> {
        let payload = encode_batch(seq, "t1", records);
        let mut f = (payload.len() as u32).to_le_bytes().to_vec();
        f.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        f.extend_from_slice(&payload);
        f
    }

    fn segment(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut s = MAGIC.to_vec();
        s.extend_from_slice(&VERSION.to_le_bytes());
        for f in frames {
            s.extend_from_slice(f);
        }
        s
    }

    #[test]
    fn batch_round_trip() {
        let recs = vec![record(1), LogRecord::default(), record(-5)];
        let b = decode_batch(&encode_batch(42, "t1", &recs)).unwrap();
        assert_eq!(b.seq, 42);
        assert_eq!(b.tenant.as_str(), "t1");
        assert_eq!(b.records, recs);
    }

    #[test]
    fn decode_names_the_failing_field() {
        let mut p = encode_batch(1, "t1", &[record(1)]);
        p.truncate(p.len() - 3);
        let err = decode_batch(&p).unwrap_err();
        assert!(err.contains("record 0 span id"), "{err}");
        let mut p = encode_batch(1, "t1", &[]);
        p.push(0);
        assert!(decode_batch(&p).unwrap_err().contains("trailing"));
    }

    #[test]
    fn scan_tells_torn_tail_from_corruption() {
        let f1 = frame(1, &[record(1)]);
        let f2 = frame(2, &[record(2)]);
        let f3 = frame(3, &[record(3)]);
        // Torn: last frame cut mid-way.
        let mut data = segment(&[f1.clone(), f2.clone()]);
        data.truncate(data.len() - 4);
        let scan = scan_segment(&data, 0);
        assert_eq!(scan.batches.len(), 1);
        let bad = scan.bad.unwrap();
        assert_eq!(bad.offset, HEADER_LEN + f1.len() as u64);
        assert!(!bad.followed_by_valid);
        // Zero-filled tail (file extended but never written) is torn too.
        let mut data = segment(std::slice::from_ref(&f1));
        data.extend_from_slice(&[0; 64]);
        let scan = scan_segment(&data, 0);
        assert_eq!(scan.batches.len(), 1);
        assert!(!scan.bad.unwrap().followed_by_valid);
        // A flipped byte in the middle frame: valid data follows.
        let mut data = segment(&[f1.clone(), f2.clone(), f3]);
        let mid = HEADER_LEN as usize + f1.len() + 12;
        data[mid] ^= 0xff;
        let scan = scan_segment(&data, 0);
        assert_eq!(scan.batches.len(), 1);
        let bad = scan.bad.unwrap();
        assert_eq!(bad.offset, HEADER_LEN + f1.len() as u64);
        assert!(bad.followed_by_valid, "{}", bad.reason);
        assert!(bad.reason.contains("crc"), "{}", bad.reason);
    }

    #[test]
    fn scan_rejects_non_increasing_sequence() {
        let data = segment(&[frame(5, &[]), frame(5, &[])]);
        let scan = scan_segment(&data, 0);
        assert_eq!(scan.batches.len(), 1);
        assert!(scan.bad.unwrap().reason.contains("does not follow"));
        assert!(scan_segment(&segment(&[frame(3, &[])]), 3).bad.is_some());
    }

    #[test]
    fn payload_api_round_trips_and_checks_magic() {
        let dir = tempfile::tempdir().unwrap();
        let magic = *b"TEST";
        let body = |seq: u64| {
            let mut p = seq.to_le_bytes().to_vec();
            p.extend_from_slice(b"hello");
            p
        };
        let decode = |p: &[u8]| -> Result<Vec<u8>, String> {
            if p.len() == 13 {
                Ok(p[8..].to_vec())
            } else {
                Err(format!("{} bytes", p.len()))
            }
        };
        let (mut wal, _) = Wal::open_with(
            dir.path(),
            magic,
            FsyncPolicy::Always,
            1 << 20,
            0,
            &decode,
            &mut |_, _| 0,
        )
        .unwrap();
        assert_eq!(wal.append_payload(&body).unwrap(), 1);
        assert_eq!(wal.write_payload(&body).unwrap(), 2);
        wal.sync().unwrap();
        drop(wal);
        let mut got = Vec::new();
        let (wal, report) = Wal::open_with(
            dir.path(),
            magic,
            FsyncPolicy::Always,
            1 << 20,
            1,
            &decode,
            &mut |seq, b| {
                got.push((seq, b));
                1
            },
        )
        .unwrap();
        assert_eq!(got, vec![(2, b"hello".to_vec())]);
        assert_eq!((report.batches, report.records, wal.last_seq()), (1, 1, 2));
        drop(wal);
        // A log WAL reader refuses segments with another magic.
        match Wal::open(dir.path(), FsyncPolicy::Always, 1 << 20, 0, &mut |_| {}) {
            Err(Error::Corruption {
                offset: 0, reason, ..
            }) => assert!(reason.contains("magic"), "{reason}"),
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    #[should_panic(expected = "BUG:")]
    fn payload_without_sequence_panics() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open_with(
            dir.path(),
            *b"TEST",
            FsyncPolicy::Never,
            1 << 20,
            0,
            &|_| Ok(()),
            &mut |_, _| 0,
        )
        .unwrap();
        let _ = wal.append_payload(&|_| vec![1, 2, 3]);
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            ".{0,8}".prop_map(Value::Str),
            any::<i64>().prop_map(Value::Int),
            any::<f64>()
                .prop_filter("NaN != NaN", |f| !f.is_nan())
                .prop_map(Value::Float),
            any::<bool>().prop_map(Value::Bool),
        ]
    }

    fn arb_record() -> impl Strategy<Value = LogRecord> {
        (
            (any::<i64>(), any::<i64>(), any::<u8>()),
            (".{0,6}", ".{0,6}", ".{0,20}"),
            proptest::collection::vec(("[a-z.]{1,6}", arb_value()), 0..4),
            proptest::collection::vec(("[a-z.]{1,6}", arb_value()), 0..4),
            proptest::option::of(any::<[u8; 16]>()),
            proptest::option::of(any::<[u8; 8]>()),
        )
            .prop_map(
                |((ts, obs, sev), (st, svc, body), res, attrs, t, s)| LogRecord {
                    timestamp: ts,
                    observed_timestamp: obs,
                    severity_number: sev,
                    severity_text: st,
                    service: svc,
                    body,
                    resource: Attributes::from_pairs(res),
                    attributes: Attributes::from_pairs(attrs),
                    trace_id: t.map(TraceId),
                    span_id: s.map(SpanId),
                },
            )
    }

    proptest! {
        #[test]
        fn prop_batch_round_trip(seq in any::<u64>(),
                                 recs in proptest::collection::vec(arb_record(), 0..5)) {
            let b = decode_batch(&encode_batch(seq, "tenant-1", &recs)).unwrap();
            prop_assert_eq!(b.seq, seq);
            prop_assert_eq!(b.records, recs);
        }

        #[test]
        fn prop_garbage_payload_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_batch(&bytes);
        }

        #[test]
        fn prop_corrupted_payload_errors_or_differs(recs in proptest::collection::vec(arb_record(), 1..3),
                                                   at in any::<usize>(), cut in any::<bool>()) {
            let mut p = encode_batch(9, "t", &recs);
            if cut {
                p.truncate(at % p.len());
                prop_assert!(decode_batch(&p).is_err());
            } else {
                let i = at % p.len();
                p[i] ^= 0x5a;
                if let Ok(b) = decode_batch(&p) {
                    prop_assert!(b.seq != 9 || b.records != recs);
                }
            }
        }

        #[test]
        fn prop_garbage_segment_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut data = segment(&[frame(1, &[record(1)])]);
            data.extend_from_slice(&bytes);
            let scan = scan_segment(&data, 0);
            prop_assert!(!scan.batches.is_empty());
        }
    }
}
