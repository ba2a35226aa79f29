//! JSON Web Signatures as ACME uses them (RFC 8555 §6.2, RFC 7515 flattened JSON): the
//! account key (ES256 with p256, deterministic signatures), RFC 7638 thumbprints, and the
//! external account binding (HS256, §7.3.4).

use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer;
use p256::elliptic_curve::Generate;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use renewd_core::Step;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::keyfile;

/// base64url without padding, as JOSE wants.
pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A key that can sign JWS: the account key, or a certificate key (revocation).
pub(crate) trait JwsKey: Send + Sync {
    /// The JWS `alg`.
    fn alg(&self) -> &'static str;
    /// The public key as a JWK with only the required members.
    fn jwk(&self) -> Value;
    /// Signs `message` in the JWS form of `alg` (raw r‖s for ECDSA).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error>;
}

/// How the protected header names the key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum KeyRef<'a> {
    /// `jwk`: newAccount, revocation by certificate key.
    Jwk,
    /// `kid`: the account URL.
    Kid(&'a str),
}

/// Builds a flattened JWS. `payload: None` is POST-as-GET (empty payload, §6.3).
pub(crate) fn sign(
    key: &dyn JwsKey,
    key_ref: KeyRef<'_>,
    nonce: Option<&str>,
    url: &str,
    payload: Option<&[u8]>,
) -> Result<Value, Error> {
    let mut protected = json!({"alg": key.alg(), "url": url});
    match key_ref {
        KeyRef::Jwk => protected["jwk"] = key.jwk(),
        KeyRef::Kid(kid) => protected["kid"] = json!(kid),
    }
    if let Some(nonce) = nonce {
        protected["nonce"] = json!(nonce);
    }
    let protected = b64(protected.to_string());
    let payload = payload.map(b64).unwrap_or_default();
    let signature = key.sign(format!("{protected}.{payload}").as_bytes())?;
    Ok(json!({"protected": protected, "payload": payload, "signature": b64(signature)}))
}

/// The RFC 7638 thumbprint of a JWK: SHA-256 over the required members, sorted, no
/// whitespace; base64url.
pub(crate) fn thumbprint_of(jwk: &Value) -> String {
    let required: &[&str] = match jwk["kty"].as_str() {
        Some("EC") => &["crv", "kty", "x", "y"],
        Some("RSA") => &["e", "kty", "n"],
        _ => &["kty"],
    };
    // serde_json's map is sorted, and to_string() writes no whitespace.
    let canonical: serde_json::Map<String, Value> = required
        .iter()
        .map(|k| (k.to_string(), jwk[*k].clone()))
        .collect();
    b64(Sha256::digest(
        Value::Object(canonical).to_string().as_bytes(),
    ))
}

/// An ACME account key: ECDSA P-256, signing ES256. Stored as PKCS#8 PEM, mode 0600.
#[derive(Clone)]
pub struct AccountKey {
    key: SigningKey,
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountKey")
            .field("thumbprint", &self.thumbprint())
            .finish_non_exhaustive()
    }
}

impl AccountKey {
    /// A new random key.
    pub fn generate() -> AccountKey {
        AccountKey {
            key: SigningKey::generate(),
        }
    }

