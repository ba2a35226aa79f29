//! Waiting between polls: `Retry-After` when the CA sends one (clamped), otherwise a short
//! first wait that backs off. All waits use `tokio::time`, so paused-time tests drive them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use renewd_core::Step;
use tokio::time::Instant;

use crate::error::Error;

/// How the client waits for authorizations, orders and finalize recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollPolicy {
    /// The first wait without `Retry-After` (at most 250 ms makes a local CA fast).
    pub first_interval: Duration,
    /// The longest wait without `Retry-After`.
    pub max_interval: Duration,
    /// The longest `Retry-After` honoured; larger values are clamped to this.
    pub max_retry_after: Duration,
    /// The overall limit on one wait for an authorization or an order.
    pub timeout: Duration,
    /// The first wait after a failure of the CA (5xx, timeout, reset) while finishing an
    /// order, and the shortest wait whatever `Retry-After` says (a CA answering `0` again
    /// and again is not asked in a hot loop). Longer than `first_interval`: a quick CA is
    /// polled soon, a failing one is not hammered.
    pub failure_interval: Duration,
    /// The longest wait after consecutive failures of the CA while finishing an order: the
    /// waits start at `failure_interval` and double up to this, so a CA in an outage is not
    /// asked every few seconds for the whole order timeout.
    pub max_failure_interval: Duration,
    /// The most finalize requests one attempt at an order sends (the first one and the
    /// re-sends of finalize recovery). After that the attempt ends `ca_unavailable` and the
    /// order is left to be resumed later, after the caller's back-off.
    pub max_finalizes: u32,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            first_interval: Duration::from_millis(25),
            max_interval: Duration::from_secs(4),
            max_retry_after: Duration::from_secs(60),
            timeout: Duration::from_secs(300),
            failure_interval: Duration::from_millis(100),
            max_failure_interval: Duration::from_secs(60),
            max_finalizes: 5,
        }
    }
}

