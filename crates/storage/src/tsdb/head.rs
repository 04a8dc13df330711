//! The in-memory head of one tenant: every series' recent samples in Gorilla chunks (one
//! open chunk being appended to plus closed chunks), the series index and the tenant's
//! metric metadata. Fed by committed (WAL-durable) batches and by replay; drained into
//! blocks by `Head::cut`.
//!
//! Out-of-order and historic samples: a sample whose timestamp does not exceed the
//! series' newest in-order sample goes to a per-series sorted buffer (`ooo`, a BTreeMap so
//! a same-timestamp write replaces: last write wins) that reads merge over the chunks,
//! the buffer winning on equal timestamps (it is always the newer write: chunk samples only
//! ever get timestamps above everything stored). When the buffer grows past
//! [`OOO_MERGE_THRESHOLD`] the series is re-encoded with it merged in, so memory stays
//! chunk-compressed under heavy backfill. Staleness markers are ordinary samples.
//!
//! Chunks are cut at [`MAX_SAMPLES_PER_CHUNK`] samples and at block-window boundaries
//! (multiples of the block duration), so cutting the head into blocks never splits a chunk.

use std::collections::{BTreeMap, HashSet};

use sightline_model::{Labels, MetricMetadata, Sample, TimeSeries};

use super::chunk::{self, ChunkBuilder, MAX_SAMPLES_PER_CHUNK};
use super::index::Index;
use crate::api::LabelMatcher;

/// Out-of-order samples buffered per series before the series is re-encoded: a few
/// chunks' worth keeps the buffer's ~48 bytes/sample overhead bounded while a typical
/// backfill batch (hundreds of samples per series) costs only a handful of re-encodes.
pub const OOO_MERGE_THRESHOLD: usize = 4 * MAX_SAMPLES_PER_CHUNK;

#[derive(Clone, Debug)]
struct ClosedChunk {
    min_t: i64,
    max_t: i64,
    data: Box<[u8]>,
}

#[derive(Clone, Debug, Default)]
struct MemSeries {
    closed: Vec<ClosedChunk>,
    open: ChunkBuilder,
    ooo: BTreeMap<i64, u64>,
}

impl MemSeries {
    fn max_in_order(&self) -> Option<i64> {
        if !self.open.is_empty() {
            Some(self.open.max_t())
        } else {
            self.closed.last().map(|c| c.max_t)
        }
    }

    fn is_empty(&self) -> bool {
        self.closed.is_empty() && self.open.is_empty() && self.ooo.is_empty()
    }

    fn close_open(&mut self) {
        if !self.open.is_empty() {
            let open = std::mem::take(&mut self.open);
            self.closed.push(ClosedChunk {
                min_t: open.min_t(),
                max_t: open.max_t(),
                data: open.bytes().into_boxed_slice(),
            });
        }
    }

    fn push_in_order(&mut self, t: i64, v: f64, block_ms: i64) {
        if !self.open.is_empty()
            && (self.open.len() >= MAX_SAMPLES_PER_CHUNK
                || t.div_euclid(block_ms) != self.open.min_t().div_euclid(block_ms))
        {
            self.close_open();
        }
        self.open.push(t, v);
    }

    /// Bounds of the samples held (chunks and buffer).
    fn bounds(&self) -> Option<(i64, i64)> {
        let mut b: Option<(i64, i64)> = None;
        let mut add = |lo: i64, hi: i64| {
            b = Some(b.map_or((lo, hi), |(a, z)| (a.min(lo), z.max(hi))));
        };
        if let Some(c) = self.closed.first() {
            add(c.min_t, c.max_t);
        }
        if let Some(c) = self.closed.last() {
            add(c.min_t, c.max_t);
        }
        if !self.open.is_empty() {
            add(self.open.min_t(), self.open.max_t());
        }
        if let (Some((lo, _)), Some((hi, _))) =
            (self.ooo.first_key_value(), self.ooo.last_key_value())
        {
            add(*lo, *hi);
        }
        b
    }

    /// Whether some chunk or buffered sample overlaps `[start, end]` (by chunk bounds).
    fn overlaps(&self, start: i64, end: i64) -> bool {
        self.closed
            .iter()
            .any(|c| c.min_t <= end && c.max_t >= start)
            || (!self.open.is_empty() && self.open.min_t() <= end && self.open.max_t() >= start)
            || self.ooo.range(start..=end).next().is_some()
    }

