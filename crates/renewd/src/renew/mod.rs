//! `renewd renew [--cert NAME]... [--force] [--ca NAME]`: one pass now, by the daemon's
//! rules, then exit — 0 when every selected certificate was renewed or nothing was due,
//! 1 when any failed.
//!
//! - `forward`: when a daemon answers on `STATE/control.sock`, the pass is its to run (it
//!   holds the challenge ports, and its scheduler knows what is in flight): the request is
//!   forwarded and its answers printed as they come.
//! - `pass`: when no daemon listens (no socket file, or nothing accepting on it), the pass
//!   runs here: the store opened read-write (never `recover()`: a daemon might be
//!   installing), the selected certificates scanned, the due ones picked with the
//!   scheduler's `decide` (every selected one with `--force`), and
//!   `Issuer::run_once` — with the same leases, so a daemon started meanwhile cannot run a
//!   second order for the same certificate.
//!
//! Stdout gets one line per certificate ([`CertOutcome`]'s form) and nothing else; a
//! failure's error also goes to stderr. SIGINT/SIGTERM stop the pass at the next
//! persisted point (a forwarded pass goes on in the daemon).

mod forward;
mod pass;

use std::io::{self, Write};
use std::time::Duration;

use renewd_config::{Config, LogFormat};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::engine::outcome::{CertOutcome, RenewResult};
use crate::selection::RenewSelection;
use crate::{exit, logging};

/// Runs `renewd renew` for `selection`; returns the exit status.
pub fn run(
    config: &Config,
    selection: &RenewSelection,
    log_format: Option<LogFormat>,
    verbose: u8,
) -> u8 {
    logging::init_logging(log_format.unwrap_or(config.daemon.log_format), verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("renewd-renew")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(
                io::stderr(),
                "renewd renew: cannot start the async runtime: {e}"
            );
            return exit::FAILURE;
        }
    };
    let mut report = Report::default();
    let status = runtime.block_on(async {
        let cancel = CancellationToken::new();
        let signals = match watch_signals(cancel.clone()) {
            Ok(s) => s,
            Err(e) => {
                let _ = writeln!(io::stderr(), "renewd renew: cannot handle signals: {e}");
                return exit::FAILURE;
            }
        };
        let aborted = signals.clone();
        let work = async {
            match forward::forward(&config.state_dir, selection, &cancel, &mut report).await {
                Ok(forward::Forwarded::Done) => {}
                Ok(forward::Forwarded::NoDaemon) => {
                    if let Err(e) = pass::run(config, selection, &cancel, &mut report).await {
                        report.error(&exit::error_text(&e));
                    }
                }
                Err(e) => report.error(&exit::error_text(&e)),
            }
        };
        tokio::select! {
            () = work => {}
            () = aborted.cancelled() => {
                report.error("interrupted twice: not waiting for the renewals in flight");
            }
        }
        report.status()
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    status
}

/// The first SIGINT/SIGTERM cancels `cancel` (stop at the next persisted point); the
/// second cancels the returned token (stop waiting).
fn watch_signals(cancel: CancellationToken) -> io::Result<CancellationToken> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let abort = CancellationToken::new();
    let aborting = abort.clone();
    tokio::spawn(async move {
        for round in 0.. {
            tokio::select! {
                Some(()) = int.recv() => {}
                Some(()) = term.recv() => {}
                else => break,
            }
            if round == 0 {
                tracing::warn!(
                    "stopping at the next persisted point; interrupt again to stop waiting"
                );
                cancel.cancel();
            } else {
                aborting.cancel();
                break;
            }
        }
    });
    Ok(abort)
}

/// What was printed, for the exit status.
#[derive(Debug, Default)]
pub struct Report {
    failed: bool,
}

impl Report {
    /// Prints one certificate's line on stdout (its error on stderr too).
    pub fn outcome(&mut self, outcome: &CertOutcome) {
        let _ = writeln!(io::stdout(), "{outcome}");
        let _ = io::stdout().flush();
        if outcome.result.is_failure() {
            self.failed = true;
        }
        if let RenewResult::Failed { error, .. } = &outcome.result {
            let _ = writeln!(io::stderr(), "renewd renew: {}: {error}", outcome.cert);
        }
    }

    /// A failure of the pass itself, on stderr.
    pub fn error(&mut self, message: &str) {
        self.failed = true;
        let _ = writeln!(io::stderr(), "renewd renew: {message}");
    }

    fn status(&self) -> u8 {
        if self.failed { exit::FAILURE } else { exit::OK }
    }
}
