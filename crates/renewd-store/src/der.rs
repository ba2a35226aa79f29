//! Just enough PEM and DER to read public keys out of private-key files without doing
//! cryptography: the inventory scan compares the key file's public half with the
//! certificate's for 100,000 certificates in seconds. (Installation additionally loads the
//! key with ring, which proves the private half.)

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use renewd_core::KeyType;

/// One PEM block's label and decoded body.
pub(crate) struct PemBlock<'a> {
    pub label: &'a str,
    pub der: Vec<u8>,
}

/// The PEM blocks in `text`, in order. `Err` names the first malformed block.
pub(crate) fn pem_blocks(text: &str) -> Result<Vec<PemBlock<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + "-----BEGIN ".len()..];
        let label_end = after
            .find("-----")
            .ok_or_else(|| "a BEGIN line is not closed with -----".to_string())?;
        let label = &after[..label_end];
        let body_and_rest = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let end = body_and_rest
            .find(&end_marker)
            .ok_or_else(|| format!("no END line for the {label} block"))?;
        let der = decode_base64(&body_and_rest[..end])
            .map_err(|e| format!("the {label} block is not valid base64: {e}"))?;
        out.push(PemBlock { label, der });
        rest = &body_and_rest[end + end_marker.len()..];
    }
    Ok(out)
}

/// The first block labelled `label`, decoded, reusing `scratch` for the base64 text.
pub(crate) fn first_block_into(
    text: &[u8],
    label: &str,
    scratch: &mut Vec<u8>,
    der: &mut Vec<u8>,
) -> Result<bool, String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let Some(start) = find(text, begin.as_bytes()) else {
        return Ok(false);
    };
    let body = &text[start + begin.len()..];
    let stop = find(body, end.as_bytes()).ok_or_else(|| format!("no END line for {label}"))?;
    scratch.clear();
    scratch.extend(body[..stop].iter().filter(|b| !b.is_ascii_whitespace()));
    der.clear();
    STANDARD
        .decode_vec(&scratch[..], der)
        .map_err(|e| format!("the {label} block is not valid base64: {e}"))?;
    Ok(true)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn decode_base64(body: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let compact: Vec<u8> = body.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    STANDARD.decode(compact)
}

/// PEM-encodes `der` with 64-character lines.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.as_bytes().chunks(64) {
        // base64 output is ASCII.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// A DER element: tag byte and content.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
}

fn read_tlv(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((
        Tlv {
            tag,
            content: &rest[..len],
        },
        &rest[len..],
    ))
}

fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (tlv, rest) = read_tlv(input)?;
    (tlv.tag == tag).then_some((tlv.content, rest))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;

const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// A public key, reduced to what identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicKeyBits {
    /// An EC point (uncompressed SEC1) on a named curve.
    Ec { curve: Curve, point: Vec<u8> },
    /// RSA modulus and exponent (DER INTEGER contents).
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

/// The curves renewd issues for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
    Other,
}

impl Curve {
    fn from_oid(oid: &[u8]) -> Curve {
        match oid {
            OID_P256 => Curve::P256,
            OID_P384 => Curve::P384,
            _ => Curve::Other,
        }
    }
}

impl PublicKeyBits {
    /// The config's name for this key's type, when it is one renewd issues.
    pub(crate) fn key_type(&self) -> Option<KeyType> {
        match self {
            PublicKeyBits::Ec {
                curve: Curve::P256, ..
            } => Some(KeyType::EcdsaP256),
            PublicKeyBits::Ec {
                curve: Curve::P384, ..
            } => Some(KeyType::EcdsaP384),
            PublicKeyBits::Ec { .. } => None,
            PublicKeyBits::Rsa { n, .. } => match modulus_bits(n) {
                2048 => Some(KeyType::Rsa2048),
                3072 => Some(KeyType::Rsa3072),
                4096 => Some(KeyType::Rsa4096),
                _ => None,
            },
        }
    }

    /// A short description for messages ("ecdsa-p256", "rsa-1024", "ec (other curve)").
    pub(crate) fn describe(&self) -> String {
        match (self.key_type(), self) {
            (Some(k), _) => k.as_str().to_string(),
            (None, PublicKeyBits::Rsa { n, .. }) => format!("rsa-{}", modulus_bits(n)),
            (None, PublicKeyBits::Ec { .. }) => "ec (other curve)".to_string(),
        }
    }

    /// From a certificate's SubjectPublicKeyInfo parts: the algorithm OID's content bytes,
    /// the curve OID's content bytes (EC) and the BIT STRING's bytes.
    pub(crate) fn from_spki(alg_oid: &[u8], curve_oid: Option<&[u8]>, bits: &[u8]) -> Option<Self> {
        match alg_oid {
            OID_EC_PUBLIC_KEY => {
                let curve = curve_oid.map_or(Curve::Other, Curve::from_oid);
                Some(PublicKeyBits::Ec {
                    curve,
                    point: bits.to_vec(),
                })
            }
            OID_RSA => rsa_public(bits),
            _ => None,
        }
    }

    /// From a private key's DER (`label` tells PKCS#8, SEC1 or PKCS#1).
    pub(crate) fn from_private_der(label: &str, der: &[u8]) -> Option<Self> {
        match label {
            "PRIVATE KEY" => from_pkcs8(der),
            "EC PRIVATE KEY" => from_ec_private_key(der, None),
            "RSA PRIVATE KEY" => from_rsa_private_key(der),
            _ => None,
        }
    }
}

