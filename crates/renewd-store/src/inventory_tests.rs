use std::fs;
use std::os::unix::fs::symlink;

use rcgen::KeyPair;

use super::*;

use crate::test_pki as pki;

/// Writes a live set directly (no fsync: these are fixtures, not installs).
fn put_live(root: &Path, name: &str, chain: &str, key: &str) {
    let blocks = crate::der::pem_blocks(chain).unwrap();
    let Some(first) = blocks.first() else {
        // Not PEM at all: written as it is.
        return put_files(root, name, chain, "", chain, key);
    };
    let leaf = crate::der::pem_encode("CERTIFICATE", &first.der);
    let rest: String = blocks[1..]
        .iter()
        .map(|b| crate::der::pem_encode("CERTIFICATE", &b.der))
        .collect();
    put_files(root, name, &leaf, &rest, &format!("{leaf}{rest}"), key);
}

fn put_files(root: &Path, name: &str, cert: &str, chain: &str, fullchain: &str, key: &str) {
    let v = root.join(name).join("archive/1");
    fs::create_dir_all(&v).unwrap();
    fs::write(v.join("cert.pem"), cert).unwrap();
    fs::write(v.join("chain.pem"), chain).unwrap();
    fs::write(v.join("fullchain.pem"), fullchain).unwrap();
    fs::write(v.join("privkey.pem"), key).unwrap();
    symlink("archive/1", root.join(name).join("live")).unwrap();
}

struct Case {
    name: CertName,
    domains: Vec<DomainName>,
    key_type: KeyType,
}

impl Case {
    fn new(name: &str, domains: &[&str], key_type: KeyType) -> Self {
        Self {
            name: CertName::new(name).unwrap(),
            domains: domains
                .iter()
                .map(|d| DomainName::new(d).unwrap())
                .collect(),
            key_type,
        }
    }

    fn spec(&self) -> CertSpec<'_> {
        CertSpec {
            name: &self.name,
            domains: &self.domains,
            key_type: self.key_type,
        }
    }
}

