//! Finishing an order with recovery (PROTOCOL.md): whatever happened to the last request,
//! fetch the order and act on its state — `pending`: authorizations; `ready`: finalize
//! (again, same CSR); `processing`: poll; `valid`: download with the recorded key;
//! `invalid`: the order's error. 5xx, timeouts, resets and `orderNotReady` are answered by
//! waiting and fetching the order again; a rate limit only when its Retry-After can be
//! waited out in full (otherwise the attempt ends and the order is resumed later). One
//! overall deadline bounds it all; consecutive CA failures back off to a minute between
//! requests, and at most `max_finalizes` finalize requests go out per attempt.

use chrono::{DateTime, Utc};
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

/// How far along an order is: a state of higher rank is progress.
fn progress(status: OrderStatus) -> u8 {
    match status {
        OrderStatus::Ready => 1,
        OrderStatus::Processing => 2,
        OrderStatus::Valid | OrderStatus::Invalid => 3,
        _ => 0,
    }
}

/// What to wait for before fetching the order again.
enum Pause {
    /// Nothing: look at once (fresh from solving the authorizations).
    None,
    /// The order is not there yet: the polling back-off, or this Retry-After.
    Poll(Option<DateTime<Utc>>),
    /// The CA failed: the failure back-off, or this Retry-After.
    Failure(Option<DateTime<Utc>>),
}

