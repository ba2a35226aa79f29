//! The certificate authority proper: keys and certificates generated at start, leaf issuance.
//!
//! Two hierarchies, kept apart on purpose:
//!
//! - the **HTTPS trust root** signs only the server certificate of the ACME endpoint
//!   (`localhost`, `127.0.0.1`, `::1`); a client adds it as an extra trust root;
//! - the **issuing roots**: root A (primary) and root B (alternate) both certify the one
//!   intermediate key — two intermediate certificates, same subject and key. A leaf signed
//!   by that key chains to either root: the default chain is `leaf, intermediate-by-A`, the
//!   alternate chain (announced with `Link: rel="alternate"`) is `leaf, intermediate-by-B`.

use chrono::{DateTime, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber, SubjectPublicKeyInfo,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::ari::cert_id_of;
use crate::error::TestCaError;
use crate::response::Problem;

/// One issuing root and the intermediate certificate it signed.
#[derive(Debug)]
pub(crate) struct Hierarchy {
    pub root_pem: String,
    pub intermediate_pem: String,
}

/// Everything the CA signs with.
pub(crate) struct Authority {
    pub tls_root_pem: String,
    pub tls_chain: Vec<CertificateDer<'static>>,
    tls_key_der: Vec<u8>,
    /// `[primary, alternate]`.
    pub hierarchies: Vec<Hierarchy>,
    intermediate: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("hierarchies", &self.hierarchies.len())
            .finish_non_exhaustive()
    }
}

/// A freshly issued certificate.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub der: Vec<u8>,
    /// One full PEM chain (leaf first, no root) per issuing root.
    pub chains: Vec<String>,
    pub serial_hex: String,
    pub cert_id: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

fn ca_params(cn: &str, path_len: Option<u8>) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "renewd-testca");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    params.serial_number = Some(serial());
    params
}

fn serial() -> SerialNumber {
    SerialNumber::from_slice(&crate::random::bytes::<16>())
}

fn to_time(t: DateTime<Utc>) -> Result<time::OffsetDateTime, Problem> {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp())
        .map_err(|_| Problem::server_internal("validity out of range"))
}

impl Authority {
    /// Generates the HTTPS trust root and server certificate, the two issuing roots and the
    /// intermediate.
    pub fn generate() -> Result<Authority, TestCaError> {
        let tag = hex(&crate::random::bytes::<3>());

        let tls_root_key = KeyPair::generate()?;
        let tls_root_params = ca_params(&format!("renewd-testca HTTPS root {tag}"), None);
        let tls_root_cert = tls_root_params.self_signed(&tls_root_key)?;
        let tls_root = Issuer::new(tls_root_params, tls_root_key);
        let tls_key = KeyPair::generate()?;
        let mut server_params = CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server_params.is_ca = IsCa::ExplicitNoCa;
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server_params.use_authority_key_identifier_extension = true;
        server_params.serial_number = Some(serial());
        let now = time::OffsetDateTime::now_utc();
        server_params.not_before = now - time::Duration::days(1);
        server_params.not_after = now + time::Duration::days(365);
        let server_cert = server_params.signed_by(&tls_key, &tls_root)?;

        let inter_key = KeyPair::generate()?;
        let mut inter_params = ca_params(&format!("renewd-testca intermediate {tag}"), Some(0));
        inter_params.use_authority_key_identifier_extension = true;
        let mut hierarchies = Vec::new();
        for name in ["A", "B"] {
            let root_key = KeyPair::generate()?;
            let root_params = ca_params(&format!("renewd-testca root {name} {tag}"), None);
            let root_cert = root_params.self_signed(&root_key)?;
            let root = Issuer::new(root_params, root_key);
            inter_params.serial_number = Some(serial());
            let inter_cert = inter_params.signed_by(&inter_key, &root)?;
            hierarchies.push(Hierarchy {
                root_pem: root_cert.pem(),
                intermediate_pem: inter_cert.pem(),
            });
        }
        Ok(Authority {
            tls_root_pem: tls_root_cert.pem(),
            tls_chain: vec![server_cert.der().clone()],
            tls_key_der: tls_key.serialize_der(),
            hierarchies,
            intermediate: Issuer::new(inter_params, inter_key),
        })
    }

