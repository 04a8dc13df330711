//! Typed column encodings used inside part blocks: LEB128 varints, zigzag, delta-coded
//! integers, length-prefixed and dictionary strings, presence bitmaps and attribute value
//! columns, plus a bounds-checked [`Reader`] to decode them.
//!
//! Fed by: `part.rs`, which lays out a block as a sequence of these columns. The byte layout
//! of every encoding is written down in `docs/format/part.md`.
//!
//! Hand-written rather than a serde format: the columns need type-specific tricks (deltas,
//! dictionaries, bitmaps) that generic formats do not do, the layout must stay stable across
//! crate upgrades because parts live for the whole retention period, and every decode must
//! be bounds-checked against corrupted input without ever allocating from a bogus length.

use sightline_model::Value;

/// Why a column could not be decoded; `part.rs` turns it into
/// [`crate::Error::Corruption`] with the file and block offset.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// Result of a decode step.
pub type DecodeResult<T> = std::result::Result<T, DecodeError>;

/// Value-column tag: every present value is an `Int`, stored as zigzag-delta varints.
pub const TAG_INT: u8 = 0;
/// Value-column tag: every present value is a `Float`, stored as 8-byte LE IEEE-754 bits.
pub const TAG_FLOAT: u8 = 1;
/// Value-column tag: every present value is a `Bool`, one byte (0/1) each.
pub const TAG_BOOL: u8 = 2;
/// Value-column tag: every present value is a `Str`, dictionary encoded.
pub const TAG_STR_DICT: u8 = 3;
/// Value-column tag: every present value is a `Str`, length-prefixed.
pub const TAG_STR_PLAIN: u8 = 4;
/// Value-column tag: mixed types, a per-value type byte (`TAG_INT`, `TAG_FLOAT`,
/// `TAG_BOOL`, or `TAG_STR_PLAIN` for strings) followed by the value.
pub const TAG_MIXED: u8 = 5;

/// Maps a signed integer to an unsigned one so that small magnitudes give small varints.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Appends `v` as an unsigned LEB128 varint (1 to 10 bytes).
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded as a varint.
pub fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

/// Appends a varint length followed by the bytes.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends a varint length followed by the UTF-8 bytes.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

/// A bounds-checked cursor over encoded bytes. Every read names what it was reading in
/// its error.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn err(&self, what: &str, problem: &str) -> DecodeError {
        DecodeError(format!("{what}: {problem} at byte {}", self.pos))
    }

    /// The next `n` bytes.
    ///
    /// # Errors
    /// Fewer than `n` bytes left.
    pub fn bytes(&mut self, n: usize, what: &str) -> DecodeResult<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.err(
                what,
                &format!("needs {n} bytes but only {} left", self.remaining()),
            ));
        }
        let b = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    /// The next `N` bytes as an array.
    ///
    /// # Errors
    /// Fewer than `N` bytes left.
    pub fn array<const N: usize>(&mut self, what: &str) -> DecodeResult<[u8; N]> {
        let b = self.bytes(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    pub fn u8(&mut self, what: &str) -> DecodeResult<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u32_le(&mut self, what: &str) -> DecodeResult<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub fn u64_le(&mut self, what: &str) -> DecodeResult<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    pub fn i64_le(&mut self, what: &str) -> DecodeResult<i64> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    /// An unsigned LEB128 varint.
    ///
    /// # Errors
    /// Truncated, or longer than 10 bytes / more than 64 bits ("varint overflow").
    pub fn uvarint(&mut self, what: &str) -> DecodeResult<u64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.u8(what)?;
            let part = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                return Err(self.err(what, "varint overflow"));
            }
            v |= part << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err(what, "varint overflow"))
    }

    /// A zigzag varint.
    ///
    /// # Errors
    /// As [`Reader::uvarint`].
    pub fn ivarint(&mut self, what: &str) -> DecodeResult<i64> {
        Ok(unzigzag(self.uvarint(what)?))
    }

    /// A varint count of items each taking at least `min_bytes` encoded bytes; rejects
    /// counts the remaining input cannot hold, so callers may allocate for it.
    ///
    /// # Errors
    /// Bad varint, or a count larger than the remaining bytes allow.
    pub fn count(&mut self, min_bytes: usize, what: &str) -> DecodeResult<usize> {
        let n = self.uvarint(what)?;
        let max = self.remaining() / min_bytes.max(1);
        if n > max as u64 {
            return Err(self.err(
                what,
                &format!("count {n} exceeds the {} bytes left", self.remaining()),
            ));
        }
        Ok(n as usize)
    }

    /// Varint length followed by that many bytes.
    ///
    /// # Errors
    /// Bad varint or truncated bytes.
    pub fn len_prefixed(&mut self, what: &str) -> DecodeResult<&'a [u8]> {
        let n = self.count(1, what)?;
        self.bytes(n, what)
    }

    /// Varint length followed by that many UTF-8 bytes.
    ///
    /// # Errors
    /// Bad varint, truncated bytes, or invalid UTF-8.
    pub fn string(&mut self, what: &str) -> DecodeResult<String> {
        let b = self.len_prefixed(what)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => Err(self.err(what, "invalid utf-8")),
        }
    }

    /// Fails unless every byte was consumed.
    ///
    /// # Errors
    /// Trailing bytes.
    pub fn finish(&self, what: &str) -> DecodeResult<()> {
        if self.remaining() != 0 {
            return Err(self.err(what, &format!("{} trailing bytes", self.remaining())));
        }
        Ok(())
    }
}

