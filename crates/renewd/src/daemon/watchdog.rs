//! The systemd watchdog: `WATCHDOG=1` on the main loop's beats, so a stuck loop gets the
//! service restarted, and an idle daemon wakes for the pings no more often than it wakes to
//! beat (once a minute under the packaged unit).
//!
//! The loop beats at least every period (half of `WATCHDOG_USEC`, see
//! [`crate::heartbeat::period_for`]); a beat closer than half a period to the previous
//! ping is not passed on, so a busy loop does not flood systemd. An idle loop thus pings at
//! half the watchdog interval, and pings are at most 1.5 periods — three quarters of the
//! interval — apart while the loop runs.

use std::sync::Arc;

use sd_notify::NotifyState;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::notify::Notifier;
use crate::heartbeat::Liveness;

/// Pings on `liveness`'s beats (at most every half period), until `cancel`; warns once
/// when the loop misses a beat by half a period, and once more when it beats again.
pub async fn run(mut liveness: Liveness, notifier: Arc<dyn Notifier>, cancel: CancellationToken) {
    let period = liveness.period();
    let late = period + period / 2;
    let mut last_ping: Option<Instant> = None;
    let mut stalled = false;
    loop {
        let beat = tokio::select! {
            () = cancel.cancelled() => break,
            beat = tokio::time::timeout(late, liveness.next_beat()) => beat,
        };
        match beat {
            Ok(true) => {}
            // The heart is gone: the engine stopped; nothing more to ping for.
            Ok(false) => break,
            Err(_) => {
                if !stalled {
                    tracing::warn!(
                        "the main loop has not run for {late:?}; withholding the watchdog ping"
                    );
                    stalled = true;
                }
                continue;
            }
        }
        if stalled {
            tracing::info!("the main loop is beating again; watchdog pings resume");
            stalled = false;
        }
        if last_ping.is_none_or(|at| at.elapsed() >= period / 2) {
            notifier.notify(&[NotifyState::Watchdog]);
            last_ping = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::heartbeat::Heartbeat;

    /// Records when each ping went out.
    #[derive(Debug, Default)]
    struct Pings(Mutex<Vec<Instant>>);

    impl Notifier for Pings {
        fn notify(&self, states: &[NotifyState<'_>]) {
            if states.iter().any(|s| matches!(s, NotifyState::Watchdog)) {
                self.0.lock().unwrap().push(Instant::now());
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn pings_follow_beats_spaced_half_a_period_and_stop_with_the_loop() {
        let heart = Heartbeat::new(Duration::from_secs(60));
        let pings = Arc::new(Pings::default());
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(heart.liveness(), pings.clone(), cancel.clone()));
        let start = Instant::now();

        // A busy loop beating every second for 5 minutes: a ping every 30 s, not 300.
        for _ in 0..300 {
            heart.beat();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let busy = pings.0.lock().unwrap().clone();
        assert_eq!(busy.len(), 10, "{busy:?}");
        assert_eq!(busy[0], start, "the first beat is pinged at once");

        // An idle loop beating once a period: one ping per beat, at the beat.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(60)).await;
            heart.beat();
            tokio::task::yield_now().await;
            assert_eq!(*pings.0.lock().unwrap().last().unwrap(), Instant::now());
        }
        let idle = pings.0.lock().unwrap().len();
        assert_eq!(idle, 13);

        // A stuck loop: no pings, however long.
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(pings.0.lock().unwrap().len(), idle);
        heart.beat();
        tokio::task::yield_now().await;
        assert_eq!(pings.0.lock().unwrap().len(), idle + 1, "pings resume");

        cancel.cancel();
        task.await.unwrap();
    }
}
