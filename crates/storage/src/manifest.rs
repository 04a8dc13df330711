//! The event store's manifest: the single source of truth for which part files exist and
//! up to which WAL batch their contents reach. Written by flushes, merges and retention;
//! read once when the store opens. Layout: `docs/format/manifest.md`.
//!
//! JSON (not a hand-written binary format) because it is small, rewritten rarely, and
//! worth being readable by an operator during an incident.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sightline_model::time::{parse_rfc3339, NANOS_PER_DAY};

use crate::error::{Error, Result};
use crate::wal::sync_dir;

/// Version of the manifest JSON written by this code.
pub const MANIFEST_VERSION: u32 = 1;
/// File name of the manifest inside the `logs` directory.
pub const MANIFEST_FILE: &str = "MANIFEST";
const MANIFEST_TMP: &str = "MANIFEST.tmp";

/// One part file listed in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartEntry {
    pub tenant: String,
    /// `YYYY-MM-DD` (UTC) of the partition.
    pub day: String,
    pub id: u64,
    pub rows: u64,
    pub bytes: u64,
    pub min_ts: i64,
    pub max_ts: i64,
}

impl PartEntry {
    /// `<logs_dir>/<tenant>/<day>/<id>.part`.
    pub fn path(&self, logs_dir: &Path) -> PathBuf {
        part_path(logs_dir, &self.tenant, &self.day, self.id)
    }
}

/// Where part `id` of a partition lives.
pub fn part_path(logs_dir: &Path, tenant: &str, day: &str, id: u64) -> PathBuf {
    logs_dir.join(tenant).join(day).join(format!("{id}.part"))
}

/// The manifest contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    /// Every WAL batch with a sequence number up to this one is in the listed parts.
    pub wal_checkpoint_seq: u64,
    /// The id the next written part gets; ids are never reused.
    pub next_part_id: u64,
    pub parts: Vec<PartEntry>,
}

impl Default for Manifest {
    fn default() -> Self {
        Self {
            version: MANIFEST_VERSION,
            wal_checkpoint_seq: 0,
            next_part_id: 1,
            parts: Vec::new(),
        }
    }
}

impl Manifest {
    /// Reads `<logs_dir>/MANIFEST`; an absent file is an empty manifest (new store).
    ///
    /// # Errors
    /// [`Error::Corruption`] when the file is not valid manifest JSON or names an unknown
    /// version or a malformed day; I/O errors.
    pub fn load(logs_dir: &Path) -> Result<Manifest> {
        let path = logs_dir.join(MANIFEST_FILE);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Manifest::default()),
            Err(source) => return Err(Error::Io { path, source }),
        };
        let corrupt = |offset: u64, reason: String| Error::Corruption {
            path: path.clone(),
            offset,
            reason,
        };
        let m: Manifest = serde_json::from_slice(&text).map_err(|e| {
            corrupt(
                line_col_offset(&text, e.line(), e.column()),
                format!("cannot decode manifest: {e}"),
            )
        })?;
        if m.version != MANIFEST_VERSION {
            return Err(corrupt(
                0,
                format!("unknown manifest version {}", m.version),
            ));
        }
        for (i, p) in m.parts.iter().enumerate() {
            if parse_day(&p.day).is_none() {
                return Err(corrupt(
                    0,
                    format!("part {i} has malformed day {:?}", p.day),
                ));
            }
            if sightline_model::Tenant::new(&p.tenant).is_err() {
                return Err(corrupt(
                    0,
                    format!("part {i} has invalid tenant {:?}", p.tenant),
                ));
            }
            if p.id >= m.next_part_id {
                return Err(corrupt(
                    0,
                    format!(
                        "part {i} id {} is not below next_part_id {}",
                        p.id, m.next_part_id
                    ),
                ));
            }
        }
        Ok(m)
    }

    /// Writes the manifest atomically: `MANIFEST.tmp`, fsync, rename over `MANIFEST`,
    /// fsync the directory.
    ///
    /// # Errors
    /// I/O errors; the previous manifest stays in effect then.
    pub fn store(&self, logs_dir: &Path) -> Result<()> {
        let tmp = logs_dir.join(MANIFEST_TMP);
        let path = logs_dir.join(MANIFEST_FILE);
        let json = serde_json::to_vec_pretty(self).expect("BUG: manifest always serializes");
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()
        };
        write().map_err(|source| Error::Io {
            path: tmp.clone(),
            source,
        })?;
        fs::rename(&tmp, &path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        sync_dir(logs_dir)
    }

    /// Sum of the listed parts' sizes.
    pub fn part_bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.bytes).sum()
    }
}

/// The day number (days since the epoch) of a `YYYY-MM-DD` name.
pub fn parse_day(day: &str) -> Option<i64> {
    if day.len() != 10 {
        return None;
    }
    parse_rfc3339(&format!("{day}T00:00:00Z"))
        .ok()
        .map(|ns| ns.div_euclid(NANOS_PER_DAY))
}

fn line_col_offset(text: &[u8], line: usize, column: usize) -> u64 {
    let mut off = 0usize;
    for (i, l) in text.split(|&b| b == b'\n').enumerate() {
        if i + 1 == line {
            return (off + column.saturating_sub(1)) as u64;
        }
        off += l.len() + 1;
    }
    off.min(text.len()) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::time::{day_name, day_of};

    fn sample() -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            wal_checkpoint_seq: 17,
            next_part_id: 4,
            parts: vec![PartEntry {
                tenant: "acme".into(),
                day: "2024-05-01".into(),
                id: 3,
                rows: 10,
                bytes: 999,
                min_ts: 1,
                max_ts: 2,
            }],
        }
    }

    #[test]
    fn store_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Manifest::default());
        sample().store(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), sample());
        assert!(!dir.path().join(MANIFEST_TMP).exists());
        let json = fs::read_to_string(dir.path().join(MANIFEST_FILE)).unwrap();
        assert!(json.contains("\"wal_checkpoint_seq\": 17"), "{json}");
    }

    #[test]
    fn damaged_manifest_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(MANIFEST_FILE),
            b"{\n  \"version\": 1,\n  oops",
        )
        .unwrap();
        match Manifest::load(dir.path()) {
            Err(Error::Corruption { offset, .. }) => assert!(offset > 10, "{offset}"),
            other => panic!("expected corruption, got {other:?}"),
        }
        let mut m = sample();
        m.parts[0].day = "2024-13-01".into();
        m.store(dir.path()).unwrap();
        assert!(matches!(
            Manifest::load(dir.path()),
            Err(Error::Corruption { .. })
        ));
        let mut m = sample();
        m.next_part_id = 3;
        m.store(dir.path()).unwrap();
        assert!(matches!(
            Manifest::load(dir.path()),
            Err(Error::Corruption { .. })
        ));
    }

    #[test]
    fn day_names_parse_back() {
        for ns in [0i64, -1, 1_700_000_000_000_000_000] {
            let d = day_of(ns);
            assert_eq!(parse_day(&day_name(d)), Some(d));
        }
        assert_eq!(parse_day("2024-5-1"), None);
        assert_eq!(
            part_path(Path::new("/x"), "t", "2024-05-01", 7),
            Path::new("/x/t/2024-05-01/7.part")
        );
    }
}
