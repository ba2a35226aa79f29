//! The high-level flow: one order at one CA, from newOrder to the downloaded chain, with
//! the pending-order record persisted before finalize so a crash or a CA error never costs
//! a second order. CA selection and failover are the caller's (the issuer's) business.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use renewd_core::{ChallengeType, FailureClass, KeyType, Step};
use serde::{Deserialize, Serialize};

use crate::account::Account;
use crate::challenge::ChallengeAnswer;
use crate::client::Fetched;
use crate::error::{BoxError, Error};
use crate::finalize;
use crate::http::BoxFuture;
use crate::jws::b64;
use crate::keys::CertificateKey;
use crate::order::NewOrder;
use crate::poll::{Backoff, deadline_after};
use crate::types::{Identifier, Order};

/// Presents challenge answers (http-01 responder, DNS hook, tls-alpn-01 responder) and
/// removes them afterwards.
pub trait ChallengeSolver: Send + Sync {
    /// Makes `answer` visible to the CA. Called before the CA is told to validate.
    fn present<'a>(&'a self, answer: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>>;
    /// Removes `answer` once its authorization is decided (valid or not). Failures are
    /// logged, not fatal.
    fn cleanup<'a>(&'a self, answer: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>>;
}

/// Where the pending-order record is persisted. `save` must be durable when it returns:
/// the flow sends finalize only after it.
pub trait PendingOrderSink: Send + Sync {
    /// Persists the record (called once per order, after newOrder, before any challenge
    /// and before finalize).
    fn save<'a>(&'a self, order: &'a PendingOrder) -> BoxFuture<'a, Result<(), BoxError>>;
    /// The order is finished (certificate downloaded, or the order is invalid): the record
    /// may be dropped.
    fn finished<'a>(&'a self, order_url: &'a str) -> BoxFuture<'a, Result<(), BoxError>>;
}

/// What to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRequest {
    /// The identifiers; the CSR holds exactly these.
    pub identifiers: Vec<Identifier>,
    /// The certificate key's type (a new key per order).
    pub key_type: KeyType,
    /// The challenge type to answer.
    pub challenge: ChallengeType,
    /// The profile to ask for.
    pub profile: Option<String>,
    /// The ARI CertID of the certificate being replaced.
    pub replaces: Option<String>,
    /// On `409 alreadyReplaced`, order again without `replaces` (RFC 9773 §5).
    pub retry_without_replaces: bool,
    /// The preferred chain: the issuer CN of the top-most certificate.
    pub preferred_chain: Option<String>,
}

impl IssueRequest {
    /// A request for DNS names with the defaults: P-256, http-01, no profile, no ARI.
    pub fn dns<S: AsRef<str>>(names: &[S]) -> IssueRequest {
        IssueRequest {
            identifiers: names.iter().map(|n| Identifier::dns(n.as_ref())).collect(),
            key_type: KeyType::EcdsaP256,
            challenge: ChallengeType::Http01,
            profile: None,
            replaces: None,
            retry_without_replaces: true,
            preferred_chain: None,
        }
    }
}

/// The persistable record of an order in flight: enough to finish it after a restart with
/// the same key and CSR. Holds the certificate's private key: store it like one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOrder {
    /// The CA's directory URL.
    pub directory_url: String,
    /// The account URL.
    pub account_url: String,
    /// The order URL.
    pub order_url: String,
    /// The identifiers ordered.
    pub identifiers: Vec<Identifier>,
    /// The certificate key's type.
    pub key_type: KeyType,
    /// The certificate key, PKCS#8 PEM (secret).
    pub key_pem: String,
    /// The CSR, base64url DER.
    pub csr: String,
    /// The challenge type being answered.
    pub challenge: ChallengeType,
    /// The profile asked for.
    pub profile: Option<String>,
    /// The preferred chain.
    pub preferred_chain: Option<String>,
    /// When the order was created.
    pub created: DateTime<Utc>,
}

impl fmt::Debug for PendingOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingOrder")
            .field("order_url", &self.order_url)
            .field("account_url", &self.account_url)
            .field("identifiers", &self.identifiers)
            .field("key_type", &self.key_type)
            .field("challenge", &self.challenge)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

impl PendingOrder {
    pub(crate) fn csr_der(&self) -> Result<Vec<u8>, Error> {
        URL_SAFE_NO_PAD
            .decode(self.csr.trim())
            .map_err(|e| Error::Key {
                step: Step::Finalize,
                what: "reading the pending order's CSR",
                detail: e.to_string(),
            })
    }
}

