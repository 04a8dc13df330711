//! The event store end to end on a temp dir: visibility, durability across reopen,
//! exactly-once checkpoints, tenant isolation, merges, retention, concurrency, close.

use std::collections::HashSet;
use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sightline_model::time::{now_ns, NANOS_PER_DAY};
use sightline_model::{LogRecord, Tenant};
use sightline_storage::event_store::{EventStore, FsyncPolicy, StoreConfig};
use sightline_storage::manifest::Manifest;
use sightline_storage::{Error, LogStore, ScanRequest};

const DAY0: i64 = 19_800 * NANOS_PER_DAY; // 2024-03-18

fn cfg(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    // Tests drive flushes themselves.
    c.flush_interval = Duration::from_secs(3600);
    c
}

fn tenant(s: &str) -> Tenant {
    Tenant::new(s).unwrap()
}

fn rec(ts: i64, body: &str) -> LogRecord {
    LogRecord {
        timestamp: ts,
        observed_timestamp: ts,
        severity_number: 9,
        service: "api".into(),
        body: body.into(),
        ..Default::default()
    }
}

fn commit(store: &EventStore, t: &str, records: Vec<LogRecord>) -> usize {
    let mut a = store.appender(&tenant(t));
    for r in records {
        a.append(r);
    }
    a.commit().unwrap()
}

fn batch(prefix: &str, ts: i64, n: usize) -> Vec<LogRecord> {
    (0..n)
        .map(|i| rec(ts + i as i64, &format!("{prefix}-{i}")))
        .collect()
}

/// Bodies of a tenant's records in `[start, end)`, sorted.
fn bodies_in(store: &EventStore, t: &str, start: i64, end: i64) -> Vec<String> {
    let q = store.querier(&tenant(t), start, end);
    let mut v = Vec::new();
    q.scan(&ScanRequest::default(), &mut |r| {
        v.push(r.body.clone());
        ControlFlow::Continue(())
    })
    .unwrap();
    v.sort();
    v
}

fn bodies(store: &EventStore, t: &str) -> Vec<String> {
    bodies_in(store, t, i64::MIN, i64::MAX)
}

fn part_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "part") {
                out.push(p);
            }
        }
    }
    let mut v = Vec::new();
    walk(&dir.join("logs"), &mut v);
    v.sort();
    v
}

#[test]
fn commit_is_visible_and_rollback_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let (store, report) = EventStore::open(cfg(dir.path())).unwrap();
    assert_eq!(report.batches, 0);
    assert_eq!(commit(&store, "t1", batch("a", DAY0, 3)), 3);
    let mut a = store.appender(&tenant("t1"));
    a.append(rec(DAY0, "rolled-back"));
    a.rollback();
    assert_eq!(bodies(&store, "t1"), ["a-0", "a-1", "a-2"]);
    // [start, end) bounds.
    assert_eq!(bodies_in(&store, "t1", DAY0 + 1, DAY0 + 2), ["a-1"]);
    assert_eq!(store.stats().buffered_rows, 3);
    // Early stop.
    let mut seen = 0;
    store
        .querier(&tenant("t1"), i64::MIN, i64::MAX)
        .scan(&ScanRequest::default(), &mut |_| {
            seen += 1;
            ControlFlow::Break(())
        })
        .unwrap();
    assert_eq!(seen, 1);
}

#[test]
fn reopen_without_flush_replays_wal() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = EventStore::open(cfg(dir.path())).unwrap();
    commit(&store, "t1", batch("a", DAY0, 4));
    commit(&store, "t1", batch("b", DAY0 + NANOS_PER_DAY, 2));
    drop(store);
    let (store, report) = EventStore::open(cfg(dir.path())).unwrap();
    assert_eq!((report.batches, report.records), (2, 6));
    assert_eq!(bodies(&store, "t1").len(), 6);
}

#[test]
fn flush_then_reopen_is_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = EventStore::open(cfg(dir.path())).unwrap();
    commit(&store, "t1", batch("a", DAY0, 10));
    store.flush().unwrap();
    let s = store.stats();
    assert_eq!(
        (s.parts, s.buffered_rows, s.flushes_total, s.wal_segments),
        (1, 0, 1, 1)
    );
    assert_eq!(bodies(&store, "t1").len(), 10);
    drop(store);
    let (store, report) = EventStore::open(cfg(dir.path())).unwrap();
    assert_eq!(report.batches, 0);
    let got = bodies(&store, "t1");
    assert_eq!(got.len(), 10);
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), 10);
}

#[test]
fn commit_flush_commit_reopen_has_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = EventStore::open(cfg(dir.path())).unwrap();
    commit(&store, "t1", batch("a", DAY0, 5));
    store.flush().unwrap();
    commit(&store, "t1", batch("b", DAY0, 5));
    drop(store);
    let (store, report) = EventStore::open(cfg(dir.path())).unwrap();
    assert_eq!(report.batches, 1);
    let got = bodies(&store, "t1");
    assert_eq!(got.len(), 10);
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), 10);
    // And again after a second flush and reopen.
    store.flush().unwrap();
    drop(store);
    let (store, report) = EventStore::open(cfg(dir.path())).unwrap();
    assert_eq!(report.batches, 0);
    assert_eq!(bodies(&store, "t1").len(), 10);
}

