//! Runs a parsed query over a storage querier: filters the scanned records, keeps the
//! newest ones for raw output (a bounded heap, never the whole result) or feeds the
//! aggregating pipe, then applies the remaining pipes to the rows.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::ops::ControlFlow;

use serde_json::Value as Json;
use sightline_model::{Level, LogRecord};
use sightline_storage::{LogQuerier, ScanRequest, ScanStats};

use crate::aggregate::Aggregator;
use crate::ast::{Pipe, Query};
use crate::error::Result;
use crate::render::{project_record, project_row, record_json};

/// Rows produced by a query and the work its scan did.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryOutput {
    pub rows: Vec<Json>,
    pub stats: ScanStats,
}

/// Runs `q` over `querier`.
///
/// Without pipes (or with only `fields` and `limit`): the `limit` newest matching records
/// (timestamp descending, ties in scan order), each as [`record_json`] (or its `fields`
/// projection). With an aggregating pipe (`stats`, `histogram`, `top`): its rows over ALL
/// matches (over the newest N when a `limit N` precedes it), then the later pipes.
///
/// # Errors
/// [`crate::Error::Storage`] when the scan fails.
pub fn execute(q: &Query, querier: &dyn LogQuerier, limit: usize) -> Result<QueryOutput> {
    let req = q.scan_request();
    let agg_at = q.pipes.iter().position(|p| Aggregator::new(p).is_some());
    let Some(agg_at) = agg_at else {
        let cap = q
            .pipes
            .iter()
            .filter_map(|p| match p {
                Pipe::Limit(n) => Some(*n),
                _ => None,
            })
            .fold(limit, usize::min);
        let (records, stats) = newest(q, querier, &req, cap)?;
        let rows = records
            .iter()
            .map(|r| {
                let mut row = record_json(r);
                let mut first = true;
                for p in &q.pipes {
                    if let Pipe::Fields(f) = p {
                        row = if first {
                            project_record(r, f)
                        } else {
                            project_row(row, f)
                        };
                        first = false;
                    }
                }
                row
            })
            .collect();
        return Ok(QueryOutput { rows, stats });
    };
    let Some(mut agg) = Aggregator::new(&q.pipes[agg_at]) else {
        panic!("BUG: pipe {agg_at} was found to aggregate but has no aggregator");
    };
    let pre_limit = q.pipes[..agg_at]
        .iter()
        .filter_map(|p| match p {
            Pipe::Limit(n) => Some(*n),
            _ => None,
        })
        .min();
    let stats = match pre_limit {
        Some(cap) => {
            let (records, stats) = newest(q, querier, &req, cap)?;
            records.iter().for_each(|r| agg.add(r));
            stats
        }
        None => querier.scan(&req, &mut |r| {
            if q.matches(r) {
                agg.add(r);
            }
            ControlFlow::Continue(())
        })?,
    };
    let mut rows = agg.finish();
    for p in &q.pipes[agg_at + 1..] {
        match p {
            Pipe::Limit(n) => rows.truncate(*n),
            Pipe::Fields(f) => rows = rows.into_iter().map(|r| project_row(r, f)).collect(),
            // The parser rejects an aggregation after another.
            Pipe::Stats { .. } | Pipe::Histogram { .. } | Pipe::Top { .. } => {}
        }
    }
    Ok(QueryOutput { rows, stats })
}

/// A record kept by [`newest`], ordered by timestamp, then earlier scanned first.
struct Kept {
    ts: i64,
    seq: u64,
    record: LogRecord,
}

