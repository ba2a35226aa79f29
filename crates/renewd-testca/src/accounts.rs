//! Accounts (RFC 8555 §7.3): newAccount (with onlyReturnExisting and EAB), the account URL
//! (read, contact update, deactivation, orders list) and keyChange.

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ca::{Ca, Incoming};
use crate::eab::verify_eab;
use crate::jws::{FlattenedJws, Jwk, KeyRule, Signer};
use crate::response::{Problem, Reply};
use crate::state::{Account, AccountStatus, account_id_of_kid};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewAccountPayload {
    #[serde(default)]
    contact: Vec<String>,
    #[serde(default)]
    terms_of_service_agreed: bool,
    #[serde(default)]
    only_return_existing: bool,
    external_account_binding: Option<Value>,
}

fn account_json(account: &Account, orders_url: &str) -> Value {
    let mut v = json!({
        "status": account.status.as_str(),
        "contact": account.contact,
        "orders": orders_url,
    });
    if let Some(kid) = &account.eab_kid {
        v["externalAccountBinding"] = json!({"kid": kid});
    }
    v
}

fn account_reply(req: &Incoming, status: StatusCode, id: u64, account: &Account) -> Reply {
    let url = req.url_of(&format!("/acme/acct/{id}"));
    Reply::json(status, &account_json(account, &format!("{url}/orders"))).location(&url)
}

fn check_contacts(contact: &[String]) -> Result<(), Problem> {
    for c in contact {
        if !c.starts_with("mailto:") {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "unsupportedContact",
                format!("contact {c:?} is not a mailto: URL"),
            ));
        }
    }
    Ok(())
}

/// `POST newAccount`.
pub(crate) fn new_account(ca: &Ca, req: &Incoming) -> Result<Reply, Problem> {
    let verified = ca.verify(req, KeyRule::Jwk)?;
    let Signer::Jwk(jwk) = verified.signer.clone() else {
        return Err(Problem::malformed("newAccount must be signed with a jwk"));
    };
    let payload: NewAccountPayload = serde_json::from_slice(&verified.payload)
        .map_err(|e| Problem::malformed(format!("newAccount payload: {e}")))?;
    let thumbprint = jwk.thumbprint();
    {
        let state = ca.state();
        if let Some(id) = state.account_by_thumbprint.get(&thumbprint)
            && let Some(account) = state.accounts.get(id)
        {
            return Ok(account_reply(req, StatusCode::OK, *id, account));
        }
    }
    if payload.only_return_existing {
        return Err(Problem::account_does_not_exist(
            "no account exists with this key",
        ));
    }
    if ca.config.require_terms_agreement && !payload.terms_of_service_agreed {
        return Err(Problem::malformed("you must agree to the terms of service"));
    }
    check_contacts(&payload.contact)?;
    let eab_kid = match &payload.external_account_binding {
        Some(eab) => Some(verify_eab(eab, &jwk, &req.url(), &ca.config.eab_keys)?),
        None if ca.config.eab_required => {
            return Err(Problem::external_account_required(
                "this CA requires an external account binding",
            ));
        }
        None => None,
    };
    let account = Account {
        key: jwk,
        contact: payload.contact,
        status: AccountStatus::Valid,
        eab_kid,
        orders: Vec::new(),
    };
    let mut state = ca.state();
    // Another request may have created it since the check above.
    if let Some(id) = state.account_by_thumbprint.get(&thumbprint)
        && let Some(existing) = state.accounts.get(id)
    {
        return Ok(account_reply(req, StatusCode::OK, *id, existing));
    }
    let id = state.next_id();
    let reply = account_reply(req, StatusCode::CREATED, id, &account);
    state.accounts.insert(id, account);
    state.account_by_thumbprint.insert(thumbprint, id);
    drop(state);
    ca.counts().accounts_created += 1;
    Ok(reply)
}

#[derive(Debug, Default, Deserialize)]
struct AccountUpdate {
    contact: Option<Vec<String>>,
    status: Option<String>,
}

