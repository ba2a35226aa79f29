//! JWS verification (RFC 8555 §6.2, RFC 7515 flattened JSON; ES256 and RS256).
//!
//! [`verify_request`] runs the checks of a signed ACME request in the order a real CA does:
//! the document parses, `alg` is ES256 or RS256, the nonce is one we issued and unused
//! (`badNonce`), `url` is the URL the request was sent to (`unauthorized`), the key is given
//! the way the endpoint wants (`jwk` or `kid`), the account behind a `kid` exists, and the
//! signature verifies with that key.

use serde::Deserialize;
use serde_json::Value;

use crate::jwk::ALGORITHMS;
pub(crate) use crate::jwk::{Jwk, b64};
use crate::nonce::NoncePool;
use crate::response::Problem;

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

    /// Checks the signature over `protected.payload`, made with `alg` by `key`.
    pub fn verify(&self, alg: &str, key: &Jwk) -> Result<(), Problem> {
        let signed = format!("{}.{}", self.protected, self.payload);
        key.verify(alg, signed.as_bytes(), &b64(&self.signature)?)
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
    let alg = match header.alg.as_deref() {
        Some(a) if ALGORITHMS.contains(&a) => a.to_owned(),
        other => {
            return Err(Problem::bad_signature_algorithm(format!(
                "alg {:?} is not supported; use ES256 or RS256",
                other.unwrap_or("")
            )));
        }
    };
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
            (Signer::Jwk(jwk.clone()), jwk)
        }
        (None, Some(kid), KeyRule::Kid | KeyRule::Either) => {
            let (id, jwk) = lookup_kid(kid)?;
            (Signer::Account(id), jwk)
        }
        (_, _, KeyRule::Jwk) => return Err(Problem::malformed("this request needs a jwk")),
        (_, _, _) => return Err(Problem::malformed("this request needs a kid")),
    };
    jws.verify(&alg, &key)?;
    Ok(Verified {
        signer,
        payload: jws.payload_bytes()?,
    })
}

#[cfg(test)]
pub(crate) mod test_signer;

#[cfg(test)]
mod tests;
