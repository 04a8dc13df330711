//! The values a PromQL query returns, shaped like Prometheus' `promql/value.go`: a scalar,
//! a string, an instant vector (one sample per series at the evaluation time) or a range
//! vector (a matrix: several samples per series).

use sightline_model::{Labels, TimeSeries};

/// One element of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct InstantSample {
    pub labels: Labels,
    pub t_ms: i64,
    pub v: f64,
}

/// A query result.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar {
        t_ms: i64,
        v: f64,
    },
    String {
        t_ms: i64,
        s: String,
    },
    Vector(Vec<InstantSample>),
    /// Series sorted by labels unless the query ordered them (instant `sort`/`sort_desc`
    /// results are vectors, so a matrix is always sorted in practice).
    Matrix(Vec<TimeSeries>),
}

impl Value {
    /// The Prometheus API `resultType`: `scalar`, `string`, `vector` or `matrix`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_match_the_api() {
        assert_eq!(Value::Scalar { t_ms: 0, v: 1.0 }.type_name(), "scalar");
        assert_eq!(
            Value::String {
                t_ms: 0,
                s: String::new()
            }
            .type_name(),
            "string"
        );
        assert_eq!(Value::Vector(vec![]).type_name(), "vector");
        assert_eq!(Value::Matrix(vec![]).type_name(), "matrix");
    }
}