    /// Reads a PKCS#8 PEM P-256 key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<AccountKey, Error> {
        let key = SigningKey::from_pkcs8_pem(pem).map_err(|e| Error::Key {
            step: Step::Account,
            what: "reading the account key",
            detail: e.to_string(),
        })?;
        Ok(AccountKey { key })
    }

    /// The key as PKCS#8 PEM. Secret: write it only where [`AccountKey::save`] would.
    pub fn to_pkcs8_pem(&self) -> String {
        match self.key.to_pkcs8_pem(LineEnding::LF) {
            Ok(pem) => pem.to_string(),
            // Encoding a valid in-memory P-256 key cannot fail; an empty string would be
            // refused by from_pkcs8_pem rather than silently accepted.
            Err(_) => String::new(),
        }
    }

    /// Loads the key from a PEM file.
    pub fn load(path: &Path) -> Result<AccountKey, Error> {
        let pem = std::fs::read_to_string(path).map_err(|source| Error::File {
            step: Step::Account,
            path: path.to_path_buf(),
            source,
        })?;
        AccountKey::from_pkcs8_pem(&pem)
    }

    /// Saves the key as PKCS#8 PEM, mode 0600 from the first byte, atomically (temp file,
    /// fsync, rename, fsync of the directory).
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        keyfile::write_private(path, self.to_pkcs8_pem().as_bytes()).map_err(|source| Error::File {
            step: Step::Account,
            path: path.to_path_buf(),
            source,
        })
    }

    /// Saves the key like [`AccountKey::save`], but only if no file is at `path` yet
    /// (`O_EXCL` semantics: of processes creating the same key file at once, one wins).
    /// `Ok(false)` when a file was already there: it is left untouched, load it instead.
    pub fn save_new(&self, path: &Path) -> Result<bool, Error> {
        keyfile::create_private(path, self.to_pkcs8_pem().as_bytes()).map_err(|source| {
            Error::File {
                step: Step::Account,
                path: path.to_path_buf(),
                source,
            }
        })
    }

    /// The RFC 7638 thumbprint of the public key.
    pub fn thumbprint(&self) -> String {
        thumbprint_of(&self.jwk())
    }
}

impl JwsKey for AccountKey {
    fn alg(&self) -> &'static str {
        "ES256"
    }

    fn jwk(&self) -> Value {
        let point = self.key.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        // An uncompressed P-256 point is 0x04 ‖ x (32 bytes) ‖ y (32 bytes).
        let (x, y) = (
            bytes.get(1..33).unwrap_or_default(),
            bytes.get(33..65).unwrap_or_default(),
        );
        json!({"crv": "P-256", "kty": "EC", "x": b64(x), "y": b64(y)})
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let signature: p256::ecdsa::Signature = self.key.sign(message);
        Ok(signature.to_bytes().to_vec())
    }
}

/// The external account binding credentials a CA issued (`eab_kid`, the base64url MAC key).
#[derive(Clone)]
pub struct ExternalAccountKey {
    kid: String,
    mac_key: Vec<u8>,
}

