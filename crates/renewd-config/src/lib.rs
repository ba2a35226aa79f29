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
//! Secrets (EAB MAC keys) are read as the caller's [`SecretsMode`] says: the daemon needs
//! every one; `renewd check` outside `renewd.service` cannot read a systemd credential and
//! gets a warning for it instead ([`LoadedConfig::warnings`]); `status`, `ledger` and `ca`
//! read none.
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
pub use env::{LoadEnv, SecretsMode};
pub use error::{ConfigError, ConfigErrors, LoadError};
pub use model::{
    BreakerPolicy, CaConfig, CertConfig, Config, CopyOut, DaemonConfig, Dns01Config, Eab,
    GlobalHooks, Http01Config, LedgerLimits, LoadedConfig, LogFormat, MetricsConfig, RenewalPolicy,
    SecretSource, TlsAlpn01Config, TrustRoot,
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
        Config::from_str_with_warnings(text, path, env).map(|loaded| loaded.config)
    }

    /// [`Config::from_str`], also returning the warnings: what the load could not vouch
    /// for (a credential it did not read under [`SecretsMode::DeferCredentials`]).
    pub fn from_str_with_warnings(
        text: &str,
        path: &Path,
        env: &LoadEnv,
    ) -> Result<LoadedConfig, ConfigErrors> {
        let mut problems = Problems::default();
        let config = parse::parse_raw(text, &mut problems)
            .and_then(|raw| validate::validate(&raw, text, env, &mut problems));
        match config {
            Some(config) if problems.is_empty() => Ok(LoadedConfig {
                config,
                warnings: problems.take_warnings(path, text),
            }),
            _ => Err(problems.into_errors(path, text)),
        }
    }

    /// Reads, parses and validates the file at `path`, with the process environment; every
    /// secret is read ([`SecretsMode::Required`]). What `renewd run` loads, at start and on
    /// reload.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        Config::load_with(path, &LoadEnv::from_process()).map(|loaded| loaded.config)
    }

    /// Reads, parses and validates the file at `path` with `env` (commands that need fewer
    /// secrets than the daemon pass their [`SecretsMode`]).
    pub fn load_with(path: &Path, env: &LoadEnv) -> Result<LoadedConfig, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_str_with_warnings(&text, path, env).map_err(LoadError::Invalid)
    }

    /// What changed from `self` (the running config) to `new`.
    pub fn diff(&self, new: &Config) -> ConfigDiff {
        ConfigDiff::between(self, new)
    }
}
