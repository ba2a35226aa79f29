//! What the scheduler shows the outside: each certificate's state as `renewd status`
//! names it, and the [`SchedulerStatus`] snapshot the daemon's STATUS= line reads.

use std::fmt;

use chrono::{DateTime, Utc};
use renewd_core::{CertName, RenewalReason};

use crate::due::{Decision, NextWork};
use crate::explain::format_time;
use crate::view::CertView;

/// A certificate's scheduling state (the `state` of `renewd status --json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertStatus {
    /// Installed and not yet due.
    Valid,
    /// Due, waiting to be dispatched (or held back by circuits).
    Due,
    /// A renewal is in flight.
    Renewing,
    /// The last attempts failed; backing off.
    Failing,
    /// Nothing is installed.
    Missing,
}

impl CertStatus {
    /// Every state, in the order of [`CertStatus::index`].
    pub const ALL: [CertStatus; 5] = [
        CertStatus::Valid,
        CertStatus::Due,
        CertStatus::Renewing,
        CertStatus::Failing,
        CertStatus::Missing,
    ];

    /// The label of `renewd status`.
    pub fn as_str(self) -> &'static str {
        match self {
            CertStatus::Valid => "valid",
            CertStatus::Due => "due",
            CertStatus::Renewing => "renewing",
            CertStatus::Failing => "failing",
            CertStatus::Missing => "missing",
        }
    }

    /// Its position in [`CertStatus::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The state of a certificate viewed as `view`, decided as `decision`, with a renewal
    /// in flight or not, as of `now`. The first that applies: renewing, failing, missing,
    /// due, valid.
    pub fn of(view: &CertView, decision: &Decision, renewing: bool, now: DateTime<Utc>) -> Self {
        if renewing {
            CertStatus::Renewing
        } else if view.failure_streak > 0 {
            CertStatus::Failing
        } else if view.problem == Some(RenewalReason::Missing) {
            CertStatus::Missing
        } else if decision.renewal.due <= now {
            CertStatus::Due
        } else {
            CertStatus::Valid
        }
    }
}

impl fmt::Display for CertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The earliest deadline the scheduler is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextDeadline {
    /// The certificate.
    pub cert: CertName,
    /// When (in the past when it is due and waits for a free worker).
    pub at: DateTime<Utc>,
    /// For what.
    pub work: NextWork,
}

/// A snapshot of the scheduler, published on a `watch` channel after every change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedulerStatus {
    /// Configured certificates.
    pub certificates: usize,
    /// Certificates in each [`CertStatus`], indexed by [`CertStatus::index`].
    pub by_status: [usize; 5],
    /// Pieces of work in flight (renewals and ARI checks).
    pub in_flight: usize,
    /// Due work waiting for a free worker.
    pub queued: usize,
    /// The next deadline.
    pub next: Option<NextDeadline>,
}

impl SchedulerStatus {
    /// Certificates in `status`.
    pub fn count(&self, status: CertStatus) -> usize {
        self.by_status[status.index()]
    }
}

/// The STATUS= line: "3 certificates: 2 valid, 1 renewing; next: www renew at …".
impl fmt::Display for SchedulerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.certificates == 1 { "" } else { "s" };
        write!(f, "{} certificate{plural}", self.certificates)?;
        let mut sep = ": ";
        for s in CertStatus::ALL {
            let n = self.count(s);
            if n > 0 {
                write!(f, "{sep}{n} {s}")?;
                sep = ", ";
            }
        }
        if self.queued > 0 {
            write!(f, "; {} waiting for a worker", self.queued)?;
        }
        if let Some(next) = &self.next {
            write!(
                f,
                "; next: {} {} at {}",
                next.cert,
                next.work.as_str(),
                format_time(next.at)
            )?;
        }
        Ok(())
    }
}
