//! [`TokioClock`]: a wall clock that moves with tokio's clock, so that under
//! `tokio::time::pause()` the [`Clock`] the scheduler reads and the timers it sleeps on
//! agree, and a test can let a virtual day pass in milliseconds.

use chrono::{DateTime, TimeDelta, Utc};
use renewd_core::Clock;
use tokio::time::Instant;

/// Wall time = a base wall time + the time tokio's clock has moved since the clock was
/// made. In production [`renewd_core::SystemClock`] is the better choice: it follows wall
/// clock jumps and suspends, which this clock (tied to the monotonic clock) does not.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    wall: DateTime<Utc>,
    base: Instant,
}

impl TokioClock {
    /// A clock that reads `wall` now.
    pub fn starting_at(wall: DateTime<Utc>) -> Self {
        Self {
            wall,
            base: Instant::now(),
        }
    }

    /// A clock that starts at the system's wall time.
    pub fn new() -> Self {
        Self::starting_at(Utc::now())
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = Instant::now().saturating_duration_since(self.base);
        self.wall + TimeDelta::from_std(elapsed).unwrap_or(TimeDelta::MAX)
    }
}