/// `POST /acme/acct/{id}`: read (POST-as-GET), update contact, or deactivate.
pub(crate) fn account(ca: &Ca, req: &Incoming, id: u64) -> Result<Reply, Problem> {
    let verified = ca.verify(req, KeyRule::Kid)?;
    if verified.account()? != id {
        return Err(Problem::unauthorized("this is another account"));
    }
    let update: AccountUpdate = if verified.is_post_as_get() {
        AccountUpdate::default()
    } else {
        serde_json::from_slice(&verified.payload)
            .map_err(|e| Problem::malformed(format!("account update: {e}")))?
    };
    if let Some(contact) = &update.contact {
        check_contacts(contact)?;
    }
    let mut state = ca.state();
    let account = state
        .accounts
        .get_mut(&id)
        .ok_or_else(|| Problem::account_does_not_exist("no such account"))?;
    if let Some(contact) = update.contact {
        account.contact = contact;
    }
    match update.status.as_deref() {
        None => {}
        Some("deactivated") => account.status = AccountStatus::Deactivated,
        Some(other) => {
            return Err(Problem::malformed(format!(
                "cannot set account status {other:?}"
            )));
        }
    }
    Ok(account_reply(req, StatusCode::OK, id, account))
}

/// `POST /acme/acct/{id}/orders` (POST-as-GET): the account's order URLs.
pub(crate) fn orders_list(ca: &Ca, req: &Incoming, id: u64) -> Result<Reply, Problem> {
    let verified = ca.verify(req, KeyRule::Kid)?;
    if verified.account()? != id {
        return Err(Problem::unauthorized("this is another account"));
    }
    let state = ca.state();
    let account = state
        .accounts
        .get(&id)
        .ok_or_else(|| Problem::account_does_not_exist("no such account"))?;
    let urls: Vec<String> = account
        .orders
        .iter()
        .map(|o| req.url_of(&format!("/acme/order/{o}")))
        .collect();
    Ok(Reply::json(StatusCode::OK, &json!({ "orders": urls })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyChangePayload {
    account: String,
    old_key: Value,
}

/// `POST keyChange` (RFC 8555 §7.3.5): the outer JWS by the old key (kid), the inner by the
/// new key (jwk), both with the keyChange URL.
pub(crate) fn key_change(ca: &Ca, req: &Incoming) -> Result<Reply, Problem> {
    let verified = ca.verify(req, KeyRule::Kid)?;
    let id = verified.account()?;
    let inner = FlattenedJws::from_value(&verified.json()?)?;
    let header = inner.header()?;
    if header.url.as_deref() != Some(req.url().as_str()) {
        return Err(Problem::malformed("inner JWS url is not the keyChange URL"));
    }
    let new_key = Jwk::from_value(
        header
            .jwk
            .as_ref()
            .ok_or_else(|| Problem::malformed("inner JWS has no jwk"))?,
    )?;
    inner.verify(header.alg.as_deref().unwrap_or(""), &new_key)?;
    let payload: KeyChangePayload = serde_json::from_slice(&inner.payload_bytes()?)
        .map_err(|e| Problem::malformed(format!("keyChange payload: {e}")))?;
    if account_id_of_kid(&payload.account) != Some(id) {
        return Err(Problem::unauthorized(
            "keyChange account is not the signing account",
        ));
    }
    let old_key = Jwk::from_value(&payload.old_key)?;
    let mut state = ca.state();
    let new_thumb = new_key.thumbprint();
    if let Some(other) = state.account_by_thumbprint.get(&new_thumb) {
        let url = req.url_of(&format!("/acme/acct/{other}"));
        return Err(Problem {
            location: Some(url),
            ..Problem::new(
                StatusCode::CONFLICT,
                "malformed",
                "the new key already belongs to an account",
            )
        });
    }
    let account = state
        .accounts
        .get_mut(&id)
        .ok_or_else(|| Problem::account_does_not_exist("no such account"))?;
    if account.key != old_key {
        return Err(Problem::unauthorized("oldKey is not the account's key"));
    }
    let old_thumb = account.key.thumbprint();
    account.key = new_key;
    let reply = account_reply(req, StatusCode::OK, id, account);
    state.account_by_thumbprint.remove(&old_thumb);
    state.account_by_thumbprint.insert(new_thumb, id);
    Ok(reply)
}