    /// Samples in `[start, end]`, time-ordered, buffer winning over chunks.
    fn samples(&self, start: i64, end: i64) -> Vec<Sample> {
        let mut in_order = Vec::new();
        let open_bytes;
        let mut chunks: Vec<&[u8]> = self
            .closed
            .iter()
            .filter(|c| c.min_t <= end && c.max_t >= start)
            .map(|c| &c.data[..])
            .collect();
        if !self.open.is_empty() && self.open.min_t() <= end && self.open.max_t() >= start {
            open_bytes = self.open.bytes();
            chunks.push(&open_bytes);
        }
        for c in chunks {
            for s in chunk::iter(c).expect("BUG: head chunk has a header") {
                let s = s.expect("BUG: head chunk does not decode");
                if s.timestamp_ms >= start && s.timestamp_ms <= end {
                    in_order.push(s);
                }
            }
        }
        if self.ooo.is_empty() {
            return in_order;
        }
        let ooo: Vec<Sample> = self
            .ooo
            .range(start..=end)
            .map(|(t, b)| Sample {
                timestamp_ms: *t,
                value: f64::from_bits(*b),
            })
            .collect();
        merge_newer_wins(&in_order, &ooo)
    }

    /// Re-encodes the series from `samples` (time-ordered, unique).
    fn rebuild(&mut self, samples: &[Sample], block_ms: i64) {
        *self = MemSeries::default();
        for s in samples {
            self.push_in_order(s.timestamp_ms, s.value, block_ms);
        }
    }

    /// Samples held; buffered samples that replace chunk samples count twice.
    fn sample_count(&self) -> u64 {
        let closed: usize = self.closed.iter().map(|c| chunk::count(&c.data)).sum();
        (closed + self.open.len() + self.ooo.len()) as u64
    }

    fn chunks(&self) -> usize {
        self.closed.len() + usize::from(!self.open.is_empty())
    }
}

/// Merges two time-ordered sample lists; on equal timestamps `newer` wins.
pub fn merge_newer_wins(older: &[Sample], newer: &[Sample]) -> Vec<Sample> {
    let mut out = Vec::with_capacity(older.len() + newer.len());
    let (mut i, mut j) = (0, 0);
    while i < older.len() && j < newer.len() {
        let (a, b) = (older[i].timestamp_ms, newer[j].timestamp_ms);
        if a < b {
            out.push(older[i]);
            i += 1;
        } else {
            out.push(newer[j]);
            j += 1;
            if a == b {
                i += 1;
            }
        }
    }
    out.extend_from_slice(&older[i..]);
    out.extend_from_slice(&newer[j..]);
    out
}

/// Counters of one head.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeadStats {
    pub series: u64,
    pub samples: u64,
    pub chunks: u64,
}

/// One tenant's head.
#[derive(Debug)]
pub struct Head {
    block_ms: i64,
    index: Index,
    series: Vec<MemSeries>,
    metadata: BTreeMap<String, MetricMetadata>,
    /// Samples appended since the last cut (replacements included).
    samples: u64,
    min_t: i64,
    max_t: i64,
}

impl Head {
    /// An empty head whose chunks never span a multiple of `block_ms`.
    ///
    /// # Panics
    /// "BUG:" for a non-positive block duration.
    pub fn new(block_ms: i64) -> Self {
        assert!(block_ms > 0, "BUG: block duration {block_ms} ms");
        Head {
            block_ms,
            index: Index::new(),
            series: Vec::new(),
            metadata: BTreeMap::new(),
            samples: 0,
            min_t: i64::MAX,
            max_t: i64::MIN,
        }
    }

