//! Certificates after issuance: download with alternate chains (RFC 8555 §7.4.2) and
//! revocation by the account or by the certificate's key (§7.6). A `wrong_certificate`
//! fault makes the download serve a certificate that does not fit the order.

use bytes::Bytes;
use chrono::Utc;
use http::StatusCode;
use serde::Deserialize;

use rcgen::PublicKeyData;

use crate::ca::{Ca, Incoming};
use crate::faults::Mismatch;
use crate::jws::{KeyRule, Signer, b64};
use crate::response::{Problem, Reply};
use crate::state::CertRecord;

/// `POST /acme/cert/{id}[/alt/{n}]` (POST-as-GET): chain `n` (0 = default).
pub(crate) fn certificate(
    ca: &Ca,
    req: &Incoming,
    id: u64,
    chain: usize,
) -> Result<Reply, Problem> {
    let verified = ca.verify(req, KeyRule::Kid)?;
    let account = verified.account()?;
    let state = ca.state();
    let cert = state
        .certs
        .get(&id)
        .ok_or_else(|| Problem::not_found(format!("no certificate {id}")))?;
    if cert.account != account {
        return Err(Problem::unauthorized(
            "this certificate belongs to another account",
        ));
    }
    let pem = cert
        .issued
        .chains
        .get(chain)
        .ok_or_else(|| Problem::not_found(format!("no chain {chain} for certificate {id}")))?;
    let pem = match req.mismatch {
        None => pem.clone(),
        Some(mismatch) => wrong_chain(ca, cert, mismatch, chain)?,
    };
    let mut reply = Reply::new(
        StatusCode::OK,
        Some("application/pem-certificate-chain"),
        Bytes::from(pem),
    );
    for other in (0..cert.issued.chains.len()).filter(|n| *n != chain) {
        let url = if other == 0 {
            req.url_of(&format!("/acme/cert/{id}"))
        } else {
            req.url_of(&format!("/acme/cert/{id}/alt/{other}"))
        };
        reply = reply.link(&url, "alternate");
    }
    Ok(reply)
}

/// The name a [`Mismatch::Names`] certificate is for: never one of an order's identifiers
/// (`.invalid` is reserved, RFC 2606).
const WRONG_NAME: &str = "wrong-name.invalid";

/// Chain `chain` of a certificate like `cert` but wrong in `mismatch`, signed now by the
/// real intermediate with the same validity. Not recorded: it exists only in this answer.
fn wrong_chain(
    ca: &Ca,
    cert: &CertRecord,
    mismatch: Mismatch,
    chain: usize,
) -> Result<String, Problem> {
    let (spki, names) = match mismatch {
        Mismatch::Names => {
            let (_, leaf) = x509_parser::parse_x509_certificate(&cert.issued.der)
                .map_err(|e| Problem::server_internal(format!("stored certificate: {e}")))?;
            (leaf.public_key().raw.to_vec(), vec![WRONG_NAME.to_owned()])
        }
        Mismatch::Key => {
            let other = rcgen::KeyPair::generate()
                .map_err(|e| Problem::server_internal(format!("generating a key: {e}")))?;
            (other.subject_public_key_info(), cert.names.clone())
        }
    };
    let validity = (cert.issued.not_after - cert.issued.not_before)
        .to_std()
        .map_err(|_| Problem::server_internal("stored validity is inverted"))?;
    let wrong = ca
        .authority
        .issue(&spki, &names, cert.issued.not_before, validity)?;
    wrong
        .chains
        .into_iter()
        .nth(chain)
        .ok_or_else(|| Problem::server_internal(format!("no chain {chain}")))
}

#[derive(Debug, Deserialize)]
struct RevokePayload {
    certificate: String,
    reason: Option<u8>,
}

/// `POST revokeCert`.
pub(crate) fn revoke(ca: &Ca, req: &Incoming) -> Result<Reply, Problem> {
    let verified = ca.verify(req, KeyRule::Either)?;
    let payload: RevokePayload = serde_json::from_slice(&verified.payload)
        .map_err(|e| Problem::malformed(format!("revokeCert payload: {e}")))?;
    let reason = payload.reason.unwrap_or(0);
    if !matches!(reason, 0 | 1 | 3 | 4 | 5 | 9) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "badRevocationReason",
            format!("reason {reason} is not allowed"),
        ));
    }
    let der = b64(&payload.certificate)?;
    let mut state = ca.state();
    let (_, record) = state
        .certs
        .iter_mut()
        .find(|(_, c)| c.issued.der == der)
        .ok_or_else(|| Problem::not_found("this CA did not issue that certificate"))?;
    let allowed = match &verified.signer {
        Signer::Account(id) => *id == record.account,
        Signer::Jwk(jwk) => jwk.is_key_of(&record.issued.der),
    };
    if !allowed {
        return Err(Problem::unauthorized(
            "neither the issuing account nor the certificate's key signed this request",
        ));
    }
    if record.revoked.is_some() {
        return Err(Problem::already_revoked("certificate is already revoked"));
    }
    record.revoked = Some((Utc::now(), reason));
    drop(state);
    ca.counts().certificates_revoked += 1;
    Ok(Reply::new(StatusCode::OK, None, Bytes::new()))
}
