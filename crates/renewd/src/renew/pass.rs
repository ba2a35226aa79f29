//! `renewd renew` without a daemon: the pass in this process.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use renewd_config::Config;
use renewd_core::{CertName, RenewalJob, RenewalReason, SeenInstalled, SystemClock, Urgency};
use renewd_issuer::{Issuer, IssuerParts, JobResult, event_channel};
use renewd_local::ChallengeSolvers;
use renewd_scheduler::{Circuits, urgency};
use renewd_store::{CertState, CertStore, StateStore};
use tokio_util::sync::CancellationToken;

use super::Report;
use crate::alarm::log_expiry_danger;
use crate::engine::outcome::{CertOutcome, RenewResult};
use crate::engine::{LocalHost, issuer_options, plan, solver_map};
use crate::selection::RenewSelection;

/// Renews what `selection` picks, reporting each certificate.
pub async fn run(
    config: &Config,
    selection: &RenewSelection,
    cancel: &CancellationToken,
    report: &mut Report,
) -> anyhow::Result<()> {
    refuse_foreign_state_dir(&config.state_dir)?;
    let config = Arc::new(config.clone());
    let (store, cert_store, inventory, snapshot) = {
        let (config, names) = (config.clone(), selection.certs.clone());
        tokio::task::spawn_blocking(move || {
            let store = plan::open_store(&config).with_context(|| {
                format!("opening the state store in {}", config.state_dir.display())
            })?;
            let snapshot = store.status_snapshot().context("reading the state store")?;
            let cert_store = CertStore::new(&config.state_dir);
            let inventory = plan::scan(&cert_store, plan::certs_named(&config, &names));
            anyhow::Ok((store, cert_store, inventory, snapshot))
        })
        .await
        .context("opening the store")??
    };
    let circuits = Circuits::from_health(&snapshot.cas);
    let policy = plan::schedule_policy(&config);
    let now = Utc::now();
    let states: HashMap<&CertName, &CertState> =
        snapshot.certs.iter().map(|s| (&s.cert, s)).collect();
    let mut jobs = Vec::new();
    let mut danger = HashMap::new();
    for cert in plan::certs_named(&config, &selection.certs) {
        let state = states.get(&cert.name).copied();
        let (view, decision) = plan::decision(
            &config,
            cert,
            state,
            inventory.get(&cert.name),
            &circuits,
            now,
        );
        let job = |reason, urgency| RenewalJob {
            cert: cert.name.clone(),
            reason,
            urgency,
            only_ca: selection.only_ca.clone(),
            seen_installed: SeenInstalled::from_serial(
                state
                    .and_then(|s| s.installed.as_ref())
                    .map(|i| i.serial.as_str()),
            ),
        };
        let not_after = view.installed.as_ref().map(|v| v.not_after);
        if selection.force {
            let u = urgency(view.installed.as_ref(), view.problem, &policy, now);
            danger.insert(cert.name.clone(), (u, not_after));
            jobs.push(job(RenewalReason::Forced, u));
        } else if decision.renewal.due <= now {
            // Due: renewed now even when backing off after failures - the operator asked.
            // Open circuits and CA rate limits still hold inside the job.
            danger.insert(cert.name.clone(), (decision.renewal.urgency, not_after));
            jobs.push(job(decision.renewal.reason, decision.renewal.urgency));
        } else {
            report.outcome(&CertOutcome {
                cert: cert.name.clone(),
                result: RenewResult::NotDue {
                    next_renewal: decision.renewal.at,
                },
            });
        }
    }
    if jobs.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = jobs.iter().map(|j| j.cert.as_str()).collect();
    tracing::info!(certs = %names.join(" "), "renewing");

    let stop = CancellationToken::new();
    let _stop_responders = stop.clone().drop_guard();
    let solvers = ChallengeSolvers::start(&config, &stop)
        .await
        .context("starting the challenge responders (is a daemon holding their ports?)")?;
    let store: Arc<dyn StateStore> = Arc::new(store);
    let (events, _) = event_channel(64);
    let issuer = Issuer::new(IssuerParts {
        config: (*config).clone(),
        store,
        cert_store,
        clock: Arc::new(SystemClock),
        solvers: solver_map(&solvers),
        host_actions: Arc::new(LocalHost::default()),
        events,
        options: issuer_options(None),
    })
    .context("setting up the CAs")?;
    for (cert, result) in issuer.run_once(jobs, cancel.clone()).await {
        if let Some((urgency, not_after)) = danger.get(&cert) {
            alarm_if_in_danger(&cert, *urgency, *not_after, &result, Utc::now());
        }
        report.outcome(&CertOutcome {
            cert,
            result: RenewResult::of_job(result),
        });
    }
    Ok(())
}

