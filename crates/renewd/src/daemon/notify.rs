//! Messages to the service manager (`sd_notify`).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use sd_notify::NotifyState;

/// Where `READY=1`, `STATUS=`, `WATCHDOG=1`, … go. The daemon uses [`SystemdNotifier`]; tests record.
pub trait Notifier: Send + Sync + fmt::Debug {
    /// Sends `states` as one message.
    fn notify(&self, states: &[NotifyState<'_>]);
}

/// The real service manager: `$NOTIFY_SOCKET`, or nothing when it is unset.
#[derive(Debug, Default)]
pub struct SystemdNotifier {
    failed_before: AtomicBool,
}

impl Notifier for SystemdNotifier {
    fn notify(&self, states: &[NotifyState<'_>]) {
        // sd_notify's `notify` only reads the environment; the `*_and_unset_env` variants
        // are unsafe in a threaded process and are not used.
        match sd_notify::notify(states) {
            Ok(()) => {}
            Err(e) if !self.failed_before.swap(true, Ordering::Relaxed) => {
                tracing::warn!("cannot notify the service manager ($NOTIFY_SOCKET): {e}");
            }
            Err(e) => tracing::debug!("cannot notify the service manager: {e}"),
        }
    }
}

/// The wire form of `states`: one `KEY=VALUE` per line.
pub fn notify_wire(states: &[NotifyState<'_>]) -> String {
    states.iter().map(|s| format!("{s}\n")).collect()
}

/// `STATUS=` must be one line.
pub fn one_line(status: &str) -> String {
    status.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form() {
        assert_eq!(
            notify_wire(&[NotifyState::Ready, NotifyState::Status("2 certificates")]),
            "READY=1\nSTATUS=2 certificates\n"
        );
        assert_eq!(one_line("a\nb  c"), "a b c");
    }
}
