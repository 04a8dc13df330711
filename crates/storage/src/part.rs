//! The immutable columnar part file: a sorted run of log records of one tenant/day, split
//! into blocks whose columns are compressed one by one, with a block index (time range,
//! service, token filter, column directory with CRCs) and a trace-id dictionary read at open,
//! so scans skip blocks without touching them and decompress only the columns they read.
//!
//! Fed by: the event store's flushes and merges ([`write_part`], [`write_part_with_level`]).
//! Feeds: queries ([`Part::scan`]) and merges ([`Part::read_all`]). Byte layout:
//! `docs/format/part.md`.
//!
//! The layout is hand-written (not serde/bincode) because it must stay byte-stable for the
//! whole retention period, needs positional reads of single columns, and must validate
//! every length and checksum against damaged files.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::{ControlFlow, Range};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sightline_model::{Attributes, LogRecord, SpanId, TraceId, Value};

#[cfg(test)]
use crate::api::Prefilter;
use crate::api::{Projection, ScanRequest, ScanStats};
use crate::bloom::{BlockFilter, RequiredToken, TokenSet};
use crate::encoding::{
    decode_bitmap, decode_dict_ids, decode_scaled_deltas, decode_values_where, encode_bitmap,
    encode_blob_strings, encode_dict, encode_scaled_deltas, encode_values, put_str, put_uvarint,
    BlobStrings, DecodeError, DecodeResult, Reader,
};
use crate::error::{Error, Result};

/// First six bytes of a part file (and of its footer's last eight bytes).
pub const MAGIC: [u8; 6] = *b"SLPART";
/// Format version written after the magic; bumped on any incompatible layout change.
/// Version 1 (one zstd frame per block) is not readable any more.
pub const VERSION: u16 = 3;
/// The older version this build still reads (trace ids inline in the blocks, a trace-id
/// index of 4-byte id prefixes); merges rewrite such parts as [`VERSION`].
const VERSION_V2: u16 = 2;
/// Magic + version.
const HEADER_LEN: u64 = 8;
/// index offset, index length, rows (u64 each), index CRC, footer CRC (u32 each), magic +
/// version (8).
const FOOTER_LEN: u64 = 40;
/// Bytes of one index entry without its variable-length fields' contents: offset, length,
/// rows, min/max ts, service length, filter length, column count (at least 1 byte) and
/// the seven fixed columns (kind, codec, two 1-byte varints, CRC: 8 bytes each).
const MIN_INDEX_ENTRY_LEN: usize = 8 + 8 + 4 + 8 + 8 + 4 + 4 + 1 + 7 * 8;

/// Most rows in one block. 8192 keeps a decoded block around a few MiB for typical records
/// (bounding per-scan memory), makes time/token pruning fine-grained enough that a needle
/// query decodes little, and still gives zstd and the dictionaries enough repetition
/// to compress well; the per-block index entry (~60 bytes + directory + filter) stays
/// negligible.
pub const MAX_BLOCK_ROWS: usize = 8192;
/// A block also ends once its records' approximate size reaches this, so a run of huge
/// records cannot make one block (and its decode) unboundedly large.
const MAX_BLOCK_BYTES: usize = 32 << 20;
/// zstd level of [`write_part`] (flushes). Measured on a 20 MB flush part of the 1 GiB bench
/// logs (format 3): level 3 19.96 MB, 5 19.25 MB (-3.5%), 6 18.73 MB (-6.2%), for +24% /
/// +40% of the part's write time. Ingest is bound by the flush, so the flush stays at 3: a
/// 1 GiB bench run at level 5 stored 3.5% less but ingested ~30% fewer rows/s; merges
/// (level 9) recompress what stays. Decompression speed is the same at every level.
pub const FLUSH_ZSTD_LEVEL: i32 = 3;
/// zstd level for merges (background, off the ingest path): measured on the bench logs
/// data, see `docs/format/part.md`.
pub const MERGE_ZSTD_LEVEL: i32 = 9;
/// A column chunk decompresses to at most this many bytes; a directory entry claiming more
/// is corrupt (it bounds the allocation a damaged index can cause). One block holds at most
/// [`MAX_BLOCK_BYTES`] of records plus one arbitrarily large record, so this only limits
/// single records to ~1 GiB, far above any ingest limit.
const MAX_COLUMN_RAW_LEN: u64 = 1 << 30;

/// Column chunk codec: the raw column bytes (when zstd would not make them smaller).
const CODEC_RAW: u8 = 0;
/// Column chunk codec: one zstd frame.
const CODEC_ZSTD: u8 = 1;

/// Column kinds, in the order every block stores its fixed columns (the kind byte of the
/// first seven directory entries is their position).
const COL_TIMESTAMP: usize = 0;
const COL_OBSERVED: usize = 1;
const COL_SEVERITY: usize = 2;
const COL_SEVERITY_TEXT: usize = 3;
const COL_BODY: usize = 4;
const COL_TRACE_ID: usize = 5;
const COL_SPAN_ID: usize = 6;
const FIXED_COLUMNS: usize = 7;
/// Column names used in error messages, by fixed kind.
const FIXED_NAMES: [&str; FIXED_COLUMNS] = [
    "timestamp",
    "observed_timestamp",
    "severity_number",
    "severity_text",
    "body",
    "trace_id",
    "span_id",
];
/// Kind byte of a resource attribute column.
const KIND_RESOURCE: u8 = 7;
/// Kind byte of a record attribute column.
const KIND_RECORD: u8 = 8;

/// Value-column tag (attribute columns only): every present value is a `Str`, each either
/// a reference into its row's body (`uvarint` byte offset + 1, `uvarint` byte length) or
/// `0` and the string inline; see [`encode_body_refs`]. Not a tag of `encoding.rs`:
/// decoding it needs the body column.
const TAG_STR_BODY_REF: u8 = 9;
/// Share of a string column's values that must occur in their bodies for
/// [`TAG_STR_BODY_REF`]: below it the inline strings would lose zstd's view of the column.
const MIN_BODY_REF_SHARE_PCT: usize = 90;

/// A part's trace-id dictionary: every distinct trace id of the part once, sorted, with the
/// blocks holding it. Block trace-id columns store indexes into `ids`: a trace's lines sit
/// in several services' blocks, so per block zstd rarely saw an id twice and the random
/// 16-byte ids were ~15% of a part; stored once per part they cost 16 bytes per trace
/// plus ~3 bytes per row. Lookups are exact (binary search), so a trace-id scan reads
/// only blocks that hold the id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct TraceDict {
    ids: Vec<[u8; 16]>,
    /// The blocks of `ids[i]` are `blocks[starts[i]..starts[i + 1]]` (ascending);
    /// `starts.len() == ids.len() + 1`.
    starts: Vec<u32>,
    blocks: Vec<u32>,
}

/// How a part finds its trace ids.
#[derive(Clone, Debug, PartialEq, Eq)]
enum TraceLookup {
    /// Version 3: the part's dictionary; block columns hold indexes into it.
    Dict(TraceDict),
    /// Version 2: (first 4 bytes of the id big-endian, block), sorted and unique; block
    /// columns hold the 16-byte ids. A key may match another id (one more block read).
    KeysV2(Vec<(u32, u32)>),
}

impl TraceDict {
    /// Builds the dictionary from sorted unique `ids` and sorted unique (id index, block)
    /// pairs.
    fn new(ids: Vec<[u8; 16]>, pairs: &[(u32, u32)]) -> TraceDict {
        let mut starts = Vec::with_capacity(ids.len() + 1);
        let mut blocks = Vec::with_capacity(pairs.len());
        let mut at = 0;
        for i in 0..ids.len() as u32 {
            starts.push(blocks.len() as u32);
            while at < pairs.len() && pairs[at].0 == i {
                blocks.push(pairs[at].1);
                at += 1;
            }
        }
        starts.push(blocks.len() as u32);
        assert_eq!(at, pairs.len(), "BUG: trace pair outside the dictionary");
        TraceDict {
            ids,
            starts,
            blocks,
        }
    }

    /// The blocks holding `id` (empty when the part does not hold it).
    fn blocks_of(&self, id: &[u8; 16]) -> &[u32] {
        match self.ids.binary_search(id) {
            Ok(i) => &self.blocks[self.starts[i] as usize..self.starts[i + 1] as usize],
            Err(_) => &[],
        }
    }
}

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