/// `now + limit`, saturating far in the future instead of overflowing on absurd limits.
pub(crate) fn deadline_after(limit: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(limit)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Whether a `Retry-After` of `at` can be honoured in full: it asks for no more than
/// `policy.max_retry_after` and ends before `deadline`. A rate limit's Retry-After that
/// cannot be honoured must not be cut short by the clamp: the caller gives up instead.
pub(crate) fn can_wait_until(policy: &PollPolicy, deadline: Instant, at: DateTime<Utc>) -> bool {
    let delay = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    delay <= policy.max_retry_after
        && Instant::now()
            .checked_add(delay)
            .is_some_and(|end| end <= deadline)
}

/// One sequence of waits against a deadline.
#[derive(Debug)]
pub(crate) struct Backoff {
    /// The shortest wait, whatever the CA says: `failure_interval`.
    min: Duration,
    next: Duration,
    max: Duration,
    /// Each step doubles (after failures) rather than growing by half (polling).
    doubling: bool,
    max_retry_after: Duration,
    started: Instant,
    deadline: Instant,
}

impl Backoff {
    /// Polling a resource that is not there yet: `first_interval`, ×1.5 up to
    /// `max_interval`.
    pub(crate) fn new(policy: &PollPolicy, deadline: Instant) -> Backoff {
        Backoff {
            min: policy.failure_interval,
            next: policy.first_interval,
            max: policy.max_interval.max(policy.first_interval),
            doubling: false,
            max_retry_after: policy.max_retry_after,
            started: Instant::now(),
            deadline,
        }
    }

    /// Asking again after the CA failed: `failure_interval`, doubling up to
    /// `max_failure_interval`.
    pub(crate) fn after_failures(policy: &PollPolicy, deadline: Instant) -> Backoff {
        Backoff {
            next: policy.failure_interval,
            max: policy.max_failure_interval.max(policy.failure_interval),
            doubling: true,
            ..Backoff::new(policy, deadline)
        }
    }

    /// The next wait: `Retry-After` (relative to `now`, clamped to [failure_interval,
    /// max_retry_after]: a CA saying `0` or a past date again and again must not be polled
    /// in a hot loop) or the next back-off step (×1.5, or ×2 after failures, up to the
    /// maximum).
    pub(crate) fn next_delay(
        &mut self,
        retry_after: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Duration {
        match retry_after {
            Some(at) => (at - now)
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(self.max_retry_after)
                .max(self.min),
            None => {
                let delay = self.next;
                let grown = if self.doubling {
                    self.next.saturating_mul(2)
                } else {
                    self.next.saturating_mul(3) / 2
                };
                self.next = grown.min(self.max);
                delay
            }
        }
    }

    /// The deadline the waits run against.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Waits before the next attempt; fails with [`Error::Deadline`] when the deadline has
    /// passed. A wait that would cross the deadline is cut short so one last attempt happens
    /// at the deadline.
    pub(crate) async fn wait(
        &mut self,
        retry_after: Option<DateTime<Utc>>,
        step: Step,
        url: &str,
    ) -> Result<(), Error> {
        let now = Instant::now();
        if now >= self.deadline {
            return Err(Error::Deadline {
                step,
                url: url.to_string(),
                waited: now - self.started,
            });
        }
        let delay = self.next_delay(retry_after, Utc::now());
        tokio::time::sleep(delay.min(self.deadline - now)).await;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn starts_short_and_backs_off() {
        let policy = PollPolicy::default();
        let mut b = Backoff::new(&policy, Instant::now() + Duration::from_secs(60));
        let now = Utc::now();
        let delays: Vec<_> = (0..16).map(|_| b.next_delay(None, now)).collect();
        assert!(delays[0] <= Duration::from_millis(250));
        assert!(delays.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*delays.last().unwrap(), policy.max_interval);
    }

    #[test]
    fn after_failures_the_waits_double_up_to_a_minute() {
        let policy = PollPolicy::default();
        let mut b = Backoff::after_failures(&policy, Instant::now() + Duration::from_secs(600));
        let now = Utc::now();
        let delays: Vec<u64> = (0..12)
            .map(|_| b.next_delay(None, now).as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000
            ]
        );
    }

    #[test]
    fn a_quick_ca_is_polled_soon_and_a_slow_one_not_much_more_often() {
        // pebble or a CA on the LAN validates within milliseconds: the second look at the
        // authorization (the first is right after the challenge) comes 25 ms later, not
        // 100 ms (issue 8: one certificate in ≤ 0.3 s).
        let policy = PollPolicy::default();
        assert!(policy.first_interval <= Duration::from_millis(25));
        // A public CA that takes 3 s is asked at most 11 times meanwhile.
        let mut b = Backoff::new(&policy, Instant::now() + Duration::from_secs(60));
        let now = Utc::now();
        let (mut waited, mut polls) = (Duration::ZERO, 0);
        while waited < Duration::from_secs(3) {
            waited += b.next_delay(None, now);
            polls += 1;
        }
        assert!(polls <= 11, "{polls} polls in 3 s");
    }

    #[test]
    fn retry_after_is_clamped() {
        let policy = PollPolicy::default();
        let mut b = Backoff::new(&policy, Instant::now() + Duration::from_secs(60));
        let now = Utc::now();
        assert_eq!(
            b.next_delay(Some(now + TimeDelta::seconds(3)), now),
            Duration::from_secs(3)
        );
        assert_eq!(
            b.next_delay(Some(now - TimeDelta::seconds(3)), now),
            policy.failure_interval,
            "a past Retry-After still waits the shortest interval"
        );
        assert_eq!(b.next_delay(Some(now), now), policy.failure_interval);
        assert_eq!(
            b.next_delay(Some(now + TimeDelta::days(2)), now),
            policy.max_retry_after
        );
        // Retry-After does not advance the back-off.
        assert_eq!(b.next_delay(None, now), policy.first_interval);
    }

    #[test]
    fn absurd_limits_do_not_overflow() {
        let policy = PollPolicy {
            max_interval: Duration::MAX,
            ..PollPolicy::default()
        };
        let mut b = Backoff::new(&policy, deadline_after(Duration::MAX));
        for _ in 0..200 {
            b.next_delay(None, Utc::now());
        }
        assert!(deadline_after(Duration::MAX) > Instant::now());
    }

    #[test]
    fn only_retry_afters_within_the_clamp_and_the_deadline_can_be_waited_for() {
        let policy = PollPolicy::default();
        let deadline = Instant::now() + Duration::from_secs(120);
        let now = Utc::now();
        assert!(can_wait_until(
            &policy,
            deadline,
            now - TimeDelta::seconds(5)
        ));
        assert!(can_wait_until(
            &policy,
            deadline,
            now + TimeDelta::seconds(30)
        ));
        assert!(
            !can_wait_until(&policy, deadline, now + TimeDelta::seconds(90)),
            "clamp"
        );
        let soon = Instant::now() + Duration::from_secs(10);
        assert!(
            !can_wait_until(&policy, soon, now + TimeDelta::seconds(30)),
            "deadline"
        );
        assert!(!can_wait_until(&policy, deadline, DateTime::<Utc>::MAX_UTC));
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_ends_the_wait() {
        let policy = PollPolicy::default();
        let start = Instant::now();
        let mut b = Backoff::new(&policy, start + Duration::from_secs(10));
        let mut attempts = 0;
        while b.wait(None, Step::PollOrder, "u").await.is_ok() {
            attempts += 1;
        }
        assert_eq!(Instant::now() - start, Duration::from_secs(10));
        assert!(attempts > 3 && attempts < 20, "{attempts}");
    }
}
