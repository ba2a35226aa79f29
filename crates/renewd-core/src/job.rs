//! What the scheduler hands to the issuance workers.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::{CaName, CertName};

/// How close a certificate is to its deadline; decides which CAs may be tried and how loud
/// failures are.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// Early in the renewal window: the preferred CA only, gentle back-off.
    #[default]
    Normal,
    /// The remaining lifetime dropped below the urgent threshold: any healthy CA in the
    /// certificate's list.
    Urgent,
    /// Near expiry, or already expired: every CA in the list, loud alerts. (A missing
    /// certificate is `Urgent`: nothing is served yet, so there is nothing to lose.)
    Critical,
}

impl Urgency {
    /// The label used in logs, JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Normal => "normal",
            Urgency::Urgent => "urgent",
            Urgency::Critical => "critical",
        }
    }
}

impl fmt::Display for Urgency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a certificate is being (re)issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RenewalReason {
    /// No certificate is installed yet.
    Missing,
    /// The installed files could not be read or parsed, or do not match each other.
    Corrupt,
    /// The installed certificate no longer covers the configured names or key type.
    Mismatch,
    /// The CA's ARI window says renew now.
    AriWindow,
    /// The share of the lifetime that triggers renewal has been reached.
    Expiring,
    /// An operator asked for it (`renewd renew --force`).
    Forced,
    /// A pending order survived a restart and is being completed.
    ResumePending,
}

impl RenewalReason {
    /// The label used in logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RenewalReason::Missing => "missing",
            RenewalReason::Corrupt => "corrupt",
            RenewalReason::Mismatch => "mismatch",
            RenewalReason::AriWindow => "ari_window",
            RenewalReason::Expiring => "expiring",
            RenewalReason::Forced => "forced",
            RenewalReason::ResumePending => "resume_pending",
        }
    }
}

impl fmt::Display for RenewalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The installed certificate a dispatcher saw (in the state store) when it created a
/// [`RenewalJob`]. A job can wait a while before a worker takes it; meanwhile another
/// process (`renewd renew`, another daemon on a shared store) may renew the certificate.
/// After taking the certificate's lease the issuer compares this with the store and ends
/// the job without an order when the installed certificate changed (unless it is forced).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum SeenInstalled {
    /// Not looked at: the issuer does not compare.
    #[default]
    Unchecked,
    /// The store recorded no installed certificate.
    Nothing,
    /// The store recorded the installed certificate with this serial (lower-case hex
    /// without leading zeros, as the store spells it).
    Serial(String),
}

impl SeenInstalled {
    /// What a dispatcher saw, from the store's installed serial (`None`: nothing installed).
    pub fn from_serial(serial: Option<&str>) -> Self {
        match serial {
            Some(s) => SeenInstalled::Serial(s.to_string()),
            None => SeenInstalled::Nothing,
        }
    }

    /// Whether the store's installed serial `now` shows that someone else installed a
    /// certificate since this was seen. `Unchecked` never says so; neither does a record
    /// that disappeared (nothing was renewed then).
    pub fn replaced_by(&self, now: Option<&str>) -> bool {
        match (self, now) {
            (SeenInstalled::Unchecked, _) | (_, None) => false,
            (SeenInstalled::Nothing, Some(_)) => true,
            (SeenInstalled::Serial(seen), Some(now)) => seen != now,
        }
    }
}

/// One unit of work for the issuance pool: get a fresh certificate for `cert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalJob {
    /// The certificate to renew.
    pub cert: CertName,
    /// Why now.
    pub reason: RenewalReason,
    /// How close the deadline is: decides which CAs may be tried.
    pub urgency: Urgency,
    /// Restrict this job to one CA (`renewd renew --ca NAME`).
    pub only_ca: Option<CaName>,
    /// The installed certificate the dispatcher saw in the store when it created the job
    /// ([`SeenInstalled::Unchecked`] unless it set it).
    pub seen_installed: SeenInstalled,
}

impl RenewalJob {
    /// A job with no CA restriction, for which nothing installed was looked at.
    pub fn new(cert: CertName, reason: RenewalReason, urgency: Urgency) -> Self {
        Self {
            cert,
            reason,
            urgency,
            only_ca: None,
            seen_installed: SeenInstalled::Unchecked,
        }
    }

    /// The same job, recording what the dispatcher saw installed.
    pub fn seen(mut self, seen: SeenInstalled) -> Self {
        self.seen_installed = seen;
        self
    }
}

/// What the scheduler sends the issuance pool. The scheduler never calls the issuer: they
/// share only these messages and the store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Work {
    /// Obtain a fresh certificate.
    Renew(RenewalJob),
    /// Fetch the ARI renewalInfo of the installed certificate and store the window.
    AriCheck(CertName),
}

impl Work {
    /// The certificate the work is for.
    pub fn cert(&self) -> &CertName {
        match self {
            Work::Renew(job) => &job.cert,
            Work::AriCheck(cert) => cert,
        }
    }
}

/// What the issuance pool sends back when a piece of [`Work`] ends, however it ended. The
/// outcome itself is in the store (certificate state, ledger); the scheduler re-reads it and
/// computes the certificate's next deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkDone {
    /// The certificate.
    pub cert: CertName,
    /// Whether the work was a renewal (`true`) or an ARI check.
    pub was_renewal: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_installed_serial_shows_another_renewal() {
        let seen = SeenInstalled::from_serial(Some("1a"));
        assert!(seen.replaced_by(Some("2b")));
        assert!(!seen.replaced_by(Some("1a")));
        assert!(!seen.replaced_by(None));
        let nothing = SeenInstalled::from_serial(None);
        assert_eq!(nothing, SeenInstalled::Nothing);
        assert!(nothing.replaced_by(Some("1a")));
        assert!(!nothing.replaced_by(None));
        assert!(!SeenInstalled::Unchecked.replaced_by(Some("1a")));
        let name = CertName::new("www").unwrap();
        let job = RenewalJob::new(name, RenewalReason::Expiring, Urgency::Normal);
        assert_eq!(job.seen_installed, SeenInstalled::Unchecked);
        assert_eq!(job.seen(seen.clone()).seen_installed, seen);
    }

    #[test]
    fn urgency_orders_by_danger() {
        assert!(Urgency::Normal < Urgency::Urgent);
        assert!(Urgency::Urgent < Urgency::Critical);
        assert_eq!(Urgency::Critical.to_string(), "critical");
    }
}