/// Capacity for `n` items of at least `min_bytes` each when `remaining` bytes are left:
/// never more than the input could hold, so a bogus count cannot cause a huge allocation.
fn capped(n: usize, remaining: usize, min_bytes: usize) -> usize {
    n.min(remaining / min_bytes.max(1))
}

/// Delta + zigzag varints: the first value against 0, then each against its predecessor
/// (wrapping, so any i64 sequence round-trips).
pub fn encode_deltas(out: &mut Vec<u8>, values: &[i64]) {
    let mut prev = 0i64;
    for &v in values {
        put_ivarint(out, v.wrapping_sub(prev));
        prev = v;
    }
}

/// Decodes `n` values written by [`encode_deltas`].
///
/// # Errors
/// Truncated or overlong varints.
pub fn decode_deltas(r: &mut Reader<'_>, n: usize, what: &str) -> DecodeResult<Vec<i64>> {
    let mut out = Vec::with_capacity(capped(n, r.remaining(), 1));
    let mut prev = 0i64;
    for _ in 0..n {
        prev = prev.wrapping_add(r.ivarint(what)?);
        out.push(prev);
    }
    Ok(out)
}

/// Length-prefixed strings, one after another.
pub fn encode_strings(out: &mut Vec<u8>, values: &[&str]) {
    for s in values {
        put_str(out, s);
    }
}

/// Decodes `n` strings written by [`encode_strings`].
///
/// # Errors
/// Truncation, bad lengths, invalid UTF-8.
pub fn decode_strings(r: &mut Reader<'_>, n: usize, what: &str) -> DecodeResult<Vec<String>> {
    let mut out = Vec::with_capacity(capped(n, r.remaining(), 1));
    for _ in 0..n {
        out.push(r.string(what)?);
    }
    Ok(out)
}

/// Dictionary strings: varint entry count, the distinct entries (length-prefixed, in order
/// of first appearance), then one varint entry index per value.
pub fn encode_dict(out: &mut Vec<u8>, values: &[&str]) {
    let mut dict: Vec<&str> = Vec::new();
    let mut index: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    let ids: Vec<u64> = values
        .iter()
        .map(|s| {
            *index.entry(s).or_insert_with(|| {
                dict.push(s);
                (dict.len() - 1) as u64
            })
        })
        .collect();
    put_uvarint(out, dict.len() as u64);
    encode_strings(out, &dict);
    for id in ids {
        put_uvarint(out, id);
    }
}

/// Decodes `n` strings written by [`encode_dict`].
///
/// # Errors
/// Truncation, bad lengths, invalid UTF-8, an index outside the dictionary.
pub fn decode_dict(r: &mut Reader<'_>, n: usize, what: &str) -> DecodeResult<Vec<String>> {
    let entries = r.count(1, what)?;
    let dict = decode_strings(r, entries, what)?;
    let mut out = Vec::with_capacity(capped(n, r.remaining(), 1));
    for _ in 0..n {
        let id = r.uvarint(what)?;
        match usize::try_from(id).ok().and_then(|i| dict.get(i)) {
            Some(s) => out.push(s.clone()),
            None => {
                return Err(DecodeError(format!(
                    "{what}: dictionary index {id} out of {entries} entries at byte {}",
                    r.pos()
                )))
            }
        }
    }
    Ok(out)
}

/// A presence bitmap: `ceil(n / 8)` bytes, bit `i % 8` (LSB first) of byte `i / 8` set when
/// row `i` has a value.
pub fn encode_bitmap(out: &mut Vec<u8>, present: &[bool]) {
    for chunk in present.chunks(8) {
        let mut byte = 0u8;
        for (i, &p) in chunk.iter().enumerate() {
            if p {
                byte |= 1 << i;
            }
        }
        out.push(byte);
    }
}

