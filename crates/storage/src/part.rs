//! The immutable columnar part file: a sorted run of log records of one tenant/day, split
//! into zstd-compressed column blocks with a block index (time range, service, token
//! filter, CRC) read at open so scans can skip blocks without touching them.
//!
//! Fed by: the event store's flushes and merges ([`write_part`]). Feeds: queries
//! ([`Part::scan`]) and merges ([`Part::read_all`]). Byte layout: `docs/format/part.md`.
//!
//! The layout is hand-written (not serde/bincode) because it must stay byte-stable for the
//! whole retention period, needs positional reads of single blocks, and must validate
//! every length and checksum against damaged files.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::ops::{ControlFlow, Range};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sightline_model::{Attributes, LogRecord, SpanId, TraceId, Value};

#[cfg(test)]
use crate::api::Prefilter;
use crate::api::{Projection, ScanRequest, ScanStats};
use crate::bloom::{add_record_tokens, BlockFilter, RequiredToken};
use crate::encoding::{
    decode_bitmap, decode_deltas, decode_dict, decode_strings, decode_values, encode_bitmap,
    encode_deltas, encode_dict, encode_strings, encode_values, put_ivarint, put_str, put_uvarint,
    skip_strings, skip_values, DecodeError, DecodeResult, Reader,
};
use crate::error::{Error, Result};

/// First six bytes of a part file (and of its footer's last eight bytes).
pub const MAGIC: [u8; 6] = *b"SLPART";
/// Format version written after the magic; bumped on any incompatible layout change.
pub const VERSION: u16 = 1;
/// Magic + version.
const HEADER_LEN: u64 = 8;
/// index offset, index length, rows (u64 each), index CRC, footer CRC (u32 each), magic +
/// version (8).
const FOOTER_LEN: u64 = 40;
/// Bytes of one index entry without its two variable-length fields' contents.
const MIN_INDEX_ENTRY_LEN: usize = 8 + 8 + 8 + 4 + 8 + 8 + 4 + 4 + 4;

/// Most rows in one block. 8192 keeps a decoded block around a few MiB for typical records
/// (bounding per-scan memory), makes time/token pruning fine-grained enough that a needle
/// query decodes little, and still gives zstd and the dictionaries enough repetition
/// to compress well; the per-block index entry (~60 bytes + filter) stays negligible.
pub const MAX_BLOCK_ROWS: usize = 8192;
/// A block also ends once its records' approximate size reaches this, so a run of huge
/// records cannot make one block (and its decode) unboundedly large.
const MAX_BLOCK_BYTES: usize = 32 << 20;
/// zstd level 3 (zstd's default): on the ingest path's two shared cores, higher levels
/// cost several times the CPU for a few percent smaller parts, and merges recompress
/// everything anyway; decompression speed is the same at every level.
const ZSTD_LEVEL: i32 = 3;

/// Attribute column scope byte: resource attributes.
const SCOPE_RESOURCE: u8 = 0;
/// Attribute column scope byte: record attributes.
const SCOPE_RECORD: u8 = 1;

/// What a part holds, from its footer and block index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartMeta {
    pub rows: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// Smallest and largest record timestamp (ns); both 0 for a part without rows.
    pub min_ts: i64,
    pub max_ts: i64,
    pub blocks: u32,
}

