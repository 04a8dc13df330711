//! Trace search over the span store: traces matching a query summarised one row each,
//! whole traces by id, the service/operation lists and the service dependency graph.
//!
//! Fed by: a [`SpanStore`] and a tenant. Feeds: the native trace API
//! (`/api/v1/traces...`), the Jaeger query API and the CLI's `traces` commands.
//!
//! Search is two passes: a light, filtered scan over the query's range finds the matching
//! trace ids (keeping only the `limit` most recent, so memory is bounded by the limit),
//! then one trace-id lookup (no scan) fetches those traces whole over the range widened by
//! [`FETCH_MARGIN_NS`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::ControlFlow;

use sightline_model::{Span, SpanId, SpanKind, Tenant, TraceId};
use sightline_storage::{ScanStats, SpanScan, SpanStore};

use crate::error::Result;

/// How far before the query's start and after its end a matching trace's other spans are
/// fetched. A trace's root usually starts before the span that matched (and its last spans
/// after it); an hour covers any request-scoped trace while keeping the lookup to at most
/// a couple of day partitions. Spans further out are not part of the summary.
pub const FETCH_MARGIN_NS: i64 = 3_600 * 1_000_000_000;

/// A trace search (`/api/v1/traces?...`, Jaeger's `/api/traces?...`). A trace matches when
/// one of its spans satisfies every filter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceQuery {
    pub service: Option<String>,
    pub operation: Option<String>,
    /// `key=value` pairs a matching span has (span or resource attributes, value as text).
    pub attributes: Vec<(String, String)>,
    pub min_duration_ns: Option<i64>,
    pub max_duration_ns: Option<i64>,
    /// Only traces with a span whose status is error (the matching span must be one).
    pub errors_only: bool,
    /// Spans starting in `[start_ns, end_ns)`.
    pub start_ns: i64,
    pub end_ns: i64,
    /// At most this many traces, the most recent (by matching span start) first.
    pub limit: usize,
}

impl TraceQuery {
    /// The store scan selecting the spans that make a trace match (light: ids and times
    /// are all the search needs from them).
    pub fn span_scan(&self) -> SpanScan {
        SpanScan {
            service: self.service.clone(),
            name: self.operation.clone(),
            attributes: self.attributes.clone(),
            min_duration_ns: self.min_duration_ns,
            max_duration_ns: self.max_duration_ns,
            errors_only: self.errors_only,
            trace_ids: None,
            light: true,
        }
    }
}

/// One row per trace of a search.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceSummary {
    pub trace_id: TraceId,
    /// Service and operation of the root span (the earliest span without a parent in the
    /// store; the earliest span when the root is missing).
    pub root_service: String,
    pub root_operation: String,
    /// Earliest span start, ns; latest span end minus that.
    pub start_ns: i64,
    pub duration_ns: i64,
    pub span_count: usize,
    pub error_count: usize,
    /// Spans per service, sorted by service.
    pub services: Vec<(String, usize)>,
}

/// A service-map edge: spans of `child` whose parent span belongs to `parent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    pub parent: String,
    pub child: String,
    pub call_count: u64,
    pub error_count: u64,
}

/// An operation of a service.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Operation {
    pub name: String,
    pub span_kind: SpanKind,
}

/// The traces matching `q`, most recent first (by the trace's start), summarised; at most
/// `q.limit` of them: those whose latest matching span started last. The stats add up the
/// search scan and the fetch of the traces.
///
/// # Errors
/// [`Error::Storage`](crate::Error::Storage) when the store cannot be read.
pub fn search_traces(
    store: &SpanStore,
    tenant: &Tenant,
    q: &TraceQuery,
) -> Result<(Vec<TraceSummary>, ScanStats)> {
    let (traces, stats) = search(store, tenant, q, true)?;
    let rows = traces.iter().map(|spans| summarize(spans)).collect();
    Ok((rows, stats))
}

/// The traces matching `q`, most recent first, each with all its spans (Jaeger's search
/// returns whole traces). Same selection and order as [`search_traces`]; spans of a trace
/// sorted by start time then span id.
///
/// # Errors
/// [`Error::Storage`](crate::Error::Storage) when the store cannot be read.
pub fn find_traces(store: &SpanStore, tenant: &Tenant, q: &TraceQuery) -> Result<Vec<Vec<Span>>> {
    Ok(search(store, tenant, q, false)?.0)
}

