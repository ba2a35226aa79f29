//! The records the state store keeps: CA health, per-certificate state, pending orders,
//! accounts, ledger queries and the status snapshot. Backend-neutral plain data.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use renewd_core::{CaName, CertName, OutcomeClass, Step, UnknownLabel, Urgency};

use crate::lease::Lease;

/// A CA's circuit breaker state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CircuitState {
    /// Orders flow normally.
    #[default]
    Closed,
    /// No orders until `open_until`.
    Open,
    /// Cool-down over: one health probe, then one order decide whether to close or reopen.
    HalfOpen,
}

impl CircuitState {
    /// The label used in JSON (`renewd ca --json`) and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }

    /// The state in effect at `now` of a circuit stored as `self` with `open_until`: an
    /// open circuit whose cool-down has ended (or has no recorded end) is half-open. The
    /// store keeps `open` until the next job that considers the CA makes the move; every
    /// report (`renewd ca`, the metrics, `STATUS=`) and the breaker itself read the state
    /// through this one rule, so they agree in the meantime.
    pub fn effective(self, open_until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        match (self, open_until) {
            (CircuitState::Open, Some(until)) if until > now => CircuitState::Open,
            (CircuitState::Open, _) => CircuitState::HalfOpen,
            (other, _) => other,
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CircuitState {
    type Err = UnknownLabel;
    fn from_str(s: &str) -> Result<Self, UnknownLabel> {
        match s {
            "closed" => Ok(CircuitState::Closed),
            "open" => Ok(CircuitState::Open),
            "half_open" => Ok(CircuitState::HalfOpen),
            _ => Err(UnknownLabel {
                what: "circuit state",
                label: s.to_string(),
                expected: "closed open half_open",
            }),
        }
    }
}

/// One CA's health as the breaker and `renewd ca` see it. Survives restarts, so an open
/// circuit stays open and the cool-down keeps growing across them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaHealth {
    /// The CA.
    pub ca: CaName,
    /// The circuit.
    pub circuit: CircuitState,
    /// `CaUnavailable` failures in a row (as the breaker counted them).
    pub consecutive_failures: u32,
    /// While open: when the cool-down ends.
    pub open_until: Option<DateTime<Utc>>,
    /// The current cool-down, doubled by the breaker each time the circuit reopens.
    pub cooldown: Option<Duration>,
    /// When the last health probe finished.
    pub last_probe: Option<DateTime<Utc>>,
    /// Whether it succeeded.
    pub last_probe_ok: Option<bool>,
    /// How long it took.
    pub last_probe_latency: Option<Duration>,
    /// The CA rate-limited renewd's account (429 or `rateLimited`): nothing may be sent to
    /// it before this time (its `Retry-After`).
    pub blocked_until: Option<DateTime<Utc>>,
}

impl CaHealth {
    /// The circuit in effect at `now` ([`CircuitState::effective`]).
    pub fn effective_circuit(&self, now: DateTime<Utc>) -> CircuitState {
        self.circuit.effective(self.open_until, now)
    }

    /// When the cool-down ends, while the circuit is in effect open at `now`.
    pub fn effective_open_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        (self.effective_circuit(now) == CircuitState::Open)
            .then_some(self.open_until)
            .flatten()
    }

    /// A CA never seen before: circuit closed, nothing probed.
    pub fn new(ca: CaName) -> Self {
        Self {
            ca,
            circuit: CircuitState::Closed,
            consecutive_failures: 0,
            open_until: None,
            cooldown: None,
            last_probe: None,
            last_probe_ok: None,
            last_probe_latency: None,
            blocked_until: None,
        }
    }
}

/// The certificate currently installed, as renewd last installed or scanned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledCert {
    /// Serial number, lower-case hex without leading zeros.
    pub serial: String,
    /// notBefore.
    pub not_before: DateTime<Utc>,
    /// notAfter.
    pub not_after: DateTime<Utc>,
    /// The CA that issued it, when renewd did.
    pub issuer_ca: Option<CaName>,
    /// The account that ordered it (ARI `replaces` goes only to that CA and account).
    pub account_url: Option<String>,
    /// The ARI CertID (`base64url(AKI keyIdentifier) "." base64url(serial)`), when the
    /// certificate has an AKI.
    pub ari_cert_id: Option<String>,
}

