//! Where the issuer's answers go: each [`WorkDone`] to the scheduler (and to whoever waits
//! for that certificate on the control socket), each [`IssuerEvent`] to the scheduler, the
//! metrics, the open-circuit list of `STATUS=` and the crit alarm. The issuer itself logs
//! renewals, failures, circuit changes and failed hooks (with the journald field names),
//! so the bridge adds no second line for those.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use renewd_config::Config;
use renewd_core::{CaName, CertName, Clock, Urgency, WorkDone};
use renewd_issuer::IssuerEvent;
use renewd_scheduler::{Circuits, SchedulerCommand};
use renewd_store::{CircuitState, StateStore};
use tokio::sync::{broadcast, mpsc, watch};

use super::plan;
use crate::alarm::log_expiry_danger;
use crate::metrics::{CertTimes, Metrics};

/// CAs whose circuit is open, with the end of their cool-down: the tail of `STATUS=`.
pub type OpenCircuits = BTreeMap<CaName, Option<DateTime<Utc>>>;

/// What the bridge reads and writes.
pub struct Bridge {
    pub store: Arc<dyn StateStore>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    /// The config in force (replaced on reload).
    pub config: watch::Receiver<Arc<Config>>,
    pub scheduler: mpsc::Sender<SchedulerCommand>,
    /// Every `WorkDone`, for the control socket's waiting requests.
    pub finished: broadcast::Sender<WorkDone>,
    pub open_circuits: watch::Sender<OpenCircuits>,
}

impl Bridge {
    /// Forwards until the issuer has ended (its `done` channel closes); events that arrive
    /// meanwhile are handled as they come. Ends when both inputs are closed.
    pub async fn run(
        self,
        mut done: mpsc::Receiver<WorkDone>,
        mut events: broadcast::Receiver<IssuerEvent>,
    ) {
        let mut events_open = true;
        loop {
            tokio::select! {
                next = done.recv() => match next {
                    Some(d) => self.work_done(d).await,
                    None => break,
                },
                event = events.recv(), if events_open => match event {
                    Ok(e) => self.event(e).await,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("{n} issuer events were lost; reading the CAs' circuits again");
                        self.reread_circuits().await;
                    }
                    Err(broadcast::error::RecvError::Closed) => events_open = false,
                },
            }
        }
    }

    async fn work_done(&self, done: WorkDone) {
        let cert = done.cert.clone();
        // The scheduler may have stopped already (shutdown): nothing to tell it then.
        let _ = self
            .scheduler
            .send(SchedulerCommand::WorkDone(done.clone()))
            .await;
        let _ = self.finished.send(done);
        self.cert_metrics(&cert);
    }

    async fn event(&self, event: IssuerEvent) {
        match event {
            IssuerEvent::CircuitChanged {
                ca,
                state,
                open_until,
            } => {
                self.metrics.set_circuit(&ca, state, open_until);
                self.open_circuits.send_modify(|open| {
                    if state == CircuitState::Open {
                        open.insert(ca.clone(), open_until);
                    } else {
                        open.remove(&ca);
                    }
                });
                let _ = self
                    .scheduler
                    .send(SchedulerCommand::CircuitChanged(ca))
                    .await;
            }
            IssuerEvent::Renewed { cert, .. } => {
                self.metrics.set_expiry_danger(&cert, false);
                self.cert_metrics(&cert);
            }
            IssuerEvent::ExpiryDanger {
                cert,
                urgency,
                not_after,
            } => {
                self.metrics.set_expiry_danger(&cert, true);
                let last_error = self
                    .store
                    .cert_state(&cert)
                    .ok()
                    .flatten()
                    .and_then(|s| s.last_error)
                    .map_or_else(
                        || "renewing at critical urgency with every CA".to_string(),
                        |e| e.message,
                    );
                log_expiry_danger(&cert, not_after, self.clock.now(), urgency, &last_error);
            }
            // Logged by the issuer with their fields; the store holds the rest (a job's
            // result goes to the control socket, which listens itself).
            IssuerEvent::Failed { .. }
            | IssuerEvent::JobEnded { .. }
            | IssuerEvent::HookFailed { .. }
            | IssuerEvent::CaBlocked { .. } => {}
            other => tracing::debug!(event = ?other, "issuer event"),
        }
    }

    /// Sets a certificate's time series from the store.
    pub fn cert_metrics(&self, cert: &CertName) {
        let config = self.config.borrow().clone();
        cert_metrics(
            self.store.as_ref(),
            &self.metrics,
            &config,
            cert,
            self.clock.now(),
        );
    }

    async fn reread_circuits(&self) {
        let config = self.config.borrow().clone();
        let mut open = OpenCircuits::new();
        for ca in &config.cas {
            if let Ok(Some(h)) = self.store.ca_health(&ca.name) {
                self.metrics.set_circuit(&ca.name, h.circuit, h.open_until);
                if h.circuit == CircuitState::Open {
                    open.insert(ca.name.clone(), h.open_until);
                }
                let _ = self
                    .scheduler
                    .send(SchedulerCommand::CircuitChanged(ca.name.clone()))
                    .await;
            }
        }
        self.open_circuits.send_replace(open);
    }
}

