//! One renewal ([`Work::Renew`](renewd_core::Work)): claim the certificate (in-process set and
//! the store's lease), stop if another process renewed it since the job was dispatched
//! (unless forced), resume a pending order first, choose the CAs by urgency, try them in
//! turn under the failure policy, then install or record the failure. Every outcome is in
//! the store before the job returns.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use renewd_config::{CertConfig, Config};
use renewd_core::{CaName, FailureClass, OutcomeClass, RenewalJob, RenewalReason, Step, Urgency};
use renewd_store::{CertState, CircuitState, PendingKeys, PendingOrder};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::attempt::{self, Attempted};
use crate::breaker::after;
use crate::ca_runtime::Generation;
use crate::events::IssuerEvent;
use crate::health::{Availability, HealthBook};
use crate::lease;
use crate::ledger::{Ledger, Note};
use crate::pool::{Inner, JobResult};
use crate::selection;
use crate::setback::Setback;

/// At critical urgency, how long a rate limit on the pending order's CA is waited out
/// rather than abandoning the order for another CA.
const SHORT_WAIT_FOR_ORDER: chrono::TimeDelta = chrono::TimeDelta::minutes(30);

/// Runs one renewal job to its end.
pub(crate) async fn renew(
    inner: &Arc<Inner>,
    job: &RenewalJob,
    soft: &CancellationToken,
) -> JobResult {
    let generation = inner.generation();
    let config = generation.config.clone();
    let Some(cert) = config.cert(&job.cert) else {
        tracing::warn!(cert_name = %job.cert, "not in the config; nothing to renew");
        return JobResult::NotConfigured;
    };
    let Some(_busy) = inner.busy.claim(&job.cert) else {
        tracing::debug!(cert_name = %job.cert, "a job for this certificate is already running");
        return JobResult::Busy;
    };
    let lease = match lease::acquire(&inner.store, &job.cert, inner.options.lease_ttl) {
        Ok(Some(lease)) => lease,
        Ok(None) => {
            let retry = after(inner.clock.now(), inner.options.busy_retry);
            let result = inner.store.update_cert_state(&job.cert, &mut |s| {
                s.next_attempt = Some(s.next_attempt.map_or(retry, |t| t.max(retry)));
            });
            if let Err(e) = result {
                tracing::error!(cert_name = %job.cert, error = %e, "could not store the retry time");
            }
            return JobResult::Busy;
        }
        Err(e) => {
            tracing::error!(cert_name = %job.cert, error = %e, "could not take the certificate's lease");
            return JobResult::Failed {
                class: FailureClass::Local,
                ca: None,
                message: format!("the state store: {e}"),
            };
        }
    };
    let run = Run {
        inner,
        generation: &generation,
        config: &config,
        cert,
        job,
        soft,
        lost: lease.lost.clone(),
        keys: inner.pending_keys(&config),
    };
    let span = tracing::info_span!("renewal", cert_name = %job.cert, urgency = %job.urgency,
        reason = %job.reason);
    let result = run.go().instrument(span).await;
    drop(lease);
    result
}

/// One job's context.
pub(crate) struct Run<'a> {
    pub(crate) inner: &'a Arc<Inner>,
    pub(crate) generation: &'a Generation,
    pub(crate) config: &'a Config,
    pub(crate) cert: &'a CertConfig,
    pub(crate) job: &'a RenewalJob,
    /// Shutdown: stop at the next persisted point.
    pub(crate) soft: &'a CancellationToken,
    /// The lease was taken over: stop now.
    pub(crate) lost: CancellationToken,
    pub(crate) keys: PendingKeys,
}

