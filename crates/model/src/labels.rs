//! Metric series labels: the `__name__` and label pairs that identify a Prometheus series.
//! Kept sorted by name with unique names and no empty values, so two equal series always
//! compare, hash and print the same (Prometheus' `labels.Labels` has the same invariants:
//! an empty value means "label absent").

use std::fmt;

use crate::error::{Error, Result};

/// The label holding a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// A series' identity: label pairs sorted by name, names unique, values non-empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// No labels.
    pub fn new() -> Self {
        Labels(Vec::new())
    }

    /// Labels from pairs in any order; pairs with an empty value are dropped.
    ///
    /// # Errors
    /// A label name given twice, or an empty name.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut v: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        for w in v.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(Error::InvalidLabels(format!(
                    "duplicate label name {:?}",
                    w[0].0
                )));
            }
        }
        if v.iter().any(|(k, _)| k.is_empty()) {
            return Err(Error::InvalidLabels("empty label name".into()));
        }
        Ok(Labels(v))
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// These labels with `name` set to `value` (removed when `value` is empty).
    pub fn with(mut self, name: &str, value: &str) -> Self {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].1 = value.to_string(),
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(i, (name.to_string(), value.to_string())),
        }
        self
    }

    /// These labels without `name`.
    pub fn without(self, name: &str) -> Self {
        self.with(name, "")
    }

    /// The pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<(String, String)> {
        self.0
    }
}

/// Prometheus' notation: `name{a="x", b="y"}` (the name outside the braces when present),
/// values escaped as Go strings (`\\`, `\"`, `\n`).
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.metric_name() {
            f.write_str(name)?;
        }
        f.write_str("{")?;
        let mut first = true;
        for (k, v) in self.iter().filter(|(k, _)| *k != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{k}=\"")?;
            for c in v.chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '"' => f.write_str("\\\"")?,
                    '\n' => f.write_str("\\n")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_and_empty_values_dropped() {
        let l = Labels::from_pairs([("job", "api"), ("__name__", "up"), ("empty", "")]).unwrap();
        assert_eq!(
            l.iter().collect::<Vec<_>>(),
            vec![("__name__", "up"), ("job", "api")]
        );
        assert_eq!(l.metric_name(), Some("up"));
        assert_eq!(l.get("empty"), None);
        assert!(Labels::from_pairs([("a", "1"), ("a", "2")]).is_err());
        assert!(Labels::from_pairs([("", "1")]).is_err());
    }

    #[test]
    fn with_and_without_keep_order() {
        let l = Labels::from_pairs([("b", "2")])
            .unwrap()
            .with("a", "1")
            .with("c", "3");
        assert_eq!(
            l.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            vec!["a", "b", "c"]
        );
        let l = l.with("b", "").without("c");
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![("a", "1")]);
    }

    #[test]
    fn display_like_prometheus() {
        let l = Labels::from_pairs([("__name__", "up"), ("path", "a\"b\\c\n")]).unwrap();
        assert_eq!(l.to_string(), r#"up{path="a\"b\\c\n"}"#);
        assert_eq!(Labels::new().to_string(), "{}");
    }
}
