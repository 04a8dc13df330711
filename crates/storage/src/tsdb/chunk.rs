//! Gorilla-style compressed chunks of one series' samples: delta-of-delta timestamps and
//! XOR-ed float bits (Pelkonen et al., "Gorilla", VLDB 2015; the bucket sizes follow
//! Prometheus' `tsdb/chunkenc/xor.go`). Used by the head (open and closed chunks) and by
//! block files (which store the encoded bytes verbatim).
//!
//! Hand-written because it is a bit-level format (no general-purpose serializer packs
//! samples this densely) and because every f64 bit pattern — NaN payloads and the
//! staleness marker included — must survive exactly.
//!
//! Layout (`docs/format/tsdb-block.md`, "Chunk"): `count u16 LE`, then a bit stream
//! (MSB first): the first timestamp (64 bits) and value bits (64 bits); for every later
//! sample a delta-of-delta timestamp bucket and an XOR value code. Timestamps within a
//! chunk strictly increase; arithmetic is wrapping so every i64 round-trips.

use sightline_model::Sample;

/// Samples per chunk before the head cuts a new one: Gorilla's and Prometheus' choice,
/// where the compression ratio flattens out (~1.37 bytes/sample on real data) while a
/// point read still decodes at most 120 samples.
pub const MAX_SAMPLES_PER_CHUNK: usize = 120;

/// Bytes before the bit stream (the sample count).
const HEADER_LEN: usize = 2;

/// Appends bits MSB-first to a byte vector.
#[derive(Clone, Debug, Default)]
struct BitWriter {
    bytes: Vec<u8>,
    /// Bits still free in the last byte (0 = start a new byte).
    free: u8,
}

impl BitWriter {
    fn bit(&mut self, b: bool) {
        if self.free == 0 {
            self.bytes.push(0);
            self.free = 8;
        }
        self.free -= 1;
        if b {
            *self.bytes.last_mut().expect("BUG: byte pushed above") |= 1 << self.free;
        }
    }

    /// Writes the low `n` bits of `v` (n <= 64), most significant first.
    fn bits(&mut self, v: u64, n: u8) {
        let mut left = n;
        while left > 0 {
            if self.free == 0 {
                self.bytes.push(0);
                self.free = 8;
            }
            let take = left.min(self.free);
            let chunk = ((v >> (left - take)) & ((1u64 << take) - 1)) as u8;
            *self.bytes.last_mut().expect("BUG: byte pushed above") |= chunk << (self.free - take);
            self.free -= take;
            left -= take;
        }
    }
}

/// Reads bits MSB-first; running past the end is an error naming the bit offset.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn bit(&mut self) -> Result<bool, String> {
        Ok(self.bits(1)? == 1)
    }

    fn bits(&mut self, n: u8) -> Result<u64, String> {
        if self.pos + n as usize > self.data.len() * 8 {
            return Err(format!(
                "chunk bit stream ends at bit {} while reading {n} bits",
                self.pos
            ));
        }
        let mut v = 0u64;
        let mut left = n;
        while left > 0 {
            let byte = self.data[self.pos / 8];
            let used = (self.pos % 8) as u8;
            let avail = 8 - used;
            let take = left.min(avail);
            let chunk = (byte >> (avail - take)) & (((1u16 << take) - 1) as u8);
            v = (v << take) | u64::from(chunk);
            self.pos += take as usize;
            left -= take;
        }
        Ok(v)
    }
}

/// Sign-extends the low `n` bits of `v`.
fn sign_extend(v: u64, n: u8) -> i64 {
    let shift = 64 - n as u32;
    ((v << shift) as i64) >> shift
}

/// Delta-of-delta buckets: (prefix bits, prefix length, value bits). The last bucket
/// holds any i64.
const DOD_BUCKETS: [(u64, u8, u8); 3] = [(0b10, 2, 14), (0b110, 3, 17), (0b1110, 4, 20)];