/// One column chunk of a block, from the block's column directory.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Column {
    /// 0..=6: the fixed columns (`COL_*`), [`KIND_RESOURCE`] or [`KIND_RECORD`].
    kind: u8,
    /// Attribute key; empty for fixed columns.
    key: String,
    codec: u8,
    /// File offset of the chunk (not stored: chunks follow each other from the block's
    /// offset).
    offset: u64,
    len: u64,
    raw_len: u64,
    crc: u32,
}

impl Column {
    /// The name used in error messages: `body`, `resource.host`, `attributes.status`.
    fn name(&self) -> String {
        match self.kind {
            KIND_RESOURCE => format!("resource.{}", self.key),
            KIND_RECORD => format!("attributes.{}", self.key),
            k => FIXED_NAMES
                .get(usize::from(k))
                .map_or_else(|| format!("kind {k}"), |n| (*n).to_string()),
        }
    }
}

/// One block's index entry, kept in memory while the part is open.
#[derive(Clone, Debug)]
struct BlockEntry {
    offset: u64,
    len: u64,
    rows: u32,
    min_ts: i64,
    max_ts: i64,
    service: String,
    filter: BlockFilter,
    columns: Vec<Column>,
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
    header_bytes_of(VERSION)
}

fn header_bytes_of(version: u16) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..6].copy_from_slice(&MAGIC);
    h[6..].copy_from_slice(&version.to_le_bytes());
    h
}

/// Splits records sorted by service into block ranges: never mixing services, at most
/// `max_rows` rows and about [`MAX_BLOCK_BYTES`] bytes each.
fn block_ranges(records: &[&LogRecord], max_rows: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, r) in records.iter().enumerate() {
        if i > start
            && (r.service != records[start].service
                || i - start >= max_rows
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

/// One column of a block before compression.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RawColumn {
    kind: u8,
    key: String,
    bytes: Vec<u8>,
}

/// Encodes the columns of one block (uncompressed), fixed columns first, then one column
/// per attribute (scope, key) in that order; see `docs/format/part.md`. The service is not
/// stored: every row of a block has the service of its index entry.
fn encode_columns(rows: &[&LogRecord], trace_dict: &[[u8; 16]]) -> Vec<RawColumn> {
    let fixed = |kind: usize, bytes: Vec<u8>| RawColumn {
        kind: kind as u8,
        key: String::new(),
        bytes,
    };
    let mut out = Vec::new();
    let mut b = Vec::new();
    let ts: Vec<i64> = rows.iter().map(|r| r.timestamp).collect();
    encode_scaled_deltas(&mut b, &ts);
    out.push(fixed(COL_TIMESTAMP, std::mem::take(&mut b)));
    let observed: Vec<i64> = rows.iter().map(|r| r.observed_timestamp).collect();
    encode_scaled_deltas(&mut b, &observed);
    out.push(fixed(COL_OBSERVED, std::mem::take(&mut b)));
    out.push(fixed(
        COL_SEVERITY,
        rows.iter().map(|r| r.severity_number).collect(),
    ));
    let sev: Vec<&str> = rows.iter().map(|r| r.severity_text.as_str()).collect();
    encode_dict(&mut b, &sev);
    out.push(fixed(COL_SEVERITY_TEXT, std::mem::take(&mut b)));
    let bodies: Vec<&str> = rows.iter().map(|r| r.body.as_str()).collect();
    encode_blob_strings(&mut b, &bodies);
    out.push(fixed(COL_BODY, std::mem::take(&mut b)));
    encode_trace_refs(&mut b, rows, trace_dict);
    out.push(fixed(COL_TRACE_ID, std::mem::take(&mut b)));
    let spans: Vec<Option<&[u8]>> = rows
        .iter()
        .map(|r| r.span_id.as_ref().map(|s| &s.0[..]))
        .collect();
    encode_ids(&mut b, &spans);
    out.push(fixed(COL_SPAN_ID, std::mem::take(&mut b)));

    // One column per (scope, key), in (scope, key) order so decoding yields sorted rows.
    let mut columns: BTreeMap<(u8, &str), Vec<Option<&Value>>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        for (kind, attrs) in [(KIND_RESOURCE, &r.resource), (KIND_RECORD, &r.attributes)] {
            for (k, v) in attrs.iter() {
                columns
                    .entry((kind, k))
                    .or_insert_with(|| vec![None; rows.len()])[i] = Some(v);
            }
        }
    }
    for ((kind, key), values) in &columns {
        let present: Vec<bool> = values.iter().map(Option::is_some).collect();
        encode_bitmap(&mut b, &present);
        let present_values: Vec<&Value> = values.iter().flatten().copied().collect();
        if !encode_body_refs(&mut b, values, &bodies) {
            encode_values(&mut b, &present_values);
        }
        out.push(RawColumn {
            kind: *kind,
            key: (*key).to_string(),
            bytes: std::mem::take(&mut b),
        });
    }
    out
}

/// Writes a string attribute column whose values (nearly all) occur in their row's body
/// as references into the body ([`TAG_STR_BODY_REF`]) and returns true; returns false,
/// writing nothing, when the column is not all strings or fewer than
/// [`MIN_BODY_REF_SHARE_PCT`] percent of its values are found. Parsed formats (nginx,
/// syslog, templated messages) keep the whole line as the body and copy fields of it into
/// attributes; storing those copies again cost as much as the rest of the attributes.
fn encode_body_refs(out: &mut Vec<u8>, values: &[Option<&Value>], bodies: &[&str]) -> bool {
    let mut refs = vec![TAG_STR_BODY_REF];
    let (mut found, mut total) = (0usize, 0usize);
    for (v, body) in values.iter().zip(bodies) {
        let Some(v) = v else { continue };
        let Value::Str(s) = v else { return false };
        total += 1;
        match body.find(s.as_str()).filter(|_| !s.is_empty()) {
            Some(off) => {
                found += 1;
                put_uvarint(&mut refs, off as u64 + 1);
                put_uvarint(&mut refs, s.len() as u64);
            }
            None => {
                put_uvarint(&mut refs, 0);
                put_str(&mut refs, s);
            }
        }
    }
    if total == 0 || found * 100 < total * MIN_BODY_REF_SHARE_PCT {
        return false;
    }
    out.extend_from_slice(&refs);
    true
}

/// Decodes the values of a [`TAG_STR_BODY_REF`] column (after its tag byte) for the
/// present rows `rows`, building only those `keep` marks; `bodies` holds the block's
/// bodies.
fn decode_body_refs(
    r: &mut Reader<'_>,
    rows: &[usize],
    keep: &[bool],
    bodies: &BlobStrings<'_>,
    what: &str,
) -> DecodeResult<Vec<Option<Value>>> {
    let mut out = Vec::with_capacity(rows.len());
    for (&row, &k) in rows.iter().zip(keep) {
        let off = r.uvarint(what)?;
        if off == 0 {
            let b = r.len_prefixed(what)?;
            out.push(if k {
                let s = std::str::from_utf8(b).map_err(|_| {
                    DecodeError(format!("{what}: invalid utf-8 at byte {}", r.pos()))
                })?;
                Some(Value::Str(s.to_string()))
            } else {
                None
            });
            continue;
        }
        let len = r.uvarint(what)?;
        if !k {
            out.push(None);
            continue;
        }
        let body = bodies.get(row)?;
        let start = usize::try_from(off - 1).ok();
        let s = start
            .and_then(|st| Some(st..st.checked_add(usize::try_from(len).ok()?)?))
            .and_then(|range| body.get(range))
            .ok_or_else(|| {
                DecodeError(format!(
                    "{what}: body reference {}+{len} outside row {row}'s body at byte {}",
                    off - 1,
                    r.pos()
                ))
            })?;
        out.push(Some(Value::Str(s.to_string())));
    }
    Ok(out)
}

/// The trace-id column: presence bitmap, then the `uvarint` index into `dict` (sorted,
/// holding every id of `rows`) of every present id.
fn encode_trace_refs(out: &mut Vec<u8>, rows: &[&LogRecord], dict: &[[u8; 16]]) {
    let present: Vec<bool> = rows.iter().map(|r| r.trace_id.is_some()).collect();
    encode_bitmap(out, &present);
    for t in rows.iter().filter_map(|r| r.trace_id.as_ref()) {
        let i = dict
            .binary_search(&t.0)
            .expect("BUG: trace id missing from the part's dictionary");
        put_uvarint(out, i as u64);
    }
}

