//! Certificates after issuance: download with alternate chains (RFC 8555 §7.4.2) and
//! revocation by the account or by the certificate's key (§7.6).

use bytes::Bytes;
use chrono::Utc;
use http::StatusCode;
use serde::Deserialize;

use crate::ca::{Ca, Incoming};
use crate::jws::{KeyRule, Signer, b64};
use crate::response::{Problem, Reply};

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
    let mut reply = Reply::new(
        StatusCode::OK,
        Some("application/pem-certificate-chain"),
        Bytes::from(pem.clone()),
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
