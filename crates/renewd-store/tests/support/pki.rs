//! A throwaway test PKI made with rcgen at test time (no committed keys): a root, an
//! intermediate, and leaves with chosen names, keys and dates. Shared by the unit tests,
//! the integration tests and the scan benchmark through `#[path]`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// A root and an intermediate that issues leaves.
pub struct TestCa {
    pub root_pem: String,
    pub intermediate_pem: String,
    intermediate: Issuer<'static, KeyPair>,
    /// Another intermediate's certificate with the same subject but a different key, for
    /// chains whose signature does not verify.
    pub impostor_pem: String,
}

impl TestCa {
    /// A new CA named `name` ("<name> Root", "<name> Intermediate").
    pub fn new(name: &str) -> Self {
        let root_key = KeyPair::generate().unwrap();
        let root_params = ca_params(&format!("{name} Root"));
        let root_pem = root_params.self_signed(&root_key).unwrap().pem();
        let root = Issuer::new(root_params, root_key);

        let inter_key = KeyPair::generate().unwrap();
        let mut inter_params = ca_params(&format!("{name} Intermediate"));
        inter_params.use_authority_key_identifier_extension = true;
        let intermediate_pem = inter_params.signed_by(&inter_key, &root).unwrap().pem();

        let impostor_key = KeyPair::generate().unwrap();
        let impostor_pem = inter_params.signed_by(&impostor_key, &root).unwrap().pem();
        Self {
            root_pem,
            intermediate_pem,
            intermediate: Issuer::new(inter_params, inter_key),
            impostor_pem,
        }
    }

    /// A leaf for `domains` holding `key`'s public key, valid from `not_before` to
    /// `not_after`, as PEM.
    pub fn leaf_pem_with(
        &self,
        domains: &[&str],
        key: &KeyPair,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        serial: Option<u64>,
    ) -> String {
        let mut p =
            CertificateParams::new(domains.iter().map(|d| d.to_string()).collect::<Vec<_>>())
                .unwrap();
        p.use_authority_key_identifier_extension = true;
        p.not_before = not_before;
        p.not_after = not_after;
        if let Some(s) = serial {
            p.serial_number = Some(SerialNumber::from_slice(&s.to_be_bytes()));
        }
        p.signed_by(key, &self.intermediate).unwrap().pem()
    }

    /// A leaf valid from a day ago for 90 days.
    pub fn leaf_pem(&self, domains: &[&str], key: &KeyPair) -> String {
        let now = OffsetDateTime::now_utc();
        self.leaf_pem_with(
            domains,
            key,
            now - Duration::days(1),
            now + Duration::days(89),
            None,
        )
    }

    /// What an ACME download returns: the leaf, then the intermediate.
    pub fn chain(&self, leaf_pem: &str) -> String {
        format!("{leaf_pem}{}", self.intermediate_pem)
    }

    /// A fresh P-256 key and the chain of a leaf for `domains` on it: (chain PEM, key PEM).
    pub fn issue(&self, domains: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        (
            self.chain(&self.leaf_pem(domains, &key)),
            key.serialize_pem(),
        )
    }
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::days(30);
    p.not_after = now + Duration::days(3650);
    p
}

/// An ECDSA P-384 key.
pub fn p384_key() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap()
}

/// An RSA key of `bits` as PKCS#8 PEM. ring cannot generate RSA keys, so the openssl
/// command line makes it; a missing openssl fails the test loudly.
pub fn rsa_key_pem(bits: u32) -> String {
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            &format!("rsa_keygen_bits:{bits}"),
        ])
        .output()
        .expect("the openssl command is needed to make RSA test keys (apt-get install openssl)");
    assert!(out.status.success(), "openssl genpkey failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}