/// One block's index entry, kept in memory while the part is open.
#[derive(Clone, Debug)]
struct BlockEntry {
    offset: u64,
    len: u64,
    raw_len: u64,
    rows: u32,
    min_ts: i64,
    max_ts: i64,
    crc: u32,
    service: String,
    filter: BlockFilter,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn corruption(path: &Path, offset: u64, reason: impl Into<String>) -> Error {
    Error::Corruption {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

fn header_bytes() -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..6].copy_from_slice(&MAGIC);
    h[6..].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// Splits records sorted by service into block ranges: never mixing services, at most
/// [`MAX_BLOCK_ROWS`] rows and about [`MAX_BLOCK_BYTES`] bytes each.
fn block_ranges(records: &[LogRecord]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, r) in records.iter().enumerate() {
        if i > start
            && (r.service != records[start].service
                || i - start >= MAX_BLOCK_ROWS
                || bytes >= MAX_BLOCK_BYTES)
        {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += r.approx_size();
    }
    if start < records.len() {
        out.push(start..records.len());
    }
    out
}

/// Encodes the columns of one block (uncompressed); see `docs/format/part.md`. The service
/// is not stored: every row of a block has the service of its index entry.
fn encode_block(rows: &[LogRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    put_uvarint(&mut out, rows.len() as u64);
    let ts: Vec<i64> = rows.iter().map(|r| r.timestamp).collect();
    encode_deltas(&mut out, &ts);
    for r in rows {
        put_ivarint(&mut out, r.observed_timestamp.wrapping_sub(r.timestamp));
    }
    out.extend(rows.iter().map(|r| r.severity_number));
    let sev: Vec<&str> = rows.iter().map(|r| r.severity_text.as_str()).collect();
    encode_dict(&mut out, &sev);
    let bodies: Vec<&str> = rows.iter().map(|r| r.body.as_str()).collect();
    encode_strings(&mut out, &bodies);
    let traces: Vec<Option<&[u8]>> = rows
        .iter()
        .map(|r| r.trace_id.as_ref().map(|t| &t.0[..]))
        .collect();
    encode_ids(&mut out, &traces);
    let spans: Vec<Option<&[u8]>> = rows
        .iter()
        .map(|r| r.span_id.as_ref().map(|s| &s.0[..]))
        .collect();
    encode_ids(&mut out, &spans);

    // One column per (scope, key), in (scope, key) order so decoding yields sorted rows.
    let mut columns: std::collections::BTreeMap<(u8, &str), Vec<Option<&Value>>> =
        std::collections::BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        for (scope, attrs) in [(SCOPE_RESOURCE, &r.resource), (SCOPE_RECORD, &r.attributes)] {
            for (k, v) in attrs.iter() {
                columns
                    .entry((scope, k))
                    .or_insert_with(|| vec![None; rows.len()])[i] = Some(v);
            }
        }
    }
    put_uvarint(&mut out, columns.len() as u64);
    for ((scope, key), values) in &columns {
        out.push(*scope);
        put_str(&mut out, key);
        let present: Vec<bool> = values.iter().map(Option::is_some).collect();
        encode_bitmap(&mut out, &present);
        let present_values: Vec<&Value> = values.iter().flatten().copied().collect();
        encode_values(&mut out, &present_values);
    }
    out
}

/// Presence bitmap then the fixed-size bytes of every present id.
fn encode_ids(out: &mut Vec<u8>, ids: &[Option<&[u8]>]) {
    let present: Vec<bool> = ids.iter().map(Option::is_some).collect();
    encode_bitmap(out, &present);
    for id in ids.iter().flatten() {
        out.extend_from_slice(id);
    }
}

fn decode_ids<const N: usize>(
    r: &mut Reader<'_>,
    n: usize,
    what: &str,
) -> DecodeResult<Vec<Option<[u8; N]>>> {
    let present = decode_bitmap(r, n, what)?;
    present
        .into_iter()
        .map(|p| {
            if p {
                r.array::<N>(what).map(Some)
            } else {
                Ok(None)
            }
        })
        .collect()
}

/// Decodes a block written by [`encode_block`] holding `n` rows of `service`.
/// Decodes a block's rows. With a `projection`, the body and the attribute columns it does
/// not ask for are stepped over, not built: most of a block's decoding cost is building
/// strings, and an aggregation reads one or two columns.
fn decode_block(
    raw: &[u8],
    n: usize,
    service: &str,
    projection: Option<&Projection>,
) -> DecodeResult<Vec<LogRecord>> {
    let mut r = Reader::new(raw);
    let stored = r.uvarint("row count")?;
    if stored != n as u64 {
        return Err(DecodeError(format!(
            "row count: block says {stored} rows, index says {n}"
        )));
    }
    let ts = decode_deltas(&mut r, n, "column timestamp")?;
    let mut observed = Vec::with_capacity(n);
    for t in &ts {
        observed.push(t.wrapping_add(r.ivarint("column observed_timestamp")?));
    }
    let severity = r.bytes(n, "column severity_number")?;
    let severity_text = decode_dict(&mut r, n, "column severity_text")?;
    let bodies = if projection.is_none_or(|p| p.body) {
        decode_strings(&mut r, n, "column body")?
    } else {
        skip_strings(&mut r, n, "column body")?;
        vec![String::new(); n]
    };
    let traces = decode_ids::<16>(&mut r, n, "column trace_id")?;
    let spans = decode_ids::<8>(&mut r, n, "column span_id")?;

    let mut resource: Vec<Vec<(String, Value)>> = vec![Vec::new(); n];
    let mut attributes: Vec<Vec<(String, Value)>> = vec![Vec::new(); n];
    // Each column takes at least a scope byte, a key length and a value tag.
    let columns = r.count(3, "attribute column count")?;
    for _ in 0..columns {
        let scope = r.u8("attribute column scope")?;
        let key = r.string("attribute column key")?;
        let (what, target) = match scope {
            SCOPE_RESOURCE => (format!("column resource.{key}"), &mut resource),
            SCOPE_RECORD => (format!("column attributes.{key}"), &mut attributes),
            s => {
                return Err(DecodeError(format!(
                    "column {key}: unknown attribute scope {s}"
                )))
            }
        };
        let present = decode_bitmap(&mut r, n, &what)?;
        let count = present.iter().filter(|p| **p).count();
        if projection.is_some_and(|p| !p.wants(&key)) {
            skip_values(&mut r, count, &what)?;
            continue;
        }
        let mut values = decode_values(&mut r, count, &what)?.into_iter();
        for (row, p) in target.iter_mut().zip(&present) {
            if *p {
                let v = values
                    .next()
                    .expect("BUG: decode_values returned fewer values than asked");
                row.push((key.clone(), v));
            }
        }
    }
    r.finish("block")?;

    let mut out = Vec::with_capacity(n);
    let rows = ts
        .into_iter()
        .zip(observed)
        .zip(severity)
        .zip(severity_text)
        .zip(bodies)
        .zip(traces.into_iter().zip(spans))
        .zip(resource.into_iter().zip(attributes));
    for ((((((timestamp, observed), sev), sev_text), body), (trace, span)), (res, attrs)) in rows {
        out.push(LogRecord {
            timestamp,
            observed_timestamp: observed,
            severity_number: *sev,
            severity_text: sev_text,
            service: service.to_string(),
            body,
            resource: Attributes::from_pairs(res),
            attributes: Attributes::from_pairs(attrs),
            trace_id: trace.map(TraceId),
            span_id: span.map(SpanId),
        });
    }
    Ok(out)
}

fn put_u32_len(out: &mut Vec<u8>, b: &[u8]) {
    let len = u32::try_from(b.len()).expect("BUG: index field longer than 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(b);
}

fn encode_index(entries: &[BlockEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let count = u32::try_from(entries.len()).expect("BUG: more than 2^32 blocks in a part");
    out.extend_from_slice(&count.to_le_bytes());
    for e in entries {
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.len.to_le_bytes());
        out.extend_from_slice(&e.raw_len.to_le_bytes());
        out.extend_from_slice(&e.rows.to_le_bytes());
        out.extend_from_slice(&e.min_ts.to_le_bytes());
        out.extend_from_slice(&e.max_ts.to_le_bytes());
        out.extend_from_slice(&e.crc.to_le_bytes());
        put_u32_len(&mut out, e.service.as_bytes());
        put_u32_len(&mut out, &e.filter.to_bytes());
    }
    out
}

fn decode_index(b: &[u8]) -> DecodeResult<Vec<BlockEntry>> {
    let mut r = Reader::new(b);
    let count = r.u32_le("block count")? as usize;
    if count > r.remaining() / MIN_INDEX_ENTRY_LEN {
        return Err(DecodeError(format!(
            "block count: {count} entries cannot fit in {} bytes",
            r.remaining()
        )));
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let what = format!("block {i}");
        let offset = r.u64_le(&what)?;
        let len = r.u64_le(&what)?;
        let raw_len = r.u64_le(&what)?;
        let rows = r.u32_le(&what)?;
        let min_ts = r.i64_le(&what)?;
        let max_ts = r.i64_le(&what)?;
        let crc = r.u32_le(&what)?;
        let service_len = r.u32_le(&what)? as usize;
        let service = std::str::from_utf8(r.bytes(service_len, &what)?)
            .map_err(|_| DecodeError(format!("{what}: service is not utf-8")))?
            .to_string();
        let filter_len = r.u32_le(&what)? as usize;
        let filter = BlockFilter::from_bytes(r.bytes(filter_len, &what)?)
            .map_err(|e| DecodeError(format!("{what}: {e}")))?;
        out.push(BlockEntry {
            offset,
            len,
            raw_len,
            rows,
            min_ts,
            max_ts,
            crc,
            service,
            filter,
        });
    }
    r.finish("index")?;
    Ok(out)
}

/// Sorts `records` by (service, timestamp) (stable: equal keys keep their order) and writes
/// a complete part file at `path`, then fsyncs it. The caller handles tmp + rename.
///
/// # Errors
/// [`Error::Io`] naming `path`.
pub fn write_part(path: &Path, records: &mut [LogRecord]) -> Result<PartMeta> {
    records.sort_by(|a, b| {
        a.service
            .cmp(&b.service)
            .then(a.timestamp.cmp(&b.timestamp))
    });
    let io = io_err(path);
    let file = File::create(path).map_err(&io)?;
    let mut w = BufWriter::new(file);
    w.write_all(&header_bytes()).map_err(&io)?;
    let mut pos = HEADER_LEN;
    let mut entries = Vec::new();
    let mut hashes = Vec::new();
    for range in block_ranges(records) {
        let rows = &records[range];
        let raw = encode_block(rows);
        let compressed = zstd::bulk::compress(&raw, ZSTD_LEVEL).map_err(&io)?;
        hashes.clear();
        for r in rows {
            add_record_tokens(r, &mut hashes);
        }
        entries.push(BlockEntry {
            offset: pos,
            len: compressed.len() as u64,
            raw_len: raw.len() as u64,
            rows: rows.len() as u32,
            min_ts: rows.iter().map(|r| r.timestamp).min().unwrap_or(0),
            max_ts: rows.iter().map(|r| r.timestamp).max().unwrap_or(0),
            crc: crc32fast::hash(&compressed),
            service: rows[0].service.clone(),
            filter: BlockFilter::build(&mut hashes),
        });
        w.write_all(&compressed).map_err(&io)?;
        pos += compressed.len() as u64;
    }
    let index = encode_index(&entries);
    w.write_all(&index).map_err(&io)?;
    let mut footer = Vec::with_capacity(FOOTER_LEN as usize);
    footer.extend_from_slice(&pos.to_le_bytes());
    footer.extend_from_slice(&(index.len() as u64).to_le_bytes());
    footer.extend_from_slice(&(records.len() as u64).to_le_bytes());
    footer.extend_from_slice(&crc32fast::hash(&index).to_le_bytes());
    let footer_crc = crc32fast::hash(&footer);
    footer.extend_from_slice(&footer_crc.to_le_bytes());
    footer.extend_from_slice(&header_bytes());
    debug_assert_eq!(footer.len() as u64, FOOTER_LEN);
    w.write_all(&footer).map_err(&io)?;
    let file = w.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(&io)?;
    Ok(meta_of(
        &entries,
        records.len() as u64,
        pos + index.len() as u64 + FOOTER_LEN,
    ))
}

fn meta_of(entries: &[BlockEntry], rows: u64, bytes: u64) -> PartMeta {
    PartMeta {
        rows,
        bytes,
        min_ts: entries.iter().map(|e| e.min_ts).min().unwrap_or(0),
        max_ts: entries.iter().map(|e| e.max_ts).max().unwrap_or(0),
        blocks: entries.len() as u32,
    }
}

/// An open part file: its meta and block index in memory, blocks read on demand with
/// positional reads (so it is `Send + Sync` and shared by concurrent scans).
pub struct Part {
    path: PathBuf,
    file: File,
    meta: PartMeta,
    blocks: Vec<BlockEntry>,
}

impl std::fmt::Debug for Part {
    /// Path and meta only: the block index (with its filters) is too large to print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Part")
            .field("path", &self.path)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl Part {
    /// Opens `path`, validating header magic/version, the footer (magic, CRC, index bounds)
    /// and the block index (CRC and every entry's bounds).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; [`Error::Corruption`] naming the file and
    /// the offset of the damaged header, footer or index.
    pub fn open(path: &Path) -> Result<Part> {
        let io = io_err(path);
        let file = File::open(path).map_err(&io)?;
        let len = file.metadata().map_err(&io)?.len();
        let bad = |offset: u64, reason: String| corruption(path, offset, reason);
        if len < HEADER_LEN + FOOTER_LEN {
            return Err(bad(
                0,
                format!("file is {len} bytes, shorter than header and footer"),
            ));
        }
        let read_at = |buf: &mut [u8], offset: u64| -> Result<()> {
            file.read_exact_at(buf, offset).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    corruption(path, offset, "file shrank while reading")
                } else {
                    io(e)
                }
            })
        };
        let mut header = [0u8; 8];
        read_at(&mut header, 0)?;
        if header[..6] != MAGIC {
            return Err(bad(0, "bad header magic, not a part file".into()));
        }
        let version = u16::from_le_bytes([header[6], header[7]]);
        if version != VERSION {
            return Err(bad(6, format!("unsupported part version {version}")));
        }

        let footer_at = len - FOOTER_LEN;
        let mut footer = [0u8; FOOTER_LEN as usize];
        read_at(&mut footer, footer_at)?;
        if footer[32..] != header_bytes() {
            return Err(bad(footer_at + 32, "bad footer magic".into()));
        }
        let word = |i: usize| u64::from_le_bytes(footer[i..i + 8].try_into().expect("8 bytes"));
        let half = |i: usize| u32::from_le_bytes(footer[i..i + 4].try_into().expect("4 bytes"));
        let footer_crc = crc32fast::hash(&footer[..28]);
        if footer_crc != half(28) {
            return Err(bad(
                footer_at,
                format!(
                    "footer crc mismatch: stored {:08x}, computed {footer_crc:08x}",
                    half(28)
                ),
            ));
        }
        let (index_at, index_len, rows, index_crc) = (word(0), word(8), word(16), half(24));
        if index_at < HEADER_LEN || index_at.checked_add(index_len) != Some(footer_at) {
            return Err(bad(
                footer_at,
                format!("index at {index_at} with length {index_len} does not end at the footer"),
            ));
        }
        let mut index = vec![0u8; index_len as usize];
        read_at(&mut index, index_at)?;
        let computed = crc32fast::hash(&index);
        if computed != index_crc {
            return Err(bad(
                index_at,
                format!("index crc mismatch: stored {index_crc:08x}, computed {computed:08x}"),
            ));
        }
        let blocks = decode_index(&index).map_err(|e| bad(index_at, format!("index: {e}")))?;

        let mut expected_offset = HEADER_LEN;
        let mut total_rows = 0u64;
        for (i, b) in blocks.iter().enumerate() {
            let problem = if b.offset != expected_offset {
                Some(format!(
                    "starts at {} instead of {expected_offset}",
                    b.offset
                ))
            } else if b.len > index_at - b.offset {
                Some(format!("length {} runs into the index", b.len))
            } else if b.rows == 0 || b.rows as usize > MAX_BLOCK_ROWS {
                Some(format!("row count {} outside 1..={MAX_BLOCK_ROWS}", b.rows))
            } else if b.min_ts > b.max_ts {
                Some(format!("min_ts {} above max_ts {}", b.min_ts, b.max_ts))
            } else {
                None
            };
            if let Some(p) = problem {
                return Err(bad(index_at, format!("index: block {i}: {p}")));
            }
            expected_offset = b.offset + b.len;
            total_rows += u64::from(b.rows);
        }
        if expected_offset != index_at {
            return Err(bad(
                index_at,
                format!("index: blocks end at {expected_offset}, index starts at {index_at}"),
            ));
        }
        if total_rows != rows {
            return Err(bad(
                footer_at,
                format!("footer says {rows} rows, blocks hold {total_rows}"),
            ));
        }
        let meta = meta_of(&blocks, rows, len);
        Ok(Part {
            path: path.to_path_buf(),
            file,
            meta,
            blocks,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn meta(&self) -> &PartMeta {
        &self.meta
    }

    /// Reads, checks and decodes one block.
    fn read_block(
        &self,
        b: &BlockEntry,
        projection: Option<&Projection>,
    ) -> Result<Vec<LogRecord>> {
        let raw = self.load_block(b)?;
        self.decode(b, &raw, projection)
    }

    /// Decodes rows of block `b` from its decompressed bytes.
    fn decode(
        &self,
        b: &BlockEntry,
        raw: &[u8],
        projection: Option<&Projection>,
    ) -> Result<Vec<LogRecord>> {
        decode_block(raw, b.rows as usize, &b.service, projection)
            .map_err(|e| corruption(&self.path, b.offset, e.0))
    }

    /// Reads block `b`, checks its CRC and decompresses it.
    fn load_block(&self, b: &BlockEntry) -> Result<Vec<u8>> {
        let bad = |reason: String| corruption(&self.path, b.offset, reason);
        // Bounded by the file size: open checked the block lies before the index.
        let mut buf = vec![0u8; b.len as usize];
        self.file.read_exact_at(&mut buf, b.offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                bad("block truncated".into())
            } else {
                io_err(&self.path)(e)
            }
        })?;
        let crc = crc32fast::hash(&buf);
        if crc != b.crc {
            return Err(bad(format!(
                "block crc mismatch: stored {:08x}, computed {crc:08x}",
                b.crc
            )));
        }
        // Streaming decode capped at the expected size + 1: a lying frame cannot make us
        // allocate more than it really decompresses to, nor more than the index promised.
        let mut raw = Vec::new();
        let decoder = zstd::stream::read::Decoder::with_buffer(&buf[..])
            .map_err(|e| bad(format!("block zstd: {e}")))?;
        decoder
            .take(b.raw_len.saturating_add(1))
            .read_to_end(&mut raw)
            .map_err(|e| bad(format!("block zstd: {e}")))?;
        if raw.len() as u64 != b.raw_len {
            return Err(bad(format!(
                "block decompresses to {} bytes, index says {}",
                raw.len(),
                b.raw_len
            )));
        }
        Ok(raw)
    }

    /// Visits every row with `start <= timestamp < end` of the blocks that may satisfy
    /// `req`: blocks are skipped by time range, by `req.services` and by the token filter
    /// (every token of every `req.required_tokens` entry must be in it). Stops when
    /// `visit` breaks.
    ///
    /// # Errors
    /// [`Error::Corruption`] with the block's offset for a damaged block; [`Error::Io`].
    pub fn scan(
        &self,
        start: i64,
        end: i64,
        req: &ScanRequest,
        visit: &mut dyn FnMut(&LogRecord) -> ControlFlow<()>,
    ) -> Result<ScanStats> {
        let needles: Vec<RequiredToken> = req
            .required_tokens
            .iter()
            .map(|t| RequiredToken::new(t))
            .collect();
        let mut stats = ScanStats::default();
        for b in &self.blocks {
            stats.blocks_total += 1;
            let skip = start >= end
                || b.max_ts < start
                || b.min_ts >= end
                || req
                    .services
                    .as_ref()
                    .is_some_and(|s| !s.contains(&b.service))
                || !needles
                    .iter()
                    .all(|t| t.may_be_in(|h| b.filter.contains_hash(h)));
            if skip {
                stats.blocks_skipped += 1;
                continue;
            }
            stats.scanned_bytes += b.len;
            let raw = self.load_block(b)?;
            let selected: Option<Vec<bool>> = match &req.prefilter {
                Some(pf) => {
                    // Times, levels, services and ids only: cheap next to every string.
                    let cheap = self.decode(b, &raw, Some(&Projection::default()))?;
                    let sel: Vec<bool> = cheap
                        .iter()
                        .map(|r| r.timestamp >= start && r.timestamp < end && pf.test(r))
                        .collect();
                    if !sel.contains(&true) {
                        continue;
                    }
                    Some(sel)
                }
                None => None,
            };
            let rows = self.decode(b, &raw, req.projection.as_ref())?;
            for (i, r) in rows.iter().enumerate() {
                if selected.as_ref().is_some_and(|s| !s[i]) {
                    continue;
                }
                if r.timestamp >= start && r.timestamp < end {
                    stats.scanned_rows += 1;
                    if visit(r).is_break() {
                        return Ok(stats);
                    }
                }
            }
        }
        Ok(stats)
    }

    /// Every row in stored order, i.e. sorted by (service, timestamp); used by merges.
    ///
    /// # Errors
    /// As [`Part::scan`].
    pub fn read_all(&self) -> Result<Vec<LogRecord>> {
        let mut out = Vec::with_capacity(self.meta.rows.min(1 << 20) as usize);
        for b in &self.blocks {
            out.extend(self.read_block(b, None)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rec(service: &str, ts: i64, body: &str) -> LogRecord {
        LogRecord {
            timestamp: ts,
            observed_timestamp: ts + 5,
            severity_number: 9,
            severity_text: "INFO".into(),
            service: service.into(),
            body: body.into(),
            ..Default::default()
        }
    }

    fn collect(
        part: &Part,
        start: i64,
        end: i64,
        req: &ScanRequest,
    ) -> (Vec<LogRecord>, ScanStats) {
        let mut out = Vec::new();
        let stats = part
            .scan(start, end, req, &mut |r| {
                out.push(r.clone());
                ControlFlow::Continue(())
            })
            .unwrap();
        (out, stats)
    }

    fn sorted(mut v: Vec<LogRecord>) -> Vec<LogRecord> {
        v.sort_by(|a, b| {
            a.service
                .cmp(&b.service)
                .then(a.timestamp.cmp(&b.timestamp))
        });
        v
    }

    /// 3 services x 10_000 rows: 6 blocks, ts = 1_000 * i.
    fn big_part(dir: &Path) -> (PathBuf, Vec<LogRecord>) {
        let mut recs = Vec::new();
        for s in ["api", "db", "web"] {
            for i in 0..10_000i64 {
                recs.push(rec(s, 1_000 * i, &format!("request {i} ok")));
            }
        }
        recs[25_000].body = "needle zebra".into();
        let path = dir.join("big.part");
        let mut copy = recs.clone();
        let meta = write_part(&path, &mut copy).unwrap();
        assert_eq!(meta.rows, 30_000);
        assert_eq!(meta.blocks, 6);
        (path, recs)
    }

    #[test]
    fn part_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Part>();
    }

    #[test]
    fn meta_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        let mut recs = vec![rec("b", 30, "x"), rec("a", 20, "y"), rec("b", 10, "z")];
        recs[0].trace_id = Some(TraceId([7; 16]));
        recs[0].span_id = Some(SpanId([0; 8]));
        recs[1].attributes.insert("n".into(), Value::Float(-0.0));
        let input = recs.clone();
        let meta = write_part(&path, &mut recs).unwrap();
        assert_eq!(recs, sorted(input.clone()));
        let part = Part::open(&path).unwrap();
        assert_eq!(*part.meta(), meta);
        assert_eq!(
            meta,
            PartMeta {
                rows: 3,
                bytes: std::fs::metadata(&path).unwrap().len(),
                min_ts: 10,
                max_ts: 30,
                blocks: 2
            }
        );
        assert_eq!(part.path(), path);
        let back = part.read_all().unwrap();
        assert_eq!(back, sorted(input));
        match back[0].attributes.get("n") {
            Some(Value::Float(f)) => assert!(f.is_sign_negative()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn empty_part_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        let meta = write_part(&path, &mut []).unwrap();
        assert_eq!((meta.rows, meta.blocks), (0, 0));
        let part = Part::open(&path).unwrap();
        assert!(part.read_all().unwrap().is_empty());
        let (rows, stats) = collect(&part, i64::MIN, i64::MAX, &ScanRequest::default());
        assert!(rows.is_empty());
        assert_eq!(stats, ScanStats::default());
    }

    #[test]
    fn scan_prunes_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let (path, recs) = big_part(dir.path());
        let part = Part::open(&path).unwrap();
        assert_eq!(part.read_all().unwrap(), sorted(recs));
        // Rows 100..200 of each service: only the first block of each service is read.
        let (rows, stats) = collect(&part, 100_000, 200_000, &ScanRequest::default());
        assert_eq!(rows.len(), 300);
        assert!(rows
            .iter()
            .all(|r| (100_000..200_000).contains(&r.timestamp)));
        assert_eq!(stats.scanned_rows, 300);
        assert_eq!((stats.blocks_total, stats.blocks_skipped), (6, 3));
        assert!(stats.scanned_bytes > 0);
        // An empty or inverted range reads nothing.
        let (rows, stats) = collect(&part, 5, 5, &ScanRequest::default());
        assert!(rows.is_empty());
        assert_eq!(stats.blocks_skipped, 6);
    }

    #[test]
    fn scan_prunes_by_service() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = big_part(dir.path());
        let part = Part::open(&path).unwrap();
        let req = ScanRequest {
            services: Some(vec!["db".into(), "nope".into()]),
            ..Default::default()
        };
        let (rows, stats) = collect(&part, i64::MIN, i64::MAX, &req);
        assert_eq!(rows.len(), 10_000);
        assert!(rows.iter().all(|r| r.service == "db"));
        assert_eq!((stats.blocks_total, stats.blocks_skipped), (6, 4));
    }

    #[test]
    fn scan_prunes_by_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let (path, recs) = big_part(dir.path());
        let part = Part::open(&path).unwrap();
        let req = ScanRequest {
            required_tokens: vec!["Zebra".into(), "needle".into()],
            ..Default::default()
        };
        let (rows, stats) = collect(&part, i64::MIN, i64::MAX, &req);
        assert_eq!(stats.blocks_skipped, stats.blocks_total - 1);
        assert!(rows.contains(&recs[25_000]));
        // A token that is nowhere prunes every block but the filter's false positives
        // (~0.4% a block, filters are seeded at random: allow two, p(>2) ~ 1e-6).
        let req = ScanRequest {
            required_tokens: vec!["absent_token_xyz".into()],
            ..Default::default()
        };
        let (rows, stats) = collect(&part, i64::MIN, i64::MAX, &req);
        assert!(rows.is_empty());
        assert!(stats.blocks_skipped >= 4, "{stats:?}");
    }

    #[test]
    fn scan_stops_on_break() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = big_part(dir.path());
        let part = Part::open(&path).unwrap();
        let mut seen = 0;
        let stats = part
            .scan(i64::MIN, i64::MAX, &ScanRequest::default(), &mut |_| {
                seen += 1;
                if seen == 3 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .unwrap();
        assert_eq!(seen, 3);
        assert_eq!(stats.scanned_rows, 3);
        assert_eq!(stats.blocks_total, 1);
    }

    fn corrupt_at(path: &Path, at: u64) {
        let mut bytes = std::fs::read(path).unwrap();
        bytes[at as usize] ^= 0x5a;
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn flipped_block_byte_names_the_block() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = big_part(dir.path());
        let part = Part::open(&path).unwrap();
        let victim = part.blocks[2].clone();
        drop(part);
        corrupt_at(&path, victim.offset + victim.len / 2);
        let part = Part::open(&path).unwrap();
        let err = part
            .scan(i64::MIN, i64::MAX, &ScanRequest::default(), &mut |_| {
                ControlFlow::Continue(())
            })
            .unwrap_err();
        match err {
            Error::Corruption {
                path: p,
                offset,
                reason,
            } => {
                assert_eq!(p, path);
                assert_eq!(offset, victim.offset);
                assert!(reason.contains("crc"), "{reason}");
            }
            other => panic!("{other}"),
        }
        assert!(part.read_all().is_err());
        // Blocks before the damaged one are still readable by a service-pruned scan.
        let req = ScanRequest {
            services: Some(vec!["api".into()]),
            ..Default::default()
        };
        assert_eq!(collect(&part, i64::MIN, i64::MAX, &req).0.len(), 10_000);
    }

    #[test]
    fn flipped_index_or_footer_byte_fails_open() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = big_part(dir.path());
        let len = std::fs::metadata(&path).unwrap().len();
        let index_at = Part::open(&path)
            .unwrap()
            .blocks
            .last()
            .map(|b| b.offset + b.len)
            .unwrap();
        let pristine = std::fs::read(&path).unwrap();
        for at in [
            0,
            7,
            index_at,
            index_at + 20,
            (index_at + len) / 2,
            len - 40,
            len - 20,
            len - 13,
            len - 1,
        ] {
            std::fs::write(&path, &pristine).unwrap();
            corrupt_at(&path, at);
            match Part::open(&path) {
                Err(Error::Corruption { path: p, .. }) => assert_eq!(p, path),
                other => panic!("flip at {at}: {other:?}"),
            }
        }
    }

    #[test]
    fn truncated_file_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = big_part(dir.path());
        let pristine = std::fs::read(&path).unwrap();
        for keep in [0, 10, 47, pristine.len() / 2, pristine.len() - 1] {
            std::fs::write(&path, &pristine[..keep]).unwrap();
            assert!(
                matches!(Part::open(&path), Err(Error::Corruption { .. })),
                "kept {keep}"
            );
        }
    }

    #[test]
    fn missing_file_is_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope");
        assert!(matches!(Part::open(&path), Err(Error::Io { path: p, .. }) if p == path));
    }

