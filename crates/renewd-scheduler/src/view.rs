//! The scheduler's compact view of one certificate: what is installed (from the inventory
//! scan, else from the store), why it must be replaced now if it must, and what the
//! issuer recorded (back-off, pending order, ARI). Built from a [`CertState`] and an
//! [`InstalledState`]; never written back.

use chrono::{DateTime, TimeDelta, Utc};
use renewd_core::RenewalReason;
use renewd_store::{CertState, InstalledState};

/// An installed certificate's serial and validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validity {
    /// Serial, lower-case hex without leading zeros (as the store and the scan spell it).
    pub serial: String,
    /// notBefore.
    pub not_before: DateTime<Utc>,
    /// notAfter.
    pub not_after: DateTime<Utc>,
}

impl Validity {
    /// notAfter − notBefore, read from the certificate (never assumed).
    pub fn lifetime(&self) -> TimeDelta {
        self.not_after - self.not_before
    }
}

/// What the inventory scan found, reduced to what scheduling needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Disk {
    /// Not scanned (or superseded by an installation the store recorded): the store's
    /// `installed` decides.
    #[default]
    Unknown,
    Valid(Validity),
    Missing,
    Corrupt,
    Mismatch(Validity),
}

impl Disk {
    pub(crate) fn from_scan(scan: &InstalledState) -> Self {
        let validity = |s: &InstalledState| {
            s.facts().map(|f| Validity {
                serial: f.serial_hex(),
                not_before: f.not_before(),
                not_after: f.not_after(),
            })
        };
        match (scan.renewal_reason(), validity(scan)) {
            (None, Some(v)) => Disk::Valid(v),
            (Some(RenewalReason::Mismatch), Some(v)) => Disk::Mismatch(v),
            (Some(RenewalReason::Missing), _) => Disk::Missing,
            _ => Disk::Corrupt,
        }
    }
}

/// What the CA's ARI resource said about the installed certificate, as stored by the
/// issuer. Empty when the stored answer is about another certificate than the one
/// installed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AriView {
    /// The suggested window's start.
    pub window_start: Option<DateTime<Utc>>,
    /// The suggested window's end.
    pub window_end: Option<DateTime<Utc>>,
    /// When to ask again (the CA's Retry-After, as the issuer clamped it).
    pub next_check: Option<DateTime<Utc>>,
    /// The issuer found that ARI cannot be asked about this certificate (no `renewalInfo`
    /// at its CA, or not a certificate renewd can ask about): no checks are planned. The
    /// scheduler ignores markers older than its last (re)load of the config.
    pub not_offered: bool,
}

/// Why the scheduler holds a certificate back on its own (in memory only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldReason {
    /// Its state could not be read from the store; it is read again at the hold's end.
    StoreUnreadable,
    /// A renewal ended without installing a certificate and without a back-off in the
    /// store; a short pause keeps a misbehaving issuer from spinning.
    NoBackoffRecorded,
}

/// A scheduler-side lower bound on a certificate's next renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// Not before this.
    pub until: DateTime<Utc>,
    /// Why.
    pub reason: HoldReason,
}

/// Everything [`crate::decide`] reads about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertView {
    /// The certificate being served, when one is: from the scan, else from the store.
    pub installed: Option<Validity>,
    /// Why it must be replaced now regardless of its dates: `Missing`, `Corrupt` or
    /// `Mismatch`.
    pub problem: Option<RenewalReason>,
    /// ARI's view of the installed certificate.
    pub ari: AriView,
    /// Not before this (back-off and Retry-After, written by the issuer).
    pub next_attempt: Option<DateTime<Utc>>,
    /// Failed attempts in a row.
    pub failure_streak: u32,
    /// An order survived (a restart, or a finalize that failed) and must be resumed.
    pub pending: bool,
    /// The scheduler's own lower bound, when it holds the certificate back.
    pub hold: Option<Hold>,
    /// No ARI check before this (the scheduler's guard when the issuer stored no
    /// `next_check` after a check).
    pub ari_floor: Option<DateTime<Utc>>,
}

impl CertView {
    /// The view of a certificate whose stored state is `state` and whose last scan found
    /// `scan` (`None`: not scanned; the store's `installed` is believed).
    pub fn new(state: &CertState, scan: Option<&InstalledState>) -> Self {
        Self::from_disk(
            &scan.map(Disk::from_scan).unwrap_or_default(),
            state,
            DateTime::<Utc>::MIN_UTC,
        )
    }

    /// The view; an ARI "not offered" marker counts only when set at or after `ari_epoch`
    /// (the scheduler's last load of the config).
    pub(crate) fn from_disk(disk: &Disk, state: &CertState, ari_epoch: DateTime<Utc>) -> Self {
        let stored = state.installed.as_ref().map(|i| Validity {
            serial: i.serial.clone(),
            not_before: i.not_before,
            not_after: i.not_after,
        });
        let (installed, problem) = match disk {
            Disk::Unknown => {
                let problem = stored.is_none().then_some(RenewalReason::Missing);
                (stored.clone(), problem)
            }
            Disk::Valid(v) => (Some(v.clone()), None),
            Disk::Missing => (None, Some(RenewalReason::Missing)),
            Disk::Corrupt => (None, Some(RenewalReason::Corrupt)),
            Disk::Mismatch(v) => (Some(v.clone()), Some(RenewalReason::Mismatch)),
        };
        // The stored ARI answer is about the certificate the store recorded; it says
        // nothing about another one found on disk.
        let same_cert = match (&installed, &stored) {
            (Some(i), Some(s)) => i.serial == s.serial,
            _ => false,
        };
        let ari = if same_cert {
            AriView {
                window_start: state.ari.window_start,
                window_end: state.ari.window_end,
                next_check: state.ari.next_check,
                not_offered: state.ari.not_offered_at.is_some_and(|t| t >= ari_epoch),
            }
        } else {
            AriView::default()
        };
        Self {
            installed,
            problem,
            ari,
            next_attempt: state.next_attempt,
            failure_streak: state.failure_streak,
            pending: state.pending.is_some(),
            hold: None,
            ari_floor: None,
        }
    }
}