impl Kept {
    fn key(&self) -> (i64, Reverse<u64>) {
        (self.ts, Reverse(self.seq))
    }
}

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Kept {}
impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Kept {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// The `cap` newest matching records, newest first, in a heap of at most `cap` records.
fn newest(
    q: &Query,
    querier: &dyn LogQuerier,
    req: &ScanRequest,
    cap: usize,
) -> Result<(Vec<LogRecord>, ScanStats)> {
    // Min-heap of the best `cap` so far: the root is the first to give way.
    let mut heap: BinaryHeap<Reverse<Kept>> = BinaryHeap::new();
    let mut seq = 0u64;
    let stats = querier.scan(req, &mut |r| {
        if cap == 0 || !q.matches(r) {
            return ControlFlow::Continue(());
        }
        seq += 1;
        let key = (r.timestamp, Reverse(seq));
        if heap.len() < cap {
            heap.push(Reverse(Kept {
                ts: r.timestamp,
                seq,
                record: r.clone(),
            }));
        } else if heap.peek().is_some_and(|Reverse(min)| key > min.key()) {
            heap.pop();
            heap.push(Reverse(Kept {
                ts: r.timestamp,
                seq,
                record: r.clone(),
            }));
        }
        ControlFlow::Continue(())
    })?;
    let mut kept: Vec<Kept> = heap.into_iter().map(|Reverse(k)| k).collect();
    kept.sort_by(|a, b| b.cmp(a));
    Ok((kept.into_iter().map(|k| k.record).collect(), stats))
}

/// Field names with the number of records having them: `level` (when specified),
/// `service` and `message` (when non-empty), `trace_id`, `span_id`, and every resource or
/// record attribute key (once per record), sorted by count descending, then name.
///
/// # Errors
/// [`crate::Error::Storage`] when the scan fails.
pub fn field_counts(querier: &dyn LogQuerier) -> Result<Vec<(String, u64)>> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut bump = |k: &str| match counts.get_mut(k) {
        Some(n) => *n += 1,
        None => {
            counts.insert(k.to_string(), 1);
        }
    };
    querier.scan(&ScanRequest::default(), &mut |r| {
        for (name, has) in [
            ("level", r.level() != Level::Unspecified),
            ("service", !r.service.is_empty()),
            ("message", !r.body.is_empty()),
            ("trace_id", r.trace_id.is_some()),
            ("span_id", r.span_id.is_some()),
        ] {
            if has {
                bump(name);
            }
        }
        for (k, _) in r.resource.iter() {
            if r.attributes.get(k).is_none() {
                bump(k);
            }
        }
        for (k, _) in r.attributes.iter() {
            bump(k);
        }
        ControlFlow::Continue(())
    })?;
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(v)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sightline_model::{Attributes, SpanId, TraceId, Value};

    use crate::parser::parse;

    use super::*;

    /// A querier over a vector that ignores hints (the storage may return extra records).
    struct VecQuerier(Vec<LogRecord>);

    impl LogQuerier for VecQuerier {
        fn scan(
            &self,
            _req: &ScanRequest,
            visit: &mut dyn FnMut(&LogRecord) -> ControlFlow<()>,
        ) -> sightline_storage::Result<ScanStats> {
            let mut stats = ScanStats::default();
            for r in &self.0 {
                stats.scanned_rows += 1;
                if visit(r).is_break() {
                    break;
                }
            }
            Ok(stats)
        }
    }

    struct Failing;

    impl LogQuerier for Failing {
        fn scan(
            &self,
            _req: &ScanRequest,
            _visit: &mut dyn FnMut(&LogRecord) -> ControlFlow<()>,
        ) -> sightline_storage::Result<ScanStats> {
            Err(sightline_storage::Error::Closed)
        }
    }

    fn rec(ts: i64, body: &str) -> LogRecord {
        LogRecord {
            timestamp: ts,
            body: body.into(),
            service: "api".into(),
            severity_number: 9,
            ..LogRecord::default()
        }
    }

    fn run(q: &str, records: Vec<LogRecord>, limit: usize) -> Vec<Json> {
        execute(&parse(q).unwrap(), &VecQuerier(records), limit)
            .unwrap()
            .rows
    }

    fn messages(rows: &[Json]) -> Vec<&str> {
        rows.iter()
            .map(|r| r["message"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn newest_first_with_stable_ties_and_limit() {
        let recs = vec![
            rec(5, "a"),
            rec(9, "b"),
            rec(1, "c"),
            rec(9, "d"),
            rec(7, "e"),
            rec(9, "f"),
        ];
        assert_eq!(messages(&run("*", recs.clone(), 3)), ["b", "d", "f"]);
        assert_eq!(
            messages(&run("*", recs.clone(), 100)),
            ["b", "d", "f", "e", "a", "c"]
        );
        assert!(run("*", recs.clone(), 0).is_empty());
        assert_eq!(messages(&run("* | limit 2", recs.clone(), 100)), ["b", "d"]);
        assert_eq!(messages(&run("* | limit 5", recs.clone(), 1)), ["b"]);
        // The querier returns non-matching records; the query filters them.
        assert_eq!(messages(&run("-b -d", recs, 2)), ["f", "e"]);
    }

    #[test]
    fn stats_cover_all_matches_not_the_limit() {
        let recs: Vec<_> = (0..50).map(|i| rec(i, "x")).collect();
        let rows = run("* | stats count()", recs.clone(), 3);
        assert_eq!(rows, [json!({"count": 50})]);
        // A limit before the aggregation keeps the newest N.
        let rows = run("* | limit 4 | stats min(timestamp)", recs, 3);
        assert_eq!(rows, [json!({"min(timestamp)": 46.0})]);
    }

    #[test]
    fn pipes_after_aggregation_shape_rows() {
        let recs = vec![rec(1, "a"), rec(2, "a"), rec(3, "b")];
        let rows = run("* | top 5 message | fields message", recs.clone(), 10);
        assert_eq!(rows, [json!({"message": "a"}), json!({"message": "b"})]);
        let rows = run("* | stats count() by message | limit 1", recs, 10);
        assert_eq!(rows, [json!({"message": "a", "count": 2})]);
    }

    #[test]
    fn histogram_aligns_buckets_and_omits_empty_ones() {
        let s = 1_000_000_000;
        let recs = vec![
            rec(61 * s, "a"),
            rec(119 * s, "b"),
            rec(301 * s, "c"),
            rec(-s, "d"),
        ];
        let rows = run("* | histogram 1m", recs, 10);
        assert_eq!(
            rows,
            [
                json!({"time": "1969-12-31T23:59:00.000000000Z", "count": 1}),
                json!({"time": "1970-01-01T00:01:00.000000000Z", "count": 2}),
                json!({"time": "1970-01-01T00:05:00.000000000Z", "count": 1}),
            ]
        );
        let rows = run(
            "* | histogram 1ns",
            vec![rec(i64::MIN, "a"), rec(i64::MAX, "b")],
            10,
        );
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let recs: Vec<_> = (1..=10)
            .map(|i| {
                let mut r = rec(i, "x");
                r.attributes.insert("d".into(), Value::Int(i * 10));
                r
            })
            .collect();
        let rows = run(
            "* | stats p50(d), p90(d), p95(d), p0(d), p100(d), avg(d)",
            recs,
            10,
        );
        assert_eq!(
            rows,
            [
                json!({"p50(d)": 50.0, "p90(d)": 90.0, "p95(d)": 100.0, "p0(d)": 10.0, "p100(d)": 100.0, "avg(d)": 55.0})
            ]
        );
    }

    #[test]
    fn record_json_shape() {
        let mut r = rec(1_714_564_800_123_456_789, "hello");
        r.resource = Attributes::from_pairs([
            ("host".to_string(), Value::Str("h".into())),
            ("k".to_string(), Value::Str("resource".into())),
        ]);
        r.attributes = Attributes::from_pairs([
            ("k".to_string(), Value::Int(1)),
            ("f".to_string(), Value::Float(f64::NAN)),
        ]);
        assert_eq!(
            record_json(&r),
            json!({
                "timestamp": "2024-05-01T12:00:00.123456789Z",
                "level": "info",
                "service": "api",
                "message": "hello",
                "attributes": {"host": "h", "k": 1, "f": "NaN"},
            })
        );
        r.trace_id = Some(TraceId([1; 16]));
        r.span_id = Some(SpanId([2; 8]));
        let j = record_json(&r);
        assert_eq!(j["trace_id"], "01010101010101010101010101010101");
        assert_eq!(j["span_id"], "0202020202020202");
    }

    #[test]
    fn field_counts_sorted_by_count_then_name() {
        let mut a = rec(1, "x");
        a.attributes.insert("status".into(), Value::Int(1));
        a.resource.insert("status".into(), Value::Int(2));
        a.resource.insert("host".into(), Value::Str("h".into()));
        let mut b = rec(2, "");
        b.trace_id = Some(TraceId([1; 16]));
        b.attributes.insert("zz".into(), Value::Bool(true));
        let got = field_counts(&VecQuerier(vec![a, b])).unwrap();
        let want: Vec<(String, u64)> = [
            ("level", 2),
            ("service", 2),
            ("host", 1),
            ("message", 1),
            ("status", 1),
            ("trace_id", 1),
            ("zz", 1),
        ]
        .iter()
        .map(|(k, n)| (k.to_string(), *n))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn storage_errors_are_reported() {
        let q = parse("*").unwrap();
        let e = execute(&q, &Failing, 10).unwrap_err();
        assert_eq!(e.to_string(), "cannot read storage: storage is closed");
        assert!(field_counts(&Failing).is_err());
    }
}