/// Sets a certificate's series from the store: notAfter, last success, the next attempt as
/// the scheduler's rule decides it, the expiry danger (its urgency now is critical) and the
/// failure streak.
pub fn cert_metrics(
    store: &dyn StateStore,
    metrics: &Metrics,
    config: &Config,
    cert: &CertName,
    now: DateTime<Utc>,
) {
    let state = match store.cert_state(cert) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(cert_name = %cert, error = %e, "cannot read the certificate's state for metrics");
            return;
        }
    };
    let health: Vec<_> = config
        .cas
        .iter()
        .filter_map(|ca| store.ca_health(&ca.name).ok().flatten())
        .collect();
    let circuits = Circuits::from_health(&health);
    if let Some(cert) = config.cert(cert) {
        set_cert_metrics(metrics, config, cert, state.as_ref(), &circuits, now);
    }
}

/// Sets every configured certificate's series from one snapshot of the store (start and
/// reload: one read, however many certificates). At start this is what sets the expiry
/// danger of a certificate already critical, before any job for it has run.
pub fn all_cert_metrics(
    store: &dyn StateStore,
    metrics: &Metrics,
    config: &Config,
    now: DateTime<Utc>,
) {
    let snapshot = match store.status_snapshot() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the store for the certificates' metrics");
            return;
        }
    };
    let circuits = Circuits::from_health(&snapshot.cas);
    let states: std::collections::HashMap<&CertName, &renewd_store::CertState> =
        snapshot.certs.iter().map(|s| (&s.cert, s)).collect();
    for cert in &config.certs {
        let state = states.get(&cert.name).copied();
        set_cert_metrics(metrics, config, cert, state, &circuits, now);
    }
}

fn set_cert_metrics(
    metrics: &Metrics,
    config: &Config,
    cert: &renewd_config::CertConfig,
    state: Option<&renewd_store::CertState>,
    circuits: &Circuits,
    now: DateTime<Utc>,
) {
    let (view, decision) = plan::decision(config, cert, state, None, circuits, now);
    let urgency_now = renewd_scheduler::urgency(
        view.installed.as_ref(),
        view.problem,
        &plan::schedule_policy(config),
        now,
    );
    metrics.set_expiry_danger(&cert.name, urgency_now == Urgency::Critical);
    metrics.set_failure_streak(&cert.name, state.map_or(0, |s| s.failure_streak));
    metrics.set_cert(
        &cert.name,
        CertTimes {
            not_after: view.installed.map(|v| v.not_after),
            next_attempt: Some(decision.renewal.at),
            last_success: state.and_then(|s| s.last_success),
        },
    );
}

#[cfg(test)]
#[path = "bridge_tests.rs"]
mod tests;
