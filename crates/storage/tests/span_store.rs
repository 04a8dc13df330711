//! The span store end to end on a temp dir: spans visible before and after a flush and a
//! reopen, trace by id through the trace-id index (no scan), every scan filter, light
//! scans, undecodable rows, retention, and sampling at flush.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

use sightline_model::time::NANOS_PER_DAY;
use sightline_model::{
    Attributes, LogRecord, Span, SpanEvent, SpanId, SpanKind, SpanLink, StatusCode, Tenant,
    TraceId, Value,
};
use sightline_storage::event_store::{EventStore, FsyncPolicy, StoreConfig};
use sightline_storage::{Error, LogStore, SamplingConfig, SpanScan, SpanStore};

const DAY0: i64 = 19_800 * NANOS_PER_DAY; // 2024-03-18
const MS: i64 = 1_000_000;

fn cfg(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.table = "spans";
    // Tests drive flushes themselves.
    c.flush_interval = Duration::from_secs(3600);
    c.fsync = FsyncPolicy::Never;
    c
}

fn tenant() -> Tenant {
    Tenant::new("t1").unwrap()
}

fn tid(n: u64) -> TraceId {
    let mut b = [0u8; 16];
    // Distinct, spread-out halves: the trace-id index keys on the first bytes, head
    // sampling reads the last eight.
    let n = n + 1;
    b[..8].copy_from_slice(&n.wrapping_mul(0xd6e8_feb8_6659_fd93).to_be_bytes());
    b[8..].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    TraceId(b)
}

fn sid(trace: u64, i: u64) -> SpanId {
    SpanId(((trace << 16) | (i + 1)).to_be_bytes())
}

/// Span `i` of trace `trace`: span 0 is the root (service `front`), the others its
/// children in `back`; starts `i` ms after the trace's start, lasts `dur_ms`.
fn span(trace: u64, i: u64, dur_ms: i64) -> Span {
    let start = DAY0 + trace as i64 * 1000 * MS + i as i64 * MS;
    Span {
        trace_id: tid(trace),
        span_id: sid(trace, i),
        parent_span_id: (i > 0).then(|| sid(trace, 0)),
        name: if i == 0 {
            "GET /checkout"
        } else {
            "SELECT orders"
        }
        .into(),
        kind: if i == 0 {
            SpanKind::Server
        } else {
            SpanKind::Client
        },
        start,
        end: start + dur_ms * MS,
        service: if i == 0 { "front" } else { "back" }.into(),
        ..Span::default()
    }
}

/// A span with every field set, attribute keys colliding with reserved ones included.
fn rich_span(trace: u64) -> Span {
    let mut s = span(trace, 0, 30);
    s.trace_state = "vendor=1".into();
    s.status_code = StatusCode::Error;
    s.status_message = "payment declined".into();
    s.resource = Attributes::from_pairs([
        ("host.name".to_string(), Value::Str("node-1".into())),
        ("@odd".to_string(), Value::Int(1)),
    ]);
    s.scope_name = "checkout-instrumentation".into();
    s.scope_version = "0.9".into();
    s.attributes = Attributes::from_pairs([
        ("http.status_code".to_string(), Value::Int(502)),
        ("http.route".to_string(), Value::Str("/checkout".into())),
        ("@parent".to_string(), Value::Str("user value".into())),
        ("@@links".to_string(), Value::Bool(true)),
        ("load".to_string(), Value::Float(0.75)),
    ]);
    s.events = vec![SpanEvent {
        time: s.start + 5 * MS,
        name: "exception".into(),
        attributes: Attributes::from_pairs([
            (
                "exception.message".to_string(),
                Value::Str("card expired".into()),
            ),
            ("retry".to_string(), Value::Int(2)),
        ]),
    }];
    s.links = vec![SpanLink {
        trace_id: Some(tid(999)),
        span_id: Some(sid(999, 0)),
        trace_state: String::new(),
        attributes: Attributes::from_pairs([("kind".to_string(), Value::Str("batch".into()))]),
    }];
    s
}

fn all(store: &SpanStore, scan: &SpanScan) -> Vec<Span> {
    let mut v = Vec::new();
    store
        .scan(&tenant(), DAY0, DAY0 + NANOS_PER_DAY, scan, &mut |s| {
            v.push(s);
            ControlFlow::Continue(())
        })
        .unwrap();
    v.sort_by_key(|s| (s.trace_id, s.span_id));
    v
}