    /// Appends one sample of `labels`.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) {
        let (id, created) = self.index.get_or_create(labels);
        if created {
            self.series.push(MemSeries::default());
        }
        self.append_id(id, t, v);
    }

    fn append_id(&mut self, id: u32, t: i64, v: f64) {
        let block_ms = self.block_ms;
        let s = &mut self.series[id as usize];
        match s.max_in_order() {
            Some(max) if t <= max => {
                s.ooo.insert(t, v.to_bits());
                if s.ooo.len() > OOO_MERGE_THRESHOLD {
                    let all = s.samples(i64::MIN, i64::MAX);
                    s.rebuild(&all, block_ms);
                }
            }
            _ => {
                if s.open.is_full() {
                    s.close_open();
                }
                s.push_in_order(t, v, block_ms);
            }
        }
        self.samples += 1;
        self.min_t = self.min_t.min(t);
        self.max_t = self.max_t.max(t);
    }

    /// Applies one committed batch.
    pub fn apply(&mut self, series: &[TimeSeries], metadata: &[MetricMetadata]) {
        for ts in series {
            // Empty series still get an id: checkpoints keep them so ids stay stable.
            let (id, created) = self.index.get_or_create(&ts.labels);
            if created {
                self.series.push(MemSeries::default());
            }
            for s in &ts.samples {
                self.append_id(id, s.timestamp_ms, s.value);
            }
        }
        for m in metadata {
            self.metadata
                .insert(m.metric_family_name.clone(), m.clone());
        }
    }

    /// Smallest and largest timestamp appended since the last cut, if any.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        (self.min_t <= self.max_t).then_some((self.min_t, self.max_t))
    }

    pub fn stats(&self) -> HeadStats {
        HeadStats {
            series: self.index.len() as u64,
            samples: self.samples,
            chunks: self.series.iter().map(|s| s.chunks() as u64).sum(),
        }
    }

    /// Series matching `matchers` with samples in `[start, end]`, sorted by labels.
    pub fn select(&self, matchers: &[LabelMatcher], start: i64, end: i64) -> Vec<TimeSeries> {
        let mut out: Vec<TimeSeries> = self
            .index
            .select(matchers)
            .into_iter()
            .filter_map(|id| {
                let samples = self.series[id as usize].samples(start, end);
                (!samples.is_empty()).then(|| TimeSeries {
                    labels: self.index.labels(id).clone(),
                    samples,
                })
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Labels of the series matching `matchers` whose chunks overlap `[start, end]` (by
    /// chunk bounds, like Prometheus' label APIs: cheap, may include a series whose
    /// samples straddle the range).
    pub fn series_labels(&self, matchers: &[LabelMatcher], start: i64, end: i64) -> Vec<Labels> {
        self.index
            .select(matchers)
            .into_iter()
            .filter(|&id| self.series[id as usize].overlaps(start, end))
            .map(|id| self.index.labels(id).clone())
            .collect()
    }

    /// Metadata of every metric family, or of `metric` only.
    pub fn metadata(&self, metric: Option<&str>) -> Vec<MetricMetadata> {
        match metric {
            Some(m) => self.metadata.get(m).cloned().into_iter().collect(),
            None => self.metadata.values().cloned().collect(),
        }
    }

    /// Removes and returns every sample with a timestamp below `before` (all samples when
    /// `None`), per series sorted by labels. Series left without samples are dropped from
    /// the index (the remaining ones are renumbered in their old order).
    pub fn cut(&mut self, before: Option<i64>) -> Vec<TimeSeries> {
        let before_t = before.unwrap_or(i64::MAX);
        let mut out = Vec::new();
        let block_ms = self.block_ms;
        for (id, s) in self.series.iter_mut().enumerate() {
            let Some((lo, hi)) = s.bounds() else { continue };
            if lo >= before_t && before.is_some() {
                continue;
            }
            let all = s.samples(i64::MIN, i64::MAX);
            let (taken, kept): (Vec<Sample>, Vec<Sample>) = if before.is_none() || hi < before_t {
                (all, Vec::new())
            } else {
                all.into_iter().partition(|x| x.timestamp_ms < before_t)
            };
            if kept.is_empty() {
                *s = MemSeries::default();
            } else {
                s.rebuild(&kept, block_ms);
            }
            if !taken.is_empty() {
                out.push(TimeSeries {
                    labels: self.index.labels(id as u32).clone(),
                    samples: taken,
                });
            }
        }
        self.collect_garbage();
        self.samples = self.series.iter().map(MemSeries::sample_count).sum();
        let bounds: Vec<(i64, i64)> = self.series.iter().filter_map(MemSeries::bounds).collect();
        self.min_t = bounds.iter().map(|b| b.0).min().unwrap_or(i64::MAX);
        self.max_t = bounds.iter().map(|b| b.1).max().unwrap_or(i64::MIN);
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Drops series without samples: after a cut they would otherwise pile up with churn.
    fn collect_garbage(&mut self) {
        if !self.series.iter().any(MemSeries::is_empty) {
            return;
        }
        let old_index = std::mem::take(&mut self.index);
        let old_series = std::mem::take(&mut self.series);
        for (id, s) in old_series.into_iter().enumerate() {
            if !s.is_empty() {
                self.index.get_or_create(old_index.labels(id as u32));
                self.series.push(s);
            }
        }
    }

    /// Every series (in id order, empty ones included so that ids survive a restart) with
    /// all its samples, for a checkpoint.
    pub fn snapshot(&self) -> (Vec<TimeSeries>, Vec<MetricMetadata>) {
        let series = self
            .series
            .iter()
            .enumerate()
            .map(|(id, s)| TimeSeries {
                labels: self.index.labels(id as u32).clone(),
                samples: if s.is_empty() {
                    Vec::new()
                } else {
                    s.samples(i64::MIN, i64::MAX)
                },
            })
            .collect();
        (series, self.metadata.values().cloned().collect())
    }

    /// Names of metric families with metadata (for tests and stats).
    pub fn metadata_names(&self) -> HashSet<&str> {
        self.metadata.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::MatchKind;
    use proptest::prelude::*;
    use sightline_model::sample::STALE_NAN_BITS;

    fn l(name: &str) -> Labels {
        Labels::from_pairs([("__name__", name)]).unwrap()
    }

    fn pts(ts: &TimeSeries) -> Vec<(i64, u64)> {
        ts.samples
            .iter()
            .map(|s| (s.timestamp_ms, s.value.to_bits()))
            .collect()
    }

    #[test]
    fn out_of_order_and_duplicates_last_write_wins() {
        let mut h = Head::new(7_200_000);
        let a = l("a");
        h.append(&a, 100, 1.0);
        h.append(&a, 300, 3.0);
        h.append(&a, 200, 2.0); // out of order
        h.append(&a, 300, 30.0); // replaces an in-order sample
        h.append(&a, 200, 20.0); // replaces a buffered one
        h.append(&a, 400, f64::from_bits(STALE_NAN_BITS));
        let got = h.select(&[], i64::MIN, i64::MAX);
        assert_eq!(
            pts(&got[0]),
            vec![
                (100, 1f64.to_bits()),
                (200, 20f64.to_bits()),
                (300, 30f64.to_bits()),
                (400, STALE_NAN_BITS)
            ]
        );
        assert_eq!(pts(&h.select(&[], 150, 300)[0]).len(), 2);
        assert!(h.select(&[], 500, 600).is_empty());
    }

    #[test]
    fn chunks_are_cut_at_window_and_size() {
        let mut h = Head::new(1000);
        for t in 0..2000 {
            h.append(&l("a"), t, t as f64);
        }
        // 2 windows of 1000 samples, 120 per chunk -> 9 chunks per window.
        assert_eq!(h.stats().chunks, 18);
        let cut = h.cut(Some(1000));
        assert_eq!(cut[0].samples.len(), 1000);
        assert_eq!(h.select(&[], i64::MIN, i64::MAX)[0].samples.len(), 1000);
        assert_eq!(h.time_range(), Some((1000, 1999)));
        h.append(&l("b"), 1500, 1.0);
        assert_eq!(h.stats().series, 2);
        assert_eq!(h.cut(None)[0].samples[0].timestamp_ms, 1000);
        assert_eq!(h.time_range(), None);
        assert_eq!(
            h.stats(),
            HeadStats::default(),
            "empty series are collected"
        );
        // A series emptied by a cut takes new in-order samples into a fresh chunk.
        for t in 5000..5003 {
            h.append(&l("a"), t, t as f64 * 0.5);
        }
        let got = h.select(&[], i64::MIN, i64::MAX);
        assert_eq!(
            got[0].samples.iter().map(|s| s.value).collect::<Vec<_>>(),
            vec![2500.0, 2500.5, 2501.0]
        );
    }

    #[test]
    fn select_filters_by_matchers_and_sorts() {
        let mut h = Head::new(1000);
        h.append(&l("b"), 1, 1.0);
        h.append(&l("a"), 1, 1.0);
        h.append(&l("c"), 1, 1.0);
        let m = LabelMatcher::new("__name__", MatchKind::Regex, "a|b").unwrap();
        let got: Vec<String> = h
            .select(&[m], 0, 10)
            .iter()
            .map(|s| s.labels.metric_name().unwrap().to_string())
            .collect();
        assert_eq!(got, vec!["a", "b"]);
    }

    proptest! {
        #[test]
        fn prop_head_matches_naive_model(ops in proptest::collection::vec((0..3usize, -50..600i64, any::<u8>()), 1..700),
                                         start in -60..300i64, len in 0..700i64, cut_at in proptest::option::of(0..600i64)) {
            let mut h = Head::new(100);
            let mut model: Vec<BTreeMap<i64, u64>> = vec![BTreeMap::new(); 3];
            let names = ["a", "b", "c"];
            for (s, t, v) in &ops {
                let v = if *v == 0 { f64::from_bits(STALE_NAN_BITS) } else { f64::from(*v) };
                h.append(&l(names[*s]), *t, v);
                model[*s].insert(*t, v.to_bits());
            }
            let mut cut = Vec::new();
            if let Some(c) = cut_at {
                cut = h.cut(Some(c));
            }
            let got = h.select(&[], start, start + len);
            let mut expected = Vec::new();
            for (i, m) in model.iter().enumerate() {
                let keep = |t: i64| t >= start && t <= start + len && cut_at.is_none_or(|c| t >= c);
                let v: Vec<(i64, u64)> = m.iter().filter(|(t, _)| keep(**t)).map(|(t, b)| (*t, *b)).collect();
                if !v.is_empty() {
                    expected.push((names[i].to_string(), v));
                }
                if let Some(c) = cut_at {
                    let below: Vec<(i64, u64)> = m.iter().filter(|(t, _)| **t < c).map(|(t, b)| (*t, *b)).collect();
                    let got_cut = cut.iter().find(|s| s.labels == l(names[i])).map(pts).unwrap_or_default();
                    prop_assert_eq!(got_cut, below);
                }
            }
            let got: Vec<(String, Vec<(i64, u64)>)> = got.iter().map(|s| (s.labels.metric_name().unwrap().to_string(), pts(s))).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