    fn attr_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::Int),
            prop_oneof![
                (-1e9f64..1e9),
                Just(-0.0),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY)
            ]
            .prop_map(Value::Float),
            any::<bool>().prop_map(Value::Bool),
            "[a-d]{0,3}".prop_map(Value::Str),
            ".{0,10}".prop_map(Value::Str),
        ]
    }

    fn attrs() -> impl Strategy<Value = Attributes> {
        prop::collection::vec(("[a-e]{1,2}", attr_value()), 0..4).prop_map(Attributes::from_pairs)
    }

    fn record() -> impl Strategy<Value = LogRecord> {
        (
            (-5i64..5, any::<i64>(), any::<i64>(), any::<u8>()),
            ("(INFO|WARN|)", "[a-c]{0,2}", ".{0,20}"),
            (attrs(), attrs()),
            (
                prop::option::of(any::<[u8; 16]>()),
                prop::option::of(any::<[u8; 8]>()),
            ),
        )
            .prop_map(
                |((bucket, ts, obs, sev), (st, svc, body), (res, att), (t, s))| {
                    LogRecord {
                        // Mix of clustered and extreme timestamps.
                        timestamp: if bucket == 0 {
                            ts
                        } else {
                            bucket * 1_000 + ts % 7
                        },
                        observed_timestamp: obs,
                        severity_number: sev,
                        severity_text: st,
                        service: svc,
                        body,
                        resource: res,
                        attributes: att,
                        trace_id: t.map(TraceId),
                        span_id: s.map(SpanId),
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn write_open_read_all_round_trips(recs in prop::collection::vec(record(), 0..60)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p");
            let mut v = recs.clone();
            let meta = write_part(&path, &mut v).unwrap();
            let part = Part::open(&path).unwrap();
            prop_assert_eq!(part.meta(), &meta);
            prop_assert_eq!(meta.rows, recs.len() as u64);
            prop_assert_eq!(part.read_all().unwrap(), sorted(recs.clone()));
            // Every record is found by a scan requiring its own body tokens.
            for r in recs.iter().filter(|r| r.timestamp != i64::MAX) {
                let req = ScanRequest { required_tokens: vec![r.body.clone()], services: Some(vec![r.service.clone()]), projection: None, prefilter: None };
                let (rows, _) = collect(&part, r.timestamp, r.timestamp.saturating_add(1), &req);
                prop_assert!(rows.contains(r));
            }
        }

        #[test]
        fn flipped_bytes_never_panic(recs in prop::collection::vec(record(), 1..30), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p");
            let mut v = recs.clone();
            write_part(&path, &mut v).unwrap();
            let mut bytes = std::fs::read(&path).unwrap();
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
            std::fs::write(&path, &bytes).unwrap();
            // A single flipped bit is always caught by a CRC: open or read must fail.
            let result = Part::open(&path).and_then(|p| p.read_all());
            prop_assert!(matches!(result, Err(Error::Corruption { .. })), "flip at {}: {:?}", i, result.map(|r| r.len()));
        }

        #[test]
        fn garbage_files_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 0..300), magic in any::<bool>()) {
            if magic && bytes.len() >= 48 {
                let n = bytes.len();
                bytes[..8].copy_from_slice(&header_bytes());
                bytes[n - 8..].copy_from_slice(&header_bytes());
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p");
            std::fs::write(&path, &bytes).unwrap();
            if let Ok(p) = Part::open(&path) {
                let _ = p.read_all();
            }
        }
    }

    #[test]
    fn prefilter_visits_only_passing_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.part");
        let t1 = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        let t2 = TraceId::from_hex("00000000000000000000000000000002").unwrap();
        let mut recs: Vec<LogRecord> = (0..20_000)
            .map(|i| {
                let mut r = rec("s", i, &format!("row {i}"));
                r.trace_id = match i {
                    17_000 => Some(t1),
                    _ if i % 2 == 0 => Some(t2),
                    _ => None,
                };
                r
            })
            .collect();
        write_part(&path, &mut recs).unwrap();
        let part = Part::open(&path).unwrap();
        let mut seen = Vec::new();
        let req = ScanRequest {
            prefilter: Some(Prefilter::new(move |r| r.trace_id == Some(t1))),
            ..Default::default()
        };
        part.scan(0, i64::MAX, &req, &mut |r| {
            seen.push(r.timestamp);
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(seen, [17_000]);
        let req = ScanRequest {
            prefilter: Some(Prefilter::new(move |r| r.trace_id == Some(t2))),
            ..Default::default()
        };
        let mut n = 0;
        part.scan(0, i64::MAX, &req, &mut |_| {
            n += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(n, 9_999, "even rows but 17000 carry t2");
    }

    #[test]
    fn projection_leaves_out_unread_columns() {
        let mut recs: Vec<LogRecord> = (0..100)
            .map(|i| {
                let mut r = rec("s", i, &format!("body {i}"));
                r.attributes
                    .insert("status".into(), Value::Int(200 + i % 3));
                r.attributes
                    .insert("path".into(), Value::Str(format!("/p{}", i % 7)));
                r.attributes
                    .insert("dur".into(), Value::Float(i as f64 / 3.0));
                r.attributes.insert(
                    "mix".into(),
                    if i % 2 == 0 {
                        Value::Bool(true)
                    } else {
                        Value::Str(format!("m{i}"))
                    },
                );
                r.resource.insert("host".into(), Value::Str("h1".into()));
                r
            })
            .collect();
        let raw = encode_block(&recs);
        let p = Projection {
            body: false,
            attributes: vec!["status".into(), "host".into()],
        };
        let got = decode_block(&raw, 100, "s", Some(&p)).unwrap();
        for (g, want) in got.iter().zip(recs.iter_mut()) {
            assert_eq!(g.body, "");
            assert_eq!(g.timestamp, want.timestamp);
            assert_eq!(g.attributes.len(), 1);
            assert_eq!(g.attributes.get("status"), want.attributes.get("status"));
            assert_eq!(g.resource.get("host"), want.resource.get("host"));
        }
        let all = Projection {
            body: true,
            attributes: vec![
                "status".into(),
                "path".into(),
                "dur".into(),
                "mix".into(),
                "host".into(),
            ],
        };
        assert_eq!(decode_block(&raw, 100, "s", Some(&all)).unwrap(), recs);
        for cut in 0..raw.len() {
            assert!(
                decode_block(&raw[..cut], 100, "s", Some(&p)).is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn decode_block_rejects_garbage_without_panicking() {
        let recs = vec![rec("s", 1, "hello"), rec("s", 2, "world")];
        let raw = encode_block(&recs);
        assert_eq!(decode_block(&raw, 2, "s", None).unwrap(), recs);
        assert!(decode_block(&raw, 3, "s", None).is_err());
        for cut in 0..raw.len() {
            assert!(
                decode_block(&raw[..cut], 2, "s", None).is_err(),
                "cut {cut}"
            );
        }
        let mut trailing = raw.clone();
        trailing.push(0);
        assert!(decode_block(&trailing, 2, "s", None).is_err());
    }
}
