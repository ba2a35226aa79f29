//! The validated configuration: typed values with defaults resolved. This is what the
//! daemon, the scheduler and the issuer see.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use renewd_core::{CaName, CertName, ChallengeType, DomainName, KeyType};
use rustls_pki_types::CertificateDer;

use crate::command::Command;
use crate::defaults::Defaults;
use crate::secret::Secret;

/// A whole validated config. Build it with [`Config::from_str`] or [`Config::load`].
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `state_dir`: the SQLite store, accounts and the certificate archive. Absolute.
    pub state_dir: PathBuf,
    /// `[daemon]`
    pub daemon: DaemonConfig,
    /// `[renewal]`
    pub renewal: RenewalPolicy,
    /// `[breaker]`
    pub breaker: BreakerPolicy,
    /// `[ledger]`
    pub ledger: LedgerLimits,
    /// Every `[[ca]]`, in file order; names are unique.
    pub cas: Vec<CaConfig>,
    /// `[http01]`, if present.
    pub http01: Option<Http01Config>,
    /// `[dns01]`, if present.
    pub dns01: Option<Dns01Config>,
    /// `[tls_alpn01]`, if present.
    pub tls_alpn01: Option<TlsAlpn01Config>,
    /// `[hooks]`: global hooks and the timeout of every hook.
    pub hooks: GlobalHooks,
    /// `[metrics]`, if present.
    pub metrics: Option<MetricsConfig>,
    /// Every `[[cert]]`, in file order; names are unique and every CA they name exists.
    pub certs: Vec<CertConfig>,
}

/// A config that loaded, and what the load could not vouch for.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The validated config.
    pub config: Config,
    /// Not errors: what was valid as far as it could be checked here but was not read,
    /// such as a systemd credential outside `renewd.service`. `PATH:LINE:COL` points at
    /// the key; the message does not start with "warning:".
    pub warnings: Vec<crate::ConfigError>,
}

impl Config {
    /// The CA called `name`.
    pub fn ca(&self, name: &CaName) -> Option<&CaConfig> {
        self.cas.iter().find(|c| &c.name == name)
    }

    /// The certificate called `name`.
    pub fn cert(&self, name: &CertName) -> Option<&CertConfig> {
        self.certs.iter().find(|c| &c.name == name)
    }

    /// The CAs of `cert`, in its order of preference. Validation guarantees each exists.
    pub fn cas_of<'a>(&'a self, cert: &'a CertConfig) -> impl Iterator<Item = &'a CaConfig> {
        cert.cas.iter().filter_map(|n| self.ca(n))
    }
}

/// `[daemon]`
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonConfig {
    /// Size of the issuance worker pool, 1..=256.
    pub workers: usize,
    /// On SIGTERM, in-flight orders reach a persisted point within this.
    pub shutdown_grace: Duration,
    /// Where and how logs are written.
    pub log_format: LogFormat,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            workers: Defaults::WORKERS,
            shutdown_grace: Defaults::SHUTDOWN_GRACE,
            log_format: Defaults::LOG_FORMAT,
        }
    }
}

/// `[daemon] log_format`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogFormat {
    /// journald when `$JOURNAL_STREAM` matches stderr, else human-readable.
    Auto,
    /// Structured journald entries.
    Journald,
    /// Human-readable lines on stderr.
    Human,
    /// One JSON object per line on stderr.
    Json,
}

