use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::test_signer::TestSigner;
use super::*;

const URL: &str = "https://127.0.0.1:1/acme/new-order";

fn no_kid(_: &str) -> Result<(u64, Jwk), Problem> {
    Err(Problem::account_does_not_exist("no accounts in this test"))
}

fn body(signer: &TestSigner, nonce: &str, url: &str) -> Vec<u8> {
    let header = json!({"alg": "ES256", "nonce": nonce, "url": url, "jwk": signer.jwk_value()});
    signer
        .sign(&header, Some(&json!({"hello": 1})))
        .to_string()
        .into_bytes()
}

#[test]
fn a_good_request_verifies_and_yields_the_payload() {
    let signer = TestSigner::new();
    let nonces = NoncePool::default();
    let v = verify_request(
        &body(&signer, &nonces.issue(), URL),
        URL,
        KeyRule::Jwk,
        &nonces,
        no_kid,
    )
    .expect("verifies");
    assert_eq!(v.signer, Signer::Jwk(signer.jwk()));
    assert_eq!(v.json().expect("json")["hello"], 1);
}

#[test]
fn a_bad_signature_is_rejected() {
    let signer = TestSigner::new();
    let other = TestSigner::new();
    let nonces = NoncePool::default();
    // Signed by `other` but naming `signer`'s key.
    let header =
        json!({"alg": "ES256", "nonce": nonces.issue(), "url": URL, "jwk": signer.jwk_value()});
    let jws = other.sign(&header, Some(&json!({})));
    let err = verify_request(
        jws.to_string().as_bytes(),
        URL,
        KeyRule::Jwk,
        &nonces,
        no_kid,
    )
    .expect_err("must fail");
    assert_eq!(err.kind, "malformed");
    assert!(err.detail.contains("signature"), "{}", err.detail);
}

#[test]
fn a_tampered_payload_is_rejected() {
    let signer = TestSigner::new();
    let nonces = NoncePool::default();
    let mut jws: Value =
        serde_json::from_slice(&body(&signer, &nonces.issue(), URL)).expect("json");
    jws["payload"] = json!(URL_SAFE_NO_PAD.encode(r#"{"hello":2}"#));
    let err = verify_request(
        jws.to_string().as_bytes(),
        URL,
        KeyRule::Jwk,
        &nonces,
        no_kid,
    )
    .expect_err("must fail");
    assert!(err.detail.contains("signature"), "{}", err.detail);
}

#[test]
fn a_wrong_url_is_unauthorized() {
    let signer = TestSigner::new();
    let nonces = NoncePool::default();
    let other_url = "https://127.0.0.1:1/acme/new-account";
    let err = verify_request(
        &body(&signer, &nonces.issue(), other_url),
        URL,
        KeyRule::Jwk,
        &nonces,
        no_kid,
    )
    .expect_err("must fail");
    assert_eq!(err.kind, "unauthorized");
    assert_eq!(err.status, http::StatusCode::FORBIDDEN);
}

#[test]
fn a_reused_nonce_is_bad_nonce() {
    let signer = TestSigner::new();
    let nonces = NoncePool::default();
    let nonce = nonces.issue();
    verify_request(
        &body(&signer, &nonce, URL),
        URL,
        KeyRule::Jwk,
        &nonces,
        no_kid,
    )
    .expect("first use verifies");
    let err = verify_request(
        &body(&signer, &nonce, URL),
        URL,
        KeyRule::Jwk,
        &nonces,
        no_kid,
    )
    .expect_err("second use must fail");
    assert_eq!(err.kind, "badNonce");
    let err = verify_request(
        &body(&signer, "made-up", URL),
        URL,
        KeyRule::Jwk,
        &nonces,
        no_kid,
    )
    .expect_err("unknown nonce must fail");
    assert_eq!(err.kind, "badNonce");
}

fn refused(header: Value, signer: &TestSigner, rule: KeyRule, nonces: &NoncePool) -> Problem {
    let jws = signer.sign(&header, Some(&json!({})));
    verify_request(jws.to_string().as_bytes(), URL, rule, nonces, no_kid).expect_err("refused")
}

#[test]
fn other_algorithms_and_key_forms_are_refused() {
    let signer = TestSigner::new();
    let nonces = NoncePool::default();
    let jwk = signer.jwk_value();
    let header = json!({"alg": "HS256", "nonce": nonces.issue(), "url": URL, "jwk": jwk});
    let err = refused(header, &signer, KeyRule::Jwk, &nonces);
    assert_eq!(err.kind, "badSignatureAlgorithm");
    assert_eq!(err.to_json()["algorithms"], json!(["ES256", "RS256"]));

    let header = json!({"alg": "RS256", "nonce": nonces.issue(), "url": URL, "jwk": jwk});
    let err = refused(header, &signer, KeyRule::Jwk, &nonces);
    assert_eq!(
        err.kind, "badSignatureAlgorithm",
        "RS256 does not fit an EC key"
    );

    let header = json!({"alg": "ES256", "nonce": nonces.issue(), "url": URL, "jwk": jwk});
    let err = refused(header, &signer, KeyRule::Kid, &nonces);
    assert_eq!(err.kind, "malformed", "jwk where a kid is needed");
}

#[test]
fn kid_requests_use_the_account_key() {
    let signer = TestSigner::new();
    let nonces = NoncePool::default();
    let kid = "https://127.0.0.1:1/acme/acct/7";
    let header = json!({"alg": "ES256", "nonce": nonces.issue(), "url": URL, "kid": kid});
    let jws = signer.sign(&header, None);
    let jwk = signer.jwk();
    let v = verify_request(
        jws.to_string().as_bytes(),
        URL,
        KeyRule::Kid,
        &nonces,
        |k| {
            assert_eq!(k, kid);
            Ok((7, jwk))
        },
    )
    .expect("verifies");
    assert_eq!(v.signer, Signer::Account(7));
    assert!(v.is_post_as_get());
}

#[test]
fn thumbprint_hashes_the_canonical_ec_members() {
    let jwk = Jwk::P256 {
        x: "AAAA".into(),
        y: "BBBB".into(),
    };
    let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(
        br#"{"crv":"P-256","kty":"EC","x":"AAAA","y":"BBBB"}"#,
    ));
    assert_eq!(jwk.thumbprint(), expected);
}
