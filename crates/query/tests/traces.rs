//! Trace search, trace lookup, service lists and dependency edges against a real span
//! store in a temporary directory, checked both while the spans are buffered in memory and
//! after a flush has written them to parts.

use std::path::PathBuf;
use std::sync::Arc;

use sightline_model::{Attributes, Span, SpanId, SpanKind, StatusCode, Tenant, TraceId, Value};
use sightline_query::traces::{
    dependencies, find_traces, get_trace, operations, search_traces, services, tree_order,
    Dependency, Operation, TraceQuery, FETCH_MARGIN_NS,
};
use sightline_storage::{FsyncPolicy, SamplingConfig, SpanStore, StoreConfig};

const SEC: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;
/// 2023-11-14T22:13:20Z: mid-day, so an hour either side stays in one day partition.
const T0: i64 = 1_700_000_000 * SEC;

/// A directory under the system temp dir, removed on drop (the crate has no tempfile
/// dependency; this is all the tests need).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "sightline-query-traces-{tag}-{}-{}",
            std::process::id(),
            sightline_model::time::now_ns()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open(dir: &TempDir) -> Arc<SpanStore> {
    let cfg = StoreConfig {
        table: "spans",
        fsync: FsyncPolicy::Never,
        ..StoreConfig::new(&dir.0)
    };
    SpanStore::open(cfg, SamplingConfig::default()).unwrap().0
}

fn tid(n: u8) -> TraceId {
    TraceId([n; 16])
}

fn sid(trace: u8, n: u8) -> SpanId {
    SpanId([trace, 0, 0, 0, 0, 0, 0, n])
}

struct B(Span);

impl B {
    fn new(trace: u8, id: u8, parent: Option<u8>, service: &str, name: &str) -> B {
        B(Span {
            trace_id: tid(trace),
            span_id: sid(trace, id),
            parent_span_id: parent.map(|p| sid(trace, p)),
            name: name.into(),
            service: service.into(),
            kind: SpanKind::Internal,
            ..Span::default()
        })
    }
    fn at(mut self, start: i64, dur: i64) -> B {
        self.0.start = start;
        self.0.end = start + dur;
        self
    }
    fn kind(mut self, k: SpanKind) -> B {
        self.0.kind = k;
        self
    }
    fn error(mut self) -> B {
        self.0.status_code = StatusCode::Error;
        self.0.status_message = "boom".into();
        self
    }
    fn attr(mut self, k: &str, v: Value) -> B {
        self.0.attributes.insert(k.into(), v);
        self
    }
    fn res(mut self, k: &str, v: &str) -> B {
        self.0.resource.insert(k.into(), Value::Str(v.into()));
        self
    }
}