/// Builds one chunk sample by sample.
#[derive(Clone, Debug)]
pub struct ChunkBuilder {
    w: BitWriter,
    count: u16,
    first_t: i64,
    last_t: i64,
    last_delta: i64,
    last_v: u64,
    leading: u8,
    trailing: u8,
}

impl Default for ChunkBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkBuilder {
    pub fn new() -> Self {
        Self {
            w: BitWriter::default(),
            count: 0,
            first_t: 0,
            last_t: 0,
            last_delta: 0,
            last_v: 0,
            // No bit window yet: the first XOR must write its own.
            leading: u8::MAX,
            trailing: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Timestamp of the first sample (meaningless when empty).
    pub fn min_t(&self) -> i64 {
        self.first_t
    }

    /// Timestamp of the last sample (meaningless when empty).
    pub fn max_t(&self) -> i64 {
        self.last_t
    }

    /// Whether another sample fits (the count is a u16).
    pub fn is_full(&self) -> bool {
        self.count == u16::MAX
    }

    /// Appends a sample.
    ///
    /// # Panics
    /// "BUG:" when `t` does not exceed the last timestamp or the chunk is full: callers
    /// route out-of-order samples elsewhere.
    pub fn push(&mut self, t: i64, v: f64) {
        let bits = v.to_bits();
        assert!(!self.is_full(), "BUG: chunk holds {} samples", self.count);
        if self.count == 0 {
            self.w.bits(t as u64, 64);
            self.w.bits(bits, 64);
            self.first_t = t;
        } else {
            assert!(
                t > self.last_t,
                "BUG: chunk sample at {t} does not follow {}",
                self.last_t
            );
            let delta = t.wrapping_sub(self.last_t);
            let dod = delta.wrapping_sub(self.last_delta);
            self.put_dod(dod);
            self.put_value(bits);
            self.last_delta = delta;
        }
        self.last_t = t;
        self.last_v = bits;
        self.count += 1;
    }

    fn put_dod(&mut self, dod: i64) {
        if dod == 0 {
            self.w.bit(false);
            return;
        }
        for (prefix, plen, vbits) in DOD_BUCKETS {
            let lim = 1i64 << (vbits - 1);
            if (-lim..lim).contains(&dod) {
                self.w.bits(prefix, plen);
                self.w.bits(dod as u64, vbits);
                return;
            }
        }
        self.w.bits(0b1111, 4);
        self.w.bits(dod as u64, 64);
    }

    fn put_value(&mut self, bits: u64) {
        let x = bits ^ self.last_v;
        if x == 0 {
            self.w.bit(false);
            return;
        }
        self.w.bit(true);
        // Leading zeros are stored in 5 bits, so at most 31.
        let leading = (x.leading_zeros() as u8).min(31);
        let trailing = x.trailing_zeros() as u8;
        if self.leading != u8::MAX && leading >= self.leading && trailing >= self.trailing {
            self.w.bit(false);
            let sig = 64 - self.leading - self.trailing;
            self.w.bits(x >> self.trailing, sig);
        } else {
            self.leading = leading;
            self.trailing = trailing;
            self.w.bit(true);
            self.w.bits(leading as u64, 5);
            let sig = 64 - leading - trailing;
            // 64 significant bits do not fit 6 bits: written as 0.
            self.w.bits((sig % 64) as u64, 6);
            self.w.bits(x >> trailing, sig);
        }
    }

    /// The encoded chunk so far.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.w.bytes.len());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.w.bytes);
        out
    }

    /// Approximate heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.w.bytes.capacity()
    }
}

/// Encodes samples (timestamps strictly increasing, at most `u16::MAX`) into one chunk.
///
/// # Panics
/// "BUG:" when timestamps do not strictly increase.
pub fn encode(samples: &[Sample]) -> Vec<u8> {
    let mut b = ChunkBuilder::new();
    for s in samples {
        b.push(s.timestamp_ms, s.value);
    }
    b.bytes()
}

