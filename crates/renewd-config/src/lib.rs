//! renewd's configuration: the TOML file → a validated [`Config`].
//!
//! # Design overview
//!
//! The config is read in two stages, so the rest of the program never sees an unchecked
//! value and the operator sees every problem at once:
//!
//! 1. [`RawConfig`]: serde types with `deny_unknown_fields`, the file exactly as written,
//!    every value wrapped in [`toml::Spanned`]. Every key is optional at this stage; a file
//!    with syntax errors, unknown keys or wrong types stops here, with *all* such errors
//!    (each key is deserialized on its own when the whole fails).
//! 2. [`Config`]: typed values ([`CaName`](renewd_core::CaName),
//!    [`DomainName`](renewd_core::DomainName), [`Duration`](std::time::Duration),
//!    [`SocketAddr`](std::net::SocketAddr), [`Command`], …), defaults resolved from
//!    [`Defaults`], cross-references checked (a certificate's CAs exist, its challenge has
//!    a section), and the files the config names read: EAB MAC keys into [`Secret`]s
//!    (refusing group/other-accessible files), trust roots parsed as PEM.
//!
//! Every problem becomes a [`ConfigError`] (`PATH:LINE:COL: message`, column counted in
//! characters) pointing at the offending key or value; [`ConfigErrors`] holds them all, in
//! file order. `renewd check` prints them and exits 78.
//!
//! Files named by the config are read during validation, not later: `renewd check` then
//! vouches for them, and a reload (SIGHUP) with a missing key file keeps the old config.
//! Tests and tools that want to validate a config for another machine substitute paths
//! (see `tests/config/examples.rs`, which roots the example configs' `/etc/renewd/` in a temp
//! directory) rather than skipping the checks.
//!
//! The environment (`$CREDENTIALS_DIRECTORY`) comes in through [`LoadEnv`], so tests never
//! mutate the process environment. [`ConfigDiff`] names what a reload changed.
//!
//! Place in the flow: the binary calls [`Config::load`]; the scheduler, issuer and daemon
//! take their parts of the resulting [`Config`].

// Tests may unwrap: a panic there is a failed test, which is the point.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod command;
mod defaults;
mod diff;
mod duration;
mod env;
mod error;
mod model;
mod parse;
mod raw;
mod secret;
mod validate;

use std::path::Path;

pub use command::Command;
pub use defaults::Defaults;
pub use diff::ConfigDiff;
pub use duration::{RawDuration, format_duration, parse_duration};
pub use env::LoadEnv;
pub use error::{ConfigError, ConfigErrors, LoadError};
pub use model::{
    BreakerPolicy, CaConfig, CertConfig, Config, CopyOut, DaemonConfig, Dns01Config, Eab,
    GlobalHooks, Http01Config, LedgerLimits, LogFormat, MetricsConfig, RenewalPolicy, SecretSource,
    TlsAlpn01Config, TrustRoot,
};
pub use raw::{
    Field, RawBreaker, RawCa, RawCert, RawConfig, RawDaemon, RawDns01, RawHooks, RawHttp01,
    RawLedger, RawMetrics, RawMode, RawRenewal, RawTlsAlpn01, StringList,
};
pub use secret::Secret;

use error::Problems;

impl RawConfig {
    /// Parses `text` without validating it. `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<RawConfig, ConfigErrors> {
        let mut problems = Problems::default();
        parse::parse_raw(text, &mut problems).ok_or_else(|| problems.into_errors(path, text))
    }
}

impl Config {
    /// Parses and validates `text`, reading the files it names. `path` is only used in
    /// error messages; `env` supplies `$CREDENTIALS_DIRECTORY`.
    pub fn from_str(text: &str, path: &Path, env: &LoadEnv) -> Result<Config, ConfigErrors> {
        let mut problems = Problems::default();
        let config = parse::parse_raw(text, &mut problems)
            .and_then(|raw| validate::validate(&raw, text, env, &mut problems));
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(problems.into_errors(path, text)),
        }
    }

    /// Reads, parses and validates the file at `path`, with the process environment.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_str(&text, path, &LoadEnv::from_process()).map_err(LoadError::Invalid)
    }

    /// What changed from `self` (the running config) to `new`.
    pub fn diff(&self, new: &Config) -> ConfigDiff {
        ConfigDiff::between(self, new)
    }
}
