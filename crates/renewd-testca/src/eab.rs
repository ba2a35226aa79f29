//! External account binding (RFC 8555 §7.3.4): the HS256 JWS inside a newAccount payload.

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::jws::{FlattenedJws, Jwk, b64};
use crate::response::Problem;

/// Checks the binding `eab` of a newAccount request signed with `account_key` and sent to
/// `url`, against the MAC keys by key id. Returns the key id it was made with.
pub(crate) fn verify_eab(
    eab: &Value,
    account_key: &Jwk,
    url: &str,
    mac_keys: &BTreeMap<String, Vec<u8>>,
) -> Result<String, Problem> {
    let jws = FlattenedJws::from_value(eab)?;
    let header = jws.header()?;
    if header.alg.as_deref() != Some("HS256") {
        return Err(Problem::bad_signature_algorithm(
            "externalAccountBinding must use HS256",
        ));
    }
    if header.nonce.is_some() {
        return Err(Problem::malformed(
            "externalAccountBinding must not carry a nonce",
        ));
    }
    if header.url.as_deref() != Some(url) {
        return Err(Problem::unauthorized(
            "externalAccountBinding url is not the newAccount URL",
        ));
    }
    let kid = header
        .kid
        .ok_or_else(|| Problem::malformed("externalAccountBinding has no kid"))?;
    let key = mac_keys
        .get(&kid)
        .ok_or_else(|| Problem::unauthorized(format!("unknown EAB key id {kid:?}")))?;
    let bound: Value = serde_json::from_slice(&jws.payload_bytes()?)
        .map_err(|_| Problem::malformed("externalAccountBinding payload is not a JWK"))?;
    if Jwk::from_value(&bound).ok().as_ref() != Some(account_key) {
        return Err(Problem::unauthorized(
            "externalAccountBinding binds another key than the account's",
        ));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .map_err(|_| Problem::server_internal("EAB MAC key unusable"))?;
    mac.update(format!("{}.{}", jws.protected, jws.payload).as_bytes());
    mac.verify_slice(&b64(&jws.signature)?)
        .map_err(|_| Problem::unauthorized("externalAccountBinding MAC does not verify"))?;
    Ok(kid)
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    use super::*;
    use crate::jws::test_signer::TestSigner;

    const URL: &str = "https://127.0.0.1:1/acme/new-account";

    fn eab(kid: &str, key: &[u8], url: &str, jwk: &Value) -> Value {
        let protected =
            URL_SAFE_NO_PAD.encode(json!({"alg":"HS256","kid":kid,"url":url}).to_string());
        let payload = URL_SAFE_NO_PAD.encode(jwk.to_string());
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
        mac.update(format!("{protected}.{payload}").as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        json!({"protected": protected, "payload": payload, "signature": sig})
    }

    fn keys() -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([(
            "kid-1".to_owned(),
            b"secret-mac-key-of-32-bytes-long!".to_vec(),
        )])
    }

    #[test]
    fn a_good_binding_names_its_kid() {
        let signer = TestSigner::new();
        let b = eab(
            "kid-1",
            b"secret-mac-key-of-32-bytes-long!",
            URL,
            &signer.jwk_value(),
        );
        assert_eq!(
            verify_eab(&b, &signer.jwk(), URL, &keys()),
            Ok("kid-1".to_owned())
        );
    }

    #[test]
    fn wrong_key_unknown_kid_other_jwk_and_wrong_url_are_refused() {
        let signer = TestSigner::new();
        let jwk = signer.jwk_value();
        let wrong_mac = eab("kid-1", b"another key", URL, &jwk);
        let unknown = eab("kid-9", b"secret-mac-key-of-32-bytes-long!", URL, &jwk);
        let other_jwk = eab(
            "kid-1",
            b"secret-mac-key-of-32-bytes-long!",
            URL,
            &TestSigner::new().jwk_value(),
        );
        let wrong_url = eab(
            "kid-1",
            b"secret-mac-key-of-32-bytes-long!",
            "https://x/",
            &jwk,
        );
        for b in [wrong_mac, unknown, other_jwk, wrong_url] {
            let err = verify_eab(&b, &signer.jwk(), URL, &keys()).expect_err("refused");
            assert_eq!(err.kind, "unauthorized", "{}", err.detail);
        }
    }
}