fn modulus_bits(n: &[u8]) -> usize {
    let n = match n.iter().position(|b| *b != 0) {
        Some(i) => &n[i..],
        None => return 0,
    };
    n.len() * 8 - n[0].leading_zeros() as usize
}

fn rsa_public(rsa_public_key_der: &[u8]) -> Option<PublicKeyBits> {
    let (seq, _) = expect(rsa_public_key_der, SEQUENCE)?;
    let (n, rest) = expect(seq, INTEGER)?;
    let (e, _) = expect(rest, INTEGER)?;
    Some(PublicKeyBits::Rsa {
        n: n.to_vec(),
        e: e.to_vec(),
    })
}

/// PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier, OCTET STRING privateKey, ... }
fn from_pkcs8(der: &[u8]) -> Option<PublicKeyBits> {
    let (seq, _) = expect(der, SEQUENCE)?;
    let (_version, rest) = expect(seq, INTEGER)?;
    let (alg, rest) = expect(rest, SEQUENCE)?;
    let (alg_oid, params) = expect(alg, OID)?;
    let (private_key, _) = expect(rest, OCTET_STRING)?;
    match alg_oid {
        OID_EC_PUBLIC_KEY => {
            let curve = expect(params, OID).map_or(Curve::Other, |(oid, _)| Curve::from_oid(oid));
            from_ec_private_key(private_key, Some(curve))
        }
        OID_RSA => from_rsa_private_key(private_key),
        _ => None,
    }
}

/// ECPrivateKey ::= SEQUENCE { 1, OCTET STRING d, [0] curve OPTIONAL, [1] BIT STRING pub }
fn from_ec_private_key(der: &[u8], curve: Option<Curve>) -> Option<PublicKeyBits> {
    let (seq, _) = expect(der, SEQUENCE)?;
    let (_version, rest) = expect(seq, INTEGER)?;
    let (_d, mut rest) = expect(rest, OCTET_STRING)?;
    let mut curve = curve;
    let mut point = None;
    while let Some((tlv, next)) = read_tlv(rest) {
        match tlv.tag {
            0xa0 => {
                if let Some((oid, _)) = expect(tlv.content, OID) {
                    curve.get_or_insert(Curve::from_oid(oid));
                }
            }
            0xa1 => {
                let (bits, _) = expect(tlv.content, BIT_STRING)?;
                // First byte: unused bits, 0 for a point.
                point = bits.split_first().map(|(_, p)| p.to_vec());
            }
            _ => {}
        }
        rest = next;
    }
    Some(PublicKeyBits::Ec {
        curve: curve.unwrap_or(Curve::Other),
        point: point?,
    })
}

/// RSAPrivateKey ::= SEQUENCE { version, n, e, d, ... }
fn from_rsa_private_key(der: &[u8]) -> Option<PublicKeyBits> {
    let (seq, _) = expect(der, SEQUENCE)?;
    let (_version, rest) = expect(seq, INTEGER)?;
    let (n, rest) = expect(rest, INTEGER)?;
    let (e, _) = expect(rest, INTEGER)?;
    Some(PublicKeyBits::Rsa {
        n: n.to_vec(),
        e: e.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_and_errors() {
        let der: Vec<u8> = (0..200u8).collect();
        let pem = pem_encode("CERTIFICATE", &der);
        assert!(pem.lines().all(|l| l.len() <= 64));
        let text = format!("junk\n{pem}{pem}");
        let blocks = pem_blocks(&text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[1].label, "CERTIFICATE");
        assert_eq!(blocks[1].der, der);
        assert!(pem_blocks("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----").is_err());
        assert!(pem_blocks("-----BEGIN CERTIFICATE-----\nAAAA\n").is_err());
        assert!(
            pem_blocks("<html>502 Bad Gateway</html>")
                .unwrap()
                .is_empty()
        );
        let (mut a, mut b) = (Vec::new(), Vec::new());
        assert!(first_block_into(pem.as_bytes(), "CERTIFICATE", &mut a, &mut b).unwrap());
        assert_eq!(b, der);
        assert!(!first_block_into(pem.as_bytes(), "PRIVATE KEY", &mut a, &mut b).unwrap());
    }

    #[test]
    fn lengths_are_bounds_checked() {
        assert!(read_tlv(&[0x30, 0x05, 0x01]).is_none());
        assert!(read_tlv(&[0x30, 0x85, 0, 0, 0, 0, 1]).is_none());
        assert!(read_tlv(&[0x30, 0x82, 0x01]).is_none());
        assert!(from_pkcs8(&[0x30, 0x00]).is_none());
        assert_eq!(modulus_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(modulus_bits(&[0x01]), 1);
    }

    #[test]
    fn reads_public_keys_from_rcgen_keys() {
        for alg in [
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
        ] {
            let key = rcgen::KeyPair::generate_for(alg).unwrap();
            let pem = key.serialize_pem();
            let blocks = pem_blocks(&pem).unwrap();
            let bits = PublicKeyBits::from_private_der(blocks[0].label, &blocks[0].der).unwrap();
            match &bits {
                PublicKeyBits::Ec { point, .. } => assert_eq!(point, key.public_key_raw()),
                other => panic!("{other:?}"),
            }
            let expected = if std::ptr::eq(alg, &rcgen::PKCS_ECDSA_P256_SHA256) {
                KeyType::EcdsaP256
            } else {
                KeyType::EcdsaP384
            };
            assert_eq!(bits.key_type(), Some(expected));
        }
    }
}