#[test]
fn tenants_are_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = EventStore::open(cfg(dir.path())).unwrap();
    commit(&store, "t1", batch("one", DAY0, 2));
    commit(&store, "t2", batch("two", DAY0, 3));
    assert_eq!(bodies(&store, "t1"), ["one-0", "one-1"]);
    store.flush().unwrap();
    commit(&store, "t2", batch("late", DAY0, 1));
    assert_eq!(bodies(&store, "t1"), ["one-0", "one-1"]);
    assert_eq!(bodies(&store, "t2").len(), 4);
    assert!(bodies(&store, "t3").is_empty());
}

#[test]
fn merge_reduces_parts_keeps_rows_and_defers_file_removal() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = EventStore::open(cfg(dir.path())).unwrap();
    for i in 0..3 {
        commit(&store, "t1", batch(&format!("m{i}"), DAY0 + i, 4));
        store.flush().unwrap();
    }
    assert_eq!(store.stats().parts, 3);
    let old_files = part_files(dir.path());
    assert_eq!(old_files.len(), 3);
    let held = store.querier(&tenant("t1"), i64::MIN, i64::MAX);
    store.merge_now().unwrap();
    let s = store.stats();
    assert_eq!((s.parts, s.merges_total), (1, 1));
    assert_eq!(bodies(&store, "t1").len(), 12);
    // A querier from before the merge still reads the old parts.
    assert!(old_files.iter().all(|p| p.exists()));
    let mut n = 0;
    held.scan(&ScanRequest::default(), &mut |_| {
        n += 1;
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(n, 12);
    drop(held);
    assert!(old_files.iter().all(|p| !p.exists()));
    assert_eq!(part_files(dir.path()).len(), 1);
    drop(store);
    let (store, _) = EventStore::open(cfg(dir.path())).unwrap();
    assert_eq!(bodies(&store, "t1").len(), 12);
}

#[test]
fn retention_by_age_drops_old_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.retention_period = Some(Duration::from_secs(3 * 86_400));
    let (store, _) = EventStore::open(c.clone()).unwrap();
    let now = now_ns();
    commit(&store, "t1", batch("old", now - 10 * NANOS_PER_DAY, 3));
    commit(&store, "t2", batch("old", now - 5 * NANOS_PER_DAY, 3));
    commit(&store, "t1", batch("new", now - 1000, 3));
    store.flush().unwrap();
    assert_eq!(store.stats().parts, 3);
    store.enforce_retention(now).unwrap();
    let s = store.stats();
    assert_eq!((s.parts, s.partitions_dropped_total), (1, 2));
    assert_eq!(bodies(&store, "t1"), ["new-0", "new-1", "new-2"]);
    assert!(bodies(&store, "t2").is_empty());
    assert_eq!(part_files(dir.path()).len(), 1);
    drop(store);
    let (store, _) = EventStore::open(c).unwrap();
    assert_eq!(bodies(&store, "t1").len(), 3);
    assert!(bodies(&store, "t2").is_empty());
}

#[test]
fn retention_by_size_drops_oldest_days_first() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = EventStore::open(cfg(dir.path())).unwrap();
    for d in 0..3 {
        commit(
            &store,
            "t1",
            batch(&format!("d{d}"), DAY0 + d * NANOS_PER_DAY, 50),
        );
    }
    store.flush().unwrap();
    drop(store);
    let m = Manifest::load(&dir.path().join("logs")).unwrap();
    let newest_two: u64 = {
        let mut parts = m.parts.clone();
        parts.sort_by(|a, b| a.day.cmp(&b.day));
        parts[1].bytes + parts[2].bytes
    };
    let mut c = cfg(dir.path());
    c.retention_max_bytes = Some(newest_two);
    let (store, _) = EventStore::open(c).unwrap();
    store.enforce_retention(DAY0).unwrap();
    let got = bodies(&store, "t1");
    assert_eq!(got.len(), 100);
    assert!(got.iter().all(|b| !b.starts_with("d0-")));
    let s = store.stats();
    assert_eq!(
        (s.parts, s.part_bytes, s.partitions_dropped_total),
        (2, newest_two, 1)
    );
}

#[test]
fn concurrent_writers_and_flushes_are_exactly_once_after_reopen() {
    concurrent_writers_and_flushes(FsyncPolicy::Never, 40);
}

#[test]
fn concurrent_group_commits_and_flushes_are_exactly_once_after_reopen() {
    concurrent_writers_and_flushes(FsyncPolicy::Always, 25);
}