/// What the CA's ARI resource last said about the installed certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AriState {
    /// Start of the suggested window.
    pub window_start: Option<DateTime<Utc>>,
    /// End of the suggested window.
    pub window_end: Option<DateTime<Utc>>,
    /// The `explanationURL`, when given.
    pub explanation_url: Option<String>,
    /// When to fetch renewalInfo again (its Retry-After).
    pub next_check: Option<DateTime<Utc>>,
    /// When the issuer found that ARI cannot be asked about the installed certificate (the
    /// CA offers no `renewalInfo`, or the certificate is not one renewd can ask about: not
    /// issued by a configured CA, no CertID). No ARI checks are planned for it while this
    /// is set, until the config is loaded again. `None`: ARI applies, or was never tried.
    pub not_offered_at: Option<DateTime<Utc>>,
}

/// The last failure of a certificate's renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    /// Its class.
    pub class: OutcomeClass,
    /// A human-readable account.
    pub message: String,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// An order persisted before finalize, so that a crash or a 5xx at finalize resumes the same
/// order with the same key and CSR instead of starting over. The key is a file (mode 0600,
/// written by [`crate::PendingKeys`]), never a database value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOrder {
    /// The CA the order lives at.
    pub ca: CaName,
    /// The account that created it.
    pub account_url: String,
    /// The order URL (POST-as-GET it to learn its status).
    pub order_url: String,
    /// The new private key's file.
    pub key_path: PathBuf,
    /// The CSR sent (or to be sent) to finalize, DER.
    pub csr_der: Vec<u8>,
    /// When the order was created.
    pub created_at: DateTime<Utc>,
}

/// Everything renewd remembers about one certificate between runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertState {
    /// The certificate.
    pub cert: CertName,
    /// What is installed, when anything is.
    pub installed: Option<InstalledCert>,
    /// ARI's view of the installed certificate.
    pub ari: AriState,
    /// Not before this time (back-off, Retry-After).
    pub next_attempt: Option<DateTime<Utc>>,
    /// The back-off step (0 = no back-off).
    pub backoff_step: u32,
    /// The urgency last alerted about, so an alert is raised once per level.
    pub urgency_alerted: Option<Urgency>,
    /// The first failure of the current streak.
    pub failing_since: Option<DateTime<Utc>>,
    /// Failed attempts in a row.
    pub failure_streak: u32,
    /// The most recent failure.
    pub last_error: Option<LastError>,
    /// The most recent successful renewal.
    pub last_success: Option<DateTime<Utc>>,
    /// The order in flight, when one is.
    pub pending: Option<PendingOrder>,
}

impl CertState {
    /// A certificate renewd knows nothing about yet.
    pub fn new(cert: CertName) -> Self {
        Self {
            cert,
            installed: None,
            ari: AriState::default(),
            next_attempt: None,
            backoff_step: 0,
            urgency_alerted: None,
            failing_since: None,
            failure_streak: 0,
            last_error: None,
            last_success: None,
            pending: None,
        }
    }
}

/// An ACME account's metadata. Its key is a file (mode 0600) at `key_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// The CA.
    pub ca: CaName,
    /// The account URL (the JWS `kid`).
    pub url: String,
    /// The account key's file.
    pub key_path: PathBuf,
    /// The EAB key identifier used to create it, if any.
    pub eab_kid: Option<String>,
    /// The contact URLs registered.
    pub contact: Vec<String>,
    /// When it was created.
    pub created: DateTime<Utc>,
}

/// A ledger query. Results come newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerQuery {
    /// Only this CA.
    pub ca: Option<CaName>,
    /// Only this certificate.
    pub cert: Option<CertName>,
    /// Only rows at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many rows.
    pub limit: Option<u32>,
    /// Only rows of these steps (`None`: every step). The limit counts the rows that pass.
    pub steps: Option<Vec<Step>>,
}

