//! A job that cannot start for reasons that are not its own failure — every CA it may use
//! is in another job's half-open trial, has an open circuit or rate-limited renewd, or the
//! CA of its pending order is in that state — is deferred: `next_attempt` moves to when it
//! may go on (never earlier than a back-off in force), and nothing else changes. No failure
//! streak, back-off step, `last_error` or failure hook: the CAs' trouble is reported by
//! their circuits and blocks, not once per certificate waiting on them.

use chrono::{DateTime, Utc};

use crate::job::Run;
use crate::pool::JobResult;
use crate::setback::one_line;

/// Defers the job until `until` because of `why`.
pub(crate) fn defer(run: &Run<'_>, until: DateTime<Utc>, why: &str) -> JobResult {
    let why = one_line(why);
    let result = run.inner.store.update_cert_state(&run.cert.name, &mut |s| {
        s.next_attempt = Some(s.next_attempt.map_or(until, |t| t.max(until)));
    });
    let until = match result {
        Ok(state) => state.next_attempt.unwrap_or(until),
        Err(e) => {
            tracing::error!(cert_name = %run.cert.name, error = %e,
                "could not store the deferred attempt's time");
            until
        }
    };
    tracing::info!(cert_name = %run.cert.name, urgency = %run.job.urgency,
        next_attempt = %until.to_rfc3339(), "renewal deferred: {why}");
    JobResult::Deferred { until, reason: why }
}