impl Run<'_> {
    pub(crate) fn book(&self) -> HealthBook<'_> {
        HealthBook {
            store: self.inner.store.as_ref(),
            clock: self.inner.clock.as_ref(),
            events: &self.inner.events,
            policy: &self.config.breaker,
            trials: &self.inner.trials,
        }
    }

    /// The ledger of this certificate at `ca`.
    pub(crate) fn ledger(&self, ca: &CaName) -> Ledger {
        Ledger::new(self.inner, ca.clone(), Some(self.cert.name.clone()))
    }

    pub(crate) fn stopping(&self) -> bool {
        self.soft.is_cancelled() || self.lost.is_cancelled()
    }

    /// The pending order in the store now.
    pub(crate) fn stored_pending(&self) -> Result<Option<PendingOrder>, Setback> {
        self.inner
            .store
            .cert_state(&self.cert.name)
            .map(|s| s.and_then(|s| s.pending))
            .map_err(|e| Setback::local(Step::PollOrder, format!("the state store: {e}")))
    }

    /// Gives up a pending order that can no longer (or must no longer) complete: the row
    /// and its key go, and the ledger says why.
    pub(crate) fn abandon(&self, pending: &PendingOrder, why: &str) {
        tracing::warn!(cert_name = %self.cert.name, ca = %pending.ca,
            order_url = %pending.order_url, "abandoning the pending order: {why}");
        self.ledger(&pending.ca).note(Note {
            step: Step::PollOrder,
            class: OutcomeClass::Local,
            detail: Some(&format!("pending order abandoned: {why}")),
            order_url: Some(&pending.order_url),
            latency: std::time::Duration::ZERO,
        });
        match self.inner.store.cert_state(&self.cert.name) {
            Ok(Some(state))
                if state.pending.as_ref().map(|p| &p.order_url) == Some(&pending.order_url) =>
            {
                if let Err(e) = self.keys.clear(self.inner.store.as_ref(), &self.cert.name) {
                    tracing::error!(cert_name = %self.cert.name, error = %e,
                        "could not clear the pending order");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(cert_name = %self.cert.name, error = %e,
                "could not read the pending order"),
        }
    }

    async fn go(&self) -> JobResult {
        let job = self.job;
        let state = match self.inner.store.cert_state(&self.cert.name) {
            Ok(s) => s.unwrap_or_else(|| CertState::new(self.cert.name.clone())),
            Err(e) => {
                let s = Setback::local(Step::Install, format!("the state store: {e}"));
                return crate::failure::record(self, &s, None).await;
            }
        };
        // The job may have waited for a worker while another process renewed the
        // certificate (and released the lease): then there is nothing left to do.
        let installed_serial = state.installed.as_ref().map(|i| i.serial.as_str());
        if job.reason != RenewalReason::Forced
            && job.seen_installed.replaced_by(installed_serial)
            && let Some(serial) = installed_serial
        {
            tracing::info!(cert_name = %self.cert.name, serial,
                "renewed by another process since this job was dispatched; nothing to do");
            return JobResult::AlreadyRenewed {
                serial: serial.to_string(),
            };
        }
        if job.urgency == Urgency::Critical {
            let not_after = state.installed.as_ref().map(|i| i.not_after);
            let not_after_text = not_after.map(|t| t.to_rfc3339());
            tracing::error!(cert_name = %self.cert.name, urgency = "critical",
                not_after = not_after_text.as_deref(),
                "certificate close to expiry: trying every CA");
            let _ = self.inner.events.send(IssuerEvent::ExpiryDanger {
                cert: self.cert.name.clone(),
                urgency: job.urgency,
                not_after,
            });
        }
        tracing::info!(cert_name = %self.cert.name, urgency = %job.urgency, reason = %job.reason,
            "renewal started");

        let listed: Vec<&CaName> = self
            .cert
            .cas
            .iter()
            .filter(|ca| job.only_ca.as_ref().is_none_or(|only| only == *ca))
            .filter(|ca| self.generation.cas.contains_key(*ca))
            .collect();
        if listed.is_empty() {
            let only = job.only_ca.as_ref().map_or("-", |c| c.as_str());
            let s = Setback::local(
                Step::NewOrder,
                format!("CA {only} is not among the certificate's CAs"),
            );
            return crate::failure::record(self, &s, None).await;
        }
        let mut pending = state.pending.clone();
        if let Some(p) = &pending
            && (!self.cert.cas.contains(&p.ca) || !self.generation.cas.contains_key(&p.ca))
        {
            self.abandon(p, "its CA is no longer in the certificate's list");
            pending = None;
        }
        if let Some(p) = &pending
            && let Some(why) = crate::pending::names_changed(p, self.cert)
        {
            // Before resuming: its certificate would fail the name check and be wasted.
            self.abandon(p, &why);
            pending = None;
        }

        // Each CA's availability now; the pending order's CA first, even when `--ca` names
        // another: never a second order while the first can still complete.
        let book = self.book();
        let pending_ca = pending.as_ref().map(|p| p.ca.clone());
        let names: Vec<CaName> = pending_ca
            .iter()
            .chain(
                listed
                    .into_iter()
                    .filter(|ca| Some(*ca) != pending_ca.as_ref()),
            )
            .cloned()
            .collect();
        let mut cas = Vec::with_capacity(names.len());
        for ca in names {
            match book.availability(&ca) {
                Ok(a) => cas.push((ca, a)),
                Err(e) => {
                    let s = Setback::local(Step::Probe, format!("the state store: {e}"));
                    return crate::failure::record(self, &s, None).await;
                }
            }
        }
        let (plan, skipped) = selection::plan(cas, job.urgency, pending_ca.as_ref());
        for (ca, availability) in &skipped {
            tracing::info!(cert_name = %self.cert.name, ca = %ca, "skipping: {}",
                availability.describe(ca));
        }
        let now = self.inner.clock.now();
        if let Some(p) = &pending
            && plan.first().map(|c| &c.ca) != Some(&p.ca)
        {
            // The order's CA cannot take it now (its trial is another job's, its circuit
            // is open, it rate-limited renewd). The order may still complete there, so
            // wait for it - unless the deadline no longer allows: an urgent job gives it
            // up once the breaker has judged the CA down (its circuit is open), a critical
            // one whenever the wait is not short. Waiting is not this certificate's failure.
            let availability = skipped.iter().find(|(ca, _)| ca == &p.ca).map(|(_, a)| a);
            let until = availability.map_or(now, |a| a.usable_from(now));
            let short = availability.is_some_and(|a| match a {
                Availability::TrialBusy => true,
                Availability::Blocked { until } => *until - now <= SHORT_WAIT_FOR_ORDER,
                _ => false,
            });
            let ca_down = matches!(availability, Some(Availability::Open { .. }));
            let give_up = match job.urgency {
                Urgency::Normal => false,
                Urgency::Urgent => ca_down,
                Urgency::Critical => !short,
            };
            if !give_up {
                let why = availability.map_or_else(String::new, |a| a.describe(&p.ca));
                return crate::deferral::defer(
                    self,
                    until,
                    &format!("waiting to resume the pending order at {}: {why}", p.ca),
                );
            }
            tracing::warn!(cert_name = %self.cert.name, ca = %p.ca, order_url = %p.order_url,
                urgency = %job.urgency,
                "the pending order's CA is out of reach; trying the other CAs");
        }
        if plan.is_empty() {
            // Every CA this job may use is in another job's trial, cooling down or
            // rate-limiting renewd: wait for the first to become usable.
            let reasons: Vec<String> = skipped.iter().map(|(ca, a)| a.describe(ca)).collect();
            let until = skipped
                .iter()
                .map(|(_, a)| a.usable_from(now))
                .min()
                .unwrap_or(now);
            return crate::deferral::defer(
                self,
                until,
                &format!("no CA can take an order now: {}", reasons.join("; ")),
            );
        }

        let mut last: Option<(CaName, Setback)> = None;
        for candidate in plan {
            if self.stopping() {
                return JobResult::Interrupted;
            }
            let Some(rt) = self.generation.cas.get(&candidate.ca) else {
                continue;
            };
            if let Some((previous, s)) = &last {
                tracing::warn!(cert_name = %self.cert.name, ca = %candidate.ca,
                    class = %s.class, "failing over from {previous}");
            }
            let outcome = attempt::attempt(self, rt, candidate.access).await;
            let setback = match outcome {
                Attempted::Issued(issued) => {
                    match crate::success::finish(self, rt, *issued).await {
                        Ok(result) => return result,
                        Err(s) => s,
                    }
                }
                Attempted::Interrupted => return JobResult::Interrupted,
                Attempted::Failed(s) => s,
            };
            // Going on would abandon an order that may still complete (the one resumed,
            // or the one just made): only a critical job may do that, or an urgent one
            // once the breaker has judged this CA down.
            let order_alive = !matches!(self.stored_pending(), Ok(None));
            let go_on = selection::may_continue(job.urgency, setback.class)
                && (job.urgency == Urgency::Critical
                    || !order_alive
                    || (job.urgency == Urgency::Urgent && self.circuit_open(&candidate.ca)));
            last = Some((candidate.ca.clone(), setback));
            if !go_on {
                break;
            }
        }
        match last {
            Some((ca, s)) => crate::failure::record(self, &s, Some(&ca)).await,
            // Only `continue` skips an attempt, and only for a CA missing from the
            // generation, which the plan never holds.
            None => JobResult::Interrupted,
        }
    }

    /// Whether `ca`'s circuit is open now (a store error reads as "not known to be open").
    pub(crate) fn circuit_open(&self, ca: &CaName) -> bool {
        matches!(
            self.inner.store.ca_health(ca),
            Ok(Some(h)) if h.circuit == CircuitState::Open
        )
    }

    /// The earliest time a CA this job may use accepts orders again, when none does now:
    /// the end of a rate limit (always honoured) or of an open circuit (below critical).
    pub(crate) fn earliest_usable(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut earliest: Option<DateTime<Utc>> = None;
        for ca in self
            .cert
            .cas
            .iter()
            .filter(|ca| self.job.only_ca.as_ref().is_none_or(|only| only == *ca))
        {
            let health = self.inner.store.ca_health(ca).ok().flatten()?;
            let blocked = health.blocked_until.filter(|t| *t > now);
            let open = (self.job.urgency < Urgency::Critical
                && health.circuit == CircuitState::Open)
                .then_some(health.open_until)
                .flatten()
                .filter(|t| *t > now);
            let from = match (blocked, open) {
                (Some(a), Some(b)) => a.max(b),
                (a, b) => a.or(b)?,
            };
            earliest = Some(earliest.map_or(from, |e| e.min(from)));
        }
        earliest
    }
}
