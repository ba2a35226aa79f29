//! A throwaway TLS root and a loopback server certificate, generated at run time.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// A root certificate and a leaf for `localhost`, `127.0.0.1` and `::1` signed by it,
/// written as PEM files into a directory.
#[derive(Debug, Clone)]
pub struct ThrowawayTls {
    /// The root certificate (PEM), to be trusted by clients.
    pub root_pem: PathBuf,
    /// The leaf certificate (PEM).
    pub cert_pem: PathBuf,
    /// The leaf's private key (PKCS#8 PEM).
    pub key_pem: PathBuf,
}

impl ThrowawayTls {
    /// Generates the root and leaf and writes `root.pem`, `localhost.pem`, `localhost.key`
    /// into `dir`.
    pub fn generate(dir: &Path) -> ThrowawayTls {
        let root_key = KeyPair::generate().unwrap();
        let mut root = CertificateParams::new(Vec::<String>::new()).unwrap();
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        root.distinguished_name
            .push(DnType::CommonName, "renewd test root");
        let root_cert = root.self_signed(&root_key).unwrap();
        let issuer = Issuer::new(root, root_key);

        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ])
        .unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

        let tls = ThrowawayTls {
            root_pem: dir.join("root.pem"),
            cert_pem: dir.join("localhost.pem"),
            key_pem: dir.join("localhost.key"),
        };
        std::fs::write(&tls.root_pem, root_cert.pem()).unwrap();
        std::fs::write(&tls.cert_pem, leaf_cert.pem()).unwrap();
        std::fs::write(&tls.key_pem, leaf_key.serialize_pem()).unwrap();
        tls
    }
}
