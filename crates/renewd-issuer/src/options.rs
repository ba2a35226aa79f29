//! The issuer's knobs that are not in the config file.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use renewd_acme::PollPolicy;
use renewd_core::RequestOutcome;
use renewd_store::DEFAULT_LEASE_TTL;

/// Called with every request outcome: each ledger row right after it is appended (ACME
/// requests, probes and local steps alike, [`OutcomeKind::Recorded`]), and each refused
/// nonce the ACME client sent again at once ([`OutcomeKind::Retried`], not a ledger row).
/// The daemon's way to follow every request (metrics, logs) without reading the ledger
/// back. It runs on the job's task, so it must be quick and must not block.
pub type OutcomeHook = Arc<dyn Fn(&RequestOutcome, OutcomeKind) + Send + Sync>;

/// Whether an outcome handed to the [`OutcomeHook`] is a ledger row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutcomeKind {
    /// Appended to the ledger.
    Recorded,
    /// A `badNonce` answer the client retried at once with the fresh nonce it carried. Not
    /// a ledger row (DESIGN.md: a `badNonce` reaches the ledger only when it persists — the
    /// last refusal, when the retries ran out, is [`Recorded`](OutcomeKind::Recorded)),
    /// but still a request the CA answered.
    Retried,
}

/// Settings of the issuer beyond the config file (defaults suit production; tests shorten
/// the waits). The limit on one order is the config's: each `[[ca]] order_timeout`.
#[derive(Clone)]
pub struct IssuerOptions {
    /// How the ACME client polls authorizations and orders.
    pub poll: PollPolicy,
    /// How long a certificate's lease lives without a heartbeat (the heartbeat runs at a
    /// third of it).
    pub lease_ttl: Duration,
    /// When another process holds a certificate's lease: try again after this.
    pub busy_retry: Duration,
    /// How far in the future an issued certificate's notBefore may be (CA clock skew).
    pub clock_skew: Duration,
    /// The `User-Agent` sent to CAs (`None`: `renewd/VERSION`).
    pub user_agent: Option<String>,
    /// What happens with each request outcome besides the ledger's append (see
    /// [`OutcomeHook`]). Default: [`log_outcome`] (one log event per outcome); a hook that
    /// replaces it should log too.
    ///
    /// [`log_outcome`]: crate::log_outcome
    pub on_outcome: OutcomeHook,
}

impl fmt::Debug for IssuerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerOptions")
            .field("poll", &self.poll)
            .field("lease_ttl", &self.lease_ttl)
            .field("busy_retry", &self.busy_retry)
            .field("clock_skew", &self.clock_skew)
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

impl Default for IssuerOptions {
    fn default() -> Self {
        IssuerOptions {
            poll: PollPolicy::default(),
            lease_ttl: DEFAULT_LEASE_TTL,
            busy_retry: Duration::from_secs(60),
            clock_skew: Duration::from_secs(300),
            user_agent: None,
            on_outcome: Arc::new(crate::ledger::log_outcome),
        }
    }
}