/// Iterates the samples of an encoded chunk; after the first error it yields nothing.
pub struct ChunkIter<'a> {
    r: BitReader<'a>,
    left: u16,
    read: u16,
    t: i64,
    delta: i64,
    v: u64,
    leading: u8,
    trailing: u8,
    failed: bool,
}

/// Starts iterating `data`.
///
/// # Errors
/// A chunk shorter than its header.
pub fn iter(data: &[u8]) -> Result<ChunkIter<'_>, String> {
    if data.len() < HEADER_LEN {
        return Err(format!("chunk of {} bytes has no header", data.len()));
    }
    let count = u16::from_le_bytes([data[0], data[1]]);
    Ok(ChunkIter {
        r: BitReader {
            data: &data[HEADER_LEN..],
            pos: 0,
        },
        left: count,
        read: 0,
        t: 0,
        delta: 0,
        v: 0,
        leading: 0,
        trailing: 0,
        failed: false,
    })
}

impl ChunkIter<'_> {
    fn step(&mut self) -> Result<Sample, String> {
        if self.read == 0 {
            self.t = self.r.bits(64)? as i64;
            self.v = self.r.bits(64)?;
        } else {
            let dod = if !self.r.bit()? {
                0
            } else if !self.r.bit()? {
                sign_extend(self.r.bits(14)?, 14)
            } else if !self.r.bit()? {
                sign_extend(self.r.bits(17)?, 17)
            } else if !self.r.bit()? {
                sign_extend(self.r.bits(20)?, 20)
            } else {
                self.r.bits(64)? as i64
            };
            self.delta = self.delta.wrapping_add(dod);
            let t = self.t.wrapping_add(self.delta);
            if t <= self.t {
                return Err(format!(
                    "chunk sample {} timestamp {t} does not follow {}",
                    self.read, self.t
                ));
            }
            self.t = t;
            if self.r.bit()? {
                let new_window = self.r.bit()?;
                if new_window {
                    self.leading = self.r.bits(5)? as u8;
                    let mut sig = self.r.bits(6)? as u8;
                    if sig == 0 {
                        sig = 64;
                    }
                    if self.leading + sig > 64 {
                        return Err(format!(
                            "chunk sample {} has {} leading and {sig} significant bits",
                            self.read, self.leading
                        ));
                    }
                    self.trailing = 64 - self.leading - sig;
                } else if self.read == 1 {
                    return Err("chunk sample 1 reuses a bit window that was never set".into());
                }
                let sig = 64 - self.leading - self.trailing;
                let x = self.r.bits(sig)?;
                // A new window is exact: its lowest significant bit is set, and its highest
                // too unless the leading-zero count was capped. Anything else is damage.
                if new_window && (x & 1 == 0 || (self.leading < 31 && x >> (sig - 1) == 0)) {
                    return Err(format!(
                        "chunk sample {} has a non-canonical bit window",
                        self.read
                    ));
                }
                self.v ^= if self.trailing == 64 {
                    0
                } else {
                    x << self.trailing
                };
            }
        }
        self.read += 1;
        if self.left == 0 {
            // The encoder pads the last byte with zero bits and writes nothing after it.
            let end = self.r.pos.div_ceil(8);
            let pad = (8 - self.r.pos % 8) % 8;
            if end != self.r.data.len() || (pad > 0 && self.r.bits(pad as u8)? != 0) {
                return Err(format!(
                    "chunk has trailing data after its {} samples at bit {}",
                    self.read, self.r.pos
                ));
            }
        }
        Ok(Sample {
            timestamp_ms: self.t,
            value: f64::from_bits(self.v),
        })
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = Result<Sample, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.left == 0 {
            return None;
        }
        self.left -= 1;
        let r = self.step();
        self.failed = r.is_err();
        Some(r)
    }
}

/// Decodes every sample of a chunk.
///
/// # Errors
/// A reason naming the sample that could not be decoded.
pub fn decode(data: &[u8]) -> Result<Vec<Sample>, String> {
    iter(data)?.collect()
}

