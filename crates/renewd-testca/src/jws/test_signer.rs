//! A throwaway ES256 signer for unit tests (keys generated per test, never stored).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};

use super::Jwk;

pub(crate) struct TestSigner {
    key: SigningKey,
}

impl TestSigner {
    pub fn new() -> TestSigner {
        loop {
            let seed = crate::random::bytes::<32>();
            if let Ok(key) = SigningKey::from_slice(&seed) {
                return TestSigner { key };
            }
        }
    }

    pub fn jwk_value(&self) -> Value {
        let point = self.key.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&bytes[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&bytes[33..65]),
        })
    }

    pub fn jwk(&self) -> Jwk {
        Jwk::from_value(&self.jwk_value()).expect("our own key is a valid JWK")
    }

    /// A flattened JWS of `payload` (`None`: POST-as-GET) under `header`.
    pub fn sign(&self, header: &Value, payload: Option<&Value>) -> Value {
        let protected = URL_SAFE_NO_PAD.encode(header.to_string());
        let payload = match payload {
            Some(p) => URL_SAFE_NO_PAD.encode(p.to_string()),
            None => String::new(),
        };
        let sig: Signature = self.key.sign(format!("{protected}.{payload}").as_bytes());
        json!({
            "protected": protected,
            "payload": payload,
            "signature": URL_SAFE_NO_PAD.encode(sig.to_bytes()),
        })
    }
}
