//! Signals, turned into requests to the lifecycle.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the lifecycle is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// SIGHUP: re-read the config.
    Reload,
    /// SIGTERM or SIGINT: stop cleanly. The signal's name, for the log.
    Stop(&'static str),
}

/// Installs the handlers for SIGHUP, SIGTERM and SIGINT now (so none is missed from here
/// on), and returns a task forwarding them to `tx` until `cancel`.
pub fn forward_signals(
    tx: mpsc::Sender<Control>,
    cancel: CancellationToken,
) -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        loop {
            let control = tokio::select! {
                () = cancel.cancelled() => break,
                Some(()) = hup.recv() => Control::Reload,
                Some(()) = term.recv() => Control::Stop("SIGTERM"),
                Some(()) = int.recv() => Control::Stop("SIGINT"),
                else => break,
            };
            if tx.send(control).await.is_err() {
                break;
            }
        }
    })
}
