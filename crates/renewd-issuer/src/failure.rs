//! After a failed renewal: the certificate's back-off and `last_error` in the store, the
//! failure hooks (once per failure streak, and again whenever the urgency rises above the
//! one last alerted about), and the `Failed` event.

use chrono::{DateTime, Utc};
use renewd_core::{Backoff, CaName, FailureClass, Urgency};
use renewd_store::LastError;

use crate::breaker::after;
use crate::events::{HookKind, IssuerEvent};
use crate::host::FailureNotice;
use crate::job::Run;
use crate::pool::JobResult;
use crate::setback::{Setback, one_line};

/// The spread of the back-off (±10 %), so certificates failing together spread out.
const JITTER: f64 = 0.1;

/// How soon an urgent or critical job tries again when the CA it failed at is now judged
/// down (its circuit is open) and the certificate lists another CA: the next attempt fails
/// over, so waiting out the back-off would only spend the deadline.
const FAILOVER_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// Records the failure that decided a job and returns its result.
pub(crate) async fn record(run: &Run<'_>, setback: &Setback, ca: Option<&CaName>) -> JobResult {
    let now = run.inner.clock.now();
    let urgency = run.job.urgency;
    let backoff = Backoff::with_max(run.config.renewal.max_backoff);
    let unit = fastrand::f64();
    // Not before a CA this job could use accepts orders again, when none does now.
    let floor = run.earliest_usable(now);
    let failover_soon = urgency >= Urgency::Urgent
        && setback.class.allows_failover()
        && run.cert.cas.len() > 1
        && ca.is_some_and(|ca| run.circuit_open(ca));
    let message = match ca {
        Some(ca) => one_line(&format!("{ca}: {}", setback.message)),
        None => one_line(&setback.message),
    };
    let mut alert = false;
    let mut streak = 0;
    let mut not_after = None;
    let result = run.inner.store.update_cert_state(&run.cert.name, &mut |s| {
        s.failure_streak = s.failure_streak.saturating_add(1);
        s.backoff_step = s.backoff_step.saturating_add(1);
        s.failing_since.get_or_insert(now);
        s.last_error = Some(LastError {
            class: setback.class.outcome(),
            message: message.clone(),
            at: now,
        });
        let mut delay = backoff.jittered(s.backoff_step, JITTER, unit);
        if let Some(within) = setback.retry_within {
            delay = delay.min(within);
        }
        if failover_soon {
            delay = delay.min(FAILOVER_RETRY);
        }
        let mut next = after(now, delay);
        if let Some(floor) = floor {
            next = next.max(floor);
        }
        s.next_attempt = Some(next);
        alert = s.failure_streak == 1 || s.urgency_alerted.is_none_or(|u| urgency > u);
        if alert {
            s.urgency_alerted = Some(s.urgency_alerted.map_or(urgency, |u| u.max(urgency)));
        }
        streak = s.failure_streak;
        not_after = s.installed.as_ref().map(|i| i.not_after);
    });
    let next_attempt = match result {
        Ok(state) => state.next_attempt,
        Err(e) => {
            tracing::error!(cert_name = %run.cert.name, error = %e,
                "could not record the failure in the state store");
            None
        }
    };
    let ca_label = ca.map(CaName::as_str);
    let next = next_attempt.map(|t| t.to_rfc3339());
    if urgency == Urgency::Critical {
        tracing::error!(cert_name = %run.cert.name, ca = ca_label, step = %setback.step,
            class = %setback.class, urgency = %urgency, failure_streak = streak,
            next_attempt = next.as_deref(), "renewal failed at critical urgency: {message}");
    } else {
        tracing::warn!(cert_name = %run.cert.name, ca = ca_label, step = %setback.step,
            class = %setback.class, urgency = %urgency, failure_streak = streak,
            next_attempt = next.as_deref(), "renewal failed: {message}");
    }
    let _ = run.inner.events.send(IssuerEvent::Failed {
        cert: run.cert.name.clone(),
        class: setback.class,
        urgency,
        message: message.clone(),
    });
    if alert {
        failure_hooks(run, setback.class, ca, &message, streak, not_after).await;
    }
    JobResult::Failed {
        class: setback.class,
        ca: ca.cloned(),
        message,
    }
}

async fn failure_hooks(
    run: &Run<'_>,
    class: FailureClass,
    ca: Option<&CaName>,
    message: &str,
    streak: u32,
    not_after: Option<DateTime<Utc>>,
) {
    let notice = FailureNotice {
        cert: run.cert.name.clone(),
        domains: run.cert.domains.clone(),
        ca: ca.cloned(),
        class,
        urgency: run.job.urgency,
        message: message.to_string(),
        failure_streak: streak,
        not_after,
        config: run.cert.clone(),
        hooks: run
            .cert
            .failure_hook
            .iter()
            .chain(run.config.hooks.failure.iter())
            .cloned()
            .collect(),
        timeout: run.config.hooks.timeout,
    };
    if let Err(e) = run.inner.host.failure(&notice).await {
        let message = one_line(&format!("failure hook: {e}"));
        tracing::error!(cert_name = %run.cert.name, class = "local", "{message}");
        let _ = run.inner.events.send(IssuerEvent::HookFailed {
            cert: run.cert.name.clone(),
            hook: HookKind::Failure,
            message,
        });
    }
}