impl LogFormat {
    /// Every format, in the config spelling.
    pub const ALL: &'static [LogFormat] = &[
        LogFormat::Auto,
        LogFormat::Journald,
        LogFormat::Human,
        LogFormat::Json,
    ];

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Auto => "auto",
            LogFormat::Journald => "journald",
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[renewal]`: scheduling policy. Thresholds are fractions of a certificate's lifetime.
#[derive(Debug, Clone, PartialEq)]
pub struct RenewalPolicy {
    /// Below this fraction of the lifetime remaining, urgency is `urgent`. In (0, 1).
    pub urgent_remaining: f64,
    /// Below this, urgency is `critical`. In (0, `urgent_remaining`).
    pub critical_remaining: f64,
    /// The longest back-off between attempts for one certificate.
    pub max_backoff: Duration,
    /// Use ARI (RFC 9773) when the CA offers it.
    pub ari: bool,
}

impl Default for RenewalPolicy {
    fn default() -> Self {
        Self {
            urgent_remaining: Defaults::URGENT_REMAINING,
            critical_remaining: Defaults::CRITICAL_REMAINING,
            max_backoff: Defaults::MAX_BACKOFF,
            ari: Defaults::ARI,
        }
    }
}

/// `[breaker]`: the per-CA circuit breaker and health probe.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerPolicy {
    /// Consecutive `ca_unavailable` outcomes that open the circuit.
    pub failure_threshold: u32,
    /// The first open period; it doubles on each re-open up to `max_cooldown`.
    pub cooldown: Duration,
    /// The longest open period (≥ `cooldown`).
    pub max_cooldown: Duration,
    /// The time limit of one health probe (directory + newNonce).
    pub probe_timeout: Duration,
    /// How long a good probe is trusted.
    pub probe_cache: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            failure_threshold: Defaults::FAILURE_THRESHOLD,
            cooldown: Defaults::COOLDOWN,
            max_cooldown: Defaults::MAX_COOLDOWN,
            probe_timeout: Defaults::PROBE_TIMEOUT,
            probe_cache: Defaults::PROBE_CACHE,
        }
    }
}

/// `[ledger]`: pruning limits of the failure ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerLimits {
    /// Rows older than this are pruned.
    pub max_age: Duration,
    /// At most this many rows are kept (oldest pruned first).
    pub max_rows: u64,
}

impl Default for LedgerLimits {
    fn default() -> Self {
        Self {
            max_age: Defaults::LEDGER_MAX_AGE,
            max_rows: Defaults::LEDGER_MAX_ROWS,
        }
    }
}

/// One `[[ca]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CaConfig {
    /// `name`
    pub name: CaName,
    /// The ACME directory URL: https, or http for a loopback host.
    pub directory: http::Uri,
    /// Account contact URIs, each `mailto:`.
    pub contact: Vec<String>,
    /// Extra roots trusted for this CA's HTTPS endpoint, read and parsed at load time.
    pub trust_roots: Vec<TrustRoot>,
    /// External account binding, when the CA requires it.
    pub eab: Option<Eab>,
    /// Default ACME profile for orders at this CA.
    pub profile: Option<String>,
    /// Issuer common name to prefer among alternate chains.
    pub preferred_chain: Option<String>,
    /// How many orders may be in flight at this CA at once.
    pub max_concurrent_orders: usize,
    /// Request rate limit towards this CA.
    pub requests_per_second: u32,
    /// Time limit for one whole request (connect, send, receive the body).
    pub timeout: Duration,
    /// Time limit for one order here once it exists (authorizations, finalize with its
    /// recovery, download); when it passes the attempt fails `ca_unavailable`, the order
    /// stays pending, and an urgent job fails over.
    pub order_timeout: Duration,
    /// Whether the operator agrees to the CA's terms of service (sent at newAccount).
    pub terms_agreed: bool,
}

/// One `trust_roots` file: its path (for messages) and the certificates in it (≥ 1).
#[derive(Clone, PartialEq)]
pub struct TrustRoot {
    /// The PEM file.
    pub path: PathBuf,
    /// Every `CERTIFICATE` in it, DER-encoded.
    pub certs: Vec<CertificateDer<'static>>,
}

/// Path and count only: a config logged with `{:?}` should not carry kilobytes of DER.
impl fmt::Debug for TrustRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustRoot")
            .field("path", &self.path)
            .field("certs", &self.certs.len())
            .finish()
    }
}

/// External account binding (RFC 8555 §7.3.4).
#[derive(Debug, Clone, PartialEq)]
pub struct Eab {
    /// The key identifier the CA gave.
    pub kid: String,
    /// The decoded MAC key (HMAC-SHA256). `None` only when the load was told not to read
    /// it ([`SecretsMode`](crate::SecretsMode) other than `Required`): commands that never
    /// create an account, or a credential outside `renewd.service`.
    pub hmac_key: Option<Secret>,
    /// Where the key came from (safe to log).
    pub source: SecretSource,
}

/// Where a secret was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `eab_hmac_key_file`
    File(PathBuf),
    /// `eab_hmac_key_credential`: the name, and the resolved path under
    /// `$CREDENTIALS_DIRECTORY`.
    Credential {
        /// The credential's name.
        name: String,
        /// Where it is read; `None` when `$CREDENTIALS_DIRECTORY` was unset (outside
        /// `renewd.service`, with [`SecretsMode`](crate::SecretsMode) other than `Required`).
        path: Option<PathBuf>,
    },
}

