//! When a certificate is due, and how urgently: a pure function of its [`CertView`], its
//! [`CertPlan`], the CAs' [`Circuits`], the [`SchedulePolicy`] and "now". The timer loop
//! and `renewd status` compute the same answer from the same inputs.
//!
//! The due time is, first match wins: a pending order → now; nothing usable installed
//! (missing, corrupt, mismatched) → now; an explicit `renew_before` → notAfter minus it; the
//! CA's ARI window → a point in it drawn from a hash of (name, serial, window), so that it
//! is stable across restarts without being stored; else when 1/3 of the lifetime remains
//! (1/2 for lifetimes of 10 days or less). Lower bounds then apply: the issuer's
//! `next_attempt`, the scheduler's own hold, and — unless the certificate is critical —
//! every CA of the certificate having an open circuit.

use chrono::{DateTime, TimeDelta, Utc};
use renewd_core::{CaName, RenewalReason, Urgency};

use crate::circuits::Circuits;
use crate::policy::{CertPlan, SchedulePolicy};
use crate::view::{CertView, Hold, Validity};

/// Lifetimes up to this long renew at half of the lifetime, longer ones at two thirds.
pub const SHORT_LIFETIME: TimeDelta = TimeDelta::days(10);

/// `renew_before` never makes a certificate due before this share of its lifetime has
/// passed, so that a `renew_before` longer than the lifetime (a 30-day setting meeting a
/// 6-day certificate) cannot renew each new certificate the moment it is installed.
pub const RENEW_BEFORE_FLOOR: f64 = 0.1;

/// Everything the scheduler decided about one certificate at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The next renewal.
    pub renewal: Renewal,
    /// The next ARI check, when one is planned.
    pub ari_check: Option<DateTime<Utc>>,
}

/// When and why the certificate is to be renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    /// When renewal is wanted (before lower bounds).
    pub due: DateTime<Utc>,
    /// The earliest moment it may be dispatched (`due` pushed back by `bound`).
    pub at: DateTime<Utc>,
    /// Why.
    pub reason: RenewalReason,
    /// The urgency at `at` (or now, when `at` has passed).
    pub urgency: Urgency,
    /// What `due` was computed from.
    pub basis: Basis,
    /// What pushed `at` past `due`, if anything did.
    pub bound: Option<Bound>,
}

/// The rule that set a due time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// An order in flight must be resumed.
    PendingOrder,
    /// Nothing usable is installed: `Missing`, `Corrupt` or `Mismatch`.
    Problem(RenewalReason),
    /// The configured `renew_before`.
    RenewBefore {
        /// Its value.
        before: TimeDelta,
        /// Whether it exceeded the lifetime and [`RENEW_BEFORE_FLOOR`] applied.
        clamped: bool,
    },
    /// A point in the CA's ARI window.
    AriWindow {
        /// The window's start.
        start: DateTime<Utc>,
        /// The window's end.
        end: DateTime<Utc>,
    },
    /// This share of the lifetime remains: `(1, 3)` or `(1, 2)`.
    LifetimeLeft(u8, u8),
}

/// What holds a due certificate back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// The issuer's back-off (or a CA's Retry-After) after failures.
    Backoff {
        /// Until then.
        until: DateTime<Utc>,
        /// Failed attempts in a row.
        failures: u32,
    },
    /// The scheduler's own hold.
    Hold(Hold),
    /// Every CA the certificate may use has an open circuit.
    Circuits {
        /// The CA whose cool-down ends first.
        ca: CaName,
        /// When it ends.
        until: DateTime<Utc>,
        /// When the certificate turns critical and stops waiting for circuits, if that
        /// comes first.
        critical_at: Option<DateTime<Utc>>,
    },
}

/// What the next deadline of a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NextWork {
    /// A renewal.
    Renew,
    /// An ARI check.
    AriCheck,
}

impl NextWork {
    /// The label used in status lines.
    pub fn as_str(self) -> &'static str {
        match self {
            NextWork::Renew => "renew",
            NextWork::AriCheck => "ari check",
        }
    }
}

impl Decision {
    /// The certificate's next deadline and what it is for. A renewal wins a tie.
    pub fn next(&self) -> (DateTime<Utc>, NextWork) {
        match self.ari_check {
            Some(t) if t < self.renewal.at => (t, NextWork::AriCheck),
            _ => (self.renewal.at, NextWork::Renew),
        }
    }
}

/// Decides when `plan`'s certificate is next due, as of `now`.
pub fn decide(
    plan: &CertPlan,
    view: &CertView,
    circuits: &Circuits,
    policy: &SchedulePolicy,
    now: DateTime<Utc>,
) -> Decision {
    let installed = view.installed.as_ref();
    let (due, basis) = due_time(plan, view, policy, now);
    let reason = match basis {
        Basis::PendingOrder => RenewalReason::ResumePending,
        Basis::Problem(reason) => reason,
        Basis::AriWindow { .. } => RenewalReason::AriWindow,
        Basis::RenewBefore { .. } | Basis::LifetimeLeft(..) => RenewalReason::Expiring,
    };

    let mut at = due;
    let mut bound = None;
    if let Some(until) = view.next_attempt.filter(|t| *t > at) {
        at = until;
        bound = Some(Bound::Backoff {
            until,
            failures: view.failure_streak,
        });
    }
    if let Some(hold) = view.hold.filter(|h| h.until > at) {
        at = hold.until;
        bound = Some(Bound::Hold(hold));
    }
    let urgency_at = |t: DateTime<Utc>| urgency(installed, view.problem, policy, t.max(now));
    if urgency_at(at) != Urgency::Critical
        && let Some((ca, until)) = circuits.all_blocked(&plan.cas, at)
    {
        let critical_at = installed
            .map(|v| critical_from(v, policy))
            .filter(|c| *c > at && *c < until);
        at = critical_at.unwrap_or(until);
        bound = Some(Bound::Circuits {
            ca,
            until,
            critical_at,
        });
    }
    let renewal = Renewal {
        due,
        at,
        reason,
        urgency: urgency_at(at),
        basis,
        bound,
    };
    let ari_check = ari_check(view, policy, &renewal, now);
    Decision { renewal, ari_check }
}