fn ids(spans: &[Span]) -> Vec<(TraceId, SpanId)> {
    spans.iter().map(|s| (s.trace_id, s.span_id)).collect()
}

fn traces_of(spans: &[Span]) -> BTreeSet<TraceId> {
    spans.iter().map(|s| s.trace_id).collect()
}

#[test]
fn spans_are_visible_at_once_and_after_flush_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SpanStore::open(cfg(dir.path()), SamplingConfig::default()).unwrap();
    let mut want = vec![rich_span(1), span(1, 1, 10), span(2, 0, 5)];
    assert_eq!(store.append(&tenant(), want.clone()).unwrap(), 3);
    want.sort_by_key(|s| (s.trace_id, s.span_id));
    assert_eq!(all(&store, &SpanScan::default()), want, "before a flush");
    assert_eq!(store.stats().buffered_rows, 3);

    store.flush().unwrap();
    let st = store.stats();
    assert_eq!((st.buffered_rows, st.parts), (0, 1));
    assert!(dir.path().join("spans/t1/2024-03-18").is_dir());
    assert_eq!(all(&store, &SpanScan::default()), want, "from a part");

    store.close().unwrap();
    assert!(matches!(
        store.append(&tenant(), vec![span(3, 0, 1)]),
        Err(Error::Closed)
    ));
    drop(store);
    let (store, report) = SpanStore::open(cfg(dir.path()), SamplingConfig::default()).unwrap();
    assert_eq!(report.records, 0);
    assert_eq!(all(&store, &SpanScan::default()), want, "after reopen");
    // Another tenant sees nothing.
    let mut other = 0;
    store
        .scan(
            &Tenant::new("t2").unwrap(),
            DAY0,
            DAY0 + NANOS_PER_DAY,
            &SpanScan::default(),
            &mut |_| {
                other += 1;
                ControlFlow::Continue(())
            },
        )
        .unwrap();
    assert_eq!(other, 0);
}

#[test]
fn unflushed_spans_survive_a_crash_through_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SpanStore::open(cfg(dir.path()), SamplingConfig::default()).unwrap();
    store
        .append(&tenant(), vec![rich_span(4), span(4, 1, 2)])
        .unwrap();
    drop(store); // no close: the WAL holds the batch
    let (store, report) = SpanStore::open(cfg(dir.path()), SamplingConfig::default()).unwrap();
    assert_eq!(report.records, 2);
    assert_eq!(
        store
            .trace(&tenant(), tid(4), DAY0, DAY0 + NANOS_PER_DAY)
            .unwrap()[0],
        rich_span(4)
    );
}

#[test]
fn trace_by_id_uses_the_index_across_parts() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SpanStore::open(cfg(dir.path()), SamplingConfig::default()).unwrap();
    // 300 traces of 4 spans; each flush gets one span of every trace, so every trace
    // is spread over 4 parts. Services make several blocks per part.
    for i in 0..4 {
        let batch: Vec<Span> = (0..300)
            .map(|t| {
                let mut s = span(t, i, 3);
                s.service = format!("svc-{}", t % 5);
                s
            })
            .collect();
        store.append(&tenant(), batch).unwrap();
        store.flush().unwrap();
    }
    assert_eq!(store.stats().parts, 4);
    let got = store
        .trace(&tenant(), tid(123), DAY0, DAY0 + NANOS_PER_DAY)
        .unwrap();
    let want: Vec<SpanId> = (0..4).map(|i| sid(123, i)).collect();
    assert_eq!(got.iter().map(|s| s.span_id).collect::<Vec<_>>(), want);
    assert!(got.windows(2).all(|w| w[0].start <= w[1].start));
    assert_eq!(got[1].parent_span_id, Some(sid(123, 0)));

    let scan = SpanScan {
        trace_ids: Some(vec![tid(123)]),
        ..SpanScan::default()
    };
    let stats = store
        .scan(&tenant(), DAY0, DAY0 + NANOS_PER_DAY, &scan, &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(stats.scanned_rows, 4, "only the trace's rows are built");
    assert!(stats.blocks_total >= 20, "{stats:?}");
    assert_eq!(
        stats.blocks_total - stats.blocks_skipped,
        4,
        "one block per part read: {stats:?}"
    );
    // An unknown trace reads no block at all.
    let none = store
        .scan(
            &tenant(),
            DAY0,
            DAY0 + NANOS_PER_DAY,
            &SpanScan {
                trace_ids: Some(vec![tid(5_000)]),
                ..SpanScan::default()
            },
            &mut |_| ControlFlow::Continue(()),
        )
        .unwrap();
    assert_eq!(
        (none.scanned_rows, none.blocks_skipped),
        (0, none.blocks_total)
    );
    assert!(store
        .trace(&tenant(), tid(5_000), DAY0, DAY0 + NANOS_PER_DAY)
        .unwrap()
        .is_empty());

    // Still found after merging the parts into one.
    store.merge_now().unwrap();
    assert_eq!(store.stats().parts, 1);
    assert_eq!(
        store
            .trace(&tenant(), tid(123), DAY0, DAY0 + NANOS_PER_DAY)
            .unwrap()
            .len(),
        4
    );
}

