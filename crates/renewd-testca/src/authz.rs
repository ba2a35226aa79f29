//! Authorizations and challenges (RFC 8555 §7.5): creating them for an order, reading
//! them, and responding to a challenge (auto-valid, or real validation in the background).

use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use http::StatusCode;
use serde_json::{Value, json};

use crate::ca::{Ca, Incoming};
use crate::config::ChallengeMode;
use crate::fault_toml::ceil_secs;
use crate::jws::KeyRule;
use crate::response::{Problem, Reply};
use crate::state::{
    Authz, AuthzStatus, Challenge, ChallengeKind, ChallengeStatus, OrderStatus, State,
};
use crate::validation::{ValidationTask, validate};

/// The challenge types offered for an identifier.
fn offered(mode: &ChallengeMode, wildcard: bool) -> Vec<ChallengeKind> {
    let all = [
        ChallengeKind::Http01,
        ChallengeKind::Dns01,
        ChallengeKind::TlsAlpn01,
    ];
    all.into_iter()
        .filter(|k| !wildcard || *k == ChallengeKind::Dns01)
        .filter(|k| match mode {
            ChallengeMode::AutoValid => true,
            ChallengeMode::Validate(v) => match k {
                ChallengeKind::Http01 => v.http01_port.is_some(),
                ChallengeKind::Dns01 => v.dns01.is_some(),
                ChallengeKind::TlsAlpn01 => v.tls_alpn01_port.is_some(),
            },
        })
        .collect()
}

/// Creates a pending authorization (and its challenges) for `name`; returns its id.
pub(crate) fn create_authz(ca: &Ca, state: &mut State, name: &str) -> u64 {
    let (identifier, wildcard) = match name.strip_prefix("*.") {
        Some(base) => (base.to_owned(), true),
        None => (name.to_owned(), false),
    };
    let id = state.next_id();
    let mut challenges = Vec::new();
    for kind in offered(&ca.config.challenge_mode, wildcard) {
        let cid = state.next_id();
        state.challenges.insert(
            cid,
            Challenge {
                authz: id,
                kind,
                token: crate::random::token(),
                status: ChallengeStatus::Pending,
                validated: None,
                error: None,
            },
        );
        challenges.push(cid);
    }
    state.authzs.insert(
        id,
        Authz {
            identifier,
            wildcard,
            status: AuthzStatus::Pending,
            expires: Utc::now() + chrono::Duration::days(7),
            challenges,
        },
    );
    id
}

fn challenge_json(req: &Incoming, id: u64, c: &Challenge) -> Value {
    let mut v = json!({
        "type": c.kind.as_str(),
        "url": req.url_of(&format!("/acme/chall/{id}")),
        "status": c.status.as_str(),
        "token": c.token,
    });
    if let Some(t) = c.validated {
        v["validated"] = json!(t.to_rfc3339_opts(SecondsFormat::Secs, true));
    }
    if let Some(e) = &c.error {
        v["error"] = e.to_json();
    }
    v
}

/// The account that owns an authorization (through its orders).
fn owner(state: &State, authz_id: u64) -> Option<u64> {
    state
        .orders_of_authz(authz_id)
        .first()
        .and_then(|o| state.orders.get(o))
        .map(|o| o.account)
}

fn authz_reply(ca: &Ca, state: &State, req: &Incoming, id: u64) -> Result<Reply, Problem> {
    let authz = state
        .authzs
        .get(&id)
        .ok_or_else(|| Problem::not_found(format!("no authorization {id}")))?;
    let challenges: Vec<Value> = authz
        .challenges
        .iter()
        .filter_map(|c| {
            state
                .challenges
                .get(c)
                .map(|ch| challenge_json(req, *c, ch))
        })
        .collect();
    let mut v = json!({
        "status": authz.status.as_str(),
        "expires": authz.expires.to_rfc3339_opts(SecondsFormat::Secs, true),
        "identifier": {"type": "dns", "value": authz.identifier},
        "challenges": challenges,
    });
    if authz.wildcard {
        v["wildcard"] = json!(true);
    }
    let mut reply = Reply::json(StatusCode::OK, &v);
    if authz.status == AuthzStatus::Pending {
        reply = reply.retry_after(ceil_secs(ca.config.poll_retry_after).max(1));
    }
    Ok(reply)
}

