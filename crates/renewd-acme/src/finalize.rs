//! Finishing an order with recovery (PROTOCOL.md): whatever happened to the last request,
//! fetch the order and act on its state — `pending`: authorizations; `ready`: finalize
//! (again, same CSR); `processing`: poll; `valid`: download with the recorded key;
//! `invalid`: the order's error. 5xx, timeouts, resets and `orderNotReady` are answered by
//! waiting and fetching the order again; a rate limit only when its Retry-After can be
//! waited out in full (otherwise the attempt ends and the order is resumed later). One
//! overall deadline bounds it all.

use renewd_core::{FailureClass, Step};
use tokio::time::Instant;

use crate::account::Account;
use crate::certificate::{CertificateChain, DownloadedChains, alternate_links};
use crate::challenge::ChallengeAnswer;
use crate::client::{Fetched, Reply};
use crate::error::Error;
use crate::flow::{ChallengeSolver, Issued, PendingOrder, PendingOrderSink};
use crate::keys::CertificateKey;
use crate::order::{authorization_failed, invalid_order_error};
use crate::poll::{Backoff, PollPolicy, can_wait_until, deadline_after};
use crate::types::{AuthorizationStatus, ChallengeStatus, Order, OrderStatus};

/// Whether waiting and asking again may get past `e` before `deadline`. A rate limit is
/// waited out only when the CA said for how long and that Retry-After can be honoured in
/// full (DESIGN.md: no request to the CA before it); a longer one, or one without
/// Retry-After (the poll back-off would guess far too short), ends the attempt and the
/// order is resumed later.
fn worth_retrying(e: &Error, policy: &PollPolicy, deadline: Instant) -> bool {
    match e.class() {
        FailureClass::RateLimited { retry_after } => {
            retry_after.is_some_and(|at| can_wait_until(policy, deadline, at))
        }
        FailureClass::CaUnavailable | FailureClass::BadNonce => {
            !matches!(e, Error::Deadline { .. })
        }
        _ => false,
    }
}