/// One trace's spans (any time), sorted by start time; empty when unknown.
///
/// # Errors
/// [`Error::Storage`](crate::Error::Storage) when the store cannot be read.
pub fn get_trace(store: &SpanStore, tenant: &Tenant, id: TraceId) -> Result<Vec<Span>> {
    let mut spans = store.trace(tenant, id, i64::MIN, i64::MAX)?;
    sort_spans(&mut spans);
    Ok(spans)
}

/// The summary row of one trace's spans (non-empty; an empty slice gives an all-zero row
/// with the placeholder trace id).
pub fn summarize(spans: &[Span]) -> TraceSummary {
    let Some(root) = root_span(spans) else {
        return TraceSummary {
            trace_id: TraceId::default(),
            root_service: String::new(),
            root_operation: String::new(),
            start_ns: 0,
            duration_ns: 0,
            span_count: 0,
            error_count: 0,
            services: Vec::new(),
        };
    };
    let start = spans.iter().map(|s| s.start).min().unwrap_or(root.start);
    let end = spans.iter().map(|s| s.end).max().unwrap_or(root.end);
    let mut services: BTreeMap<&str, usize> = BTreeMap::new();
    for s in spans {
        *services.entry(s.service.as_str()).or_default() += 1;
    }
    TraceSummary {
        trace_id: root.trace_id,
        root_service: root.service.clone(),
        root_operation: root.name.clone(),
        start_ns: start,
        duration_ns: end.saturating_sub(start).max(0),
        span_count: spans.len(),
        error_count: spans.iter().filter(|s| s.is_error()).count(),
        services: services
            .into_iter()
            .map(|(s, n)| (s.to_string(), n))
            .collect(),
    }
}

/// The root of a trace's spans: the earliest (by start, then span id) span without a
/// parent; when there is none, the earliest whose parent is not among `spans`; when there
/// is none either (a cycle in bad data), the earliest span. `None` for no spans.
pub fn root_span(spans: &[Span]) -> Option<&Span> {
    fn earliest<'a>(it: impl Iterator<Item = &'a Span>) -> Option<&'a Span> {
        it.min_by_key(|s| (s.start, s.span_id))
    }
    if let Some(r) = earliest(spans.iter().filter(|s| s.parent_span_id.is_none())) {
        return Some(r);
    }
    let ids: HashSet<SpanId> = spans.iter().map(|s| s.span_id).collect();
    let orphan = earliest(
        spans
            .iter()
            .filter(|s| s.parent_span_id.is_some_and(|p| !ids.contains(&p))),
    );
    orphan.or_else(|| earliest(spans.iter()))
}

/// The spans in depth-first tree order (children by start time) with their depth;
/// spans whose parent is missing are roots.
///
/// Children and roots are ordered by (start, span id). Every span appears exactly once,
/// whatever the data: a span that is its own parent is a root; spans caught in a parent
/// cycle (no root above them) are laid out from their earliest member, after the trees.
/// When two spans share a span id, children attach to the first of them.
pub fn tree_order<'s>(spans: &'s [Span]) -> Vec<(usize, &'s Span)> {
    let key = |i: usize| (spans[i].start, spans[i].span_id, i);
    let mut index: HashMap<SpanId, usize> = HashMap::with_capacity(spans.len());
    for (i, s) in spans.iter().enumerate() {
        index.entry(s.span_id).or_insert(i);
    }
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    let mut roots = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match s.parent_span_id.and_then(|p| index.get(&p)) {
            Some(&p) if p != i => children[p].push(i),
            _ => roots.push(i),
        }
    }
    for c in &mut children {
        c.sort_by_key(|&i| key(i));
    }
    roots.sort_by_key(|&i| key(i));

    let mut out = Vec::with_capacity(spans.len());
    let mut visited = vec![false; spans.len()];
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let mut walk = |start: usize, out: &mut Vec<(usize, &'s Span)>| {
        stack.push((start, 0));
        while let Some((i, depth)) = stack.pop() {
            if visited[i] {
                continue;
            }
            visited[i] = true;
            out.push((depth, &spans[i]));
            // Reversed so the earliest child is popped first.
            for &c in children[i].iter().rev() {
                if !visited[c] {
                    stack.push((c, depth + 1));
                }
            }
        }
    };
    for &r in &roots {
        walk(r, &mut out);
    }
    if out.len() < spans.len() {
        // Spans in parent cycles: no root leads to them. Walking from every span in
        // order lays out the unvisited ones (`walk` skips visited spans).
        let mut all: Vec<usize> = (0..spans.len()).collect();
        all.sort_by_key(|&i| key(i));
        for r in all {
            walk(r, &mut out);
        }
    }
    out
}