/// `POST /acme/authz/{id}`: read, or deactivate (`{"status":"deactivated"}` → treated as
/// invalid, which is what matters to orders).
pub(crate) fn authorization(ca: &Ca, req: &Incoming, id: u64) -> Result<Reply, Problem> {
    let verified = ca.verify(req, KeyRule::Kid)?;
    let account = verified.account()?;
    let mut state = ca.state();
    if owner(&state, id) != Some(account) {
        return Err(Problem::not_found(format!(
            "no authorization {id} for this account"
        )));
    }
    if !verified.is_post_as_get() {
        let body = verified.json()?;
        if body.get("status").and_then(Value::as_str) == Some("deactivated") {
            if let Some(a) = state.authzs.get_mut(&id) {
                a.status = AuthzStatus::Invalid;
            }
            for o in state.orders_of_authz(id) {
                state.refresh_order(o);
            }
        }
    }
    authz_reply(ca, &state, req, id)
}

/// `POST /acme/chall/{id}`: `{}` starts validation, `""` reads.
pub(crate) fn challenge(ca: &Arc<Ca>, req: &Incoming, id: u64) -> Result<Reply, Problem> {
    let verified = ca.verify(req, KeyRule::Kid)?;
    let account = verified.account()?;
    let mut state = ca.state();
    let authz_id = state
        .challenges
        .get(&id)
        .map(|c| c.authz)
        .ok_or_else(|| Problem::not_found(format!("no challenge {id}")))?;
    if owner(&state, authz_id) != Some(account) {
        return Err(Problem::not_found(format!(
            "no challenge {id} for this account"
        )));
    }
    let respond = !verified.is_post_as_get();
    let pending = state.challenges.get(&id).map(|c| c.status) == Some(ChallengeStatus::Pending)
        && state.authzs.get(&authz_id).map(|a| a.status) == Some(AuthzStatus::Pending);
    if respond && pending {
        let thumbprint = state
            .accounts
            .get(&account)
            .map(|a| a.key.thumbprint())
            .unwrap_or_default();
        match &ca.config.challenge_mode {
            ChallengeMode::AutoValid => {
                set_outcome(ca, &mut state, id, Ok(()));
            }
            ChallengeMode::Validate(validators) => {
                let (Some(ch), Some(authz)) =
                    (state.challenges.get(&id), state.authzs.get(&authz_id))
                else {
                    return Err(Problem::server_internal("challenge lost"));
                };
                let task = ValidationTask {
                    kind: ch.kind,
                    domain: authz.identifier.clone(),
                    token: ch.token.clone(),
                    key_authorization: format!("{}.{thumbprint}", ch.token),
                    validators: validators.clone(),
                };
                if let Some(ch) = state.challenges.get_mut(&id) {
                    ch.status = ChallengeStatus::Processing;
                }
                let ca2 = Arc::clone(ca);
                ca.spawn(async move {
                    let outcome = validate(&task).await;
                    let mut state = ca2.state();
                    set_outcome(&ca2, &mut state, id, outcome);
                });
            }
        }
    }
    let ch = state
        .challenges
        .get(&id)
        .ok_or_else(|| Problem::server_internal("challenge lost"))?;
    let mut reply = Reply::json(StatusCode::OK, &challenge_json(req, id, ch))
        .link(&req.url_of(&format!("/acme/authz/{authz_id}")), "up");
    if matches!(ch.status, ChallengeStatus::Processing) {
        reply = reply.retry_after(ceil_secs(ca.config.poll_retry_after).max(1));
    }
    Ok(reply)
}

/// Records a validation's result on the challenge, its authorization and their orders.
fn set_outcome(ca: &Ca, state: &mut State, id: u64, outcome: Result<(), Problem>) {
    let Some(ch) = state.challenges.get_mut(&id) else {
        return;
    };
    let authz_id = ch.authz;
    let passed = outcome.is_ok();
    match outcome {
        Ok(()) => {
            ch.status = ChallengeStatus::Valid;
            ch.validated = Some(Utc::now());
        }
        Err(p) => {
            ch.status = ChallengeStatus::Invalid;
            ch.error = Some(p);
        }
    }
    if let Some(a) = state.authzs.get_mut(&authz_id) {
        a.status = if passed {
            AuthzStatus::Valid
        } else {
            AuthzStatus::Invalid
        };
    }
    for o in state.orders_of_authz(authz_id) {
        if state.orders.get(&o).map(|o| o.status) == Some(OrderStatus::Pending) {
            state.refresh_order(o);
        }
    }
    let mut counts = ca.counts();
    if passed {
        counts.validations_passed += 1;
    } else {
        counts.validations_failed += 1;
    }
}
