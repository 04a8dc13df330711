//! WAL recovery: round trips, torn tails truncated and reported, corruption elsewhere
//! refused with the file and frame offset.

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use sightline_model::{Attributes, LogRecord, Tenant, Value};
use sightline_storage::wal::{Batch, FsyncPolicy, Wal, HEADER_LEN};
use sightline_storage::Error;

fn rec(i: i64) -> LogRecord {
    LogRecord {
        timestamp: 1_700_000_000_000_000_000 + i,
        service: "svc".into(),
        body: format!("message number {i}"),
        attributes: Attributes::from_pairs([("n".to_string(), Value::Int(i))]),
        ..Default::default()
    }
}

fn tenant(s: &str) -> Tenant {
    Tenant::new(s).unwrap()
}

fn open(
    dir: &Path,
    checkpoint: u64,
) -> sightline_storage::Result<(Wal, Vec<Batch>, sightline_storage::wal::ReplayReport)> {
    let mut got = Vec::new();
    let (wal, report) = Wal::open(dir, FsyncPolicy::Always, 1 << 20, checkpoint, &mut |b| {
        got.push(b)
    })?;
    Ok((wal, got, report))
}

/// Writes `n` batches of 2 records each into a fresh WAL; returns the batches.
fn write_batches(dir: &Path, n: i64) -> Vec<Batch> {
    let (mut wal, got, _) = open(dir, 0).unwrap();
    assert!(got.is_empty());
    (0..n)
        .map(|i| {
            let records = vec![rec(i * 2), rec(i * 2 + 1)];
            let seq = wal.append(&tenant("t1"), &records).unwrap();
            Batch {
                seq,
                tenant: tenant("t1"),
                records,
            }
        })
        .collect()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Offsets of the frames in a segment, read from their length fields.
fn frame_offsets(path: &Path) -> Vec<u64> {
    let data = fs::read(path).unwrap();
    let mut off = HEADER_LEN as usize;
    let mut v = Vec::new();
    while off < data.len() {
        v.push(off as u64);
        off += 8 + u32::from_le_bytes(data[off..off + 4].try_into().unwrap()) as usize;
    }
    v
}

#[test]
fn round_trip_and_checkpoint_skip() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_batches(dir.path(), 3);
    assert_eq!(written.iter().map(|b| b.seq).collect::<Vec<_>>(), [1, 2, 3]);
    let (mut wal, got, report) = open(dir.path(), 0).unwrap();
    assert_eq!(got, written);
    assert_eq!(
        (report.batches, report.records, report.truncated),
        (3, 6, None)
    );
    assert_eq!(wal.append(&tenant("t2"), &[rec(9)]).unwrap(), 4);
    drop(wal);
    let (_, got, report) = open(dir.path(), 2).unwrap();
    assert_eq!(got.iter().map(|b| b.seq).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(got[1].tenant.as_str(), "t2");
    assert_eq!(report.records, 3);
}

#[test]
fn sequence_continues_after_checkpoint_when_segments_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, got, _) = open(dir.path(), 41).unwrap();
    assert!(got.is_empty());
    assert_eq!(wal.append(&tenant("t1"), &[rec(1)]).unwrap(), 42);
}

#[test]
fn rotation_and_removal_of_checkpointed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), FsyncPolicy::Never, 1, 0, &mut |_| {}).unwrap();
    for i in 0..3 {
        wal.append(&tenant("t1"), &[rec(i)]).unwrap();
    }
    // Each append exceeds the 1-byte limit: 3 closed segments + the current one.
    assert_eq!(wal.segments(), 4);
    assert_eq!(wal.remove_checkpointed(2).unwrap(), 2);
    assert_eq!(segments(dir.path()).len(), 2);
    drop(wal);
    let (_, got, _) = open(dir.path(), 0).unwrap();
    assert_eq!(got.iter().map(|b| b.seq).collect::<Vec<_>>(), [3]);
}