    /// The HTTPS server's private key.
    pub fn tls_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.tls_key_der.clone()))
    }

    /// Issues a leaf for `names` to the key `spki_der`, valid from `not_before` for
    /// `validity`.
    pub fn issue(
        &self,
        spki_der: &[u8],
        names: &[String],
        not_before: DateTime<Utc>,
        validity: std::time::Duration,
    ) -> Result<Issued, Problem> {
        let key = SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|_| Problem::bad_csr("unsupported public key in CSR"))?;
        let not_after = chrono::Duration::from_std(validity)
            .ok()
            .and_then(|v| not_before.checked_add_signed(v))
            .ok_or_else(|| Problem::server_internal("validity out of range"))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(first) = names.first().filter(|n| n.len() <= 64) {
            params
                .distinguished_name
                .push(DnType::CommonName, first.as_str());
        }
        params.subject_alt_names = names
            .iter()
            .map(|n| {
                n.clone()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(|_| Problem::bad_csr(format!("{n:?} is not a DNS name")))
            })
            .collect::<Result<_, _>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(serial());
        params.not_before = to_time(not_before)?;
        params.not_after = to_time(not_after)?;
        let cert = params
            .signed_by(&key, &self.intermediate)
            .map_err(|e| Problem::server_internal(format!("signing failed: {e}")))?;
        let der = cert.der().to_vec();
        let (cert_id, serial) = cert_id_of(&der)
            .ok_or_else(|| Problem::server_internal("issued certificate does not parse"))?;
        let leaf_pem = cert.pem();
        Ok(Issued {
            chains: self
                .hierarchies
                .iter()
                .map(|h| format!("{leaf_pem}{}", h.intermediate_pem))
                .collect(),
            serial_hex: hex(&serial),
            cert_id,
            not_before,
            not_after,
            der,
        })
    }
}

/// Lower-case hex of the serial's value in whole bytes (leading zero bytes dropped), as
/// `openssl` prints serials. renewd prints the number, without a leading zero nibble
/// (`e81…` where this gives `0e81…`): compare the two with leading zeros trimmed.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let hex: String = bytes[start..].iter().map(|b| format!("{b:02x}")).collect();
    if hex.is_empty() { "00".to_owned() } else { hex }
}

/// A serial as given by a user, normalised for comparison with [`hex`]: colons gone, lower
/// case, leading zeros gone.
pub(crate) fn normalize_serial(serial: &str) -> String {
    let s: String = serial
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let trimmed = s.trim_start_matches('0');
    if trimmed.is_empty() {
        "00".to_owned()
    } else if trimmed.len() % 2 == 1 {
        format!("0{trimmed}")
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::SubsecRound;
    use rcgen::{KeyPair, PublicKeyData};

    use super::*;

    #[test]
    fn leaves_carry_the_names_validity_and_a_cert_id() {
        let ca = Authority::generate().expect("authority");
        let key = KeyPair::generate().expect("key");
        let now = Utc::now().trunc_subsecs(0);
        let names = vec!["a.example".to_owned(), "*.b.example".to_owned()];
        let issued = ca
            .issue(
                &key.subject_public_key_info(),
                &names,
                now,
                Duration::from_secs(3600),
            )
            .expect("issued");
        assert_eq!(
            issued.not_after - issued.not_before,
            chrono::Duration::hours(1)
        );
        assert_eq!(issued.chains.len(), 2);
        let (_, cert) = x509_parser::parse_x509_certificate(&issued.der).expect("parses");
        assert_eq!(cert.validity().not_before.timestamp(), now.timestamp());
        assert_eq!(hex(cert.tbs_certificate.raw_serial()), issued.serial_hex);
        assert!(issued.cert_id.contains('.'));
    }

    #[test]
    fn absurd_validity_is_an_error_not_a_panic() {
        let ca = Authority::generate().expect("authority");
        let key = KeyPair::generate().expect("key");
        let names = vec!["a.example".to_owned()];
        for secs in [u64::MAX, 10u64.pow(12)] {
            let r = ca.issue(
                &key.subject_public_key_info(),
                &names,
                Utc::now(),
                Duration::from_secs(secs),
            );
            assert!(r.is_err(), "{secs} s");
        }
    }

    #[test]
    fn serials_print_and_compare_as_hex() {
        assert_eq!(hex(&[0x00, 0x87, 0x65]), "8765");
        assert_eq!(hex(&[0x0a, 0xbc]), "0abc");
        assert_eq!(normalize_serial("0A:BC"), "0abc");
        assert_eq!(normalize_serial("abc"), "0abc");
        assert_eq!(normalize_serial("00:87:65"), "8765");
    }
}
