//! Per-block token filters: which tokens (see `sightline_model::text`) a part block may
//! contain, so scans with required tokens can skip blocks without decompressing them.
//!
//! Fed by: `part.rs`, which collects the distinct token hashes of a block's rows in a
//! [`TokenSet`] (see [`add_record_tokens`]) and stores [`BlockFilter::to_bytes`] in the
//! part's block index. Read by: `Part::scan` through [`RequiredToken`].
//!
//! The filter is an xorf `BinaryFuse8` (~9 bits per distinct token, ~0.4% false positives)
//! over 64-bit FNV-1a hashes of the tokens. Its serialization is hand-written (layout in
//! `docs/format/part.md`) because xorf's optional serde layout is not a stable on-disk
//! contract, and loading must validate the geometry so a damaged filter cannot index out of
//! bounds.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use sightline_model::text::for_each_token;
use sightline_model::{LogRecord, TraceId, Value};
use xorf::{BinaryFuse8, Descriptor, Filter};

use crate::encoding::{DecodeError, DecodeResult, Reader};

/// Serialized kind byte: a filter over no tokens; contains nothing.
const KIND_EMPTY: u8 = 0;
/// Serialized kind byte: building failed (should not happen with distinct keys); contains
/// everything, which is always safe for pruning.
const KIND_ALL: u8 = 1;
/// Serialized kind byte: a binary fuse filter follows.
const KIND_FUSE8: u8 = 2;

/// FNV-1a 64-bit hash of a token's bytes. Chosen because it is tiny, fully specified and
/// stable forever (std's `DefaultHasher` may change between releases, which would silently
/// turn every stored filter into false negatives). xorf mixes the key again with its seed,
/// so FNV's weak avalanche does not hurt the filter.
pub fn hash_token(token: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    token
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// Adds the hash of every indexed token of `record`: body, service, string values of
/// resource and record attributes. The trace and span id columns are not in the filter:
/// nearly every row has ids of its own, so they were most of the filter's keys (~6% of a
/// part). A required token that looks like a trace id (32 hex digits) is checked against
/// the part's trace-id dictionary instead, and one that looks like a span id (16 hex
/// digits) prunes nothing (see [`RequiredToken`]).
pub fn add_record_tokens(record: &LogRecord, hashes: &mut Vec<u64>) {
    let mut add = |s: &str| for_each_token(s, |t| hashes.push(hash_token(t)));
    add(&record.body);
    add(&record.service);
    for (_, v) in record.resource.iter().chain(record.attributes.iter()) {
        if let Value::Str(s) = v {
            add(s);
        }
    }
}

/// Hasher for token hashes, which are already hashes: one multiply spreads them over the
/// table's bucket bits (hashbrown indexes by the low bits, tags by the top 7).
#[derive(Default)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// The distinct token hashes of one block, collected row by row. Rows repeat most of their
/// tokens (levels, methods, template words, hosts), so deduplicating while collecting keeps
/// the work at the block's distinct tokens instead of sorting every occurrence (~40 a
/// row); sorting them all was a sixth of the flush CPU.
#[derive(Default)]
pub struct TokenSet {
    set: HashSet<u64, BuildHasherDefault<MixHasher>>,
    row: Vec<u64>,
}

impl TokenSet {
    /// Adds the tokens of `record` (see [`add_record_tokens`]).
    pub fn add_record(&mut self, record: &LogRecord) {
        self.row.clear();
        add_record_tokens(record, &mut self.row);
        self.set.extend(self.row.drain(..));
    }

    /// The filter over every token added since the last call; empties the set.
    pub fn take_filter(&mut self) -> BlockFilter {
        let mut hashes: Vec<u64> = self.set.drain().collect();
        BlockFilter::build(&mut hashes)
    }
}

/// A token a scan requires, hashed once for all the blocks it is checked against.
///
/// The query layer sends tokens as the tokenizer produced them, but a token is not always
/// stable under tokenizing again (`İ` lowercases to `i` + a combining dot, which is not a
/// token character), and a caller may send raw text (`Timeout`, `a-b`). Either form
/// passing is enough, so pruning never excludes a record that has the token.
///
/// Tokens that may be the hex of an id are not only looked up in the filter (see
/// [`add_record_tokens`]): 32 hex digits also pass where a row's trace id is that id
/// (`has_trace` of [`RequiredToken::may_be_in`]), 16 hex digits always pass.
#[derive(Clone, Debug)]
pub struct RequiredToken {
    whole: Probe,
    /// The probes of the tokens of the text; empty when it holds no token, and then it
    /// constrains nothing.
    parts: Vec<Probe>,
}

/// One token of a [`RequiredToken`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum Probe {
    /// In the filter.
    Hash(u64),
    /// In the filter, or the trace id of a row.
    Trace(u64, [u8; 16]),
    /// May be a span id: passes.
    Span,
}