/// Services with spans starting in `[start_ns, end_ns)`, sorted. Spans without a service
/// name are not counted as a service.
///
/// # Errors
/// [`Error::Storage`](crate::Error::Storage) when the store cannot be read.
pub fn services(
    store: &SpanStore,
    tenant: &Tenant,
    start_ns: i64,
    end_ns: i64,
) -> Result<Vec<String>> {
    let mut out = BTreeSet::new();
    if start_ns < end_ns {
        let scan = SpanScan {
            light: true,
            ..SpanScan::default()
        };
        store.scan(tenant, start_ns, end_ns, &scan, &mut |s| {
            if !s.service.is_empty() {
                out.insert(s.service);
            }
            ControlFlow::Continue(())
        })?;
    }
    Ok(out.into_iter().collect())
}

/// Operations of `service` with spans starting in `[start_ns, end_ns)`, sorted by name
/// then span kind (one entry per name and kind seen).
///
/// # Errors
/// [`Error::Storage`](crate::Error::Storage) when the store cannot be read.
pub fn operations(
    store: &SpanStore,
    tenant: &Tenant,
    service: &str,
    start_ns: i64,
    end_ns: i64,
) -> Result<Vec<Operation>> {
    let mut out = BTreeSet::new();
    if start_ns < end_ns {
        let scan = SpanScan {
            service: Some(service.to_string()),
            light: true,
            ..SpanScan::default()
        };
        store.scan(tenant, start_ns, end_ns, &scan, &mut |s| {
            // The store filters by service; checked again so a lax store cannot leak
            // another service's operations.
            if s.service == service {
                out.insert(Operation {
                    name: s.name,
                    span_kind: s.kind,
                });
            }
            ControlFlow::Continue(())
        })?;
    }
    Ok(out.into_iter().collect())
}

/// Service-map edges from spans starting in `[start_ns, end_ns)`, sorted by parent, child.
///
/// An edge `parent → child` counts every span of `child` whose parent span (same trace)
/// belongs to another service `parent`; its error count, those child spans with status
/// error. Parent spans starting outside the range are not found, so their edges are
/// missing. Spans without a service name make no edge.
///
/// # Memory
/// Holds a few dozen bytes per span in range (ids, a service index, the error flag), so it
/// is bounded by the number of spans in the range: callers should bound the range (the
/// API's default is one hour).
///
/// # Errors
/// [`Error::Storage`](crate::Error::Storage) when the store cannot be read.
pub fn dependencies(
    store: &SpanStore,
    tenant: &Tenant,
    start_ns: i64,
    end_ns: i64,
) -> Result<Vec<Dependency>> {
    let mut graph = EdgeBuilder::default();
    if start_ns < end_ns {
        let scan = SpanScan {
            light: true,
            ..SpanScan::default()
        };
        store.scan(tenant, start_ns, end_ns, &scan, &mut |s| {
            graph.add(&s);
            ControlFlow::Continue(())
        })?;
    }
    Ok(graph.edges())
}