/// Five traces of a shop, all within [T0, T0 + 1 min) except trace 5's root, which starts
/// 10 minutes before T0:
/// 1: frontend GET /cart → cart get (→ redis) ; at T0+10s, 200 ms
/// 2: frontend GET /checkout → checkout pay (error) → payments charge (error); T0+20s
/// 3: frontend GET /cart → cart get, slow (2 s); T0+30s
/// 4: mobile POST /login only; T0+40s, attributes http.status_code=401 (int), region=eu
/// 5: batch nightly (root at T0-10min) → cart get at T0+50s
fn shop() -> Vec<Span> {
    let s = T0 + 10 * SEC;
    let mut v = vec![
        B::new(1, 1, None, "frontend", "GET /cart")
            .kind(SpanKind::Server)
            .at(s, 200 * MS)
            .attr("http.method", Value::Str("GET".into()))
            .res("region", "us"),
        B::new(1, 2, Some(1), "cart", "get")
            .kind(SpanKind::Server)
            .at(s + 10 * MS, 100 * MS),
        B::new(1, 3, Some(2), "redis", "HGET")
            .kind(SpanKind::Client)
            .at(s + 20 * MS, 5 * MS),
        B::new(1, 4, Some(2), "cart", "decode").at(s + 30 * MS, 5 * MS),
    ];
    let s = T0 + 20 * SEC;
    v.extend([
        B::new(2, 1, None, "frontend", "GET /checkout")
            .kind(SpanKind::Server)
            .at(s, 300 * MS),
        B::new(2, 2, Some(1), "checkout", "pay")
            .kind(SpanKind::Server)
            .at(s + 10 * MS, 250 * MS)
            .error(),
        B::new(2, 3, Some(2), "payments", "charge")
            .kind(SpanKind::Server)
            .at(s + 20 * MS, 200 * MS)
            .error(),
    ]);
    let s = T0 + 30 * SEC;
    v.extend([
        B::new(3, 1, None, "frontend", "GET /cart")
            .kind(SpanKind::Server)
            .at(s, 2_100 * MS),
        B::new(3, 2, Some(1), "cart", "get")
            .kind(SpanKind::Server)
            .at(s + 10 * MS, 2_000 * MS),
    ]);
    v.push(
        B::new(4, 1, None, "mobile", "POST /login")
            .kind(SpanKind::Server)
            .at(T0 + 40 * SEC, 50 * MS)
            .attr("http.status_code", Value::Int(401))
            .res("region", "eu"),
    );
    v.extend([
        B::new(5, 1, None, "batch", "nightly").at(T0 - 600 * SEC, 700 * SEC),
        B::new(5, 2, Some(1), "cart", "get")
            .kind(SpanKind::Server)
            .at(T0 + 50 * SEC, 10 * MS),
    ]);
    v.into_iter().map(|b| b.0).collect()
}

fn query() -> TraceQuery {
    TraceQuery {
        start_ns: T0,
        end_ns: T0 + 60 * SEC,
        limit: 20,
        ..TraceQuery::default()
    }
}

fn tenant() -> Tenant {
    Tenant::new("acme").unwrap()
}

fn ids(rows: &[sightline_query::traces::TraceSummary]) -> Vec<u8> {
    rows.iter().map(|r| r.trace_id.0[0]).collect()
}

/// Runs `check` on a store holding the shop's spans, first buffered, then flushed.
fn both_ways(tag: &str, check: impl Fn(&SpanStore)) {
    let dir = TempDir::new(tag);
    let store = open(&dir);
    store.append(&tenant(), shop()).unwrap();
    check(&store);
    store.flush().unwrap();
    check(&store);
    store.close().unwrap();
    drop(store);
    // And after a restart, from parts only.
    let store = open(&dir);
    check(&store);
    store.close().unwrap();
}

#[test]
fn search_without_filters_returns_every_trace_most_recent_first() {
    both_ways("all", |store| {
        let (rows, stats) = search_traces(store, &tenant(), &query()).unwrap();
        // Trace 5 started before the others (its root at T0-10min): last.
        assert_eq!(ids(&rows), vec![4, 3, 2, 1, 5]);
        assert!(stats.scanned_rows >= 13, "{stats:?}");

        let t1 = &rows[3];
        assert_eq!(t1.root_service, "frontend");
        assert_eq!(t1.root_operation, "GET /cart");
        assert_eq!(t1.start_ns, T0 + 10 * SEC);
        assert_eq!(t1.duration_ns, 200 * MS);
        assert_eq!(t1.span_count, 4);
        assert_eq!(t1.error_count, 0);
        assert_eq!(
            t1.services,
            vec![
                ("cart".to_string(), 2),
                ("frontend".to_string(), 1),
                ("redis".to_string(), 1)
            ]
        );
        assert_eq!(rows[2].error_count, 2);

        // The root starting before the range is fetched within the margin.
        let t5 = &rows[4];
        assert_eq!(t5.root_service, "batch");
        assert_eq!(t5.start_ns, T0 - 600 * SEC);
        assert_eq!(t5.duration_ns, 700 * SEC);
        assert_eq!(t5.span_count, 2);
    });
}

