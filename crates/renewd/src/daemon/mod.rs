//! `renewd run`: the daemon under systemd (`Type=notify`).
//!
//! - [`run_daemon`]: loads the config, sets up logging, installs the signal handlers and
//!   runs the lifecycle on a tokio runtime; returns the exit status.
//! - `lifecycle`: READY, the main loop, reload on SIGHUP, stop on SIGTERM/SIGINT.
//! - `watchdog`: `WATCHDOG=1` only while the main loop beats.
//! - `notify`: the [`Notifier`] seam over `sd_notify`.
//! - `control`: signals as [`Control`] messages.

mod control;
mod lifecycle;
mod notify;
mod watchdog;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use renewd_config::{Config, LoadError, LogFormat};
use sd_notify::NotifyState;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use control::{Control, forward_signals};
pub use lifecycle::{DaemonSetup, StartEngineBox, engineless_status, run_lifecycle};
pub use notify::{Notifier, SystemdNotifier, notify_wire};

use crate::{exit, logging};

/// How long the exit waits for the last messages to the service manager.
const NOTIFY_FLUSH: Duration = Duration::from_secs(2);

/// `renewd run`. `log_format` is `--log-format`, which wins over the config's.
pub fn run_daemon(config_path: &Path, log_format: Option<LogFormat>, verbose: u8) -> u8 {
    // Before the runtime starts its threads (each would get a malloc arena).
    crate::memory::tune_for_daemon();
    let loaded = Config::load(config_path);
    let format = log_format
        .or_else(|| loaded.as_ref().ok().map(|c| c.daemon.log_format))
        .unwrap_or(LogFormat::Auto);
    let sink = logging::init_logging(format, verbose);
    let notifier = Arc::new(SystemdNotifier::default());
    let config = match loaded {
        Ok(config) => config,
        Err(e) => {
            log_load_error(&e);
            notifier.notify(&[NotifyState::Status("config invalid, not started")]);
            notifier.flush(NOTIFY_FLUSH);
            return exit::CONFIG;
        }
    };
    tracing::info!(
        "renewd {} starting with {} (logs: {sink:?})",
        env!("CARGO_PKG_VERSION"),
        config_path.display()
    );
    // sd_notify honours WATCHDOG_PID: a watchdog meant for another process is not ours.
    let watchdog = sd_notify::watchdog_enabled().filter(|w| !w.is_zero());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("renewd")
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return exit::FAILURE;
        }
    };
    let setup = DaemonSetup {
        config_path: config_path.to_path_buf(),
        config,
        log_format_fixed: log_format.is_some(),
        notifier: notifier.clone(),
        watchdog,
        start_engine: Some(crate::engine::starter()),
    };
    let result = runtime.block_on(async {
        let (tx, rx) = mpsc::channel(8);
        let signals_stop = CancellationToken::new();
        let signals = forward_signals(tx, signals_stop.clone())?;
        let forwarder = tokio::spawn(signals);
        let result = run_lifecycle(setup, rx).await;
        signals_stop.cancel();
        let _ = forwarder.await;
        result
    });
    // Blocking tasks (a config read) must not hold the exit up.
    runtime.shutdown_timeout(Duration::from_secs(1));
    // STOPPING=1 must reach systemd before the process is gone.
    notifier.flush(NOTIFY_FLUSH);
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            tracing::error!("{}", exit::error_text(&e));
            exit::FAILURE
        }
    }
}

/// Logs every problem of a failed load at error level, one event each.
fn log_load_error(e: &LoadError) {
    match e {
        LoadError::Invalid(errors) => {
            for e in errors.errors() {
                tracing::error!("{e}");
            }
        }
        other => tracing::error!("{other}"),
    }
}