/// Spans for the filter tests, with what each filter should find.
fn filter_fixture() -> Vec<Span> {
    let mut v = vec![rich_span(10)]; // front, error, 30 ms, attributes
    v.push(span(10, 1, 12)); // back, SELECT orders, 12 ms
    v.push(span(11, 0, 100)); // front, 100 ms
    let mut s = span(11, 1, 1);
    s.status_code = StatusCode::Error;
    s.attributes = Attributes::from_pairs([
        ("http.status_code".to_string(), Value::Str("502".into())),
        ("@parent".to_string(), Value::Str("other".into())),
    ]);
    v.push(s); // back, error, 1 ms
    v
}

fn check_filters(store: &SpanStore) {
    let f = filter_fixture();
    let find = |scan: SpanScan| ids(&all(store, &scan));
    let want = |idx: &[usize]| {
        let mut v: Vec<(TraceId, SpanId)> =
            idx.iter().map(|&i| (f[i].trace_id, f[i].span_id)).collect();
        v.sort();
        v
    };
    assert_eq!(find(SpanScan::default()), want(&[0, 1, 2, 3]));
    let by = |service: &str| SpanScan {
        service: Some(service.into()),
        ..SpanScan::default()
    };
    assert_eq!(find(by("front")), want(&[0, 2]));
    assert_eq!(find(by("nobody")), want(&[]));
    let named = |name: &str| SpanScan {
        name: Some(name.into()),
        ..SpanScan::default()
    };
    assert_eq!(find(named("SELECT orders")), want(&[1, 3]));
    assert_eq!(find(named("SELECT")), want(&[]), "names match exactly");
    let attrs = |pairs: &[(&str, &str)]| SpanScan {
        attributes: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..SpanScan::default()
    };
    // Int 502 and Str "502" both match the text "502".
    assert_eq!(find(attrs(&[("http.status_code", "502")])), want(&[0, 3]));
    assert_eq!(
        find(attrs(&[
            ("http.status_code", "502"),
            ("http.route", "/checkout")
        ])),
        want(&[0])
    );
    assert_eq!(
        find(attrs(&[("host.name", "node-1")])),
        want(&[0]),
        "resource"
    );
    assert_eq!(find(attrs(&[("load", "0.75")])), want(&[0]));
    // User keys that look reserved are theirs, not the store's.
    assert_eq!(find(attrs(&[("@parent", "other")])), want(&[3]));
    assert_eq!(find(attrs(&[("@odd", "1")])), want(&[0]));
    assert_eq!(find(attrs(&[("@@links", "true")])), want(&[0]));
    assert_eq!(find(attrs(&[("http.route", "/nope")])), want(&[]));
    let errors = SpanScan {
        errors_only: true,
        ..SpanScan::default()
    };
    assert_eq!(find(errors), want(&[0, 3]));
    let dur = |min: Option<i64>, max: Option<i64>| SpanScan {
        min_duration_ns: min.map(|m| m * MS),
        max_duration_ns: max.map(|m| m * MS),
        ..SpanScan::default()
    };
    assert_eq!(find(dur(Some(12), None)), want(&[0, 1, 2]));
    assert_eq!(find(dur(None, Some(12))), want(&[1, 3]));
    assert_eq!(find(dur(Some(12), Some(30))), want(&[0, 1]));
    let combined = SpanScan {
        service: Some("back".into()),
        errors_only: true,
        name: Some("SELECT orders".into()),
        max_duration_ns: Some(MS),
        trace_ids: Some(vec![tid(11), tid(12)]),
        ..SpanScan::default()
    };
    assert_eq!(find(combined), want(&[3]));

    // Light: no attributes, resource, events or links; the parent and status code stay.
    let light = all(
        store,
        &SpanScan {
            light: true,
            attributes: vec![("http.route".into(), "/checkout".into())],
            ..SpanScan::default()
        },
    );
    assert_eq!(light.len(), 1);
    let l = &light[0];
    let full = &f[0];
    assert!(l.attributes.is_empty() && l.resource.is_empty());
    assert!(l.events.is_empty() && l.links.is_empty() && l.status_message.is_empty());
    assert_eq!(
        (&l.name, &l.service, l.kind, l.status_code, l.start, l.end),
        (
            &full.name,
            &full.service,
            full.kind,
            full.status_code,
            full.start,
            full.end
        )
    );
    let children = all(
        store,
        &SpanScan {
            light: true,
            service: Some("back".into()),
            ..SpanScan::default()
        },
    );
    let parents: BTreeSet<Option<SpanId>> = children.iter().map(|c| c.parent_span_id).collect();
    assert_eq!(
        parents,
        BTreeSet::from([Some(sid(10, 0)), Some(sid(11, 0))])
    );

    // Early stop.
    let mut seen = 0;
    store
        .scan(
            &tenant(),
            DAY0,
            DAY0 + NANOS_PER_DAY,
            &SpanScan::default(),
            &mut |_| {
                seen += 1;
                ControlFlow::Break(())
            },
        )
        .unwrap();
    assert_eq!(seen, 1);
    // The time range is on the start: [start, end).
    let mut in_range = Vec::new();
    store
        .scan(
            &tenant(),
            f[1].start,
            f[2].start,
            &SpanScan::default(),
            &mut |s| {
                in_range.push(s.span_id);
                ControlFlow::Continue(())
            },
        )
        .unwrap();
    assert_eq!(in_range, [f[1].span_id]);
}

