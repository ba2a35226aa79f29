//! The [`Issuer`]: the worker pool the scheduler feeds. It owns the per-CA runtimes (a
//! [`Generation`], swapped on reload), the shared state of its jobs, and the loop that takes
//! [`Work`] from the scheduler, runs at most `daemon.workers` jobs at once, and answers each
//! with [`WorkDone`] once the outcome is in the store.
//!
//! Shutdown: when the token given to [`Issuer::run`] is cancelled, no new work is taken;
//! jobs in flight go on until they reach a persisted point (a job whose pending order is
//! saved stops at once — the next start resumes the order; a job still creating its order
//! stops right after saving it) or until `daemon.shutdown_grace` has passed, when they are
//! aborted. Leases and trial slots are released either way.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use renewd_acme::ChallengeSolver;
use renewd_config::Config;
use renewd_core::{
    CaName, CertName, ChallengeType, Clock, FailureClass, RenewalJob, Work, WorkDone,
};
use renewd_store::{CertStore, PendingKeys, StateStore};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::ca_runtime::Generation;
use crate::error::IssuerError;
use crate::events::{EventSender, IssuerEvent};
use crate::health::TrialSlots;
use crate::host::HostActions;
use crate::lease::BusySet;
use crate::options::IssuerOptions;

/// The challenge solvers, by the challenge type they answer.
pub type Solvers = HashMap<ChallengeType, Arc<dyn ChallengeSolver>>;

/// Everything the issuer is built from.
pub struct IssuerParts {
    /// The validated config.
    pub config: Config,
    /// The state store (ledger, CA health, certificate state, leases, accounts).
    pub store: Arc<dyn StateStore>,
    /// The certificate file store (normally `CertStore::new(&config.state_dir)`).
    pub cert_store: CertStore,
    /// Where "now" comes from (circuit cool-downs, back-offs, ledger times).
    pub clock: Arc<dyn Clock>,
    /// Challenge solvers by type.
    pub solvers: Solvers,
    /// Hooks and the served-certificate check.
    pub host_actions: Arc<dyn HostActions>,
    /// Where events go.
    pub events: EventSender,
    /// Knobs beyond the config file.
    pub options: IssuerOptions,
}

impl fmt::Debug for IssuerParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerParts")
            .field("solvers", &self.solvers.keys().collect::<Vec<_>>())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// How one renewal ended.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum JobResult {
    /// Issued and installed.
    Renewed {
        /// The CA that issued it.
        ca: CaName,
        /// Its serial, lower-case hex.
        serial: String,
        /// Its notAfter.
        not_after: DateTime<Utc>,
        /// What went wrong after the install (deploy hook, copy-out, served check).
        warnings: Vec<String>,
    },
    /// Not renewed; the store holds the back-off and `last_error`.
    Failed {
        /// The class of the failure that decided the outcome.
        class: FailureClass,
        /// The CA of that failure, when one was involved.
        ca: Option<CaName>,
        /// One line.
        message: String,
    },
    /// Another job (this process or another) holds the certificate; nothing was done.
    Busy,
    /// No CA the job may use can take an order yet (another job's half-open trial, an open
    /// circuit, a rate limit), or its pending order's CA cannot: the job waits until
    /// `until` (the store's `next_attempt`). Not a failure: no streak, back-off or hook.
    Deferred {
        /// When it may go on.
        until: DateTime<Utc>,
        /// Why, in one line.
        reason: String,
    },
    /// Another process installed a new certificate after this job was dispatched (the
    /// installed serial differs from [`RenewalJob::seen_installed`]); nothing was done and
    /// nothing is recorded as a failure.
    AlreadyRenewed {
        /// The serial installed now.
        serial: String,
    },
    /// Shutdown stopped the job at a persisted point; nothing was recorded as a failure.
    Interrupted,
    /// The certificate is not in the config (any more).
    NotConfigured,
}

impl JobResult {
    /// Whether a certificate was installed.
    pub fn is_renewed(&self) -> bool {
        matches!(self, JobResult::Renewed { .. })
    }
}