#[test]
fn every_state_is_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let store = CertStore::new(dir.path());
    let root = store.root().to_path_buf();
    let ca = pki::TestCa::new("Scan");
    let p256 = KeyType::EcdsaP256;

    let (chain, key) = ca.issue(&["a.example", "*.a.example"]);
    put_live(&root, "valid", &chain, &key);
    put_live(&root, "names", &chain, &key);
    put_live(&root, "keytype", &chain, &key);
    let other_key = KeyPair::generate().unwrap().serialize_pem();
    put_live(&root, "wrongkey", &chain, &other_key);
    put_live(
        &root,
        "garbage",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        &key,
    );
    put_live(&root, "notpem", "<html>oops</html>", &key);
    put_live(
        &root,
        "badkey",
        &chain,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    put_live(&root, "nochain", &chain, &key);
    fs::remove_file(root.join("nochain/archive/1/chain.pem")).unwrap();
    put_live(&root, "unreadable", &chain, &key);
    let c = root.join("unreadable/archive/1/cert.pem");
    fs::remove_file(&c).unwrap();
    fs::create_dir(&c).unwrap(); // reading a directory fails, even for root
    put_live(&root, "dangling", &chain, &key);
    fs::remove_dir_all(root.join("dangling/archive")).unwrap();
    let rsa_pem = pki::rsa_key_pem(2048);
    let rsa = KeyPair::from_pem(&rsa_pem).unwrap();
    put_live(
        &root,
        "rsa",
        &ca.chain(&ca.leaf_pem(&["r.example"], &rsa)),
        &rsa_pem,
    );

    let cases = [
        Case::new("valid", &["a.example", "*.a.example"], p256),
        Case::new("names", &["a.example", "b.example"], p256),
        Case::new("keytype", &["a.example"], KeyType::EcdsaP384),
        Case::new("wrongkey", &["a.example"], p256),
        Case::new("garbage", &["a.example"], p256),
        Case::new("notpem", &["a.example"], p256),
        Case::new("badkey", &["a.example"], p256),
        Case::new("nochain", &["a.example"], p256),
        Case::new("unreadable", &["a.example"], p256),
        Case::new("dangling", &["a.example"], p256),
        Case::new("never", &["a.example"], p256),
        Case::new("rsa", &["r.example"], KeyType::Rsa2048),
    ];
    let specs: Vec<CertSpec<'_>> = cases.iter().map(Case::spec).collect();
    let states = store.scan(&specs);
    let labels: Vec<&str> = states.iter().map(InstalledState::label).collect();
    assert_eq!(
        labels,
        [
            "valid",
            "mismatch",
            "mismatch",
            "mismatch",
            "corrupt",
            "corrupt",
            "corrupt",
            "corrupt",
            "unreadable",
            "missing",
            "missing",
            "valid"
        ]
    );
    let facts = states[0].facts().unwrap();
    assert_eq!(
        facts.sans().collect::<Vec<_>>(),
        ["a.example", "*.a.example"]
    );
    assert_eq!(facts.issuer_cn(), Some("Scan Intermediate"));
    assert!(facts.ari_cert_id().is_some());
    assert_eq!(states[0].renewal_reason(), None);
    assert_eq!(
        states[1],
        InstalledState::Mismatch {
            facts: facts.clone(),
            kind: Mismatch::NamesChanged {
                missing: vec![DomainName::new("b.example").unwrap()]
            }
        }
    );
    assert!(matches!(
        &states[2],
        InstalledState::Mismatch {
            kind: Mismatch::KeyTypeChanged {
                expected: KeyType::EcdsaP384,
                found: Some(KeyType::EcdsaP256)
            },
            ..
        }
    ));
    assert!(matches!(
        &states[3],
        InstalledState::Mismatch {
            kind: Mismatch::KeyDoesNotMatch,
            ..
        }
    ));
    assert!(matches!(
        &states[4],
        InstalledState::Corrupt {
            file: "cert.pem",
            ..
        }
    ));
    assert!(matches!(
        &states[6],
        InstalledState::Corrupt {
            file: "privkey.pem",
            ..
        }
    ));
    assert!(matches!(
        &states[7],
        InstalledState::Corrupt {
            file: "chain.pem",
            ..
        }
    ));
    assert!(matches!(
        &states[8],
        InstalledState::Unreadable {
            file: "cert.pem",
            ..
        }
    ));
    assert_eq!(states[9].renewal_reason(), Some(RenewalReason::Missing));
    assert_eq!(states[4].renewal_reason(), Some(RenewalReason::Corrupt));
    assert_eq!(states[3].renewal_reason(), Some(RenewalReason::Mismatch));
    assert_eq!(
        states[11].facts().unwrap().key_type(),
        Some(KeyType::Rsa2048)
    );
    // The one-certificate form agrees.
    assert_eq!(store.scan_one(&specs[3]), states[3]);
}

#[test]
fn a_parallel_scan_keeps_the_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = CertStore::new(dir.path());
    let ca = pki::TestCa::new("Order");
    let key = KeyPair::generate().unwrap();
    let key_pem = key.serialize_pem();
    // More than two chunks; every third certificate is missing.
    let n = 700;
    let cases: Vec<Case> = (0..n)
        .map(|i| {
            Case::new(
                &format!("c{i}"),
                &[&format!("c{i}.example")],
                KeyType::EcdsaP256,
            )
        })
        .collect();
    for (i, c) in cases.iter().enumerate() {
        if i % 3 != 0 {
            let d = c.domains[0].as_str();
            put_live(
                store.root(),
                c.name.as_str(),
                &ca.chain(&ca.leaf_pem(&[d], &key)),
                &key_pem,
            );
        }
    }
    let specs: Vec<CertSpec<'_>> = cases.iter().map(Case::spec).collect();
    let states = store.scan(&specs);
    assert_eq!(states.len(), n);
    for (i, (c, s)) in cases.iter().zip(&states).enumerate() {
        if i % 3 == 0 {
            assert_eq!(*s, InstalledState::Missing, "{i}");
        } else {
            let f = s.facts().unwrap_or_else(|| panic!("{i}: {s:?}"));
            assert_eq!(f.sans().next(), Some(c.domains[0].as_str()), "{i}");
            assert_eq!(s.label(), "valid");
        }
    }
    assert!(store.scan(&[]).is_empty());
}
