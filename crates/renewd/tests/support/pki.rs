//! Throwaway certificates for tests, generated at run time (shared by the unit tests, via
//! `#[path]`, and the integration tests).

use chrono::{DateTime, Utc};
use rcgen::{CertificateParams, KeyPair, SerialNumber};

/// A leaf and its key, as PEM: what an ACME download and the order's key would be.
pub struct Issued {
    /// The leaf alone (a self-signed leaf: no intermediates).
    pub chain_pem: String,
    /// Its PKCS#8 ECDSA P-256 key.
    pub key_pem: String,
}

/// A self-signed ECDSA P-256 leaf for `domains`, valid from `not_before` to `not_after`,
/// with serial `serial`.
pub fn leaf(
    domains: &[&str],
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    serial: u64,
) -> Issued {
    let key = KeyPair::generate().expect("generate a P-256 key");
    let names: Vec<String> = domains.iter().map(|d| d.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("valid names");
    params.not_before = time(not_before);
    params.not_after = time(not_after);
    // A minimal DER INTEGER: no leading zero bytes, one when the high bit is set.
    let bytes = serial.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(7);
    let mut minimal = Vec::new();
    if bytes[first] >= 0x80 {
        minimal.push(0);
    }
    minimal.extend_from_slice(&bytes[first..]);
    params.serial_number = Some(SerialNumber::from_slice(&minimal));
    let cert = params.self_signed(&key).expect("self-sign");
    Issued {
        chain_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn time(t: DateTime<Utc>) -> ::time::OffsetDateTime {
    ::time::OffsetDateTime::from_unix_timestamp(t.timestamp()).expect("a representable time")
}
