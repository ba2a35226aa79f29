//! Account and certificate public keys as JWKs (RFC 7517): P-256 for ES256, RSA for RS256,
//! with their RFC 7638 thumbprints and signature checks.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde_json::Value;
use sha2::{Digest, Sha256};
use x509_parser::public_key::PublicKey;

use crate::response::Problem;

/// A public key as a JWK; only the members RFC 7638 hashes are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Jwk {
    /// EC on P-256: x and y, base64url of 32 bytes each.
    P256 { x: String, y: String },
    /// RSA: modulus and exponent, base64url big-endian.
    Rsa { n: String, e: String },
}

/// base64url without padding, as a problem when it does not decode.
pub(crate) fn b64(text: &str) -> Result<Vec<u8>, Problem> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| Problem::malformed("invalid base64url"))
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// The signature algorithms accepted, as `badSignatureAlgorithm` lists them.
pub(crate) const ALGORITHMS: [&str; 2] = ["ES256", "RS256"];

impl Jwk {
    /// Reads a JWK member: EC keys on P-256 that are valid points, RSA keys of 2048 bits or
    /// more.
    pub fn from_value(value: &Value) -> Result<Jwk, Problem> {
        let field = |name: &str| value.get(name).and_then(Value::as_str);
        let jwk = match (field("kty"), field("crv")) {
            (Some("EC"), Some("P-256")) => {
                let (Some(x), Some(y)) = (field("x"), field("y")) else {
                    return Err(Problem::malformed("EC jwk lacks x or y"));
                };
                Jwk::P256 {
                    x: x.to_owned(),
                    y: y.to_owned(),
                }
            }
            (Some("RSA"), _) => {
                let (Some(n), Some(e)) = (field("n"), field("e")) else {
                    return Err(Problem::malformed("RSA jwk lacks n or e"));
                };
                if strip_zeros(&b64(n)?).len() < 256 {
                    return Err(Problem::malformed("RSA keys must have 2048 bits or more"));
                }
                Jwk::Rsa {
                    n: n.to_owned(),
                    e: e.to_owned(),
                }
            }
            _ => {
                return Err(Problem::bad_signature_algorithm(
                    "only EC P-256 (ES256) and RSA (RS256) keys are supported",
                ));
            }
        };
        if let Jwk::P256 { .. } = jwk {
            jwk.p256_key()?;
        }
        Ok(jwk)
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> &'static str {
        match self {
            Jwk::P256 { .. } => "ES256",
            Jwk::Rsa { .. } => "RS256",
        }
    }

    fn p256_key(&self) -> Result<VerifyingKey, Problem> {
        let Jwk::P256 { x, y } = self else {
            return Err(Problem::bad_signature_algorithm("not an EC key"));
        };
        let (x, y) = (b64(x)?, b64(y)?);
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

    /// Checks `signature` over `signed` made with `alg`.
    pub fn verify(&self, alg: &str, signed: &[u8], signature: &[u8]) -> Result<(), Problem> {
        if alg != self.alg() {
            return Err(Problem::bad_signature_algorithm(format!(
                "alg {alg} does not fit a {} key",
                self.alg()
            )));
        }
        let bad = || Problem::malformed("JWS signature does not verify");
        match self {
            Jwk::P256 { .. } => {
                let sig = Signature::from_slice(signature)
                    .map_err(|_| Problem::malformed("ES256 signature must be 64 bytes r||s"))?;
                self.p256_key()?.verify(signed, &sig).map_err(|_| bad())
            }
            Jwk::Rsa { n, e } => {
                let (n, e) = (b64(n)?, b64(e)?);
                let key = ring::signature::RsaPublicKeyComponents {
                    n: strip_zeros(&n),
                    e: strip_zeros(&e),
                };
                key.verify(
                    &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                    signed,
                    signature,
                )
                .map_err(|_| bad())
            }
        }
    }

    /// Whether this is the key of the DER certificate `der`.
    pub fn is_key_of(&self, der: &[u8]) -> bool {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
            return false;
        };
        match (self, cert.public_key().parsed()) {
            (Jwk::P256 { x, y }, Ok(PublicKey::EC(point))) => {
                let mut sec1 = vec![0x04];
                sec1.extend(b64(x).unwrap_or_default());
                sec1.extend(b64(y).unwrap_or_default());
                point.data() == sec1.as_slice()
            }
            (Jwk::Rsa { n, e }, Ok(PublicKey::RSA(rsa))) => {
                let (n, e) = (b64(n).unwrap_or_default(), b64(e).unwrap_or_default());
                strip_zeros(rsa.modulus) == strip_zeros(&n)
                    && strip_zeros(rsa.exponent) == strip_zeros(&e)
            }
            _ => false,
        }
    }

    /// The RFC 7638 thumbprint, base64url.
    pub fn thumbprint(&self) -> String {
        let canonical = match self {
            Jwk::P256 { x, y } => format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#),
            Jwk::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_thumbprint_is_the_rfc_7638_example() {
        // RFC 7638 §3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let jwk = Jwk::Rsa {
            n: n.to_owned(),
            e: "AQAB".to_owned(),
        };
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    /// A fresh RSA key from openssl (ring cannot generate RSA keys).
    fn rsa_key() -> ring::signature::RsaKeyPair {
        let out = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .args(["-outform", "DER"])
            .output()
            .expect("openssl runs (apt-get install openssl)");
        assert!(out.status.success());
        // OpenSSL 3 writes DER keys as a PKCS#1 RSAPrivateKey.
        ring::signature::RsaKeyPair::from_der(&out.stdout).expect("RSA key")
    }

    #[test]
    fn rs256_signatures_verify_with_the_rsa_jwk() {
        let key = rsa_key();
        let public = ring::signature::RsaPublicKeyComponents::<Vec<u8>>::from(key.public());
        let jwk = Jwk::from_value(&serde_json::json!({
            "kty": "RSA",
            "n": URL_SAFE_NO_PAD.encode(&public.n),
            "e": URL_SAFE_NO_PAD.encode(&public.e),
        }))
        .expect("RSA jwk");
        let mut sig = vec![0; key.public().modulus_len()];
        key.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            b"protected.payload",
            &mut sig,
        )
        .expect("sign");
        assert!(jwk.verify("RS256", b"protected.payload", &sig).is_ok());
        assert!(jwk.verify("RS256", b"protected.other", &sig).is_err());
        assert_eq!(
            jwk.verify("ES256", b"protected.payload", &sig)
                .expect_err("alg")
                .kind,
            "badSignatureAlgorithm"
        );
    }

    #[test]
    fn short_rsa_keys_and_other_curves_are_refused() {
        let short = serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"});
        assert_eq!(
            Jwk::from_value(&short).expect_err("short").kind,
            "malformed"
        );
        let p384 = serde_json::json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"});
        assert_eq!(
            Jwk::from_value(&p384).expect_err("P-384").kind,
            "badSignatureAlgorithm"
        );
    }
}
