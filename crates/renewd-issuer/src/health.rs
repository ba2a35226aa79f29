//! The persisted health of the CAs as jobs see it: may an order go to a CA now
//! ([`HealthBook::availability`]), and what an attempt said about it
//! ([`HealthBook::record`], [`HealthBook::block`], [`HealthBook::probed`]). The store's
//! [`CaHealth`](renewd_store::CaHealth) is the truth, read and changed in one transaction
//! each time, so the circuit survives restarts and is shared with `renewd renew`. Only the
//! half-open trial slot is in memory ([`TrialSlots`]): one job of this process at a time
//! may probe and order at a half-open CA.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use renewd_config::BreakerPolicy;
use renewd_core::{CaName, Clock};
use renewd_store::{CaHealth, CircuitState, StateStore, StoreError};

use crate::breaker::{self, CircuitGate, Verdict};
use crate::events::{EventSender, IssuerEvent};

/// The half-open trials in progress in this process, by CA.
#[derive(Debug, Default)]
pub(crate) struct TrialSlots(Mutex<HashSet<CaName>>);

/// Holds a CA's half-open trial; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct TrialGuard {
    slots: Arc<TrialSlots>,
    ca: CaName,
}

impl TrialSlots {
    pub(crate) fn take(self: &Arc<Self>, ca: &CaName) -> Option<TrialGuard> {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        held.insert(ca.clone()).then(|| TrialGuard {
            slots: self.clone(),
            ca: ca.clone(),
        })
    }
}

impl Drop for TrialGuard {
    fn drop(&mut self) {
        self.slots
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.ca);
    }
}

/// Whether a job may send an order to a CA now.
#[derive(Debug)]
pub(crate) enum Availability {
    /// The circuit is closed.
    Ready,
    /// The circuit is half-open and this job holds the trial: one fresh probe, one order.
    Trial(TrialGuard),
    /// The circuit is open.
    Open {
        /// When the cool-down ends, if known.
        until: Option<DateTime<Utc>>,
    },
    /// The circuit is half-open and another job of this process holds the trial: wait for
    /// its verdict.
    TrialBusy,
    /// The CA rate-limited renewd until then: nothing may be sent.
    Blocked {
        /// The end of the block.
        until: DateTime<Utc>,
    },
}

impl Availability {
    /// A short description for logs and `last_error`.
    pub(crate) fn describe(&self, ca: &CaName) -> String {
        match self {
            Availability::Ready => format!("{ca} is available"),
            Availability::Trial(_) => format!("{ca} is half-open"),
            Availability::Open { until: Some(t) } => {
                format!("{ca}'s circuit is open until {}", t.to_rfc3339())
            }
            Availability::Open { until: None } => format!("{ca}'s circuit is open"),
            Availability::TrialBusy => {
                format!("{ca}'s circuit is half-open and another job holds its trial")
            }
            Availability::Blocked { until } => {
                format!("{ca} rate-limited renewd until {}", until.to_rfc3339())
            }
        }
    }
}

/// How long a job waits for another job's half-open trial to end (a trial is one probe
/// and one order: minutes at most).
pub(crate) const TRIAL_WAIT: Duration = Duration::from_secs(60);

impl Availability {
    /// When the CA may take an order from this job, as far as is known now: the end of a
    /// rate limit or cool-down, a while for a trial in progress, or now.
    pub(crate) fn usable_from(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Availability::Ready | Availability::Trial(_) => now,
            Availability::Blocked { until } | Availability::Open { until: Some(until) } => {
                (*until).max(now)
            }
            Availability::Open { until: None } | Availability::TrialBusy => {
                crate::breaker::after(now, TRIAL_WAIT)
            }
        }
    }
}

/// The health operations of one job (borrowing the issuer's store, clock and channel).
pub(crate) struct HealthBook<'a> {
    pub(crate) store: &'a dyn StateStore,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) events: &'a EventSender,
    pub(crate) policy: &'a BreakerPolicy,
    pub(crate) trials: &'a Arc<TrialSlots>,
}

