//! Proof that the main loop is running: the loop beats a [`Heartbeat`]; the systemd
//! watchdog and `/healthz` read it through a [`Liveness`].
//!
//! The watchdog must stop being fed when the loop that does the work is stuck — not merely
//! while the process exists — so `WATCHDOG=1` is sent only when the loop has beaten since the
//! previous ping, and `/healthz` answers 200 only while the last beat is recent. The loop
//! promises to beat at least every [`Heartbeat::period`]: half the watchdog interval, at
//! most a minute (a minute without a watchdog). The pings go out on the beats themselves
//! (see the daemon's watchdog), so an idle daemon pings at half the interval, as systemd
//! expects, and wakes once per period and no more: once a minute under the packaged unit's
//! `WatchdogSec=120s`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// The longest period between beats, whatever the watchdog says, and the period without
/// one: an idle daemon wakes no more often than once a minute (issue 8).
const MAX_PERIOD: Duration = Duration::from_secs(60);
/// The shortest period between beats, so a tiny `WATCHDOG_USEC` cannot make the loop spin.
const MIN_PERIOD: Duration = Duration::from_millis(10);
/// `/healthz` calls the loop dead when it has not beaten for this many periods.
const STALE_PERIODS: u32 = 3;

/// The beat period for a watchdog interval: half of it, within 10 ms..=60 s; a minute
/// without a watchdog. Pings follow beats, skipping those closer than half a period to the
/// last ping (a busy loop beats often): an idle loop pings every half interval, and pings
/// are never more than 1.5 periods — three quarters of the interval — apart.
pub fn period_for(watchdog: Option<Duration>) -> Duration {
    watchdog.map_or(MAX_PERIOD, |w| (w / 2).clamp(MIN_PERIOD, MAX_PERIOD))
}

/// The beating side, held by the main loop (the scheduler loop, once wired). Clones beat the
/// same heart.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    tx: Arc<watch::Sender<Instant>>,
    period: Duration,
}

impl Heartbeat {
    /// A heart that must beat at least every `period`.
    pub fn new(period: Duration) -> Self {
        let (tx, _) = watch::channel(Instant::now());
        Self {
            tx: Arc::new(tx),
            period,
        }
    }

    /// Records that the loop is alive now.
    pub fn beat(&self) {
        self.tx.send_replace(Instant::now());
    }

    /// The loop must beat at least this often: never sleep longer than this between beats.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// A reader of this heart; it has seen no beat yet.
    pub fn liveness(&self) -> Liveness {
        let mut rx = self.tx.subscribe();
        rx.mark_unchanged();
        Liveness {
            rx,
            period: self.period,
        }
    }
}

/// The reading side: the watchdog pinger and `/healthz`.
#[derive(Debug, Clone)]
pub struct Liveness {
    rx: watch::Receiver<Instant>,
    period: Duration,
}

impl Liveness {
    /// Waits for a beat not yet seen (marking it seen); `false` when the heart is gone.
    pub async fn next_beat(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }

    /// The period the loop promised to beat within.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Whether the last beat was within three periods.
    pub fn is_alive(&self) -> bool {
        self.rx.borrow().elapsed() <= self.period * STALE_PERIODS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_is_half_the_watchdog_within_bounds() {
        assert_eq!(
            period_for(Some(Duration::from_millis(200))),
            Duration::from_millis(100)
        );
        assert_eq!(period_for(Some(Duration::from_secs(3600))), MAX_PERIOD);
        assert_eq!(period_for(Some(Duration::from_micros(1))), MIN_PERIOD);
    }

    #[test]
    fn the_packaged_unit_and_no_watchdog_both_beat_once_a_minute() {
        // An idle daemon must not wake more often than once a minute (issue 8); the unit's
        // WatchdogSec=120s gives exactly that.
        assert_eq!(period_for(None), Duration::from_secs(60));
        assert_eq!(
            period_for(Some(Duration::from_secs(120))),
            Duration::from_secs(60)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn liveness_goes_stale_after_three_periods_without_a_beat() {
        let heart = Heartbeat::new(Duration::from_secs(1));
        let a = heart.liveness();
        heart.beat();
        assert!(a.is_alive());
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(a.is_alive());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!a.is_alive());
        heart.beat();
        assert!(a.is_alive());
    }

    #[tokio::test(start_paused = true)]
    async fn next_beat_waits_for_an_unseen_beat_and_ends_with_the_heart() {
        let heart = Heartbeat::new(Duration::from_secs(1));
        let mut a = heart.liveness();
        heart.beat();
        assert!(a.next_beat().await, "a beat before the wait counts");
        let waiting = tokio::time::timeout(Duration::from_secs(5), a.next_beat()).await;
        assert!(waiting.is_err(), "no second beat yet");
        drop(heart);
        assert!(!a.next_beat().await);
    }
}