fn due_time(
    plan: &CertPlan,
    view: &CertView,
    policy: &SchedulePolicy,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, Basis) {
    if view.pending {
        return (now, Basis::PendingOrder);
    }
    let (Some(v), None) = (&view.installed, view.problem) else {
        return (
            now,
            Basis::Problem(view.problem.unwrap_or(RenewalReason::Missing)),
        );
    };
    let lifetime = v.lifetime();
    if let Some(before) = plan.renew_before {
        let before = TimeDelta::from_std(before).unwrap_or(TimeDelta::MAX);
        let wanted = v
            .not_after
            .checked_sub_signed(before)
            .unwrap_or(v.not_before);
        let floor = v.not_before + scale(lifetime, RENEW_BEFORE_FLOOR);
        let clamped = wanted < floor;
        return (wanted.max(floor), Basis::RenewBefore { before, clamped });
    }
    if policy.ari
        && let Some((start, end)) = usable_window(view, v)
    {
        let due = if end <= now {
            now
        } else {
            let unit = ari_unit(plan.name.as_str(), &v.serial, start, end);
            start + scale(end - start, unit)
        };
        // The CA's advice is trusted only so far: never a point where the certificate is
        // already critical (or expired), whatever window it suggests.
        let latest = critical_from(v, policy).min(v.not_after);
        return (due.min(latest), Basis::AriWindow { start, end });
    }
    let (num, den) = if lifetime <= SHORT_LIFETIME {
        (1, 2)
    } else {
        (1, 3)
    };
    let left = scale(lifetime, f64::from(num) / f64::from(den));
    (
        (v.not_after - left).min(v.not_after),
        Basis::LifetimeLeft(num, den),
    )
}

/// The ARI window when it is a window: its end after its start (else the CA gave no
/// answer) and its start before the certificate's expiry.
fn usable_window(view: &CertView, v: &Validity) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (start, end) = (view.ari.window_start?, view.ari.window_end?);
    (end > start && start < v.not_after).then_some((start, end))
}

/// When the next ARI check is due: only for an installed, unexpired, sound certificate
/// that is not about to be replaced, with ARI on and not marked as not offered. Never
/// checked before → now.
fn ari_check(
    view: &CertView,
    policy: &SchedulePolicy,
    renewal: &Renewal,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let v = view.installed.as_ref()?;
    let eligible = policy.ari
        && !view.ari.not_offered
        && view.problem.is_none()
        && !view.pending
        && v.not_after > now
        && renewal.due > now;
    if !eligible {
        return None;
    }
    let at = view.ari.next_check.unwrap_or(now);
    Some(view.ari_floor.map_or(at, |floor| at.max(floor)))
}

/// The urgency at `at`: from the share of the lifetime remaining; a missing, corrupt or
/// mismatched certificate is at least `urgent`; an expired one is `critical`.
pub fn urgency(
    installed: Option<&Validity>,
    problem: Option<RenewalReason>,
    policy: &SchedulePolicy,
    at: DateTime<Utc>,
) -> Urgency {
    let by_lifetime = installed.map(|v| lifetime_urgency(v, policy, at));
    match (problem, by_lifetime) {
        (_, None) => Urgency::Urgent,
        (Some(_), Some(u)) => u.max(Urgency::Urgent),
        (None, Some(u)) => u,
    }
}

fn lifetime_urgency(v: &Validity, policy: &SchedulePolicy, at: DateTime<Utc>) -> Urgency {
    let remaining = v.not_after - at;
    let lifetime = v.lifetime();
    if remaining <= TimeDelta::zero() {
        return Urgency::Critical;
    }
    if lifetime <= TimeDelta::zero() {
        return Urgency::Urgent;
    }
    let share = seconds(remaining) / seconds(lifetime);
    if share < policy.critical_remaining {
        Urgency::Critical
    } else if share < policy.urgent_remaining {
        Urgency::Urgent
    } else {
        Urgency::Normal
    }
}

/// The first millisecond at which the certificate is critical (less than
/// `critical_remaining` of its lifetime left).
pub fn critical_from(v: &Validity, policy: &SchedulePolicy) -> DateTime<Utc> {
    let lifetime = v.lifetime().max(TimeDelta::zero());
    v.not_after - scale(lifetime, policy.critical_remaining) + TimeDelta::milliseconds(1)
}

fn seconds(d: TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// `d × factor` to the millisecond (`factor` in [0, 1]).
fn scale(d: TimeDelta, factor: f64) -> TimeDelta {
    let ms = d.num_milliseconds() as f64 * factor.clamp(0.0, 1.0);
    TimeDelta::milliseconds(ms as i64)
}

/// A number in [0, 1) drawn from (name, serial, window): the same inputs give the same
/// point after any restart, different certificates spread over the window. FNV-1a over the
/// inputs, then SplitMix64's finaliser for avalanche; both fixed, so the value never
/// depends on the build.
pub fn ari_unit(name: &str, serial: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(name.as_bytes());
    feed(&[0xff]);
    feed(serial.as_bytes());
    feed(&[0xff]);
    feed(&start.timestamp_millis().to_le_bytes());
    feed(&end.timestamp_millis().to_le_bytes());
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
#[path = "due_tests.rs"]
mod tests;
