//! Evaluates a filter on one record: word, phrase and field conditions, and how a field's
//! text and numeric forms are read from a record.

use std::borrow::Cow;

use sightline_model::text::is_token_char;
use sightline_model::time::format_rfc3339_ns;
use sightline_model::{Level, LogRecord, Value};

use crate::ast::{Field, FieldOp, Filter, Query, Word};

impl Query {
    /// Whether `r` satisfies the filter (pipes are ignored); used for live tail too.
    pub fn matches(&self, r: &LogRecord) -> bool {
        self.filter.matches(r)
    }
}

impl Filter {
    /// Whether `r` satisfies this filter.
    pub fn matches(&self, r: &LogRecord) -> bool {
        match self {
            Filter::All => true,
            Filter::Word(w) => word_matches(w, &r.body),
            Filter::Phrase(p) => phrase_matches(p, &r.body),
            Filter::Field { field, op } => field_matches(field, op, r),
            Filter::Not(f) => !f.matches(r),
            Filter::And(fs) => fs.iter().all(|f| f.matches(r)),
            Filter::Or(fs) => fs.iter().any(|f| f.matches(r)),
        }
    }
}

/// Calls `f` with each token of `s`, lowercased like `sightline_model::text` does but
/// without its length cap: matching is exact, only pruning hints must respect the cap.
pub(crate) fn each_token(s: &str, mut f: impl FnMut(&str) -> bool) -> bool {
    let mut buf = String::new();
    let mut start: Option<usize> = None;
    let mut emit = |tok: &str| {
        if tok.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
            buf.clear();
            buf.extend(tok.chars().flat_map(char::to_lowercase));
            f(&buf)
        } else {
            f(tok)
        }
    };
    for (i, c) in s.char_indices() {
        if is_token_char(c) {
            start.get_or_insert(i);
        } else if let Some(st) = start.take() {
            if emit(&s[st..i]) {
                return true;
            }
        }
    }
    match start {
        Some(st) => emit(&s[st..]),
        None => false,
    }
}

/// The tokens of `s` (uncapped, lowercased).
pub(crate) fn all_tokens(s: &str) -> Vec<String> {
    let mut v = Vec::new();
    each_token(s, |t| {
        v.push(t.to_string());
        false
    });
    v
}

/// A bare word against a text: the word's tokens appear consecutively among the text's
/// tokens (the last as a prefix for `word*`); a word without any token character is a
/// case-insensitive substring.
pub(crate) fn word_matches(w: &Word, text: &str) -> bool {
    let want = &w.tokens;
    if want.is_empty() {
        return phrase_matches(&w.text, text);
    }
    let prefix_last = w.prefix && w.text.chars().last().is_some_and(is_token_char);
    let last = want.len() - 1;
    let eq = |i: usize, tok: &str| {
        if i == last && prefix_last {
            tok.starts_with(want[i].as_str())
        } else {
            tok == want[i]
        }
    };
    if want.len() == 1 {
        return each_token(text, |t| eq(0, t));
    }
    let have = all_tokens(text);
    have.windows(want.len())
        .any(|win| win.iter().enumerate().all(|(i, t)| eq(i, t)))
}

