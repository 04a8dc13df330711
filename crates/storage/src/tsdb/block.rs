//! Immutable block files: one tenant's samples of a time range, written when the head is
//! cut or blocks are compacted, read by queriers with positional reads. One file per block
//! (`<data>/metrics/<tenant>/<id>.block`): series with their labels and chunk references,
//! a postings index (both sections zstd-compressed since version 2), chunks each with a
//! CRC (version 2: tagged decimal `decimal.rs` or Gorilla `chunk.rs`, whichever is
//! smaller), and a fixed-size footer. Version 1 files are still read.
//! Byte layout: `docs/format/tsdb-block.md`.
//!
//! Hand-written and single-file (unlike Prometheus' directory of `index` + `chunks/` +
//! `meta.json`) because one file is one atomic rename to publish and one unlink to drop,
//! which keeps crash handling and retention trivial; and because the layout must be
//! byte-exact and checksummed section by section so corruption is reported with the file
//! and offset.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sightline_model::{Labels, Sample, TimeSeries};

use super::bytes::{put_str, put_uvarint, put_varint, Reader};
use super::chunk;
use super::decimal;
use super::index::Index;
use super::postings::Postings;
use crate::api::LabelMatcher;
use crate::error::{Error, Result};
use crate::wal::sync_dir;

/// First and last bytes of every block file.
pub const MAGIC: [u8; 4] = *b"SLTB";
/// Format version written after the leading magic. Version 1 (still read): Gorilla chunks
/// without a tag, plain sections. Version 2: chunks tagged with their encoding (Gorilla or
/// decimal), zstd-compressed series and postings sections.
pub const VERSION: u32 = 2;
/// Chunk record tags (version 2).
const CHUNK_GORILLA: u8 = 0;
const CHUNK_DECIMAL: u8 = 1;
/// Samples per block chunk: twice the head's 120, because a decimal chunk's ~15-byte
/// header and its series-section reference (~5 bytes after zstd) weigh ~0.15 bytes a
/// sample at 120; a point read still decodes at most one hour of 15 s samples.
pub const BLOCK_CHUNK_SAMPLES: usize = 240;
/// zstd level of the series and postings sections: written once per block, and the
/// labels text compresses ~10x; level 9 was ~25% smaller than 3 on bench/metrics data at
/// a few ms per block.
const SECTION_ZSTD_LEVEL: i32 = 9;
const HEADER_LEN: u64 = 8;
/// 8 u64/i64 fields + footer CRC + trailing magic.
pub const FOOTER_LEN: u64 = 8 * 8 + 4 + 4;

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> Error {
    Error::Corruption {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

/// Where one chunk lies in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkRef {
    pub min_t: i64,
    pub max_t: i64,
    /// File offset of the chunk bytes; a CRC-32 (u32 LE) of them follows.
    pub offset: u64,
    pub len: u32,
}

/// The fixed-size footer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Footer {
    series_off: u64,
    series_len: u64,
    postings_off: u64,
    postings_len: u64,
    min_t: i64,
    max_t: i64,
    series: u64,
    samples: u64,
}

impl Footer {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FOOTER_LEN as usize);
        for v in [
            self.series_off,
            self.series_len,
            self.postings_off,
            self.postings_len,
            self.min_t as u64,
            self.max_t as u64,
            self.series,
            self.samples,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&MAGIC);
        out
    }
}

/// Path of block `id` of `tenant_dir`.
pub fn block_path(tenant_dir: &Path, id: u64) -> PathBuf {
    tenant_dir.join(format!("{id:020}.block"))
}

/// Parses a block file name into its id.
pub fn parse_block_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".block")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// Writes `series` (sorted by labels, unique; samples time-ordered and unique) as block
/// `id` in `tenant_dir`: to a temporary file, fsynced, renamed into place, directory
/// fsynced. Returns the opened block.
///
/// # Errors
/// I/O errors.
///
/// # Panics
/// "BUG:" when series are not sorted or samples not time-ordered.
pub fn write(tenant_dir: &Path, id: u64, series: &[TimeSeries]) -> Result<Block> {
    write_as(tenant_dir, id, series, VERSION)
}

