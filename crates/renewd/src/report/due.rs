//! When an installed certificate falls due, for `renewd status`.
//!
//! **A stand-in.** The one rule belongs to `renewd-scheduler` (its `due` module), which the
//! timer loop and `renewd status` must share; when that crate is wired into the binary,
//! this module is deleted and `status` calls the scheduler's function instead. Until then it
//! follows the same rule, first match wins:
//!
//! 1. an explicit `renew_before`: notAfter minus it, but never before 10 % of the lifetime
//!    has passed (a 30-day `renew_before` on a 6-day certificate must not renew each new
//!    certificate the moment it is installed);
//! 2. the CA's ARI window (RFC 9773), when ARI is on and the window is one (end after
//!    start, start before notAfter): the window's **start** — the scheduler draws a stable
//!    point inside the window, which this stand-in cannot know, so it reports the earliest
//!    moment the CA suggests;
//! 3. else when 1/3 of the lifetime is left (1/2 for lifetimes of 10 days or less).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use renewd_config::format_duration;

/// Lifetimes up to this long renew at half of the lifetime, longer ones at two thirds.
pub const SHORT_LIFETIME: TimeDelta = TimeDelta::days(10);

/// `renew_before` never makes a certificate due before this share of its lifetime passed.
pub const RENEW_BEFORE_FLOOR: f64 = 0.1;

/// An installed certificate's due time and the rule that set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// When renewal is wanted.
    pub at: DateTime<Utc>,
    /// Why then.
    pub basis: DueBasis,
}

/// The rule that set a due time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueBasis {
    /// The configured `renew_before` (`clamped`: it reached back past 10 % of the lifetime
    /// and that floor applied).
    RenewBefore {
        /// Its value.
        before: Duration,
        /// Whether the floor applied.
        clamped: bool,
    },
    /// The CA's ARI window.
    AriWindow {
        /// Its start.
        start: DateTime<Utc>,
        /// Its end.
        end: DateTime<Utc>,
    },
    /// This share of the lifetime is left: `(1, 3)` or `(1, 2)`.
    LifetimeLeft(u8, u8),
}

impl fmt::Display for DueBasis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DueBasis::RenewBefore { before, clamped } => {
                write!(f, "renew_before {}", format_duration(*before))?;
                if *clamped {
                    f.write_str(", held to 10% of the lifetime")?;
                }
                Ok(())
            }
            DueBasis::AriWindow { start, end } => write!(
                f,
                "ARI window {} – {}",
                start.format("%-d %b %H:%M"),
                end.format("%-d %b %H:%M UTC")
            ),
            DueBasis::LifetimeLeft(num, den) => write!(f, "{num}/{den} of lifetime left"),
        }
    }
}

/// The due time of a certificate valid from `not_before` to `not_after`; `ari_window` is the
/// CA's suggested window for this very certificate (`None` when ARI is off or unknown).
pub fn due_time(
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    renew_before: Option<Duration>,
    ari_window: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Due {
    let lifetime = (not_after - not_before).max(TimeDelta::zero());
    if let Some(before) = renew_before {
        let wanted = TimeDelta::from_std(before)
            .ok()
            .and_then(|d| not_after.checked_sub_signed(d))
            .unwrap_or(not_before);
        let floor = not_before + scale(lifetime, RENEW_BEFORE_FLOOR);
        return Due {
            at: wanted.max(floor),
            basis: DueBasis::RenewBefore {
                before,
                clamped: wanted < floor,
            },
        };
    }
    if let Some((start, end)) = ari_window.filter(|(s, e)| e > s && *s < not_after) {
        return Due {
            at: start,
            basis: DueBasis::AriWindow { start, end },
        };
    }
    let (num, den) = if lifetime <= SHORT_LIFETIME {
        (1, 2)
    } else {
        (1, 3)
    };
    let left = scale(lifetime, f64::from(num) / f64::from(den));
    Due {
        at: not_after - left,
        basis: DueBasis::LifetimeLeft(num, den),
    }
}

/// `d × factor`, to the millisecond (`factor` in [0, 1]).
fn scale(d: TimeDelta, factor: f64) -> TimeDelta {
    // Lifetimes are at most centuries: the product fits an i64 of milliseconds.
    TimeDelta::milliseconds((d.num_milliseconds() as f64 * factor) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(days: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap() + TimeDelta::days(days)
    }

    #[test]
    fn a_third_of_a_long_lifetime() {
        let due = due_time(t(0), t(90), None, None);
        assert_eq!(due.at, t(60));
        assert_eq!(due.basis, DueBasis::LifetimeLeft(1, 3));
        assert_eq!(due.basis.to_string(), "1/3 of lifetime left");
    }

    #[test]
    fn half_of_a_short_lifetime() {
        let due = due_time(t(0), t(6), None, None);
        assert_eq!(due.at, t(3));
        assert_eq!(due.basis, DueBasis::LifetimeLeft(1, 2));
        // Exactly ten days still counts as short.
        assert_eq!(due_time(t(0), t(10), None, None).at, t(5));
    }

    #[test]
    fn renew_before_wins_and_is_floored() {
        let month = Duration::from_secs(30 * 86_400);
        let due = due_time(t(0), t(90), Some(month), Some((t(70), t(72))));
        assert_eq!(due.at, t(60));
        assert_eq!(
            due.basis.to_string(),
            format!("renew_before {}", format_duration(month))
        );
        // Longer than the lifetime: 10 % of it.
        let due = due_time(t(0), t(10), Some(month), None);
        assert_eq!(due.at, t(1));
        assert!(matches!(
            due.basis,
            DueBasis::RenewBefore { clamped: true, .. }
        ));
    }

    #[test]
    fn an_ari_window_is_used_only_when_it_is_one() {
        let due = due_time(t(0), t(90), None, Some((t(50), t(52))));
        assert_eq!(due.at, t(50));
        assert_eq!(
            due.basis.to_string(),
            "ARI window 3 Jan 22:13 – 5 Jan 22:13 UTC"
        );
        // End before start, or a window after expiry: ignored.
        for window in [(t(52), t(50)), (t(95), t(99))] {
            let due = due_time(t(0), t(90), None, Some(window));
            assert_eq!(due.basis, DueBasis::LifetimeLeft(1, 3));
        }
    }

    #[test]
    fn absurd_inputs_do_not_panic() {
        let due = due_time(t(10), t(0), None, None);
        assert_eq!(due.at, t(0));
        let far = Duration::from_secs(u64::MAX);
        let due = due_time(t(0), t(90), Some(far), None);
        assert_eq!(due.at, t(9));
    }
}
