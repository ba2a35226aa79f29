//! The CA's objects in memory: accounts, orders, authorizations, challenges, certificates.
//!
//! One [`State`] behind one mutex; handlers lock it for short, synchronous stretches and
//! never across an `.await`. Every object has a numeric id, unique across kinds, that is also
//! the last segment of its URL.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::issuance::Issued;
use crate::jws::Jwk;
use crate::response::Problem;

macro_rules! status_enum {
    ($name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum $name { $($variant),* }
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }
    };
}

status_enum!(AccountStatus { Valid => "valid", Deactivated => "deactivated" });
status_enum!(OrderStatus {
    Pending => "pending", Ready => "ready", Processing => "processing",
    Valid => "valid", Invalid => "invalid",
});
status_enum!(AuthzStatus { Pending => "pending", Valid => "valid", Invalid => "invalid" });
status_enum!(ChallengeStatus {
    Pending => "pending", Processing => "processing", Valid => "valid", Invalid => "invalid",
});
status_enum!(ChallengeKind { Http01 => "http-01", Dns01 => "dns-01", TlsAlpn01 => "tls-alpn-01" });

#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub key: Jwk,
    pub contact: Vec<String>,
    pub status: AccountStatus,
    pub eab_kid: Option<String>,
    pub orders: Vec<u64>,
}

/// A finalized order waiting for its certificate.
#[derive(Debug, Clone)]
pub(crate) struct Processing {
    pub ready_at: tokio::time::Instant,
    pub retry_after: Duration,
    pub spki_der: Vec<u8>,
}

#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub account: u64,
    /// Lower-case DNS names, wildcards as `*.name`.
    pub identifiers: Vec<String>,
    pub authzs: Vec<u64>,
    pub profile: Option<String>,
    pub replaces: Option<String>,
    pub status: OrderStatus,
    pub expires: DateTime<Utc>,
    pub error: Option<Problem>,
    pub processing: Option<Processing>,
    pub cert: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Authz {
    /// The domain without any `*.`.
    pub identifier: String,
    pub wildcard: bool,
    pub status: AuthzStatus,
    pub expires: DateTime<Utc>,
    pub challenges: Vec<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Challenge {
    pub authz: u64,
    pub kind: ChallengeKind,
    pub token: String,
    pub status: ChallengeStatus,
    pub validated: Option<DateTime<Utc>>,
    pub error: Option<Problem>,
}

#[derive(Debug, Clone)]
pub(crate) struct CertRecord {
    pub account: u64,
    pub names: Vec<String>,
    pub issued: Issued,
    pub revoked: Option<(DateTime<Utc>, u8)>,
    /// The order that names this certificate in `replaces`.
    pub replaced_by: Option<u64>,
}

/// Everything the CA knows.
#[derive(Debug, Default)]
pub(crate) struct State {
    next_id: u64,
    pub accounts: BTreeMap<u64, Account>,
    pub account_by_thumbprint: HashMap<String, u64>,
    pub orders: BTreeMap<u64, Order>,
    pub authzs: BTreeMap<u64, Authz>,
    pub challenges: BTreeMap<u64, Challenge>,
    pub certs: BTreeMap<u64, CertRecord>,
    /// ARI CertID → certificate id.
    pub cert_by_cert_id: HashMap<String, u64>,
}

impl State {
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Brings a pending order up to date with its authorizations: all valid → `ready`, any
    /// invalid → `invalid`.
    pub fn refresh_order(&mut self, order_id: u64) {
        let Some(order) = self.orders.get(&order_id) else {
            return;
        };
        if order.status != OrderStatus::Pending {
            return;
        }
        let statuses: Vec<AuthzStatus> = order
            .authzs
            .iter()
            .filter_map(|a| self.authzs.get(a).map(|a| a.status))
            .collect();
        let new = if statuses.contains(&AuthzStatus::Invalid) {
            Some(OrderStatus::Invalid)
        } else if statuses.iter().all(|s| *s == AuthzStatus::Valid) {
            Some(OrderStatus::Ready)
        } else {
            None
        };
        if let (Some(new), Some(order)) = (new, self.orders.get_mut(&order_id)) {
            order.status = new;
            if new == OrderStatus::Invalid {
                order.error = Some(Problem::new(
                    http::StatusCode::FORBIDDEN,
                    "unauthorized",
                    "an authorization of this order failed",
                ));
            }
        }
    }

    /// The orders that use authorization `authz_id`.
    pub fn orders_of_authz(&self, authz_id: u64) -> Vec<u64> {
        self.orders
            .iter()
            .filter(|(_, o)| o.authzs.contains(&authz_id))
            .map(|(id, _)| *id)
            .collect()
    }
}

/// The account id in a `kid` URL (`…/acme/acct/ID`).
pub(crate) fn account_id_of_kid(kid: &str) -> Option<u64> {
    let (_, tail) = kid.rsplit_once("/acme/acct/")?;
    tail.parse().ok()
}
