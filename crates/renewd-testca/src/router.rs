//! URL layout and dispatch: which handler answers which path, and the directory itself.
//!
//! ```text
//! GET       /dir                          directory
//! HEAD|GET  /nonce                        newNonce
//! POST      /acme/new-account             newAccount
//! POST      /acme/new-order               newOrder
//! POST      /acme/revoke-cert             revokeCert
//! POST      /acme/key-change              keyChange
//! GET       /acme/renewal-info/{certID}   ARI
//! POST      /acme/acct/{id}[/orders]      account, its orders
//! POST      /acme/order/{id}[/finalize]   order, finalize
//! POST      /acme/authz/{id}              authorization
//! POST      /acme/chall/{id}              challenge
//! POST      /acme/cert/{id}[/alt/{n}]     certificate chain n
//! GET       /terms                        terms of service (plain text)
//! ```

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;

use crate::ca::{Ca, Incoming};
use crate::faults::Endpoint;
use crate::response::{Problem, Reply};
use crate::{accounts, ari, authz, certs, orders};

/// A parsed request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Directory,
    Nonce,
    NewAccount,
    NewOrder,
    Revoke,
    KeyChange,
    RenewalInfo(String),
    Account(u64),
    AccountOrders(u64),
    Order(u64),
    Finalize(u64),
    Authz(u64),
    Challenge(u64),
    Certificate(u64, usize),
    Terms,
    NotFound,
}

impl Route {
    pub fn parse(path: &str) -> Route {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let id = |s: &str| s.parse::<u64>().ok();
        match segments.as_slice() {
            ["dir"] | ["directory"] => Route::Directory,
            ["nonce"] => Route::Nonce,
            ["terms"] => Route::Terms,
            ["acme", "new-account"] => Route::NewAccount,
            ["acme", "new-order"] => Route::NewOrder,
            ["acme", "revoke-cert"] => Route::Revoke,
            ["acme", "key-change"] => Route::KeyChange,
            ["acme", "renewal-info", cert_id] if !cert_id.is_empty() => {
                Route::RenewalInfo((*cert_id).to_owned())
            }
            ["acme", "acct", n] => id(n).map_or(Route::NotFound, Route::Account),
            ["acme", "acct", n, "orders"] => id(n).map_or(Route::NotFound, Route::AccountOrders),
            ["acme", "order", n] => id(n).map_or(Route::NotFound, Route::Order),
            ["acme", "order", n, "finalize"] => id(n).map_or(Route::NotFound, Route::Finalize),
            ["acme", "authz", n] => id(n).map_or(Route::NotFound, Route::Authz),
            ["acme", "chall", n] => id(n).map_or(Route::NotFound, Route::Challenge),
            ["acme", "cert", n] => id(n).map_or(Route::NotFound, |n| Route::Certificate(n, 0)),
            ["acme", "cert", n, "alt", k] => match (id(n), k.parse::<usize>().ok()) {
                (Some(n), Some(k)) => Route::Certificate(n, k),
                _ => Route::NotFound,
            },
            _ => Route::NotFound,
        }
    }

    /// The endpoint fault rules and counts know this route by.
    pub fn endpoint(&self) -> Option<Endpoint> {
        Some(match self {
            Route::Directory => Endpoint::Directory,
            Route::Nonce => Endpoint::Nonce,
            Route::NewAccount => Endpoint::NewAccount,
            Route::NewOrder => Endpoint::NewOrder,
            Route::Revoke => Endpoint::Revoke,
            Route::KeyChange => Endpoint::KeyChange,
            Route::RenewalInfo(_) => Endpoint::RenewalInfo,
            Route::Account(_) | Route::AccountOrders(_) => Endpoint::Account,
            Route::Order(_) => Endpoint::Order,
            Route::Finalize(_) => Endpoint::Finalize,
            Route::Authz(_) => Endpoint::Authorization,
            Route::Challenge(_) => Endpoint::Challenge,
            Route::Certificate(..) => Endpoint::Certificate,
            Route::Terms | Route::NotFound => return None,
        })
    }

