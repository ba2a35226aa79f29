//! Key authorizations and what each challenge type publishes (RFC 8555 §8, RFC 8737).

use rcgen::{CertificateParams, CustomExtension, DistinguishedName, KeyPair};
use renewd_core::{ChallengeType, Step};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::jws::b64;

/// `token.thumbprint` (§8.1).
pub fn key_authorization(token: &str, thumbprint: &str) -> String {
    format!("{token}.{thumbprint}")
}

/// The dns-01 TXT value: base64url(SHA-256(key authorization)) (§8.4).
pub fn dns01_txt_value(key_authorization: &str) -> String {
    b64(Sha256::digest(key_authorization.as_bytes()))
}

/// The dns-01 record name for an identifier: `_acme-challenge.` + the name without a
/// wildcard label.
pub fn dns01_record_name(identifier: &str) -> String {
    let base = identifier.strip_prefix("*.").unwrap_or(identifier);
    format!("_acme-challenge.{base}")
}

/// The http-01 path: `/.well-known/acme-challenge/TOKEN` (§8.3).
pub fn http01_path(token: &str) -> String {
    format!("/.well-known/acme-challenge/{token}")
}

/// The self-signed certificate a tls-alpn-01 responder presents (RFC 8737 §3): one dNSName
/// SAN and the critical acmeIdentifier extension holding SHA-256(key authorization).
#[derive(Clone)]
pub struct TlsAlpnCertificate {
    /// The certificate (DER).
    pub cert_der: Vec<u8>,
    /// Its private key (PKCS#8 DER), a fresh P-256 key.
    pub key_pkcs8_der: Vec<u8>,
}

impl std::fmt::Debug for TlsAlpnCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAlpnCertificate")
            .field("cert_der_len", &self.cert_der.len())
            .finish_non_exhaustive()
    }
}

/// The ALPN protocol name of tls-alpn-01.
pub const ACME_TLS_ALPN_PROTOCOL: &[u8] = b"acme-tls/1";

/// Makes the RFC 8737 certificate for `domain` and `key_authorization`.
pub fn tls_alpn01_certificate(
    domain: &str,
    key_authorization: &str,
) -> Result<TlsAlpnCertificate, Error> {
    let failed = |e: rcgen::Error| Error::Key {
        step: Step::ChallengeSetup,
        what: "making the tls-alpn-01 certificate",
        detail: e.to_string(),
    };
    let digest = Sha256::digest(key_authorization.as_bytes());
    let mut params = CertificateParams::new(vec![domain.to_string()]).map_err(failed)?;
    params.distinguished_name = DistinguishedName::new();
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(&digest)];
    let key = KeyPair::generate().map_err(failed)?;
    let cert = params.self_signed(&key).map_err(failed)?;
    Ok(TlsAlpnCertificate {
        cert_der: cert.der().to_vec(),
        key_pkcs8_der: key.serialize_der(),
    })
}

/// What a solver must publish for one challenge.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ChallengeProof {
    /// Serve `body` at `http://IDENTIFIER{path}` on port 80.
    Http01 {
        /// `/.well-known/acme-challenge/TOKEN`.
        path: String,
        /// The key authorization.
        body: String,
    },
    /// Publish a TXT record `name` with `value`.
    Dns01 {
        /// `_acme-challenge.NAME` (no trailing dot).
        name: String,
        /// base64url(SHA-256(key authorization)).
        value: String,
    },
    /// Answer TLS connections with ALPN `acme-tls/1` and SNI = the identifier with this
    /// certificate.
    TlsAlpn01(TlsAlpnCertificate),
}

/// One challenge for a solver to present and later clean up.
#[derive(Debug, Clone)]
pub struct ChallengeAnswer {
    /// The identifier's value (a wildcard's base domain).
    pub identifier: String,
    /// Whether the authorization is for a wildcard.
    pub wildcard: bool,
    /// The challenge type.
    pub challenge_type: ChallengeType,
    /// The challenge token.
    pub token: String,
    /// `token.thumbprint`.
    pub key_authorization: String,
    /// What to publish.
    pub proof: ChallengeProof,
    /// The challenge URL (for logs).
    pub url: String,
}

impl ChallengeAnswer {
    /// Builds the answer for one challenge.
    pub(crate) fn new(
        identifier: &str,
        wildcard: bool,
        challenge_type: ChallengeType,
        token: &str,
        thumbprint: &str,
        url: &str,
    ) -> Result<ChallengeAnswer, Error> {
        let key_authorization = key_authorization(token, thumbprint);
        let proof = match challenge_type {
            ChallengeType::Dns01 => ChallengeProof::Dns01 {
                name: dns01_record_name(identifier),
                value: dns01_txt_value(&key_authorization),
            },
            ChallengeType::TlsAlpn01 => {
                ChallengeProof::TlsAlpn01(tls_alpn01_certificate(identifier, &key_authorization)?)
            }
            _ => ChallengeProof::Http01 {
                path: http01_path(token),
                body: key_authorization.clone(),
            },
        };
        Ok(ChallengeAnswer {
            identifier: identifier.to_string(),
            wildcard,
            challenge_type,
            token: token.to_string(),
            key_authorization,
            proof,
            url: url.to_string(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use x509_parser::prelude::*;

    #[test]
    fn dns01_value_and_name() {
        // §8.4: base64url(SHA-256) of the key authorization; checked against ring.
        let ka = key_authorization("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", "thumb");
        let digest = ring::digest::digest(&ring::digest::SHA256, ka.as_bytes());
        assert_eq!(dns01_txt_value(&ka), b64(digest.as_ref()));
        assert_eq!(dns01_txt_value(&ka).len(), 43);
        assert_eq!(dns01_record_name("*.a.test"), "_acme-challenge.a.test");
        assert_eq!(dns01_record_name("a.test"), "_acme-challenge.a.test");
        assert_eq!(http01_path("tok"), "/.well-known/acme-challenge/tok");
    }

    #[test]
    fn tls_alpn_certificate_follows_rfc8737() {
        let ka = "token.thumb";
        let cert = tls_alpn01_certificate("a.test", ka).unwrap();
        let (_, x509) = X509Certificate::from_der(&cert.cert_der).unwrap();
        let sans = x509.subject_alternative_name().unwrap().unwrap();
        assert_eq!(
            sans.value.general_names,
            vec![GeneralName::DNSName("a.test")]
        );
        let oid = x509_parser::oid_registry::Oid::from(&[1, 3, 6, 1, 5, 5, 7, 1, 31]).unwrap();
        let ext = x509.get_extension_unique(&oid).unwrap().unwrap();
        assert!(ext.critical);
        // An OCTET STRING (0x04, length 32) of SHA-256(key authorization).
        let digest = Sha256::digest(ka.as_bytes());
        assert_eq!(&ext.value[..2], &[0x04, 32]);
        assert_eq!(&ext.value[2..], digest.as_slice());
    }
}
