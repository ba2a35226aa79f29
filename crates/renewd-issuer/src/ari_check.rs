//! [`Work::AriCheck`](renewd_core::Work): ask the CA that issued the installed certificate
//! for its renewal window (RFC 9773) and store it with the time to ask again: `Retry-After`
//! clamped to [1 min, 1 day], on an answer and on an error alike; without one, after a 5xx
//! or timeout an exponential back-off, after other errors about 6 hours. A `429` (or a
//! `rateLimited` problem) blocks the whole CA like any rate limit (`Retry-After` within
//! [5 min, 7 days]) and the next check waits for the block's end. While the CA is blocked
//! or its circuit is open (cool-down running), nothing is sent: the check is put off to
//! when the CA may be asked again. No `renewalInfo` in the directory (or ARI off in the
//! config, or nothing installed by renewd, or its CA no longer configured): the state is
//! marked `not_offered_at`, and the scheduler plans no more checks for that certificate
//! until the config is loaded again (a reload may bring the CA back, and a probe refreshes
//! the directory, which may now offer `renewalInfo`). Requests are ledger rows (step
//! `renewal_info`); they never move the circuit.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use renewd_acme::{CertId, Error};
use renewd_core::{Backoff, CertName, FailureClass};
use renewd_store::{AriState, CaHealth};

use crate::attempt::rate_limit_block;
use crate::breaker::after;
use crate::health::HealthBook;
use crate::ledger::Ledger;
use crate::pool::Inner;

const MIN_RETRY: Duration = Duration::from_secs(60);
const MAX_RETRY: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_RETRY: Duration = Duration::from_secs(6 * 3600);
/// After failed checks: 1 min, 2 min, 4 min, … up to 6 h.
const FAILURE_BACKOFF: Backoff = Backoff {
    first: Duration::from_secs(60),
    factor: 2,
    max: DEFAULT_RETRY,
};

/// The time to ask again after an answer carrying `retry_after` (a time on the system
/// clock), on the issuer's clock.
pub(crate) fn next_check(
    now: DateTime<Utc>,
    retry_after: Option<DateTime<Utc>>,
    system_now: DateTime<Utc>,
) -> DateTime<Utc> {
    let wait = match retry_after {
        Some(at) => whole_seconds(at - system_now).clamp(MIN_RETRY, MAX_RETRY),
        None => DEFAULT_RETRY,
    };
    after(now, wait)
}

/// When `health`'s CA may be asked again, if not now: the end of its rate-limit block or of
/// its open circuit's cool-down (the later of the two), with why.
fn unusable_until(health: &CaHealth, now: DateTime<Utc>) -> Option<(DateTime<Utc>, String)> {
    let blocked = health.blocked_until.filter(|t| *t > now);
    let open = health.effective_open_until(now);
    let (until, why) = match (blocked, open) {
        (Some(b), Some(o)) if o > b => (o, "its circuit is open"),
        (Some(b), _) => (b, "it rate-limited renewd"),
        (None, Some(o)) => (o, "its circuit is open"),
        (None, None) => return None,
    };
    Some((until, format!("{why} until {}", until.to_rfc3339())))
}

/// A delay stated in whole seconds (as `Retry-After` is), measured a few milliseconds
/// after it was stated: rounded up to the second again.
pub(crate) fn whole_seconds(d: TimeDelta) -> Duration {
    let d = d.to_std().unwrap_or(Duration::ZERO);
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    Duration::from_secs(secs)
}

