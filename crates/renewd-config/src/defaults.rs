//! Every default and every bound, in one place. The validated [`Config`](crate::Config)
//! holds the resolved values; nothing downstream needs to know a default.

use std::time::Duration;

use renewd_core::{ChallengeType, KeyType};

use crate::model::LogFormat;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// The value an absent key takes.
#[derive(Debug)]
#[non_exhaustive]
pub struct Defaults;

impl Defaults {
    /// `state_dir`
    pub const STATE_DIR: &'static str = "/var/lib/renewd";
    /// `[daemon] workers`
    pub const WORKERS: usize = 4;
    /// `[daemon] shutdown_grace`
    pub const SHUTDOWN_GRACE: Duration = secs(30);
    /// `[daemon] log_format`
    pub const LOG_FORMAT: LogFormat = LogFormat::Auto;
    /// `[renewal] urgent_remaining`: below 16 % of the lifetime left (≈ 14 days of 90),
    /// any healthy CA in the certificate's list may be used.
    pub const URGENT_REMAINING: f64 = 0.16;
    /// `[renewal] critical_remaining`: below 7 % (≈ 6 days of 90), every CA, loud alerts.
    pub const CRITICAL_REMAINING: f64 = 0.07;
    /// `[renewal] max_backoff`
    pub const MAX_BACKOFF: Duration = secs(6 * HOUR);
    /// `[renewal] ari`
    pub const ARI: bool = true;
    /// `[breaker] failure_threshold`
    pub const FAILURE_THRESHOLD: u32 = 3;
    /// `[breaker] cooldown`
    pub const COOLDOWN: Duration = secs(MINUTE);
    /// `[breaker] max_cooldown`
    pub const MAX_COOLDOWN: Duration = secs(HOUR);
    /// `[breaker] probe_timeout`
    pub const PROBE_TIMEOUT: Duration = secs(5);
    /// `[breaker] probe_cache`
    pub const PROBE_CACHE: Duration = secs(30);
    /// `[ledger] max_age`
    pub const LEDGER_MAX_AGE: Duration = secs(90 * DAY);
    /// `[ledger] max_rows`
    pub const LEDGER_MAX_ROWS: u64 = 100_000;
    /// `[[ca]] max_concurrent_orders`
    pub const CA_MAX_CONCURRENT_ORDERS: usize = 4;
    /// `[[ca]] requests_per_second`
    pub const CA_REQUESTS_PER_SECOND: u32 = 20;
    /// `[[ca]] timeout`
    pub const CA_TIMEOUT: Duration = secs(30);
    /// `[[ca]] order_timeout`: how long one attempt at an order may take here, finalize
    /// recovery included, before it fails `ca_unavailable` (the order stays pending for
    /// the next attempt). The configured value is the limit, whatever its size.
    pub const CA_ORDER_TIMEOUT: Duration = secs(10 * MINUTE);
    /// `[[ca]] terms_agreed`
    pub const CA_TERMS_AGREED: bool = true;
    /// `[dns01] propagation_delay`
    pub const DNS_PROPAGATION_DELAY: Duration = secs(0);
    /// `[dns01] propagation_timeout`
    pub const DNS_PROPAGATION_TIMEOUT: Duration = secs(5 * MINUTE);
    /// `[hooks] timeout`: the limit for every hook, global or per certificate.
    pub const HOOK_TIMEOUT: Duration = secs(2 * MINUTE);
    /// `[[cert]] key`
    pub const KEY: KeyType = KeyType::EcdsaP256;
    /// `[[cert]] challenge`
    pub const CHALLENGE: ChallengeType = ChallengeType::Http01;
}

/// The accepted range of a duration key, inclusive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DurationBounds {
    pub(crate) min: Duration,
    pub(crate) max: Duration,
}

const fn between(min: Duration, max: Duration) -> DurationBounds {
    DurationBounds { min, max }
}

/// The accepted range of an integer key, inclusive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IntBounds {
    pub(crate) min: i64,
    pub(crate) max: i64,
}

const fn from_to(min: i64, max: i64) -> IntBounds {
    IntBounds { min, max }
}

/// Bounds: wide enough for any sane deployment, narrow enough to catch a slipped unit.
pub(crate) mod bounds {
    use super::*;

    pub(crate) const WORKERS: IntBounds = from_to(1, 256);
    pub(crate) const SHUTDOWN_GRACE: DurationBounds = between(secs(1), secs(HOUR));
    pub(crate) const MAX_BACKOFF: DurationBounds = between(secs(MINUTE), secs(7 * DAY));
    pub(crate) const FAILURE_THRESHOLD: IntBounds = from_to(1, 100);
    pub(crate) const COOLDOWN: DurationBounds = between(secs(1), secs(DAY));
    pub(crate) const MAX_COOLDOWN: DurationBounds = between(secs(1), secs(7 * DAY));
    pub(crate) const PROBE_TIMEOUT: DurationBounds =
        between(Duration::from_millis(100), secs(5 * MINUTE));
    pub(crate) const PROBE_CACHE: DurationBounds = between(secs(0), secs(HOUR));
    pub(crate) const LEDGER_MAX_AGE: DurationBounds = between(secs(HOUR), secs(3650 * DAY));
    pub(crate) const LEDGER_MAX_ROWS: IntBounds = from_to(100, 100_000_000);
    pub(crate) const CA_MAX_CONCURRENT_ORDERS: IntBounds = from_to(1, 64);
    pub(crate) const CA_REQUESTS_PER_SECOND: IntBounds = from_to(1, 1000);
    pub(crate) const CA_TIMEOUT: DurationBounds = between(secs(1), secs(10 * MINUTE));
    pub(crate) const CA_ORDER_TIMEOUT: DurationBounds = between(secs(1), secs(DAY));
    pub(crate) const DNS_PROPAGATION_DELAY: DurationBounds = between(secs(0), secs(HOUR));
    pub(crate) const DNS_PROPAGATION_TIMEOUT: DurationBounds = between(secs(1), secs(HOUR));
    pub(crate) const HOOK_TIMEOUT: DurationBounds = between(secs(1), secs(HOUR));
    pub(crate) const RENEW_BEFORE: DurationBounds = between(secs(HOUR), secs(365 * DAY));
    /// Let's Encrypt and ZeroSSL accept at most 100 names in one certificate.
    pub(crate) const MAX_DOMAINS: usize = 100;
}
