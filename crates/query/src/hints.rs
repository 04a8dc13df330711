//! Pruning hints: which tokens and services every record matching a filter must have, so
//! the storage can skip blocks by bloom filter and service before decoding them.
//!
//! Hints are conservative: a hint is only emitted when no matching record can lack it.

use std::collections::BTreeSet;

use sightline_model::text::{is_token_char, MAX_TOKEN_LEN};
use sightline_model::TraceId;
use sightline_storage::{Prefilter, ScanRequest};

use crate::ast::{Field, FieldOp, Filter, Query, Word};
use crate::matcher::{all_tokens, fold};

impl Query {
    /// Conservative pruning hints for the storage scan: tokens every match contains (in
    /// its body, string attribute values or trace/span id hex) and the services a match
    /// may have. `NOT` gives no hints; `OR` keeps the tokens common to all branches and
    /// the union of services when every branch names services.
    pub fn scan_request(&self) -> ScanRequest {
        let h = hints(&self.filter);
        ScanRequest {
            required_tokens: h.tokens.into_iter().collect(),
            services: h.services.map(|s| s.into_iter().collect()),
            projection: self.projection(),
            prefilter: prefilter(&self.filter),
            trace_ids: h.traces.map(|t| t.into_iter().map(TraceId).collect()),
        }
    }
}

/// The top-level AND terms of the filter that look only at fields the storage always
/// decodes (time, level, service, trace/span id), as a storage prefilter; `None` when there
/// is none. Any other term is checked later on the full record, so leaving it out is safe.
fn prefilter(f: &Filter) -> Option<Prefilter> {
    let terms: Vec<Filter> = match f {
        Filter::And(fs) => fs.iter().filter(|t| cheap(t)).cloned().collect(),
        Filter::All => Vec::new(),
        other if cheap(other) => vec![other.clone()],
        _ => Vec::new(),
    };
    if terms.is_empty() {
        return None;
    }
    Some(Prefilter::new(move |r| terms.iter().all(|t| t.matches(r))))
}

/// Whether matching `f` needs nothing but the always-decoded fields.
fn cheap(f: &Filter) -> bool {
    match f {
        Filter::All => true,
        Filter::Word(_) | Filter::Phrase(_) => false,
        Filter::Field { field, .. } => matches!(
            field,
            Field::Timestamp | Field::Level | Field::Service | Field::TraceId | Field::SpanId
        ),
        Filter::Not(inner) => cheap(inner),
        Filter::And(fs) | Filter::Or(fs) => fs.iter().all(cheap),
    }
}

/// What every record matching a filter has.
#[derive(Default)]
struct Hints {
    tokens: BTreeSet<String>,
    /// `None`: any service.
    services: Option<BTreeSet<String>>,
    /// The trace ids a match has one of; `None`: any or none.
    traces: Option<BTreeSet<[u8; 16]>>,
}

fn hints(f: &Filter) -> Hints {
    match f {
        Filter::All | Filter::Not(_) => Hints::default(),
        Filter::Word(w) => tokens_only(word_tokens(w)),
        Filter::Phrase(p) => tokens_only(phrase_tokens(p)),
        Filter::Field { field, op } => field_hints(field, op),
        Filter::And(fs) => {
            let mut out = Hints::default();
            for h in fs.iter().map(hints) {
                out.tokens.extend(h.tokens);
                out.services = match (out.services, h.services) {
                    (Some(a), Some(b)) => Some(a.intersection(&b).cloned().collect()),
                    (a, b) => a.or(b),
                };
                out.traces = match (out.traces, h.traces) {
                    (Some(a), Some(b)) => Some(a.intersection(&b).copied().collect()),
                    (a, b) => a.or(b),
                };
            }
            out
        }
        Filter::Or(fs) => {
            let mut it = fs.iter().map(hints);
            let Some(mut out) = it.next() else {
                return Hints::default();
            };
            for h in it {
                out.tokens = out.tokens.intersection(&h.tokens).cloned().collect();
                out.services = match (out.services, h.services) {
                    (Some(mut a), Some(b)) => {
                        a.extend(b);
                        Some(a)
                    }
                    _ => None,
                };
                out.traces = match (out.traces, h.traces) {
                    (Some(mut a), Some(b)) => {
                        a.extend(b);
                        Some(a)
                    }
                    _ => None,
                };
            }
            out
        }
    }
}

fn tokens_only(tokens: impl IntoIterator<Item = String>) -> Hints {
    Hints {
        tokens: tokens.into_iter().filter(|t| indexable(t)).collect(),
        services: None,
        traces: None,
    }
}

/// Whether a (lowercased) token surely was indexed for every record containing it.
///
/// The storage skips tokens longer than [`MAX_TOKEN_LEN`] bytes measured before
/// lowercasing, and lowercasing can shrink a character up to three times (the Kelvin sign,
/// 3 bytes, becomes `k`). So a token is safe when even tripled it fits, or when it is ASCII
/// without `k` (the only non-ASCII character lowercasing into ASCII is the Kelvin sign).
fn indexable(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= MAX_TOKEN_LEN
        && (t.len() * 3 <= MAX_TOKEN_LEN || (t.is_ascii() && !t.contains('k')))
}