/// The spans of one search: matching trace ids, then those traces whole, most recent
/// (trace start) first.
fn search(
    store: &SpanStore,
    tenant: &Tenant,
    q: &TraceQuery,
    light: bool,
) -> Result<(Vec<Vec<Span>>, ScanStats)> {
    if q.limit == 0 || q.start_ns >= q.end_ns {
        return Ok((Vec::new(), ScanStats::default()));
    }
    let mut recent = RecentTraces::new(q.limit);
    let mut stats = store.scan(tenant, q.start_ns, q.end_ns, &q.span_scan(), &mut |s| {
        recent.offer(s.trace_id, s.start);
        ControlFlow::Continue(())
    })?;
    let ids = recent.into_ids();
    if ids.is_empty() {
        return Ok((Vec::new(), stats));
    }

    let fetch = SpanScan {
        trace_ids: Some(ids.clone()),
        light,
        ..SpanScan::default()
    };
    let mut by_trace: HashMap<TraceId, Vec<Span>> =
        ids.iter().map(|&id| (id, Vec::new())).collect();
    let fetch_stats = store.scan(
        tenant,
        q.start_ns.saturating_sub(FETCH_MARGIN_NS),
        q.end_ns.saturating_add(FETCH_MARGIN_NS),
        &fetch,
        &mut |s| {
            if let Some(v) = by_trace.get_mut(&s.trace_id) {
                v.push(s);
            }
            ControlFlow::Continue(())
        },
    )?;
    add_stats(&mut stats, &fetch_stats);

    // A trace can vanish between the passes (sampled out by a flush): it is left out.
    let mut traces: Vec<Vec<Span>> = by_trace.into_values().filter(|v| !v.is_empty()).collect();
    for t in &mut traces {
        sort_spans(t);
    }
    order_most_recent_first(&mut traces);
    Ok((traces, stats))
}

/// Sorts whole traces (each sorted by start) by their start, latest first; ties by trace
/// id so the order is stable across runs.
fn order_most_recent_first(traces: &mut [Vec<Span>]) {
    traces.sort_by_key(|t| {
        let start = t.iter().map(|s| s.start).min().unwrap_or(i64::MIN);
        Reverse((start, t.first().map(|s| s.trace_id).unwrap_or_default()))
    });
}

fn sort_spans(spans: &mut [Span]) {
    spans.sort_by_key(|s| (s.start, s.span_id));
}

fn add_stats(into: &mut ScanStats, other: &ScanStats) {
    into.scanned_rows += other.scanned_rows;
    into.scanned_bytes += other.scanned_bytes;
    into.blocks_total += other.blocks_total;
    into.blocks_skipped += other.blocks_skipped;
}

/// The `limit` traces whose latest offered span start is greatest, kept in O(limit)
/// memory while spans stream by.
///
/// # Invariants
/// `ranked` and `latest` hold the same traces, `ranked` keyed by (latest start, id), and
/// at most `limit` of them. Correct in a stream because a trace's key only grows: a trace
/// evicted with key `k` had `limit` traces above it, and any later span of it below the
/// current threshold cannot lift it into the top.
#[derive(Debug)]
struct RecentTraces {
    limit: usize,
    ranked: BTreeSet<(i64, TraceId)>,
    latest: HashMap<TraceId, i64>,
}

impl RecentTraces {
    fn new(limit: usize) -> Self {
        RecentTraces {
            limit,
            ranked: BTreeSet::new(),
            latest: HashMap::new(),
        }
    }

    fn offer(&mut self, id: TraceId, start: i64) {
        if self.limit == 0 {
            return;
        }
        if let Some(old) = self.latest.get_mut(&id) {
            if start > *old {
                self.ranked.remove(&(*old, id));
                self.ranked.insert((start, id));
                *old = start;
            }
            return;
        }
        if self.ranked.len() == self.limit {
            let lowest = *self
                .ranked
                .first()
                .expect("BUG: a full ranking with a positive limit is non-empty");
            if (start, id) <= lowest {
                return;
            }
            self.ranked.pop_first();
            self.latest.remove(&lowest.1);
        }
        self.ranked.insert((start, id));
        self.latest.insert(id, start);
        debug_assert_eq!(self.ranked.len(), self.latest.len());
    }

    /// The kept trace ids, latest first.
    fn into_ids(self) -> Vec<TraceId> {
        self.ranked.into_iter().rev().map(|(_, id)| id).collect()
    }
}

/// Service-map edges from a stream of spans (see [`dependencies`]).
#[derive(Debug, Default)]
struct EdgeBuilder {
    /// Service names, indexed by the `u32`s below (spans repeat few services).
    names: Vec<String>,
    name_index: HashMap<String, u32>,
    /// Per span: its service, keyed by (trace, span id).
    owner: HashMap<(TraceId, SpanId), u32>,
    /// Per span with a parent: (trace, parent id, own service, error).
    links: Vec<(TraceId, SpanId, u32, bool)>,
}