pub(crate) async fn check(inner: &Arc<Inner>, cert: &CertName) {
    let generation = inner.generation();
    let config = &generation.config;
    let state = match inner.store.cert_state(cert) {
        Ok(Some(s)) => s,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(cert_name = %cert, step = "renewal_info", error = %e,
                "could not read the certificate's state");
            return;
        }
    };
    let now = inner.clock.now();
    let not_offered = |a: &mut AriState| {
        *a = AriState {
            not_offered_at: Some(now),
            ..AriState::default()
        }
    };
    let Some(installed) = state.installed else {
        return store(inner, cert, None, not_offered);
    };
    let target = installed
        .issuer_ca
        .as_ref()
        .zip(installed.ari_cert_id.as_ref())
        .and_then(|(ca, id)| Some((generation.cas.get(ca)?, id.parse::<CertId>().ok()?)));
    let Some((rt, cert_id)) = target.filter(|_| config.renewal.ari) else {
        return store(inner, cert, Some(&installed.serial), not_offered);
    };
    let ca = rt.name();
    let serial = Some(installed.serial.as_str());
    match inner.store.ca_health(ca) {
        Ok(Some(health)) => {
            if let Some((until, why)) = unusable_until(&health, now) {
                tracing::info!(cert_name = %cert, ca = %ca, step = "renewal_info",
                    next_check = %until.to_rfc3339(),
                    "renewal information not asked for now: {why}");
                return store(inner, cert, serial, |a| a.next_check = Some(until));
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(cert_name = %cert, ca = %ca, step = "renewal_info", error = %e,
                "could not read the CA's health");
            return;
        }
    }
    let ledger = Ledger::new(inner, ca.clone(), Some(cert.clone()));
    if let Some(url) = &installed.account_url {
        ledger.set_account(url);
    }
    let client = rt.client.with_observer(ledger.observer());
    let result = client.renewal_info(&cert_id).await;
    let now = inner.clock.now();
    let not_offered = |a: &mut AriState| {
        *a = AriState {
            not_offered_at: Some(now),
            ..AriState::default()
        }
    };
    match result {
        Ok(info) => {
            forget_failures(inner, cert);
            let next = next_check(now, info.retry_after, Utc::now());
            tracing::info!(cert_name = %cert, ca = %ca, step = "renewal_info",
                window_start = %info.window_start.to_rfc3339(),
                window_end = %info.window_end.to_rfc3339(),
                explanation_url = info.explanation_url.as_deref(),
                next_check = %next.to_rfc3339(), "renewal window");
            store(inner, cert, serial, |a| {
                *a = AriState {
                    window_start: Some(info.window_start),
                    window_end: Some(info.window_end),
                    explanation_url: info.explanation_url.clone(),
                    next_check: Some(next),
                    not_offered_at: None,
                };
            });
        }
        Err(Error::Unsupported { .. }) => {
            tracing::info!(cert_name = %cert, ca = %ca, step = "renewal_info",
                "the CA offers no renewal information");
            store(inner, cert, serial, not_offered);
        }
        Err(e) => {
            let class = e.class();
            let wait = if class == FailureClass::CaUnavailable {
                let failures = {
                    let mut map = inner
                        .ari_failures
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let n = map.entry(cert.clone()).or_insert(0);
                    *n = n.saturating_add(1);
                    *n
                };
                FAILURE_BACKOFF.delay(failures)
            } else {
                forget_failures(inner, cert);
                DEFAULT_RETRY
            };
            let next = match class {
                FailureClass::RateLimited { retry_after } => {
                    // Like any rate limit: the whole CA is left alone until its end, and
                    // this certificate asks again no earlier.
                    let end = after(
                        now,
                        rate_limit_block(retry_after.or(e.retry_after()), Utc::now()),
                    );
                    HealthBook {
                        store: inner.store.as_ref(),
                        clock: inner.clock.as_ref(),
                        events: &inner.events,
                        policy: &config.breaker,
                        trials: &inner.trials,
                    }
                    .block(ca, end);
                    end
                }
                // The CA said when to ask again.
                _ if e.retry_after().is_some() => next_check(now, e.retry_after(), Utc::now()),
                _ => after(now, wait),
            };
            tracing::warn!(cert_name = %cert, ca = %ca, step = "renewal_info",
                class = %e.class(), http_status = e.http_status(), problem_type = e.problem_type(),
                next_check = %next.to_rfc3339(), "renewal information unavailable: {e}");
            store(inner, cert, serial, |a| a.next_check = Some(next));
        }
    }
}

fn forget_failures(inner: &Inner, cert: &CertName) {
    inner
        .ari_failures
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(cert);
}

/// Changes the ARI state, unless the installed certificate changed meanwhile (a renewal
/// reset it for the new certificate).
fn store(inner: &Inner, cert: &CertName, serial: Option<&str>, change: impl Fn(&mut AriState)) {
    let result = inner.store.update_cert_state(cert, &mut |s| {
        let installed = s.installed.as_ref().map(|i| i.serial.as_str());
        if installed == serial {
            change(&mut s.ari);
        }
    });
    if let Err(e) = result {
        tracing::error!(cert_name = %cert, step = "renewal_info", error = %e,
            "could not store the renewal window");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_clamped_and_defaults_to_six_hours() {
        let now = DateTime::from_timestamp(1_750_000_000, 0).unwrap();
        let sys = DateTime::from_timestamp(1_000_000_000, 0).unwrap();
        let at = |secs: i64| Some(sys + TimeDelta::seconds(secs));
        assert_eq!(next_check(now, at(5), sys), now + TimeDelta::minutes(1));
        assert_eq!(next_check(now, at(-50), sys), now + TimeDelta::minutes(1));
        assert_eq!(next_check(now, at(7200), sys), now + TimeDelta::hours(2));
        assert_eq!(
            next_check(now, at(9_999_999), sys),
            now + TimeDelta::days(1)
        );
        assert_eq!(next_check(now, None, sys), now + TimeDelta::hours(6));
        // Measured a little after the answer: still the whole seconds it said.
        let late = sys + TimeDelta::milliseconds(3);
        assert_eq!(next_check(now, at(7200), late), now + TimeDelta::hours(2));
        let steps: Vec<u64> = (1..=10)
            .map(|n| FAILURE_BACKOFF.delay(n).as_secs() / 60)
            .collect();
        assert_eq!(steps, [1, 2, 4, 8, 16, 32, 64, 128, 256, 360]);
    }
}