/// [`write`] in format `version` (1 or 2; tests write version 1 to check it is still read).
fn write_as(tenant_dir: &Path, id: u64, series: &[TimeSeries], version: u32) -> Result<Block> {
    assert!(
        (1..=VERSION).contains(&version),
        "BUG: block version {version}"
    );
    // Version 1 chunks held at most the head's 120 samples.
    let per_chunk = if version == 1 {
        chunk::MAX_SAMPLES_PER_CHUNK
    } else {
        BLOCK_CHUNK_SAMPLES
    };
    fs::create_dir_all(tenant_dir).map_err(|e| io_err(tenant_dir, e))?;
    let path = block_path(tenant_dir, id);
    let tmp = path.with_extension("block.tmp");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&tmp)
        .map_err(|e| io_err(&tmp, e))?;
    // Chunks stream to the file: the block is never materialised in memory (a cut of a
    // large head would otherwise hold the whole file on top of the cut samples).
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut pos = 0u64;
    let mut put = |out: &mut BufWriter<File>, b: &[u8]| -> Result<u64> {
        out.write_all(b).map_err(|e| io_err(&tmp, e))?;
        let at = pos;
        pos += b.len() as u64;
        Ok(at)
    };
    put(&mut out, &MAGIC)?;
    put(&mut out, &version.to_le_bytes())?;

    let mut index = Index::new();
    let mut refs: Vec<Vec<ChunkRef>> = Vec::with_capacity(series.len());
    let (mut min_t, mut max_t, mut samples) = (i64::MAX, i64::MIN, 0u64);
    let mut data = Vec::new();
    for (i, ts) in series.iter().enumerate() {
        if i > 0 {
            assert!(
                series[i - 1].labels < ts.labels,
                "BUG: block series not sorted/unique"
            );
        }
        let (_, created) = index.get_or_create(&ts.labels);
        assert!(created, "BUG: duplicate series in a block");
        let mut crefs = Vec::new();
        for part in ts.samples.chunks(per_chunk) {
            encode_chunk(part, version, &mut data);
            let offset = put(&mut out, &data)?;
            put(&mut out, &crc32fast::hash(&data).to_le_bytes())?;
            let (lo, hi) = (part[0].timestamp_ms, part[part.len() - 1].timestamp_ms);
            min_t = min_t.min(lo);
            max_t = max_t.max(hi);
            samples += part.len() as u64;
            crefs.push(ChunkRef {
                min_t: lo,
                max_t: hi,
                offset,
                len: u32::try_from(data.len()).expect("BUG: chunk over 4 GiB"),
            });
        }
        refs.push(crefs);
    }

    // Series section.
    let mut sec = Vec::with_capacity(series.len() * 64);
    put_uvarint(&mut sec, series.len() as u64);
    for (ts, crefs) in series.iter().zip(&refs) {
        put_uvarint(&mut sec, ts.labels.len() as u64);
        for (n, v) in ts.labels.iter() {
            put_str(&mut sec, n);
            put_str(&mut sec, v);
        }
        put_uvarint(&mut sec, crefs.len() as u64);
        for c in crefs {
            put_varint(&mut sec, c.min_t);
            put_varint(&mut sec, c.max_t);
            put_uvarint(&mut sec, c.offset);
            put_uvarint(&mut sec, u64::from(c.len));
        }
    }
    let sec = seal_section(sec, version);
    let series_off = put(&mut out, &sec)?;
    let series_len = sec.len() as u64;

    // Postings section: per name, per value, delta-encoded ids.
    let mut by_name: BTreeMap<&str, Vec<(&str, &[u32])>> = BTreeMap::new();
    for (n, v, p) in index.postings() {
        by_name.entry(n).or_default().push((v, p));
    }
    let mut sec = Vec::new();
    put_uvarint(&mut sec, by_name.len() as u64);
    for (name, values) in &by_name {
        put_str(&mut sec, name);
        put_uvarint(&mut sec, values.len() as u64);
        for (value, ids) in values {
            put_str(&mut sec, value);
            put_uvarint(&mut sec, ids.len() as u64);
            let mut prev = 0u32;
            for (k, &id) in ids.iter().enumerate() {
                put_uvarint(&mut sec, u64::from(if k == 0 { id } else { id - prev }));
                prev = id;
            }
        }
    }
    let sec = seal_section(sec, version);
    let postings_off = put(&mut out, &sec)?;
    let postings_len = sec.len() as u64;

    let footer = Footer {
        series_off,
        series_len,
        postings_off,
        postings_len,
        min_t,
        max_t,
        series: series.len() as u64,
        samples,
    };
    put(&mut out, &footer.encode())?;
    let bytes = pos;
    let f = out.into_inner().map_err(|e| io_err(&tmp, e.into_error()))?;
    f.sync_all().map_err(|e| io_err(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
    sync_dir(tenant_dir)?;
    let file = File::open(&path).map_err(|e| io_err(&path, e))?;
    Ok(Block {
        path,
        id,
        file,
        version,
        bytes,
        min_t,
        max_t,
        samples,
        index,
        chunks: refs,
    })
}

/// Encodes one chunk record body into `out` (cleared first): the encoding tag, then the
/// smaller of the decimal and the Gorilla encoding (Gorilla on a tie: it needs no
/// reference timestamp).
fn encode_chunk(part: &[Sample], version: u32, out: &mut Vec<u8>) {
    out.clear();
    if version == 1 {
        out.extend_from_slice(&chunk::encode(part));
        return;
    }
    let dec = decimal::encode(part);
    // A Gorilla chunk takes at least its 18-byte header and first sample, then 2 bits a
    // sample: a decimal chunk within that needs no comparison (the usual case).
    let gorilla_floor = 18 + (part.len() - 1) / 4;
    if let Some(d) = dec.as_ref().filter(|d| d.len() < gorilla_floor) {
        out.push(CHUNK_DECIMAL);
        out.extend_from_slice(d);
        return;
    }
    let gorilla = chunk::encode(part);
    match dec {
        Some(d) if d.len() < gorilla.len() => {
            out.push(CHUNK_DECIMAL);
            out.extend_from_slice(&d);
        }
        _ => {
            out.push(CHUNK_GORILLA);
            out.extend_from_slice(&gorilla);
        }
    }
}

/// A section: (version 2) the zstd frame of its body, or (version 1) the body; then the
/// CRC of the bytes before it.
fn seal_section(body: Vec<u8>, version: u32) -> Vec<u8> {
    let mut out = if version == 1 {
        body
    } else {
        zstd::bulk::compress(&body, SECTION_ZSTD_LEVEL)
            .expect("BUG: zstd compression into a growable buffer failed")
    };
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// An open block: its index and chunk references in memory, chunks read on demand.
#[derive(Debug)]
pub struct Block {
    path: PathBuf,
    id: u64,
    file: File,
    /// Format version of the file (1 or 2).
    version: u32,
    bytes: u64,
    min_t: i64,
    max_t: i64,
    samples: u64,
    index: Index,
    chunks: Vec<Vec<ChunkRef>>,
}

impl Block {
    /// Opens and validates a block file (footer, section CRCs, index consistency; chunk
    /// CRCs are checked when read).
    ///
    /// # Errors
    /// [`Error::Corruption`] naming the file and the offset of the damaged part; I/O errors.
    pub fn open(path: &Path, id: u64) -> Result<Block> {
        let file = File::open(path).map_err(|e| io_err(path, e))?;
        let bytes = file.metadata().map_err(|e| io_err(path, e))?.len();
        if bytes < HEADER_LEN + FOOTER_LEN {
            return Err(corrupt(
                path,
                0,
                format!("block file of {bytes} bytes is too short"),
            ));
        }
        let mut header = [0u8; HEADER_LEN as usize];
        file.read_exact_at(&mut header, 0)
            .map_err(|e| io_err(path, e))?;
        let version = u32::from_le_bytes(header[4..].try_into().expect("BUG: 4 bytes"));
        if header[..4] != MAGIC || !(1..=VERSION).contains(&version) {
            return Err(corrupt(
                path,
                0,
                "block header has a wrong magic or version",
            ));
        }
        let foot_off = bytes - FOOTER_LEN;
        let mut foot = vec![0u8; FOOTER_LEN as usize];
        file.read_exact_at(&mut foot, foot_off)
            .map_err(|e| io_err(path, e))?;
        if foot[FOOTER_LEN as usize - 4..] != MAGIC {
            return Err(corrupt(path, bytes - 4, "block footer magic is wrong"));
        }
        let stored = u32::from_le_bytes(foot[64..68].try_into().expect("BUG: 4 bytes"));
        if crc32fast::hash(&foot[..64]) != stored {
            return Err(corrupt(path, foot_off, "block footer crc mismatch"));
        }
        let mut r = Reader::new(&foot, foot_off);
        let mut f = || r.u64("footer field").expect("BUG: footer length checked");
        let footer = Footer {
            series_off: f(),
            series_len: f(),
            postings_off: f(),
            postings_len: f(),
            min_t: f() as i64,
            max_t: f() as i64,
            series: f(),
            samples: f(),
        };
        let section = |off: u64, len: u64, what: &str| -> Result<Vec<u8>> {
            if off < HEADER_LEN || len < 4 || off.checked_add(len).is_none_or(|e| e > foot_off) {
                return Err(corrupt(
                    path,
                    foot_off,
                    format!("footer {what} section {off}+{len} is out of bounds"),
                ));
            }
            let mut buf = vec![0u8; len as usize];
            file.read_exact_at(&mut buf, off)
                .map_err(|e| io_err(path, e))?;
            let body = len as usize - 4;
            let stored = u32::from_le_bytes(buf[body..].try_into().expect("BUG: 4 bytes"));
            if crc32fast::hash(&buf[..body]) != stored {
                return Err(corrupt(
                    path,
                    off,
                    format!("block {what} section crc mismatch"),
                ));
            }
            buf.truncate(body);
            if version == 1 {
                return Ok(buf);
            }
            zstd::stream::decode_all(&buf[..]).map_err(|e| {
                corrupt(
                    path,
                    off,
                    format!("block {what} section does not decompress: {e}"),
                )
            })
        };
        let series_buf = section(footer.series_off, footer.series_len, "series")?;
        let postings_buf = section(footer.postings_off, footer.postings_len, "postings")?;
        let c = |r: &Reader<'_>, reason: String| corrupt(path, r.offset(), reason);

        let mut r = Reader::new(&series_buf, footer.series_off);
        let n = r.count("series count", 2).map_err(|e| c(&r, e))?;
        if n as u64 != footer.series {
            return Err(corrupt(
                path,
                footer.series_off,
                format!(
                    "series section holds {n} series, footer says {}",
                    footer.series
                ),
            ));
        }
        let mut labels_list = Vec::with_capacity(n);
        let mut chunks = Vec::with_capacity(n);
        for i in 0..n {
            let parse = |r: &mut Reader<'_>| -> Result<(Labels, Vec<ChunkRef>), String> {
                let nl = r.count(&format!("series {i} label count"), 2)?;
                let mut pairs = Vec::with_capacity(nl);
                for _ in 0..nl {
                    let name = r.str(&format!("series {i} label name"))?;
                    let value = r.str(&format!("series {i} label value"))?;
                    pairs.push((name, value));
                }
                let labels =
                    Labels::from_pairs(pairs).map_err(|e| format!("series {i} labels: {e}"))?;
                if labels.len() != nl {
                    return Err(format!("series {i} has an empty label value"));
                }
                let nc = r.count(&format!("series {i} chunk count"), 4)?;
                let mut refs = Vec::with_capacity(nc);
                for k in 0..nc {
                    let what = format!("series {i} chunk {k}");
                    let min_t = r.varint(&what)?;
                    let max_t = r.varint(&what)?;
                    let offset = r.uvarint(&what)?;
                    let len = r.uvarint(&what)?;
                    if min_t > max_t
                        || offset < HEADER_LEN
                        || len > u64::from(u32::MAX)
                        || offset + len + 4 > footer.series_off
                    {
                        return Err(format!(
                            "{what} reference {offset}+{len} [{min_t}, {max_t}] is invalid"
                        ));
                    }
                    refs.push(ChunkRef {
                        min_t,
                        max_t,
                        offset,
                        len: len as u32,
                    });
                }
                Ok((labels, refs))
            };
            let at = r.offset();
            let (labels, refs) = parse(&mut r).map_err(|e| corrupt(path, at, e))?;
            if labels_list
                .last()
                .is_some_and(|prev: &Labels| *prev >= labels)
            {
                return Err(corrupt(
                    path,
                    at,
                    format!("series {i} is not sorted after its predecessor"),
                ));
            }
            labels_list.push(labels);
            chunks.push(refs);
        }
        if r.remaining() != 0 {
            return Err(corrupt(
                path,
                r.offset(),
                "trailing bytes in the series section",
            ));
        }

        let mut r = Reader::new(&postings_buf, footer.postings_off);
        let mut postings: BTreeMap<String, BTreeMap<String, Postings>> = BTreeMap::new();
        let mut parse_postings = |r: &mut Reader<'_>| -> Result<(), String> {
            let names = r.count("postings name count", 2)?;
            for _ in 0..names {
                let name = r.str("postings label name")?.to_string();
                let nv = r.count("postings value count", 2)?;
                let vals = postings.entry(name.clone()).or_default();
                for _ in 0..nv {
                    let value = r.str("postings label value")?.to_string();
                    let k = r.count("postings id count", 1)?;
                    let mut ids = Vec::with_capacity(k);
                    let mut prev = 0u64;
                    for j in 0..k {
                        let d = r.uvarint("postings id")?;
                        let id = if j == 0 { d } else { prev + d };
                        if (j > 0 && d == 0) || id >= n as u64 {
                            return Err(format!(
                                "postings of {name}={value:?} hold invalid id {id}"
                            ));
                        }
                        let l = &labels_list[id as usize];
                        if l.get(&name) != Some(value.as_str()) {
                            return Err(format!(
                                "postings of {name}={value:?} list series {id} without that label"
                            ));
                        }
                        ids.push(id as u32);
                        prev = id;
                    }
                    vals.insert(value, ids);
                }
            }
            if r.remaining() != 0 {
                return Err("trailing bytes in the postings section".into());
            }
            Ok(())
        };
        parse_postings(&mut r).map_err(|e| corrupt(path, r.offset(), e))?;
        let index = Index::from_parts(labels_list, postings)
            .map_err(|e| corrupt(path, footer.postings_off, e))?;
        Ok(Block {
            path: path.to_path_buf(),
            id,
            file,
            version,
            bytes,
            min_t: footer.min_t,
            max_t: footer.max_t,
            samples: footer.samples,
            index,
            chunks,
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// File size.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn min_t(&self) -> i64 {
        self.min_t
    }

    pub fn max_t(&self) -> i64 {
        self.max_t
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }

    pub fn series(&self) -> usize {
        self.index.len()
    }

    /// Reads, checks and decodes one chunk.
    fn read_chunk(&self, c: &ChunkRef) -> Result<Vec<Sample>> {
        let mut buf = vec![0u8; c.len as usize + 4];
        self.file
            .read_exact_at(&mut buf, c.offset)
            .map_err(|e| io_err(&self.path, e))?;
        let body = c.len as usize;
        let stored = u32::from_le_bytes(buf[body..].try_into().expect("BUG: 4 bytes"));
        if crc32fast::hash(&buf[..body]) != stored {
            return Err(corrupt(&self.path, c.offset, "chunk crc mismatch"));
        }
        let data = &buf[..body];
        let decoded = match (self.version, data.split_first()) {
            (1, _) => chunk::decode(data),
            (_, Some((&CHUNK_GORILLA, rest))) => chunk::decode(rest),
            (_, Some((&CHUNK_DECIMAL, rest))) => decimal::decode(rest, c.min_t),
            (_, Some((tag, _))) => Err(format!("unknown chunk encoding {tag}")),
            (_, None) => Err("empty chunk record".into()),
        };
        let samples = decoded.map_err(|e| corrupt(&self.path, c.offset, e))?;
        let (first, last) = (samples.first(), samples.last());
        if first.map(|s| s.timestamp_ms) != Some(c.min_t)
            || last.map(|s| s.timestamp_ms) != Some(c.max_t)
        {
            return Err(corrupt(
                &self.path,
                c.offset,
                format!(
                    "chunk samples do not span its reference [{}, {}]",
                    c.min_t, c.max_t
                ),
            ));
        }
        Ok(samples)
    }

    fn series_samples(&self, id: u32, start: i64, end: i64) -> Result<Vec<Sample>> {
        let mut out = Vec::new();
        for c in &self.chunks[id as usize] {
            if c.min_t <= end && c.max_t >= start {
                out.extend(
                    self.read_chunk(c)?
                        .into_iter()
                        .filter(|s| s.timestamp_ms >= start && s.timestamp_ms <= end),
                );
            }
        }
        Ok(out)
    }

    /// Series matching `matchers` with samples in `[start, end]`, sorted by labels.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a damaged chunk; I/O errors.
    pub fn select(
        &self,
        matchers: &[LabelMatcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<TimeSeries>> {
        if self.max_t < start || self.min_t > end {
            return Ok(Vec::new());
        }
        // Ids are allocated in label order, so the output is sorted by labels.
        let mut out = Vec::new();
        for id in self.index.select(matchers) {
            let samples = self.series_samples(id, start, end)?;
            if !samples.is_empty() {
                out.push(TimeSeries {
                    labels: self.index.labels(id).clone(),
                    samples,
                });
            }
        }
        Ok(out)
    }

    /// Labels of matching series with a chunk overlapping `[start, end]`.
    pub fn series_labels(&self, matchers: &[LabelMatcher], start: i64, end: i64) -> Vec<Labels> {
        if self.max_t < start || self.min_t > end {
            return Vec::new();
        }
        self.index
            .select(matchers)
            .into_iter()
            .filter(|&id| {
                self.chunks[id as usize]
                    .iter()
                    .any(|c| c.min_t <= end && c.max_t >= start)
            })
            .map(|id| self.index.labels(id).clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::MatchKind;
    use sightline_model::sample::STALE_NAN_BITS;

    fn series(n: usize, samples: i64) -> Vec<TimeSeries> {
        let mut v: Vec<TimeSeries> = (0..n)
            .map(|i| TimeSeries {
                labels: Labels::from_pairs([("__name__", "m"), ("i", &*format!("{i:03}"))])
                    .unwrap(),
                samples: (0..samples)
                    .map(|t| Sample {
                        timestamp_ms: t * 1000,
                        value: if t == 3 {
                            f64::from_bits(STALE_NAN_BITS)
                        } else {
                            (t * i as i64) as f64
                        },
                    })
                    .collect(),
            })
            .collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }

    fn bits(v: &[TimeSeries]) -> Vec<(Labels, Vec<(i64, u64)>)> {
        v.iter()
            .map(|s| {
                (
                    s.labels.clone(),
                    s.samples
                        .iter()
                        .map(|x| (x.timestamp_ms, x.value.to_bits()))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn write_open_select_round_trip() {
        for version in [1, VERSION] {
            round_trip_as(version);
        }
    }

    fn round_trip_as(version: u32) {
        let dir = tempfile::tempdir().unwrap();
        let input = series(20, 300);
        let written = write_as(dir.path(), 7, &input, version).unwrap();
        let b = Block::open(&block_path(dir.path(), 7), 7).unwrap();
        assert_eq!(
            (b.min_t(), b.max_t(), b.samples(), b.series()),
            (0, 299_000, 6000, 20)
        );
        assert_eq!(b.bytes(), written.bytes());
        assert_eq!(
            bits(&b.select(&[], i64::MIN, i64::MAX).unwrap()),
            bits(&input)
        );
        let m = LabelMatcher::new("i", MatchKind::Regex, "00[12]").unwrap();
        let got = b.select(&[m], 5000, 10_000).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].samples.len(), 6);
        assert!(b.select(&[], 400_000, 500_000).unwrap().is_empty());
        assert_eq!(b.series_labels(&[], 0, 0).len(), 20);
        assert_eq!(parse_block_name("00000000000000000007.block"), Some(7));
    }

    #[test]
    fn every_corrupted_byte_is_detected_and_names_the_file() {
        for version in [1, VERSION] {
            corruption_as(version);
        }
    }

    #[test]
    fn version_2_picks_decimal_chunks_and_is_smaller() {
        let dir = tempfile::tempdir().unwrap();
        // A cpu-seconds-like counter in 1/100 s and a constant, 2 h at 15 s.
        let mut v = 100.0f64;
        let cpu: Vec<Sample> = (0..480)
            .map(|i| {
                v = ((v + 9.0 + (i * 7 % 300) as f64 / 100.0) * 100.0).round() / 100.0;
                Sample {
                    timestamp_ms: 1_700_000_000_000 + i * 15_000,
                    value: v,
                }
            })
            .collect();
        let konst: Vec<Sample> = cpu
            .iter()
            .map(|s| Sample {
                value: 4096.0,
                ..*s
            })
            .collect();
        let mut input = vec![
            TimeSeries {
                labels: Labels::from_pairs([("__name__", "cpu")]).unwrap(),
                samples: cpu,
            },
            TimeSeries {
                labels: Labels::from_pairs([("__name__", "k")]).unwrap(),
                samples: konst,
            },
        ];
        input.sort_by(|a, b| a.labels.cmp(&b.labels));
        let v1 = write_as(dir.path(), 1, &input, 1).unwrap();
        let v2 = write(dir.path(), 2, &input).unwrap();
        assert!(
            v2.bytes() * 3 < v1.bytes(),
            "v1 {} v2 {}",
            v1.bytes(),
            v2.bytes()
        );
        let b = Block::open(&block_path(dir.path(), 2), 2).unwrap();
        assert_eq!(
            bits(&b.select(&[], i64::MIN, i64::MAX).unwrap()),
            bits(&input)
        );
        let tags: Vec<u8> = b
            .chunks
            .iter()
            .flatten()
            .map(|c| {
                let mut t = [0u8; 1];
                b.file.read_exact_at(&mut t, c.offset).unwrap();
                t[0]
            })
            .collect();
        assert_eq!(tags, vec![CHUNK_DECIMAL; 4]);
    }

    fn corruption_as(version: u32) {
        let dir = tempfile::tempdir().unwrap();
        let input = series(3, 130);
        write_as(dir.path(), 1, &input, version).unwrap();
        let path = block_path(dir.path(), 1);
        let good = fs::read(&path).unwrap();
        // Every byte is covered by a magic, a section CRC, a chunk CRC or the footer CRC.
        for i in (0..good.len()).step_by(3) {
            let mut bad = good.clone();
            bad[i] ^= 0x41;
            fs::write(&path, &bad).unwrap();
            let res = Block::open(&path, 1).and_then(|b| b.select(&[], i64::MIN, i64::MAX));
            match res {
                Err(Error::Corruption {
                    path: p, offset, ..
                }) => {
                    assert_eq!(p, path);
                    assert!(offset < good.len() as u64);
                }
                other => panic!("byte {i}: expected corruption, got {other:?}"),
            }
        }
        fs::write(&path, &good[..good.len() - 1]).unwrap();
        assert!(matches!(
            Block::open(&path, 1),
            Err(Error::Corruption { .. })
        ));
    }
}