fn decode_trace_refs(
    r: &mut Reader<'_>,
    n: usize,
    dict: &[[u8; 16]],
    what: &str,
) -> DecodeResult<Vec<Option<[u8; 16]>>> {
    let present = decode_bitmap(r, n, what)?;
    present
        .into_iter()
        .map(|p| {
            if !p {
                return Ok(None);
            }
            let i = r.uvarint(what)?;
            usize::try_from(i)
                .ok()
                .and_then(|i| dict.get(i))
                .map(|id| Some(*id))
                .ok_or_else(|| {
                    DecodeError(format!(
                        "{what}: trace index {i} outside the part's {} trace ids",
                        dict.len()
                    ))
                })
        })
        .collect()
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
    let k = present.iter().filter(|p| **p).count();
    let bytes = r.bytes(k.saturating_mul(N), what)?;
    let mut ids = bytes.chunks_exact(N);
    Ok(present
        .into_iter()
        .map(|p| {
            p.then(|| {
                ids.next()
                    .expect("BUG: fewer ids than present bits")
                    .try_into()
                    .expect("BUG: chunk of N bytes")
            })
        })
        .collect())
}

/// The decoded always-read columns of a block (all but body and attributes).
struct CheapColumns {
    observed: Vec<i64>,
    severity: Vec<u8>,
    severity_dict: Vec<String>,
    severity_ids: Vec<u32>,
    traces: Vec<Option<[u8; 16]>>,
    spans: Vec<Option<[u8; 8]>>,
}

/// Reads the columns of one block on demand. `load` returns a column's raw (decompressed,
/// checked) bytes by directory position; `bad` turns a decode error of a column into the
/// caller's error (a `Corruption` naming the file and the chunk's offset). Kept apart from
/// file access so unit tests can decode encoded columns directly.
struct BlockDecoder<'a> {
    columns: &'a [Column],
    n: usize,
    service: &'a str,
    /// The part's trace ids, which the trace-id column indexes; `None` for a version 2
    /// part (16-byte ids inline).
    trace_dict: Option<&'a [[u8; 16]]>,
    load: &'a mut dyn FnMut(usize) -> Result<Vec<u8>>,
    bad: &'a dyn Fn(usize, DecodeError) -> Error,
}