/// Decodes an `n`-row bitmap written by [`encode_bitmap`].
///
/// # Errors
/// Truncation, or padding bits set past row `n`.
pub fn decode_bitmap(r: &mut Reader<'_>, n: usize, what: &str) -> DecodeResult<Vec<bool>> {
    let bytes = r.bytes(n.div_ceil(8), what)?;
    let out: Vec<bool> = (0..n).map(|i| bytes[i / 8] & (1 << (i % 8)) != 0).collect();
    if !n.is_multiple_of(8) && bytes[n / 8] >> (n % 8) != 0 {
        return Err(DecodeError(format!(
            "{what}: bitmap padding bits set at byte {}",
            r.pos()
        )));
    }
    Ok(out)
}

/// Whether strings should be dictionary encoded: when there are at most half as many
/// distinct values as values, a varint index (usually 1 byte) beats repeating the text.
fn prefers_dict(values: &[&str]) -> bool {
    let distinct: std::collections::HashSet<&str> = values.iter().copied().collect();
    distinct.len() * 2 <= values.len()
}

/// A column of attribute values (only the present ones): a tag byte, then the values in
/// the encoding the tag names (see the `TAG_*` constants).
pub fn encode_values(out: &mut Vec<u8>, values: &[&Value]) {
    let all = |f: fn(&Value) -> bool| values.iter().all(|v| f(v));
    if all(|v| matches!(v, Value::Int(_))) {
        out.push(TAG_INT);
        let ints: Vec<i64> = values
            .iter()
            .map(|v| match v {
                Value::Int(i) => *i,
                _ => unreachable!("BUG: checked all ints"),
            })
            .collect();
        encode_deltas(out, &ints);
    } else if all(|v| matches!(v, Value::Float(_))) {
        out.push(TAG_FLOAT);
        for v in values {
            if let Value::Float(f) = v {
                out.extend_from_slice(&f.to_bits().to_le_bytes());
            }
        }
    } else if all(|v| matches!(v, Value::Bool(_))) {
        out.push(TAG_BOOL);
        for v in values {
            if let Value::Bool(b) = v {
                out.push(u8::from(*b));
            }
        }
    } else if all(|v| matches!(v, Value::Str(_))) {
        let strs: Vec<&str> = values
            .iter()
            .map(|v| match v {
                Value::Str(s) => s.as_str(),
                _ => unreachable!("BUG: checked all strings"),
            })
            .collect();
        if prefers_dict(&strs) {
            out.push(TAG_STR_DICT);
            encode_dict(out, &strs);
        } else {
            out.push(TAG_STR_PLAIN);
            encode_strings(out, &strs);
        }
    } else {
        out.push(TAG_MIXED);
        for v in values {
            match v {
                Value::Int(i) => {
                    out.push(TAG_INT);
                    put_ivarint(out, *i);
                }
                Value::Float(f) => {
                    out.push(TAG_FLOAT);
                    out.extend_from_slice(&f.to_bits().to_le_bytes());
                }
                Value::Bool(b) => {
                    out.push(TAG_BOOL);
                    out.push(u8::from(*b));
                }
                Value::Str(s) => {
                    out.push(TAG_STR_PLAIN);
                    put_str(out, s);
                }
            }
        }
    }
}

fn decode_float(r: &mut Reader<'_>, what: &str) -> DecodeResult<Value> {
    Ok(Value::Float(f64::from_bits(r.u64_le(what)?)))
}

fn decode_bool(r: &mut Reader<'_>, what: &str) -> DecodeResult<Value> {
    match r.u8(what)? {
        0 => Ok(Value::Bool(false)),
        1 => Ok(Value::Bool(true)),
        b => Err(DecodeError(format!(
            "{what}: bool byte {b} is neither 0 nor 1 at byte {}",
            r.pos() - 1
        ))),
    }
}

/// Steps over `n` strings written by [`encode_strings`] without building them (a scan that
/// does not read the column). UTF-8 is not checked: the block CRC already vouches for the
/// bytes, and nothing is built from them.
///
/// # Errors
/// Truncation, bad lengths.
pub fn skip_strings(r: &mut Reader<'_>, n: usize, what: &str) -> DecodeResult<()> {
    for _ in 0..n {
        let len = r.uvarint(what)?;
        let len = usize::try_from(len)
            .map_err(|_| DecodeError(format!("{what}: string length {len} too large")))?;
        r.bytes(len, what)?;
    }
    Ok(())
}

