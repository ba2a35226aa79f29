//! Orders (RFC 8555 §7.4): newOrder (profiles, ARI `replaces`), reading an order, finalize,
//! and the move from `processing` to `valid` when the certificate is issued.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{SecondsFormat, SubsecRound, Utc};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::authz::create_authz;
use crate::ca::{Ca, Incoming};
use crate::csr::check_csr;
use crate::fault_toml::ceil_secs;
use crate::jws::{KeyRule, b64};
use crate::response::{Problem, Reply};
use crate::state::{CertRecord, Order, OrderStatus, Processing, State};

#[derive(Debug, Deserialize)]
struct Identifier {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

#[derive(Debug, Deserialize)]
struct NewOrderPayload {
    identifiers: Vec<Identifier>,
    profile: Option<String>,
    replaces: Option<String>,
}

/// Whether `name` is a DNS name we would issue for (`*.` allowed in front).
fn valid_dns_name(name: &str) -> bool {
    let bare = name.strip_prefix("*.").unwrap_or(name);
    !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The order as JSON.
pub(crate) fn order_json(state: &State, req: &Incoming, id: u64, order: &Order) -> Value {
    let mut v = json!({
        "status": order.status.as_str(),
        "expires": order.expires.to_rfc3339_opts(SecondsFormat::Secs, true),
        "identifiers": order.identifiers.iter()
            .map(|i| json!({"type": "dns", "value": i})).collect::<Vec<_>>(),
        "authorizations": order.authzs.iter()
            .map(|a| req.url_of(&format!("/acme/authz/{a}"))).collect::<Vec<_>>(),
        "finalize": req.url_of(&format!("/acme/order/{id}/finalize")),
    });
    if let Some(p) = &order.profile {
        v["profile"] = json!(p);
    }
    if let Some(r) = &order.replaces {
        v["replaces"] = json!(r);
    }
    if let Some(e) = &order.error {
        v["error"] = e.to_json();
    }
    if let Some(cert) = order.cert.filter(|c| state.certs.contains_key(c)) {
        v["certificate"] = json!(req.url_of(&format!("/acme/cert/{cert}")));
    }
    v
}

/// An order answer; `processing` orders carry `Retry-After`.
fn order_reply(state: &State, req: &Incoming, status: StatusCode, id: u64, order: &Order) -> Reply {
    let mut reply = Reply::json(status, &order_json(state, req, id, order))
        .location(&req.url_of(&format!("/acme/order/{id}")));
    if let (OrderStatus::Processing, Some(p)) = (order.status, &order.processing) {
        reply = reply.retry_after(ceil_secs(p.retry_after).max(1));
    }
    reply
}

/// `POST newOrder`.
pub(crate) fn new_order(ca: &Ca, req: &Incoming) -> Result<Reply, Problem> {
    let verified = ca.verify(req, KeyRule::Kid)?;
    let account = verified.account()?;
    let payload: NewOrderPayload = serde_json::from_slice(&verified.payload)
        .map_err(|e| Problem::malformed(format!("newOrder payload: {e}")))?;
    let mut names = Vec::new();
    for id in &payload.identifiers {
        if id.kind != "dns" {
            return Err(Problem::unsupported_identifier(format!(
                "identifier type {:?} is not supported",
                id.kind
            )));
        }
        let name = id.value.to_ascii_lowercase();
        if !valid_dns_name(&name) {
            return Err(Problem::rejected_identifier(format!(
                "{:?} is not a DNS name",
                id.value
            )));
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Err(Problem::malformed("an order needs identifiers"));
    }
    if let Some(p) = &payload.profile
        && !ca.config.profiles.contains_key(p)
    {
        return Err(Problem::invalid_profile(format!("no profile {p:?}")));
    }
    let mut state = ca.state();
    if let Some(replaces) = &payload.replaces {
        check_replaces(&state, account, replaces.trim_end_matches('='), &names)?;
    }
    let id = state.next_id();
    let authzs = names
        .iter()
        .map(|n| create_authz(ca, &mut state, n))
        .collect();
    let order = Order {
        account,
        identifiers: names,
        authzs,
        profile: payload.profile,
        replaces: payload.replaces.map(|r| r.trim_end_matches('=').to_owned()),
        status: OrderStatus::Pending,
        expires: Utc::now() + chrono::Duration::days(7),
        error: None,
        processing: None,
        cert: None,
    };
    if let Some(cert) = order
        .replaces
        .as_ref()
        .and_then(|r| state.cert_by_cert_id.get(r).copied())
        .and_then(|c| state.certs.get_mut(&c))
    {
        cert.replaced_by = Some(id);
    }
    if let Some(a) = state.accounts.get_mut(&account) {
        a.orders.push(id);
    }
    state.orders.insert(id, order);
    // Authorizations may already be valid (none are reused today, but keep it honest).
    state.refresh_order(id);
    let order = state
        .orders
        .get(&id)
        .ok_or_else(|| Problem::server_internal("order lost"))?;
    let reply = order_reply(&state, req, StatusCode::CREATED, id, order);
    let replacing = order.replaces.is_some();
    drop(state);
    let mut counts = ca.counts();
    counts.orders_created += 1;
    if replacing {
        counts.orders_replacing += 1;
    }
    Ok(reply)
}

/// RFC 9773 §5: `replaces` must name a certificate of this account that shares a name with
/// the order and is not already replaced by a live order.
fn check_replaces(
    state: &State,
    account: u64,
    cert_id: &str,
    names: &[String],
) -> Result<(), Problem> {
    let cert = state
        .cert_by_cert_id
        .get(cert_id)
        .and_then(|c| state.certs.get(c))
        .filter(|c| c.account == account)
        .ok_or_else(|| {
            Problem::malformed(format!(
                "replaces: no certificate {cert_id} of this account"
            ))
        })?;
    if !cert.names.iter().any(|n| names.contains(n)) {
        return Err(Problem::malformed(
            "replaces: the certificate shares no identifier with this order",
        ));
    }
    if let Some(other) = cert.replaced_by.and_then(|o| state.orders.get(&o))
        && other.status != OrderStatus::Invalid
    {
        return Err(Problem::already_replaced(format!(
            "certificate {cert_id} is already replaced by another order"
        )));
    }
    Ok(())
}

/// Fetches order `id` of `account`, issuing its certificate first if processing is over.
fn load_order(ca: &Ca, state: &mut State, id: u64, account: u64) -> Result<(), Problem> {
    match state.orders.get(&id) {
        Some(o) if o.account == account => {}
        Some(_) => {
            return Err(Problem::unauthorized(
                "this order belongs to another account",
            ));
        }
        None => return Err(Problem::not_found(format!("no order {id}"))),
    }
    state.refresh_order(id);
    finish_processing(ca, state, id);
    Ok(())
}

/// `POST /acme/order/{id}` (POST-as-GET).
pub(crate) fn order(ca: &Ca, req: &Incoming, id: u64) -> Result<Reply, Problem> {
    let verified = ca.verify(req, KeyRule::Kid)?;
    let account = verified.account()?;
    let mut state = ca.state();
    load_order(ca, &mut state, id, account)?;
    let order = state
        .orders
        .get(&id)
        .ok_or_else(|| Problem::server_internal("order lost"))?;
    Ok(order_reply(&state, req, StatusCode::OK, id, order))
}

#[derive(Debug, Deserialize)]
struct FinalizePayload {
    csr: String,
}

/// `POST /acme/order/{id}/finalize`.
pub(crate) fn finalize(ca: &Arc<Ca>, req: &Incoming, id: u64) -> Result<Reply, Problem> {
    let verified = ca.verify(req, KeyRule::Kid)?;
    ca.counts().finalize_requests += 1;
    let account = verified.account()?;
    let payload: FinalizePayload = serde_json::from_slice(&verified.payload)
        .map_err(|e| Problem::malformed(format!("finalize payload: {e}")))?;
    let csr_der = b64(&payload.csr).map_err(|_| Problem::bad_csr("csr is not base64url"))?;
    let mut state = ca.state();
    load_order(ca, &mut state, id, account)?;
    let order = state
        .orders
        .get(&id)
        .ok_or_else(|| Problem::server_internal("order lost"))?;
    if order.status != OrderStatus::Ready {
        return Err(Problem::order_not_ready(format!(
            "order is {}, not ready",
            order.status.as_str()
        )));
    }
    let names: BTreeSet<String> = order.identifiers.iter().cloned().collect();
    let csr = check_csr(&csr_der, &names)?;
    let (delay, retry_after) = req
        .hold
        .unwrap_or((ca.config.processing_time, ca.config.poll_retry_after));
    let now = tokio::time::Instant::now();
    // A plan may ask for "forever"; a century is as good and does not overflow.
    let ready_at = now
        .checked_add(delay)
        .unwrap_or(now + std::time::Duration::from_secs(100 * 365 * 24 * 3600));
    if let Some(order) = state.orders.get_mut(&id) {
        order.status = OrderStatus::Processing;
        order.processing = Some(Processing {
            ready_at,
            retry_after,
            spki_der: csr.spki_der,
        });
    }
    if delay.is_zero() {
        finish_processing(ca, &mut state, id);
    } else {
        let ca2 = Arc::clone(ca);
        ca.spawn(async move {
            tokio::time::sleep_until(ready_at).await;
            let mut state = ca2.state();
            finish_processing(&ca2, &mut state, id);
        });
    }
    let order = state
        .orders
        .get(&id)
        .ok_or_else(|| Problem::server_internal("order lost"))?;
    Ok(order_reply(&state, req, StatusCode::OK, id, order))
}

/// Makes order `id` `invalid` with an `error` of `kind` (the fault plan's `invalid_order`).
pub(crate) fn invalidate(ca: &Ca, id: u64, kind: &str, detail: &str) {
    let mut state = ca.state();
    if let Some(order) = state.orders.get_mut(&id) {
        order.status = OrderStatus::Invalid;
        order.processing = None;
        order.error = Some(Problem::new(StatusCode::FORBIDDEN, kind, detail));
    }
}

/// Issues every `processing` order now, whatever its hold; returns how many.
pub(crate) fn release_processing(ca: &Ca) -> usize {
    let mut state = ca.state();
    let now = tokio::time::Instant::now();
    let held: Vec<u64> = state
        .orders
        .iter_mut()
        .filter(|(_, o)| o.status == OrderStatus::Processing)
        .filter_map(|(id, o)| {
            let processing = o.processing.as_mut()?;
            processing.ready_at = processing.ready_at.min(now);
            Some(*id)
        })
        .collect();
    for id in &held {
        finish_processing(ca, &mut state, *id);
    }
    held.len()
}

/// Issues the certificate of a `processing` order whose time has come.
pub(crate) fn finish_processing(ca: &Ca, state: &mut State, id: u64) {
    let Some(order) = state.orders.get(&id) else {
        return;
    };
    let Some(processing) = order.processing.clone() else {
        return;
    };
    if order.status != OrderStatus::Processing || tokio::time::Instant::now() < processing.ready_at
    {
        return;
    }
    let validity = order
        .profile
        .as_ref()
        .and_then(|p| ca.config.profiles.get(p))
        .map_or(ca.config.validity, |p| p.validity);
    let names = order.identifiers.clone();
    let account = order.account;
    let issued = ca.authority.issue(
        &processing.spki_der,
        &names,
        Utc::now().trunc_subsecs(0),
        validity,
    );
    let cert_id = state.next_id();
    let Some(order) = state.orders.get_mut(&id) else {
        return;
    };
    order.processing = None;
    match issued {
        Ok(issued) => {
            order.status = OrderStatus::Valid;
            order.cert = Some(cert_id);
            state
                .cert_by_cert_id
                .insert(issued.cert_id.clone(), cert_id);
            state.certs.insert(
                cert_id,
                CertRecord {
                    account,
                    names,
                    issued,
                    revoked: None,
                    replaced_by: None,
                },
            );
            ca.counts().certificates_issued += 1;
        }
        Err(problem) => {
            order.status = OrderStatus::Invalid;
            order.error = Some(problem);
        }
    }
}
