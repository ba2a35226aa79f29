//! The engine's half of `STATUS=`: the scheduler's summary plus the CAs whose circuit is
//! open — "20 certificates: 18 valid, 2 renewing; next: www renew at …; circuit open:
//! zerossl until …" — and the task that keeps the [`StatusLine`] current.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use renewd_core::Clock;
use renewd_scheduler::{SchedulerStatus, format_time};
use renewd_store::CircuitState;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::bridge::OpenCircuits;
use crate::engine::StatusLine;

/// The line for `status` and the circuits in effect open at `now`
/// ([`CircuitState::effective`]: one whose cool-down ended, or has no recorded end, is
/// half-open — the next order probes that CA again — and left out).
pub fn status_text(status: &SchedulerStatus, open: &OpenCircuits, now: DateTime<Utc>) -> String {
    let mut text = status.to_string();
    let mut sep = "; circuit open: ";
    for (ca, until) in open {
        if let (CircuitState::Open, Some(t)) = (CircuitState::Open.effective(*until, now), until) {
            let _ = write!(text, "{sep}{ca} until {}", format_time(*t));
            sep = ", ";
        }
    }
    text
}

/// Keeps `line` current until `stop`: on every change of the scheduler's status or of the
/// open circuits, and when a cool-down ends.
pub async fn keep_current(
    line: StatusLine,
    mut status: watch::Receiver<SchedulerStatus>,
    mut open: watch::Receiver<OpenCircuits>,
    clock: std::sync::Arc<dyn Clock>,
    stop: CancellationToken,
) {
    loop {
        let now = clock.now();
        let next_end = {
            let open = open.borrow_and_update();
            line.set(status_text(&status.borrow_and_update(), &open, now));
            open.values().flatten().filter(|t| **t > now).min().copied()
        };
        let wake = next_end
            .and_then(|t| (t - now).to_std().ok())
            .map_or(tokio::time::Instant::now() + FAR, |d| {
                tokio::time::Instant::now() + d
            });
        tokio::select! {
            () = stop.cancelled() => break,
            changed = status.changed() => if changed.is_err() { break },
            changed = open.changed() => if changed.is_err() { break },
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}

/// The wake-up when no cool-down is running (any change wakes the task earlier).
const FAR: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use renewd_core::CaName;

    use super::*;

    #[test]
    fn the_summary_names_cas_whose_cool_down_still_runs() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let status = SchedulerStatus {
            certificates: 20,
            by_status: [18, 0, 2, 0, 0],
            ..SchedulerStatus::default()
        };
        let mut open = OpenCircuits::new();
        assert_eq!(
            status_text(&status, &open, now),
            "20 certificates: 18 valid, 2 renewing"
        );
        open.insert(
            CaName::new("zerossl").unwrap(),
            Some(now + TimeDelta::minutes(5)),
        );
        open.insert(
            CaName::new("old").unwrap(),
            Some(now - TimeDelta::minutes(1)),
        );
        open.insert(CaName::new("le").unwrap(), None);
        assert_eq!(
            status_text(&status, &open, now),
            "20 certificates: 18 valid, 2 renewing; circuit open: zerossl until 2023-11-14 22:18 UTC",
            "the ended and the endless cool-downs read half-open"
        );
    }
}
