//! Checking an issued certificate chain the way a TLS client would, and more strictly.

use rcgen::{KeyPair, PublicKeyData};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::prelude::*;

fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.unwrap())
        .collect()
}

/// Checks an issued chain: it verifies up to a root in `root_pem` (rustls-webpki, server
/// auth, now), the leaf is valid for each name (a wildcard for one label under it) and holds
/// exactly those SANs, and its public key is the one of `key_pem` (a PKCS#8 PEM private
/// key). Panics naming the first check that fails.
pub fn verify_chain(chain_pem: &str, root_pem: &str, names: &[&str], key_pem: &str) {
    let chain = certs(chain_pem);
    assert!(chain.len() >= 2, "leaf and at least one intermediate");
    let roots = certs(root_pem);
    let anchors: Vec<_> = roots
        .iter()
        .map(|r| webpki::anchor_from_trusted_cert(r).unwrap().to_owned())
        .collect();
    let leaf = webpki::EndEntityCert::try_from(&chain[0]).unwrap();
    let algs = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;
    leaf.verify_for_usage(
        algs,
        &anchors,
        &chain[1..],
        UnixTime::now(),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .expect("the chain verifies against the given root");
    for name in names {
        // A wildcard covers any single label: check one.
        let concrete = match name.strip_prefix("*.") {
            Some(base) => format!("any.{base}"),
            None => name.to_string(),
        };
        leaf.verify_is_valid_for_subject_name(&ServerName::try_from(concrete).unwrap())
            .unwrap_or_else(|e| panic!("not valid for {name}: {e:?}"));
    }
    let (_, x509) = X509Certificate::from_der(&chain[0]).unwrap();
    let mut sans: Vec<String> = x509
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => d.to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    sans.sort();
    let mut want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    want.sort();
    assert_eq!(sans, want, "SANs are exactly the ordered names");
    let key = KeyPair::from_pem(key_pem).expect("the certificate key is a PKCS#8 PEM key");
    assert_eq!(
        x509.public_key().raw,
        key.subject_public_key_info().as_slice(),
        "the leaf holds the certificate key"
    );
}

/// The DER of the leaf (the first certificate) of a PEM chain.
pub fn leaf_der(chain_pem: &str) -> Vec<u8> {
    certs(chain_pem)[0].to_vec()
}