impl LedgerQuery {
    /// Every row, newest first.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only rows of `ca`.
    pub fn ca(mut self, ca: CaName) -> Self {
        self.ca = Some(ca);
        self
    }

    /// Only rows of `cert`.
    pub fn cert(mut self, cert: CertName) -> Self {
        self.cert = Some(cert);
        self
    }

    /// Only rows at or after `t`.
    pub fn since(mut self, t: DateTime<Utc>) -> Self {
        self.since = Some(t);
        self
    }

    /// At most `n` rows.
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }

    /// Only rows of these steps.
    pub fn steps(mut self, steps: impl IntoIterator<Item = Step>) -> Self {
        self.steps = Some(steps.into_iter().collect());
        self
    }
}

/// Counts of a CA's ledger rows in a window, by class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerStats {
    /// All rows.
    pub total: u64,
    /// `ok` rows.
    pub ok: u64,
    /// `ca_unavailable` rows.
    pub ca_unavailable: u64,
    /// `rate_limited` rows.
    pub rate_limited: u64,
    /// `bad_nonce` rows.
    pub bad_nonce: u64,
    /// `rejected` rows.
    pub rejected: u64,
    /// `local` rows.
    pub local: u64,
}

impl LedgerStats {
    /// The share of requests the CA failed to answer usefully: `ca_unavailable / total`
    /// (0 when the window is empty). Other failure classes are not the CA's ill health.
    pub fn failure_rate(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.ca_unavailable as f64 / self.total as f64
        }
    }

    pub(crate) fn add(&mut self, class: OutcomeClass, n: u64) {
        self.total += n;
        match class {
            OutcomeClass::Ok => self.ok += n,
            OutcomeClass::CaUnavailable => self.ca_unavailable += n,
            OutcomeClass::RateLimited => self.rate_limited += n,
            OutcomeClass::BadNonce => self.bad_nonce += n,
            OutcomeClass::Rejected => self.rejected += n,
            // OutcomeClass is non_exhaustive; a class added later counts as local until
            // this store learns it.
            _ => self.local += n,
        }
    }
}

/// How long the ledger keeps rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Rows older than this are pruned (default 90 days).
    pub max_age: Duration,
    /// At most this many rows are kept, the newest (default 100,000).
    pub max_rows: u64,
    /// Appending prunes cheaply every this many appends (default 1,000; 0 = never).
    pub prune_every: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(90 * 24 * 3600),
            max_rows: 100_000,
            prune_every: 1_000,
        }
    }
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Rows older than the maximum age.
    pub by_age: u64,
    /// Rows beyond the maximum count.
    pub by_rows: u64,
}

/// One consistent read of everything `renewd status` and `renewd ca` show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusSnapshot {
    /// Every certificate's state, by name.
    pub certs: Vec<CertState>,
    /// Every CA's health, by name.
    pub cas: Vec<CaHealth>,
    /// Every account, by CA.
    pub accounts: Vec<AccountRecord>,
    /// The leases held (expired ones included; [`Lease::expires_at`] tells).
    pub leases: Vec<Lease>,
    /// Rows in the ledger.
    pub ledger_rows: u64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn an_open_circuit_past_its_cool_down_is_half_open_in_effect() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut h = CaHealth::new(CaName::new("zerossl").unwrap());
        assert_eq!(h.effective_circuit(now), CircuitState::Closed);
        h.circuit = CircuitState::Open;
        h.open_until = Some(now + TimeDelta::seconds(1));
        assert_eq!(h.effective_circuit(now), CircuitState::Open);
        assert_eq!(h.effective_open_until(now), h.open_until);
        for ended in [Some(now), Some(now - TimeDelta::hours(1)), None] {
            h.open_until = ended;
            assert_eq!(
                h.effective_circuit(now),
                CircuitState::HalfOpen,
                "{ended:?}"
            );
            assert_eq!(h.effective_open_until(now), None);
        }
        h.circuit = CircuitState::HalfOpen;
        assert_eq!(h.effective_circuit(now), CircuitState::HalfOpen);
    }
}
