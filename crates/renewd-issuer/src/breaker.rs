//! The circuit breaker of one CA, as pure transitions of its persisted [`CaHealth`].
//!
//! ```text
//!   closed ──(failure_threshold CA failures in a row)──► open ──(open_until passed)──► half-open
//!     ▲                                                   ▲                              │
//!     └──────────────── the trial order succeeds ─────────┼──────────────────────────────┤
//!                                                         └── the trial probe or order ──┘
//!                                                             fails: cool-down doubled
//! ```
//!
//! The breaker counts *attempts*, not requests: a failed probe, a failed account setup, or
//! an order attempt that ended `ca_unavailable` each count once. Counting requests would let
//! the order polls that succeed between failed finalizes reset the count, and a CA that
//! never issues would never open. Only a completed order resets the count and closes the
//! circuit. A good probe does not, and neither does a refusal (a problem document, a rate
//! limit): both prove the CA's front door answers, not that its orders complete — a CA
//! that refuses newOrder quickly may still fail every finalize. They are neutral: a
//! half-open circuit whose trial is refused stays half-open for the next trial.
//!
//! The first open period is `breaker.cooldown`; each re-open from half-open doubles the
//! last one, up to `breaker.max_cooldown`; closing forgets it. Time comes from the caller
//! (the issuer's `Clock`), so the machine is tested without waiting.

use chrono::{DateTime, TimeDelta, Utc};
use renewd_config::BreakerPolicy;
use renewd_store::{CaHealth, CircuitState};

/// What an attempt at a CA says about its health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// `ca_unavailable`: counts towards opening; re-opens a half-open circuit.
    Failure,
    /// The CA worked (an order completed): closes.
    Success,
    /// Says nothing about health (a good probe, a refusal, a rate limit, a local failure).
    Neutral,
}

/// Whether orders may go to a CA now, as the persisted state says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CircuitGate {
    /// Closed: go.
    Closed,
    /// Half-open: one trial (a probe, then one order) may go.
    HalfOpen,
    /// Open until then.
    Open(Option<DateTime<Utc>>),
}