/// A bare word's tokens that are whole tokens of any match (all but a prefix's last).
fn word_tokens(w: &Word) -> Vec<String> {
    let mut t = w.tokens.clone();
    if w.prefix && w.text.chars().last().is_some_and(is_token_char) {
        t.pop();
    }
    t
}

/// A phrase's interior tokens: those with a non-token character on both sides inside the
/// phrase (the first and last may be parts of longer tokens of the message).
fn phrase_tokens(p: &str) -> Vec<String> {
    // Folding keeps one character per character, so token boundaries are the message's.
    let chars: Vec<char> = fold(p).chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !is_token_char(chars[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_token_char(chars[i]) {
            i += 1;
        }
        if start > 0 && i < chars.len() {
            let tok: String = chars[start..i].iter().collect();
            out.extend(all_tokens(&tok));
        }
    }
    out
}

fn field_hints(field: &Field, op: &FieldOp) -> Hints {
    match (field, op) {
        (
            Field::Message,
            FieldOp::Eq {
                value,
                quoted: true,
            },
        ) => tokens_only(phrase_tokens(value)),
        (
            Field::Message,
            FieldOp::Eq {
                value,
                quoted: false,
            },
        ) => tokens_only(word_tokens(&Word::new(value, false))),
        (Field::Message, FieldOp::Prefix(p)) => tokens_only(word_tokens(&Word::new(p, true))),
        (Field::Service, FieldOp::Eq { value, .. }) => Hints {
            tokens: BTreeSet::new(),
            services: Some(BTreeSet::from([value.clone()])),
            traces: None,
        },
        // The match compares the id's hex case-insensitively: exactly the id the hex
        // parses to.
        (Field::TraceId, FieldOp::Eq { value, .. }) if is_hex(value, 32) => Hints {
            traces: TraceId::from_hex(value).ok().map(|t| BTreeSet::from([t.0])),
            ..tokens_only([value.to_ascii_lowercase()])
        },
        (Field::SpanId, FieldOp::Eq { value, .. }) if is_hex(value, 16) => {
            tokens_only([value.to_ascii_lowercase()])
        }
        // Only a string can display as a value that is neither a number nor a boolean,
        // and string values are indexed; `status:500` may match Int 500, which is not.
        (Field::Attr(_), FieldOp::Eq { value, .. })
            if value.parse::<f64>().is_err() && value != "true" && value != "false" =>
        {
            tokens_only(all_tokens(value))
        }
        _ => Hints::default(),
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use sightline_model::{Attributes, LogRecord, TraceId, Value};
    use sightline_storage::bloom::record_has_tokens;

    use crate::parser::parse;

    use super::*;

    fn req(q: &str) -> ScanRequest {
        parse(q).unwrap().scan_request()
    }

    #[test]
    fn hints_from_required_terms() {
        let r = req(r#"service:api level:error "connection refused" timeout"#);
        assert_eq!(r.required_tokens, ["timeout"]);
        assert_eq!(r.services, Some(vec!["api".to_string()]));
        let r = req(r#"" a connection refused b ""#);
        assert_eq!(r.required_tokens, ["a", "b", "connection", "refused"]);
        let r = req("trace_id:4BF92F3577B34DA6A3CE929D0E0E4736");
        assert_eq!(r.required_tokens, ["4bf92f3577b34da6a3ce929d0e0e4736"]);
        let t1 = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        assert_eq!(r.trace_ids, Some(vec![t1]));
        assert_eq!(req("trace_id:4bf9*").trace_ids, None);
        assert_eq!(req("span_id:00f067aa0ba902b7").trace_ids, None);
        assert_eq!(req("timeout").trace_ids, None);
        let r = req("endpoint:/api/users status:500 flag:true time* /api/us*");
        assert_eq!(r.required_tokens, ["api", "users"]);
        let r = req("message:~\"x\" status:>=500");
        assert!(r.required_tokens.is_empty());
    }

    #[test]
    fn not_and_or_are_conservative() {
        let r = req("-timeout NOT service:api");
        assert!(r.required_tokens.is_empty());
        assert_eq!(r.services, None);
        let r = req("(timeout refused) OR (timeout db)");
        assert_eq!(r.required_tokens, ["timeout"]);
        let r = req("service:api OR service:web");
        assert_eq!(r.services, Some(vec!["api".to_string(), "web".to_string()]));
        let r = req("service:api OR timeout");
        assert_eq!(r.services, None);
        let r = req("(service:api OR service:web) service:web");
        assert_eq!(r.services, Some(vec!["web".to_string()]));
        let (a, b) = (
            "0000000000000000000000000000000a",
            "0000000000000000000000000000000b",
        );
        let id = |h: &str| TraceId::from_hex(h).unwrap();
        let r = req(&format!("trace_id:{a} OR trace_id:{b}"));
        assert_eq!(r.trace_ids, Some(vec![id(a), id(b)]));
        assert_eq!(req(&format!("trace_id:{a} OR timeout")).trace_ids, None);
        assert_eq!(req(&format!("NOT trace_id:{a}")).trace_ids, None);
        let r = req(&format!("trace_id:{a} trace_id:{b}"));
        assert_eq!(r.trace_ids, Some(vec![]));
        let r = req(&format!(
            "(trace_id:{a} OR trace_id:{b}) trace_id:{b} level:error"
        ));
        assert_eq!(r.trace_ids, Some(vec![id(b)]));
    }

    #[test]
    fn tokens_that_may_not_be_indexed_are_not_required() {
        // 22 Kelvin signs are 66 bytes (not indexed) but lowercase to 22 bytes of `k`.
        assert!(req(&"k".repeat(22)).required_tokens.is_empty());
        assert_eq!(req(&"a".repeat(64)).required_tokens.len(), 1);
        assert!(req(&"a".repeat(65)).required_tokens.is_empty());
    }

    const TRACE_A: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const TRACE_B: &str = "00000000000000000000000000000b0b";

    const WORDS: &[&str] = &[
        "timeout",
        "Timeout",
        "connection",
        "refused",
        "api",
        "ms250",
        "K\u{212a}",
        "a-b",
    ];

    fn arb_record() -> impl Strategy<Value = LogRecord> {
        (
            proptest::collection::vec(proptest::sample::select(WORDS), 0..6),
            proptest::sample::select(&["api", "web", "db"][..]),
            prop_oneof![
                Just(None),
                Just(Some(Value::Int(500))),
                Just(Some(Value::Str("500".into()))),
                Just(Some(Value::Str("refused".into()))),
            ],
            proptest::sample::select(&["/health", "/api/users", "a-b"][..]),
            proptest::sample::select(&[None, Some(TRACE_A), Some(TRACE_B)][..]),
            proptest::sample::select(&[" ", ", ", "-", ""][..]),
        )
            .prop_map(|(words, service, status, path, trace, sep)| {
                let mut attrs = vec![("path".to_string(), Value::Str(path.into()))];
                if let Some(s) = status {
                    attrs.push(("status".to_string(), s));
                }
                LogRecord {
                    body: words.join(sep),
                    service: service.into(),
                    severity_number: 17,
                    attributes: Attributes::from_pairs(attrs),
                    trace_id: trace.map(|t| TraceId::from_hex(t).unwrap()),
                    ..LogRecord::default()
                }
            })
    }

    fn arb_query() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            proptest::sample::select(WORDS).prop_map(|w| w.to_string()),
            proptest::sample::select(WORDS)
                .prop_map(|w| format!("{}*", w.chars().take(3).collect::<String>())),
            (
                proptest::sample::select(WORDS),
                proptest::sample::select(WORDS)
            )
                .prop_map(|(a, b)| format!("\"{a} {b}\"")),
            proptest::sample::select(WORDS).prop_map(|w| format!("\"{w}\"")),
            proptest::sample::select(&["api", "web", "db"][..])
                .prop_map(|s| format!("service:{s}")),
            proptest::sample::select(&["500", "refused", "\"500\""][..])
                .prop_map(|s| format!("status:{s}")),
            proptest::sample::select(&["/health", "/api/users", "a-b"][..])
                .prop_map(|s| format!("path:{s}")),
            proptest::sample::select(&[TRACE_A, TRACE_B, "4BF92F3577B34DA6A3CE929D0E0E4736"][..])
                .prop_map(|t| format!("trace_id:{t}")),
            proptest::sample::select(WORDS).prop_map(|w| format!("message:{w}")),
            Just("level:error".to_string()),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                inner.clone().prop_map(|q| format!("-{q}")),
                inner.clone().prop_map(|q| format!("NOT ({q})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} OR {b})")),
                (inner.clone(), inner).prop_map(|(a, b)| format!("{a} {b}")),
            ]
        })
    }

    proptest! {
        #[test]
        fn hints_never_exclude_a_match(
            q in arb_query(),
            records in proptest::collection::vec(arb_record(), 1..20),
        ) {
            let query = parse(&q).unwrap();
            let req = query.scan_request();
            for r in records.iter().filter(|r| query.matches(r)) {
                prop_assert!(
                    record_has_tokens(r, &req.required_tokens),
                    "{q}: tokens {:?} not all indexed for {r:?}",
                    req.required_tokens
                );
                if let Some(s) = &req.services {
                    prop_assert!(s.contains(&r.service), "{q}: service of {r:?}");
                }
                if let Some(t) = &req.trace_ids {
                    prop_assert!(
                        r.trace_id.is_some_and(|id| t.contains(&id)),
                        "{q}: trace ids {t:?} exclude {r:?}"
                    );
                }
                if let Some(pf) = &req.prefilter {
                    // The storage checks the prefilter on a record without body and
                    // attributes: it must still pass every match.
                    let cheap = LogRecord {
                        body: String::new(),
                        attributes: Attributes::default(),
                        resource: Attributes::default(),
                        ..r.clone()
                    };
                    prop_assert!(pf.test(&cheap), "{q}: prefilter rejects {r:?}");
                }
            }
        }
    }
}