impl Probe {
    fn new(token: &str) -> Probe {
        let lower_hex = token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        match (token.len(), lower_hex) {
            (32, true) => match TraceId::from_hex(token) {
                Ok(id) => Probe::Trace(hash_token(token), id.0),
                Err(_) => Probe::Hash(hash_token(token)),
            },
            (16, true) => Probe::Span,
            _ => Probe::Hash(hash_token(token)),
        }
    }

    fn may_be_in(
        &self,
        contains: &dyn Fn(u64) -> bool,
        has_trace: &dyn Fn(&[u8; 16]) -> bool,
    ) -> bool {
        match self {
            Probe::Hash(h) => contains(*h),
            Probe::Trace(h, id) => contains(*h) || has_trace(id),
            Probe::Span => true,
        }
    }
}

impl RequiredToken {
    pub fn new(token: &str) -> Self {
        let mut parts = Vec::new();
        for_each_token(token, |t| parts.push(Probe::new(t)));
        RequiredToken {
            whole: Probe::new(token),
            parts,
        }
    }

    /// The trace ids this token may stand for (each asks `has_trace` of
    /// [`RequiredToken::may_be_in`]), so a caller can look them up once.
    pub fn trace_ids(&self) -> impl Iterator<Item = &[u8; 16]> {
        std::iter::once(&self.whole)
            .chain(&self.parts)
            .filter_map(|p| match p {
                Probe::Trace(_, id) => Some(id),
                _ => None,
            })
    }

    /// Whether the token may be in a block whose filter answers `contains` and whose rows
    /// hold a trace id for which `has_trace` is true.
    pub fn may_be_in(
        &self,
        contains: impl Fn(u64) -> bool,
        has_trace: impl Fn(&[u8; 16]) -> bool,
    ) -> bool {
        self.whole.may_be_in(&contains, &has_trace)
            || self
                .parts
                .iter()
                .all(|p| p.may_be_in(&contains, &has_trace))
    }
}

/// Whether a block holding only `record` could pass the token pruning of a scan asking
/// for `required` tokens: the record-level form of what `Part::scan` checks per block.
/// Tests of the query hints check against it, so they check against what the storage
/// really indexes.
pub fn record_has_tokens(record: &LogRecord, required: &[String]) -> bool {
    let mut hashes = Vec::new();
    add_record_tokens(record, &mut hashes);
    required.iter().all(|t| {
        RequiredToken::new(t).may_be_in(
            |h| hashes.contains(&h),
            |id| record.trace_id.is_some_and(|t| t.0 == *id),
        )
    })
}

#[derive(Clone, Debug)]
enum Repr {
    Empty,
    All,
    Fuse(BinaryFuse8),
}

/// The token filter of one block. No false negatives: a token added at build time is
/// always reported as contained.
#[derive(Clone, Debug)]
pub struct BlockFilter(Repr);

impl BlockFilter {
    /// Builds a filter from token hashes; sorts and dedups `hashes` in place (binary fuse
    /// construction needs distinct keys).
    pub fn build(hashes: &mut Vec<u64>) -> BlockFilter {
        hashes.sort_unstable();
        hashes.dedup();
        if hashes.is_empty() {
            return BlockFilter(Repr::Empty);
        }
        match BinaryFuse8::try_from(&hashes[..]) {
            Ok(f) => BlockFilter(Repr::Fuse(f)),
            Err(_) => BlockFilter(Repr::All),
        }
    }

    /// Whether the block may contain `token` (a token as produced by
    /// `sightline_model::text::for_each_token`).
    pub fn contains(&self, token: &str) -> bool {
        self.contains_hash(hash_token(token))
    }

    /// Whether the block may contain the token with this [`hash_token`] hash.
    pub fn contains_hash(&self, hash: u64) -> bool {
        match &self.0 {
            Repr::Empty => false,
            Repr::All => true,
            Repr::Fuse(f) => f.contains(&hash),
        }
    }