/// Drives the order at `record.order_url` to a certificate. `order` is its last known
/// state (None: fetch it first).
///
/// Two back-offs pace it: polling a state that has not moved on (×1.5 up to
/// `max_interval`) and asking again after the CA failed (×2 up to `max_failure_interval`,
/// shared by finalize, order fetches and downloads); both start over when the order moves
/// on. At most `max_finalizes` finalize requests go out; then the attempt ends and the
/// order is left to be resumed.
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
    let policy = &settings.poll;
    let deadline = deadline_after(settings.order_timeout);
    let url = record.order_url.as_str();
    let mut waits = Backoff::new(policy, deadline);
    let mut failures = Backoff::after_failures(policy, deadline);
    let mut current = match order {
        Some(o) => o,
        None => fetch_order(account, url, &mut failures).await?,
    };
    let mut furthest = progress(current.body.status);
    let mut solved = false;
    let mut finalizes: u32 = 0;
    // The last recoverable failure, returned if the deadline or the finalize limit ends
    // the recovery.
    let mut last_error: Option<Error> = None;
    loop {
        let status = current.body.status;
        if progress(status) > furthest {
            furthest = progress(status);
            waits = Backoff::new(policy, deadline);
            failures = Backoff::after_failures(policy, deadline);
        }
        let mut pause = Pause::Poll(current.retry_after);
        match status {
            OrderStatus::Valid => {
                let issued = download(account, record, key, &current.body, &mut failures).await?;
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
                    // Fresh from solving: look at the order at once. Pending again later
                    // (every authorization valid): the CA lags, so poll.
                    Ok(()) if !solved => {
                        solved = true;
                        pause = Pause::None;
                    }
                    Ok(()) => {}
                    Err(e) if worth_retrying(&e, policy, deadline) => {
                        pause = Pause::Failure(e.retry_after());
                        last_error = Some(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            OrderStatus::Ready => {
                if finalizes >= policy.max_finalizes {
                    tracing::info!(
                        order_url = url,
                        sent = finalizes,
                        "finalize sent as often as one attempt may; leaving the order for later"
                    );
                    return Err(last_error.unwrap_or(Error::FinalizeUnanswered {
                        url: url.to_string(),
                        sent: finalizes,
                    }));
                }
                finalizes += 1;
                match account.finalize(url, &current.body.finalize, csr).await {
                    Ok(order)
                        if matches!(
                            order.body.status,
                            OrderStatus::Ready | OrderStatus::Pending
                        ) =>
                    {
                        // Accepted, yet not acted on (or the order went back): the CA lags.
                        // Wait as for any state before asking again, or finalize would be
                        // resent in a hot loop.
                        pause = Pause::Poll(order.retry_after);
                        last_error = None;
                    }
                    Ok(order) => {
                        current = order;
                        last_error = None;
                        continue;
                    }
                    Err(e) if e.is_problem("orderNotReady") => {
                        // Not a failure: the order's state says what comes next.
                        pause = Pause::Poll(e.retry_after());
                        last_error = Some(e);
                    }
                    Err(e) if worth_retrying(&e, policy, deadline) => {
                        // The outcome is unknown (the CA may have issued): the order's state
                        // decides what comes next, never a new order.
                        tracing::info!(order_url = url, error = %e, "finalize failed; fetching the order");
                        pause = Pause::Failure(e.retry_after());
                        last_error = Some(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            OrderStatus::Processing => {}
            _ => {
                last_error = Some(Error::InvalidResponse {
                    step: Step::PollOrder,
                    url: url.to_string(),
                    status: 200,
                    reason: format!("unknown order status {status}"),
                    body_snippet: String::new(),
                });
                pause = Pause::Failure(None);
            }
        }
        let waited = match pause {
            Pause::None => Ok(()),
            Pause::Poll(retry_after) => waits.wait(retry_after, Step::PollOrder, url).await,
            Pause::Failure(retry_after) => failures.wait(retry_after, Step::PollOrder, url).await,
        };
        if let Err(deadline_error) = waited {
            return Err(last_error.unwrap_or(deadline_error));
        }
        current = fetch_order(account, url, &mut failures).await?;
    }
}

async fn finished(sink: &dyn PendingOrderSink, url: &str) {
    if let Err(e) = sink.finished(url).await {
        tracing::warn!(order_url = url, error = %e, "could not drop the pending-order record");
    }
}

/// POST-as-GET the order, retrying transient failures (paced by `failures`) until the
/// deadline; at the deadline the last failure is returned.
async fn fetch_order(
    account: &Account,
    url: &str,
    failures: &mut Backoff,
) -> Result<Fetched<Order>, Error> {
    let policy = &account.client().settings().poll;
    loop {
        match account.get_order(Step::PollOrder, url).await {
            Ok(order) => return Ok(order),
            Err(e) if worth_retrying(&e, policy, failures.deadline()) => {
                if failures
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
/// failures (paced by `failures`, until the deadline), on its own: a failed alternate does
/// not cost the default chain a second download from a CA that is already struggling, and
/// an alternate that cannot be fetched at all is left out - the certificate is in hand.
async fn download(
    account: &Account,
    record: &PendingOrder,
    key: &CertificateKey,
    order: &Order,
    failures: &mut Backoff,
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
    let (default, reply) = download_chain(account, &cert_url, url, failures, None).await?;
    let mut alternates = Vec::new();
    for alt in alternate_links(&reply, &cert_url) {
        match download_chain(account, &alt, url, failures, Some(ALTERNATE_ATTEMPTS)).await {
            Ok((chain, _)) => alternates.push(chain),
            Err(e) => tracing::warn!(url = %alt, error = %e,
                "an alternate chain could not be downloaded; going on without it"),
        }
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

/// How many times an alternate chain is asked for before it is left out: the certificate is
/// in hand, so an alternate is not worth the rest of the order's deadline.
const ALTERNATE_ATTEMPTS: u32 = 2;

/// Downloads one chain, retrying transient failures paced by `failures` until its deadline,
/// or until `max_attempts` requests were made when given.
async fn download_chain(
    account: &Account,
    chain_url: &str,
    order_url: &str,
    failures: &mut Backoff,
    max_attempts: Option<u32>,
) -> Result<(CertificateChain, Reply), Error> {
    let policy = &account.client().settings().poll;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match account.download_one(chain_url, Some(order_url)).await {
            Ok(fetched) => return Ok(fetched),
            Err(e)
                if max_attempts.is_none_or(|max| attempts < max)
                    && worth_retrying(&e, policy, failures.deadline()) =>
            {
                if failures
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