#[test]
fn search_filters_are_per_span() {
    both_ways("filters", |store| {
        let t = tenant();
        let run = |q: TraceQuery| ids(&search_traces(store, &t, &q).unwrap().0);

        let q = TraceQuery {
            service: Some("cart".into()),
            operation: Some("get".into()),
            ..query()
        };
        // Ranked by the matching span's start (5's cart span is the latest), listed by
        // trace start.
        assert_eq!(run(q.clone()), vec![3, 1, 5]);
        assert_eq!(
            run(TraceQuery {
                limit: 1,
                ..q.clone()
            }),
            vec![5]
        );
        assert_eq!(
            run(TraceQuery {
                limit: 2,
                ..q.clone()
            }),
            vec![3, 5]
        );

        assert_eq!(
            run(TraceQuery {
                min_duration_ns: Some(2 * SEC),
                ..query()
            }),
            vec![3]
        );
        assert_eq!(
            run(TraceQuery {
                max_duration_ns: Some(5 * MS),
                ..query()
            }),
            vec![1]
        );
        assert_eq!(
            run(TraceQuery {
                errors_only: true,
                ..query()
            }),
            vec![2]
        );
        // The error span must itself match the other filters.
        assert_eq!(
            run(TraceQuery {
                errors_only: true,
                service: Some("frontend".into()),
                ..query()
            }),
            Vec::<u8>::new()
        );
        // Attributes as text: an int attribute, a resource attribute, both together.
        let attrs = |pairs: &[(&str, &str)]| TraceQuery {
            attributes: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..query()
        };
        assert_eq!(run(attrs(&[("http.status_code", "401")])), vec![4]);
        assert_eq!(run(attrs(&[("region", "us")])), vec![1]);
        assert_eq!(
            run(attrs(&[("region", "us"), ("http.method", "GET")])),
            vec![1]
        );
        assert_eq!(
            run(attrs(&[("region", "eu"), ("http.method", "GET")])),
            Vec::<u8>::new()
        );

        // Time range: only trace 1's spans start in [T0+5s, T0+15s).
        assert_eq!(
            run(TraceQuery {
                start_ns: T0 + 5 * SEC,
                end_ns: T0 + 15 * SEC,
                ..query()
            }),
            vec![1]
        );
        // Empty range and zero limit find nothing without failing.
        assert!(run(TraceQuery {
            end_ns: T0,
            ..query()
        })
        .is_empty());
        assert!(run(TraceQuery {
            limit: 0,
            ..query()
        })
        .is_empty());
    });
}

#[test]
fn find_traces_returns_whole_traces_with_attributes() {
    both_ways("find", |store| {
        let q = TraceQuery {
            service: Some("redis".into()),
            ..query()
        };
        let traces = find_traces(store, &tenant(), &q).unwrap();
        assert_eq!(traces.len(), 1);
        let want: Vec<Span> = shop()
            .into_iter()
            .filter(|s| s.trace_id == tid(1))
            .collect();
        assert_eq!(traces[0], want, "whole trace, full spans, sorted by start");
        assert_eq!(
            traces[0][0].attribute("region"),
            Some(&Value::Str("us".into()))
        );

        let all = find_traces(store, &tenant(), &query()).unwrap();
        let order: Vec<u8> = all.iter().map(|t| t[0].trace_id.0[0]).collect();
        assert_eq!(order, vec![4, 3, 2, 1, 5]);
        assert_eq!(all[1][1].status_message, "", "trace 3 has no error");
        assert_eq!(all[2][1].status_message, "boom");
    });
}