/// The crit alarm the daemon would raise for this certificate: a renewal at critical
/// urgency that failed. (The daemon raises it as each critical job starts, with the last
/// stored error; a pass has the error of the attempt just made.)
fn alarm_if_in_danger(
    cert: &CertName,
    urgency: Urgency,
    not_after: Option<DateTime<Utc>>,
    result: &JobResult,
    now: DateTime<Utc>,
) {
    if urgency != Urgency::Critical {
        return;
    }
    if let JobResult::Failed { message, .. } = result {
        log_expiry_danger(cert, not_after, now, urgency, message);
    }
}

/// Root running the pass on a state directory that belongs to the daemon's user would leave
/// root-owned database and certificate files the daemon can no longer write: refused, with
/// the command that works.
fn refuse_foreign_state_dir(state_dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let owner = match std::fs::metadata(state_dir) {
        Ok(m) => m.uid(),
        // Not created yet: this pass creates it, as this user.
        Err(_) => return Ok(()),
    };
    if me == Some(0) && owner != 0 {
        anyhow::bail!(
            "no daemon is running, and {} belongs to uid {owner}: run the pass as that user \
             (e.g. runuser -u renewd -- renewd renew …) so the files it writes stay the \
             daemon's",
            state_dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use renewd_core::FailureClass;

    use super::*;
    use crate::log_fields::{ALARM, ALARM_TARGET, CERT_NAME};
    use crate::test_support::capture;

    fn failed() -> JobResult {
        JobResult::Failed {
            class: FailureClass::CaUnavailable,
            ca: None,
            message: "zerossl: finalize: 504".into(),
        }
    }

    #[test]
    fn a_failed_critical_renewal_raises_the_crit_alarm() {
        let www = CertName::new("www").unwrap();
        let now = Utc::now();
        let not_after = Some(now + TimeDelta::hours(20));
        let events = capture(|| {
            alarm_if_in_danger(&www, Urgency::Critical, not_after, &failed(), now);
        });
        let alarm = events
            .iter()
            .find(|e| e.target == ALARM_TARGET)
            .expect("an alarm event");
        assert_eq!(alarm.field(ALARM), Some("expiry_danger"));
        assert_eq!(alarm.field(CERT_NAME), Some("www"));
        assert!(
            alarm
                .field("message")
                .is_some_and(|m| m.ends_with("its renewal is failing: zerossl: finalize: 504")),
            "{alarm:?}"
        );
    }

    #[test]
    fn no_alarm_below_critical_or_without_a_failure() {
        let www = CertName::new("www").unwrap();
        let now = Utc::now();
        let deferred = JobResult::Deferred {
            until: now,
            reason: "no CA can take an order now".into(),
        };
        let events = capture(|| {
            alarm_if_in_danger(&www, Urgency::Urgent, None, &failed(), now);
            alarm_if_in_danger(&www, Urgency::Critical, None, &deferred, now);
        });
        assert!(
            events.iter().all(|e| e.target != ALARM_TARGET),
            "{events:?}"
        );
    }
}
