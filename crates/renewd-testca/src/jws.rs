//! JWS verification (RFC 8555 §6.2, RFC 7515 flattened JSON, ES256 only).
//!
//! [`verify_request`] runs the checks of a signed ACME request in the order a real CA does:
//! the document parses, `alg` is ES256, the nonce is one we issued and unused (`badNonce`),
//! `url` is the URL the request was sent to (`unauthorized`), the key is given the way the
//! endpoint wants (`jwk` or `kid`), the account behind a `kid` exists, and the signature
//! verifies. [`Jwk`] holds a P-256 public key with its RFC 7638 thumbprint.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::nonce::NoncePool;
use crate::response::Problem;

/// A P-256 public key as a JWK (only the members RFC 7638 hashes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Jwk {
    pub crv: String,
    pub kty: String,
    pub x: String,
    pub y: String,
}

impl Jwk {
    /// Reads a JWK member, accepting only EC keys on P-256 that are valid curve points.
    pub fn from_value(value: &Value) -> Result<Jwk, Problem> {
        let field = |name: &str| value.get(name).and_then(Value::as_str);
        match (field("kty"), field("crv")) {
            (Some("EC"), Some("P-256")) => {}
            _ => {
                return Err(Problem::bad_signature_algorithm(
                    "only EC keys on P-256 (ES256) are supported",
                ));
            }
        }
        let (Some(x), Some(y)) = (field("x"), field("y")) else {
            return Err(Problem::malformed("jwk lacks x or y"));
        };
        let jwk = Jwk {
            crv: "P-256".to_owned(),
            kty: "EC".to_owned(),
            x: x.to_owned(),
            y: y.to_owned(),
        };
        jwk.verifying_key()?;
        Ok(jwk)
    }

    /// The key as a verifier.
    pub fn verifying_key(&self) -> Result<VerifyingKey, Problem> {
        let x = b64(&self.x)?;
        let y = b64(&self.y)?;
        if x.len() != 32 || y.len() != 32 {
            return Err(Problem::malformed("jwk x and y must be 32 bytes each"));
        }
        let mut sec1 = Vec::with_capacity(65);
        sec1.push(0x04);
        sec1.extend_from_slice(&x);
        sec1.extend_from_slice(&y);
        VerifyingKey::from_sec1_bytes(&sec1)
            .map_err(|_| Problem::malformed("jwk is not a point on P-256"))
    }

    /// The uncompressed SEC1 point, `04 || x || y` (how certificates hold the key).
    pub fn sec1(&self) -> Vec<u8> {
        let mut out = vec![0x04];
        out.extend(b64(&self.x).unwrap_or_default());
        out.extend(b64(&self.y).unwrap_or_default());
        out
    }

    /// The RFC 7638 thumbprint, base64url.
    pub fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
            self.crv, self.kty, self.x, self.y
        );
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }
}

/// base64url without padding, as a problem when it does not decode.
pub(crate) fn b64(text: &str) -> Result<Vec<u8>, Problem> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| Problem::malformed("invalid base64url"))
}

/// A flattened JWS.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct FlattenedJws {
    pub protected: String,
    pub payload: String,
    pub signature: String,
}

/// The protected header members ACME uses.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Header {
    pub alg: Option<String>,
    pub nonce: Option<String>,
    pub url: Option<String>,
    pub jwk: Option<Value>,
    pub kid: Option<String>,
}

impl FlattenedJws {
    pub fn from_value(value: &Value) -> Result<FlattenedJws, Problem> {
        serde_json::from_value(value.clone())
            .map_err(|_| Problem::malformed("not a flattened JWS (protected, payload, signature)"))
    }

    pub fn header(&self) -> Result<Header, Problem> {
        serde_json::from_slice(&b64(&self.protected)?)
            .map_err(|_| Problem::malformed("protected header is not a JSON object"))
    }

    pub fn payload_bytes(&self) -> Result<Vec<u8>, Problem> {
        b64(&self.payload)
    }

