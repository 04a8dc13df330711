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

/// Value-column tag: every present value is an `Int`, stored as plain zigzag varints
/// (chosen over [`TAG_INT`] when values jump around, like HTTP status codes).
pub const TAG_INT_PLAIN: u8 = 6;
/// Value-column tag: every present value is a `Float` that is exactly `m / 10^k` for one
/// column-wide `k` and an integer `|m| <= 2^53` (`duration_ms` = 172.696): the `k` byte,
/// then each `m` as a zigzag varint, ~3 bytes instead of 8.
pub const TAG_FLOAT_DEC: u8 = 7;
/// Value-column tag: every present value is a `Str`: [`encode_blob_strings`] (all lengths,
/// then all bytes, which compresses better than interleaving them).
pub const TAG_STR_BLOB: u8 = 8;

/// Powers of ten exactly representable as f64 (up to 10^22); a literal table because
/// `powi` is not guaranteed to be correctly rounded.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];
/// Largest decimal exponent [`TAG_FLOAT_DEC`] tries: decimals beyond 9 digits are rarely
/// exact decimals, and larger mantissas would not save bytes over 8-byte floats anyway.
const MAX_FLOAT_DECIMALS: usize = 9;
/// Largest mantissa magnitude that converts to f64 exactly.
const MAX_EXACT_MANTISSA: i64 = 1 << 53;

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
    #[inline]
    pub fn bytes(&mut self, n: usize, what: &str) -> DecodeResult<&'a [u8]> {
        match self.buf.get(self.pos..).and_then(|rest| rest.get(..n)) {
            Some(b) => {
                self.pos += n;
                Ok(b)
            }
            None => Err(self.short(n, what)),
        }
    }

    #[cold]
    fn short(&self, n: usize, what: &str) -> DecodeError {
        self.err(
            what,
            &format!("needs {n} bytes but only {} left", self.remaining()),
        )
    }

    /// The next `N` bytes as an array.
    ///
    /// # Errors
    /// Fewer than `N` bytes left.
    #[inline]
    pub fn array<const N: usize>(&mut self, what: &str) -> DecodeResult<[u8; N]> {
        let b = self.bytes(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    #[inline]
    pub fn u8(&mut self, what: &str) -> DecodeResult<u8> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.short(1, what)),
        }
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
    #[inline]
    pub fn uvarint(&mut self, what: &str) -> DecodeResult<u64> {
        // One-byte values (most lengths, deltas, indexes) take the fast path; decoding
        // whole columns of them was most of a needle query's CPU.
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        self.uvarint_long(what)
    }

    fn uvarint_long(&mut self, what: &str) -> DecodeResult<u64> {
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
    #[inline]
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

/// Largest power-of-ten exponent [`encode_scaled_deltas`] divides out: 10^18 is the
/// largest power of ten that fits an i64.
const MAX_SCALE: u8 = 18;

/// Delta varints of `values / 10^e`, after a byte `e`: the largest exponent (up to
/// [`MAX_SCALE`]) dividing every value. Timestamps parsed from text have second, milli- or
/// microsecond precision, and dividing the nanoseconds out shrinks every delta by 1 to 4
/// bytes before zstd sees them.
pub fn encode_scaled_deltas(out: &mut Vec<u8>, values: &[i64]) {
    let mut e = 0u8;
    while e < MAX_SCALE {
        let d = 10i64.pow(u32::from(e) + 1);
        if values.iter().all(|v| v % d == 0) {
            e += 1;
        } else {
            break;
        }
    }
    if values.is_empty() {
        e = 0;
    }
    out.push(e);
    let d = 10i64.pow(u32::from(e));
    let mut prev = 0i64;
    for &v in values {
        let q = v / d;
        put_ivarint(out, q.wrapping_sub(prev));
        prev = q;
    }
}

/// Decodes `n` values written by [`encode_scaled_deltas`].
///
/// # Errors
/// Truncated or overlong varints, an exponent above [`MAX_SCALE`], a value overflowing
/// i64 once scaled back.
pub fn decode_scaled_deltas(r: &mut Reader<'_>, n: usize, what: &str) -> DecodeResult<Vec<i64>> {
    let e = r.u8(what)?;
    if e > MAX_SCALE {
        return Err(DecodeError(format!(
            "{what}: scale exponent {e} above {MAX_SCALE}"
        )));
    }
    let d = 10i64.pow(u32::from(e));
    let mut out = Vec::with_capacity(capped(n, r.remaining(), 1));
    let mut prev = 0i64;
    for _ in 0..n {
        prev = prev.wrapping_add(r.ivarint(what)?);
        out.push(prev.checked_mul(d).ok_or_else(|| {
            DecodeError(format!(
                "{what}: value {prev} x 10^{e} overflows at byte {}",
                r.pos()
            ))
        })?);
    }
    Ok(out)
}

/// Strings as all their varint byte lengths, then all their bytes back to back: zstd then
/// sees the text without a length byte between every two strings.
pub fn encode_blob_strings(out: &mut Vec<u8>, values: &[&str]) {
    for s in values {
        put_uvarint(out, s.len() as u64);
    }
    for s in values {
        out.extend_from_slice(s.as_bytes());
    }
}

/// `n` strings written by [`encode_blob_strings`], decoded lazily: the lengths are read
/// and checked up front, each string is only UTF-8 checked when [`BlobStrings::get`] asks
/// for it, so a scan materialising a few rows does not touch the others.
#[derive(Clone, Debug)]
pub struct BlobStrings<'a> {
    blob: &'a [u8],
    /// End offset in `blob` of each string; string i starts at `ends[i - 1]` (or 0).
    ends: Vec<usize>,
    what: String,
}