/// Steps over `n` values written by [`encode_values`] without building them.
///
/// # Errors
/// Unknown tags, truncation, bad varints/lengths.
pub fn skip_values(r: &mut Reader<'_>, n: usize, what: &str) -> DecodeResult<()> {
    match r.u8(what)? {
        TAG_INT => {
            for _ in 0..n {
                r.uvarint(what)?;
            }
        }
        TAG_FLOAT => {
            r.bytes(
                n.checked_mul(8)
                    .ok_or_else(|| DecodeError(format!("{what}: too many values")))?,
                what,
            )?;
        }
        TAG_BOOL => {
            r.bytes(n, what)?;
        }
        TAG_STR_DICT => {
            let entries = r.count(1, what)?;
            skip_strings(r, entries, what)?;
            for _ in 0..n {
                r.uvarint(what)?;
            }
        }
        TAG_STR_PLAIN => skip_strings(r, n, what)?,
        TAG_MIXED => {
            for _ in 0..n {
                match r.u8(what)? {
                    TAG_INT => {
                        r.uvarint(what)?;
                    }
                    TAG_FLOAT => {
                        r.bytes(8, what)?;
                    }
                    TAG_BOOL => {
                        r.bytes(1, what)?;
                    }
                    TAG_STR_PLAIN => skip_strings(r, 1, what)?,
                    t => {
                        return Err(DecodeError(format!(
                            "{what}: unknown value tag {t} at byte {}",
                            r.pos() - 1
                        )))
                    }
                }
            }
        }
        t => {
            return Err(DecodeError(format!(
                "{what}: unknown column tag {t} at byte {}",
                r.pos() - 1
            )))
        }
    }
    Ok(())
}