impl fmt::Debug for ExternalAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalAccountKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl ExternalAccountKey {
    /// `kid` and the MAC key as the CA gives it: base64url (padding and surrounding
    /// whitespace tolerated).
    pub fn new(kid: impl Into<String>, mac_key_b64url: &str) -> Result<ExternalAccountKey, Error> {
        let trimmed = mac_key_b64url.trim().trim_end_matches('=');
        let mac_key = URL_SAFE_NO_PAD.decode(trimmed).map_err(|e| Error::Key {
            step: Step::Account,
            what: "decoding the EAB MAC key (base64url)",
            detail: e.to_string(),
        })?;
        if mac_key.is_empty() {
            return Err(Error::Key {
                step: Step::Account,
                what: "decoding the EAB MAC key (base64url)",
                detail: "the key is empty".to_string(),
            });
        }
        Ok(ExternalAccountKey {
            kid: kid.into(),
            mac_key,
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The inner JWS of newAccount's `externalAccountBinding`: protected
    /// `{alg: HS256, kid, url}` (no nonce), payload the account's JWK.
    pub(crate) fn binding(&self, account_jwk: &Value, url: &str) -> Result<Value, Error> {
        let protected = b64(json!({"alg": "HS256", "kid": self.kid, "url": url}).to_string());
        let payload = b64(account_jwk.to_string());
        let mut mac =
            <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&self.mac_key).map_err(|e| {
                Error::Key {
                    step: Step::Account,
                    what: "keying the EAB MAC",
                    detail: e.to_string(),
                }
            })?;
        mac.update(format!("{protected}.{payload}").as_bytes());
        let signature = b64(mac.finalize().into_bytes());
        Ok(json!({"protected": protected, "payload": payload, "signature": signature}))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A fixed key so the JWS is a known answer (ECDSA here is RFC 6979 deterministic).
    fn fixed_key() -> AccountKey {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        AccountKey { key }
    }

    #[test]
    fn thumbprint_rfc7638_example() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint_of(&jwk),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn jws_known_answer() {
        let key = fixed_key();
        let jws = sign(
            &key,
            KeyRef::Kid("https://ca/acct/1"),
            Some("nonce-1"),
            "https://ca/new-order",
            Some(br#"{"identifiers":[]}"#),
        )
        .unwrap();
        assert_eq!(
            jws["protected"],
            b64(
                r#"{"alg":"ES256","kid":"https://ca/acct/1","nonce":"nonce-1","url":"https://ca/new-order"}"#
            )
        );
        assert_eq!(jws["payload"], b64(r#"{"identifiers":[]}"#));
        // Deterministic (RFC 6979): the same input always gives this signature.
        let again = sign(
            &key,
            KeyRef::Kid("https://ca/acct/1"),
            Some("nonce-1"),
            "https://ca/new-order",
            Some(br#"{"identifiers":[]}"#),
        )
        .unwrap();
        assert_eq!(jws, again);
        let sig = URL_SAFE_NO_PAD
            .decode(jws["signature"].as_str().unwrap())
            .unwrap();
        assert_eq!(sig.len(), 64, "raw r||s");
        assert_eq!(jws["signature"], KNOWN_SIGNATURE);
        // And it verifies with the public key.
        use p256::ecdsa::signature::Verifier;
        let msg = format!(
            "{}.{}",
            jws["protected"].as_str().unwrap(),
            jws["payload"].as_str().unwrap()
        );
        let sig = p256::ecdsa::Signature::from_slice(&sig).unwrap();
        key.key
            .verifying_key()
            .verify(msg.as_bytes(), &sig)
            .unwrap();
    }

    /// Computed independently with Python's `cryptography` (ECDSA P-256, SHA-256,
    /// `deterministic_signing=True`, private scalar 0x0707…07) over the same input.
    const KNOWN_SIGNATURE: &str =
        "MwrTMm1CQdN79_K2thODz3erBU-poxNrdFVnHTSaeqe3BPDEaD9F_8nCHEc-m6DjZDtZ1iF0FqPOGcdJQYS1vw";

    #[test]
    fn post_as_get_and_jwk_header() {
        let key = fixed_key();
        let jws = sign(&key, KeyRef::Jwk, None, "https://ca/new-acct", None).unwrap();
        assert_eq!(jws["payload"], "");
        let protected: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(jws["protected"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(protected["jwk"], key.jwk());
        assert!(protected.get("nonce").is_none());
        assert!(protected.get("kid").is_none());
        let jwk = key.jwk();
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(jwk["x"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(jwk["y"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
    }

    #[test]
    fn eab_binding_is_hs256_over_the_jwk() {
        let key = fixed_key();
        let eab = ExternalAccountKey::new(
            "kid-1",
            "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W",
        )
        .unwrap();
        let binding = eab.binding(&key.jwk(), "https://ca/new-acct").unwrap();
        let protected: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(binding["protected"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            protected,
            json!({"alg": "HS256", "kid": "kid-1", "url": "https://ca/new-acct"})
        );
        let payload: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(binding["payload"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(payload, key.jwk());
        // Recompute the MAC independently with ring.
        let mac_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &eab.mac_key);
        let signed = format!(
            "{}.{}",
            binding["protected"].as_str().unwrap(),
            binding["payload"].as_str().unwrap()
        );
        let tag = ring::hmac::sign(&mac_key, signed.as_bytes());
        assert_eq!(binding["signature"], b64(tag.as_ref()));
        // Padding and whitespace in the configured key are tolerated; garbage is not.
        assert!(ExternalAccountKey::new("k", " YWJj= \n").is_ok());
        assert!(ExternalAccountKey::new("k", "not base64!").is_err());
        assert!(ExternalAccountKey::new("k", "").is_err());
    }

    #[test]
    fn account_key_file_is_0600_and_loads_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("account.pem");
        let key = AccountKey::generate();
        key.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            AccountKey::load(&path).unwrap().thumbprint(),
            key.thumbprint()
        );
        let missing = AccountKey::load(&dir.path().join("nope")).unwrap_err();
        assert_eq!(missing.class(), renewd_core::FailureClass::Local);
        std::fs::write(&path, "garbage").unwrap();
        assert!(AccountKey::load(&path).is_err());
    }

    #[test]
    fn pem_round_trip() {
        let key = AccountKey::generate();
        let pem = key.to_pkcs8_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = AccountKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(back.thumbprint(), key.thumbprint());
        assert!(AccountKey::from_pkcs8_pem("garbage").is_err());
    }
}