impl EdgeBuilder {
    fn add(&mut self, s: &Span) {
        if s.service.is_empty() {
            return;
        }
        let svc = match self.name_index.get(&s.service) {
            Some(&i) => i,
            None => {
                let i = u32::try_from(self.names.len())
                    .expect("BUG: more than 4 billion distinct services");
                self.names.push(s.service.clone());
                self.name_index.insert(s.service.clone(), i);
                i
            }
        };
        self.owner.entry((s.trace_id, s.span_id)).or_insert(svc);
        if let Some(p) = s.parent_span_id {
            self.links.push((s.trace_id, p, svc, s.is_error()));
        }
    }

    fn edges(&self) -> Vec<Dependency> {
        let mut counts: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
        for &(trace, parent, child, error) in &self.links {
            let Some(&p) = self.owner.get(&(trace, parent)) else {
                continue;
            };
            if p == child {
                continue;
            }
            let c = counts
                .entry((&self.names[p as usize], &self.names[child as usize]))
                .or_default();
            c.0 += 1;
            c.1 += u64::from(error);
        }
        counts
            .into_iter()
            .map(|((parent, child), (call_count, error_count))| Dependency {
                parent: parent.to_string(),
                child: child.to_string(),
                call_count,
                error_count,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sightline_model::StatusCode;

    fn tid(n: u8) -> TraceId {
        TraceId([n; 16])
    }

    fn sid(n: u8) -> SpanId {
        SpanId([0, 0, 0, 0, 0, 0, 0, n])
    }

    fn span(
        trace: u8,
        id: u8,
        parent: Option<u8>,
        service: &str,
        name: &str,
        start: i64,
        end: i64,
    ) -> Span {
        Span {
            trace_id: tid(trace),
            span_id: sid(id),
            parent_span_id: parent.map(sid),
            name: name.into(),
            service: service.into(),
            start,
            end,
            ..Span::default()
        }
    }

    fn error(mut s: Span) -> Span {
        s.status_code = StatusCode::Error;
        s
    }

    fn ids(order: &[(usize, &Span)]) -> Vec<(usize, u8)> {
        order.iter().map(|(d, s)| (*d, s.span_id.0[7])).collect()
    }

    #[test]
    fn summary_takes_root_counts_and_extent() {
        let spans = vec![
            span(1, 2, Some(1), "db", "query", 150, 400),
            error(span(1, 3, Some(1), "cache", "get", 120, 130)),
            span(1, 1, None, "api", "GET /", 100, 300),
            error(span(1, 4, Some(2), "db", "fetch", 160, 200)),
        ];
        let s = summarize(&spans);
        assert_eq!(s.trace_id, tid(1));
        assert_eq!(s.root_service, "api");
        assert_eq!(s.root_operation, "GET /");
        assert_eq!(s.start_ns, 100);
        // The child outlives the root: duration runs to the latest end.
        assert_eq!(s.duration_ns, 300);
        assert_eq!(s.span_count, 4);
        assert_eq!(s.error_count, 2);
        assert_eq!(
            s.services,
            vec![("api".into(), 1), ("cache".into(), 1), ("db".into(), 2)]
        );
    }

    #[test]
    fn summary_root_falls_back_to_earliest_orphan_then_earliest() {
        // The root (span 1) is missing: the earliest span whose parent is absent is root,
        // even though a non-orphan (span 4, child of 3) starts earlier.
        let spans = vec![
            span(1, 3, Some(1), "web", "render", 200, 300),
            span(1, 2, Some(1), "auth", "check", 150, 160),
            span(1, 4, Some(3), "db", "q", 100, 110),
        ];
        let s = summarize(&spans);
        assert_eq!(
            (s.root_service.as_str(), s.root_operation.as_str()),
            ("auth", "check")
        );
        assert_eq!(s.start_ns, 100);
        assert_eq!(s.duration_ns, 200);

        // A parentless span wins over an earlier orphan.
        let spans = vec![
            span(1, 2, Some(9), "orphan", "o", 50, 60),
            span(1, 1, None, "root", "r", 100, 200),
        ];
        assert_eq!(summarize(&spans).root_service, "root");

        // A cycle: no parentless span, no orphan; the earliest span is root.
        let spans = vec![
            span(1, 1, Some(2), "a", "x", 20, 30),
            span(1, 2, Some(1), "b", "y", 10, 40),
        ];
        assert_eq!(summarize(&spans).root_service, "b");
    }

    #[test]
    fn summary_of_nothing_is_empty() {
        let s = summarize(&[]);
        assert_eq!(s.span_count, 0);
        assert!(s.services.is_empty());
    }

    #[test]
    fn tree_order_is_depth_first_with_children_by_start() {
        let spans = vec![
            span(1, 4, Some(2), "s", "d", 130, 140),
            span(1, 3, Some(1), "s", "c", 200, 250),
            span(1, 2, Some(1), "s", "b", 110, 190),
            span(1, 1, None, "s", "a", 100, 300),
            span(1, 5, Some(2), "s", "e", 120, 125),
        ];
        let order = tree_order(&spans);
        assert_eq!(ids(&order), vec![(0, 1), (1, 2), (2, 5), (2, 4), (1, 3)]);
    }

    #[test]
    fn tree_order_ties_break_by_span_id_and_orphans_are_roots() {
        let spans = vec![
            span(1, 7, Some(9), "s", "orphan", 50, 60),
            span(1, 3, Some(1), "s", "c", 110, 120),
            span(1, 2, Some(1), "s", "b", 110, 120),
            span(1, 1, None, "s", "a", 100, 300),
        ];
        let order = tree_order(&spans);
        assert_eq!(ids(&order), vec![(0, 7), (0, 1), (1, 2), (1, 3)]);
    }

    #[test]
    fn tree_order_survives_cycles_and_self_parents() {
        let spans = vec![
            span(1, 1, Some(2), "s", "a", 20, 30),
            span(1, 2, Some(3), "s", "b", 10, 40),
            span(1, 3, Some(1), "s", "c", 30, 35),
            span(1, 4, Some(4), "s", "self", 5, 6),
            span(1, 5, Some(1), "s", "under-cycle", 25, 26),
        ];
        let order = tree_order(&spans);
        // The self-parented span is a root; the cycle is laid out from its earliest member
        // (2) after the trees, every span exactly once.
        assert_eq!(ids(&order), vec![(0, 4), (0, 2), (1, 1), (2, 5), (2, 3)]);
    }

    #[test]
    fn tree_order_visits_duplicate_span_ids_once_each() {
        let spans = vec![
            span(1, 1, None, "s", "a", 100, 200),
            span(1, 1, None, "s", "a-again", 150, 160),
            span(1, 2, Some(1), "s", "b", 110, 120),
        ];
        let order = tree_order(&spans);
        assert_eq!(order.len(), 3);
        assert_eq!(
            order
                .iter()
                .map(|(d, s)| (*d, s.name.as_str()))
                .collect::<Vec<_>>(),
            vec![(0, "a"), (1, "b"), (0, "a-again")]
        );
    }

    #[test]
    fn edges_count_cross_service_calls_and_errors() {
        let spans = vec![
            span(1, 1, None, "frontend", "GET /", 0, 100),
            span(1, 2, Some(1), "frontend", "render", 10, 20),
            span(1, 3, Some(1), "checkout", "pay", 20, 50),
            error(span(1, 4, Some(1), "checkout", "pay", 60, 70)),
            span(1, 5, Some(3), "db", "insert", 25, 30),
            // Same span id as trace 1's root, other trace: must not join trace 1.
            span(2, 6, Some(1), "mailer", "send", 0, 5),
            // Parent outside the scanned spans: no edge.
            span(2, 7, Some(42), "db", "select", 0, 5),
            // No service: no edge.
            span(1, 8, Some(1), "", "anon", 0, 5),
        ];
        let mut g = EdgeBuilder::default();
        for s in &spans {
            g.add(s);
        }
        assert_eq!(
            g.edges(),
            vec![
                Dependency {
                    parent: "checkout".into(),
                    child: "db".into(),
                    call_count: 1,
                    error_count: 0
                },
                Dependency {
                    parent: "frontend".into(),
                    child: "checkout".into(),
                    call_count: 2,
                    error_count: 1
                },
            ]
        );
    }

    #[test]
    fn edges_do_not_depend_on_arrival_order() {
        // Child before parent in the stream.
        let mut g = EdgeBuilder::default();
        g.add(&span(1, 2, Some(1), "b", "x", 10, 20));
        g.add(&span(1, 1, None, "a", "y", 0, 30));
        let e = g.edges();
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].parent.as_str(), e[0].child.as_str()), ("a", "b"));
    }

