//! One attempt at one CA: an order permit, the health probe (cached, or fresh for a
//! half-open trial and for critical jobs at open circuits), the account, then the order —
//! resuming the stored pending order when it lives at this CA, else abandoning any pending
//! order elsewhere and creating a new one. The verdict goes to the CA's circuit; a rate
//! limit blocks the CA; a pending order the CA says can no longer complete is cleared
//! (`renewd_acme::Error::order_is_dead`), any other is kept for the next attempt.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use renewd_acme::{Identifier, IssueRequest, Issued};
use renewd_core::{CaName, FailureClass, OutcomeClass, Step};
use tokio::time::Instant;

use crate::account;
use crate::breaker::{Verdict, after};
use crate::ca_runtime::{CaRuntime, ProbeResult};
use crate::job::Run;
use crate::ledger::{Ledger, Note};
use crate::pending::{StoreSink, resume_record};
use crate::selection::Access;
use crate::setback::{Setback, one_line};

/// How long a CA that rate-limited renewd without saying until when (or with a Retry-After
/// already past) is left alone, and the shortest block of all.
const DEFAULT_RATE_LIMIT_BLOCK: Duration = Duration::from_secs(5 * 60);
/// The longest `Retry-After` of a rate limit honoured: a CA asking for more is asked
/// again after this (other CAs take the orders meanwhile).
const MAX_RATE_LIMIT_BLOCK: Duration = Duration::from_secs(7 * 24 * 3600);

/// A certificate the CA issued, with where it came from.
#[derive(Debug)]
pub(crate) struct IssuedHere {
    pub(crate) issued: Issued,
    pub(crate) ca: CaName,
    pub(crate) account_url: String,
    /// Finished from a stored pending order (its key may predate a config change).
    pub(crate) resumed: bool,
}

/// How an attempt ended.
#[derive(Debug)]
pub(crate) enum Attempted {
    Issued(Box<IssuedHere>),
    Failed(Setback),
    /// Shutdown or a lost lease stopped it at a persisted point.
    Interrupted,
}

/// What an attempt's failure says about the CA's health: only `ca_unavailable` counts; a
/// refusal, a rate limit, a bad nonce or a local failure is neutral (see `breaker`).
pub(crate) fn verdict(class: FailureClass) -> Verdict {
    match class {
        FailureClass::CaUnavailable => Verdict::Failure,
        _ => Verdict::Neutral,
    }
}

pub(crate) async fn attempt(run: &Run<'_>, rt: &Arc<CaRuntime>, access: Access) -> Attempted {
    let ca = rt.name();
    let permit = tokio::select! {
        biased;
        () = run.soft.cancelled() => return Attempted::Interrupted,
        () = run.lost.cancelled() => return Attempted::Interrupted,
        permit = rt.orders.clone().acquire_owned() => match permit {
            Ok(p) => p,
            Err(_) => return Attempted::Interrupted,
        },
    };
    let result = attempt_with_permit(run, rt, &access).await;
    drop(permit);
    if let Attempted::Failed(s) = &result {
        // A failed probe was recorded by the job that ran it, once.
        if s.step != Step::Probe {
            run.book().record(ca, verdict(s.class));
        }
        if let FailureClass::RateLimited { .. } = s.class {
            run.book().block(ca, rate_limit_end(run, s));
        }
    }
    // Dropping the trial guard (in `access`) here frees the half-open slot; the verdict
    // above already moved the circuit when there was one to give.
    drop(access);
    result
}

/// The end of a rate limit on the issuer's clock. The ACME client states `Retry-After` as a
/// time on the system clock; the delay it stands for is what counts.
fn rate_limit_end(run: &Run<'_>, s: &Setback) -> chrono::DateTime<Utc> {
    after(
        run.inner.clock.now(),
        rate_limit_block(s.rate_limit_end(), Utc::now()),
    )
}

/// How long a CA that rate-limited renewd is left alone: its `Retry-After` (a time on the
/// system clock, read against `system_now`) within [`DEFAULT_RATE_LIMIT_BLOCK`,
/// `MAX_RATE_LIMIT_BLOCK`]; the default when it said nothing. A `Retry-After` of zero or in
/// the past gets the default too, not a block that has already ended.
pub(crate) fn rate_limit_block(
    retry_after: Option<chrono::DateTime<Utc>>,
    system_now: chrono::DateTime<Utc>,
) -> Duration {
    match retry_after {
        Some(at) => crate::ari_check::whole_seconds(at - system_now)
            .clamp(DEFAULT_RATE_LIMIT_BLOCK, MAX_RATE_LIMIT_BLOCK),
        None => DEFAULT_RATE_LIMIT_BLOCK,
    }
}

