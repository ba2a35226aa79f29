//! Which CAs a job tries, in which order, and when it moves on — the urgency rules of
//! DESIGN.md as pure functions:
//!
//! - `normal`: the first CA in the certificate's list whose circuit is not open and that is
//!   not rate-limiting renewd (the preferred CA when it is healthy); no failover within the
//!   job except after a CA-specific refusal (`caa`, `invalidProfile`, …: that CA cannot
//!   issue this certificate, so the next one is asked at any urgency).
//! - `urgent`: every such CA in list order, moving on after any failure whose class allows
//!   failover (`ca_unavailable`, `rate_limited`, CA-specific refusals).
//! - `critical`: as `urgent`, then the CAs with open circuits or another job's half-open
//!   trial (each probed first).
//!
//! A rate-limiting CA is never tried before its `Retry-After`, whatever the urgency. The
//! job adds one rule to these: while an order that may still complete is pending, only a
//! critical job moves on to another CA (which abandons the order).

use renewd_core::{CaName, FailureClass, Urgency};

use crate::health::{Availability, TrialGuard};

/// How a job may use a CA.
#[derive(Debug)]
pub(crate) enum Access {
    /// Closed circuit: a cached probe will do.
    Ready,
    /// This job holds the half-open trial: one fresh probe, then one order. The slot is
    /// freed when the access is dropped.
    Trial { _slot: TrialGuard },
    /// Critical urgency at an open circuit: a fresh probe, then an order if it passes.
    Forced,
}

impl Access {
    /// Whether the probe must be fresh rather than cached.
    pub(crate) fn fresh_probe(&self) -> bool {
        !matches!(self, Access::Ready)
    }
}

/// A CA to try.
#[derive(Debug)]
pub(crate) struct Candidate {
    pub(crate) ca: CaName,
    pub(crate) access: Access,
}

/// The CAs to try, in order, and those left out with the reason. `cas` is the list in
/// preference order with each CA's availability; `first` (the CA of a pending order) goes
/// first when it may be tried at all.
pub(crate) fn plan(
    cas: Vec<(CaName, Availability)>,
    urgency: Urgency,
    first: Option<&CaName>,
) -> (Vec<Candidate>, Vec<(CaName, Availability)>) {
    let mut usable = Vec::new();
    let mut open = Vec::new();
    let mut skipped = Vec::new();
    for (ca, availability) in cas {
        match availability {
            Availability::Ready => usable.push(Candidate {
                ca,
                access: Access::Ready,
            }),
            Availability::Trial(guard) => usable.push(Candidate {
                ca,
                access: Access::Trial { _slot: guard },
            }),
            Availability::Open { .. } | Availability::TrialBusy if urgency == Urgency::Critical => {
                open.push(Candidate {
                    ca,
                    access: Access::Forced,
                })
            }
            other => skipped.push((ca, other)),
        }
    }
    usable.extend(open);
    if let Some(first) = first
        && let Some(i) = usable.iter().position(|c| &c.ca == first)
    {
        let c = usable.remove(i);
        usable.insert(0, c);
    }
    (usable, skipped)
}

/// After a failure of `class` at one CA, whether the job goes on to the next candidate.
pub(crate) fn may_continue(urgency: Urgency, class: FailureClass) -> bool {
    match class {
        // This CA cannot issue this certificate: another may, at any urgency.
        FailureClass::Rejected { ca_specific: true } => true,
        other => urgency >= Urgency::Urgent && other.allows_failover(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use chrono::DateTime;

    use super::*;
    use crate::health::TrialSlots;

    fn ca(s: &str) -> CaName {
        CaName::new(s).unwrap()
    }

    fn names(plan: &[Candidate]) -> Vec<&str> {
        plan.iter().map(|c| c.ca.as_str()).collect()
    }

    /// Each call has its own trial slots, so each holds its own trial.
    fn situation() -> Vec<(CaName, Availability)> {
        let slots = Arc::new(TrialSlots::default());
        let t = DateTime::from_timestamp(1_750_000_000, 0).unwrap();
        vec![
            (ca("open"), Availability::Open { until: Some(t) }),
            (ca("blocked"), Availability::Blocked { until: t }),
            (ca("ready"), Availability::Ready),
            (
                ca("trial"),
                Availability::Trial(slots.take(&ca("trial")).unwrap()),
            ),
            (ca("busy"), Availability::TrialBusy),
        ]
    }

    #[test]
    fn healthy_cas_first_open_ones_only_when_critical_blocked_ones_never() {
        for urgency in [Urgency::Normal, Urgency::Urgent] {
            let (tried, skipped) = plan(situation(), urgency, None);
            assert_eq!(names(&tried), ["ready", "trial"]);
            assert_eq!(skipped.len(), 3);
        }
        let (tried, skipped) = plan(situation(), Urgency::Critical, None);
        assert_eq!(skipped.len(), 1, "only the rate-limited CA is left out");
        assert_eq!(names(&tried), ["ready", "trial", "open", "busy"]);
        assert!(matches!(tried[2].access, Access::Forced));
        assert!(matches!(tried[3].access, Access::Forced));
        assert!(tried[2].access.fresh_probe() && tried[1].access.fresh_probe());
        assert!(!tried[0].access.fresh_probe());
    }

    #[test]
    fn the_pending_orders_ca_goes_first_when_usable() {
        let (tried, _) = plan(situation(), Urgency::Urgent, Some(&ca("trial")));
        assert_eq!(names(&tried), ["trial", "ready"]);
        let (tried, _) = plan(situation(), Urgency::Critical, Some(&ca("open")));
        assert_eq!(names(&tried), ["open", "ready", "trial", "busy"]);
        // Not usable: nothing moves.
        let (tried, _) = plan(situation(), Urgency::Urgent, Some(&ca("blocked")));
        assert_eq!(names(&tried), ["ready", "trial"]);
    }

    #[test]
    fn failover_rules_by_class_and_urgency() {
        use FailureClass::*;
        let specific = Rejected { ca_specific: true };
        let validation = Rejected { ca_specific: false };
        let limited = RateLimited { retry_after: None };
        for u in [Urgency::Normal, Urgency::Urgent, Urgency::Critical] {
            assert!(may_continue(u, specific), "{u}");
            assert!(!may_continue(u, validation), "{u}");
            assert!(!may_continue(u, BadNonce), "{u}");
            assert!(!may_continue(u, Local), "{u}");
        }
        assert!(!may_continue(Urgency::Normal, CaUnavailable));
        assert!(!may_continue(Urgency::Normal, limited));
        for u in [Urgency::Urgent, Urgency::Critical] {
            assert!(may_continue(u, CaUnavailable));
            assert!(may_continue(u, limited));
        }
    }
}
