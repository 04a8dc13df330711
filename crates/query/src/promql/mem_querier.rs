//! An in-memory [`SeriesQuerier`] over a fixed set of series: the store behind the PromQL
//! unit tests, the fuzz target and the Prometheus `.test` file runner.

use std::collections::BTreeMap;

use sightline_model::{Labels, MetricMetadata, Sample, TimeSeries};
use sightline_storage::{LabelMatcher, SeriesQuerier};

/// Series held in memory, sorted by labels; samples sorted by time, one per timestamp.
#[derive(Clone, Debug, Default)]
pub struct MemQuerier {
    series: Vec<TimeSeries>,
    metadata: Vec<MetricMetadata>,
}

impl MemQuerier {
    /// A querier over `series`. Series with equal labels are merged; samples are sorted by
    /// time and, for equal timestamps, the last one given wins (as a storage overwrite).
    pub fn new(series: Vec<TimeSeries>) -> Self {
        let mut merged: BTreeMap<Labels, BTreeMap<i64, f64>> = BTreeMap::new();
        for s in series {
            let e = merged.entry(s.labels).or_default();
            for p in s.samples {
                e.insert(p.timestamp_ms, p.value);
            }
        }
        let series = merged
            .into_iter()
            .map(|(labels, samples)| TimeSeries {
                labels,
                samples: samples
                    .into_iter()
                    .map(|(timestamp_ms, value)| Sample {
                        timestamp_ms,
                        value,
                    })
                    .collect(),
            })
            .collect();
        MemQuerier {
            series,
            metadata: Vec::new(),
        }
    }

    /// The same querier, also answering [`SeriesQuerier::metadata`] with `metadata`.
    pub fn with_metadata(mut self, metadata: Vec<MetricMetadata>) -> Self {
        self.metadata = metadata;
        self
    }

    /// Every series held, sorted by labels.
    pub fn series(&self) -> &[TimeSeries] {
        &self.series
    }

    fn matching<'a>(
        &'a self,
        matchers: &'a [LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> impl Iterator<Item = (&'a TimeSeries, &'a [Sample])> + 'a {
        self.series.iter().filter_map(move |s| {
            if !matchers.iter().all(|m| m.matches_labels(&s.labels)) {
                return None;
            }
            let lo = s.samples.partition_point(|p| p.timestamp_ms < start_ms);
            let hi = s.samples.partition_point(|p| p.timestamp_ms <= end_ms);
            (lo < hi).then(|| (s, &s.samples[lo..hi]))
        })
    }
}

impl SeriesQuerier for MemQuerier {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> sightline_storage::Result<Vec<TimeSeries>> {
        Ok(self
            .matching(matchers, start_ms, end_ms)
            .map(|(s, samples)| TimeSeries {
                labels: s.labels.clone(),
                samples: samples.to_vec(),
            })
            .collect())
    }

    fn label_names(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> sightline_storage::Result<Vec<String>> {
        let mut names: Vec<String> = self
            .matching(matchers, start_ms, end_ms)
            .flat_map(|(s, _)| s.labels.iter().map(|(k, _)| k.to_string()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> sightline_storage::Result<Vec<String>> {
        let mut values: Vec<String> = self
            .matching(matchers, start_ms, end_ms)
            .filter_map(|(s, _)| s.labels.get(name).map(str::to_string))
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }

    fn metadata(&self, metric: Option<&str>) -> sightline_storage::Result<Vec<MetricMetadata>> {
        Ok(self
            .metadata
            .iter()
            .filter(|m| metric.is_none_or(|n| m.metric_family_name == n))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_storage::MatchKind;

    fn series(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
        TimeSeries {
            labels: Labels::from_pairs(pairs.iter().copied()).unwrap(),
            samples: samples
                .iter()
                .map(|&(timestamp_ms, value)| Sample {
                    timestamp_ms,
                    value,
                })
                .collect(),
        }
    }

    #[test]
    fn select_filters_by_matchers_and_inclusive_range() {
        let q = MemQuerier::new(vec![
            series(&[("__name__", "b"), ("job", "x")], &[(20, 2.0), (10, 1.0)]),
            series(&[("__name__", "a"), ("job", "y")], &[(10, 3.0), (30, 4.0)]),
            series(&[("__name__", "b"), ("job", "x")], &[(20, 5.0)]),
        ]);
        let all = q.select(&[], 10, 20).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].labels.metric_name(), Some("a"));
        assert_eq!(all[0].samples.len(), 1);
        // merged, sorted, the later duplicate wins
        assert_eq!(
            all[1].samples,
            vec![
                Sample {
                    timestamp_ms: 10,
                    value: 1.0
                },
                Sample {
                    timestamp_ms: 20,
                    value: 5.0
                }
            ]
        );
        let m = LabelMatcher::new("job", MatchKind::Regex, "y|z").unwrap();
        let sel = q.select(std::slice::from_ref(&m), 0, 100).unwrap();
        assert_eq!(sel.len(), 1);
        assert!(q.select(&[m], 31, 100).unwrap().is_empty());
        assert_eq!(q.label_names(&[], 0, 100).unwrap(), vec!["__name__", "job"]);
        assert_eq!(q.label_values("job", &[], 25, 100).unwrap(), vec!["y"]);
        assert!(q.metadata(None).unwrap().is_empty());
    }
}
