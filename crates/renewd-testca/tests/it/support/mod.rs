//! What the integration tests share: a raw ACME client, a throwaway signer, helpers.

pub mod client;
pub mod peers;
pub mod signer;

use std::time::Duration;

use renewd_testca::{ChallengeMode, TestCa, TestCaBuilder, TestCaHandle, Validators};

pub use renewd_testsupport::free_port;

/// A CA with test-friendly defaults.
pub fn builder() -> TestCaBuilder {
    TestCa::builder().poll_retry_after(Duration::from_secs(1))
}

pub async fn start() -> TestCaHandle {
    builder().start().await.expect("test CA starts")
}

/// A CA with test-friendly defaults that validates challenges for real, with `validators`.
pub async fn start_validating(validators: Validators) -> TestCaHandle {
    builder()
        .challenge_mode(ChallengeMode::Validate(validators))
        .start()
        .await
        .expect("start")
}

/// Parses a PEM certificate chain into DER certificates.
pub fn pem_certs(pem: &str) -> Vec<Vec<u8>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.expect("PEM").to_vec())
        .collect()
}

/// Asserts that `chain` (leaf first) verifies up to `root`, signature by signature.
pub fn assert_chains_to(chain: &[Vec<u8>], root: &[u8]) {
    let mut all: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
    all.push(root);
    for pair in all.windows(2) {
        let (_, child) = x509_parser::parse_x509_certificate(pair[0]).expect("child");
        let (_, parent) = x509_parser::parse_x509_certificate(pair[1]).expect("parent");
        child
            .verify_signature(Some(parent.public_key()))
            .expect("signature verifies");
        assert_eq!(child.issuer(), parent.subject());
    }
}
