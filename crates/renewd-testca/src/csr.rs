//! Finalize's CSR checks: it parses, its signature verifies, and its names are exactly the
//! order's identifiers (RFC 8555 §7.4). Any failure is `badCSR`.

use std::collections::BTreeSet;

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::response::Problem;

/// A CSR that passed the checks.
#[derive(Debug, Clone)]
pub(crate) struct CheckedCsr {
    /// The requested key, as a DER SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
}

/// Checks `der` against the order's identifiers (lower-case DNS names).
pub(crate) fn check_csr(der: &[u8], identifiers: &BTreeSet<String>) -> Result<CheckedCsr, Problem> {
    let (rest, csr) = X509CertificationRequest::from_der(der)
        .map_err(|_| Problem::bad_csr("CSR does not parse"))?;
    if !rest.is_empty() {
        return Err(Problem::bad_csr("trailing bytes after the CSR"));
    }
    csr.verify_signature()
        .map_err(|_| Problem::bad_csr("CSR signature does not verify"))?;
    let mut names = BTreeSet::new();
    if let Some(extensions) = csr.requested_extensions() {
        for ext in extensions {
            if let ParsedExtension::SubjectAlternativeName(san) = ext {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(n) => {
                            names.insert(n.to_ascii_lowercase());
                        }
                        other => {
                            return Err(Problem::bad_csr(format!(
                                "unsupported subjectAltName {other}"
                            )));
                        }
                    }
                }
            }
        }
    }
    let info = &csr.certification_request_info;
    for cn in info.subject.iter_common_name() {
        let cn = cn
            .as_str()
            .map_err(|_| Problem::bad_csr("common name is not a string"))?
            .to_ascii_lowercase();
        if !identifiers.contains(&cn) {
            return Err(Problem::bad_csr(format!(
                "common name {cn:?} is not an identifier of the order"
            )));
        }
        names.insert(cn);
    }
    if &names != identifiers {
        let missing: Vec<_> = identifiers.difference(&names).collect();
        let extra: Vec<_> = names.difference(identifiers).collect();
        return Err(Problem::bad_csr(format!(
            "CSR names differ from the order's identifiers (missing {missing:?}, extra {extra:?})"
        )));
    }
    Ok(CheckedCsr {
        spki_der: info.subject_pki.raw.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DistinguishedName, KeyPair};

    use super::*;

    fn csr(names: &[&str]) -> Vec<u8> {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
        // rcgen's default subject is CN "rcgen self signed cert", which is no identifier.
        params.distinguished_name = DistinguishedName::new();
        params.serialize_request(&key).expect("csr").der().to_vec()
    }

    fn ids(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_names_pass_and_others_are_bad_csr() {
        let der = csr(&["a.example", "b.example"]);
        assert!(check_csr(&der, &ids(&["a.example", "b.example"])).is_ok());
        let err = check_csr(&der, &ids(&["a.example"])).expect_err("extra name");
        assert_eq!(err.kind, "badCSR");
        let err = check_csr(&der, &ids(&["a.example", "b.example", "c.example"]))
            .expect_err("missing name");
        assert_eq!(err.kind, "badCSR");
    }

    #[test]
    fn a_common_name_outside_the_identifiers_is_bad_csr() {
        let key = KeyPair::generate().expect("key");
        let params = CertificateParams::new(vec!["a.example".to_owned()]).expect("params");
        let der = params.serialize_request(&key).expect("csr").der().to_vec();
        let err = check_csr(&der, &ids(&["a.example"])).expect_err("rcgen's default CN");
        assert!(err.detail.contains("common name"), "{}", err.detail);
    }

    #[test]
    fn a_corrupted_signature_is_bad_csr() {
        let mut der = csr(&["a.example"]);
        let last = der.len() - 1;
        der[last] ^= 0x01;
        let err = check_csr(&der, &ids(&["a.example"])).expect_err("bad signature");
        assert_eq!(err.kind, "badCSR");
        assert!(check_csr(b"junk", &ids(&["a.example"])).is_err());
    }
}
