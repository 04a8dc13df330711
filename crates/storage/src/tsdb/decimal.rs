//! Decimal chunks: the compact chunk encoding of block files (format version 2), chosen per
//! chunk by the block writer when it is smaller than the Gorilla encoding (`chunk.rs`).
//! Not used by the head, which needs appendable chunks.
//!
//! Idea (as VictoriaMetrics' decimal blocks): exporters report values at a decimal
//! resolution (cpu seconds in 1/100 s, bytes and packets as integers, memory in 4 KiB
//! pages), so a chunk's values are `m_i / 10^e` for integers `m_i` and one exponent `e`.
//! Counters then differ by a noisy rate and gauges by a noisy step: the deltas of `m` are
//! stored frame-of-reference (minus their minimum, divided by their greatest common
//! divisor) and bit-packed at the width of the largest one — near the entropy of uniform
//! noise, where Gorilla's XOR of float bits spends ~20–40 bits on any change. Timestamps
//! are packed the same way (regular scrapes: width 0, no bits at all); the first timestamp
//! is the chunk reference's `min_t` and is not repeated.
//!
//! Hand-written because it is a bit-level format and the encoder must prove, value by
//! value, that decoding gives back the exact f64 bits (anything else — NaN, staleness
//! markers, -0.0, values needing more than 53 bits of mantissa — makes `encode` return
//! `None` and the block writer keeps the Gorilla chunk).
//!
//! Layout (`docs/format/tsdb-block.md`, "Decimal chunk"): `count` uvarint, `e` u8, `m_0`
//! varint; when `count > 1`: `t_min` uvarint, `t_width` u8, `v_min` varint, `v_gcd`
//! uvarint, `v_width` u8, then `count - 1` timestamp codes and `count - 1` value codes,
//! LSB-first, zero-padded to a byte.

use sightline_model::Sample;

use super::bytes::{put_uvarint, put_varint, Reader};

/// Largest decimal exponent: 10^22 is the largest power of ten an f64 holds exactly, so
/// `m / 10^e` is one correctly rounded division (what parsing the decimal text gives).
const MAX_EXP: u8 = 22;
/// Largest |m|: every integer up to 2^53 is exact in an f64.
const MAX_MANTISSA: i64 = 1 << 53;

