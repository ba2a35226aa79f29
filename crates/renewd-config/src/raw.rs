//! The config file as the operator wrote it: serde types with `deny_unknown_fields`, every
//! value wrapped in [`Spanned`] so a later check can point at it.
//!
//! Every key is optional here, even the ones a valid config needs: "missing" is decided by
//! validation, which can then report it together with every other problem, in words that
//! say what to add. Serde only rejects what cannot be read at all (unknown keys, wrong
//! types).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

use crate::duration::RawDuration;

/// An optional key, with the span of its value when present.
pub type Field<T> = Option<Spanned<T>>;

/// A list of strings, each with its own span.
pub type StringList = Vec<Spanned<String>>;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a renewd configuration table")]
pub struct RawConfig {
    /// `state_dir`
    pub state_dir: Field<String>,
    /// `[daemon]`
    pub daemon: Field<RawDaemon>,
    /// `[renewal]`
    pub renewal: Field<RawRenewal>,
    /// `[breaker]`
    pub breaker: Field<RawBreaker>,
    /// `[ledger]`
    pub ledger: Field<RawLedger>,
    /// `[[ca]]`
    #[serde(default)]
    pub ca: Vec<Spanned<RawCa>>,
    /// `[http01]`
    pub http01: Field<RawHttp01>,
    /// `[dns01]`
    pub dns01: Field<RawDns01>,
    /// `[tls_alpn01]`
    pub tls_alpn01: Field<RawTlsAlpn01>,
    /// `[hooks]`
    pub hooks: Field<RawHooks>,
    /// `[metrics]`
    pub metrics: Field<RawMetrics>,
    /// `[[cert]]`
    #[serde(default)]
    pub cert: Vec<Spanned<RawCert>>,
}

/// `[daemon]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [daemon] table")]
pub struct RawDaemon {
    /// `workers`
    pub workers: Field<i64>,
    /// `shutdown_grace`
    pub shutdown_grace: Field<RawDuration>,
    /// `log_format`
    pub log_format: Field<String>,
}

/// `[renewal]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [renewal] table")]
pub struct RawRenewal {
    /// `urgent_remaining`
    pub urgent_remaining: Field<f64>,
    /// `critical_remaining`
    pub critical_remaining: Field<f64>,
    /// `max_backoff`
    pub max_backoff: Field<RawDuration>,
    /// `ari`
    pub ari: Field<bool>,
}

/// `[breaker]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [breaker] table")]
pub struct RawBreaker {
    /// `failure_threshold`
    pub failure_threshold: Field<i64>,
    /// `cooldown`
    pub cooldown: Field<RawDuration>,
    /// `max_cooldown`
    pub max_cooldown: Field<RawDuration>,
    /// `probe_timeout`
    pub probe_timeout: Field<RawDuration>,
    /// `probe_cache`
    pub probe_cache: Field<RawDuration>,
}

/// `[ledger]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [ledger] table")]
pub struct RawLedger {
    /// `max_age`
    pub max_age: Field<RawDuration>,
    /// `max_rows`
    pub max_rows: Field<i64>,
}

/// One `[[ca]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[ca]] table")]
pub struct RawCa {
    /// `name`
    pub name: Field<String>,
    /// `directory`
    pub directory: Field<String>,
    /// `contact`
    pub contact: Field<StringList>,
    /// `trust_roots`
    pub trust_roots: Field<StringList>,
    /// `eab_kid`
    pub eab_kid: Field<String>,
    /// `eab_hmac_key_file`
    pub eab_hmac_key_file: Field<String>,
    /// `eab_hmac_key_credential`
    pub eab_hmac_key_credential: Field<String>,
    /// `profile`
    pub profile: Field<String>,
    /// `preferred_chain`
    pub preferred_chain: Field<String>,
    /// `max_concurrent_orders`
    pub max_concurrent_orders: Field<i64>,
    /// `requests_per_second`
    pub requests_per_second: Field<i64>,
    /// `timeout`
    pub timeout: Field<RawDuration>,
    /// `order_timeout`
    pub order_timeout: Field<RawDuration>,
    /// `terms_agreed`
    pub terms_agreed: Field<bool>,
}

/// `[http01]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [http01] table")]
pub struct RawHttp01 {
    /// `listen`
    pub listen: Field<StringList>,
    /// `webroot`
    pub webroot: Field<String>,
}

/// `[dns01]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [dns01] table")]
pub struct RawDns01 {
    /// `add_hook`
    pub add_hook: Field<StringList>,
    /// `remove_hook`
    pub remove_hook: Field<StringList>,
    /// `propagation_delay`
    pub propagation_delay: Field<RawDuration>,
    /// `propagation_check`
    pub propagation_check: Field<StringList>,
    /// `propagation_timeout`
    pub propagation_timeout: Field<RawDuration>,
}

/// `[tls_alpn01]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [tls_alpn01] table")]
pub struct RawTlsAlpn01 {
    /// `listen`
    pub listen: Field<StringList>,
}

/// `[hooks]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [hooks] table")]
pub struct RawHooks {
    /// `deploy`
    pub deploy: Field<StringList>,
    /// `failure`
    pub failure: Field<StringList>,
    /// `timeout`
    pub timeout: Field<RawDuration>,
}

/// `[metrics]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [metrics] table")]
pub struct RawMetrics {
    /// `listen`
    pub listen: Field<String>,
}

/// One `[[cert]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[cert]] table")]
pub struct RawCert {
    /// `name`
    pub name: Field<String>,
    /// `domains`
    pub domains: Field<StringList>,
    /// `cas`
    pub cas: Field<StringList>,
    /// `key`
    pub key: Field<String>,
    /// `challenge`
    pub challenge: Field<String>,
    /// `deploy_hook`
    pub deploy_hook: Field<StringList>,
    /// `failure_hook`
    pub failure_hook: Field<StringList>,
    /// `renew_before`
    pub renew_before: Field<RawDuration>,
    /// `profile`
    pub profile: Field<String>,
    /// `preferred_chain`
    pub preferred_chain: Field<String>,
    /// `cert_path`
    pub cert_path: Field<String>,
    /// `key_path`
    pub key_path: Field<String>,
    /// `fullchain_path`
    pub fullchain_path: Field<String>,
    /// `chain_path`
    pub chain_path: Field<String>,
    /// `owner`
    pub owner: Field<String>,
    /// `group`
    pub group: Field<String>,
    /// `mode`
    pub mode: Field<RawMode>,
    /// `verify_served`
    pub verify_served: Field<StringList>,
}

/// A file mode as written: it must be a string (`"0640"`), because TOML refuses `0640` and
/// reads `640` as decimal. The integer forms get a message that says how to write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMode(pub String);

impl<'de> Deserialize<'de> for RawMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawMode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"an octal mode in quotes, such as "0640""#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawMode, E> {
                Ok(RawMode(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawMode, E> {
                Err(E::custom(format!(
                    r#"mode must be a quoted octal string: write mode = "0{v}", not mode = {v}"#
                )))
            }
        }
        d.deserialize_any(V)
    }
}
