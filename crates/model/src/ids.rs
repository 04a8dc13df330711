//! Trace and span ids (W3C trace context sizes), shown as lowercase hex.

use std::fmt;

use crate::error::{Error, Result};

/// A 16-byte trace id. The all-zero id is invalid per W3C and is never stored; it is the
/// `Default` only as a placeholder for building values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id. The all-zero id is invalid per W3C and is never stored; it is the
/// `Default` only as a placeholder for building values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub [u8; 8]);

fn parse_hex<const N: usize>(kind: &'static str, s: &str) -> Result<[u8; N]> {
    if s.len() != N * 2 {
        return Err(Error::InvalidId {
            kind,
            reason: format!("expected {} hex characters, got {}", N * 2, s.len()),
        });
    }
    let mut out = [0u8; N];
    const_hex::decode_to_slice(s, &mut out).map_err(|e| Error::InvalidId {
        kind,
        reason: e.to_string().to_lowercase(),
    })?;
    Ok(out)
}

impl TraceId {
    /// Parses 32 hex characters.
    ///
    /// # Errors
    /// [`Error::InvalidId`] on wrong length or a non-hex character.
    pub fn from_hex(s: &str) -> Result<Self> {
        parse_hex::<16>("trace id", s).map(Self)
    }

    /// `None` for the all-zero (absent) id; `Some` otherwise. Errors on wrong length.
    ///
    /// # Errors
    /// [`Error::InvalidId`] when `b` is neither empty nor 16 bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Option<Self>> {
        match b.len() {
            0 => Ok(None),
            16 => {
                let mut id = [0u8; 16];
                id.copy_from_slice(b);
                Ok((id != [0u8; 16]).then_some(Self(id)))
            }
            n => Err(Error::InvalidId {
                kind: "trace id",
                reason: format!("expected 16 bytes, got {n}"),
            }),
        }
    }

    pub fn to_hex(&self) -> String {
        const_hex::encode(self.0)
    }
}

impl SpanId {
    /// Parses 16 hex characters.
    ///
    /// # Errors
    /// [`Error::InvalidId`] on wrong length or a non-hex character.
    pub fn from_hex(s: &str) -> Result<Self> {
        parse_hex::<8>("span id", s).map(Self)
    }

    /// `None` for the all-zero (absent) id; `Some` otherwise. Errors on wrong length.
    ///
    /// # Errors
    /// [`Error::InvalidId`] when `b` is neither empty nor 8 bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Option<Self>> {
        match b.len() {
            0 => Ok(None),
            8 => {
                let mut id = [0u8; 8];
                id.copy_from_slice(b);
                Ok((id != [0u8; 8]).then_some(Self(id)))
            }
            n => Err(Error::InvalidId {
                kind: "span id",
                reason: format!("expected 8 bytes, got {n}"),
            }),
        }
    }

    pub fn to_hex(&self) -> String {
        const_hex::encode(self.0)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let t = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        assert_eq!(t.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(TraceId::from_hex("4bf9").is_err());
        assert!(TraceId::from_hex("zz f92f3577b34da6a3ce929d0e0e473").is_err());
        assert_eq!(TraceId::from_bytes(&[0; 16]).unwrap(), None);
        assert!(SpanId::from_bytes(&[1; 3]).is_err());
        assert_eq!(
            SpanId::from_hex("00f067aa0ba902b7").unwrap().to_hex(),
            "00f067aa0ba902b7"
        );
    }
}