const POW10: [f64; MAX_EXP as usize + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `m` at exponent `e` when `v == m / 10^e` bit for bit.
fn mantissa_at(v: f64, e: u8) -> Option<i64> {
    let m = (v * POW10[e as usize]).round();
    if m.is_nan() || m.abs() > MAX_MANTISSA as f64 {
        return None;
    }
    let m = m as i64;
    ((m as f64 / POW10[e as usize]).to_bits() == v.to_bits()).then_some(m)
}

/// The smallest exponent at which `v` is decimal.
fn exponent_of(v: f64) -> Option<u8> {
    // Integers (counters of bytes and packets, constants) first; NaN and infinities fail
    // every exponent, so they are refused without trying 23.
    if v.fract() == 0.0 && v.abs() <= MAX_MANTISSA as f64 && v.to_bits() != (-0.0f64).to_bits() {
        return Some(0);
    }
    if !v.is_finite() {
        return None;
    }
    (0..=MAX_EXP).find(|&e| mantissa_at(v, e).is_some())
}

/// Bits needed for `v` (0 for 0).
fn width(v: u64) -> u8 {
    (64 - v.leading_zeros()) as u8
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Appends values of a fixed width LSB-first.
struct Packer {
    out: Vec<u8>,
    acc: u128,
    n: u32,
}

impl Packer {
    fn put(&mut self, v: u64, w: u8) {
        if w == 0 {
            return;
        }
        self.acc |= u128::from(v) << self.n;
        self.n += u32::from(w);
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// Reads values of a fixed width LSB-first.
struct Unpacker<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u128,
    n: u32,
}

impl Unpacker<'_> {
    fn get(&mut self, w: u8) -> Result<u64, String> {
        if w == 0 {
            return Ok(0);
        }
        while self.n < u32::from(w) {
            let Some(&b) = self.data.get(self.pos) else {
                return Err(format!(
                    "decimal chunk bit stream ends at byte {} while reading {w} bits",
                    self.pos
                ));
            };
            self.acc |= u128::from(b) << self.n;
            self.pos += 1;
            self.n += 8;
        }
        let v = (self.acc & ((1u128 << w) - 1)) as u64;
        self.acc >>= w;
        self.n -= u32::from(w);
        Ok(v)
    }
}

/// Encodes `samples` (timestamps strictly increasing, 1 ..= `u16::MAX` of them) as a decimal
/// chunk whose first timestamp is implied; `None` when some value is not decimal.
///
/// # Panics
/// "BUG:" when `samples` is empty or timestamps do not strictly increase.
pub fn encode(samples: &[Sample]) -> Option<Vec<u8>> {
    assert!(!samples.is_empty(), "BUG: empty decimal chunk");
    let mut e = 0u8;
    for s in samples {
        e = e.max(exponent_of(s.value)?);
    }
    let mut ms: Vec<i64> = samples
        .iter()
        .map(|s| mantissa_at(s.value, e))
        .collect::<Option<_>>()?;
    // Canonical form (the decoder insists): the smallest exponent, so that damage to `e`
    // cannot go unnoticed. m / 10^e and (m / 10) / 10^(e - 1) are the same rational, hence
    // the same correctly rounded f64.
    while e > 0 && ms.iter().all(|m| m % 10 == 0) {
        ms.iter_mut().for_each(|m| *m /= 10);
        e -= 1;
    }
    let mut out = Vec::with_capacity(16 + samples.len());
    put_uvarint(&mut out, samples.len() as u64);
    out.push(e);
    put_varint(&mut out, ms[0]);
    if samples.len() == 1 {
        return Some(out);
    }
    let tds: Vec<u64> = samples
        .windows(2)
        .map(|w| {
            assert!(
                w[1].timestamp_ms > w[0].timestamp_ms,
                "BUG: decimal chunk sample at {} does not follow {}",
                w[1].timestamp_ms,
                w[0].timestamp_ms
            );
            w[1].timestamp_ms.wrapping_sub(w[0].timestamp_ms) as u64
        })
        .collect();
    // |m| <= 2^53, so deltas fit an i64 and delta - min fits a u64.
    let vds: Vec<i64> = ms.windows(2).map(|w| w[1] - w[0]).collect();
    let t_min = *tds.iter().min().expect("BUG: two samples or more");
    let t_width = width(tds.iter().map(|d| d - t_min).max().unwrap_or(0));
    let v_min = *vds.iter().min().expect("BUG: two samples or more");
    let v_gcd = vds
        .iter()
        .fold(0u64, |g, &d| gcd(g, (d - v_min) as u64))
        .max(1);
    let v_width = width(
        vds.iter()
            .map(|&d| (d - v_min) as u64 / v_gcd)
            .max()
            .unwrap_or(0),
    );
    put_uvarint(&mut out, t_min);
    out.push(t_width);
    put_varint(&mut out, v_min);
    put_uvarint(&mut out, v_gcd);
    out.push(v_width);
    let mut p = Packer { out, acc: 0, n: 0 };
    for d in &tds {
        p.put(d - t_min, t_width);
    }
    for &d in &vds {
        p.put((d - v_min) as u64 / v_gcd, v_width);
    }
    Some(p.finish())
}

/// Decodes a decimal chunk whose first sample is at `min_t`.
///
/// # Errors
/// A reason naming the field or sample that could not be decoded; trailing bytes or
/// non-zero padding are errors.
pub fn decode(data: &[u8], min_t: i64) -> Result<Vec<Sample>, String> {
    let mut r = Reader::new(data, 0);
    let count = r.uvarint("decimal chunk count")?;
    if count == 0 || count > u64::from(u16::MAX) {
        return Err(format!("decimal chunk count {count} is out of range"));
    }
    let e = r.u8("decimal chunk exponent")?;
    if e > MAX_EXP {
        return Err(format!("decimal chunk exponent {e} is over {MAX_EXP}"));
    }
    let scale = POW10[e as usize];
    let mut all_tens = true;
    let mut check = |m: i64, i: u64| -> Result<f64, String> {
        all_tens &= m % 10 == 0;
        if m.unsigned_abs() > MAX_MANTISSA as u64 {
            return Err(format!(
                "decimal chunk sample {i} mantissa {m} is over 2^53"
            ));
        }
        Ok(m as f64 / scale)
    };
    let mut m = r.varint("decimal chunk first value")?;
    let mut t = min_t;
    let mut out = Vec::with_capacity(count as usize);
    out.push(Sample {
        timestamp_ms: t,
        value: check(m, 0)?,
    });
    if count == 1 {
        if r.remaining() != 0 {
            return Err("decimal chunk has trailing bytes after 1 sample".into());
        }
        if e > 0 && all_tens {
            return Err(format!("decimal chunk exponent {e} is not the smallest"));
        }
        return Ok(out);
    }
    let t_min = r.uvarint("decimal chunk timestamp delta")?;
    let t_width = r.u8("decimal chunk timestamp width")?;
    let v_min = r.varint("decimal chunk value delta")?;
    let v_gcd = r.uvarint("decimal chunk value divisor")?;
    let v_width = r.u8("decimal chunk value width")?;
    if t_width > 64 || v_width > 64 || v_gcd == 0 || (v_width == 0 && v_gcd != 1) {
        return Err(format!(
            "decimal chunk widths {t_width}/{v_width} or divisor {v_gcd} are invalid"
        ));
    }
    let n = count - 1;
    let bits = n * u64::from(t_width) + n * u64::from(v_width);
    if bits.div_ceil(8) != r.remaining() as u64 {
        return Err(format!(
            "decimal chunk has {} bytes of codes, {count} samples need {}",
            r.remaining(),
            bits.div_ceil(8)
        ));
    }
    let mut u = Unpacker {
        data: &data[r.pos..],
        pos: 0,
        acc: 0,
        n: 0,
    };
    let mut ts = Vec::with_capacity(n as usize);
    for i in 1..count {
        let d = t_min
            .checked_add(u.get(t_width)?)
            .filter(|&d| d > 0)
            .ok_or_else(|| format!("decimal chunk sample {i} timestamp delta is invalid"))?;
        // Wrapping as in the encoder; strictly increasing is checked below.
        let next = t.wrapping_add(d as i64);
        if next <= t {
            return Err(format!(
                "decimal chunk sample {i} timestamp {next} does not follow {t}"
            ));
        }
        t = next;
        ts.push(t);
    }
    for (i, t) in (1..count).zip(ts) {
        let q = u.get(v_width)?;
        let d = q
            .checked_mul(v_gcd)
            .and_then(|x| i64::try_from(x).ok())
            .and_then(|x| x.checked_add(v_min))
            .ok_or_else(|| format!("decimal chunk sample {i} value delta overflows"))?;
        m = m
            .checked_add(d)
            .ok_or_else(|| format!("decimal chunk sample {i} value overflows"))?;
        out.push(Sample {
            timestamp_ms: t,
            value: check(m, i)?,
        });
    }
    if u.acc != 0 {
        return Err("decimal chunk padding bits are not zero".into());
    }
    if e > 0 && all_tens {
        return Err(format!("decimal chunk exponent {e} is not the smallest"));
    }
    Ok(out)
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

    fn round_trip(samples: &[Sample]) -> Vec<u8> {
        let data = encode(samples).expect("decimal");
        let got = decode(&data, samples[0].timestamp_ms).unwrap();
        assert_eq!(bits_of(&got), bits_of(samples));
        data
    }

    #[test]
    fn cpu_counter_in_hundredths_packs_tightly() {
        // A cpu counter in 1/100 s growing 5.00..5.99 s per 15 s scrape.
        let mut v = 1234.56f64;
        let samples: Vec<Sample> = (0..120)
            .map(|i| {
                v = ((v + 5.0 + (i * 37 % 100) as f64 / 100.0) * 100.0).round() / 100.0;
                s(1_700_000_000_000 + i * 15_000, v)
            })
            .collect();
        let data = round_trip(&samples);
        // 119 deltas of 7 bits + a ~15-byte header, vs ~4 bytes a sample for Gorilla.
        assert!(data.len() <= 15 + 119 * 7 / 8 + 1, "{} bytes", data.len());
        assert!(data.len() * 3 < super::super::chunk::encode(&samples).len());
    }

    #[test]
    fn constants_and_page_multiples() {
        let c: Vec<Sample> = (0..120).map(|i| s(i * 15_000, 17_179_869_184.0)).collect();
        assert!(round_trip(&c).len() < 16);
        // Memory in 4 KiB pages: the common divisor removes the 12 zero bits.
        let pages: Vec<Sample> = (0..120)
            .map(|i| s(i * 15_000, ((1_000_000 + (i * 7919) % 2048) * 4096) as f64))
            .collect();
        let data = round_trip(&pages);
        assert!(data.len() < 16 + 119 * 12 / 8 + 1, "{} bytes", data.len());
    }

    #[test]
    fn irregular_timestamps_and_single_samples() {
        round_trip(&[s(-5, 0.5)]);
        round_trip(&[s(i64::MIN, 1.0), s(-1, 2.0), s(0, 3.0), s(i64::MAX, -4.25)]);
        round_trip(&[s(0, 1e-22), s(1, -2e-22)]);
        round_trip(&[
            s(1, 9_007_199_254_740_992.0),
            s(2, -9_007_199_254_740_992.0),
        ]);
        // Shortest-repr decimals with 16 digits still fit 53 bits.
        round_trip(&[s(0, std::f64::consts::PI), s(1, -0.1)]);
        // One exponent per chunk: 2^53 at 10^22 does not fit.
        assert!(encode(&[s(0, 1e-22), s(1, 9_007_199_254_740_992.0)]).is_none());
    }

    #[test]
    fn non_decimal_values_are_refused() {
        for v in [
            f64::from_bits(STALE_NAN_BITS),
            f64::NAN,
            f64::INFINITY,
            -0.0,
            0.1 + 0.2,
            1e300,
        ] {
            assert!(encode(&[s(0, 1.0), s(1, v)]).is_none(), "{v:?}");
        }
    }

    #[test]
    fn damage_is_an_error() {
        let samples: Vec<Sample> = (0..10).map(|i| s(i * 1000, i as f64 * 0.5)).collect();
        let data = encode(&samples).unwrap();
        for cut in 0..data.len() {
            assert!(decode(&data[..cut], 0).is_err(), "cut at {cut}");
        }
        let mut long = data.clone();
        long.push(0);
        assert!(decode(&long, 0).unwrap_err().contains("bytes of codes"));
    }

    fn arb_decimal() -> impl Strategy<Value = f64> {
        prop_oneof![
            (-1_000_000i64..1_000_000, 0..4u8).prop_map(|(m, e)| m as f64 / POW10[e as usize]),
            any::<i32>().prop_map(f64::from),
            (0..3i32).prop_map(f64::from),
        ]
    }

    proptest! {
        #[test]
        fn prop_round_trip(ts in proptest::collection::btree_set(any::<i64>(), 1..200),
                           vals in proptest::collection::vec(arb_decimal(), 200)) {
            let samples: Vec<Sample> = ts.iter().zip(&vals).map(|(t, v)| s(*t, *v)).collect();
            let data = encode(&samples).unwrap();
            prop_assert_eq!(bits_of(&decode(&data, samples[0].timestamp_ms).unwrap()),
                            bits_of(&samples));
        }

        #[test]
        fn prop_any_float_round_trips_or_is_refused(
            vals in proptest::collection::vec(any::<u64>().prop_map(f64::from_bits), 1..50)) {
            let samples: Vec<Sample> =
                vals.iter().enumerate().map(|(i, v)| s(i as i64 * 10, *v)).collect();
            if let Some(data) = encode(&samples) {
                prop_assert_eq!(bits_of(&decode(&data, 0).unwrap()), bits_of(&samples));
            }
        }

        #[test]
        fn prop_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                                     t in any::<i64>()) {
            let _ = decode(&bytes, t);
        }

        #[test]
        fn prop_corruption_errors_or_differs(n in 1..50usize, at in any::<usize>(), flip in 1..=255u8) {
            let samples: Vec<Sample> =
                (0..n as i64).map(|i| s(i * 15_000, (i * i) as f64 / 4.0)).collect();
            let mut data = encode(&samples).unwrap();
            let i = at % data.len();
            data[i] ^= flip;
            if let Ok(got) = decode(&data, 0) {
                prop_assert_ne!(bits_of(&got), bits_of(&samples));
            }
        }
    }
}