/// `now + d`, saturating at the end of time instead of panicking on absurd durations.
pub(crate) fn after(now: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Reads the gate at `now`, moving an open circuit whose cool-down has ended to half-open.
/// Returns the gate and whether the state changed (to persist and announce).
pub(crate) fn gate(h: &mut CaHealth, now: DateTime<Utc>) -> (CircuitGate, bool) {
    // The same rule every report reads the stored state with (`CaHealth::effective_circuit`).
    match (h.circuit, h.effective_circuit(now)) {
        (_, CircuitState::Closed) => (CircuitGate::Closed, false),
        (_, CircuitState::Open) => (CircuitGate::Open(h.open_until), false),
        (CircuitState::HalfOpen, CircuitState::HalfOpen) => (CircuitGate::HalfOpen, false),
        // The cool-down is over (or was never recorded): one trial may go.
        (_, CircuitState::HalfOpen) => {
            h.circuit = CircuitState::HalfOpen;
            h.open_until = None;
            (CircuitGate::HalfOpen, true)
        }
    }
}

/// Applies an attempt's verdict. Returns whether the circuit's state changed.
pub(crate) fn apply(
    h: &mut CaHealth,
    policy: &BreakerPolicy,
    verdict: Verdict,
    now: DateTime<Utc>,
) -> bool {
    let before = h.circuit;
    match verdict {
        Verdict::Neutral => {}
        Verdict::Success => {
            h.consecutive_failures = 0;
            h.circuit = CircuitState::Closed;
            h.open_until = None;
            h.cooldown = None;
        }
        Verdict::Failure => {
            h.consecutive_failures = h.consecutive_failures.saturating_add(1);
            match h.circuit {
                CircuitState::Closed if h.consecutive_failures >= policy.failure_threshold => {
                    open(h, policy.cooldown.min(policy.max_cooldown), now);
                }
                CircuitState::HalfOpen => {
                    let last = h.cooldown.unwrap_or(policy.cooldown);
                    let doubled = last.saturating_mul(2).min(policy.max_cooldown);
                    open(
                        h,
                        doubled.max(policy.cooldown.min(policy.max_cooldown)),
                        now,
                    );
                }
                // Still counting, or already open (a critical job tried it anyway): the
                // cool-down in force stays.
                CircuitState::Closed | CircuitState::Open => {}
            }
        }
    }
    h.circuit != before
}

fn open(h: &mut CaHealth, cooldown: std::time::Duration, now: DateTime<Utc>) {
    h.circuit = CircuitState::Open;
    h.cooldown = Some(cooldown);
    h.open_until = Some(after(now, cooldown));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use renewd_core::{CaName, Clock, ManualClock};

    use super::*;

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            failure_threshold: 3,
            cooldown: Duration::from_secs(60),
            max_cooldown: Duration::from_secs(300),
            probe_timeout: Duration::from_secs(5),
            probe_cache: Duration::from_secs(30),
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000, 0).unwrap()
    }

    fn health() -> CaHealth {
        CaHealth::new(CaName::new("a").unwrap())
    }

    #[test]
    fn opens_after_the_threshold_of_consecutive_failures() {
        let (p, mut h) = (policy(), health());
        assert!(!apply(&mut h, &p, Verdict::Failure, t0()));
        assert!(!apply(&mut h, &p, Verdict::Failure, t0()));
        // A success in between starts the count again.
        assert!(!apply(&mut h, &p, Verdict::Success, t0()));
        assert_eq!(h.consecutive_failures, 0);
        apply(&mut h, &p, Verdict::Failure, t0());
        apply(&mut h, &p, Verdict::Failure, t0());
        // Neutral outcomes neither count nor reset.
        apply(&mut h, &p, Verdict::Neutral, t0());
        assert_eq!(h.consecutive_failures, 2);
        assert!(apply(&mut h, &p, Verdict::Failure, t0()));
        assert_eq!(h.circuit, CircuitState::Open);
        assert_eq!(h.open_until, Some(t0() + TimeDelta::seconds(60)));
        assert_eq!(h.cooldown, Some(Duration::from_secs(60)));
        // More failures while open (a critical job) keep the cool-down in force.
        assert!(!apply(
            &mut h,
            &p,
            Verdict::Failure,
            t0() + TimeDelta::seconds(30)
        ));
        assert_eq!(h.open_until, Some(t0() + TimeDelta::seconds(60)));
    }

    #[test]
    fn half_open_after_the_cooldown_then_doubling_to_the_cap() {
        let (p, mut h) = (policy(), health());
        let clock = ManualClock::new(t0());
        for _ in 0..3 {
            apply(&mut h, &p, Verdict::Failure, clock.now());
        }
        let mut expected = [60, 120, 240, 300, 300].into_iter();
        let mut cooldown = expected.next().unwrap();
        loop {
            assert_eq!(h.cooldown, Some(Duration::from_secs(cooldown)));
            // Just before the end of the cool-down: still open, nothing changes.
            clock.advance(TimeDelta::seconds(cooldown as i64 - 1));
            assert_eq!(gate(&mut h, clock.now()).0, CircuitGate::Open(h.open_until));
            clock.advance(TimeDelta::seconds(1));
            assert_eq!(gate(&mut h, clock.now()), (CircuitGate::HalfOpen, true));
            assert_eq!(gate(&mut h, clock.now()), (CircuitGate::HalfOpen, false));
            let Some(next) = expected.next() else { break };
            // The trial fails: open again for twice as long, up to the cap.
            assert!(apply(&mut h, &p, Verdict::Failure, clock.now()));
            assert_eq!(h.circuit, CircuitState::Open);
            cooldown = next;
        }
        // The trial succeeds: closed, count and cool-down forgotten.
        assert!(apply(&mut h, &p, Verdict::Success, clock.now()));
        assert_eq!(h.circuit, CircuitState::Closed);
        assert_eq!(
            (h.consecutive_failures, h.cooldown, h.open_until),
            (0, None, None)
        );
        // The next opening starts from the first cool-down again.
        for _ in 0..3 {
            apply(&mut h, &p, Verdict::Failure, clock.now());
        }
        assert_eq!(h.cooldown, Some(Duration::from_secs(60)));
    }

    #[test]
    fn a_neutral_trial_leaves_the_circuit_half_open() {
        let (p, mut h) = (policy(), health());
        h.circuit = CircuitState::HalfOpen;
        h.cooldown = Some(Duration::from_secs(120));
        assert!(!apply(&mut h, &p, Verdict::Neutral, t0()));
        assert_eq!(h.circuit, CircuitState::HalfOpen);
    }

    #[test]
    fn an_open_circuit_without_an_end_goes_half_open() {
        let mut h = health();
        h.circuit = CircuitState::Open;
        assert_eq!(gate(&mut h, t0()), (CircuitGate::HalfOpen, true));
    }

    #[test]
    fn absurd_durations_saturate() {
        let far = after(t0(), Duration::from_secs(u64::MAX));
        assert_eq!(far, DateTime::<Utc>::MAX_UTC);
        assert_eq!(
            after(t0(), Duration::from_secs(1)),
            t0() + TimeDelta::seconds(1)
        );
    }

    #[test]
    fn a_threshold_of_one_and_a_cap_below_the_cooldown() {
        let mut p = policy();
        p.failure_threshold = 1;
        p.max_cooldown = Duration::from_secs(30);
        let mut h = health();
        assert!(apply(&mut h, &p, Verdict::Failure, t0()));
        assert_eq!(h.cooldown, Some(Duration::from_secs(30)));
    }
}
