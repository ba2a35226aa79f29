//! Loud alerts: a certificate close to expiry whose renewal keeps failing.
//!
//! tracing has no level above `ERROR`, and tracing-journald maps `ERROR` to journald
//! priority 3 (err). An alarm must be `crit` (2), so alarm events use their own target,
//! [`ALARM_TARGET`]: the journald sink sends that target through a second journald layer
//! whose `ERROR` maps to `Priority::Critical` and keeps it away from the ordinary layer (see
//! `logging`). In human and JSON output an alarm is an `ERROR` line whose target is
//! `renewd::alarm` and whose `alarm` field says which alarm it is.
//!
//! When it is raised: each time a renewal job starts at critical urgency (the first
//! critical attempt and every retry), the issuer sends `IssuerEvent::ExpiryDanger` and the
//! daemon's bridge calls [`log_expiry_danger`] with the certificate's last stored error (or
//! `renewing at critical urgency with every CA` when none is stored). The alarm is only
//! this log event: the bridge sets the `renewd_certificate_expiry_danger` gauge on its own
//! (from the urgency, at start and after each job too), and the failure hooks are the
//! issuer's, run after a failed attempt. A `renewd renew` pass without a daemon calls it
//! too, when a renewal it ran at critical urgency failed (with that attempt's error).

use chrono::{DateTime, SecondsFormat, Utc};
use renewd_core::{CertName, Urgency};

use crate::log_fields::{ALARM, ALARM_TARGET, CERT_NAME, NOT_AFTER, REMAINING_SECONDS, URGENCY};

/// The `alarm` field of [`log_expiry_danger`]'s event.
pub const EXPIRY_DANGER: &str = "expiry_danger";

/// Logs, at journald priority crit, that `cert` (expiring at `not_after`, or missing when
/// `None`) is in danger: its renewal failed with `last_error` while urgency is `urgency`.
pub fn log_expiry_danger(
    cert: &CertName,
    not_after: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    urgency: Urgency,
    last_error: &str,
) {
    let remaining = not_after.map(|t| (t - now).num_seconds());
    let not_after_text = not_after.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
    let when = match remaining {
        None => "has no valid certificate installed".to_string(),
        Some(s) if s <= 0 => format!("expired {} ago", human_span(s.unsigned_abs())),
        Some(s) => format!("expires in {}", human_span(s.unsigned_abs())),
    };
    // `event!` rather than `error!`: the level macros do not take `{ CONST }` field names.
    tracing::event!(
        target: ALARM_TARGET,
        tracing::Level::ERROR,
        { ALARM } = EXPIRY_DANGER,
        { CERT_NAME } = %cert,
        { NOT_AFTER } = not_after_text.as_deref(),
        { REMAINING_SECONDS } = remaining,
        { URGENCY } = %urgency,
        "certificate {cert} {when} and its renewal is failing: {last_error}"
    );
}

/// `3d 4h`, `5h 12m`, `42m`, `17s`: two units at most.
fn human_span(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use tracing::Level;

    use super::*;
    use crate::test_support::capture;

    #[test]
    fn spans_read_well() {
        assert_eq!(human_span(17), "17s");
        assert_eq!(human_span(42 * 60 + 5), "42m");
        assert_eq!(human_span(5 * 3600 + 12 * 60), "5h 12m");
        assert_eq!(human_span(3 * 86_400 + 4 * 3600 + 59), "3d 4h");
    }

    #[test]
    fn expiry_danger_is_an_alarm_target_error_with_fields() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let cert = CertName::new("www").unwrap();
        let events = capture(|| {
            log_expiry_danger(
                &cert,
                Some(now + TimeDelta::hours(30)),
                now,
                Urgency::Critical,
                "finalize: 504",
            );
            log_expiry_danger(&cert, None, now, Urgency::Critical, "rate limited");
        });
        assert_eq!(events.len(), 2);
        let e = &events[0];
        assert_eq!(e.target, ALARM_TARGET);
        assert_eq!(e.level, Level::ERROR);
        assert_eq!(e.field(ALARM), Some("expiry_danger"));
        assert_eq!(e.field(CERT_NAME), Some("www"));
        assert_eq!(e.field(NOT_AFTER), Some("2023-11-16T04:13:20Z"));
        assert_eq!(e.field(REMAINING_SECONDS), Some("108000"));
        assert_eq!(e.field(URGENCY), Some("critical"));
        assert_eq!(
            e.field("message"),
            Some("certificate www expires in 1d 6h and its renewal is failing: finalize: 504")
        );
        let missing = &events[1];
        assert_eq!(missing.field(NOT_AFTER), None);
        assert_eq!(
            missing.field("message"),
            Some(
                "certificate www has no valid certificate installed and its renewal is failing: rate limited"
            )
        );
    }
}
