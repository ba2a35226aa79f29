//! Secret bytes (EAB MAC keys) that never reach a log.

use std::fmt;

/// Secret bytes, such as an EAB MAC key. `Debug` and `Display` print `[redacted]`, so a
/// secret cannot leak through `{:?}` on a config or an error; the bytes are reachable only
/// through [`Secret::expose`], which makes every use visible in review. The memory is
/// overwritten with zeros when dropped (best effort: copies made by callers are theirs).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<[u8]>);

impl Secret {
    /// Wraps `bytes`.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into().into_boxed_slice())
    }

    /// The secret bytes. Use them; do not log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// How many bytes the secret has (safe to log: a key's length is not the key).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_bytes() {
        let s = Secret::new(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([redacted])");
        assert_eq!(s.expose(), b"hunter2");
        assert_eq!(s.len(), 7);
    }
}
