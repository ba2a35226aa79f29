//! Random values: nonces, tokens, serial numbers.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};

/// `N` random bytes from the system generator. Should the system generator ever fail, the
/// bytes come from a non-cryptographic generator instead: this is a test CA, and an
/// unpredictable-enough nonce beats a panic.
pub(crate) fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if SystemRandom::new().fill(&mut out).is_err() {
        let mut rng = fastrand::Rng::new();
        out.iter_mut().for_each(|b| *b = rng.u8(..));
    }
    out
}

/// A base64url token of 128 random bits (nonces, challenge tokens).
pub(crate) fn token() -> String {
    URL_SAFE_NO_PAD.encode(bytes::<16>())
}