#[test]
fn every_scan_filter_is_exact_in_buffers_and_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SpanStore::open(cfg(dir.path()), SamplingConfig::default()).unwrap();
    store.append(&tenant(), filter_fixture()).unwrap();
    check_filters(&store);
    store.flush().unwrap();
    check_filters(&store);
}

#[test]
fn a_row_that_is_not_a_span_is_corruption_naming_the_table() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Something else wrote a log-like row into the span table.
        let (events, _) = EventStore::open(cfg(dir.path())).unwrap();
        let mut a = events.appender(&tenant());
        a.append(LogRecord {
            timestamp: DAY0,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: "hello".into(),
            trace_id: Some(tid(1)),
            ..LogRecord::default()
        });
        a.commit().unwrap();
        events.close().unwrap();
    }
    let (store, _) = SpanStore::open(cfg(dir.path()), SamplingConfig::default()).unwrap();
    let e = store
        .trace(&tenant(), tid(1), DAY0, DAY0 + NANOS_PER_DAY)
        .unwrap_err();
    match e {
        Error::Corruption { path, reason, .. } => {
            assert_eq!(path, dir.path().join("spans"));
            assert!(reason.contains("status code number 9"), "{reason}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn retention_drops_old_days() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.retention_period = Some(Duration::from_secs(86_400));
    let (store, _) = SpanStore::open(c, SamplingConfig::default()).unwrap();
    let mut old = span(1, 0, 1);
    old.start -= 3 * NANOS_PER_DAY;
    old.end -= 3 * NANOS_PER_DAY;
    store.append(&tenant(), vec![old, span(2, 0, 1)]).unwrap();
    store.flush().unwrap();
    assert_eq!(store.stats().parts, 2);
    store.enforce_retention(DAY0 + NANOS_PER_DAY).unwrap();
    let st = store.stats();
    assert_eq!((st.parts, st.partitions_dropped_total), (1, 1));
    assert!(store
        .trace(&tenant(), tid(1), i64::MIN, i64::MAX)
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .trace(&tenant(), tid(2), i64::MIN, i64::MAX)
            .unwrap()
            .len(),
        1
    );
}

fn sampling(ratio: f64, keep_errors: bool, slow_ms: Option<i64>) -> SamplingConfig {
    SamplingConfig {
        default_ratio: ratio,
        per_service: Vec::new(),
        keep_errors,
        keep_slower_than_ns: slow_ms.map(|m| m * MS),
    }
}

#[test]
fn tail_sampling_keeps_error_and_slow_traces_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SpanStore::open(cfg(dir.path()), sampling(0.0, true, Some(500))).unwrap();
    let mut batch = Vec::new();
    for t in 0..50 {
        for i in 0..3 {
            let mut s = span(t, i, 10);
            if t == 7 && i == 2 {
                s.status_code = StatusCode::Error; // a child fails
            }
            if t == 8 && i == 1 {
                s.end = s.start + 600 * MS; // a child is slow
            }
            batch.push(s);
        }
    }
    store.append(&tenant(), batch).unwrap();
    assert_eq!(
        traces_of(&all(&store, &SpanScan::default())).len(),
        50,
        "everything is visible until the flush"
    );
    store.flush().unwrap();
    let kept = all(&store, &SpanScan::default());
    assert_eq!(traces_of(&kept), BTreeSet::from([tid(7), tid(8)]));
    assert_eq!(kept.len(), 6, "whole traces");

    // Late spans: of a kept trace → kept; of a dropped trace → dropped.
    store
        .append(&tenant(), vec![span(7, 3, 1), span(9, 3, 1)])
        .unwrap();
    store.flush().unwrap();
    let kept = all(&store, &SpanScan::default());
    assert_eq!(kept.len(), 7);
    assert_eq!(
        store
            .trace(&tenant(), tid(7), DAY0, DAY0 + NANOS_PER_DAY)
            .unwrap()
            .len(),
        4
    );
    assert_eq!(store.remembered_traces(), 2);
}

#[test]
fn without_keep_errors_error_traces_follow_the_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SpanStore::open(cfg(dir.path()), sampling(0.0, false, None)).unwrap();
    let mut s = span(1, 0, 10);
    s.status_code = StatusCode::Error;
    store.append(&tenant(), vec![s]).unwrap();
    store.flush().unwrap();
    assert!(all(&store, &SpanScan::default()).is_empty());
}

