//! `Secret<T>`: a value that never prints, never serializes and is zeroized when dropped.

use std::fmt;
use zeroize::Zeroize;

/// A secret value: keys, tokens, secret IDs, unseal shares.
///
/// `Debug` and `Display` print `REDACTED`; there is no `Serialize`; the inner value is wiped
/// from memory on drop. Read it only through [`Secret::expose_secret`], so every use is visible
/// in review.
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// Borrows the secret value. Callers must not log or copy it into unprotected memory.
    pub fn expose_secret(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize + Clone> Clone for Secret<T> {
    fn clone(&self) -> Self {
        Secret(self.0.clone())
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let s = Secret::new(String::from("hunter2"));
        assert_eq!(format!("{s:?}"), "REDACTED");
        assert_eq!(format!("{s}"), "REDACTED");
        assert_eq!(s.expose_secret(), "hunter2");
    }
}