#[test]
fn torn_last_frame_is_truncated_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_batches(dir.path(), 3);
    let seg = segments(dir.path()).pop().unwrap();
    let last = *frame_offsets(&seg).last().unwrap();
    let len = fs::metadata(&seg).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 5)
        .unwrap();

    let (mut wal, got, report) = open(dir.path(), 0).unwrap();
    assert_eq!(got, written[..2]);
    assert_eq!(report.truncated, Some((seg.clone(), last)));
    assert_eq!(fs::metadata(&seg).unwrap().len(), last);
    assert_eq!(wal.append(&tenant("t1"), &[rec(100)]).unwrap(), 3);
    drop(wal);
    let (_, got, report) = open(dir.path(), 0).unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(report.truncated, None);
}

#[test]
fn garbage_after_last_frame_is_truncated_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_batches(dir.path(), 3);
    let seg = segments(dir.path()).pop().unwrap();
    let len = fs::metadata(&seg).unwrap().len();
    let mut data = fs::read(&seg).unwrap();
    data.extend((0..300u32).map(|i| (i * 7919 % 251) as u8));
    fs::write(&seg, &data).unwrap();

    let (_, got, report) = open(dir.path(), 0).unwrap();
    assert_eq!(got, written);
    assert_eq!(report.truncated, Some((seg.clone(), len)));
    assert_eq!(fs::metadata(&seg).unwrap().len(), len);
}

#[test]
fn flipped_byte_in_non_last_segment_is_corruption_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _, _) = open(dir.path(), 0).unwrap();
    for i in 0..3 {
        wal.append(&tenant("t1"), &[rec(i)]).unwrap();
    }
    wal.rotate().unwrap();
    wal.append(&tenant("t1"), &[rec(3)]).unwrap();
    drop(wal);
    let first = segments(dir.path()).remove(0);
    let middle = frame_offsets(&first)[1];
    let mut data = fs::read(&first).unwrap();
    data[middle as usize + 20] ^= 0x01;
    fs::write(&first, &data).unwrap();

    match open(dir.path(), 0) {
        Err(Error::Corruption {
            path,
            offset,
            reason,
        }) => {
            assert_eq!(path, first);
            assert_eq!(offset, middle);
            assert!(reason.contains("crc"), "{reason}");
        }
        other => panic!(
            "expected corruption, got {:?}",
            other.map(|(_, b, r)| (b.len(), r))
        ),
    }
}

#[test]
fn bad_frame_followed_by_valid_frames_in_last_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    write_batches(dir.path(), 3);
    let seg = segments(dir.path()).pop().unwrap();
    let middle = frame_offsets(&seg)[1];
    let mut data = fs::read(&seg).unwrap();
    data[middle as usize + 30] ^= 0x80;
    fs::write(&seg, &data).unwrap();
    let err = open(dir.path(), 0).map(|_| ()).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { path, offset, .. } if *path == seg && *offset == middle),
        "{err}"
    );
    // Never silently fixed: the file is untouched.
    assert_eq!(fs::read(&seg).unwrap(), data);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_truncation_replays_a_prefix(cut_permille in 0u64..=1000) {
        let dir = tempfile::tempdir().unwrap();
        let written = write_batches(dir.path(), 5);
        let seg = segments(dir.path()).pop().unwrap();
        let len = fs::metadata(&seg).unwrap().len();
        let cut = len * cut_permille / 1000;
        fs::OpenOptions::new().write(true).open(&seg).unwrap().set_len(cut).unwrap();
        let boundaries = frame_offsets_upto(&written, cut);
        let (_, got, report) = open(dir.path(), 0).unwrap();
        prop_assert_eq!(&got[..], &written[..got.len()]);
        prop_assert_eq!(got.len(), boundaries.0);
        prop_assert_eq!(report.truncated.is_some(), !boundaries.1);
    }
}

/// How many whole frames fit below `cut`, and whether `cut` is exactly at a frame end.
fn frame_offsets_upto(written: &[Batch], cut: u64) -> (usize, bool) {
    let mut end = HEADER_LEN;
    let mut n = 0;
    for b in written {
        let frame = 8 + sightline_storage::wal::encode_batch(b.seq, b.tenant.as_str(), &b.records)
            .len() as u64;
        if end + frame > cut {
            break;
        }
        end += frame;
        n += 1;
    }
    (n, end == cut)
}
