//! Orders, authorizations and challenges (§7.4, §7.5): the low-level requests, and polling.

use renewd_core::Step;
use serde_json::json;
use tokio::time::Instant;

use crate::account::Account;
use crate::client::{Fetched, Reply};
use crate::error::Error;
use crate::jws::b64;
use crate::poll::{Backoff, deadline_after};
use crate::types::{
    Authorization, AuthorizationStatus, Challenge, ChallengeStatus, Identifier, Order, OrderStatus,
};

/// What newOrder asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewOrder {
    /// The identifiers (at least one).
    pub identifiers: Vec<Identifier>,
    /// The profile name (draft-ietf-acme-profiles), if any.
    pub profile: Option<String>,
    /// The ARI CertID of the certificate this order replaces (RFC 9773 §5). Sent only when
    /// the CA's directory has `renewalInfo`.
    pub replaces: Option<String>,
}

fn fetched<T>(reply: &Reply, body: T) -> Fetched<T> {
    Fetched {
        url: reply.url.clone(),
        body,
        retry_after: reply.retry_after(),
    }
}

fn order_invalid(step: Step, url: &str, order: &Order) -> Error {
    Error::OrderInvalid {
        step,
        url: url.to_string(),
        problem: order.error.clone().map(Box::new),
    }
}

impl Account {
    /// newOrder (§7.4). Returns the order with its URL.
    pub async fn new_order(&self, new: &NewOrder) -> Result<Fetched<Order>, Error> {
        let step = Step::NewOrder;
        if new.identifiers.is_empty() {
            return Err(Error::InvalidRequest {
                step,
                detail: "an order needs at least one identifier".to_string(),
            });
        }
        let directory = self.client().directory().await?;
        let mut payload = json!({ "identifiers": new.identifiers });
        if let Some(profile) = &new.profile {
            if directory.meta.profiles.is_empty() {
                return Err(Error::Unsupported {
                    step,
                    url: self.client().directory_url().to_string(),
                    what: format!("profiles (asked for {profile:?})"),
                });
            }
            payload["profile"] = json!(profile);
        }
        if let Some(replaces) = &new.replaces {
            if directory.renewal_info.is_some() {
                payload["replaces"] = json!(replaces);
            } else {
                tracing::debug!("the CA has no renewalInfo: not sending replaces");
            }
        }
        let payload = payload.to_string();
        let url = directory.new_order.clone();
        let (order, _) = self
            .client()
            .post(
                self.post_args(step, &url, Some(payload.as_bytes()), None),
                |r| {
                    let order: Order = r.json()?;
                    let location = r.location()?;
                    Ok(Fetched {
                        url: location,
                        body: order,
                        retry_after: r.retry_after(),
                    })
                },
            )
            .await?;
        Ok(order)
    }

    /// POST-as-GET an order.
    pub async fn order(&self, url: &str) -> Result<Fetched<Order>, Error> {
        self.get_order(Step::PollOrder, url).await
    }

    pub(crate) async fn get_order(&self, step: Step, url: &str) -> Result<Fetched<Order>, Error> {
        let (order, _) = self
            .client()
            .post(self.post_args(step, url, None, Some(url)), |r| {
                Ok(fetched(r, r.json::<Order>()?))
            })
            .await?;
        Ok(order)
    }

    /// POST-as-GET an authorization.
    pub async fn authorization(&self, url: &str) -> Result<Fetched<Authorization>, Error> {
        self.authorization_in(url, None).await
    }

    pub(crate) async fn authorization_in(
        &self,
        url: &str,
        order_url: Option<&str>,
    ) -> Result<Fetched<Authorization>, Error> {
        let (authz, _) = self
            .client()
            .post(
                self.post_args(Step::Authorization, url, None, order_url),
                |r| Ok(fetched(r, r.json::<Authorization>()?)),
            )
            .await?;
        Ok(authz)
    }

    /// Tells the CA to validate a challenge (POST `{}`, §7.5.1).
    pub async fn respond_challenge(&self, url: &str) -> Result<Fetched<Challenge>, Error> {
        self.respond_challenge_in(url, None).await
    }

