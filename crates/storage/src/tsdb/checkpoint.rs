//! The head checkpoint: after blocks are durable, what is left in every tenant's head (and
//! its metric metadata) is written here together with the WAL sequence number it covers,
//! so WAL segments up to that number can be deleted. Read on open before the WAL replay.
//! Layout (`docs/format/tsdb-wal.md`, "Checkpoint"): magic `SLHC`, version u32, seq u64,
//! then one CRC-framed sample batch (`batch.rs`) per tenant.
//!
//! Hand-written for the same reasons as the WAL it stands in for (byte-exact f64s, CRC per
//! frame); written to a temporary file, fsynced and renamed, so it is all-or-nothing.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use sightline_model::{MetricMetadata, TimeSeries};

use super::batch::{self, SampleBatch};
use super::bytes::Reader;
use crate::error::{Error, Result};
use crate::wal::sync_dir;

pub const MAGIC: [u8; 4] = *b"SLHC";
pub const VERSION: u32 = 1;
pub const FILE_NAME: &str = "head.checkpoint";

/// One tenant's head contents as of a checkpoint.
pub type TenantState = (String, Vec<TimeSeries>, Vec<MetricMetadata>);

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Atomically replaces `<dir>/head.checkpoint`.
///
/// # Errors
/// I/O errors.
pub fn write(dir: &Path, seq: u64, tenants: &[TenantState]) -> Result<()> {
    let path = dir.join(FILE_NAME);
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    for (tenant, series, meta) in tenants {
        let payload = batch::encode(seq, tenant, series, meta);
        let len = u32::try_from(payload.len()).map_err(|_| {
            io_err(
                &path,
                std::io::Error::other(format!("checkpoint of tenant {tenant} exceeds 4 GiB")),
            )
        })?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
    }
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&tmp)
        .map_err(|e| io_err(&tmp, e))?;
    f.write_all(&out)
        .and_then(|()| f.sync_all())
        .map_err(|e| io_err(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
    sync_dir(dir)
}

/// Reads `<dir>/head.checkpoint`: its sequence number and per-tenant batches; `(0, [])`
/// when there is none.
///
/// # Errors
/// [`Error::Corruption`] naming the file and offset; I/O errors.
pub fn read(dir: &Path) -> Result<(u64, Vec<SampleBatch>)> {
    let path = dir.join(FILE_NAME);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, Vec::new())),
        Err(e) => return Err(io_err(&path, e)),
    };
    let corrupt = |offset: u64, reason: String| Error::Corruption {
        path: path.clone(),
        offset,
        reason,
    };
    let mut r = Reader::new(&data, 0);
    let head = r.take(8, "checkpoint header").map_err(|e| corrupt(0, e))?;
    if head[..4] != MAGIC || head[4..] != VERSION.to_le_bytes() {
        return Err(corrupt(
            0,
            "checkpoint header has a wrong magic or version".into(),
        ));
    }
    let seq = r.u64("checkpoint sequence").map_err(|e| corrupt(8, e))?;
    let mut batches = Vec::new();
    while r.remaining() > 0 {
        let at = r.offset();
        let len = r.u32("frame length").map_err(|e| corrupt(at, e))?;
        let crc = r.u32("frame crc").map_err(|e| corrupt(at, e))?;
        let payload = r
            .take(len as usize, "frame payload")
            .map_err(|e| corrupt(at, e))?;
        if crc32fast::hash(payload) != crc {
            return Err(corrupt(at, "checkpoint frame crc mismatch".into()));
        }
        let b = batch::decode(payload).map_err(|e| corrupt(at, e))?;
        if b.seq != seq {
            return Err(corrupt(
                at,
                format!("frame sequence {} differs from {seq}", b.seq),
            ));
        }
        batches.push(b);
    }
    Ok((seq, batches))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::{Labels, Sample};

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), (0, Vec::new()));
        let ts = TimeSeries {
            labels: Labels::from_pairs([("a", "b")]).unwrap(),
            samples: vec![Sample {
                timestamp_ms: 5,
                value: 1.5,
            }],
        };
        let states = vec![
            ("t1".to_string(), vec![ts.clone()], vec![]),
            ("t2".to_string(), vec![], vec![]),
        ];
        write(dir.path(), 42, &states).unwrap();
        let (seq, batches) = read(dir.path()).unwrap();
        assert_eq!(seq, 42);
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].series, vec![ts]);
        let path = dir.path().join(FILE_NAME);
        let mut data = fs::read(&path).unwrap();
        let n = data.len();
        data[n - 20] ^= 1;
        fs::write(&path, &data).unwrap();
        match read(dir.path()) {
            Err(Error::Corruption { path: p, .. }) => assert_eq!(p, path),
            other => panic!("{other:?}"),
        }
    }
}
