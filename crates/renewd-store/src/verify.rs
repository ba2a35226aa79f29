//! Verification of an issued certificate before anything is installed: the chain parses and
//! links, the leaf matches the private key and the configured names, and its dates are sane.
//! A certificate that fails is rejected with a [`VerifyError`]; the old set stays live.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use renewd_core::{DomainName, KeyType};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::der::{PublicKeyBits, pem_blocks, pem_encode};
use crate::error::VerifyError;
use crate::facts::{CertFacts, Interner, facts_of};

/// What the issued certificate must satisfy.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    /// Every configured domain must be among the leaf's SANs (wildcards match exactly).
    pub domains: &'a [DomainName],
    /// The configured key type, when it should be checked.
    pub key_type: Option<KeyType>,
    /// The time to check validity against.
    pub now: DateTime<Utc>,
    /// How far in the future notBefore may be (the CA's clock may run ahead).
    pub skew: Duration,
}

/// A verified certificate set, ready to install: the four files' contents and the facts.
#[derive(Debug, Clone)]
pub struct VerifiedSet {
    pub(crate) facts: CertFacts,
    pub(crate) cert_pem: String,
    pub(crate) chain_pem: String,
    pub(crate) fullchain_pem: String,
    pub(crate) key_pem: String,
}

impl VerifiedSet {
    /// The leaf's facts.
    pub fn facts(&self) -> &CertFacts {
        &self.facts
    }

    /// `cert.pem`: the leaf alone.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// `chain.pem`: the intermediates (possibly empty).
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// `fullchain.pem`: the leaf followed by the intermediates.
    pub fn fullchain_pem(&self) -> &str {
        &self.fullchain_pem
    }
}

/// Checks an issued chain (`chain_pem`: leaf first, then intermediates, as ACME downloads
/// it) against its private key (`key_pem`, PKCS#8 ECDSA P-256/P-384 or RSA) and
/// `expect`.
pub fn verify_issued(
    chain_pem: &str,
    key_pem: &str,
    expect: &Expectations<'_>,
) -> Result<VerifiedSet, VerifyError> {
    let blocks = pem_blocks(chain_pem).map_err(VerifyError::BadPem)?;
    let ders: Vec<&[u8]> = blocks
        .iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| b.der.as_slice())
        .collect();
    if ders.is_empty() {
        return Err(VerifyError::NoCertificate);
    }
    let mut certs = Vec::with_capacity(ders.len());
    for (index, der) in ders.iter().enumerate() {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| VerifyError::BadCertificate {
                index,
                reason: e.to_string(),
            })?;
        certs.push(cert);
    }
    let leaf = facts_of(&certs[0], &mut Interner::default());

    check_key(&certs[0], leaf.public_key.as_ref(), key_pem)?;
    if let Some(expected) = expect.key_type
        && leaf.facts.key_type() != Some(expected)
    {
        return Err(VerifyError::WrongKeyType {
            expected,
            found: leaf
                .public_key
                .as_ref()
                .map_or_else(|| "unknown".to_string(), PublicKeyBits::describe),
        });
    }
    for domain in expect.domains {
        if !leaf.facts.covers(domain.as_str()) {
            return Err(VerifyError::MissingName(domain.clone()));
        }
    }
    check_dates(&leaf.facts, expect)?;
    for (index, pair) in certs.windows(2).enumerate() {
        let (child, parent) = (&pair[0], &pair[1]);
        if child.issuer().as_raw() != parent.subject().as_raw() {
            return Err(VerifyError::BrokenChain {
                index,
                reason: "its issuer name is not the next certificate's subject",
            });
        }
        if child.verify_signature(Some(parent.public_key())).is_err() {
            return Err(VerifyError::BrokenChain {
                index,
                reason: "its signature does not verify with the next certificate's key",
            });
        }
    }

    let cert_pem = pem_encode("CERTIFICATE", ders[0]);
    let chain_pem: String = ders[1..]
        .iter()
        .map(|d| pem_encode("CERTIFICATE", d))
        .collect();
    let mut key_pem = key_pem.trim().to_string();
    key_pem.push('\n');
    Ok(VerifiedSet {
        facts: leaf.facts,
        fullchain_pem: format!("{cert_pem}{chain_pem}"),
        cert_pem,
        chain_pem,
        key_pem,
    })
}

/// The leaf's public key must be the private key's. ring loads the key (proving its
/// private and public halves belong together), and its public half must equal the
/// certificate's, curve included.
fn check_key(
    leaf: &X509Certificate<'_>,
    leaf_key: Option<&PublicKeyBits>,
    key_pem: &str,
) -> Result<(), VerifyError> {
    let pair = rcgen::KeyPair::from_pem(key_pem).map_err(|e| {
        VerifyError::BadKey(format!(
            "{e} (expected a PKCS#8 \"PRIVATE KEY\": ECDSA P-256/P-384 or RSA)"
        ))
    })?;
    if pair.public_key_raw() != &*leaf.public_key().subject_public_key.data {
        return Err(VerifyError::KeyMismatch);
    }
    let blocks = pem_blocks(key_pem).map_err(VerifyError::BadKey)?;
    let from_key = blocks
        .iter()
        .find_map(|b| PublicKeyBits::from_private_der(b.label, &b.der));
    if from_key.is_none() || from_key.as_ref() != leaf_key {
        return Err(VerifyError::KeyMismatch);
    }
    Ok(())
}

fn check_dates(facts: &CertFacts, expect: &Expectations<'_>) -> Result<(), VerifyError> {
    let (nb, na, now) = (facts.not_before(), facts.not_after(), expect.now);
    if na <= nb {
        return Err(VerifyError::InvertedValidity {
            not_before: nb.to_rfc3339(),
            not_after: na.to_rfc3339(),
        });
    }
    let skew = TimeDelta::from_std(expect.skew).unwrap_or(TimeDelta::zero());
    if nb > now + skew {
        return Err(VerifyError::NotYetValid {
            not_before: nb.to_rfc3339(),
            now: now.to_rfc3339(),
        });
    }
    if na <= now {
        return Err(VerifyError::Expired {
            not_after: na.to_rfc3339(),
            now: now.to_rfc3339(),
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