    /// The serialized filter: a kind byte, then for a fuse filter seed (u64 LE),
    /// segment_length, segment_length_mask, segment_count_length, fingerprint count (u32 LE
    /// each) and the fingerprint bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.0 {
            Repr::Empty => vec![KIND_EMPTY],
            Repr::All => vec![KIND_ALL],
            Repr::Fuse(f) => {
                let d = &f.descriptor;
                let mut out = Vec::with_capacity(25 + f.fingerprints.len());
                out.push(KIND_FUSE8);
                out.extend_from_slice(&d.seed.to_le_bytes());
                out.extend_from_slice(&d.segment_length.to_le_bytes());
                out.extend_from_slice(&d.segment_length_mask.to_le_bytes());
                out.extend_from_slice(&d.segment_count_length.to_le_bytes());
                let len = u32::try_from(f.fingerprints.len())
                    .expect("BUG: block filter larger than 4 GiB");
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&f.fingerprints);
                out
            }
        }
    }

    /// Parses [`BlockFilter::to_bytes`] output, checking that every index the filter can
    /// compute stays inside its fingerprints.
    ///
    /// # Errors
    /// Truncation, trailing bytes, unknown kind, or inconsistent geometry.
    pub fn from_bytes(b: &[u8]) -> DecodeResult<BlockFilter> {
        const WHAT: &str = "token filter";
        let mut r = Reader::new(b);
        let f = match r.u8(WHAT)? {
            KIND_EMPTY => BlockFilter(Repr::Empty),
            KIND_ALL => BlockFilter(Repr::All),
            KIND_FUSE8 => {
                let seed = r.u64_le(WHAT)?;
                let segment_length = r.u32_le(WHAT)?;
                let segment_length_mask = r.u32_le(WHAT)?;
                let segment_count_length = r.u32_le(WHAT)?;
                let len = r.u32_le(WHAT)? as usize;
                let fingerprints = r.bytes(len, WHAT)?;
                // hash_of_hash yields h0 < segment_count_length and h1/h2 within the next
                // two segments, so these checks bound every index below len.
                let geometry_ok = segment_length.is_power_of_two()
                    && segment_length_mask == segment_length - 1
                    && segment_count_length % segment_length == 0
                    && u64::from(segment_count_length) + 2 * u64::from(segment_length)
                        <= len as u64;
                if !geometry_ok {
                    return Err(DecodeError(format!(
                        "{WHAT}: inconsistent geometry (segment length {segment_length}, \
                         mask {segment_length_mask}, count length {segment_count_length}, \
                         {len} fingerprints)"
                    )));
                }
                BlockFilter(Repr::Fuse(BinaryFuse8 {
                    descriptor: Descriptor {
                        seed,
                        segment_length,
                        segment_length_mask,
                        segment_count_length,
                    },
                    fingerprints: fingerprints.into(),
                }))
            }
            k => {
                return Err(DecodeError(format!("{WHAT}: unknown kind {k} at byte 0")));
            }
        };
        r.finish(WHAT)?;
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sightline_model::{SpanId, TraceId};

    #[test]
    fn id_tokens_pass_by_trace_id_or_always_for_span_ids() {
        let t = TraceId([0x0f, 0xa1, 0, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0xbc]);
        let s = SpanId([0xde, 0xad, 0xbe, 0xef, 0, 1, 0x7f, 0x80]);
        let r = LogRecord {
            trace_id: Some(t),
            span_id: Some(s),
            ..Default::default()
        };
        let mut h = Vec::new();
        add_record_tokens(&r, &mut h);
        assert!(h.is_empty(), "ids are not filter keys");
        // A trace id passes by the record's trace id, in either case.
        assert!(record_has_tokens(
            &r,
            &[t.to_hex(), t.to_hex().to_uppercase()]
        ));
        let other = TraceId([7; 16]).to_hex();
        assert!(!record_has_tokens(&r, std::slice::from_ref(&other)));
        // Any 16-hex-digit token may be a span id: never pruned.
        assert!(record_has_tokens(
            &r,
            &[s.to_hex(), "0123456789abcdef".into()]
        ));
        // In a body a trace id is an ordinary token.
        let in_body = LogRecord {
            body: format!("lost {other}"),
            ..Default::default()
        };
        assert!(record_has_tokens(
            &in_body,
            &[other.clone(), format!("LOST {other}")]
        ));
        assert!(!record_has_tokens(&in_body, &[t.to_hex()]));
        let rt = RequiredToken::new(&format!("a {}", t.to_hex().to_uppercase()));
        assert_eq!(rt.trace_ids().collect::<Vec<_>>(), vec![&t.0]);
    }

    #[test]
    fn token_set_filter_holds_every_token_of_every_row() {
        let rows: Vec<LogRecord> = (0..300)
            .map(|i| LogRecord {
                body: format!("GET /api/item/{i} took {}ms", i % 7),
                service: "svc".into(),
                ..Default::default()
            })
            .collect();
        let mut set = TokenSet::default();
        for r in &rows {
            set.add_record(r);
        }
        let f = set.take_filter();
        for i in 0..300 {
            assert!(f.contains(&i.to_string()));
        }
        for t in ["get", "api", "item", "took", "svc", "0ms", "6ms"] {
            assert!(f.contains(t), "{t}");
        }
        // The set starts over after take_filter.
        assert!(matches!(set.take_filter().0, Repr::Empty));
    }

    #[test]
    fn required_tokens_match_in_either_form() {
        let r = LogRecord {
            body: "aße İstanbul Timeout-x".into(),
            ..Default::default()
        };
        // Regression (found by the log_query fuzz target): the phrase "aße İstanbul" pruned
        // the block holding it, because the tokenizer's own output for "İstanbul" is not
        // stable under tokenizing again.
        let mut own = Vec::new();
        for_each_token("İstanbul", |t| own.push(t.to_string()));
        assert!(record_has_tokens(&r, &own), "{own:?}");
        assert!(record_has_tokens(
            &r,
            &["Timeout".into(), "timeout-X".into()]
        ));
        assert!(!record_has_tokens(&r, &["absent".into()]));
        assert!(
            record_has_tokens(&r, &["-".into(), String::new()]),
            "text without tokens constrains nothing"
        );
    }

    #[test]
    fn fnv_reference_values() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(hash_token(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash_token("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash_token("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn empty_filter_contains_nothing_and_round_trips() {
        let f = BlockFilter::build(&mut Vec::new());
        assert!(!f.contains("x"));
        let back = BlockFilter::from_bytes(&f.to_bytes()).unwrap();
        assert!(!back.contains("x"));
    }

    #[test]
    fn duplicates_and_single_keys_work() {
        let mut h = vec![hash_token("a"); 5];
        let f = BlockFilter::build(&mut h);
        assert!(f.contains("a"));
        assert_eq!(h.len(), 1);
        let misses = (0..1000).filter(|i| f.contains(&format!("m{i}"))).count();
        assert!(misses < 50, "{misses} false positives of 1000");
    }

    #[test]
    fn record_tokens_cover_every_indexed_field() {
        let mut rec = LogRecord {
            body: "Disk FULL on sda1".into(),
            service: "checkout-api".into(),
            trace_id: Some(sightline_model::TraceId([0xab; 16])),
            ..Default::default()
        };
        rec.resource
            .insert("host".into(), Value::Str("node7".into()));
        rec.attributes.insert("n".into(), Value::Int(42));
        rec.attributes
            .insert("user".into(), Value::Str("Alice".into()));
        let mut h = Vec::new();
        add_record_tokens(&rec, &mut h);
        let f = BlockFilter::build(&mut h);
        for t in ["disk", "full", "sda1", "checkout", "api", "node7", "alice"] {
            assert!(f.contains(t), "{t}");
        }
    }

    #[test]
    fn bad_geometry_is_rejected() {
        let mut h: Vec<u64> = (0..100).collect();
        let mut b = BlockFilter::build(&mut h).to_bytes();
        b[9] ^= 0x01; // segment_length low byte
        assert!(BlockFilter::from_bytes(&b).is_err());
    }

    proptest! {
        #[test]
        fn no_false_negatives_after_round_trip(keys in prop::collection::vec(".{0,12}", 0..300)) {
            let mut h: Vec<u64> = keys.iter().map(|k| hash_token(k)).collect();
            let f = BlockFilter::build(&mut h);
            let bytes = f.to_bytes();
            let back = BlockFilter::from_bytes(&bytes).unwrap();
            prop_assert_eq!(back.to_bytes(), bytes);
            for k in &keys {
                prop_assert!(f.contains(k));
                prop_assert!(back.contains(k));
            }
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..80), probe in any::<u64>()) {
            if let Ok(f) = BlockFilter::from_bytes(&bytes) {
                let _ = f.contains_hash(probe);
            }
        }

        #[test]
        fn flipped_filters_never_panic(n in 1u64..200, at in any::<prop::sample::Index>(), bit in 0u8..8, probe in any::<u64>()) {
            let mut h: Vec<u64> = (0..n).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
            let mut b = BlockFilter::build(&mut h).to_bytes();
            let i = at.index(b.len());
            b[i] ^= 1 << bit;
            if let Ok(f) = BlockFilter::from_bytes(&b) {
                let _ = f.contains_hash(probe);
            }
        }
    }
}
