//! Proof that the main loop is running: the loop beats a [`Heartbeat`]; the systemd
//! watchdog and `/healthz` read it through a [`Liveness`].
//!
//! The watchdog must stop being fed when the loop that does the work is stuck — not merely
//! while the process exists — so `WATCHDOG=1` is sent only when the loop has beaten since the
//! previous ping, and `/healthz` answers 200 only while the last beat is recent. The loop
//! promises to beat at least every [`Heartbeat::period`]: a third of the watchdog interval,
//! at most a minute (a minute without a watchdog). The pings go out on the beats themselves
//! (see the daemon's watchdog), so an idle daemon wakes once per period and no more: once a
//! minute under the packaged unit's `WatchdogSec=180s`.

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

/// The beat period for a watchdog interval: a third of it, within 10 ms..=60 s; a minute
/// without a watchdog. A third, because pings follow beats at most every half period
/// (the watchdog skips beats closer than that to its last ping): pings are then at most
/// 1.5 periods — half the interval — apart.
pub fn period_for(watchdog: Option<Duration>) -> Duration {
    watchdog.map_or(MAX_PERIOD, |w| (w / 3).clamp(MIN_PERIOD, MAX_PERIOD))
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
    /// Whether the loop beat since the previous call (or since this reader was made).
    pub fn beat_since_last_check(&mut self) -> bool {
        match self.rx.has_changed() {
            Ok(true) => {
                self.rx.mark_unchanged();
                true
            }
            // Ok(false): no beat. Err: the heart is gone, which is no beat either.
            Ok(false) | Err(_) => false,
        }
    }

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
    fn period_is_a_third_of_the_watchdog_within_bounds() {
        assert_eq!(
            period_for(Some(Duration::from_millis(300))),
            Duration::from_millis(100)
        );
        assert_eq!(period_for(Some(Duration::from_secs(3600))), MAX_PERIOD);
        assert_eq!(period_for(Some(Duration::from_micros(1))), MIN_PERIOD);
    }

    #[test]
    fn the_packaged_unit_and_no_watchdog_both_beat_once_a_minute() {
        // An idle daemon must not wake more often than once a minute (issue 8); the unit's
        // WatchdogSec=180s gives exactly that.
        assert_eq!(period_for(None), Duration::from_secs(60));
        assert_eq!(
            period_for(Some(Duration::from_secs(180))),
            Duration::from_secs(60)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn liveness_sees_beats_once_and_goes_stale() {
        let heart = Heartbeat::new(Duration::from_secs(1));
        let mut a = heart.liveness();
        let mut b = heart.liveness();
        assert!(!a.beat_since_last_check());
        heart.beat();
        assert!(a.beat_since_last_check());
        assert!(!a.beat_since_last_check());
        // Each reader keeps its own account.
        assert!(b.beat_since_last_check());
        assert!(a.is_alive());
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(a.is_alive());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!a.is_alive());
        heart.beat();
        assert!(a.is_alive());
        drop(heart);
        assert!(!a.beat_since_last_check());
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