#[test]
fn per_service_ratio_of_the_root_decides() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = sampling(1.0, false, None);
    c.per_service = vec![("front".into(), 0.0)];
    let (store, _) = SpanStore::open(cfg(dir.path()), c).unwrap();
    let mut batch = Vec::new();
    for t in 0..20 {
        batch.push(span(t, 0, 5)); // root in "front" (ratio 0)
        batch.push(span(t, 1, 5)); // child in "back" (ratio 1)
    }
    // Traces 100..: a child of "back" whose root is not sent (yet): highest ratio, 1.
    batch.push(span(100, 1, 5));
    store.append(&tenant(), batch).unwrap();
    store.flush().unwrap();
    assert_eq!(
        traces_of(&all(&store, &SpanScan::default())),
        BTreeSet::from([tid(100)])
    );
}

/// Trace ids kept by a store sampling 2000 traces at `ratio`.
fn kept_at(ratio: f64) -> BTreeSet<TraceId> {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SpanStore::open(cfg(dir.path()), sampling(ratio, true, None)).unwrap();
    let batch: Vec<Span> = (0..2000)
        .flat_map(|t| [span(t, 0, 1), span(t, 1, 1)])
        .collect();
    store.append(&tenant(), batch).unwrap();
    store.flush().unwrap();
    let spans = all(&store, &SpanScan::default());
    let mut per_trace: BTreeMap<TraceId, usize> = BTreeMap::new();
    for s in &spans {
        *per_trace.entry(s.trace_id).or_default() += 1;
    }
    assert!(per_trace.values().all(|&n| n == 2), "whole traces");
    per_trace.into_keys().collect()
}

#[test]
fn head_sampling_keeps_about_the_ratio_deterministically() {
    let a = kept_at(0.5);
    assert!((850..1150).contains(&a.len()), "kept {}", a.len());
    assert_eq!(kept_at(0.5), a, "same ids, same decisions in another store");
    let quarter = kept_at(0.25);
    assert!(
        (400..600).contains(&quarter.len()),
        "kept {}",
        quarter.len()
    );
    assert!(quarter.is_subset(&a), "kept at 0.25 implies kept at 0.5");
}