impl HealthBook<'_> {
    /// May an order go to `ca` now? Moves an open circuit whose cool-down ended to
    /// half-open (persisted, announced) and takes the trial when it is free.
    pub(crate) fn availability(&self, ca: &CaName) -> Result<Availability, StoreError> {
        let now = self.clock.now();
        let mut health = self
            .store
            .ca_health(ca)?
            .unwrap_or_else(|| CaHealth::new(ca.clone()));
        let (mut gate, changed) = breaker::gate(&mut health, now);
        if changed {
            // Persist the move to half-open in one transaction (another process may have
            // made it meanwhile: announce only our own change).
            let mut moved = false;
            health = self.store.update_ca_health(ca, &mut |h| {
                (gate, moved) = breaker::gate(h, now);
            })?;
            if moved {
                self.announce(ca, health.circuit, health.open_until);
            }
        }
        let blocked_until = health.blocked_until;
        if let Some(until) = blocked_until.filter(|t| *t > now) {
            return Ok(Availability::Blocked { until });
        }
        Ok(match gate {
            CircuitGate::Closed => Availability::Ready,
            CircuitGate::Open(until) => Availability::Open { until },
            CircuitGate::HalfOpen => match self.trials.take(ca) {
                Some(guard) => Availability::Trial(guard),
                None => Availability::TrialBusy,
            },
        })
    }

    /// Applies an attempt's verdict to `ca`'s circuit.
    pub(crate) fn record(&self, ca: &CaName, verdict: Verdict) {
        if verdict == Verdict::Neutral {
            return;
        }
        self.change(ca, &mut |h, now, policy| {
            breaker::apply(h, policy, verdict, now)
        });
    }

    /// Records a finished probe: `CaHealth.last_probe*`, and its verdict.
    pub(crate) fn probed(&self, ca: &CaName, ok: bool, latency: Duration, verdict: Verdict) {
        self.change(ca, &mut |h, now, policy| {
            h.last_probe = Some(now);
            h.last_probe_ok = Some(ok);
            h.last_probe_latency = Some(latency);
            breaker::apply(h, policy, verdict, now)
        });
    }

    /// Nothing may go to `ca` before `until` (a rate limit's `Retry-After`).
    pub(crate) fn block(&self, ca: &CaName, until: DateTime<Utc>) {
        let result = self.store.update_ca_health(ca, &mut |h| {
            h.blocked_until = Some(h.blocked_until.map_or(until, |t| t.max(until)));
        });
        match result {
            Ok(h) => {
                let until = h.blocked_until.unwrap_or(until);
                tracing::warn!(ca = %ca, class = "rate_limited", until = %until.to_rfc3339(),
                    "the CA rate-limited renewd; nothing is sent to it before then");
                let _ = self.events.send(IssuerEvent::CaBlocked {
                    ca: ca.clone(),
                    until,
                });
            }
            Err(e) => tracing::error!(ca = %ca, error = %e, "could not record the CA's rate limit"),
        }
    }

    fn change(
        &self,
        ca: &CaName,
        f: &mut dyn FnMut(&mut CaHealth, DateTime<Utc>, &BreakerPolicy) -> bool,
    ) {
        let now = self.clock.now();
        let mut changed = false;
        match self
            .store
            .update_ca_health(ca, &mut |h| changed = f(h, now, self.policy))
        {
            Ok(h) if changed => self.announce(ca, h.circuit, h.open_until),
            Ok(_) => {}
            Err(e) => tracing::error!(ca = %ca, error = %e, "could not record the CA's health"),
        }
    }

    fn announce(&self, ca: &CaName, state: CircuitState, open_until: Option<DateTime<Utc>>) {
        let until = open_until.map(|t| t.to_rfc3339());
        match state {
            CircuitState::Open => tracing::warn!(ca = %ca, circuit = "open",
                open_until = until.as_deref(),
                "circuit opened: no orders go to this CA until the cool-down ends"),
            other => tracing::info!(ca = %ca, circuit = other.as_str(), "circuit changed"),
        }
        let _ = self.events.send(IssuerEvent::CircuitChanged {
            ca: ca.clone(),
            state,
            open_until,
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeDelta;
    use renewd_core::ManualClock;
    use renewd_store::{SqliteOptions, SqliteStore};

    use super::*;

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            failure_threshold: 2,
            cooldown: Duration::from_secs(60),
            max_cooldown: Duration::from_secs(600),
            probe_timeout: Duration::from_secs(5),
            probe_cache: Duration::from_secs(30),
        }
    }

    #[test]
    fn gates_trials_blocks_and_events_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(DateTime::from_timestamp(1_750_000_000, 0).unwrap());
        let store = SqliteStore::open_in(
            dir.path(),
            SqliteOptions {
                clock: Arc::new(clock.clone()),
                ..SqliteOptions::default()
            },
        )
        .unwrap();
        let (events, mut rx) = crate::events::event_channel(16);
        let trials = Arc::new(TrialSlots::default());
        let policy = policy();
        let book = HealthBook {
            store: &store,
            clock: &clock,
            events: &events,
            policy: &policy,
            trials: &trials,
        };
        let a = CaName::new("a").unwrap();
        assert!(matches!(
            book.availability(&a).unwrap(),
            Availability::Ready
        ));
        book.record(&a, Verdict::Failure);
        book.probed(&a, false, Duration::from_millis(7), Verdict::Failure);
        let h = store.ca_health(&a).unwrap().unwrap();
        assert_eq!(h.circuit, CircuitState::Open);
        assert_eq!(h.last_probe_ok, Some(false));
        assert!(matches!(
            rx.try_recv().unwrap(),
            IssuerEvent::CircuitChanged {
                state: CircuitState::Open,
                ..
            }
        ));
        assert!(matches!(
            book.availability(&a).unwrap(),
            Availability::Open { until: Some(_) }
        ));

        // After the cool-down: one job gets the trial, the next sees the CA as open.
        clock.advance(TimeDelta::seconds(60));
        let trial = book.availability(&a).unwrap();
        assert!(matches!(trial, Availability::Trial(_)));
        assert!(matches!(
            rx.try_recv().unwrap(),
            IssuerEvent::CircuitChanged {
                state: CircuitState::HalfOpen,
                ..
            }
        ));
        assert!(matches!(
            book.availability(&a).unwrap(),
            Availability::TrialBusy
        ));
        // The trial ends without a verdict: the slot is free again.
        drop(trial);
        let trial = book.availability(&a).unwrap();
        assert!(matches!(trial, Availability::Trial(_)));
        book.record(&a, Verdict::Success);
        drop(trial);
        assert!(matches!(
            book.availability(&a).unwrap(),
            Availability::Ready
        ));

        // A rate limit blocks whatever the circuit says, until its end; a shorter block
        // never shortens a longer one.
        let until = clock.now() + TimeDelta::minutes(10);
        book.block(&a, until);
        book.block(&a, clock.now() + TimeDelta::minutes(1));
        assert!(matches!(
            book.availability(&a).unwrap(),
            Availability::Blocked { until: u } if u == until
        ));
        clock.advance(TimeDelta::minutes(10));
        assert!(matches!(
            book.availability(&a).unwrap(),
            Availability::Ready
        ));
    }
}
