//! One line saying why a certificate is scheduled when it is, for `renewd status` and the
//! logs: "due at 2025-05-01 14:10 UTC (1/3 of lifetime left)", "waiting for zerossl's
//! circuit until …", "backing off after 3 failures until …".

use std::fmt::{self, Write as _};

use chrono::{DateTime, TimeDelta, Utc};
use renewd_core::{RenewalReason, Urgency};

use crate::due::{Basis, Bound, Decision, NextWork};
use crate::view::HoldReason;

/// Formats a time the way the explanations do.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn format_span(d: TimeDelta) -> String {
    let (days, hours, minutes) = (d.num_days(), d.num_hours() % 24, d.num_minutes() % 60);
    match (days, hours, minutes) {
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h{m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

impl Decision {
    /// Why the certificate's next deadline is what it is, as of `now`.
    pub fn explain(&self, now: DateTime<Utc>) -> String {
        let r = &self.renewal;
        let mut out = String::new();
        if let (at, NextWork::AriCheck) = self.next() {
            if at <= now {
                out.push_str("ARI check due now");
            } else {
                let _ = write!(out, "ARI check at {}", format_time(at));
            }
            let _ = write!(out, "; renewal {}", when(r.due, now));
            let _ = push_basis(&mut out, r.basis);
            return out;
        }
        match &r.bound {
            None if r.due <= now => out.push_str("due now"),
            None => {
                let _ = write!(out, "due at {}", format_time(r.due));
            }
            Some(bound) => {
                let _ = push_bound(&mut out, bound, r.at);
                let _ = write!(out, "; due {}", when(r.due, now));
            }
        }
        let _ = push_basis(&mut out, r.basis);
        if r.urgency != Urgency::Normal {
            let _ = write!(out, " [{}]", r.urgency);
        }
        out
    }
}

fn when(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if t <= now {
        "now".to_string()
    } else {
        format!("at {}", format_time(t))
    }
}

fn push_basis(out: &mut String, basis: Basis) -> fmt::Result {
    write!(out, " ({basis})")
}

/// What a due time was computed from, as the explanations say it: "1/3 of lifetime
/// left", "in the CA's ARI window … – …", "renew_before 30d before expiry", …
impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Basis::PendingOrder => f.write_str("a pending order to resume"),
            Basis::Problem(RenewalReason::Missing) => f.write_str("no certificate installed"),
            Basis::Problem(RenewalReason::Mismatch) => {
                f.write_str("the installed certificate no longer fits the config")
            }
            Basis::Problem(_) => f.write_str("the installed files are unreadable or corrupt"),
            Basis::RenewBefore { before, clamped } => {
                write!(f, "renew_before {} before expiry", format_span(before))?;
                if clamped {
                    f.write_str(", longer than the lifetime allows")?;
                }
                Ok(())
            }
            Basis::AriWindow { start, end } => write!(
                f,
                "in the CA's ARI window {} – {}",
                format_time(start),
                format_time(end)
            ),
            Basis::LifetimeLeft(num, den) => write!(f, "{num}/{den} of lifetime left"),
        }
    }
}

fn push_bound(out: &mut String, bound: &Bound, at: DateTime<Utc>) -> fmt::Result {
    match bound {
        Bound::Backoff { until, failures: 0 } => {
            write!(out, "not before {} (retry-after)", format_time(*until))
        }
        Bound::Backoff { until, failures: 1 } => {
            write!(
                out,
                "backing off after 1 failure until {}",
                format_time(*until)
            )
        }
        Bound::Backoff { until, failures } => write!(
            out,
            "backing off after {failures} failures until {}",
            format_time(*until)
        ),
        Bound::Hold(hold) => match hold.reason {
            HoldReason::StoreUnreadable => write!(
                out,
                "state unreadable in the store, reading again at {}",
                format_time(hold.until)
            ),
            HoldReason::NoBackoffRecorded => write!(
                out,
                "pausing until {} (the last attempt recorded no back-off)",
                format_time(hold.until)
            ),
        },
        Bound::Circuits {
            ca,
            until,
            critical_at,
        } => {
            write!(
                out,
                "waiting for {ca}'s circuit until {}",
                format_time(*until)
            )?;
            if critical_at.is_some() {
                write!(out, ", or until critical at {}", format_time(at))?;
            }
            Ok(())
        }
    }
}
