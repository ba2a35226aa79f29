//! A throwaway ES256 account key for tests (generated per test, never stored).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub struct Signer {
    key: SigningKey,
}

impl Signer {
    pub fn generate() -> Signer {
        loop {
            let mut seed = [0u8; 32];
            SystemRandom::new().fill(&mut seed).expect("system random");
            if let Ok(key) = SigningKey::from_slice(&seed) {
                return Signer { key };
            }
        }
    }

    pub fn jwk(&self) -> Value {
        let point = self.key.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        json!({
            "crv": "P-256",
            "kty": "EC",
            "x": URL_SAFE_NO_PAD.encode(&bytes[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&bytes[33..65]),
        })
    }

    pub fn thumbprint(&self) -> String {
        let jwk = self.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().expect("x"),
            jwk["y"].as_str().expect("y")
        );
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// A flattened JWS; `payload` `None` is POST-as-GET.
    pub fn sign(&self, header: &Value, payload: Option<&Value>) -> Value {
        let protected = URL_SAFE_NO_PAD.encode(header.to_string());
        let payload = payload.map_or(String::new(), |p| URL_SAFE_NO_PAD.encode(p.to_string()));
        let sig: Signature = self.key.sign(format!("{protected}.{payload}").as_bytes());
        json!({
            "protected": protected,
            "payload": payload,
            "signature": URL_SAFE_NO_PAD.encode(sig.to_bytes()),
        })
    }

    /// The key as PKCS#8 DER (to build a CSR or a certificate key from it).
    pub fn pkcs8_der(&self) -> Vec<u8> {
        use p256::pkcs8::EncodePrivateKey;
        self.key.to_pkcs8_der().expect("pkcs8").as_bytes().to_vec()
    }
}
