//! Byte-level helpers shared by the TSDB's hand-written formats (WAL sample batches, head
//! checkpoints, block files): LEB128 varints, length-prefixed strings and a bounds-checked
//! reader whose errors name the field and offset. Kept here rather than in
//! `crate::encoding` so the TSDB formats do not change when the log part encodings do.

/// Appends `v` as unsigned LEB128.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded as LEB128.
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends a uvarint length and the bytes.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends a uvarint length and the UTF-8 bytes.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

/// A bounds-checked cursor; errors name the field and the offset (`base` + position, so
/// callers reading a slice of a file get file offsets).
pub struct Reader<'a> {
    pub data: &'a [u8],
    pub pos: usize,
    pub base: u64,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], base: u64) -> Self {
        Self { data, pos: 0, base }
    }

    /// The offset of the next byte (including `base`).
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.remaining() < n {
            return Err(format!(
                "{what} needs {n} bytes but {} remain at offset {}",
                self.remaining(),
                self.offset()
            ));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("BUG: took 4 bytes"),
        ))
    }

    pub fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().expect("BUG: took 8 bytes"),
        ))
    }

    pub fn uvarint(&mut self, what: &str) -> Result<u64, String> {
        let start = self.offset();
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8(what)?;
            if shift == 63 && b > 1 {
                break;
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("{what} is an overlong varint at offset {start}"))
    }

    pub fn varint(&mut self, what: &str) -> Result<i64, String> {
        let u = self.uvarint(what)?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A uvarint count that must not exceed the bytes left divided by `min_item_bytes`:
    /// never allocate from an unchecked count.
    pub fn count(&mut self, what: &str, min_item_bytes: usize) -> Result<usize, String> {
        let at = self.offset();
        let n = self.uvarint(what)?;
        if n > (self.remaining() / min_item_bytes.max(1)) as u64 {
            return Err(format!(
                "{what} {n} at offset {at} exceeds the {} bytes left",
                self.remaining()
            ));
        }
        Ok(n as usize)
    }

    pub fn bytes(&mut self, what: &str) -> Result<&'a [u8], String> {
        let at = self.offset();
        let len = self.uvarint(what)?;
        let len = usize::try_from(len)
            .map_err(|_| format!("{what} length {len} at offset {at} too large"))?;
        self.take(len, what)
    }

    pub fn str(&mut self, what: &str) -> Result<&'a str, String> {
        let at = self.offset();
        let b = self.bytes(what)?;
        std::str::from_utf8(b).map_err(|_| format!("{what} at offset {at} is not valid utf-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn prop_varints_round_trip(u in any::<u64>(), i in any::<i64>(), s in ".{0,10}") {
            let mut out = Vec::new();
            put_uvarint(&mut out, u);
            put_varint(&mut out, i);
            put_str(&mut out, &s);
            let mut r = Reader::new(&out, 0);
            prop_assert_eq!(r.uvarint("u").unwrap(), u);
            prop_assert_eq!(r.varint("i").unwrap(), i);
            prop_assert_eq!(r.str("s").unwrap(), s.as_str());
            prop_assert_eq!(r.remaining(), 0);
        }

        #[test]
        fn prop_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut r = Reader::new(&bytes, 7);
            let _ = r.uvarint("a");
            let _ = r.str("b");
            let _ = r.count("c", 2);
        }
    }

    #[test]
    fn errors_name_field_and_offset() {
        let mut r = Reader::new(&[0x05, b'a'], 100);
        let e = r.str("label name").unwrap_err();
        assert!(e.contains("label name") && e.contains("offset 101"), "{e}");
    }
}
