//! What the issuer tells the rest of the daemon: [`IssuerEvent`]s on a broadcast channel,
//! for logs, metrics and the scheduler. The store stays the source of truth; events say
//! *that* something changed, so listeners need not poll.

use chrono::{DateTime, Utc};
use renewd_core::{CaName, CertName, FailureClass, Urgency};
use renewd_store::CircuitState;
use tokio::sync::broadcast;

use crate::pool::JobResult;

/// Where the issuer sends its events. Sending never blocks: a listener that falls behind
/// loses the oldest events (and can re-read the store).
pub type EventSender = broadcast::Sender<IssuerEvent>;

/// Which host action failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HookKind {
    /// The deploy hooks after an install.
    Deploy,
    /// The failure hooks after a failed renewal.
    Failure,
    /// The check that the servers present the new certificate.
    VerifyServed,
}

impl HookKind {
    /// The label used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::Deploy => "deploy",
            HookKind::Failure => "failure",
            HookKind::VerifyServed => "verify_served",
        }
    }
}

/// Something the daemon should know about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum IssuerEvent {
    /// A CA's circuit breaker changed state (the scheduler may move deadlines).
    CircuitChanged {
        /// The CA.
        ca: CaName,
        /// The new state.
        state: CircuitState,
        /// While open: when the cool-down ends.
        open_until: Option<DateTime<Utc>>,
    },
    /// A CA rate-limited renewd: nothing goes to it before `until`.
    CaBlocked {
        /// The CA.
        ca: CaName,
        /// The end of the block (its `Retry-After`).
        until: DateTime<Utc>,
    },
    /// A certificate was issued and installed.
    Renewed {
        /// The certificate.
        cert: CertName,
        /// The CA that issued it.
        ca: CaName,
        /// Its serial, lower-case hex.
        serial: String,
        /// Its notAfter.
        not_after: DateTime<Utc>,
    },
    /// A renewal attempt failed (the store holds the back-off).
    Failed {
        /// The certificate.
        cert: CertName,
        /// The class of the failure that decided the outcome.
        class: FailureClass,
        /// The job's urgency.
        urgency: Urgency,
        /// One line.
        message: String,
    },
    /// A certificate is being renewed at critical urgency: log loudly (journald `crit`).
    ExpiryDanger {
        /// The certificate.
        cert: CertName,
        /// The urgency.
        urgency: Urgency,
        /// The installed certificate's notAfter, when one is installed.
        not_after: Option<DateTime<Utc>>,
    },
    /// A renewal job of [`Issuer::run`](crate::Issuer::run) ended, with its result — sent
    /// before that job's `WorkDone`, so whoever waits for the `WorkDone` (the daemon's
    /// control socket) finds it already queued. Carries what the store does not record:
    /// a deferral, a certificate found renewed by another process, a held lease.
    JobEnded {
        /// The certificate.
        cert: CertName,
        /// How the job ended.
        result: JobResult,
    },
    /// A host action (deploy hook, failure hook, served-certificate check) failed.
    HookFailed {
        /// The certificate.
        cert: CertName,
        /// Which action.
        hook: HookKind,
        /// One line.
        message: String,
    },
}

/// A channel for [`IssuerEvent`]s holding up to `capacity` unread events per listener.
pub fn event_channel(capacity: usize) -> (EventSender, broadcast::Receiver<IssuerEvent>) {
    broadcast::channel(capacity.max(1))
}