/// What the jobs share.
pub(crate) struct Inner {
    pub(crate) store: Arc<dyn StateStore>,
    pub(crate) cert_store: CertStore,
    pub(crate) clock: Arc<dyn Clock>,
    solvers: RwLock<Solvers>,
    pub(crate) host: Arc<dyn HostActions>,
    pub(crate) events: EventSender,
    pub(crate) options: IssuerOptions,
    generation: RwLock<Arc<Generation>>,
    pub(crate) busy: Arc<BusySet>,
    pub(crate) trials: Arc<TrialSlots>,
    /// Consecutive failed ARI checks per certificate (for their back-off).
    pub(crate) ari_failures: Mutex<HashMap<CertName, u32>>,
}

impl Inner {
    pub(crate) fn generation(&self) -> Arc<Generation> {
        self.generation
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The solver for `challenge` now (an attempt keeps the one it took).
    pub(crate) fn solver(&self, challenge: ChallengeType) -> Option<Arc<dyn ChallengeSolver>> {
        self.solvers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&challenge)
            .cloned()
    }

    pub(crate) fn pending_keys(&self, config: &Config) -> PendingKeys {
        PendingKeys::new(&config.state_dir)
    }

    async fn work(self: &Arc<Self>, work: Work, soft: &CancellationToken) {
        match work {
            Work::Renew(job) => {
                let result = crate::job::renew(self, &job, soft).await;
                let _ = self.events.send(IssuerEvent::JobEnded {
                    cert: job.cert.clone(),
                    result,
                });
            }
            Work::AriCheck(cert) => crate::ari_check::check(self, &cert).await,
            other => tracing::warn!(work = ?other, "unknown work; ignored"),
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The issuance worker pool. Cheap to clone (clones share everything).
#[derive(Clone)]
pub struct Issuer {
    inner: Arc<Inner>,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer").finish_non_exhaustive()
    }
}

impl Issuer {
    /// Builds the issuer and every CA's client. Fails when a CA's trust roots cannot be used.
    pub fn new(parts: IssuerParts) -> Result<Issuer, IssuerError> {
        let generation = Generation::build(Arc::new(parts.config), &parts.options, None)?;
        Ok(Issuer {
            inner: Arc::new(Inner {
                store: parts.store,
                cert_store: parts.cert_store,
                clock: parts.clock,
                solvers: RwLock::new(parts.solvers),
                host: parts.host_actions,
                events: parts.events,
                options: parts.options,
                generation: RwLock::new(Arc::new(generation)),
                busy: Arc::default(),
                trials: Arc::default(),
                ari_failures: Mutex::default(),
            }),
        })
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.inner.generation().config.clone()
    }

    /// Switches to `config`: CAs added or changed get new runtimes (clients, order limits,
    /// probe caches, accounts looked up again), unchanged ones keep theirs, removed ones go.
    /// Jobs in flight finish with the runtime they started with. On error the old config
    /// stays in force. (`daemon.workers` is read when [`Issuer::run`] starts.)
    pub fn reload(&self, config: Config) -> Result<(), IssuerError> {
        let current = self.inner.generation();
        let next = Generation::build(Arc::new(config), &self.inner.options, Some(&current))?;
        *self
            .inner
            .generation
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        Ok(())
    }

    /// Replaces the challenge solvers (after the daemon restarted its responders on a
    /// reload). Attempts under way keep the solver they took; later ones use these.
    pub fn set_solvers(&self, solvers: Solvers) {
        *self
            .inner
            .solvers
            .write()
            .unwrap_or_else(PoisonError::into_inner) = solvers;
    }

    /// Runs the pool: takes [`Work`] from `work` (at most `daemon.workers` at once), answers
    /// each with a [`WorkDone`] on `done` once its outcome is in the store. Returns when
    /// `shutdown` is cancelled (or `work` is closed) and every job has ended — see the module
    /// docs for how jobs in flight end.
    pub async fn run(
        &self,
        shutdown: CancellationToken,
        mut work: mpsc::Receiver<Work>,
        done: mpsc::Sender<WorkDone>,
    ) {
        let workers = Arc::new(Semaphore::new(self.config().daemon.workers.max(1)));
        let hard = CancellationToken::new();
        let mut tasks = JoinSet::new();
        loop {
            let permit = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                permit = workers.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                next = work.recv() => next,
            };
            let Some(next) = next else { break };
            let (inner, done, soft, hard) = (
                self.inner.clone(),
                done.clone(),
                shutdown.clone(),
                hard.clone(),
            );
            tasks.spawn(async move {
                let _permit = permit;
                let cert = next.cert().clone();
                let was_renewal = matches!(next, Work::Renew(_));
                // Its own task, so a panic or an abort still answers the scheduler; aborted
                // with this task (when `run` itself is dropped).
                let mut job =
                    AbortOnDrop(tokio::spawn(async move { inner.work(next, &soft).await }));
                tokio::select! {
                    result = &mut job.0 => if let Err(e) = result && e.is_panic() {
                        tracing::error!(cert_name = %cert, "a job panicked: {e}");
                    },
                    () = hard.cancelled() => {
                        job.0.abort();
                        // Resolves once the job is dropped: its lease is released by then.
                        let _ = (&mut job.0).await;
                        tracing::warn!(cert_name = %cert,
                            "job aborted: the shutdown grace period ended");
                    }
                }
                let _ = done.send(WorkDone { cert, was_renewal }).await;
            });
            while let Some(finished) = tasks.try_join_next() {
                if let Err(e) = finished {
                    tracing::error!("a worker task failed: {e}");
                }
            }
        }
        drop(work);
        let drain = async {
            while let Some(finished) = tasks.join_next().await {
                if let Err(e) = finished {
                    tracing::error!("a worker task failed: {e}");
                }
            }
        };
        if shutdown.is_cancelled() {
            let grace = self.config().daemon.shutdown_grace;
            tokio::pin!(drain);
            if tokio::time::timeout(grace, &mut drain).await.is_err() {
                hard.cancel();
                drain.await;
            }
        } else {
            drain.await;
        }
    }

    /// One pass for `renewd renew`: runs `jobs` with the same rules as the daemon (leases,
    /// CA selection, failover, the store), at most `daemon.workers` at once, and returns each
    /// certificate's result in the order given. Cancelling `shutdown` stops it as in
    /// [`Issuer::run`] (without the grace period: drop the future to abort).
    pub async fn run_once(
        &self,
        jobs: Vec<RenewalJob>,
        shutdown: CancellationToken,
    ) -> Vec<(CertName, JobResult)> {
        let workers = Arc::new(Semaphore::new(self.config().daemon.workers.max(1)));
        let mut tasks = JoinSet::new();
        for (index, job) in jobs.into_iter().enumerate() {
            let (inner, soft, workers) = (self.inner.clone(), shutdown.clone(), workers.clone());
            tasks.spawn(async move {
                let cert = job.cert.clone();
                let result = match workers.acquire_owned().await {
                    Ok(_permit) => crate::job::renew(&inner, &job, &soft).await,
                    Err(_) => JobResult::Interrupted,
                };
                (index, cert, result)
            });
        }
        let mut results = Vec::new();
        while let Some(finished) = tasks.join_next().await {
            match finished {
                Ok(r) => results.push(r),
                Err(e) => tracing::error!("a renewal task failed: {e}"),
            }
        }
        results.sort_by_key(|(index, _, _)| *index);
        results
            .into_iter()
            .map(|(_, cert, result)| (cert, result))
            .collect()
    }

    /// Fetches the ARI renewal window of `cert`'s installed certificate now and stores it
    /// (what [`Work::AriCheck`] does).
    pub async fn check_renewal_info(&self, cert: &CertName) {
        crate::ari_check::check(&self.inner, cert).await;
    }
}