/// Lowercases a character when that gives exactly one character, so folded texts keep
/// their character positions (and token boundaries) aligned with the originals.
pub(crate) fn fold_char(c: char) -> char {
    let mut l = c.to_lowercase();
    match (l.next(), l.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

pub(crate) fn fold(s: &str) -> String {
    s.chars().map(fold_char).collect()
}

/// A case-insensitive substring test.
pub(crate) fn phrase_matches(phrase: &str, text: &str) -> bool {
    fold(text).contains(&fold(phrase))
}

/// A field's text form: what `field:value`, `field:val*`, regexes, `by` and `top` see.
/// `None` when the record lacks the field.
pub(crate) fn field_text<'a>(r: &'a LogRecord, f: &Field) -> Option<Cow<'a, str>> {
    match f {
        Field::Timestamp => Some(Cow::Owned(format_rfc3339_ns(r.timestamp))),
        Field::Level => match r.level() {
            Level::Unspecified => None,
            l => Some(Cow::Borrowed(l.as_str())),
        },
        Field::Service => Some(Cow::Borrowed(&r.service)),
        Field::Message => Some(Cow::Borrowed(&r.body)),
        Field::TraceId => r.trace_id.map(|t| Cow::Owned(t.to_hex())),
        Field::SpanId => r.span_id.map(|s| Cow::Owned(s.to_hex())),
        Field::Attr(k) => r.attribute(k).map(|v| match v {
            Value::Str(s) => Cow::Borrowed(s.as_str()),
            other => Cow::Owned(other.to_string()),
        }),
    }
}

/// A field's numeric form for comparisons and aggregates.
pub(crate) fn field_number(r: &LogRecord, f: &Field) -> Option<f64> {
    match f {
        Field::Timestamp => Some(r.timestamp as f64),
        Field::Level => match r.level() {
            Level::Unspecified => None,
            l => Some(f64::from(l.number())),
        },
        Field::Attr(k) => r.attribute(k).and_then(Value::as_f64),
        other => field_text(r, other).and_then(|t| t.trim().parse().ok()),
    }
}

/// Whether the record has the field (message and service: non-empty).
pub(crate) fn field_exists(r: &LogRecord, f: &Field) -> bool {
    match f {
        Field::Service => !r.service.is_empty(),
        Field::Message => !r.body.is_empty(),
        Field::Attr(k) => r.attribute(k).is_some(),
        other => field_text(r, other).is_some(),
    }
}

fn field_matches(field: &Field, op: &FieldOp, r: &LogRecord) -> bool {
    match op {
        FieldOp::Exists => field_exists(r, field),
        FieldOp::Cmp(cmp, n) => field_number(r, field).is_some_and(|x| cmp.holds(x, *n)),
        FieldOp::Regex(p) => field_text(r, field).is_some_and(|t| p.0.is_match(&t)),
        FieldOp::Eq { value, quoted } => match field {
            Field::Level => Level::parse(value).is_some_and(|l| l == r.level()),
            Field::Message if *quoted => phrase_matches(value, &r.body),
            Field::Message => word_matches(&Word::new(value, false), &r.body),
            Field::Service => r.service == *value,
            Field::TraceId | Field::SpanId => {
                field_text(r, field).is_some_and(|t| t.eq_ignore_ascii_case(value))
            }
            Field::Attr(k) => match r.attribute(k) {
                Some(Value::Str(s)) => s == value,
                Some(v) => v.to_string() == *value,
                None => false,
            },
            Field::Timestamp => field_text(r, field).is_some_and(|t| t == *value),
        },
        FieldOp::Prefix(p) => match field {
            Field::Message => word_matches(&Word::new(p, true), &r.body),
            Field::Level | Field::TraceId | Field::SpanId => {
                field_text(r, field).is_some_and(|t| t.starts_with(p.to_ascii_lowercase().as_str()))
            }
            _ => field_text(r, field).is_some_and(|t| t.starts_with(p.as_str())),
        },
    }
}

#[cfg(test)]
mod tests {
    use sightline_model::{Attributes, SpanId, TraceId};

    use crate::parser::parse;

    use super::*;

    fn rec() -> LogRecord {
        LogRecord {
            timestamp: 1_700_000_000_000_000_000,
            severity_number: 17,
            service: "api".into(),
            body: "Connection refused: timeout after 250ms on /api/users".into(),
            attributes: Attributes::from_pairs([
                ("status".to_string(), Value::Int(500)),
                ("path".to_string(), Value::Str("/api/users".into())),
                ("ratio".to_string(), Value::Float(0.5)),
                ("cached".to_string(), Value::Bool(false)),
            ]),
            resource: Attributes::from_pairs([
                ("host".to_string(), Value::Str("h1".into())),
                ("path".to_string(), Value::Str("/resource".into())),
            ]),
            trace_id: Some(TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()),
            span_id: Some(SpanId::from_hex("00f067aa0ba902b7").unwrap()),
            ..LogRecord::default()
        }
    }