/// Number of samples a chunk says it holds (0 for a chunk without a header).
pub fn count(data: &[u8]) -> usize {
    if data.len() < HEADER_LEN {
        0
    } else {
        u16::from_le_bytes([data[0], data[1]]) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sightline_model::sample::STALE_NAN_BITS;

    fn s(t: i64, v: f64) -> Sample {
        Sample {
            timestamp_ms: t,
            value: v,
        }
    }

    fn bits_of(v: &[Sample]) -> Vec<(i64, u64)> {
        v.iter()
            .map(|s| (s.timestamp_ms, s.value.to_bits()))
            .collect()
    }

    #[test]
    fn regular_series_compresses_and_round_trips() {
        let samples: Vec<Sample> = (0..120)
            .map(|i| s(1_700_000_000_000 + i * 15_000, (i % 7) as f64))
            .collect();
        let data = encode(&samples);
        // Regular 15 s scrapes: most timestamps cost one bit.
        assert!(data.len() < 120 * 3, "{} bytes", data.len());
        assert_eq!(bits_of(&decode(&data).unwrap()), bits_of(&samples));
    }

    #[test]
    fn special_floats_are_bit_exact() {
        let vals = [
            f64::from_bits(STALE_NAN_BITS),
            f64::NAN,
            f64::from_bits(0x7ff8_dead_beef_0001),
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
            f64::MAX,
            1.5,
        ];
        let samples: Vec<Sample> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| s(i as i64, *v))
            .collect();
        assert_eq!(
            bits_of(&decode(&encode(&samples)).unwrap()),
            bits_of(&samples)
        );
    }

    #[test]
    fn extreme_timestamps_round_trip() {
        let samples = vec![s(i64::MIN, 1.0), s(-1, 2.0), s(0, 3.0), s(i64::MAX, 4.0)];
        assert_eq!(
            bits_of(&decode(&encode(&samples)).unwrap()),
            bits_of(&samples)
        );
    }

    #[test]
    fn truncated_chunk_is_an_error() {
        let samples: Vec<Sample> = (0..10).map(|i| s(i * 1000, i as f64 * 0.1)).collect();
        let data = encode(&samples);
        for cut in 0..data.len() {
            assert!(decode(&data[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(&[]).unwrap_err().contains("header"));
    }

    #[test]
    #[should_panic(expected = "BUG:")]
    fn out_of_order_push_panics() {
        let mut b = ChunkBuilder::new();
        b.push(10, 1.0);
        b.push(10, 2.0);
    }

    fn arb_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            Just(f64::from_bits(STALE_NAN_BITS)),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            (0..5i32).prop_map(f64::from),
        ]
    }

    proptest! {
        #[test]
        fn prop_round_trip(mut ts in proptest::collection::btree_set(any::<i64>(), 1..200),
                           small in proptest::collection::vec(1..100_000i64, 0..200),
                           vals in proptest::collection::vec(arb_f64(), 400)) {
            // Mix arbitrary timestamps with realistic small increments.
            let mut t = 1_600_000_000_000i64;
            for d in small { t += d; ts.insert(t); }
            let samples: Vec<Sample> = ts.iter().zip(vals.iter().cycle())
                .map(|(t, v)| s(*t, *v)).collect();
            let data = encode(&samples);
            prop_assert_eq!(count(&data), samples.len());
            prop_assert_eq!(bits_of(&decode(&data).unwrap()), bits_of(&samples));
        }

        #[test]
        fn prop_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn prop_corruption_errors_or_differs(n in 1..50usize, at in any::<usize>(), flip in 1..=255u8) {
            let samples: Vec<Sample> = (0..n as i64).map(|i| s(i * 15_000, (i * i) as f64)).collect();
            let mut data = encode(&samples);
            let i = at % data.len();
            data[i] ^= flip;
            if let Ok(got) = decode(&data) {
                prop_assert_ne!(bits_of(&got), bits_of(&samples));
            }
        }
    }
}