    fn methods(&self) -> &'static [Method] {
        match self {
            Route::Directory | Route::RenewalInfo(_) | Route::Terms => &[Method::GET, Method::HEAD],
            Route::Nonce => &[Method::HEAD, Method::GET],
            Route::NotFound => &[],
            _ => &[Method::POST],
        }
    }
}

/// Answers one request.
pub(crate) fn handle(ca: &Arc<Ca>, route: &Route, req: &Incoming) -> Reply {
    if *route == Route::NotFound {
        return Problem::not_found(format!("nothing at {}", req.path)).into_reply();
    }
    if !route.methods().contains(&req.method) {
        let allow = route
            .methods()
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        return Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "malformed",
            "method not allowed",
        )
        .into_reply()
        .header(http::header::ALLOW, &allow);
    }
    let result = match route {
        Route::Directory => Ok(directory(ca, req)),
        Route::Nonce => Ok(Reply::new(
            if req.method == Method::HEAD {
                StatusCode::OK
            } else {
                StatusCode::NO_CONTENT
            },
            None,
            Bytes::new(),
        )),
        Route::Terms => Ok(Reply::new(
            StatusCode::OK,
            Some("text/plain"),
            Bytes::from_static(b"renewd-testca: a test CA. Certificates are worth nothing.\n"),
        )),
        Route::NewAccount => accounts::new_account(ca, req),
        Route::Account(id) => accounts::account(ca, req, *id),
        Route::AccountOrders(id) => accounts::orders_list(ca, req, *id),
        Route::KeyChange => accounts::key_change(ca, req),
        Route::NewOrder => orders::new_order(ca, req),
        Route::Order(id) => orders::order(ca, req, *id),
        Route::Finalize(id) => orders::finalize(ca, req, *id),
        Route::Authz(id) => authz::authorization(ca, req, *id),
        Route::Challenge(id) => authz::challenge(ca, req, *id),
        Route::Certificate(id, n) => certs::certificate(ca, req, *id, *n),
        Route::Revoke => certs::revoke(ca, req),
        Route::RenewalInfo(cert_id) => ari::renewal_info(ca, cert_id),
        Route::NotFound => Err(Problem::not_found("nothing here")),
    };
    result.unwrap_or_else(Problem::into_reply)
}

fn directory(ca: &Ca, req: &Incoming) -> Reply {
    let profiles: serde_json::Map<String, serde_json::Value> = ca
        .config
        .profiles
        .iter()
        .map(|(name, p)| (name.clone(), json!(p.description)))
        .collect();
    let mut meta = json!({
        "termsOfService": req.url_of("/terms"),
        "website": req.url_of("/terms"),
        "caaIdentities": ["testca.renewd.invalid"],
        "externalAccountRequired": ca.config.eab_required,
    });
    if !profiles.is_empty() {
        meta["profiles"] = serde_json::Value::Object(profiles);
    }
    Reply::json(
        StatusCode::OK,
        &json!({
            "newNonce": req.url_of("/nonce"),
            "newAccount": req.url_of("/acme/new-account"),
            "newOrder": req.url_of("/acme/new-order"),
            "revokeCert": req.url_of("/acme/revoke-cert"),
            "keyChange": req.url_of("/acme/key-change"),
            "renewalInfo": req.url_of("/acme/renewal-info"),
            "meta": meta,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_to_their_endpoints() {
        assert_eq!(Route::parse("/dir"), Route::Directory);
        assert_eq!(Route::parse("/acme/order/12/finalize"), Route::Finalize(12));
        assert_eq!(Route::parse("/acme/cert/3/alt/1"), Route::Certificate(3, 1));
        assert_eq!(
            Route::parse("/acme/renewal-info/aYhb.AIdl"),
            Route::RenewalInfo("aYhb.AIdl".into())
        );
        assert_eq!(Route::parse("/acme/order/x"), Route::NotFound);
        assert_eq!(
            Route::parse("/acme/acct/4/orders").endpoint(),
            Some(Endpoint::Account)
        );
        assert_eq!(Route::parse("/nope").endpoint(), None);
    }
}