    fn m(q: &str) -> bool {
        parse(q)
            .unwrap_or_else(|e| panic!("{q}: {e}"))
            .matches(&rec())
    }

    #[test]
    fn words_match_whole_tokens_case_insensitively() {
        assert!(m("timeout"));
        assert!(m("TIMEOUT"));
        assert!(!m("time"));
        assert!(m("time*"));
        assert!(!m("zzz*"));
        assert!(m("250ms"));
        assert!(m("/api/users"));
        assert!(!m("/users/api"));
        assert!(m("api/us*"));
        assert!(m("message:refused"));
        assert!(!m("message:refuse"));
        assert!(m("msg:refu*"));
    }

    #[test]
    fn phrases_are_case_insensitive_substrings() {
        assert!(m(r#""connection refused""#));
        assert!(m(r#""ion REFUSED: time""#));
        assert!(!m(r#""refused connection""#));
        assert!(m(r#"message:"after 250""#));
    }

    #[test]
    fn special_fields() {
        assert!(m("level:error"));
        assert!(m("level:ERR"));
        assert!(!m("level:warning"));
        assert!(m("level:>=warn"));
        assert!(!m("level:>error"));
        assert!(m("service:api"));
        assert!(!m("service:ap"));
        assert!(!m("service:API"));
        assert!(m("service:a*"));
        assert!(m("trace_id:4BF92F3577B34DA6A3CE929D0E0E4736"));
        assert!(!m("trace_id:4bf92f3577b34da6a3ce929d0e0e4737"));
        assert!(m("trace_id:4bf9*"));
        assert!(m("span_id:00f067aa0ba902b7"));
        assert!(m("span_id:*"));
        assert!(m(r#"message:~"timeout after \d+ms""#));
        assert!(!m(r#"message:~"^timeout""#));
    }

    #[test]
    fn attributes_compare_as_text_or_number() {
        assert!(m("status:500"));
        assert!(!m("status:50"));
        assert!(m("status:5*"));
        assert!(m("status:>=500"));
        assert!(!m("status:>500"));
        assert!(m("status:=500"));
        assert!(m("ratio:0.5"));
        assert!(m("ratio:<1"));
        assert!(m("cached:false"));
        assert!(!m("cached:>0"));
        assert!(!m("path:>0"));
        // Record attributes shadow resource attributes; resource ones are found too.
        assert!(m("path:/api/users"));
        assert!(!m("path:/resource"));
        assert!(m("host:h1"));
        assert!(m("host:*"));
        assert!(!m("missing:*"));
        assert!(m("-missing:*"));
        assert!(m(r#"path:~"^/api/\w+$""#));
    }

    #[test]
    fn boolean_logic() {
        assert!(m("service:api level:error \"connection refused\""));
        assert!(!m("service:api level:warn"));
        assert!(m("level:warn OR level:error"));
        assert!(!m("NOT level:error"));
        assert!(m("status:>=500 -path:/health"));
        assert!(!m("status:>=500 -path:/api/users"));
        assert!(m("(service:web OR service:api) timeout"));
        assert!(m("*"));
        assert!(m(""));
    }

    #[test]
    fn uncased_letters_and_long_tokens_match() {
        let mut r = rec();
        r.body = format!("Straße {} İstanbul", "x".repeat(100));
        let q = |s: &str| parse(s).unwrap().matches(&r);
        assert!(!q("STRASSE"));
        assert!(q("straße"));
        assert!(q(&"X".repeat(100)));
        assert!(q("\"İstan\""));
    }
}