    #[test]
    fn recent_traces_keeps_latest_by_matching_start() {
        let mut r = RecentTraces::new(2);
        r.offer(tid(1), 100);
        r.offer(tid(2), 200);
        r.offer(tid(3), 150); // evicts 1
        r.offer(tid(1), 120); // below the threshold (150): stays out
        r.offer(tid(3), 300); // 3's latest grows
        assert_eq!(r.into_ids(), vec![tid(3), tid(2)]);

        let mut r = RecentTraces::new(0);
        r.offer(tid(1), 1);
        assert!(r.into_ids().is_empty());
    }

    #[test]
    fn most_recent_first_orders_by_trace_start() {
        let mut traces = vec![
            vec![span(1, 1, None, "s", "a", 100, 200)],
            vec![span(2, 1, None, "s", "a", 300, 400)],
            vec![span(3, 1, None, "s", "a", 200, 900)],
        ];
        order_most_recent_first(&mut traces);
        let order: Vec<TraceId> = traces.iter().map(|t| t[0].trace_id).collect();
        assert_eq!(order, vec![tid(2), tid(3), tid(1)]);
    }

    #[test]
    fn span_scan_carries_every_filter() {
        let q = TraceQuery {
            service: Some("api".into()),
            operation: Some("GET /".into()),
            attributes: vec![("http.status_code".into(), "500".into())],
            min_duration_ns: Some(5),
            max_duration_ns: Some(50),
            errors_only: true,
            start_ns: 0,
            end_ns: 10,
            limit: 3,
        };
        let s = q.span_scan();
        assert_eq!(s.service.as_deref(), Some("api"));
        assert_eq!(s.name.as_deref(), Some("GET /"));
        assert_eq!(s.attributes, q.attributes);
        assert_eq!((s.min_duration_ns, s.max_duration_ns), (Some(5), Some(50)));
        assert!(s.errors_only && s.light && s.trace_ids.is_none());
    }

