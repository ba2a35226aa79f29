//! The issuer's knobs that are not in the config file.

use std::time::Duration;

use renewd_acme::PollPolicy;
use renewd_store::DEFAULT_LEASE_TTL;

/// Settings of the issuer beyond the config file (defaults suit production; tests shorten
/// the waits).
#[derive(Debug, Clone)]
pub struct IssuerOptions {
    /// The limit on finishing one order once it exists (authorizations, finalize with
    /// recovery, download). When it passes, the attempt fails `ca_unavailable` and the
    /// pending order is kept for the next attempt.
    pub order_timeout: Duration,
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
}

impl Default for IssuerOptions {
    fn default() -> Self {
        IssuerOptions {
            order_timeout: Duration::from_secs(600),
            poll: PollPolicy::default(),
            lease_ttl: DEFAULT_LEASE_TTL,
            busy_retry: Duration::from_secs(60),
            clock_skew: Duration::from_secs(300),
            user_agent: None,
        }
    }
}