fn concurrent_writers_and_flushes(fsync: FsyncPolicy, commits: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.fsync = fsync;
    c.wal_segment_bytes = 4096; // many rotations
    let (store, _) = EventStore::open(c.clone()).unwrap();
    let writers = 4;
    let per = 5;
    std::thread::scope(|s| {
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for w in 0..writers {
            let store = &store;
            let done = done.clone();
            s.spawn(move || {
                for c in 0..commits {
                    let ts = DAY0 + (c % 3) as i64 * NANOS_PER_DAY;
                    commit(store, "t1", batch(&format!("w{w}-c{c}"), ts, per));
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        let store = &store;
        s.spawn(move || {
            while done.load(std::sync::atomic::Ordering::SeqCst) < writers {
                store.flush().unwrap();
                let n = bodies(store, "t1");
                assert_eq!(
                    n.len(),
                    n.iter().collect::<HashSet<_>>().len(),
                    "duplicates seen"
                );
                std::thread::sleep(Duration::from_millis(2));
            }
        });
    });
    let total = writers * commits * per;
    assert_eq!(bodies(&store, "t1").len(), total);
    drop(store);
    let (store, _) = EventStore::open(c).unwrap();
    let got = bodies(&store, "t1");
    assert_eq!(got.len(), total);
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), total);
}

#[test]
fn close_flushes_and_refuses_later_commits() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = EventStore::open(cfg(dir.path())).unwrap();
    commit(&store, "t1", batch("a", DAY0, 2));
    store.close().unwrap();
    let s = store.stats();
    assert_eq!((s.parts, s.buffered_rows), (1, 0));
    let mut a = store.appender(&tenant("t1"));
    a.append(rec(DAY0, "late"));
    assert!(matches!(a.commit(), Err(Error::Closed)));
    assert_eq!(bodies(&store, "t1").len(), 2);
    drop(store);
    let (store, report) = EventStore::open(cfg(dir.path())).unwrap();
    assert_eq!(report.batches, 0);
    assert_eq!(bodies(&store, "t1"), ["a-0", "a-1"]);
}

#[test]
fn background_thread_flushes_on_interval() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.flush_interval = Duration::from_millis(20);
    c.fsync = FsyncPolicy::Interval(Duration::from_millis(5));
    let (store, _) = EventStore::open(c).unwrap();
    commit(&store, "t1", batch("a", DAY0, 3));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.stats().parts == 0 {
        assert!(std::time::Instant::now() < deadline, "no background flush");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(bodies(&store, "t1").len(), 3);
}

#[test]
fn torn_wal_tail_is_reported_by_open() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = EventStore::open(cfg(dir.path())).unwrap();
    commit(&store, "t1", batch("a", DAY0, 2));
    commit(&store, "t1", batch("b", DAY0, 2));
    drop(store);
    let mut segs: Vec<_> = fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    let seg = segs.pop().unwrap();
    let len = fs::metadata(&seg).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let (store, report) = EventStore::open(cfg(dir.path())).unwrap();
    assert_eq!(report.truncated.as_ref().map(|t| &t.0), Some(&seg));
    assert_eq!(report.batches, 1);
    assert_eq!(bodies(&store, "t1"), ["a-0", "a-1"]);
}

#[test]
fn orphans_are_removed_and_missing_parts_are_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = EventStore::open(cfg(dir.path())).unwrap();
    commit(&store, "t1", batch("a", DAY0, 2));
    store.flush().unwrap();
    drop(store);
    let orphan_dir = dir.path().join("logs/t9/2020-01-01");
    fs::create_dir_all(&orphan_dir).unwrap();
    fs::write(orphan_dir.join("77.part.tmp"), b"half").unwrap();
    let (store, _) = EventStore::open(cfg(dir.path())).unwrap();
    assert!(!dir.path().join("logs/t9").exists());
    assert_eq!(bodies(&store, "t1").len(), 2);
    drop(store);
    let part = part_files(dir.path()).pop().unwrap();
    fs::remove_file(&part).unwrap();
    match EventStore::open(cfg(dir.path())) {
        Err(Error::Corruption { path, .. }) => assert_eq!(path, part),
        Err(e) => panic!("expected corruption, got {e}"),
        Ok(_) => panic!("expected corruption, got a store"),
    }
}

#[test]
fn a_second_store_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = EventStore::open(cfg(dir.path())).unwrap();
    let err = EventStore::open(cfg(dir.path())).map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("in use by another store"), "{err}");
    drop(store);
    EventStore::open(cfg(dir.path())).unwrap();
}

#[test]
fn failed_flush_keeps_rows_visible_once_and_retries() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = EventStore::open(cfg(dir.path())).unwrap();
    commit(&store, "t1", batch("a", DAY0, 3));
    // A file where the tenant directory must go makes writing the part fail.
    let blocker = dir.path().join("logs/t1");
    fs::write(&blocker, b"x").unwrap();
    assert!(store.flush().is_err());
    commit(&store, "t1", batch("b", DAY0, 2));
    assert_eq!(bodies(&store, "t1").len(), 5);
    let s = store.stats();
    assert_eq!((s.parts, s.buffered_rows, s.flushes_total), (0, 5, 0));
    fs::remove_file(&blocker).unwrap();
    store.flush().unwrap();
    assert_eq!(bodies(&store, "t1").len(), 5);
    drop(store);
    let (store, report) = EventStore::open(cfg(dir.path())).unwrap();
    assert_eq!(report.batches, 0);
    let got = bodies(&store, "t1");
    assert_eq!(got.len(), 5);
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), 5);
}