/// Drives the order at `record.order_url` to a certificate. `order` is its last known
/// state (None: fetch it first).
pub(crate) async fn complete(
    account: &Account,
    record: &PendingOrder,
    key: &CertificateKey,
    csr: &[u8],
    order: Option<Fetched<Order>>,
    solver: &dyn ChallengeSolver,
    sink: &dyn PendingOrderSink,
) -> Result<Issued, Error> {
    let settings = account.client().settings().clone();
    let deadline = deadline_after(settings.order_timeout);
    let url = record.order_url.as_str();
    let mut current = match order {
        Some(o) => o,
        None => fetch_order(account, url, deadline).await?,
    };
    // The state being waited on, and the back-off of that wait (new for each new state).
    let mut waiting_on: Option<OrderStatus> = None;
    let mut waits = Backoff::new(&settings.poll, deadline);
    // The last recoverable failure, returned if the deadline ends the recovery, and the
    // Retry-After it carried.
    let mut last_error: Option<Error> = None;
    let mut hint = None;
    loop {
        let status = current.body.status;
        let mut wait = true;
        match status {
            OrderStatus::Valid => {
                let issued = download(account, record, key, &current.body, deadline).await?;
                finished(sink, url).await;
                return Ok(issued);
            }
            OrderStatus::Invalid => {
                finished(sink, url).await;
                return Err(invalid_order_error(Step::PollOrder, url, &current.body));
            }
            OrderStatus::Pending => {
                match solve_authorizations(account, url, &current.body, record, solver, deadline)
                    .await
                {
                    // Fresh from solving: look at the order at once. Still pending after
                    // that (every authorization valid): the CA lags, so wait.
                    Ok(()) => wait = waiting_on == Some(OrderStatus::Pending),
                    Err(e) if worth_retrying(&e, &settings.poll, deadline) => {
                        hint = e.retry_after();
                        last_error = Some(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            OrderStatus::Ready => match account.finalize(url, &current.body.finalize, csr).await {
                Ok(order) if order.body.status == OrderStatus::Ready => {
                    // Accepted, yet not acted on: the CA lags. Wait as for any state
                    // before asking again, or finalize would be resent in a hot loop.
                    hint = order.retry_after;
                    last_error = None;
                }
                Ok(order) => {
                    current = order;
                    waiting_on = None;
                    last_error = None;
                    continue;
                }
                Err(e)
                    if worth_retrying(&e, &settings.poll, deadline)
                        || e.is_problem("orderNotReady") =>
                {
                    // The outcome is unknown (the CA may have issued): the order's state
                    // decides what comes next, never a new order.
                    tracing::info!(order = url, error = %e, "finalize failed; fetching the order");
                    hint = e.retry_after();
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            },
            OrderStatus::Processing => {}
            _ => {
                last_error = Some(Error::InvalidResponse {
                    step: Step::PollOrder,
                    url: url.to_string(),
                    status: 200,
                    reason: format!("unknown order status {status}"),
                    body_snippet: String::new(),
                });
            }
        }
        if waiting_on != Some(status) {
            waits = Backoff::new(&settings.poll, deadline);
            waiting_on = Some(status);
        }
        if wait {
            let retry_after = hint.take().or(current.retry_after);
            if let Err(deadline_error) = waits.wait(retry_after, Step::PollOrder, url).await {
                return Err(last_error.unwrap_or(deadline_error));
            }
        }
        current = fetch_order(account, url, deadline).await?;
    }
}

async fn finished(sink: &dyn PendingOrderSink, url: &str) {
    if let Err(e) = sink.finished(url).await {
        tracing::warn!(order = url, error = %e, "could not drop the pending-order record");
    }
}

/// POST-as-GET the order, retrying transient failures until the deadline; at the deadline
/// the last failure is returned.
async fn fetch_order(
    account: &Account,
    url: &str,
    deadline: Instant,
) -> Result<Fetched<Order>, Error> {
    let policy = &account.client().settings().poll;
    let mut backoff = Backoff::new(policy, deadline);
    loop {
        match account.get_order(Step::PollOrder, url).await {
            Ok(order) => return Ok(order),
            Err(e) if worth_retrying(&e, policy, deadline) => {
                if backoff
                    .wait(e.retry_after(), Step::PollOrder, url)
                    .await
                    .is_err()
                {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Downloads the chains and picks one. Each chain is fetched, and retried after transient
/// failures until the deadline, on its own: a failed alternate does not cost the default
/// chain a second download from a CA that is already struggling.
async fn download(
    account: &Account,
    record: &PendingOrder,
    key: &CertificateKey,
    order: &Order,
    deadline: Instant,
) -> Result<Issued, Error> {
    let url = record.order_url.as_str();
    let cert_url = order
        .certificate
        .clone()
        .ok_or_else(|| Error::InvalidResponse {
            step: Step::PollOrder,
            url: url.to_string(),
            status: 200,
            reason: "a valid order without a certificate URL".to_string(),
            body_snippet: String::new(),
        })?;
    let mut backoff = Backoff::new(&account.client().settings().poll, deadline);
    let (default, reply) = download_chain(account, &cert_url, url, deadline, &mut backoff).await?;
    let mut alternates = Vec::new();
    for alt in alternate_links(&reply, &cert_url) {
        let (chain, _) = download_chain(account, &alt, url, deadline, &mut backoff).await?;
        alternates.push(chain);
    }
    let chains = DownloadedChains {
        default,
        alternates,
    };
    let (chosen, others) = chains.choose(record.preferred_chain.as_deref());
    Ok(Issued {
        chain_pem: chosen.pem,
        alternates: others.into_iter().map(|c| c.pem).collect(),
        key_pem: key.to_pem(),
        order_url: url.to_string(),
        cert_url: chosen.url,
        profile: order.profile.clone().or_else(|| record.profile.clone()),
    })
}

/// The chain at `chain_url` of the order at `order_url`, retried after transient failures
/// until the deadline (`backoff` is shared by the chains of one download).
async fn download_chain(
    account: &Account,
    chain_url: &str,
    order_url: &str,
    deadline: Instant,
    backoff: &mut Backoff,
) -> Result<(CertificateChain, Reply), Error> {
    let policy = &account.client().settings().poll;
    loop {
        match account.download_one(chain_url, Some(order_url)).await {
            Ok(fetched) => return Ok(fetched),
            Err(e) if worth_retrying(&e, policy, deadline) => {
                if backoff
                    .wait(e.retry_after(), Step::Download, chain_url)
                    .await
                    .is_err()
                {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Answers every pending authorization of the order with the record's challenge type:
/// present all answers, tell the CA, poll each authorization, then clean up.
async fn solve_authorizations(
    account: &Account,
    order_url: &str,
    order: &Order,
    record: &PendingOrder,
    solver: &dyn ChallengeSolver,
    deadline: Instant,
) -> Result<(), Error> {
    let thumbprint = account.key().thumbprint();
    let mut presented: Vec<ChallengeAnswer> = Vec::new();
    let outcome = async {
        let mut to_respond = Vec::new();
        let mut to_poll = Vec::new();
        for authz_url in &order.authorizations {
            let authz = account
                .authorization_in(authz_url, Some(order_url))
                .await?
                .body;
            match authz.status {
                AuthorizationStatus::Valid => continue,
                AuthorizationStatus::Pending => {}
                _ => return Err(authorization_failed(authz_url, &authz)),
            }
            let wanted = record.challenge.as_str();
            let Some(challenge) = authz.challenges.iter().find(|c| c.kind == wanted) else {
                return Err(Error::ChallengeNotOffered {
                    url: authz_url.clone(),
                    identifier: authz.identifier.value.clone(),
                    wanted: record.challenge,
                    offered: authz.challenges.iter().map(|c| c.kind.clone()).collect(),
                });
            };
            match challenge.status {
                ChallengeStatus::Pending => {
                    let token =
                        challenge
                            .token
                            .as_deref()
                            .ok_or_else(|| Error::InvalidResponse {
                                step: Step::Authorization,
                                url: authz_url.clone(),
                                status: 200,
                                reason: format!("the {wanted} challenge has no token"),
                                body_snippet: String::new(),
                            })?;
                    let answer = ChallengeAnswer::new(
                        &authz.identifier.value,
                        authz.wildcard,
                        record.challenge,
                        token,
                        &thumbprint,
                        &challenge.url,
                    )?;
                    solver
                        .present(&answer)
                        .await
                        .map_err(|source| Error::Caller {
                            step: Step::ChallengeSetup,
                            what: "presenting the challenge",
                            source,
                        })?;
                    to_respond.push(challenge.url.clone());
                    presented.push(answer);
                }
                ChallengeStatus::Invalid => return Err(authorization_failed(authz_url, &authz)),
                // Processing or valid: the CA is on it.
                _ => {}
            }
            to_poll.push(authz_url.clone());
        }
        for challenge_url in &to_respond {
            account
                .respond_challenge_in(challenge_url, Some(order_url))
                .await?;
        }
        for authz_url in &to_poll {
            account
                .poll_authorization_in(authz_url, Some(order_url), deadline)
                .await?;
        }
        Ok(())
    }
    .await;
    for answer in &presented {
        if let Err(e) = solver.cleanup(answer).await {
            tracing::warn!(identifier = %answer.identifier, error = %e, "challenge cleanup failed");
        }
    }
    outcome
}