/// An issued certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// The chosen chain, PEM, leaf first.
    pub chain_pem: String,
    /// The other chains the CA offered, PEM.
    pub alternates: Vec<String>,
    /// The certificate key, PKCS#8 PEM (secret).
    pub key_pem: String,
    /// The order URL.
    pub order_url: String,
    /// The URL the chosen chain came from.
    pub cert_url: String,
    /// The profile the order echoed (or the one asked for, if the CA did not echo it).
    pub profile: Option<String>,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("order_url", &self.order_url)
            .field("cert_url", &self.cert_url)
            .field("alternates", &self.alternates.len())
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// Issues one certificate at this account's CA: newOrder (retrying without `replaces`
    /// on `alreadyReplaced` when asked), a new key and CSR, the record handed to `sink`,
    /// authorizations through `solver`, finalize with recovery, download and chain choice.
    pub async fn issue(
        &self,
        request: &IssueRequest,
        solver: &dyn ChallengeSolver,
        sink: &dyn PendingOrderSink,
    ) -> Result<Issued, Error> {
        let mut new = NewOrder {
            identifiers: request.identifiers.clone(),
            profile: request.profile.clone(),
            replaces: request.replaces.clone(),
        };
        let order = match self.new_order_patiently(&new).await {
            Err(e)
                if e.is_problem("alreadyReplaced")
                    && request.retry_without_replaces
                    && new.replaces.is_some() =>
            {
                tracing::info!("the certificate was already replaced; ordering without replaces");
                new.replaces = None;
                self.new_order_patiently(&new).await?
            }
            other => other?,
        };
        let key_type = request.key_type;
        // RSA generation takes a while: keep it off the async workers.
        let key = tokio::task::spawn_blocking(move || CertificateKey::generate(key_type))
            .await
            .map_err(|e| Error::Key {
                step: Step::Finalize,
                what: "generating the certificate key",
                detail: e.to_string(),
            })??;
        let csr = key.csr_der(&request.identifiers)?;
        let record = PendingOrder {
            directory_url: self.client().directory_url().to_string(),
            account_url: self.url().to_string(),
            order_url: order.url.clone(),
            identifiers: request.identifiers.clone(),
            key_type,
            key_pem: key.to_pem(),
            csr: b64(&csr),
            challenge: request.challenge,
            profile: request.profile.clone(),
            preferred_chain: request.preferred_chain.clone(),
            created: Utc::now(),
        };
        sink.save(&record).await.map_err(|source| Error::Caller {
            step: Step::Finalize,
            what: "saving the pending order",
            source,
        })?;
        finalize::complete(self, &record, &key, &csr, Some(order), solver, sink).await
    }

    /// newOrder, retried after a short wait while the CA keeps refusing our nonces (a
    /// `badNonce` that outlived the client's immediate retries). Safe: a request refused for
    /// its nonce was not acted on, so this never makes a second order.
    async fn new_order_patiently(&self, new: &NewOrder) -> Result<Fetched<Order>, Error> {
        let settings = self.client().settings();
        let mut backoff = Backoff::new(&settings.poll, deadline_after(settings.order_timeout));
        loop {
            match self.new_order(new).await {
                Err(e) if e.class() == FailureClass::BadNonce => {
                    let url = e.url().unwrap_or_default().to_string();
                    if backoff.wait(None, Step::NewOrder, &url).await.is_err() {
                        return Err(e);
                    }
                }
                other => return other,
            }
        }
    }

    /// Finishes an order from its record (after a restart or a failed attempt): fetches the
    /// order and continues from its state with the recorded key and CSR. Never creates a
    /// new order.
    pub async fn resume(
        &self,
        record: &PendingOrder,
        solver: &dyn ChallengeSolver,
        sink: &dyn PendingOrderSink,
    ) -> Result<Issued, Error> {
        if record.account_url != self.url() || record.directory_url != self.client().directory_url()
        {
            return Err(Error::InvalidRequest {
                step: Step::PollOrder,
                detail: format!(
                    "the pending order {} belongs to account {} at {}, not to this account",
                    record.order_url, record.account_url, record.directory_url
                ),
            });
        }
        let key = CertificateKey::from_pem(&record.key_pem)?;
        let csr = record.csr_der()?;
        finalize::complete(self, record, &key, &csr, None, solver, sink).await
    }
}

/// A [`PendingOrderSink`] that keeps records in memory (tests, one-shot tools).
#[derive(Debug, Default)]
pub struct MemoryPendingOrders {
    records: Mutex<Vec<PendingOrder>>,
}

impl MemoryPendingOrders {
    /// The records saved and not yet finished.
    pub fn records(&self) -> Vec<PendingOrder> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl PendingOrderSink for MemoryPendingOrders {
    fn save<'a>(&'a self, order: &'a PendingOrder) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
            records.retain(|r| r.order_url != order.order_url);
            records.push(order.clone());
            Ok(())
        })
    }

    fn finished<'a>(&'a self, order_url: &'a str) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            self.records
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|r| r.order_url != order_url);
            Ok(())
        })
    }
}