/// Decodes `n` values written by [`encode_values`].
///
/// # Errors
/// Unknown tags, truncation, bad varints/lengths/UTF-8/bools.
pub fn decode_values(r: &mut Reader<'_>, n: usize, what: &str) -> DecodeResult<Vec<Value>> {
    let tag = r.u8(what)?;
    let cap = capped(n, r.remaining(), 1);
    match tag {
        TAG_INT => Ok(decode_deltas(r, n, what)?
            .into_iter()
            .map(Value::Int)
            .collect()),
        TAG_FLOAT => {
            let mut out = Vec::with_capacity(cap);
            for _ in 0..n {
                out.push(decode_float(r, what)?);
            }
            Ok(out)
        }
        TAG_BOOL => {
            let mut out = Vec::with_capacity(cap);
            for _ in 0..n {
                out.push(decode_bool(r, what)?);
            }
            Ok(out)
        }
        TAG_STR_DICT => Ok(decode_dict(r, n, what)?
            .into_iter()
            .map(Value::Str)
            .collect()),
        TAG_STR_PLAIN => Ok(decode_strings(r, n, what)?
            .into_iter()
            .map(Value::Str)
            .collect()),
        TAG_MIXED => {
            let mut out = Vec::with_capacity(cap);
            for _ in 0..n {
                let v = match r.u8(what)? {
                    TAG_INT => Value::Int(r.ivarint(what)?),
                    TAG_FLOAT => decode_float(r, what)?,
                    TAG_BOOL => decode_bool(r, what)?,
                    TAG_STR_PLAIN => Value::Str(r.string(what)?),
                    t => {
                        return Err(DecodeError(format!(
                            "{what}: unknown value type {t} at byte {}",
                            r.pos() - 1
                        )))
                    }
                };
                out.push(v);
            }
            Ok(out)
        }
        t => Err(DecodeError(format!(
            "{what}: unknown column encoding {t} at byte {}",
            r.pos() - 1
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::Int),
            prop_oneof![
                any::<f64>().prop_filter("nan never equals itself", |f| !f.is_nan()),
                Just(-0.0),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY)
            ]
            .prop_map(Value::Float),
            any::<bool>().prop_map(Value::Bool),
            "[a-c]{0,3}".prop_map(Value::Str),
            ".{0,12}".prop_map(Value::Str),
        ]
    }

    fn values() -> impl Strategy<Value = Vec<Value>> {
        prop_oneof![
            prop::collection::vec(any::<i64>().prop_map(Value::Int), 0..40),
            prop::collection::vec(any::<f64>().prop_map(Value::Float), 0..40),
            prop::collection::vec(any::<bool>().prop_map(Value::Bool), 0..40),
            prop::collection::vec("[a-c]{0,2}".prop_map(Value::Str), 0..40),
            prop::collection::vec(".{0,8}".prop_map(Value::Str), 0..40),
            prop::collection::vec(value(), 0..40),
        ]
    }

    /// Compares floats by bits so NaN payloads count as equal.
    fn same(a: &[Value], b: &[Value]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| match (x, y) {
                (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
                _ => x == y,
            })
    }

    #[test]
    fn varint_edges() {
        for v in [0, 1, 127, 128, 300, u64::MAX >> 1, u64::MAX] {
            let mut out = Vec::new();
            put_uvarint(&mut out, v);
            let mut r = Reader::new(&out);
            assert_eq!(r.uvarint("x").unwrap(), v);
            r.finish("x").unwrap();
        }
        let mut out = Vec::new();
        put_uvarint(&mut out, 127);
        assert_eq!(out, [127]);
        // Eleven continuation bytes never fit in 64 bits.
        let bad = [0xffu8; 11];
        let err = Reader::new(&bad).uvarint("column ts").unwrap_err();
        assert!(err.0.contains("column ts: varint overflow"), "{err}");
        // The tenth byte may only carry the top bit.
        let mut bad = vec![0xffu8; 9];
        bad.push(0x02);
        assert!(Reader::new(&bad).uvarint("x").is_err());
    }

    #[test]
    fn zigzag_edges() {
        for v in [0, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn huge_count_is_rejected_without_allocating() {
        let mut out = Vec::new();
        put_uvarint(&mut out, u64::MAX);
        assert!(decode_dict(&mut Reader::new(&out), 3, "d").is_err());
        assert!(Reader::new(&out).len_prefixed("s").is_err());
    }

    #[test]
    fn picks_encodings() {
        let mut out = Vec::new();
        let a = Value::Str("x".into());
        encode_values(&mut out, &[&a, &a, &a]);
        assert_eq!(out[0], TAG_STR_DICT);
        out.clear();
        let (b, c) = (Value::Str("y".into()), Value::Int(1));
        encode_values(&mut out, &[&a, &b]);
        assert_eq!(out[0], TAG_STR_PLAIN);
        out.clear();
        encode_values(&mut out, &[&a, &c]);
        assert_eq!(out[0], TAG_MIXED);
    }

    proptest! {
        #[test]
        fn deltas_round_trip(v in prop::collection::vec(any::<i64>(), 0..100)) {
            let mut out = Vec::new();
            encode_deltas(&mut out, &v);
            let mut r = Reader::new(&out);
            prop_assert_eq!(decode_deltas(&mut r, v.len(), "t").unwrap(), v);
            r.finish("t").unwrap();
        }

        #[test]
        fn strings_round_trip(v in prop::collection::vec(".{0,10}", 0..50), dict in any::<bool>()) {
            let refs: Vec<&str> = v.iter().map(String::as_str).collect();
            let mut out = Vec::new();
            if dict { encode_dict(&mut out, &refs) } else { encode_strings(&mut out, &refs) }
            let mut r = Reader::new(&out);
            let back = if dict {
                decode_dict(&mut r, v.len(), "s").unwrap()
            } else {
                decode_strings(&mut r, v.len(), "s").unwrap()
            };
            prop_assert_eq!(back, v);
            r.finish("s").unwrap();
        }

        #[test]
        fn bitmap_round_trip(v in prop::collection::vec(any::<bool>(), 0..70)) {
            let mut out = Vec::new();
            encode_bitmap(&mut out, &v);
            let mut r = Reader::new(&out);
            prop_assert_eq!(decode_bitmap(&mut r, v.len(), "b").unwrap(), v);
            r.finish("b").unwrap();
        }

        #[test]
        fn values_round_trip(v in values()) {
            let refs: Vec<&Value> = v.iter().collect();
            let mut out = Vec::new();
            encode_values(&mut out, &refs);
            let mut r = Reader::new(&out);
            let back = decode_values(&mut r, v.len(), "a").unwrap();
            prop_assert!(same(&back, &v), "{:?} != {:?}", back, v);
            r.finish("a").unwrap();
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64), n in 0usize..100) {
            let _ = decode_values(&mut Reader::new(&bytes), n, "g");
            let _ = decode_dict(&mut Reader::new(&bytes), n, "g");
            let _ = decode_strings(&mut Reader::new(&bytes), n, "g");
            let _ = decode_deltas(&mut Reader::new(&bytes), n, "g");
            let _ = decode_bitmap(&mut Reader::new(&bytes), n, "g");
        }

        #[test]
        fn truncation_is_an_error(v in prop::collection::vec(value(), 1..20), cut in any::<prop::sample::Index>()) {
            let refs: Vec<&Value> = v.iter().collect();
            let mut out = Vec::new();
            encode_values(&mut out, &refs);
            let cut = cut.index(out.len());
            prop_assert!(decode_values(&mut Reader::new(&out[..cut]), v.len(), "a").is_err());
        }
    }
}