#[test]
fn get_trace_finds_every_span_at_any_time() {
    both_ways("get", |store| {
        let t5 = get_trace(store, &tenant(), tid(5)).unwrap();
        assert_eq!(t5.len(), 2);
        assert_eq!(t5[0].name, "nightly");
        assert_eq!(t5[1].name, "get");

        let t2 = get_trace(store, &tenant(), tid(2)).unwrap();
        let order = tree_order(&t2);
        let names: Vec<(usize, &str)> = order.iter().map(|(d, s)| (*d, s.name.as_str())).collect();
        assert_eq!(names, vec![(0, "GET /checkout"), (1, "pay"), (2, "charge")]);

        assert!(get_trace(store, &tenant(), tid(99)).unwrap().is_empty());
        // Another tenant sees nothing.
        let other = Tenant::new("other").unwrap();
        assert!(get_trace(store, &other, tid(1)).unwrap().is_empty());
        assert!(search_traces(store, &other, &query()).unwrap().0.is_empty());
    });
}

#[test]
fn services_and_operations_cover_the_range() {
    both_ways("services", |store| {
        let t = tenant();
        assert_eq!(
            services(store, &t, T0, T0 + 60 * SEC).unwrap(),
            vec!["cart", "checkout", "frontend", "mobile", "payments", "redis"]
        );
        // batch's only span starts at T0-10min.
        assert_eq!(
            services(store, &t, T0 - 3600 * SEC, T0 + 60 * SEC).unwrap(),
            vec!["batch", "cart", "checkout", "frontend", "mobile", "payments", "redis"]
        );
        assert_eq!(
            services(store, &t, T0 + 35 * SEC, T0 + 45 * SEC).unwrap(),
            vec!["mobile"]
        );
        assert_eq!(
            operations(store, &t, "cart", T0, T0 + 60 * SEC).unwrap(),
            vec![
                Operation {
                    name: "decode".into(),
                    span_kind: SpanKind::Internal
                },
                Operation {
                    name: "get".into(),
                    span_kind: SpanKind::Server
                },
            ]
        );
        assert!(operations(store, &t, "nope", T0, T0 + 60 * SEC)
            .unwrap()
            .is_empty());
    });
}

#[test]
fn dependencies_count_calls_and_errors_across_services() {
    both_ways("deps", |store| {
        let t = tenant();
        let dep = |p: &str, c: &str, calls: u64, errors: u64| Dependency {
            parent: p.into(),
            child: c.into(),
            call_count: calls,
            error_count: errors,
        };
        assert_eq!(
            dependencies(store, &t, T0, T0 + 60 * SEC).unwrap(),
            vec![
                dep("cart", "redis", 1, 0),
                dep("checkout", "payments", 1, 1),
                dep("frontend", "cart", 2, 0),
                dep("frontend", "checkout", 1, 1),
            ]
        );
        // Widened to include batch's root: its edge to cart appears.
        let wide = dependencies(store, &t, T0 - FETCH_MARGIN_NS, T0 + 60 * SEC).unwrap();
        assert!(wide.contains(&dep("batch", "cart", 1, 0)), "{wide:?}");
        assert!(dependencies(store, &t, T0, T0).unwrap().is_empty());
    });
}

#[test]
fn search_caps_many_traces_at_the_limit() {
    let dir = TempDir::new("many");
    let store = open(&dir);
    let spans: Vec<Span> = (1..=200u8)
        .map(|n| {
            let mut s = B::new(n, 1, None, "svc", "op")
                .at(T0 + i64::from(n) * SEC, MS)
                .0;
            s.attributes = Attributes::new();
            s
        })
        .collect();
    store.append(&tenant(), spans).unwrap();
    store.flush().unwrap();
    let q = TraceQuery {
        end_ns: T0 + 300 * SEC,
        limit: 7,
        ..query()
    };
    let (rows, stats) = search_traces(&store, &tenant(), &q).unwrap();
    assert_eq!(ids(&rows), vec![200, 199, 198, 197, 196, 195, 194]);
    // The search scanned all 200; the fetch adds the 7 traces' spans.
    assert!(stats.scanned_rows >= 207, "{stats:?}");
    store.close().unwrap();
}