    proptest! {
        /// Streaming top-k equals sorting every trace by its latest start.
        #[test]
        fn recent_traces_matches_brute_force(
            offers in proptest::collection::vec((0u8..12, 0i64..50), 0..80),
            limit in 0usize..6,
        ) {
            let mut r = RecentTraces::new(limit);
            let mut latest: HashMap<TraceId, i64> = HashMap::new();
            for &(t, s) in &offers {
                r.offer(tid(t), s);
                let e = latest.entry(tid(t)).or_insert(s);
                *e = (*e).max(s);
            }
            let mut all: Vec<(i64, TraceId)> = latest.into_iter().map(|(t, s)| (s, t)).collect();
            all.sort_by(|a, b| b.cmp(a));
            let want: Vec<TraceId> = all.into_iter().take(limit).map(|(_, t)| t).collect();
            prop_assert_eq!(r.into_ids(), want);
        }

        /// Any parent wiring (cycles, orphans, duplicates) yields every span exactly once,
        /// laid out depth-first.
        #[test]
        fn tree_order_visits_every_span_once(
            wiring in proptest::collection::vec((0u8..10, proptest::option::of(0u8..12), 0i64..20), 0..30),
        ) {
            let spans: Vec<Span> = wiring
                .iter()
                .map(|&(id, parent, start)| span(1, id, parent, "s", "x", start, start + 1))
                .collect();
            let order = tree_order(&spans);
            prop_assert_eq!(order.len(), spans.len());
            let mut seen: Vec<*const Span> = order.iter().map(|(_, s)| *s as *const Span).collect();
            seen.sort();
            seen.dedup();
            prop_assert_eq!(seen.len(), spans.len());
            // Depth grows by at most one from one span to the next (depth-first layout).
            for w in order.windows(2) {
                prop_assert!(w[1].0 <= w[0].0 + 1);
            }
            if let Some(first) = order.first() {
                prop_assert_eq!(first.0, 0);
            }
        }
    }
}
