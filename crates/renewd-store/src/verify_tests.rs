use rcgen::KeyPair;
use time::{Duration as TDuration, OffsetDateTime};

use super::*;

use crate::test_pki as pki;

fn domains(names: &[&str]) -> Vec<DomainName> {
    names.iter().map(|n| DomainName::new(n).unwrap()).collect()
}

fn expect(d: &[DomainName]) -> Expectations<'_> {
    Expectations {
        domains: d,
        key_type: Some(KeyType::EcdsaP256),
        now: Utc::now(),
        skew: Duration::from_secs(300),
    }
}

#[test]
fn a_good_set_verifies_and_yields_facts() {
    let ca = pki::TestCa::new("Good");
    let key = KeyPair::generate().unwrap();
    let now = OffsetDateTime::now_utc();
    let leaf = ca.leaf_pem_with(
        &["www.example.com", "*.example.com"],
        &key,
        now - TDuration::hours(1),
        now + TDuration::days(90),
        Some(0x0abc_def0),
    );
    let d = domains(&["www.example.com", "*.example.com"]);
    let set = verify_issued(&ca.chain(&leaf), &key.serialize_pem(), &expect(&d)).unwrap();
    let f = set.facts();
    assert_eq!(f.serial_hex(), "abcdef0");
    assert_eq!(
        f.sans().collect::<Vec<_>>(),
        ["www.example.com", "*.example.com"]
    );
    assert_eq!(f.issuer_cn(), Some("Good Intermediate"));
    assert_eq!(f.key_type(), Some(KeyType::EcdsaP256));
    assert!(f.aki().is_some_and(|a| !a.is_empty()));
    let serial: Vec<u8> = f
        .serial_der()
        .iter()
        .copied()
        .skip_while(|b| *b == 0)
        .collect();
    assert_eq!(serial, [0x0a, 0xbc, 0xde, 0xf0]);
    assert!(f.ari_cert_id().unwrap().contains('.'));
    assert!((f.not_after() - Utc::now()).num_days() >= 89);
    // The files: the leaf alone, the intermediate, and both.
    assert_eq!(set.cert_pem().matches("BEGIN CERTIFICATE").count(), 1);
    assert_eq!(set.chain_pem().matches("BEGIN CERTIFICATE").count(), 1);
    assert_eq!(
        set.fullchain_pem(),
        format!("{}{}", set.cert_pem(), set.chain_pem())
    );
}

#[test]
fn p384_and_rsa_keys_verify() {
    let ca = pki::TestCa::new("Keys");
    let d = domains(&["a.example"]);

    let p384 = pki::p384_key();
    let chain = ca.chain(&ca.leaf_pem(&["a.example"], &p384));
    let e = Expectations {
        key_type: Some(KeyType::EcdsaP384),
        ..expect(&d)
    };
    let set = verify_issued(&chain, &p384.serialize_pem(), &e).unwrap();
    assert_eq!(set.facts().key_type(), Some(KeyType::EcdsaP384));

    let rsa_pem = pki::rsa_key_pem(2048);
    let rsa = KeyPair::from_pem(&rsa_pem).unwrap();
    let chain = ca.chain(&ca.leaf_pem(&["a.example"], &rsa));
    let e = Expectations {
        key_type: Some(KeyType::Rsa2048),
        ..expect(&d)
    };
    let set = verify_issued(&chain, &rsa_pem, &e).unwrap();
    assert_eq!(set.facts().key_type(), Some(KeyType::Rsa2048));
    // The same RSA certificate with another RSA key is refused.
    let other = pki::rsa_key_pem(2048);
    assert_eq!(
        verify_issued(&chain, &other, &e).unwrap_err(),
        VerifyError::KeyMismatch
    );
}

#[test]
fn rejects_the_wrong_key() {
    let ca = pki::TestCa::new("K");
    let d = domains(&["a.example"]);
    let (chain, _) = ca.issue(&["a.example"]);
    let other = KeyPair::generate().unwrap().serialize_pem();
    assert_eq!(
        verify_issued(&chain, &other, &expect(&d)).unwrap_err(),
        VerifyError::KeyMismatch
    );
    // A key of another type altogether.
    let p384 = pki::p384_key().serialize_pem();
    assert_eq!(
        verify_issued(&chain, &p384, &expect(&d)).unwrap_err(),
        VerifyError::KeyMismatch
    );
    assert!(matches!(
        verify_issued(&chain, "not a key", &expect(&d)).unwrap_err(),
        VerifyError::BadKey(_)
    ));
}

#[test]
fn rejects_a_wrong_key_type() {
    let ca = pki::TestCa::new("T");
    let d = domains(&["a.example"]);
    let (chain, key) = ca.issue(&["a.example"]);
    let e = Expectations {
        key_type: Some(KeyType::EcdsaP384),
        ..expect(&d)
    };
    assert!(matches!(
        verify_issued(&chain, &key, &e).unwrap_err(),
        VerifyError::WrongKeyType { expected: KeyType::EcdsaP384, ref found } if found == "ecdsa-p256"
    ));
}

