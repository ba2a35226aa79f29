//! The deploy and failure hooks: a certificate's own hook and the global one, with the
//! event's `RENEWD_*` environment. When to run them (after which install, once per
//! failure streak) is the issuer's policy; this is the runner and the environment.

use std::path::PathBuf;

use chrono::{DateTime, SecondsFormat, Utc};
use renewd_config::{CertConfig, Command, GlobalHooks};
use renewd_core::{CaName, CertName, DomainName, FailureClass, Urgency};

use crate::env::one_line;
use crate::error::Error;
use crate::process::{HookOutcome, HookRunner};

/// The longest `RENEWD_ERROR` passed to a failure hook, in characters.
const MAX_ERROR_CHARS: usize = 1000;

/// A certificate that was just installed: what its deploy hooks are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    /// `RENEWD_CERT_NAME`
    pub cert: CertName,
    /// `RENEWD_DOMAINS`, space-separated.
    pub domains: Vec<DomainName>,
    /// `RENEWD_CA`: the CA that issued it.
    pub ca: CaName,
    /// `RENEWD_SERIAL`: the serial number in lower-case hex.
    pub serial: String,
    /// `RENEWD_NOT_AFTER`, RFC 3339 UTC.
    pub not_after: DateTime<Utc>,
    /// `RENEWD_LIVE_DIR`: the absolute path of `STATE/certs/NAME/live`; the four
    /// `RENEWD_*_PATH` variables name the files in it.
    pub live_dir: PathBuf,
}

impl Deployed {
    /// The hook environment: `RENEWD_CERT_NAME`, `RENEWD_DOMAINS`, `RENEWD_CA`,
    /// `RENEWD_SERIAL`, `RENEWD_NOT_AFTER`, `RENEWD_LIVE_DIR`, `RENEWD_CERT_PATH`,
    /// `RENEWD_KEY_PATH`, `RENEWD_FULLCHAIN_PATH`, `RENEWD_CHAIN_PATH`.
    pub fn hook_env(&self) -> Vec<(&'static str, String)> {
        let file = |name: &str| self.live_dir.join(name).display().to_string();
        vec![
            ("RENEWD_CERT_NAME", self.cert.to_string()),
            ("RENEWD_DOMAINS", join_domains(&self.domains)),
            ("RENEWD_CA", self.ca.to_string()),
            ("RENEWD_SERIAL", self.serial.to_ascii_lowercase()),
            ("RENEWD_NOT_AFTER", rfc3339(self.not_after)),
            ("RENEWD_LIVE_DIR", self.live_dir.display().to_string()),
            ("RENEWD_CERT_PATH", file("cert.pem")),
            ("RENEWD_KEY_PATH", file("privkey.pem")),
            ("RENEWD_FULLCHAIN_PATH", file("fullchain.pem")),
            ("RENEWD_CHAIN_PATH", file("chain.pem")),
        ]
    }
}

/// A failed renewal: what its failure hooks are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureNotice {
    /// `RENEWD_CERT_NAME`
    pub cert: CertName,
    /// `RENEWD_DOMAINS`, space-separated.
    pub domains: Vec<DomainName>,
    /// `RENEWD_URGENCY`: `normal`, `urgent` or `critical`.
    pub urgency: Urgency,
    /// `RENEWD_ERROR`: the error, flattened to one line (at most 1000 characters).
    pub error: String,
    /// `RENEWD_ERROR_CLASS`: `ca_unavailable`, `rate_limited`, `bad_nonce`, `rejected` or
    /// `local`.
    pub class: FailureClass,
    /// `RENEWD_NOT_AFTER`: the installed certificate's expiry (RFC 3339 UTC), or empty when
    /// none is installed.
    pub not_after: Option<DateTime<Utc>>,
    /// `RENEWD_FAILURES`: the number of consecutive failed attempts, this one included.
    pub failures: u32,
}

impl FailureNotice {
    /// The hook environment: `RENEWD_CERT_NAME`, `RENEWD_DOMAINS`, `RENEWD_URGENCY`,
    /// `RENEWD_ERROR`, `RENEWD_ERROR_CLASS`, `RENEWD_NOT_AFTER`, `RENEWD_FAILURES`.
    pub fn hook_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("RENEWD_CERT_NAME", self.cert.to_string()),
            ("RENEWD_DOMAINS", join_domains(&self.domains)),
            ("RENEWD_URGENCY", self.urgency.to_string()),
            ("RENEWD_ERROR", one_line(&self.error, MAX_ERROR_CHARS)),
            ("RENEWD_ERROR_CLASS", self.class.to_string()),
            (
                "RENEWD_NOT_AFTER",
                self.not_after.map(rfc3339).unwrap_or_default(),
            ),
            ("RENEWD_FAILURES", self.failures.to_string()),
        ]
    }
}

/// The deploy and failure hooks of the configuration, with one [`HookRunner`].
#[derive(Debug, Clone)]
pub struct Hooks {
    runner: HookRunner,
    deploy: Option<Command>,
    failure: Option<Command>,
}

impl Hooks {
    /// The global hooks of `[hooks]`, run with its `timeout` and this process's inherited
    /// environment.
    pub fn new(global: &GlobalHooks) -> Hooks {
        Hooks::with_runner(global, HookRunner::new(global.timeout))
    }

    /// The global hooks of `[hooks]`, run by `runner`.
    pub fn with_runner(global: &GlobalHooks, runner: HookRunner) -> Hooks {
        Hooks {
            runner,
            deploy: global.deploy.clone(),
            failure: global.failure.clone(),
        }
    }

    /// The runner (for the dns-01 hooks, which share the time limit).
    pub fn runner(&self) -> &HookRunner {
        &self.runner
    }

    /// Runs `cert`'s `deploy_hook`, then the global `[hooks] deploy`, each whether or not the
    /// other failed. One entry per configured hook, in that order; each `Err` (could not
    /// start, non-zero exit, killed at the time limit) is class `Local`.
    pub async fn deploy(
        &self,
        cert: &CertConfig,
        deployed: &Deployed,
    ) -> Vec<Result<HookOutcome, Error>> {
        let env = deployed.hook_env();
        self.run_both(cert.deploy_hook.as_ref(), self.deploy.as_ref(), &env)
            .await
    }

    /// Runs `cert`'s `failure_hook`, then the global `[hooks] failure`, like
    /// [`Hooks::deploy`].
    pub async fn failure(
        &self,
        cert: &CertConfig,
        notice: &FailureNotice,
    ) -> Vec<Result<HookOutcome, Error>> {
        let env = notice.hook_env();
        self.run_both(cert.failure_hook.as_ref(), self.failure.as_ref(), &env)
            .await
    }

    async fn run_both(
        &self,
        own: Option<&Command>,
        global: Option<&Command>,
        env: &[(&str, String)],
    ) -> Vec<Result<HookOutcome, Error>> {
        let mut results = Vec::new();
        for command in own.into_iter().chain(global) {
            let result = match self.runner.run(command, env).await {
                Ok(outcome) => outcome.into_result(),
                Err(e) => Err(e),
            };
            match &result {
                Ok(o) => tracing::info!(hook = %command, duration = ?o.duration, "hook succeeded"),
                Err(e) => tracing::warn!(hook = %command, error = %e, "hook failed"),
            }
            results.push(result);
        }
        results
    }
}

fn join_domains(domains: &[DomainName]) -> String {
    domains
        .iter()
        .map(DomainName::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