/// `[http01]`: how http-01 challenges are answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Http01Config {
    /// renewd answers itself on these addresses.
    Standalone {
        /// Addresses to listen on (≥ 1).
        listen: Vec<SocketAddr>,
    },
    /// renewd writes `.well-known/acme-challenge/TOKEN` under this directory, which a web
    /// server already serves.
    Webroot {
        /// The document root (absolute).
        path: PathBuf,
    },
}

/// `[dns01]`: hooks that publish and remove `_acme-challenge` TXT records. Each hook gets
/// `RENEWD_DNS_NAME`, `RENEWD_DNS_VALUE` and `RENEWD_DOMAIN` in its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Dns01Config {
    /// Publishes the record.
    pub add_hook: Command,
    /// Removes it afterwards.
    pub remove_hook: Option<Command>,
    /// Wait this long after `add_hook` before asking the CA to validate.
    pub propagation_delay: Duration,
    /// Run until it exits 0 (or `propagation_timeout` passes) before validation.
    pub propagation_check: Option<Command>,
    /// The limit for `propagation_check`.
    pub propagation_timeout: Duration,
}

/// `[tls_alpn01]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsAlpn01Config {
    /// Addresses to answer `acme-tls/1` on (≥ 1).
    pub listen: Vec<SocketAddr>,
}

/// `[hooks]`: run for every certificate, in addition to its own hooks.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalHooks {
    /// After any certificate is installed.
    pub deploy: Option<Command>,
    /// After any renewal fails.
    pub failure: Option<Command>,
    /// The time limit of every hook run (global or per certificate).
    pub timeout: Duration,
}

impl Default for GlobalHooks {
    fn default() -> Self {
        Self {
            deploy: None,
            failure: None,
            timeout: Defaults::HOOK_TIMEOUT,
        }
    }
}

/// `[metrics]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Where the Prometheus endpoint listens.
    pub listen: SocketAddr,
}

/// One `[[cert]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CertConfig {
    /// `name`
    pub name: CertName,
    /// The names in the certificate (≥ 1, no duplicates); the first is the SNI for
    /// `verify_served`.
    pub domains: Vec<DomainName>,
    /// CAs in order of preference (≥ 1, no duplicates, each configured).
    pub cas: Vec<CaName>,
    /// Private key type.
    pub key: KeyType,
    /// Challenge type; its section is guaranteed present.
    pub challenge: ChallengeType,
    /// Run after this certificate is installed.
    pub deploy_hook: Option<Command>,
    /// Run after a renewal of this certificate fails.
    pub failure_hook: Option<Command>,
    /// Renew this long before expiry, overriding the computed due time.
    pub renew_before: Option<Duration>,
    /// ACME profile, overriding the CA's.
    pub profile: Option<String>,
    /// Preferred chain, overriding the CA's.
    pub preferred_chain: Option<String>,
    /// Extra copies of the files for software that wants fixed paths.
    pub copy_out: CopyOut,
    /// After deploy, connect to each with SNI = the first domain and expect the new serial.
    pub verify_served: Vec<SocketAddr>,
}

impl CertConfig {
    /// The profile to request at `ca`: the certificate's own, else the CA's.
    pub fn profile_at<'a>(&'a self, ca: &'a CaConfig) -> Option<&'a str> {
        self.profile.as_deref().or(ca.profile.as_deref())
    }

    /// The preferred chain at `ca`: the certificate's own, else the CA's.
    pub fn preferred_chain_at<'a>(&'a self, ca: &'a CaConfig) -> Option<&'a str> {
        self.preferred_chain
            .as_deref()
            .or(ca.preferred_chain.as_deref())
    }
}

/// Copy-out paths and their ownership. All paths absolute and distinct.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyOut {
    /// The leaf certificate.
    pub cert_path: Option<PathBuf>,
    /// The private key.
    pub key_path: Option<PathBuf>,
    /// Leaf plus intermediates.
    pub fullchain_path: Option<PathBuf>,
    /// Intermediates only.
    pub chain_path: Option<PathBuf>,
    /// Owner (user name or numeric uid) of the copies.
    pub owner: Option<String>,
    /// Group (name or numeric gid) of the copies.
    pub group: Option<String>,
    /// Permission bits of the copies (at most 0o777; never other-readable when `key_path`
    /// is set). `None`: the store's defaults (0600 for the key, 0644 otherwise).
    pub mode: Option<u32>,
}

impl CopyOut {
    /// Whether any copy is configured.
    pub fn is_empty(&self) -> bool {
        self.cert_path.is_none()
            && self.key_path.is_none()
            && self.fullchain_path.is_none()
            && self.chain_path.is_none()
    }
}