#[test]
fn rejects_a_missing_name() {
    let ca = pki::TestCa::new("N");
    let (chain, key) = ca.issue(&["www.example.com", "*.example.com"]);
    for missing in ["example.com", "api.example.com", "*.www.example.com"] {
        let d = domains(&["www.example.com", missing]);
        assert_eq!(
            verify_issued(&chain, &key, &expect(&d)).unwrap_err(),
            VerifyError::MissingName(DomainName::new(missing).unwrap()),
            "{missing}"
        );
    }
}

#[test]
fn rejects_bad_dates() {
    let ca = pki::TestCa::new("D");
    let d = domains(&["a.example"]);
    let key = KeyPair::generate().unwrap();
    let pem = key.serialize_pem();
    let now = OffsetDateTime::now_utc();
    let mk = |nb, na| ca.chain(&ca.leaf_pem_with(&["a.example"], &key, nb, na, None));

    let expired = mk(now - TDuration::days(90), now - TDuration::minutes(1));
    assert!(matches!(
        verify_issued(&expired, &pem, &expect(&d)).unwrap_err(),
        VerifyError::Expired { .. }
    ));
    let future = mk(now + TDuration::hours(1), now + TDuration::days(90));
    assert!(matches!(
        verify_issued(&future, &pem, &expect(&d)).unwrap_err(),
        VerifyError::NotYetValid { .. }
    ));
    // Within the allowed skew it is fine.
    let slightly = mk(now + TDuration::minutes(2), now + TDuration::days(90));
    verify_issued(&slightly, &pem, &expect(&d)).unwrap();
    let inverted = mk(now + TDuration::days(2), now + TDuration::days(1));
    let err = verify_issued(&inverted, &pem, &expect(&d)).unwrap_err();
    assert!(matches!(err, VerifyError::InvertedValidity { .. }));
    // Not valid yet or expired by our clock: the clock is the suspect, not the CA; an
    // inverted validity is the CA's.
    for (chain, ours) in [(&expired, true), (&future, true), (&inverted, false)] {
        let err = verify_issued(chain, &pem, &expect(&d)).unwrap_err();
        assert_eq!(err.blames_our_clock(), ours, "{err}");
        let class = crate::StoreError::Verify(err).failure_class();
        let want = if ours {
            renewd_core::FailureClass::Local
        } else {
            renewd_core::FailureClass::CaUnavailable
        };
        assert_eq!(class, want);
    }
}

#[test]
fn rejects_garbage() {
    let d = domains(&["a.example"]);
    let key = KeyPair::generate().unwrap().serialize_pem();
    let e = expect(&d);
    assert_eq!(
        verify_issued("", &key, &e).unwrap_err(),
        VerifyError::NoCertificate
    );
    assert_eq!(
        verify_issued("<html><body>502 Bad Gateway</body></html>", &key, &e).unwrap_err(),
        VerifyError::NoCertificate
    );
    assert!(matches!(
        verify_issued(
            "-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n",
            &key,
            &e
        )
        .unwrap_err(),
        VerifyError::BadPem(_)
    ));
    assert!(matches!(
        verify_issued(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            &key,
            &e
        )
        .unwrap_err(),
        VerifyError::BadCertificate { index: 0, .. }
    ));
    let ca = pki::TestCa::new("G");
    let (chain, key) = ca.issue(&["a.example"]);
    let truncated = &chain[..chain.len() - 40];
    assert!(verify_issued(truncated, &key, &e).is_err());
}

#[test]
fn rejects_a_broken_chain() {
    let ca = pki::TestCa::new("C");
    let d = domains(&["a.example"]);
    let key = KeyPair::generate().unwrap();
    let pem = key.serialize_pem();
    let leaf = ca.leaf_pem(&["a.example"], &key);

    // Root instead of the intermediate: the names do not link.
    let skipped = format!("{leaf}{}", ca.root_pem);
    assert!(matches!(
        verify_issued(&skipped, &pem, &expect(&d)).unwrap_err(),
        VerifyError::BrokenChain { index: 0, .. }
    ));
    // Out of order: leaf, root, intermediate.
    let shuffled = format!("{leaf}{}{}", ca.root_pem, ca.intermediate_pem);
    assert!(matches!(
        verify_issued(&shuffled, &pem, &expect(&d)).unwrap_err(),
        VerifyError::BrokenChain { index: 0, .. }
    ));
    // Reversed: the intermediate first is not the key's certificate.
    let reversed = format!("{}{leaf}", ca.intermediate_pem);
    assert!(verify_issued(&reversed, &pem, &expect(&d)).is_err());
    // Same names, another key: the signature gives it away.
    let impostor = format!("{leaf}{}", ca.impostor_pem);
    assert!(matches!(
        verify_issued(&impostor, &pem, &expect(&d)).unwrap_err(),
        VerifyError::BrokenChain { index: 0, reason } if reason.contains("signature")
    ));
    // And the full, ordered chain up to the root is fine.
    let full = format!("{leaf}{}{}", ca.intermediate_pem, ca.root_pem);
    verify_issued(&full, &pem, &expect(&d)).unwrap();
}
