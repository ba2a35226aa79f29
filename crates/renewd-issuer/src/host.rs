//! The host side of a renewal — hooks and the served-certificate check — behind
//! [`HostActions`], so this crate runs no processes and opens no sockets of its own. The
//! binary implements it (with `renewd-local`); tests record the calls.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use renewd_acme::{BoxError, BoxFuture};
use renewd_config::{CertConfig, Command};
use renewd_core::{CaName, CertName, DomainName, FailureClass, Urgency};

/// A certificate was installed: run its deploy hooks.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// The certificate.
    pub cert: CertName,
    /// Its names.
    pub domains: Vec<DomainName>,
    /// The CA that issued it.
    pub ca: CaName,
    /// The new serial, lower-case hex.
    pub serial: String,
    /// The new notAfter.
    pub not_after: DateTime<Utc>,
    /// `STATE/certs/NAME/live`.
    pub live_dir: PathBuf,
    /// The certificate's config, as the job saw it.
    pub config: CertConfig,
    /// The hooks to run, in order: the certificate's `deploy_hook`, then `[hooks] deploy`.
    pub hooks: Vec<Command>,
    /// The limit of each hook run.
    pub timeout: Duration,
}

/// A renewal failed (first failure of a streak, or the urgency rose): run the failure hooks.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureNotice {
    /// The certificate.
    pub cert: CertName,
    /// Its names.
    pub domains: Vec<DomainName>,
    /// The CA of the failure that decided the outcome, when one was involved.
    pub ca: Option<CaName>,
    /// The failure's class.
    pub class: FailureClass,
    /// The job's urgency.
    pub urgency: Urgency,
    /// One line.
    pub message: String,
    /// Failed attempts in a row, this one included.
    pub failure_streak: u32,
    /// The installed certificate's notAfter, when one is installed.
    pub not_after: Option<DateTime<Utc>>,
    /// The certificate's config, as the job saw it.
    pub config: CertConfig,
    /// The hooks to run, in order: the certificate's `failure_hook`, then `[hooks] failure`.
    pub hooks: Vec<Command>,
    /// The limit of each hook run.
    pub timeout: Duration,
}

/// After deploy: each address must present the new certificate for `server_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedCheck {
    /// The certificate.
    pub cert: CertName,
    /// The SNI to send (the certificate's first name).
    pub server_name: DomainName,
    /// Where to connect.
    pub addrs: Vec<SocketAddr>,
    /// The serial expected, lower-case hex.
    pub serial: String,
}

/// What the issuer asks of the host. Errors are reported (ledger, log, event) and never
/// undo an install.
pub trait HostActions: Send + Sync + fmt::Debug {
    /// Runs the deploy hooks of a freshly installed certificate (`deployment.hooks` may be
    /// empty).
    fn deploy<'a>(&'a self, deployment: &'a Deployment) -> BoxFuture<'a, Result<(), BoxError>>;

    /// Runs the failure hooks (`notice.hooks` may be empty).
    fn failure<'a>(&'a self, notice: &'a FailureNotice) -> BoxFuture<'a, Result<(), BoxError>>;

    /// Checks that every address serves the new certificate; an error names the mismatch.
    fn verify_served<'a>(&'a self, check: &'a ServedCheck) -> BoxFuture<'a, Result<(), BoxError>>;
}

/// Host actions that do nothing: for tools that only issue.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHostActions;

impl HostActions for NoHostActions {
    fn deploy<'a>(&'a self, _: &'a Deployment) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async { Ok(()) })
    }

    fn failure<'a>(&'a self, _: &'a FailureNotice) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async { Ok(()) })
    }

    fn verify_served<'a>(&'a self, _: &'a ServedCheck) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async { Ok(()) })
    }
}