    pub(crate) async fn respond_challenge_in(
        &self,
        url: &str,
        order_url: Option<&str>,
    ) -> Result<Fetched<Challenge>, Error> {
        let (challenge, _) = self
            .client()
            .post(
                self.post_args(Step::Challenge, url, Some(b"{}"), order_url),
                |r| Ok(fetched(r, r.json::<Challenge>()?)),
            )
            .await?;
        Ok(challenge)
    }

    /// Polls an authorization until it leaves `pending`. `valid` is success; anything else
    /// is [`Error::AuthorizationFailed`] with the failed challenge's error.
    pub async fn poll_authorization(&self, url: &str) -> Result<Authorization, Error> {
        let deadline = deadline_after(self.client().settings().poll.timeout);
        self.poll_authorization_in(url, None, deadline).await
    }

    pub(crate) async fn poll_authorization_in(
        &self,
        url: &str,
        order_url: Option<&str>,
        deadline: Instant,
    ) -> Result<Authorization, Error> {
        let mut backoff = Backoff::new(&self.client().settings().poll, deadline);
        loop {
            let authz = self.authorization_in(url, order_url).await?;
            match authz.body.status {
                AuthorizationStatus::Pending => {
                    backoff
                        .wait(authz.retry_after, Step::Authorization, url)
                        .await?;
                }
                AuthorizationStatus::Valid => return Ok(authz.body),
                _ => return Err(authorization_failed(url, &authz.body)),
            }
        }
    }

    /// Sends the CSR (DER) to the order's finalize URL (§7.4).
    pub async fn finalize(
        &self,
        order_url: &str,
        finalize_url: &str,
        csr_der: &[u8],
    ) -> Result<Fetched<Order>, Error> {
        let payload = json!({ "csr": b64(csr_der) }).to_string();
        let (order, _) = self
            .client()
            .post(
                self.post_args(
                    Step::Finalize,
                    finalize_url,
                    Some(payload.as_bytes()),
                    Some(order_url),
                ),
                |r| {
                    let order: Order = r.json()?;
                    // The answer is the order; its URL is the order's, not finalize's.
                    Ok(Fetched {
                        url: order_url.to_string(),
                        body: order,
                        retry_after: r.retry_after(),
                    })
                },
            )
            .await?;
        Ok(order)
    }

    /// Polls an order while it is `processing`. Returns it once it is anything else but
    /// `invalid` (which is [`Error::OrderInvalid`]).
    pub async fn poll_order(&self, url: &str) -> Result<Order, Error> {
        let deadline = deadline_after(self.client().settings().poll.timeout);
        self.poll_order_until(url, None, deadline).await
    }

    pub(crate) async fn poll_order_until(
        &self,
        url: &str,
        first_retry_after: Option<chrono::DateTime<chrono::Utc>>,
        deadline: Instant,
    ) -> Result<Order, Error> {
        let mut backoff = Backoff::new(&self.client().settings().poll, deadline);
        let mut retry_after = first_retry_after;
        loop {
            backoff.wait(retry_after, Step::PollOrder, url).await?;
            let order = self.get_order(Step::PollOrder, url).await?;
            match order.body.status {
                OrderStatus::Processing => retry_after = order.retry_after,
                OrderStatus::Invalid => {
                    return Err(order_invalid(Step::PollOrder, url, &order.body));
                }
                _ => return Ok(order.body),
            }
        }
    }
}

pub(crate) fn invalid_order_error(step: Step, url: &str, order: &Order) -> Error {
    order_invalid(step, url, order)
}

/// The error for an authorization that is not valid: the failed challenge's problem.
pub(crate) fn authorization_failed(url: &str, authz: &Authorization) -> Error {
    let problem = authz
        .challenges
        .iter()
        .find(|c| c.status == ChallengeStatus::Invalid && c.error.is_some())
        .or_else(|| authz.challenges.iter().find(|c| c.error.is_some()))
        .and_then(|c| c.error.clone());
    Error::AuthorizationFailed {
        url: url.to_string(),
        identifier: authz.identifier.value.clone(),
        status: authz.status.to_string(),
        problem: problem.map(Box::new),
    }
}