impl BlockDecoder<'_> {
    /// Loads column `idx` and decodes it whole with `f`, which must consume every byte.
    fn decode<T>(
        &mut self,
        idx: usize,
        f: impl FnOnce(&mut Reader<'_>, usize, &str) -> DecodeResult<T>,
    ) -> Result<T> {
        let raw = (self.load)(idx)?;
        let what = format!("column {}", self.columns[idx].name());
        let mut r = Reader::new(&raw);
        let v = f(&mut r, self.n, &what).and_then(|v| r.finish(&what).map(|()| v));
        v.map_err(|e| (self.bad)(idx, e))
    }

    fn timestamps(&mut self) -> Result<Vec<i64>> {
        self.decode(COL_TIMESTAMP, decode_scaled_deltas)
    }

    fn traces(&mut self) -> Result<Vec<Option<[u8; 16]>>> {
        match self.trace_dict {
            Some(dict) => self.decode(COL_TRACE_ID, |r, n, w| decode_trace_refs(r, n, dict, w)),
            None => self.decode(COL_TRACE_ID, decode_ids::<16>),
        }
    }

    fn cheap(&mut self, traces: Option<Vec<Option<[u8; 16]>>>) -> Result<CheapColumns> {
        let observed = self.decode(COL_OBSERVED, decode_scaled_deltas)?;
        let severity = self.decode(COL_SEVERITY, |r, n, w| Ok(r.bytes(n, w)?.to_vec()))?;
        let (severity_dict, severity_ids) = self.decode(COL_SEVERITY_TEXT, decode_dict_ids)?;
        let traces = match traces {
            Some(t) => t,
            None => self.traces()?,
        };
        let spans = self.decode(COL_SPAN_ID, decode_ids::<8>)?;
        Ok(CheapColumns {
            observed,
            severity,
            severity_dict,
            severity_ids,
            traces,
            spans,
        })
    }

    /// Fills `rec` with the cheap fields of row `i` (everything but body and attributes).
    fn fill_cheap(&self, rec: &mut LogRecord, ts: &[i64], c: &CheapColumns, i: usize) {
        rec.timestamp = ts[i];
        rec.observed_timestamp = c.observed[i];
        rec.severity_number = c.severity[i];
        rec.severity_text
            .clone_from(&c.severity_dict[c.severity_ids[i] as usize]);
        if rec.service != self.service {
            rec.service.clear();
            rec.service.push_str(self.service);
        }
        rec.trace_id = c.traces[i].map(TraceId);
        rec.span_id = c.spans[i].map(SpanId);
    }

    /// Builds the rows `sel` (ascending row numbers) with the body and the attribute
    /// columns `projection` asks for (everything without one) and hands each to `emit`,
    /// reusing one record; stops when `emit` breaks. Only columns that are read are
    /// loaded, and only selected values are built.
    fn materialise(
        &mut self,
        ts: &[i64],
        cheap: &CheapColumns,
        sel: &[usize],
        projection: Option<&Projection>,
        emit: &mut dyn FnMut(&mut LogRecord) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>> {
        let n = self.n;
        let mut mask = vec![false; n];
        for &i in sel {
            mask[i] = true;
        }
        // The attribute columns read, loaded first: one referencing the body needs it
        // even when the body itself is not read.
        let mut attr_raw = Vec::new();
        for idx in FIXED_COLUMNS..self.columns.len() {
            if projection.is_some_and(|p| !p.wants(&self.columns[idx].key)) {
                continue;
            }
            attr_raw.push((idx, (self.load)(idx)?));
        }
        let want_body = projection.is_none_or(|p| p.body);
        let body_raw = if want_body || attr_raw.iter().any(|(_, raw)| refs_body(raw, n)) {
            Some((self.load)(COL_BODY)?)
        } else {
            None
        };
        let bodies = match &body_raw {
            Some(raw) => {
                let what = "column body";
                let mut r = Reader::new(raw);
                let b = BlobStrings::decode(&mut r, n, what)
                    .and_then(|b| r.finish(what).map(|()| b))
                    .map_err(|e| (self.bad)(COL_BODY, e))?;
                Some(b)
            }
            None => None,
        };
        // Position in `sel` of each selected row.
        let mut pos = vec![u32::MAX; n];
        for (p, &i) in sel.iter().enumerate() {
            pos[i] = p as u32;
        }
        let mut resource: Vec<Attributes> = vec![Attributes::new(); sel.len()];
        let mut attributes: Vec<Attributes> = vec![Attributes::new(); sel.len()];
        for (idx, raw) in &attr_raw {
            let c = &self.columns[*idx];
            let what = format!("column {}", c.name());
            let mut r = Reader::new(raw);
            let decoded = (|| {
                let present = decode_bitmap(&mut r, n, &what)?;
                let rows: Vec<usize> = (0..n).filter(|&i| present[i]).collect();
                let keep: Vec<bool> = rows.iter().map(|&i| mask[i]).collect();
                let values = if r.remaining() > 0 && raw[r.pos()] == TAG_STR_BODY_REF {
                    r.u8(&what)?;
                    let bodies = bodies
                        .as_ref()
                        .expect("BUG: body not loaded for a column referencing it");
                    decode_body_refs(&mut r, &rows, &keep, bodies, &what)?
                } else {
                    decode_values_where(&mut r, rows.len(), &what, Some(&keep))?
                };
                r.finish(&what)?;
                Ok((rows, values))
            })();
            let (rows, values) = decoded.map_err(|e| (self.bad)(*idx, e))?;
            let target = if c.kind == KIND_RESOURCE {
                &mut resource
            } else {
                &mut attributes
            };
            for (i, v) in rows.into_iter().zip(values) {
                if let Some(v) = v {
                    target[pos[i] as usize].insert(c.key.clone(), v);
                }
            }
        }
        let mut rec = LogRecord::default();
        for (p, &i) in sel.iter().enumerate() {
            self.fill_cheap(&mut rec, ts, cheap, i);
            rec.body.clear();
            if let Some(b) = bodies.as_ref().filter(|_| want_body) {
                rec.body
                    .push_str(b.get(i).map_err(|e| (self.bad)(COL_BODY, e))?);
            }
            rec.resource = std::mem::take(&mut resource[p]);
            rec.attributes = std::mem::take(&mut attributes[p]);
            if emit(&mut rec).is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Every row with every column, in stored order.
    fn all_rows(&mut self) -> Result<Vec<LogRecord>> {
        let ts = self.timestamps()?;
        let cheap = self.cheap(None)?;
        let sel: Vec<usize> = (0..self.n).collect();
        let mut out = Vec::with_capacity(self.n);
        // The emitter never breaks, so neither does materialise.
        let _always_continues = self.materialise(&ts, &cheap, &sel, None, &mut |r| {
            out.push(std::mem::take(r));
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }
}

/// Whether the raw bytes of an attribute column over `n` rows hold body references.
fn refs_body(raw: &[u8], n: usize) -> bool {
    raw.get(n.div_ceil(8)) == Some(&TAG_STR_BODY_REF)
}

/// What one block scan asks for, prepared once per [`Part::scan`].
struct BlockQuery<'a> {
    start: i64,
    end: i64,
    req: &'a ScanRequest,
    trace_ids: Option<Vec<[u8; 16]>>,
}

/// Scans one block through `d`: rows in `[start, end)`, with a wanted trace id when the
/// request names trace ids, passing the prefilter; only those rows are materialised.
/// Returns the visited row count and whether `visit` broke.
fn scan_block(
    d: &mut BlockDecoder<'_>,
    q: &BlockQuery<'_>,
    visit: &mut dyn FnMut(&LogRecord) -> ControlFlow<()>,
) -> Result<(u64, ControlFlow<()>)> {
    let ts = d.timestamps()?;
    let mut sel: Vec<usize> = (0..d.n)
        .filter(|&i| ts[i] >= q.start && ts[i] < q.end)
        .collect();
    if sel.is_empty() {
        return Ok((0, ControlFlow::Continue(())));
    }
    let mut traces = None;
    if let Some(ids) = &q.trace_ids {
        let t = d.traces()?;
        sel.retain(|&i| t[i].is_some_and(|t| ids.binary_search(&t).is_ok()));
        if sel.is_empty() {
            return Ok((0, ControlFlow::Continue(())));
        }
        traces = Some(t);
    }
    let cheap = d.cheap(traces)?;
    if let Some(pf) = &q.req.prefilter {
        let mut rec = LogRecord::default();
        sel.retain(|&i| {
            d.fill_cheap(&mut rec, &ts, &cheap, i);
            pf.test(&rec)
        });
        if sel.is_empty() {
            return Ok((0, ControlFlow::Continue(())));
        }
    }
    let mut visited = 0u64;
    let flow = d.materialise(&ts, &cheap, &sel, q.req.projection.as_ref(), &mut |r| {
        visited += 1;
        visit(r)
    })?;
    Ok((visited, flow))
}

fn put_u32_len(out: &mut Vec<u8>, b: &[u8]) {
    let len = u32::try_from(b.len()).expect("BUG: index field longer than 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(b);
}

fn encode_index(entries: &[BlockEntry], traces: &TraceDict) -> Vec<u8> {
    let mut out = Vec::new();
    let count = u32::try_from(entries.len()).expect("BUG: more than 2^32 blocks in a part");
    out.extend_from_slice(&count.to_le_bytes());
    for e in entries {
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.len.to_le_bytes());
        out.extend_from_slice(&e.rows.to_le_bytes());
        out.extend_from_slice(&e.min_ts.to_le_bytes());
        out.extend_from_slice(&e.max_ts.to_le_bytes());
        put_u32_len(&mut out, e.service.as_bytes());
        put_u32_len(&mut out, &e.filter.to_bytes());
        put_uvarint(&mut out, e.columns.len() as u64);
        for c in &e.columns {
            out.push(c.kind);
            if c.kind == KIND_RESOURCE || c.kind == KIND_RECORD {
                put_str(&mut out, &c.key);
            }
            out.push(c.codec);
            put_uvarint(&mut out, c.len);
            put_uvarint(&mut out, c.raw_len);
            out.extend_from_slice(&c.crc.to_le_bytes());
        }
    }
    put_uvarint(&mut out, traces.ids.len() as u64);
    for id in &traces.ids {
        out.extend_from_slice(id);
    }
    for w in traces.starts.windows(2) {
        let blocks = &traces.blocks[w[0] as usize..w[1] as usize];
        put_uvarint(&mut out, blocks.len() as u64);
        let mut prev = 0u32;
        for &b in blocks {
            put_uvarint(&mut out, u64::from(b - prev));
            prev = b;
        }
    }
    out
}

/// Parses a block's column directory, assigning chunk offsets from `offset` on, and
/// checks it: the fixed columns first in order, then attribute columns in strictly
/// increasing (kind, key) order, known codecs, raw chunks as long as their contents,
/// chunks adding up to exactly `len` bytes.
fn decode_columns(
    r: &mut Reader<'_>,
    offset: u64,
    len: u64,
    what: &str,
) -> DecodeResult<Vec<Column>> {
    // kind, codec, two varints and a CRC: at least 8 bytes a column.
    let count = r.count(8, what)?;
    if count < FIXED_COLUMNS {
        return Err(DecodeError(format!(
            "{what}: {count} columns, fewer than the {FIXED_COLUMNS} fixed ones"
        )));
    }
    let mut out: Vec<Column> = Vec::with_capacity(count);
    let mut at = offset;
    for i in 0..count {
        let kind = r.u8(what)?;
        let key = if kind == KIND_RESOURCE || kind == KIND_RECORD {
            r.string(what)?
        } else {
            String::new()
        };
        let ok_kind = if i < FIXED_COLUMNS {
            usize::from(kind) == i
        } else {
            (kind == KIND_RESOURCE || kind == KIND_RECORD)
                && out
                    .last()
                    .is_some_and(|p| (p.kind, p.key.as_str()) < (kind, key.as_str()))
        };
        if !ok_kind {
            return Err(DecodeError(format!(
                "{what}: column {i} has kind {kind} key {key:?} out of order"
            )));
        }
        let codec = r.u8(what)?;
        let clen = r.uvarint(what)?;
        let raw_len = r.uvarint(what)?;
        let crc = r.u32_le(what)?;
        let problem = match codec {
            CODEC_RAW if raw_len != clen => Some(format!("raw length {raw_len} != length {clen}")),
            CODEC_RAW | CODEC_ZSTD => None,
            c => Some(format!("unknown codec {c}")),
        }
        .or_else(|| {
            (raw_len > MAX_COLUMN_RAW_LEN).then(|| format!("raw length {raw_len} too large"))
        });
        if let Some(p) = problem {
            return Err(DecodeError(format!("{what}: column {i}: {p}")));
        }
        out.push(Column {
            kind,
            key,
            codec,
            offset: at,
            len: clen,
            raw_len,
            crc,
        });
        at = at
            .checked_add(clen)
            .filter(|end| *end <= offset.saturating_add(len))
            .ok_or_else(|| DecodeError(format!("{what}: column {i} runs past the block end")))?;
    }
    if at != offset.saturating_add(len) {
        return Err(DecodeError(format!(
            "{what}: columns end at {at}, block ends at {}",
            offset.saturating_add(len)
        )));
    }
    Ok(out)
}

/// The block index and the trace-id dictionary.
fn decode_index(b: &[u8], version: u16) -> DecodeResult<(Vec<BlockEntry>, TraceLookup)> {
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
        let rows = r.u32_le(&what)?;
        let min_ts = r.i64_le(&what)?;
        let max_ts = r.i64_le(&what)?;
        let service_len = r.u32_le(&what)? as usize;
        let service = std::str::from_utf8(r.bytes(service_len, &what)?)
            .map_err(|_| DecodeError(format!("{what}: service is not utf-8")))?
            .to_string();
        let filter_len = r.u32_le(&what)? as usize;
        let filter = BlockFilter::from_bytes(r.bytes(filter_len, &what)?)
            .map_err(|e| DecodeError(format!("{what}: {e}")))?;
        let columns = decode_columns(&mut r, offset, len, &what)?;
        out.push(BlockEntry {
            offset,
            len,
            rows,
            min_ts,
            max_ts,
            service,
            filter,
            columns,
        });
    }
    if version == VERSION_V2 {
        let what = "trace index";
        let entries = r.count(2, what)?;
        let mut traces = Vec::with_capacity(entries);
        let mut key = 0u32;
        for _ in 0..entries {
            let delta = r.uvarint(what)?;
            key = u32::try_from(delta)
                .ok()
                .and_then(|d| key.checked_add(d))
                .ok_or_else(|| DecodeError(format!("{what}: key delta {delta} overflows")))?;
            let block = r.uvarint(what)?;
            if block >= count as u64 {
                return Err(DecodeError(format!(
                    "{what}: block {block} out of {count} blocks"
                )));
            }
            traces.push((key, block as u32));
        }
        r.finish("index")?;
        return Ok((out, TraceLookup::KeysV2(traces)));
    }
    let what = "trace dictionary";
    // 16 id bytes plus at least a block count and one block number per id.
    let entries = r.count(18, what)?;
    let mut ids: Vec<[u8; 16]> = Vec::with_capacity(entries);
    for i in 0..entries {
        let id = r.array::<16>(what)?;
        if ids.last().is_some_and(|p| *p >= id) {
            return Err(DecodeError(format!(
                "{what}: id {i} not above the previous one"
            )));
        }
        ids.push(id);
    }
    let mut starts = Vec::with_capacity(entries + 1);
    let mut blocks = Vec::new();
    for i in 0..entries {
        starts.push(blocks.len() as u32);
        let c = r.count(1, what)?;
        if c == 0 || c > count {
            return Err(DecodeError(format!(
                "{what}: id {i} in {c} of {count} blocks"
            )));
        }
        let mut block = 0u64;
        for j in 0..c {
            let delta = r.uvarint(what)?;
            if j > 0 && delta == 0 {
                return Err(DecodeError(format!("{what}: id {i} lists a block twice")));
            }
            block = block.saturating_add(delta);
            if block >= count as u64 {
                return Err(DecodeError(format!(
                    "{what}: id {i}: block {block} out of {count} blocks"
                )));
            }
            blocks.push(block as u32);
        }
    }
    starts.push(blocks.len() as u32);
    r.finish("index")?;
    Ok((
        out,
        TraceLookup::Dict(TraceDict {
            ids,
            starts,
            blocks,
        }),
    ))
}

/// Sorts `records` by (service, timestamp) (stable: equal keys keep their order) and writes
/// a complete part file at `path` compressed at [`FLUSH_ZSTD_LEVEL`], then fsyncs it. The
/// caller handles tmp + rename.
///
/// # Errors
/// [`Error::Io`] naming `path`.
pub fn write_part(path: &Path, records: &mut [LogRecord]) -> Result<PartMeta> {
    write_part_with_level(path, records, FLUSH_ZSTD_LEVEL)
}

/// [`write_part`] at zstd level `level` (merges use [`MERGE_ZSTD_LEVEL`]).
///
/// # Errors
/// [`Error::Io`] naming `path`.
pub fn write_part_with_level(
    path: &Path,
    records: &mut [LogRecord],
    level: i32,
) -> Result<PartMeta> {
    records.sort_by(|a, b| {
        a.service
            .cmp(&b.service)
            .then(a.timestamp.cmp(&b.timestamp))
    });
    let mut refs: Vec<&LogRecord> = records.iter().collect();
    write_part_refs(path, &mut refs, &WriteOptions::with_level(level))
}

/// How [`write_part_refs`] writes a part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    /// zstd level of the column blocks ([`FLUSH_ZSTD_LEVEL`] for flushes,
    /// [`MERGE_ZSTD_LEVEL`] for merges).
    pub level: i32,
    /// Rows per block at most (default [`MAX_BLOCK_ROWS`]). Smaller blocks cost a little
    /// compression and make point lookups (a trace by id) decompress less.
    pub block_rows: usize,
}

impl WriteOptions {
    /// Defaults at zstd level `level`.
    pub fn with_level(level: i32) -> Self {
        WriteOptions {
            level,
            block_rows: MAX_BLOCK_ROWS,
        }
    }
}

/// [`write_part_with_level`] over borrowed records (sorts the references), so a flush
/// writes the buffered records without copying them.
///
/// # Errors
/// [`Error::Io`] naming `path`.
pub fn write_part_refs(
    path: &Path,
    records: &mut [&LogRecord],
    opts: &WriteOptions,
) -> Result<PartMeta> {
    let level = opts.level;
    records.sort_by(|a, b| {
        a.service
            .cmp(&b.service)
            .then(a.timestamp.cmp(&b.timestamp))
    });
    let io = io_err(path);
    let file = File::create(path).map_err(&io)?;
    let mut w = BufWriter::new(file);
    w.write_all(&header_bytes()).map_err(&io)?;
    let mut compressor = zstd::bulk::Compressor::new(level).map_err(&io)?;
    let mut pos = HEADER_LEN;
    let mut entries = Vec::new();
    let mut tokens = TokenSet::default();
    let mut trace_ids: Vec<[u8; 16]> = records
        .iter()
        .filter_map(|r| r.trace_id.map(|t| t.0))
        .collect();
    trace_ids.sort_unstable();
    trace_ids.dedup();
    let mut traces: Vec<(u32, u32)> = Vec::new();
    for range in block_ranges(records, opts.block_rows.clamp(1, MAX_BLOCK_ROWS)) {
        let rows = &records[range];
        let block_no = entries.len() as u32;
        let block_at = pos;
        let mut columns = Vec::new();
        for raw in encode_columns(rows, &trace_ids) {
            let compressed = compressor.compress(&raw.bytes).map_err(&io)?;
            let (codec, bytes) = if compressed.len() < raw.bytes.len() {
                (CODEC_ZSTD, &compressed[..])
            } else {
                (CODEC_RAW, &raw.bytes[..])
            };
            columns.push(Column {
                kind: raw.kind,
                key: raw.key,
                codec,
                offset: pos,
                len: bytes.len() as u64,
                raw_len: raw.bytes.len() as u64,
                crc: crc32fast::hash(bytes),
            });
            w.write_all(bytes).map_err(&io)?;
            pos += bytes.len() as u64;
        }
        for r in rows {
            tokens.add_record(r);
            if let Some(t) = &r.trace_id {
                let i = trace_ids
                    .binary_search(&t.0)
                    .expect("BUG: trace id missing from the part's dictionary");
                traces.push((i as u32, block_no));
            }
        }
        entries.push(BlockEntry {
            offset: block_at,
            len: pos - block_at,
            rows: rows.len() as u32,
            min_ts: rows.iter().map(|r| r.timestamp).min().unwrap_or(0),
            max_ts: rows.iter().map(|r| r.timestamp).max().unwrap_or(0),
            service: rows[0].service.clone(),
            filter: tokens.take_filter(),
            columns,
        });
    }
    traces.sort_unstable();
    traces.dedup();
    let index = encode_index(&entries, &TraceDict::new(trace_ids, &traces));
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

/// An open part file: its meta, block index and trace-id index in memory, column chunks
/// read on demand with positional reads (so it is `Send + Sync` and shared by concurrent
/// scans).
pub struct Part {
    path: PathBuf,
    file: File,
    meta: PartMeta,
    blocks: Vec<BlockEntry>,
    traces: TraceLookup,
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
    /// and the index (CRC, every block's bounds and column directory, the trace index).
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
        if version != VERSION && version != VERSION_V2 {
            return Err(bad(
                6,
                format!(
                    "unsupported part version {version} (this build reads versions \
                     {VERSION_V2} and {VERSION})"
                ),
            ));
        }

        let footer_at = len - FOOTER_LEN;
        let mut footer = [0u8; FOOTER_LEN as usize];
        read_at(&mut footer, footer_at)?;
        if footer[32..] != header_bytes_of(version) {
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
        let (blocks, traces) =
            decode_index(&index, version).map_err(|e| bad(index_at, format!("index: {e}")))?;

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
            traces,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn meta(&self) -> &PartMeta {
        &self.meta
    }

    /// Reads column chunk `c`, checks its CRC and decompresses it.
    fn load_column(
        &self,
        c: &Column,
        dctx: &mut zstd::bulk::Decompressor<'_>,
        stats: &mut ScanStats,
    ) -> Result<Vec<u8>> {
        let bad = |reason: String| {
            corruption(
                &self.path,
                c.offset,
                format!("column {}: {reason}", c.name()),
            )
        };
        // Bounded by the file size: open checked the chunk lies before the index.
        let mut buf = vec![0u8; c.len as usize];
        self.file.read_exact_at(&mut buf, c.offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                bad("chunk truncated".into())
            } else {
                io_err(&self.path)(e)
            }
        })?;
        stats.scanned_bytes += c.len;
        let crc = crc32fast::hash(&buf);
        if crc != c.crc {
            return Err(bad(format!(
                "chunk crc mismatch: stored {:08x}, computed {crc:08x}",
                c.crc
            )));
        }
        if c.codec == CODEC_RAW {
            return Ok(buf);
        }
        // At most raw_len bytes come out (bounded at open): a lying frame cannot make us
        // allocate more than the directory promised.
        let raw = dctx
            .decompress(&buf, c.raw_len as usize)
            .map_err(|e| bad(format!("zstd: {e}")))?;
        if raw.len() as u64 != c.raw_len {
            return Err(bad(format!(
                "decompresses to {} bytes, directory says {}",
                raw.len(),
                c.raw_len
            )));
        }
        Ok(raw)
    }

    /// Whether block `bi` may hold any of `ids` according to the trace-id index.
    fn blocks_with_traces(&self, ids: &[[u8; 16]]) -> Vec<bool> {
        let mut out = vec![false; self.blocks.len()];
        for id in ids {
            match &self.traces {
                TraceLookup::Dict(d) => {
                    for &b in d.blocks_of(id) {
                        out[b as usize] = true;
                    }
                }
                TraceLookup::KeysV2(keys) => {
                    let key = u32::from_be_bytes(id[..4].try_into().expect("4 bytes"));
                    let from = keys.partition_point(|&(k, _)| k < key);
                    for &(_, b) in keys[from..].iter().take_while(|(k, _)| *k == key) {
                        out[b as usize] = true;
                    }
                }
            }
        }
        out
    }

    /// Runs `f` over a decoder of block `b`.
    fn with_block<T>(
        &self,
        b: &BlockEntry,
        dctx: &mut zstd::bulk::Decompressor<'_>,
        stats: &mut ScanStats,
        f: impl FnOnce(&mut BlockDecoder<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut load = |idx: usize| self.load_column(&b.columns[idx], dctx, stats);
        let bad = |idx: usize, e: DecodeError| corruption(&self.path, b.columns[idx].offset, e.0);
        let mut d = BlockDecoder {
            columns: &b.columns,
            n: b.rows as usize,
            service: &b.service,
            trace_dict: match &self.traces {
                TraceLookup::Dict(d) => Some(&d.ids),
                TraceLookup::KeysV2(_) => None,
            },
            load: &mut load,
            bad: &bad,
        };
        f(&mut d)
    }

    fn decompressor(&self) -> Result<zstd::bulk::Decompressor<'static>> {
        zstd::bulk::Decompressor::new().map_err(io_err(&self.path))
    }

    /// Visits every row with `start <= timestamp < end` of the blocks that may satisfy
    /// `req`: blocks are skipped by time range, by `req.services`, by the token filter
    /// (every token of every `req.required_tokens` entry must be in it) and by the
    /// trace-id index (`req.trace_ids`). In a block, the timestamps (and trace ids, and
    /// the prefilter's columns) are decoded first; only rows passing them are built, with
    /// only the columns `req.projection` reads. Stops when `visit` breaks.
    ///
    /// # Errors
    /// [`Error::Corruption`] with the column chunk's offset for a damaged block;
    /// [`Error::Io`].
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
        let trace_ids: Option<Vec<[u8; 16]>> = req.trace_ids.as_ref().map(|ids| {
            let mut v: Vec<[u8; 16]> = ids.iter().map(|t| t.0).collect();
            v.sort_unstable();
            v
        });
        let trace_blocks = trace_ids.as_ref().map(|ids| self.blocks_with_traces(ids));
        // Trace ids are not in the token filters: a required token that may be one is
        // looked up in the trace-id dictionary (see `bloom::RequiredToken`).
        let token_trace_blocks: Vec<([u8; 16], Vec<bool>)> = needles
            .iter()
            .flat_map(RequiredToken::trace_ids)
            .map(|id| (*id, self.blocks_with_traces(std::slice::from_ref(id))))
            .collect();
        let q = BlockQuery {
            start,
            end,
            req,
            trace_ids,
        };
        let mut stats = ScanStats::default();
        let mut dctx = self.decompressor()?;
        for (bi, b) in self.blocks.iter().enumerate() {
            stats.blocks_total += 1;
            let skip = start >= end
                || b.max_ts < start
                || b.min_ts >= end
                || req
                    .services
                    .as_ref()
                    .is_some_and(|s| !s.contains(&b.service))
                || trace_blocks.as_ref().is_some_and(|t| !t[bi])
                || !needles.iter().all(|t| {
                    t.may_be_in(
                        |h| b.filter.contains_hash(h),
                        |id| {
                            token_trace_blocks
                                .iter()
                                .any(|(i, blocks)| i == id && blocks[bi])
                        },
                    )
                });
            if skip {
                stats.blocks_skipped += 1;
                continue;
            }
            let mut block_stats = ScanStats::default();
            let (visited, flow) =
                self.with_block(b, &mut dctx, &mut block_stats, |d| scan_block(d, &q, visit))?;
            stats.scanned_bytes += block_stats.scanned_bytes;
            stats.scanned_rows += visited;
            if flow.is_break() {
                return Ok(stats);
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
        let mut dctx = self.decompressor()?;
        let mut stats = ScanStats::default();
        for b in &self.blocks {
            out.extend(self.with_block(b, &mut dctx, &mut stats, |d| d.all_rows())?);
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
        assert!(stats.blocks_skipped >= 4, "{stats:?}");
        // Rows come only from blocks a false positive let through (at most 8,192 a block);
        // the query layer drops them, as hints are conservative.
        let passed = stats.blocks_total - stats.blocks_skipped;
        assert!(
            rows.len() as u64 <= passed * 8_192,
            "{} rows, {stats:?}",
            rows.len()
        );
        assert_eq!(passed == 0, rows.is_empty(), "{stats:?}");
    }

    #[test]
    fn id_tokens_prune_by_the_trace_dictionary_not_the_filter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.part");
        let trace = |i: u64| {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
            b[15] = 1;
            TraceId(b)
        };
        let mut recs: Vec<LogRecord> = (0..50_000)
            .map(|i| {
                let mut r = rec("a", i, &format!("row {i}"));
                r.trace_id = Some(trace(i as u64 / 2));
                r.span_id = Some(SpanId((i as u64 + 1).to_be_bytes()));
                r
            })
            .collect();
        write_part(&path, &mut recs).unwrap();
        let part = Part::open(&path).unwrap();
        assert!(part.meta().blocks >= 6);
        let scan = |tokens: Vec<String>| {
            let req = ScanRequest {
                required_tokens: tokens,
                ..Default::default()
            };
            collect(&part, i64::MIN, i64::MAX, &req)
        };
        // A trace id as a free token (either case, or inside a phrase) reads only its block
        // (and at most one more let through by a filter false positive, ~0.4% a block).
        let want = trace(7_000);
        for t in [
            want.to_hex(),
            want.to_hex().to_uppercase(),
            format!("row {}", want.to_hex()),
        ] {
            let (rows, stats) = scan(vec![t.clone()]);
            let passed = stats.blocks_total - stats.blocks_skipped;
            assert!((1..=2).contains(&passed), "{t}: {stats:?}");
            assert!(rows.iter().any(|r| r.trace_id == Some(want)), "{t}");
        }
        // An unknown trace id reads nothing (bar a filter false positive).
        let (_, stats) = scan(vec![TraceId([0xee; 16]).to_hex()]);
        assert!(stats.blocks_skipped + 1 >= stats.blocks_total, "{stats:?}");
        // Span ids are not indexed: a span id token prunes nothing, so nothing is missed.
        let span = recs[12_345].span_id.unwrap();
        let (rows, stats) = scan(vec![span.to_hex()]);
        assert_eq!(stats.blocks_skipped, 0, "{stats:?}");
        assert!(rows.iter().any(|r| r.span_id == Some(span)));
    }

    /// A part of this version turned into the same part of version `v`: without trace
    /// ids the version 2 and 3 layouts are byte-identical but for the version fields.
    fn with_version(path: &Path, v: u16) {
        let mut bytes = std::fs::read(path).unwrap();
        let n = bytes.len();
        bytes[6..8].copy_from_slice(&v.to_le_bytes());
        bytes[n - 2..].copy_from_slice(&v.to_le_bytes());
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn version_2_parts_are_read_and_version_1_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.part");
        let mut recs: Vec<LogRecord> = (0..100).map(|i| rec("s", i, &format!("b {i}"))).collect();
        write_part(&path, &mut recs).unwrap();
        with_version(&path, 2);
        let part = Part::open(&path).unwrap();
        assert!(matches!(part.traces, TraceLookup::KeysV2(ref k) if k.is_empty()));
        assert_eq!(sorted(part.read_all().unwrap()), sorted(recs.clone()));
        let req = ScanRequest {
            trace_ids: Some(vec![TraceId([1; 16])]),
            ..Default::default()
        };
        assert!(collect(&part, i64::MIN, i64::MAX, &req).0.is_empty());
        with_version(&path, 1);
        let err = Part::open(&path).unwrap_err().to_string();
        assert!(
            err.contains("unsupported part version 1 (this build reads versions 2 and 3)"),
            "{err}"
        );
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
                // The damaged column chunk's offset, inside the block.
                assert!(
                    (victim.offset..victim.offset + victim.len).contains(&offset),
                    "{offset}"
                );
                assert!(reason.contains("crc"), "{reason}");
                assert!(reason.starts_with("column "), "{reason}");
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
                let req = ScanRequest { required_tokens: vec![r.body.clone()], services: Some(vec![r.service.clone()]), ..Default::default() };
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

    /// [`super::encode_columns`] with the trace dictionary a part of just `rows` has.
    fn encode_columns(rows: &[LogRecord]) -> (Vec<RawColumn>, Vec<[u8; 16]>) {
        let rows: Vec<&LogRecord> = rows.iter().collect();
        let mut dict: Vec<[u8; 16]> = rows
            .iter()
            .filter_map(|r| r.trace_id.map(|t| t.0))
            .collect();
        dict.sort_unstable();
        dict.dedup();
        (super::encode_columns(&rows, &dict), dict)
    }

    /// Decodes columns from [`encode_columns`] without a file: rows `sel` (all when
    /// `None`) with `projection`.
    fn decode_raw(
        cols: &[RawColumn],
        dict: &[[u8; 16]],
        n: usize,
        projection: Option<&Projection>,
        sel: Option<&[usize]>,
    ) -> Result<Vec<LogRecord>> {
        let columns: Vec<Column> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| Column {
                kind: c.kind,
                key: c.key.clone(),
                codec: CODEC_RAW,
                offset: i as u64,
                len: c.bytes.len() as u64,
                raw_len: c.bytes.len() as u64,
                crc: 0,
            })
            .collect();
        let mut load = |i: usize| Ok(cols[i].bytes.clone());
        let bad = |i: usize, e: DecodeError| corruption(Path::new("mem"), i as u64, e.0);
        let mut d = BlockDecoder {
            columns: &columns,
            n,
            service: "s",
            trace_dict: Some(dict),
            load: &mut load,
            bad: &bad,
        };
        let ts = d.timestamps()?;
        let cheap = d.cheap(None)?;
        let all: Vec<usize> = (0..n).collect();
        let mut out = Vec::new();
        let flow = d.materialise(&ts, &cheap, sel.unwrap_or(&all), projection, &mut |r| {
            out.push(r.clone());
            ControlFlow::Continue(())
        })?;
        assert!(flow.is_continue());
        Ok(out)
    }

    /// What a scan with `projection` should return for `r`.
    fn projected(r: &LogRecord, p: Option<&Projection>) -> LogRecord {
        let Some(p) = p else { return r.clone() };
        let keep = |a: &Attributes| {
            Attributes::from_pairs(
                a.iter()
                    .filter(|(k, _)| p.wants(k))
                    .map(|(k, v)| (k.to_string(), v.clone())),
            )
        };
        LogRecord {
            body: if p.body {
                r.body.clone()
            } else {
                String::new()
            },
            resource: keep(&r.resource),
            attributes: keep(&r.attributes),
            ..r.clone()
        }
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
        let (cols, dict) = encode_columns(&recs);
        let p = Projection {
            body: false,
            attributes: vec!["status".into(), "host".into()],
        };
        // Unread columns are never loaded: damage them and decoding still succeeds.
        let mut damaged = cols.clone();
        for c in &mut damaged {
            if c.kind == COL_BODY as u8 || (c.kind >= KIND_RESOURCE && !p.wants(&c.key)) {
                c.bytes = vec![0xff; 3];
            }
        }
        let got = decode_raw(&damaged, &dict, 100, Some(&p), None).unwrap();
        for (g, want) in got.iter().zip(recs.iter_mut()) {
            assert_eq!(g.body, "");
            assert_eq!(g.timestamp, want.timestamp);
            assert_eq!(g.attributes.len(), 1);
            assert_eq!(g.attributes.get("status"), want.attributes.get("status"));
            assert_eq!(g.resource.get("host"), want.resource.get("host"));
        }
        assert!(decode_raw(&damaged, &dict, 100, None, None).is_err());
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
        assert_eq!(
            decode_raw(&cols, &dict, 100, Some(&all), None).unwrap(),
            recs
        );
        // Row selection builds only the selected rows, in order.
        let sel = [3usize, 50, 99];
        let got = decode_raw(&cols, &dict, 100, None, Some(&sel)).unwrap();
        assert_eq!(
            got,
            sel.iter().map(|&i| recs[i].clone()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn truncated_or_extended_columns_are_errors() {
        let mut recs = vec![rec("s", 1, "hello"), rec("s", 2, "world")];
        recs[0].attributes.insert("k".into(), Value::Int(5));
        recs[1].trace_id = Some(TraceId([3; 16]));
        let (cols, dict) = encode_columns(&recs);
        assert_eq!(decode_raw(&cols, &dict, 2, None, None).unwrap(), recs);
        assert!(decode_raw(&cols, &dict, 3, None, None).is_err());
        for i in 0..cols.len() {
            for cut in 0..cols[i].bytes.len() {
                let mut bad = cols.clone();
                bad[i].bytes.truncate(cut);
                assert!(
                    decode_raw(&bad, &dict, 2, None, None).is_err(),
                    "column {i} cut {cut}"
                );
            }
            let mut bad = cols.clone();
            bad[i].bytes.push(0);
            let err = decode_raw(&bad, &dict, 2, None, None)
                .unwrap_err()
                .to_string();
            assert!(err.contains("trailing"), "{err}");
        }
    }

    #[test]
    fn attributes_copied_from_the_body_are_stored_as_references() {
        let recs: Vec<LogRecord> = (0..200)
            .map(|i| {
                let ip = format!("10.0.{}.{}", i % 7, i % 13);
                let path = format!("/api/v{}/ü{i}", i % 3);
                let mut r = rec("s", i, &format!("{ip} - - \"GET {path} HTTP/1.1\" 200"));
                r.attributes.insert("remote_addr".into(), Value::Str(ip));
                // One value in 200 is not in the body: stored inline.
                let p = if i == 7 {
                    "/elsewhere".to_string()
                } else {
                    path
                };
                r.attributes.insert("path".into(), Value::Str(p));
                r.attributes.insert("status".into(), Value::Int(200));
                r
            })
            .collect();
        let (cols, dict) = encode_columns(&recs);
        let col = |key: &str| cols.iter().find(|c| c.key == key).unwrap();
        assert!(refs_body(&col("path").bytes, 200));
        assert!(refs_body(&col("remote_addr").bytes, 200));
        assert!(!refs_body(&col("status").bytes, 200));
        assert_eq!(decode_raw(&cols, &dict, 200, None, None).unwrap(), recs);
        // Read without the body: the references still resolve, the body stays empty.
        let p = Projection {
            body: false,
            attributes: vec!["path".into()],
        };
        let sel = [0usize, 7, 150];
        let got = decode_raw(&cols, &dict, 200, Some(&p), Some(&sel)).unwrap();
        let want: Vec<LogRecord> = sel.iter().map(|&i| projected(&recs[i], Some(&p))).collect();
        assert_eq!(got, want);
        // A reference past its body's end, or splitting a character, is corrupt.
        let mut bad = cols.clone();
        let c = bad.iter_mut().find(|c| c.key == "path").unwrap();
        let at = 200usize.div_ceil(8) + 1;
        c.bytes[at] = 0x7f;
        assert!(decode_raw(&bad, &dict, 200, None, None).is_err());
        // Too few values found in the bodies: a plain string column.
        let mut few = recs.clone();
        for r in few.iter_mut().take(30) {
            r.attributes
                .insert("path".into(), Value::Str("nowhere".into()));
        }
        let (cols, dict) = encode_columns(&few);
        assert!(!refs_body(
            &cols.iter().find(|c| c.key == "path").unwrap().bytes,
            200
        ));
        assert_eq!(decode_raw(&cols, &dict, 200, None, None).unwrap(), few);
    }

    #[test]
    fn timestamps_are_stored_scaled() {
        // Second-precision timestamps: one byte per row after the scale byte.
        let recs: Vec<LogRecord> = (0..50)
            .map(|i| rec("s", 1_763_553_600_000_000_000 + i * 1_000_000_000, "x"))
            .collect();
        let (cols, dict) = encode_columns(&recs);
        assert!(
            cols[COL_TIMESTAMP].bytes.len() < 50 + 12,
            "{}",
            cols[COL_TIMESTAMP].bytes.len()
        );
        assert_eq!(decode_raw(&cols, &dict, 50, None, None).unwrap(), recs);
    }

    #[test]
    fn trace_index_finds_blocks_and_scan_builds_only_matches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.part");
        let id = |i: u64| {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
            b[15] = 1;
            TraceId(b)
        };
        let mut recs: Vec<LogRecord> = (0..30_000)
            .map(|i| {
                let mut r = rec(["a", "b"][i as usize % 2], i, &format!("row {i}"));
                r.trace_id = Some(id(i as u64 / 3));
                r
            })
            .collect();
        write_part(&path, &mut recs).unwrap();
        let part = Part::open(&path).unwrap();
        assert!(part.meta().blocks >= 4);
        let want = id(4_000);
        let req = ScanRequest {
            trace_ids: Some(vec![want]),
            ..Default::default()
        };
        let (rows, stats) = collect(&part, i64::MIN, i64::MAX, &req);
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r.trace_id == Some(want)));
        assert_eq!(stats.scanned_rows, 3);
        // The index points at the blocks holding the id (12000..12003 spans both
        // services), all others are skipped without reading.
        assert_eq!(stats.blocks_total - stats.blocks_skipped, 2, "{stats:?}");
        // An id that is nowhere reads nothing (it is not in the dictionary).
        let req = ScanRequest {
            trace_ids: Some(vec![TraceId([0xee; 16])]),
            ..Default::default()
        };
        let (rows, stats) = collect(&part, i64::MIN, i64::MAX, &req);
        assert!(rows.is_empty());
        assert_eq!(stats.blocks_skipped, stats.blocks_total);
        // Several ids: the union; an empty list: nothing.
        let req = ScanRequest {
            trace_ids: Some(vec![id(1), id(9_999), TraceId([0xee; 16])]),
            ..Default::default()
        };
        assert_eq!(collect(&part, i64::MIN, i64::MAX, &req).0.len(), 6);
        let req = ScanRequest {
            trace_ids: Some(vec![]),
            ..Default::default()
        };
        assert!(collect(&part, i64::MIN, i64::MAX, &req).0.is_empty());
    }

    #[test]
    fn aggregation_reads_only_projected_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.part");
        let mut recs: Vec<LogRecord> = (0..10_000)
            .map(|i| {
                let mut r = rec("s", i, &format!("a long body that costs bytes {i}"));
                r.attributes
                    .insert("status".into(), Value::Int([200, 404, 500][i as usize % 3]));
                r.attributes
                    .insert("user".into(), Value::Str(format!("user-{i}")));
                r
            })
            .collect();
        write_part(&path, &mut recs).unwrap();
        let part = Part::open(&path).unwrap();
        let (_, full) = collect(&part, i64::MIN, i64::MAX, &ScanRequest::default());
        let req = ScanRequest {
            projection: Some(Projection {
                body: false,
                attributes: vec!["status".into()],
            }),
            ..Default::default()
        };
        let (rows, stats) = collect(&part, i64::MIN, i64::MAX, &req);
        assert_eq!(rows.len(), 10_000);
        assert!(rows
            .iter()
            .all(|r| r.body.is_empty() && r.attributes.len() == 1));
        assert_eq!(rows[4].attributes.get("status"), Some(&Value::Int(404)));
        assert!(
            stats.scanned_bytes * 4 < full.scanned_bytes,
            "{stats:?} vs {full:?}"
        );
    }

    /// Measuring aid, run by hand: bytes per column kind of every part under
    /// `$SIGHTLINE_PART_DIR`, and the total when rewritten at each level of
    /// `$SIGHTLINE_PART_LEVELS` (comma list).
    #[test]
    #[ignore = "measuring aid: needs SIGHTLINE_PART_DIR"]
    fn column_sizes_of_parts() {
        let dir = PathBuf::from(std::env::var("SIGHTLINE_PART_DIR").unwrap());
        let mut paths = Vec::new();
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "part") {
                    paths.push(p);
                }
            }
        }
        let mut by_kind: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let (mut total, mut index, mut filters, mut traces) = (0u64, 0u64, 0u64, 0usize);
        for p in &paths {
            let part = Part::open(p).unwrap();
            total += part.meta.bytes;
            traces += match &part.traces {
                TraceLookup::Dict(d) => d.blocks.len(),
                TraceLookup::KeysV2(k) => k.len(),
            };
            let data: u64 = part.blocks.iter().map(|b| b.len).sum();
            index += part.meta.bytes - data - HEADER_LEN - FOOTER_LEN;
            for b in &part.blocks {
                filters += b.filter.to_bytes().len() as u64;
                for c in &b.columns {
                    let k = if c.kind >= KIND_RESOURCE {
                        c.name()
                    } else {
                        FIXED_NAMES[c.kind as usize].to_string()
                    };
                    let e = by_kind.entry(k).or_default();
                    e.0 += c.len;
                    e.1 += c.raw_len;
                }
            }
        }
        let mut v: Vec<_> = by_kind.into_iter().collect();
        v.sort_by_key(|(_, (l, _))| std::cmp::Reverse(*l));
        println!(
            "{} parts, {total} bytes, index {index} (filters {filters}, {traces} trace entries)",
            paths.len()
        );
        for (k, (l, r)) in v.iter().take(40) {
            println!("{k:>30} {l:>12} {r:>12}");
        }
        let levels = std::env::var("SIGHTLINE_PART_LEVELS").unwrap_or_default();
        for level in levels.split(',').filter(|l| !l.is_empty()) {
            let level: i32 = level.parse().unwrap();
            let tmp = tempfile::tempdir().unwrap();
            let mut all = Vec::new();
            for p in &paths {
                all.extend(Part::open(p).unwrap().read_all().unwrap());
            }
            let t = std::time::Instant::now();
            let meta = write_part_with_level(&tmp.path().join("x"), &mut all, level).unwrap();
            println!(
                "level {level}: {} bytes in one part, {:?}",
                meta.bytes,
                t.elapsed()
            );
        }
    }

    fn block_records() -> impl Strategy<Value = Vec<LogRecord>> {
        prop::collection::vec(record(), 1..40).prop_map(|mut v| {
            for r in &mut v {
                r.service = "s".into();
            }
            v
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn columns_round_trip_with_projection_and_selection(
            recs in block_records(),
            body in any::<bool>(),
            keys in prop::collection::vec("[a-e]{1,2}", 0..4),
            pick in prop::collection::vec(any::<bool>(), 40),
        ) {
            let n = recs.len();
            let (cols, dict) = encode_columns(&recs);
            prop_assert_eq!(&decode_raw(&cols, &dict, n, None, None).unwrap(), &recs);
            let p = Projection { body, attributes: keys };
            let sel: Vec<usize> = (0..n).filter(|&i| pick[i]).collect();
            let got = decode_raw(&cols, &dict, n, Some(&p), Some(&sel)).unwrap();
            let want: Vec<LogRecord> = sel.iter().map(|&i| projected(&recs[i], Some(&p))).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn damaged_columns_never_panic(
            recs in block_records(),
            col in any::<prop::sample::Index>(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<bool>(),
        ) {
            let n = recs.len();
            let (mut cols, dict) = encode_columns(&recs);
            let c = col.index(cols.len());
            if cols[c].bytes.is_empty() {
                return Ok(());
            }
            let i = at.index(cols[c].bytes.len());
            if cut {
                cols[c].bytes.truncate(i);
                prop_assert!(decode_raw(&cols, &dict, n, None, None).is_err());
            } else {
                cols[c].bytes[i] = byte;
                let _ = decode_raw(&cols, &dict, n, None, None);
            }
        }

        #[test]
        fn scans_with_hints_find_every_matching_record(recs in prop::collection::vec(record(), 1..40), pick in any::<prop::sample::Index>()) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p");
            let mut v = recs.clone();
            write_part(&path, &mut v).unwrap();
            let part = Part::open(&path).unwrap();
            let r = &recs[pick.index(recs.len())];
            let ids: Vec<TraceId> = r.trace_id.into_iter().chain([TraceId([9; 16])]).collect();
            let req = ScanRequest { trace_ids: Some(ids.clone()), ..Default::default() };
            let (rows, _) = collect(&part, i64::MIN, i64::MAX, &req);
            let want: Vec<LogRecord> = sorted(recs.clone())
                .into_iter()
                .filter(|x| x.timestamp != i64::MAX && x.trace_id.is_some_and(|t| ids.contains(&t)))
                .collect();
            prop_assert_eq!(rows, want);
        }
    }
}