impl<'a> BlobStrings<'a> {
    /// Reads the lengths and takes the blob they describe.
    ///
    /// # Errors
    /// Truncation, bad varints, lengths adding up to more than the bytes left.
    pub fn decode(r: &mut Reader<'a>, n: usize, what: &str) -> DecodeResult<Self> {
        let mut ends = Vec::with_capacity(capped(n, r.remaining(), 1));
        let mut total = 0usize;
        for _ in 0..n {
            let len = r.uvarint(what)?;
            total = usize::try_from(len)
                .ok()
                .and_then(|l| total.checked_add(l))
                .filter(|t| *t <= r.remaining())
                .ok_or_else(|| {
                    r.err(
                        what,
                        &format!(
                            "string length {len} exceeds the {} bytes left",
                            r.remaining()
                        ),
                    )
                })?;
            ends.push(total);
        }
        let blob = r.bytes(total, what)?;
        Ok(BlobStrings {
            blob,
            ends,
            what: what.to_string(),
        })
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// String `i`.
    ///
    /// # Errors
    /// Invalid UTF-8.
    ///
    /// # Panics
    /// `i >= len()` (a caller bug).
    pub fn get(&self, i: usize) -> DecodeResult<&'a str> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        let bytes = &self.blob[start..self.ends[i]];
        std::str::from_utf8(bytes).map_err(|_| {
            DecodeError(format!(
                "{}: string {i} is not utf-8 at blob byte {start}",
                self.what
            ))
        })
    }
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

/// `n` values written by [`encode_dict`] as the dictionary and one entry index per value
/// (each checked `< entries.len()`), so callers can share the strings instead of cloning
/// one per row.
///
/// # Errors
/// Truncation, bad lengths, invalid UTF-8, an index outside the dictionary.
pub fn decode_dict_ids(
    r: &mut Reader<'_>,
    n: usize,
    what: &str,
) -> DecodeResult<(Vec<String>, Vec<u32>)> {
    let entries = r.count(1, what)?;
    let dict = decode_strings(r, entries, what)?;
    let mut ids = Vec::with_capacity(capped(n, r.remaining(), 1));
    for _ in 0..n {
        let id = r.uvarint(what)?;
        match u32::try_from(id) {
            Ok(i) if (i as usize) < dict.len() => ids.push(i),
            _ => {
                return Err(DecodeError(format!(
                    "{what}: dictionary index {id} out of {entries} entries at byte {}",
                    r.pos()
                )))
            }
        }
    }
    Ok((dict, ids))
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
        let ints: Vec<i64> = values
            .iter()
            .map(|v| match v {
                Value::Int(i) => *i,
                _ => unreachable!("BUG: checked all ints"),
            })
            .collect();
        // Whichever is smaller: deltas suit counters and ids, plain values suit codes.
        // Ties go to plain: repeated codes repeat byte for byte, which zstd likes better
        // than the deltas between them.
        let mut deltas = Vec::new();
        encode_deltas(&mut deltas, &ints);
        let mut plain = Vec::new();
        for i in &ints {
            put_ivarint(&mut plain, *i);
        }
        if plain.len() <= deltas.len() {
            out.push(TAG_INT_PLAIN);
            out.extend_from_slice(&plain);
        } else {
            out.push(TAG_INT);
            out.extend_from_slice(&deltas);
        }
    } else if all(|v| matches!(v, Value::Float(_))) {
        let floats: Vec<f64> = values
            .iter()
            .map(|v| match v {
                Value::Float(f) => *f,
                _ => unreachable!("BUG: checked all floats"),
            })
            .collect();
        match decimal_mantissas(&floats) {
            Some((k, ms)) => {
                out.push(TAG_FLOAT_DEC);
                out.push(k);
                for m in ms {
                    put_ivarint(out, m);
                }
            }
            None => {
                out.push(TAG_FLOAT);
                for f in floats {
                    out.extend_from_slice(&f.to_bits().to_le_bytes());
                }
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
            out.push(TAG_STR_BLOB);
            encode_blob_strings(out, &strs);
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

/// The smallest column-wide decimal exponent `k` and mantissas `m` with every float
/// bit-exactly `m / 10^k` (IEEE division of two exact values is correctly rounded, so it
/// gives back the float a decimal text parsed to), or `None` when some value has no such
/// form (`-0.0`, NaN, infinities, binary fractions).
fn decimal_mantissas(floats: &[f64]) -> Option<(u8, Vec<i64>)> {
    let mantissa = |f: f64, k: usize| -> Option<i64> {
        let m = (f * POW10[k]).round();
        if m.is_nan() || m.abs() > MAX_EXACT_MANTISSA as f64 {
            return None;
        }
        let m = m as i64;
        ((m as f64 / POW10[k]).to_bits() == f.to_bits()).then_some(m)
    };
    let mut k = 0;
    for &f in floats {
        while mantissa(f, k).is_none() {
            k += 1;
            if k > MAX_FLOAT_DECIMALS {
                return None;
            }
        }
    }
    let ms: Option<Vec<i64>> = floats.iter().map(|&f| mantissa(f, k)).collect();
    Some((k as u8, ms?))
}

fn decode_float_dec(r: &mut Reader<'_>, k: u8, what: &str) -> DecodeResult<Value> {
    Ok(Value::Float(
        r.ivarint(what)? as f64 / POW10[usize::from(k)],
    ))
}

fn decimal_exponent(r: &mut Reader<'_>, what: &str) -> DecodeResult<u8> {
    let k = r.u8(what)?;
    if usize::from(k) > MAX_FLOAT_DECIMALS {
        return Err(DecodeError(format!(
            "{what}: decimal exponent {k} above {MAX_FLOAT_DECIMALS} at byte {}",
            r.pos() - 1
        )));
    }
    Ok(k)
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

/// Decodes `n` values written by [`encode_values`].
///
/// # Errors
/// Unknown tags, truncation, bad varints/lengths/UTF-8/bools.
pub fn decode_values(r: &mut Reader<'_>, n: usize, what: &str) -> DecodeResult<Vec<Value>> {
    Ok(decode_values_where(r, n, what, None)?
        .into_iter()
        .map(|v| v.expect("BUG: decode_values_where skipped a value it was asked for"))
        .collect())
}

/// Decodes `n` values written by [`encode_values`], building only those whose `keep`
/// entry is true (all when `keep` is `None`); the others are stepped over and come back
/// as `None`. The whole column is still checked: a damaged value is an error even when it
/// is not kept.
///
/// # Errors
/// Unknown tags, truncation, bad varints/lengths/UTF-8/bools.
///
/// # Panics
/// `keep` shorter than `n` (a caller bug).
pub fn decode_values_where(
    r: &mut Reader<'_>,
    n: usize,
    what: &str,
    keep: Option<&[bool]>,
) -> DecodeResult<Vec<Option<Value>>> {
    let kept = |i: usize| keep.is_none_or(|k| k[i]);
    let tag = r.u8(what)?;
    let mut out = Vec::with_capacity(capped(n, r.remaining(), 1));
    match tag {
        TAG_INT => {
            let mut prev = 0i64;
            for i in 0..n {
                prev = prev.wrapping_add(r.ivarint(what)?);
                out.push(kept(i).then_some(Value::Int(prev)));
            }
        }
        TAG_INT_PLAIN => {
            for i in 0..n {
                let v = r.ivarint(what)?;
                out.push(kept(i).then_some(Value::Int(v)));
            }
        }
        TAG_FLOAT => {
            for i in 0..n {
                let v = decode_float(r, what)?;
                out.push(kept(i).then_some(v));
            }
        }
        TAG_FLOAT_DEC => {
            let k = decimal_exponent(r, what)?;
            for i in 0..n {
                let v = decode_float_dec(r, k, what)?;
                out.push(kept(i).then_some(v));
            }
        }
        TAG_BOOL => {
            for i in 0..n {
                let v = decode_bool(r, what)?;
                out.push(kept(i).then_some(v));
            }
        }
        TAG_STR_DICT => {
            let entries = r.count(1, what)?;
            let mut dict = Vec::with_capacity(entries);
            for _ in 0..entries {
                let b = r.len_prefixed(what)?;
                dict.push(std::str::from_utf8(b).map_err(|_| r.err(what, "invalid utf-8"))?);
            }
            for i in 0..n {
                let id = r.uvarint(what)?;
                let Some(s) = usize::try_from(id).ok().and_then(|j| dict.get(j)) else {
                    return Err(DecodeError(format!(
                        "{what}: dictionary index {id} out of {entries} entries at byte {}",
                        r.pos()
                    )));
                };
                out.push(kept(i).then(|| Value::Str((*s).to_string())));
            }
        }
        TAG_STR_PLAIN => {
            for i in 0..n {
                let b = r.len_prefixed(what)?;
                let s = std::str::from_utf8(b).map_err(|_| r.err(what, "invalid utf-8"))?;
                out.push(kept(i).then(|| Value::Str(s.to_string())));
            }
        }
        TAG_STR_BLOB => {
            let strs = BlobStrings::decode(r, n, what)?;
            for i in 0..n {
                // Unkept strings are not UTF-8 checked: nothing is built from them, and
                // the column CRC vouches for the bytes.
                out.push(if kept(i) {
                    Some(Value::Str(strs.get(i)?.to_string()))
                } else {
                    None
                });
            }
        }
        TAG_MIXED => {
            for i in 0..n {
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
                out.push(kept(i).then_some(v));
            }
        }
        t => {
            return Err(DecodeError(format!(
                "{what}: unknown column encoding {t} at byte {}",
                r.pos() - 1
            )))
        }
    }
    Ok(out)
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
            prop::collection::vec(
                (-99_999i64..99_999).prop_map(|m| Value::Float(m as f64 / 100.0)),
                0..40
            ),
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
        assert_eq!(out[0], TAG_STR_BLOB);
        out.clear();
        encode_values(&mut out, &[&a, &c]);
        assert_eq!(out[0], TAG_MIXED);
        // Status-like codes jump around: plain varints; counters: deltas.
        let codes: Vec<Value> = [200, 500, 200, 404, 200].map(Value::Int).to_vec();
        out.clear();
        encode_values(&mut out, &codes.iter().collect::<Vec<_>>());
        assert_eq!(out[0], TAG_INT_PLAIN);
        let counter: Vec<Value> = (1_000_000..1_000_010).map(Value::Int).collect();
        out.clear();
        encode_values(&mut out, &counter.iter().collect::<Vec<_>>());
        assert_eq!(out[0], TAG_INT);
        // Decimal floats: an exponent byte and a 3-byte varint each, bit exact back.
        let floats: Vec<Value> = [172.696, 0.5, 12.0, -3.25].map(Value::Float).to_vec();
        out.clear();
        encode_values(&mut out, &floats.iter().collect::<Vec<_>>());
        assert_eq!(&out[..2], &[TAG_FLOAT_DEC, 3]);
        assert!(out.len() <= 2 + 4 * 3, "{out:?}");
        assert!(same(
            &decode_values(&mut Reader::new(&out), 4, "f").unwrap(),
            &floats
        ));
        // -0.0 and a binary fraction have no short decimal form: plain f64 bits.
        for odd in [-0.0, 1.0 / 3.0] {
            let v = [Value::Float(1.5), Value::Float(odd)];
            out.clear();
            encode_values(&mut out, &v.iter().collect::<Vec<_>>());
            assert_eq!(out[0], TAG_FLOAT, "{odd}");
        }
    }

    #[test]
    fn scaled_deltas_pick_the_largest_power_of_ten() {
        let secs: Vec<i64> = (0..10)
            .map(|i| 1_763_553_600_000_000_000 + i * 1_000_000_000)
            .collect();
        let mut out = Vec::new();
        encode_scaled_deltas(&mut out, &secs);
        assert_eq!(out[0], 9);
        assert_eq!(out.len(), 1 + 5 + 9, "{out:?}");
        let mut r = Reader::new(&out);
        assert_eq!(decode_scaled_deltas(&mut r, 10, "t").unwrap(), secs);
        r.finish("t").unwrap();
        // Zeros only: every exponent divides, the largest is taken, and it decodes.
        let mut out = Vec::new();
        encode_scaled_deltas(&mut out, &[0, 0]);
        assert_eq!(out[0], 18);
        assert_eq!(
            decode_scaled_deltas(&mut Reader::new(&out), 2, "t").unwrap(),
            [0, 0]
        );
        // An exponent past 10^18 and a value overflowing once scaled are errors.
        assert!(decode_scaled_deltas(&mut Reader::new(&[19, 0]), 1, "t").is_err());
        let mut out = vec![18];
        put_ivarint(&mut out, 100);
        let err = decode_scaled_deltas(&mut Reader::new(&out), 1, "t").unwrap_err();
        assert!(err.0.contains("overflows"), "{err}");
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
        fn scaled_deltas_round_trip(
            v in prop::collection::vec(any::<i64>(), 0..60),
            e in 0u32..19,
            small in any::<bool>(),
        ) {
            // Values sharing a power-of-ten factor, and arbitrary ones.
            let v: Vec<i64> = if small {
                v.iter().map(|x| (x % 1_000_000).wrapping_mul(10i64.pow(e.min(12)))).collect()
            } else {
                v
            };
            let mut out = Vec::new();
            encode_scaled_deltas(&mut out, &v);
            let mut r = Reader::new(&out);
            prop_assert_eq!(decode_scaled_deltas(&mut r, v.len(), "t").unwrap(), v);
            r.finish("t").unwrap();
        }

        #[test]
        fn blob_strings_round_trip(v in prop::collection::vec(".{0,10}", 0..50)) {
            let refs: Vec<&str> = v.iter().map(String::as_str).collect();
            let mut out = Vec::new();
            encode_blob_strings(&mut out, &refs);
            let mut r = Reader::new(&out);
            let b = BlobStrings::decode(&mut r, v.len(), "s").unwrap();
            r.finish("s").unwrap();
            prop_assert_eq!(b.len(), v.len());
            for (i, s) in v.iter().enumerate() {
                prop_assert_eq!(b.get(i).unwrap(), s.as_str());
            }
        }

        #[test]
        fn decimal_floats_round_trip_bit_exact(
            ms in prop::collection::vec(-10_000_000i64..10_000_000, 1..30),
            k in 0usize..7,
        ) {
            let v: Vec<Value> = ms.iter().map(|m| Value::Float(*m as f64 / POW10[k])).collect();
            let mut out = Vec::new();
            encode_values(&mut out, &v.iter().collect::<Vec<_>>());
            prop_assert!(out[0] == TAG_FLOAT_DEC || out[0] == TAG_FLOAT);
            let back = decode_values(&mut Reader::new(&out), v.len(), "f").unwrap();
            prop_assert!(same(&back, &v), "{:?} != {:?}", back, v);
        }

        #[test]
        fn selective_decode_builds_only_kept_values(v in values(), keep in prop::collection::vec(any::<bool>(), 40)) {
            let refs: Vec<&Value> = v.iter().collect();
            let mut out = Vec::new();
            encode_values(&mut out, &refs);
            let mut r = Reader::new(&out);
            let back = decode_values_where(&mut r, v.len(), "a", Some(&keep[..v.len()])).unwrap();
            r.finish("a").unwrap();
            prop_assert_eq!(back.len(), v.len());
            for (i, b) in back.iter().enumerate() {
                match b {
                    Some(x) => prop_assert!(keep[i] && same(std::slice::from_ref(x), &v[i..=i])),
                    None => prop_assert!(!keep[i]),
                }
            }
        }

        #[test]
        fn dict_ids_round_trip(v in prop::collection::vec("[a-c]{0,2}", 0..50)) {
            let refs: Vec<&str> = v.iter().map(String::as_str).collect();
            let mut out = Vec::new();
            encode_dict(&mut out, &refs);
            let mut r = Reader::new(&out);
            let (dict, ids) = decode_dict_ids(&mut r, v.len(), "d").unwrap();
            r.finish("d").unwrap();
            let back: Vec<&str> = ids.iter().map(|&i| dict[i as usize].as_str()).collect();
            prop_assert_eq!(back, refs);
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
            let _ = decode_scaled_deltas(&mut Reader::new(&bytes), n, "g");
            let _ = decode_dict_ids(&mut Reader::new(&bytes), n, "g");
            if let Ok(b) = BlobStrings::decode(&mut Reader::new(&bytes), n, "g") {
                for i in 0..b.len() {
                    let _ = b.get(i);
                }
            }
            let keep = vec![true; n];
            let _ = decode_values_where(&mut Reader::new(&bytes), n, "g", Some(&keep));
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
