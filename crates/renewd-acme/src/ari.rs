//! ACME Renewal Information (RFC 9773): the CertID of a certificate and the renewalInfo
//! request.

use std::fmt;

use chrono::{DateTime, Utc};
use renewd_core::Step;
use x509_parser::prelude::*;

use crate::client::AcmeClient;
use crate::error::Error;
use crate::jws::b64;
use crate::types::RenewalInfoWire;

/// A certificate's ARI identifier: base64url(AKI keyIdentifier) "." base64url(serial DER
/// content bytes), no padding (§4.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertId(String);

impl CertId {
    /// From the raw parts: the AKI keyIdentifier and the serial's DER content bytes
    /// (leading 0x00 kept).
    pub fn from_parts(key_identifier: &[u8], serial_der_content: &[u8]) -> CertId {
        CertId(format!(
            "{}.{}",
            b64(key_identifier),
            b64(serial_der_content)
        ))
    }

    /// From a certificate (DER). Fails when it does not parse or has no AKI keyIdentifier.
    pub fn from_certificate_der(der: &[u8]) -> Result<CertId, Error> {
        let failed = |detail: String| Error::Key {
            step: Step::RenewalInfo,
            what: "computing the ARI CertID",
            detail,
        };
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| failed(e.to_string()))?;
        let aki = cert
            .extensions()
            .iter()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref(),
                _ => None,
            })
            .ok_or_else(|| failed("the certificate has no Authority Key Identifier".to_string()))?;
        Ok(CertId::from_parts(aki.0, cert.tbs_certificate.raw_serial()))
    }

    /// The identifier as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Reads a CertID as stored (`renewd-store` keeps the text): two non-empty base64url parts
/// without padding, joined by one dot.
impl std::str::FromStr for CertId {
    type Err = Error;

    fn from_str(s: &str) -> Result<CertId, Error> {
        let b64url = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        match s.split_once('.') {
            Some((aki, serial)) if b64url(aki) && b64url(serial) => Ok(CertId(s.to_string())),
            _ => Err(Error::InvalidRequest {
                step: Step::RenewalInfo,
                detail: format!("{s:?} is not an ARI CertID (base64url \".\" base64url)"),
            }),
        }
    }
}

impl fmt::Display for CertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The CA's renewal advice for one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalInfo {
    /// The suggested window's start.
    pub window_start: DateTime<Utc>,
    /// The suggested window's end (after the start).
    pub window_end: DateTime<Utc>,
    /// `explanationURL`, when given.
    pub explanation_url: Option<String>,
    /// When to ask again (`Retry-After`), unclamped; the scheduler clamps.
    pub retry_after: Option<DateTime<Utc>>,
}

impl AcmeClient {
    /// GET renewalInfo for a certificate (unauthenticated). [`Error::Unsupported`] when the
    /// directory has no `renewalInfo`; a window whose end is not after its start is an
    /// unusable answer.
    pub async fn renewal_info(&self, cert_id: &CertId) -> Result<RenewalInfo, Error> {
        let step = Step::RenewalInfo;
        let base = self
            .directory()
            .await?
            .renewal_info
            .clone()
            .ok_or_else(|| Error::Unsupported {
                step,
                url: self.directory_url().to_string(),
                what: "ACME Renewal Information (renewalInfo)".to_string(),
            })?;
        let url = format!("{}/{}", base.trim_end_matches('/'), cert_id);
        let (info, _) = self
            .get(step, &url, None, None, |r| {
                let wire: RenewalInfoWire = r.json()?;
                let window = wire.suggested_window;
                if window.end <= window.start {
                    return Err(r.invalid("suggestedWindow ends before it starts"));
                }
                Ok(RenewalInfo {
                    window_start: window.start,
                    window_end: window.end,
                    explanation_url: wire.explanation_url,
                    retry_after: r.retry_after(),
                })
            })
            .await?;
        Ok(info)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, IsCa, Issuer, KeyIdMethod, KeyPair, SerialNumber,
    };

    const AKI: [u8; 20] = [
        0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0, 0xAE,
        0x2C, 0xDE, 0x01, 0xC8, 0xD4,
    ];

    #[test]
    fn rfc9773_appendix_a_vector() {
        let id = CertId::from_parts(&AKI, &[0x00, 0x87, 0x65, 0x43, 0x21]);
        assert_eq!(id.as_str(), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    }

    #[test]
    fn cert_id_from_a_certificate_with_the_appendix_values() {
        // A certificate whose issuer key identifier and serial are the RFC's example values.
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::default();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_identifier_method = KeyIdMethod::PreSpecified(AKI.to_vec());
        let issuer = Issuer::new(ca, ca_key);
        let mut leaf = CertificateParams::new(vec!["example.com".to_string()]).unwrap();
        leaf.use_authority_key_identifier_extension = true;
        leaf.serial_number = Some(SerialNumber::from_slice(&[0x87, 0x65, 0x43, 0x21]));
        let leaf_key = KeyPair::generate().unwrap();
        let cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        let id = CertId::from_certificate_der(cert.der()).unwrap();
        assert_eq!(id.to_string(), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    }

    #[test]
    fn cert_id_parses_back_from_its_text() {
        let id: CertId = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE".parse().unwrap();
        assert_eq!(
            id,
            CertId::from_parts(&AKI, &[0x00, 0x87, 0x65, 0x43, 0x21])
        );
        for bad in [
            "", ".", "abc", "abc.", ".abc", "a.b.c", "a+b.c", "ab.c=", "a b.c",
        ] {
            assert!(bad.parse::<CertId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn no_aki_or_garbage_is_an_error() {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["a.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert!(CertId::from_certificate_der(cert.der()).is_err());
        assert!(CertId::from_certificate_der(b"garbage").is_err());
    }
}
