//! Tenants: every record and every query belongs to exactly one.

use std::fmt;

use crate::error::{Error, Result};

/// A validated tenant id. Used in directory names, so restricted to a safe alphabet.
///
/// # Invariants
/// 1 to 64 bytes of `[A-Za-z0-9_.-]`, and neither `.` nor `..`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant(String);

impl Tenant {
    /// The tenant of requests that name none (`X-Scope-OrgID` absent).
    pub const DEFAULT: &'static str = "default";

    /// Validates `id` as a tenant id.
    ///
    /// # Errors
    /// [`Error::InvalidTenant`] when `id` is empty, longer than 64 bytes, `.`/`..`, or has
    /// a character outside `[A-Za-z0-9_.-]`.
    pub fn new(id: &str) -> Result<Self> {
        let ok = !id.is_empty()
            && id.len() <= 64
            && id != "."
            && id != ".."
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
        if ok {
            Ok(Self(id.to_string()))
        } else {
            Err(Error::InvalidTenant(id.to_string()))
        }
    }

    /// The `default` tenant.
    pub fn default_tenant() -> Self {
        Self(Self::DEFAULT.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Tenant {
    fn default() -> Self {
        Self::default_tenant()
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_alphabet_and_length() {
        assert!(Tenant::new("team-a_1.prod").is_ok());
        assert!(Tenant::new("").is_err());
        assert!(Tenant::new("..").is_err());
        assert!(Tenant::new("a/b").is_err());
        assert!(Tenant::new(&"x".repeat(65)).is_err());
        assert_eq!(Tenant::default().as_str(), "default");
    }
}
