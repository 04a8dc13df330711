//! Attribute values. Nested structures are flattened to dotted keys before they get here,
//! so a value is always a scalar; numbers stay numbers so `status:>=500` compares numerically.

use std::fmt;

use serde::{Serialize, Serializer};

/// A scalar attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Value {
    /// The value as a number when it is one (or a string holding one).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Str(s) => s.trim().parse::<f64>().ok(),
            Value::Bool(_) => None,
        }
    }

    /// The value as a string borrowed when it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Str(v) => s.serialize_str(v),
            Value::Int(v) => s.serialize_i64(*v),
            // JSON has no NaN/Inf: those are shown as strings, like Prometheus does.
            Value::Float(v) if v.is_finite() => s.serialize_f64(*v),
            Value::Float(v) => s.serialize_str(&v.to_string()),
            Value::Bool(v) => s.serialize_bool(*v),
        }
    }
}

/// Attributes as (key, value) pairs.
///
/// # Invariants
/// Sorted by key, keys unique (last write wins in [`Attributes::insert`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attributes(Vec<(String, Value)>);

impl Attributes {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Builds from pairs in any order; a repeated key keeps its last value.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, Value)>) -> Self {
        let mut a = Self::new();
        for (k, v) in pairs {
            a.insert(k, v);
        }
        a
    }

    /// Inserts or replaces `key`.
    pub fn insert(&mut self, key: String, value: Value) {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(&key)) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.0[i].1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<(String, Value)> {
        self.0
    }
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_stay_sorted_and_unique() {
        let a = Attributes::from_pairs([
            ("b".to_string(), Value::Int(1)),
            ("a".to_string(), Value::Str("x".into())),
            ("b".to_string(), Value::Int(2)),
        ]);
        let keys: Vec<_> = a.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(a.get("b"), Some(&Value::Int(2)));
        assert_eq!(a.get("c"), None);
    }
}