async fn attempt_with_permit(run: &Run<'_>, rt: &Arc<CaRuntime>, access: &Access) -> Attempted {
    let ca = rt.name();
    let probe = probe(run, rt, access.fresh_probe()).await;
    if let Some(class) = probe.failure {
        tracing::warn!(cert_name = %run.cert.name, ca = %ca, step = "probe", class = %class,
            "health probe failed: no order at this CA ({})", probe.message);
        return Attempted::Failed(Setback {
            class,
            step: Step::Probe,
            message: format!("health probe of {ca} failed: {}", probe.message),
            retry_after: None,
            retry_within: None,
        });
    }
    let ca_ledger = Ledger::new(run.inner, ca.clone(), None);
    let account = match account::account(
        rt,
        run.inner.store.as_ref(),
        run.inner.clock.as_ref(),
        &run.config.state_dir,
        &ca_ledger,
    )
    .await
    {
        Ok(a) => a,
        Err(s) => return Attempted::Failed(s),
    };
    let ledger = run.ledger(ca);
    ledger.set_account(account.url());
    let account = account.with_observer(ledger.observer());
    let Some(solver) = run.inner.solver(run.cert.challenge) else {
        let message = format!("no solver for {} challenges", run.cert.challenge);
        note_local(&ledger, Step::ChallengeSetup, &message, None);
        return Attempted::Failed(Setback::local(Step::ChallengeSetup, message));
    };

    // Resume the stored order when it lives here; abandon it when it lives elsewhere.
    let mut resume = None;
    match run.stored_pending() {
        Err(s) => return Attempted::Failed(s),
        Ok(None) => {}
        Ok(Some(p)) if &p.ca != ca => run.abandon(&p, &format!("failing over to {ca}")),
        Ok(Some(p)) if p.account_url != account.url() => {
            run.abandon(&p, "it was created by another account")
        }
        Ok(Some(p)) => match resume_record(
            &p,
            &run.keys,
            rt.client.directory_url(),
            run.cert,
            &rt.config,
        ) {
            Ok(record) => resume = Some(record),
            Err(s) => run.abandon(&p, &s.message),
        },
    }
    let sink = StoreSink::new(
        run.inner.store.clone(),
        run.keys.clone(),
        run.inner.clock.clone(),
        run.cert.name.clone(),
        ca.clone(),
        resume.as_ref().map(|r| r.order_url.as_str()),
    );
    let resumed = resume.is_some();
    let order = async {
        match &resume {
            Some(record) => {
                tracing::info!(cert_name = %run.cert.name, ca = %ca, order_url = %record.order_url,
                    "resuming the pending order");
                account.resume(record, solver.as_ref(), &sink).await
            }
            None => {
                let request = issue_request(run, rt, account.url());
                tracing::info!(cert_name = %run.cert.name, ca = %ca,
                    replaces = request.replaces.is_some(), "ordering");
                account.issue(&request, solver.as_ref(), &sink).await
            }
        }
    };
    if !resumed && run.stopping() {
        return Attempted::Interrupted;
    }
    let result = tokio::select! {
        biased;
        result = order => result,
        () = async { run.soft.cancelled().await; sink.wait_saved().await } => {
            tracing::info!(cert_name = %run.cert.name, ca = %ca,
                order_url = sink.order_url().as_deref(),
                "stopping for shutdown; the pending order is saved and will be resumed");
            return Attempted::Interrupted;
        }
        () = run.lost.cancelled() => return Attempted::Interrupted,
    };
    match result {
        Ok(issued) => {
            run.book().record(ca, Verdict::Success);
            Attempted::Issued(Box::new(IssuedHere {
                issued,
                ca: ca.clone(),
                account_url: account.url().to_string(),
                resumed,
            }))
        }
        Err(e) => {
            let setback = Setback::from(&e);
            if e.account_unusable() {
                account::forget(rt, &one_line(&e.to_string())).await;
            }
            if setback.class == FailureClass::Local {
                // Not a request: the ledger has no row for it yet.
                note_local(
                    &ledger,
                    setback.step,
                    &setback.message,
                    sink.order_url().as_deref(),
                );
            }
            tracing::warn!(cert_name = %run.cert.name, ca = %ca, step = %setback.step,
                order_url = sink.order_url().as_deref(), http_status = e.http_status(),
                problem_type = e.problem_type(), class = %setback.class,
                "order failed: {}", setback.message);
            if let Some(order_url) = sink.order_url()
                && e.order_is_dead()
                && let Ok(Some(p)) = run.stored_pending()
                && p.order_url == order_url
            {
                // The CA says the order can no longer complete (it is invalid, whatever
                // its error; it or its account is gone): the next attempt starts a new
                // one. Nothing else drops a saved order — a gateway's 404 page after a
                // finalize that issued must not cost the certificate.
                run.abandon(
                    &p,
                    &format!("it cannot complete: {}", one_line(&setback.message)),
                );
            }
            Attempted::Failed(setback)
        }
    }
}