    /// Checks the ES256 signature over `protected.payload`.
    pub fn verify_es256(&self, key: &VerifyingKey) -> Result<(), Problem> {
        let sig = b64(&self.signature)?;
        let sig = Signature::from_slice(&sig)
            .map_err(|_| Problem::malformed("ES256 signature must be 64 bytes r||s"))?;
        let signed = format!("{}.{}", self.protected, self.payload);
        key.verify(signed.as_bytes(), &sig)
            .map_err(|_| Problem::malformed("JWS signature does not verify"))
    }
}

/// How the endpoint wants the key named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyRule {
    /// `jwk` (newAccount).
    Jwk,
    /// `kid` (everything else).
    Kid,
    /// Either (revokeCert: by account or by certificate key).
    Either,
}

/// Who signed a verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Signer {
    /// A key given inline.
    Jwk(Jwk),
    /// An account, by its id.
    Account(u64),
}

/// A request whose signature, nonce and URL checked out.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub signer: Signer,
    /// The decoded payload; empty for POST-as-GET.
    pub payload: Vec<u8>,
}

impl Verified {
    /// The payload as JSON (`{}` for an empty POST-as-GET payload is not assumed: callers
    /// that accept POST-as-GET check [`Verified::is_post_as_get`] first).
    pub fn json(&self) -> Result<Value, Problem> {
        serde_json::from_slice(&self.payload).map_err(|_| Problem::malformed("payload is not JSON"))
    }

    pub fn is_post_as_get(&self) -> bool {
        self.payload.is_empty()
    }

    pub fn account(&self) -> Result<u64, Problem> {
        match self.signer {
            Signer::Account(id) => Ok(id),
            Signer::Jwk(_) => Err(Problem::malformed("this request must be signed with a kid")),
        }
    }
}

/// Verifies one signed request sent to `url`. `lookup_kid` maps a `kid` to the account's
/// id and current key (or the problem to answer).
pub(crate) fn verify_request(
    body: &[u8],
    url: &str,
    rule: KeyRule,
    nonces: &NoncePool,
    lookup_kid: impl FnOnce(&str) -> Result<(u64, Jwk), Problem>,
) -> Result<Verified, Problem> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| Problem::malformed("body is not JSON"))?;
    let jws = FlattenedJws::from_value(&value)?;
    let header = jws.header()?;
    if header.alg.as_deref() != Some("ES256") {
        return Err(Problem::bad_signature_algorithm(format!(
            "alg {:?} is not supported; use ES256",
            header.alg.as_deref().unwrap_or("")
        )));
    }
    match header.nonce.as_deref() {
        Some(n) if nonces.consume(n) => {}
        Some(_) => return Err(Problem::bad_nonce("nonce is unknown or already used")),
        None => return Err(Problem::bad_nonce("protected header has no nonce")),
    }
    if header.url.as_deref() != Some(url) {
        return Err(Problem::unauthorized(format!(
            "url {:?} in the protected header is not the request URL {url:?}",
            header.url.as_deref().unwrap_or("")
        )));
    }
    let (signer, key) = match (&header.jwk, &header.kid, rule) {
        (Some(_), Some(_), _) => {
            return Err(Problem::malformed("protected header has both jwk and kid"));
        }
        (Some(jwk), None, KeyRule::Jwk | KeyRule::Either) => {
            let jwk = Jwk::from_value(jwk)?;
            let key = jwk.verifying_key()?;
            (Signer::Jwk(jwk), key)
        }
        (None, Some(kid), KeyRule::Kid | KeyRule::Either) => {
            let (id, jwk) = lookup_kid(kid)?;
            (Signer::Account(id), jwk.verifying_key()?)
        }
        (_, _, KeyRule::Jwk) => return Err(Problem::malformed("this request needs a jwk")),
        (_, _, _) => return Err(Problem::malformed("this request needs a kid")),
    };
    jws.verify_es256(&key)?;
    Ok(Verified {
        signer,
        payload: jws.payload_bytes()?,
    })
}

#[cfg(test)]
pub(crate) mod test_signer;

#[cfg(test)]
mod tests;
