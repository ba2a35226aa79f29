//! The systemd watchdog: `WATCHDOG=1` every half `WATCHDOG_USEC`, but only when the main
//! loop has beaten since the previous ping, so a stuck loop gets the service restarted.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::notify::Notifier;
use crate::heartbeat::Liveness;

/// Pings every `interval / 2` while `liveness` shows beats, until `cancel`.
pub async fn run(
    interval: Duration,
    mut liveness: Liveness,
    notifier: Arc<dyn Notifier>,
    cancel: CancellationToken,
) {
    // The first ping goes out half an interval after READY, when the loop has beaten.
    let period = (interval / 2).max(Duration::from_millis(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stalled = false;
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        if liveness.beat_since_last_check() {
            if stalled {
                tracing::info!("the main loop is beating again; watchdog pings resume");
                stalled = false;
            }
            notifier.notify(&[NotifyState::Watchdog]);
        } else if !stalled {
            tracing::warn!(
                "the main loop has not run for {:?}; withholding the watchdog ping",
                period
            );
            stalled = true;
        }
    }
}