/// What to order: the certificate's names, key type, challenge, profile and chain at this
/// CA, and `replaces` only when this CA and account issued the installed certificate.
fn issue_request(run: &Run<'_>, rt: &CaRuntime, account_url: &str) -> IssueRequest {
    let installed = run
        .inner
        .store
        .cert_state(&run.cert.name)
        .ok()
        .flatten()
        .and_then(|s| s.installed);
    let replaces = installed.and_then(|i| {
        let ours = i.issuer_ca.as_ref() == Some(rt.name())
            && i.account_url.as_deref() == Some(account_url);
        ours.then_some(i.ari_cert_id).flatten()
    });
    IssueRequest {
        identifiers: run
            .cert
            .domains
            .iter()
            .map(|d| Identifier::dns(d.as_str()))
            .collect(),
        key_type: run.cert.key,
        challenge: run.cert.challenge,
        profile: run.cert.profile_at(&rt.config).map(str::to_string),
        replaces,
        retry_without_replaces: true,
        preferred_chain: run.cert.preferred_chain_at(&rt.config).map(str::to_string),
    }
}

fn note_local(ledger: &Ledger, step: Step, message: &str, order_url: Option<&str>) {
    ledger.note(Note {
        step,
        class: OutcomeClass::Local,
        detail: Some(message),
        order_url,
        latency: std::time::Duration::ZERO,
    });
}

/// The CA's health probe, single-flight and cached; the job that runs it records it (two
/// ledger rows, step `probe`; `CaHealth.last_probe*`; the circuit's verdict).
async fn probe(run: &Run<'_>, rt: &Arc<CaRuntime>, fresh: bool) -> ProbeResult {
    let ca = rt.name();
    let clock = run.inner.clock.clone();
    let (result, ran) = rt
        .probe
        .check(
            fresh,
            run.config.breaker.probe_cache,
            clock.now(),
            || async {
                let ledger = Ledger::new(run.inner, ca.clone(), None);
                let client = rt.client.with_observer(ledger.observer());
                let started = Instant::now();
                let outcome = client.probe().await;
                ProbeResult {
                    failure: outcome.as_ref().err().map(|e| e.class()),
                    message: outcome
                        .as_ref()
                        .err()
                        .map_or_else(String::new, |e| one_line(&e.to_string())),
                    at: clock.now(),
                    latency: started.elapsed(),
                }
            },
        )
        .await;
    if ran {
        let verdict = result.failure.map_or(Verdict::Neutral, verdict);
        run.book().probed(ca, result.ok(), result.latency, verdict);
    }
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::{DateTime, TimeDelta};

    use super::*;

    #[test]
    fn only_a_ca_failure_moves_the_circuit_refusals_are_neutral() {
        assert_eq!(verdict(FailureClass::CaUnavailable), Verdict::Failure);
        for class in [
            FailureClass::Rejected { ca_specific: true },
            FailureClass::Rejected { ca_specific: false },
            FailureClass::RateLimited { retry_after: None },
            FailureClass::BadNonce,
            FailureClass::Local,
        ] {
            assert_eq!(verdict(class), Verdict::Neutral, "{class}");
        }
    }

    #[test]
    fn a_rate_limit_blocks_at_least_the_default_and_at_most_a_week() {
        let now = DateTime::from_timestamp(1_750_000_000, 0).unwrap();
        let block = |secs: i64| rate_limit_block(Some(now + TimeDelta::seconds(secs)), now);
        assert_eq!(block(-3600), DEFAULT_RATE_LIMIT_BLOCK, "a date in the past");
        assert_eq!(block(0), DEFAULT_RATE_LIMIT_BLOCK);
        assert_eq!(block(30), DEFAULT_RATE_LIMIT_BLOCK);
        assert_eq!(block(3600), Duration::from_secs(3600));
        assert_eq!(block(30 * 24 * 3600), MAX_RATE_LIMIT_BLOCK);
        assert_eq!(rate_limit_block(None, now), DEFAULT_RATE_LIMIT_BLOCK);
    }
}
