//! The series index of one head or block: labels -> series id (a hash map keyed by the
//! labels themselves), id -> labels, and inverted postings per label name and per
//! (name, value) pair. Resolves label matchers to postings with Prometheus' semantics: a
//! matcher that matches the empty string also selects series without the label
//! (`{a!="x"}` includes series that have no `a`).

use std::collections::{BTreeMap, HashMap};

use sightline_model::Labels;

use super::postings::{intersect, subtract, union_all, Postings};
use crate::api::{LabelMatcher, MatchOp};

/// Series ids are dense, allocated in order from 0; they are local to one index.
#[derive(Clone, Debug, Default)]
pub struct Index {
    labels: Vec<Labels>,
    ids: HashMap<Labels, u32>,
    /// name -> value -> ids carrying that pair. A BTreeMap so names and values list sorted.
    postings: BTreeMap<String, BTreeMap<String, Postings>>,
}

impl Index {
    pub fn new() -> Self {
        Self::default()
    }

    /// An index read from a block: `labels[id]` is series `id`; `postings` must list, for
    /// every label pair, exactly the ids carrying it, sorted.
    ///
    /// # Errors
    /// A reason when the postings do not agree with the labels.
    pub fn from_parts(
        labels: Vec<Labels>,
        postings: BTreeMap<String, BTreeMap<String, Postings>>,
    ) -> Result<Self, String> {
        let pairs: usize = labels.iter().map(Labels::len).sum();
        let posted: usize = postings
            .values()
            .flat_map(|v| v.values())
            .map(Vec::len)
            .sum();
        if pairs != posted {
            return Err(format!(
                "postings hold {posted} entries for {pairs} label pairs"
            ));
        }
        let mut ids = HashMap::with_capacity(labels.len());
        for (id, l) in labels.iter().enumerate() {
            if ids.insert(l.clone(), id as u32).is_some() {
                return Err(format!("series {id} duplicates an earlier series"));
            }
        }
        Ok(Index {
            labels,
            ids,
            postings,
        })
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The id of `labels`, if indexed.
    pub fn get(&self, labels: &Labels) -> Option<u32> {
        self.ids.get(labels).copied()
    }

    /// The id of `labels`, allocating the next id (and posting it) when new. Returns the id
    /// and whether it was created.
    ///
    /// # Panics
    /// "BUG:" past `u32::MAX` series in one index.
    pub fn get_or_create(&mut self, labels: &Labels) -> (u32, bool) {
        if let Some(&id) = self.ids.get(labels) {
            return (id, false);
        }
        let id = u32::try_from(self.labels.len()).expect("BUG: more than u32::MAX series");
        for (name, value) in labels.iter() {
            // Ids are allocated increasing, so pushing keeps every list sorted.
            self.postings
                .entry(name.to_string())
                .or_default()
                .entry(value.to_string())
                .or_default()
                .push(id);
        }
        self.ids.insert(labels.clone(), id);
        self.labels.push(labels.clone());
        (id, true)
    }

    /// Labels of series `id`.
    ///
    /// # Panics
    /// "BUG:" for an id this index never allocated.
    pub fn labels(&self, id: u32) -> &Labels {
        self.labels
            .get(id as usize)
            .unwrap_or_else(|| panic!("BUG: series id {id} not in an index of {}", self.len()))
    }

    /// Every (name, value, postings) triple, sorted by name then value.
    pub fn postings(&self) -> impl Iterator<Item = (&str, &str, &[u32])> {
        self.postings.iter().flat_map(|(n, vals)| {
            vals.iter()
                .map(move |(v, p)| (n.as_str(), v.as_str(), p.as_slice()))
        })
    }

    /// Ids of every series.
    pub fn all(&self) -> Postings {
        (0..self.labels.len() as u32).collect()
    }

    /// Union of the postings of `name`'s values accepted by `keep`.
    fn values_where(&self, name: &str, keep: impl Fn(&str) -> bool) -> Postings {
        match self.postings.get(name) {
            None => Vec::new(),
            Some(vals) => union_all(
                vals.iter()
                    .filter(|(v, _)| keep(v))
                    .map(|(_, p)| p.clone())
                    .collect(),
            ),
        }
    }

    /// Ids of the series satisfying every matcher (all series when there are none).
    pub fn select(&self, matchers: &[LabelMatcher]) -> Postings {
        let mut result: Option<Postings> = None;
        let mut negatives = Vec::new();
        for m in matchers {
            if m.matches("") {
                // Matches absent labels too: everything except series whose value fails.
                negatives.push(self.values_where(&m.name, |v| !m.matches(v)));
                continue;
            }
            let set = match &m.op {
                MatchOp::Equal => self
                    .postings
                    .get(&m.name)
                    .and_then(|vals| vals.get(&m.value))
                    .cloned()
                    .unwrap_or_default(),
                _ => self.values_where(&m.name, |v| m.matches(v)),
            };
            result = Some(match result {
                None => set,
                Some(r) => intersect(&r, &set),
            });
            if result.as_ref().is_some_and(Vec::is_empty) {
                return Vec::new();
            }
        }
        let mut result = result.unwrap_or_else(|| self.all());
        for neg in negatives {
            result = subtract(&result, &neg);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::MatchKind;
    use proptest::prelude::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    fn m(name: &str, kind: MatchKind, v: &str) -> LabelMatcher {
        LabelMatcher::new(name, kind, v).unwrap()
    }

    #[test]
    fn ids_are_dense_and_stable() {
        let mut ix = Index::new();
        assert_eq!(ix.get_or_create(&l(&[("a", "1")])), (0, true));
        assert_eq!(ix.get_or_create(&l(&[("a", "2")])), (1, true));
        assert_eq!(ix.get_or_create(&l(&[("a", "1")])), (0, false));
        assert_eq!(ix.labels(1), &l(&[("a", "2")]));
        assert_eq!(ix.get(&l(&[("b", "1")])), None);
    }

    #[test]
    fn negative_matchers_include_series_without_the_label() {
        let mut ix = Index::new();
        ix.get_or_create(&l(&[("a", "x")]));
        ix.get_or_create(&l(&[("a", "y")]));
        ix.get_or_create(&l(&[("b", "z")]));
        assert_eq!(ix.select(&[m("a", MatchKind::NotEqual, "x")]), vec![1, 2]);
        assert_eq!(ix.select(&[m("a", MatchKind::Equal, "")]), vec![2]);
        assert_eq!(ix.select(&[m("a", MatchKind::Regex, "x|")]), vec![0, 2]);
        assert_eq!(ix.select(&[m("a", MatchKind::NotRegex, ".+")]), vec![2]);
        assert_eq!(ix.select(&[m("a", MatchKind::Regex, ".+")]), vec![0, 1]);
        assert_eq!(ix.select(&[]), vec![0, 1, 2]);
    }

    fn arb_labels() -> impl Strategy<Value = Labels> {
        proptest::collection::vec(("[abc]", "[xyz]{0,2}"), 0..4).prop_map(|pairs| {
            let mut seen = std::collections::HashSet::new();
            Labels::from_pairs(pairs.into_iter().filter(|(k, _)| seen.insert(k.clone()))).unwrap()
        })
    }

    fn arb_matcher() -> impl Strategy<Value = LabelMatcher> {
        (
            "[abcd]",
            0..4u8,
            prop_oneof![
                Just("".to_string()),
                "[xyz]{1,2}",
                Just("x.*".to_string()),
                Just(".*".to_string()),
                Just(".+".to_string()),
                Just("y|".to_string())
            ],
        )
            .prop_map(|(n, k, v)| {
                let kind = [
                    MatchKind::Equal,
                    MatchKind::NotEqual,
                    MatchKind::Regex,
                    MatchKind::NotRegex,
                ][k as usize];
                m(&n, kind, &v)
            })
    }

    proptest! {
        #[test]
        fn prop_select_matches_naive_filter(series in proptest::collection::vec(arb_labels(), 0..40),
                                            matchers in proptest::collection::vec(arb_matcher(), 0..4)) {
            let mut ix = Index::new();
            for s in &series {
                ix.get_or_create(s);
            }
            let expected: Vec<u32> = (0..ix.len() as u32)
                .filter(|&id| matchers.iter().all(|m| m.matches_labels(ix.labels(id))))
                .collect();
            prop_assert_eq!(ix.select(&matchers), expected);
        }
    }
}
