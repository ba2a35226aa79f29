//! The facts renewd keeps about a certificate: serial, validity, names, issuer, and the ARI
//! CertID inputs. Compact on purpose — the inventory holds one per certificate, 100,000 of
//! them in a few tens of megabytes — and never the DER itself.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use renewd_core::KeyType;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::der::PublicKeyBits;

/// What a certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    serial: Box<[u8]>,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    sans: Box<[Box<str>]>,
    issuer_cn: Option<Arc<str>>,
    aki: Option<Box<[u8]>>,
    key_type: Option<KeyType>,
}

impl CertFacts {
    /// The serial number in lower-case hex, without leading zeros (`"0"` for zero).
    pub fn serial_hex(&self) -> String {
        let digits: String = self.serial.iter().map(|b| format!("{b:02x}")).collect();
        let trimmed = digits.trim_start_matches('0');
        if trimmed.is_empty() {
            "0".to_string()
        } else {
            trimmed.to_string()
        }
    }

    /// The serial's DER content bytes (`tbs_certificate.raw_serial()`), as ARI needs them.
    pub fn serial_der(&self) -> &[u8] {
        &self.serial
    }

    /// notBefore.
    pub fn not_before(&self) -> DateTime<Utc> {
        self.not_before
    }

    /// notAfter.
    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }

    /// The DNS names among the subjectAltNames, lower-case, in certificate order.
    pub fn sans(&self) -> impl ExactSizeIterator<Item = &str> {
        self.sans.iter().map(|s| &**s)
    }

    /// Whether the SANs hold `name` exactly (case-insensitive; a wildcard matches only the
    /// same wildcard).
    pub fn covers(&self, name: &str) -> bool {
        self.sans.iter().any(|s| s.eq_ignore_ascii_case(name))
    }

    /// The issuer's common name, when it has one.
    pub fn issuer_cn(&self) -> Option<&str> {
        self.issuer_cn.as_deref()
    }

    /// The authority key identifier's keyIdentifier bytes, when present.
    pub fn aki(&self) -> Option<&[u8]> {
        self.aki.as_deref()
    }

    /// The certificate's key type, when it is one renewd issues.
    pub fn key_type(&self) -> Option<KeyType> {
        self.key_type
    }

    /// The ARI CertID (RFC 9773 §4.1): `base64url(AKI keyIdentifier) "." base64url(serial)`;
    /// `None` without an AKI.
    pub fn ari_cert_id(&self) -> Option<String> {
        let aki = self.aki.as_deref()?;
        Some(format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(aki),
            URL_SAFE_NO_PAD.encode(&self.serial)
        ))
    }
}

/// Shares issuer names between the facts of many certificates (a host has few issuers).
#[derive(Debug, Default)]
pub(crate) struct Interner {
    seen: Vec<Arc<str>>,
}

impl Interner {
    fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(hit) = self.seen.iter().find(|a| &***a == s) {
            return Arc::clone(hit);
        }
        let new: Arc<str> = Arc::from(s);
        if self.seen.len() < 32 {
            self.seen.push(Arc::clone(&new));
        }
        new
    }
}

/// A parsed leaf: its facts and its public key.
pub(crate) struct ParsedLeaf {
    pub facts: CertFacts,
    pub public_key: Option<PublicKeyBits>,
}

/// Parses a DER certificate into facts. `Err` carries the parser's complaint.
pub(crate) fn parse_leaf(der: &[u8], interner: &mut Interner) -> Result<ParsedLeaf, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    Ok(facts_of(&cert, interner))
}

pub(crate) fn facts_of(cert: &X509Certificate<'_>, interner: &mut Interner) -> ParsedLeaf {
    let tbs = &cert.tbs_certificate;
    let mut sans = Vec::new();
    let mut aki = None;
    for ext in tbs.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    if let GeneralName::DNSName(d) = name {
                        sans.push(Box::from(d.to_ascii_lowercase()));
                    }
                }
            }
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                aki = a.key_identifier.as_ref().map(|k| Box::from(k.0));
            }
            _ => {}
        }
    }
    let issuer_cn = tbs
        .issuer()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(|cn| interner.get(cn));
    let spki = tbs.public_key();
    let curve = spki.algorithm.parameters.as_ref().map(|p| p.data);
    let public_key = PublicKeyBits::from_spki(
        spki.algorithm.algorithm.as_bytes(),
        curve,
        &spki.subject_public_key.data,
    );
    let time = |t: i64| DateTime::from_timestamp(t, 0).unwrap_or(DateTime::<Utc>::MIN_UTC);
    let facts = CertFacts {
        serial: Box::from(tbs.raw_serial()),
        not_before: time(tbs.validity().not_before.timestamp()),
        not_after: time(tbs.validity().not_after.timestamp()),
        sans: sans.into_boxed_slice(),
        issuer_cn,
        aki,
        key_type: public_key.as_ref().and_then(PublicKeyBits::key_type),
    };
    ParsedLeaf { facts, public_key }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(serial: &[u8]) -> CertFacts {
        CertFacts {
            serial: Box::from(serial),
            not_before: DateTime::UNIX_EPOCH,
            not_after: DateTime::UNIX_EPOCH,
            sans: Box::new([Box::from("www.example.com"), Box::from("*.example.com")]),
            issuer_cn: None,
            aki: Some(Box::from(
                &[0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41][..],
            )),
            key_type: None,
        }
    }

    #[test]
    fn serial_hex_and_cert_id() {
        let f = facts(&[0x00, 0x87, 0x65, 0x43, 0x21]);
        assert_eq!(f.serial_hex(), "87654321");
        // RFC 9773 §4.1's example encodes keyIdentifier 69:88:5B:6B:87:46:40:41 and serial
        // 00:87:65:43:21 as "aYhba4dGQEE.AIdlQyE".
        assert_eq!(f.ari_cert_id().unwrap(), "aYhba4dGQEE.AIdlQyE");
        assert_eq!(facts(&[0]).serial_hex(), "0");
        assert_eq!(facts(&[0x0a]).serial_hex(), "a");
    }

    #[test]
    fn wildcards_match_exactly() {
        let f = facts(&[1]);
        assert!(f.covers("WWW.example.com"));
        assert!(f.covers("*.example.com"));
        assert!(!f.covers("api.example.com"));
        assert!(!f.covers("example.com"));
    }
}
