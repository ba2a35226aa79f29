//! The per-certificate back-off after a failed attempt: about 1 min, 10 min, 100 min, then
//! growing to a cap (6 h by default). Pure arithmetic; the issuer writes the resulting
//! `next_attempt` into the store and the scheduler never dispatches before it.

use std::time::Duration;

/// Back-off steps for failed renewals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failure.
    pub first: Duration,
    /// Each later delay is the previous one times this factor.
    pub factor: u32,
    /// No delay exceeds this.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(60),
            factor: 10,
            max: Duration::from_secs(6 * 3600),
        }
    }
}

impl Backoff {
    /// A back-off with the default steps and the given cap.
    pub fn with_max(max: Duration) -> Self {
        Self {
            max,
            ..Self::default()
        }
    }

    /// The delay before the next attempt after `failures` consecutive failures (1 for the
    /// first failure). Zero failures means no delay.
    pub fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let mut d = self.first;
        for _ in 1..failures {
            d = d.saturating_mul(self.factor.max(1));
            if d >= self.max {
                return self.max;
            }
        }
        d.min(self.max)
    }

    /// `delay(failures)` spread by up to ±`spread` (0.0–1.0) using `unit`, a number in
    /// [0, 1) the caller draws, so that many certificates failing together do not retry in
    /// lockstep.
    pub fn jittered(&self, failures: u32, spread: f64, unit: f64) -> Duration {
        let base = self.delay(failures).as_secs_f64();
        let spread = spread.clamp(0.0, 1.0);
        let unit = unit.clamp(0.0, 1.0);
        let factor = 1.0 - spread + 2.0 * spread * unit;
        Duration::from_secs_f64((base * factor).min(self.max.as_secs_f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_grow_to_the_cap() {
        let b = Backoff::default();
        let mins = |n: u32| b.delay(n).as_secs() / 60;
        assert_eq!(b.delay(0), Duration::ZERO);
        assert_eq!(mins(1), 1);
        assert_eq!(mins(2), 10);
        assert_eq!(mins(3), 100);
        assert_eq!(mins(4), 360);
        assert_eq!(mins(40), 360);
        assert_eq!(
            Backoff::with_max(Duration::from_secs(600)).delay(3),
            Duration::from_secs(600)
        );
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let b = Backoff::default();
        let lo = b.jittered(2, 0.1, 0.0).as_secs_f64();
        let hi = b.jittered(2, 0.1, 0.999).as_secs_f64();
        assert!((539.0..=541.0).contains(&lo), "{lo}");
        assert!((658.0..=660.0).contains(&hi), "{hi}");
        assert!(b.jittered(9, 0.5, 0.999) <= b.max);
    }
}
