//! The one seam between the daemon's lifecycle and the renewal engine (the store, the
//! scheduler loop and the issuance workers).
//!
//! The daemon owns the process: signals, systemd notifications, the watchdog, the metrics
//! endpoint and the config file. The engine owns renewals. They meet here:
//!
//! - [`StartEngine`]: brings the engine up from an [`EngineContext`] and resolves once the
//!   config, the store and the first scan of installed certificates are loaded — the moment
//!   the daemon sends `READY=1`.
//! - The context hands the engine everything it reports through: the [`Heartbeat`] its
//!   scheduler loop beats on every turn (and at least every [`Heartbeat::period`]) so the
//!   watchdog and `/healthz` follow the loop that does the work; the [`StatusLine`] it
//!   keeps current (certificates, next renewal, CAs with open circuits), forwarded as
//!   `STATUS=`; the [`Metrics`] it updates; the `shutdown` token it obeys.
//! - [`Engine`]: what the daemon asks of a running engine: take a new, already validated
//!   config on SIGHUP, and drain on SIGTERM.
//!
//! `renewd run` passes the real engine's starter (`engine::starter`); the lifecycle's own
//! tests pass a test double. Without an engine (`None`) the daemon's main loop beats the
//! heartbeat itself (see `daemon::lifecycle`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use renewd_config::Config;
use renewd_core::CertName;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::heartbeat::Heartbeat;
use crate::metrics::Metrics;

/// A boxed future, so [`Engine`] can be used as a trait object.
pub type EngineFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Everything the daemon gives the engine when it starts it.
#[derive(Debug)]
pub struct EngineContext {
    /// The validated config at startup.
    pub config: Arc<Config>,
    /// Beat it on every turn of the scheduler loop, at least every `heartbeat.period()`:
    /// the watchdog pings and `/healthz` follow it.
    pub heartbeat: Heartbeat,
    /// Keep it current; every change becomes `STATUS=`.
    pub status: StatusLine,
    /// The metrics to update (`record_request`, `set_cert`, `set_circuit`, …).
    pub metrics: Metrics,
    /// Cancelled on SIGTERM/SIGINT: take no new jobs and let the loops end. In-flight orders
    /// go on to their next persisted point; [`Engine::drain`] waits for them.
    pub shutdown: CancellationToken,
}

/// Starts the engine. Resolves once the store is open and the first scan is done, or fails
/// (the daemon then exits 1 without `READY=1`).
pub type StartEngine =
    Box<dyn FnOnce(EngineContext) -> EngineFuture<'static, anyhow::Result<Box<dyn Engine>>> + Send>;

/// A running engine, as the daemon drives it.
pub trait Engine: Send + Sync {
    /// Applies `config`, already validated and different from the running one. An error
    /// refuses the reload: the engine must then still run on its previous config, and the
    /// daemon reports the refusal (log, `STATUS=`, metric).
    fn reload(&self, config: Arc<Config>) -> EngineFuture<'_, anyhow::Result<()>>;

    /// Called after `shutdown` was cancelled: waits until every in-flight order has reached
    /// a persisted point, or until `deadline` (`[daemon] shutdown_grace` after the signal).
    fn drain(&self, deadline: Instant) -> EngineFuture<'_, Drained>;
}

/// How a drain ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drained {
    /// Certificates whose orders had not reached a persisted point by the deadline; they
    /// resume from their last persisted step at the next start.
    pub unfinished: Vec<CertName>,
}

/// The one-line summary behind `STATUS=`. Clones share the line.
#[derive(Debug, Clone)]
pub struct StatusLine {
    tx: Arc<watch::Sender<String>>,
}

impl StatusLine {
    /// A status line reading `initial`.
    pub fn new(initial: String) -> Self {
        let (tx, _) = watch::channel(initial);
        Self { tx: Arc::new(tx) }
    }

    /// Replaces the line (no notification when it is unchanged).
    pub fn set(&self, line: String) {
        self.tx.send_if_modified(|current| {
            if *current == line {
                false
            } else {
                *current = line;
                true
            }
        });
    }

    /// The current line.
    pub fn get(&self) -> String {
        self.tx.borrow().clone()
    }

    /// A receiver that wakes on every change.
    pub fn subscribe(&self) -> watch::Receiver<String> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn status_line_wakes_only_on_change() {
        let s = StatusLine::new("a".into());
        let mut rx = s.subscribe();
        s.set("a".into());
        assert!(!rx.has_changed().unwrap());
        s.set("b".into());
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), "b");
        assert_eq!(s.get(), "b");
    }
}
