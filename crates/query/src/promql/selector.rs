//! Series selectors as storage matchers: the conversion the evaluator's selectors and the
//! API's `match[]` parameters share.

use promql_parser::label::{MatchOp as ParserMatchOp, Matcher};
use promql_parser::parser::{Expr, VectorSelector};
use sightline_model::METRIC_NAME;
use sightline_storage::{LabelMatcher, MatchOp};

use super::error::PromqlError;

/// The matcher sets of a selector: one set, or one per `or` alternative
/// (`{a="1" or b="2"}`), each with the metric name matcher when a name is given.
pub fn vector_selector_matchers(vs: &VectorSelector) -> Vec<Vec<LabelMatcher>> {
    let mut base = Vec::new();
    if let Some(name) = &vs.name {
        base.push(LabelMatcher {
            name: METRIC_NAME.to_string(),
            value: name.clone(),
            op: MatchOp::Equal,
        });
    }
    let convert = |ms: &[Matcher]| -> Vec<LabelMatcher> {
        let mut out = base.clone();
        out.extend(ms.iter().map(|m| LabelMatcher {
            name: m.name.clone(),
            value: m.value.clone(),
            // promql-parser anchors regexes (`^(?:...)$`) as Prometheus does.
            op: match &m.op {
                ParserMatchOp::Equal => MatchOp::Equal,
                ParserMatchOp::NotEqual => MatchOp::NotEqual,
                ParserMatchOp::Re(re) => MatchOp::Regex(re.clone()),
                ParserMatchOp::NotRe(re) => MatchOp::NotRegex(re.clone()),
            },
        }));
        out
    };
    if vs.matchers.or_matchers.is_empty() {
        vec![convert(&vs.matchers.matchers)]
    } else {
        vs.matchers.or_matchers.iter().map(|g| convert(g)).collect()
    }
}

/// Parses a series selector such as a `match[]` parameter (`up{job="api"}`).
///
/// # Errors
/// `bad_data` when the text does not parse or is not a plain series selector.
pub fn selector_matchers(text: &str) -> Result<Vec<Vec<LabelMatcher>>, PromqlError> {
    match promql_parser::parser::parse(text) {
        Ok(Expr::VectorSelector(vs)) => Ok(vector_selector_matchers(&vs)),
        Ok(_) => Err(PromqlError::BadData(format!(
            "{text:?} is not a series selector"
        ))),
        Err(e) => Err(PromqlError::BadData(format!("1:1: parse error: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::Labels;

    #[test]
    fn selectors_become_matcher_sets() {
        let sets = selector_matchers(r#"up{job=~"a|b", env!="dev"}"#).unwrap();
        assert_eq!(sets.len(), 1);
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a"), ("env", "prod")]).unwrap();
        assert!(sets[0].iter().all(|m| m.matches_labels(&l)));
        let l2 = l.clone().with("job", "ab");
        assert!(
            !sets[0].iter().all(|m| m.matches_labels(&l2)),
            "regex must be anchored"
        );
        assert!(selector_matchers("sum(up)").is_err());
        assert!(selector_matchers("up{").is_err());
    }
}
