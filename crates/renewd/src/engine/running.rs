//! The real engine: started from the daemon's [`EngineContext`], it opens the store, scans
//! the certificates, starts the challenge responders, the issuer and the scheduler, and
//! wires them together; then it reloads and drains as the daemon asks.
//!
//! Tasks (one `JoinSet`): the scheduler loop, the issuance pool, the bridge (issuer →
//! scheduler, metrics, `STATUS=`), the liveness relay (the scheduler loop's ticks → the
//! daemon's heartbeat, so a stuck loop stops the watchdog pings), the status line, the
//! release of freed memory when the scheduler comes to rest, and the control socket.
//! Tokens: the scheduler and the pool stop taking work when the daemon's `shutdown` is
//! cancelled; the responders, the bridge and the control socket live on until the drain
//! is over (orders in flight still validate and report).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use renewd_config::Config;
use renewd_core::{CertName, Clock, RequestOutcome, SystemClock, WorkDone};
use renewd_issuer::{Issuer, IssuerOptions, IssuerParts, Solvers, event_channel};
use renewd_local::ChallengeSolvers;
use renewd_scheduler::{Scheduler, SchedulerCommand};
use renewd_store::{CertStore, CircuitState, PendingKeys, SqliteStore, StateStore};
use tokio::sync::{Mutex, broadcast, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::bridge::{Bridge, OpenCircuits, all_cert_metrics};
use super::control::{self, ControlContext, ControlSocket};
use super::host::LocalHost;
use super::{Drained, Engine, EngineContext, EngineFuture, plan, status};
use crate::heartbeat::Heartbeat;
use crate::log_fields::log_request_outcome;
use crate::metrics::Metrics;

/// Pending-order keys younger than this are not orphans yet (a `renewd renew` running now
/// may have just written one).
const ORPHAN_AGE: Duration = Duration::from_secs(600);

/// Room for issuer events per listener.
const EVENTS: usize = 1024;

/// How long the engine's own tasks get to end after the drain.
const TASKS_GRACE: Duration = Duration::from_secs(2);

/// The engine as the daemon runs it.
pub struct RunningEngine {
    config: watch::Sender<Arc<Config>>,
    store: Arc<dyn StateStore>,
    /// The same store, for what only SQLite has: the ledger's retention, set on reload.
    sqlite: Arc<SqliteStore>,
    cert_store: CertStore,
    issuer: Issuer,
    solvers: Mutex<ChallengeSolvers>,
    scheduler: mpsc::Sender<SchedulerCommand>,
    metrics: Metrics,
    /// Ends the responders, the bridge, the status line and the control socket.
    stop: CancellationToken,
    /// Set once the issuance pool has returned.
    pool_done: watch::Receiver<bool>,
    tasks: Mutex<JoinSet<()>>,
}

/// The issuer's options in the daemon: every request outcome is also logged (journald
/// fields) and counted in the metrics — ledger rows and the refused nonces the client
/// retried at once alike, so `renewd_acme_requests_total` counts every request.
pub fn issuer_options(metrics: Option<Metrics>) -> IssuerOptions {
    IssuerOptions {
        on_outcome: Arc::new(move |row: &RequestOutcome, kind| {
            log_request_outcome(row, kind);
            if let Some(m) = &metrics {
                m.record_request(row);
            }
        }),
        ..IssuerOptions::default()
    }
}

/// The solvers as the issuer takes them.
pub fn solver_map(solvers: &ChallengeSolvers) -> Solvers {
    solvers.all().into_iter().collect()
}

/// Brings the engine up; resolves when the store, the first scan, the responders and the
/// loops are running (`READY=1`).
pub async fn start(ctx: EngineContext) -> anyhow::Result<Box<dyn Engine>> {
    let config = ctx.config.clone();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = {
        let opening = config.clone();
        tokio::task::spawn_blocking(move || plan::open_store(&opening))
            .await
            .context("opening the store")?
            .with_context(|| format!("opening the state store in {}", config.state_dir.display()))?
    };
    let sqlite = Arc::new(store);
    let store: Arc<dyn StateStore> = sqlite.clone();
    // Before touching any file: a second daemon on this state directory stops here.
    let control_socket = ControlSocket::bind(&config.state_dir)?;
    let (cert_store, inventory) = {
        let (config, store) = (config.clone(), store.clone());
        tokio::task::spawn_blocking(move || clean_up_and_scan(&config, store.as_ref()))
            .await
            .context("scanning the certificates")?
    };
    let stop = CancellationToken::new();
    let solvers = ChallengeSolvers::start(&config, &stop)
        .await
        .context("starting the challenge responders")?;
    for (challenge, addr) in solvers.listening() {
        tracing::info!(%challenge, %addr, "challenge responder listening");
    }

    let (events, events_rx) = event_channel(EVENTS);
    let control_events = events.clone();
    let issuer = Issuer::new(IssuerParts {
        config: (*config).clone(),
        store: store.clone(),
        cert_store: cert_store.clone(),
        clock: clock.clone(),
        solvers: solver_map(&solvers),
        host_actions: Arc::new(LocalHost::default()),
        events,
        options: issuer_options(Some(ctx.metrics.clone())),
    })
    .context("setting up the CAs")?;

    let heartbeat: Heartbeat = ctx.heartbeat.clone();
    let scheduler = Scheduler::load(
        store.clone(),
        clock.clone(),
        plan::schedule_policy(&config),
        plan::cert_plans(&config),
        inventory,
    )
    .with_liveness_interval(heartbeat.period());
    if tracing::enabled!(tracing::Level::DEBUG) {
        for cert in &config.certs {
            if let Some(why) = scheduler.explain(&cert.name) {
                tracing::debug!(cert_name = %cert.name, "scheduled: {why}");
            }
        }
    }
    let liveness = scheduler.liveness();
    let scheduler_status = scheduler.status();
    // READY=1 carries the first summary.
    let open = open_circuits(store.as_ref(), &config);
    ctx.status.set(status::status_text(
        &scheduler_status.borrow(),
        &open,
        clock.now(),
    ));

    let workers = config.daemon.workers.max(1);
    let (work_tx, work_rx) = mpsc::channel(workers);
    let (done_tx, done_rx) = mpsc::channel::<WorkDone>(workers * 2);
    let (commands_tx, commands_rx) = mpsc::channel(64);
    let (finished, _) = broadcast::channel(EVENTS);
    let (config_tx, config_rx) = watch::channel(config.clone());
    let (open_tx, open_rx) = watch::channel(open);

    let bridge = Bridge {
        store: store.clone(),
        clock: clock.clone(),
        metrics: ctx.metrics.clone(),
        config: config_rx,
        scheduler: commands_tx.clone(),
        finished: finished.clone(),
        open_circuits: open_tx,
    };
    initial_metrics(&bridge, &config, store.as_ref());

    let mut tasks = JoinSet::new();
    let (pool_done_tx, pool_done) = watch::channel(false);
    let scheduler_token = ctx.shutdown.child_token();
    tasks.spawn(async move {
        if let Err(e) = scheduler.run(scheduler_token, commands_rx, work_tx).await {
            tracing::error!("the scheduler loop stopped: {e}");
        }
    });
    let pool = issuer.clone();
    let pool_token = ctx.shutdown.child_token();
    tasks.spawn(async move {
        pool.run(pool_token, work_rx, done_tx).await;
        let _ = pool_done_tx.send(true);
    });
    tasks.spawn(bridge.run(done_rx, events_rx));
    tasks.spawn(relay_liveness(liveness, heartbeat, stop.clone()));
    let cache = sqlite.clone();
    tasks.spawn(crate::memory::release_after_bursts(
        scheduler_status.clone(),
        stop.clone(),
        move || {
            // Off the runtime's workers: the store's lock may be held by a write.
            let cache = cache.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = cache.shrink_memory() {
                    tracing::debug!("could not free SQLite's page cache: {e}");
                }
                crate::memory::release_free_memory();
            });
        },
    ));
    tasks.spawn(status::keep_current(
        ctx.status.clone(),
        scheduler_status,
        open_rx,
        clock.clone(),
        stop.clone(),
    ));
    tracing::info!(path = %control_socket.path().display(), "control socket listening");
    tasks.spawn(control::serve(
        control_socket,
        ControlContext {
            scheduler: commands_tx.clone(),
            finished,
            events: control_events,
            store: store.clone(),
        },
        stop.clone(),
    ));

    Ok(Box::new(RunningEngine {
        config: config_tx,
        store,
        sqlite,
        cert_store,
        issuer,
        solvers: Mutex::new(solvers),
        scheduler: commands_tx,
        metrics: ctx.metrics,
        stop,
        pool_done,
        tasks: Mutex::new(tasks),
    }))
}

/// Leftovers of interrupted installs and orphaned keys removed, then the first scan
/// (blocking: files and SQLite).
fn clean_up_and_scan(
    config: &Config,
    store: &dyn StateStore,
) -> (CertStore, renewd_scheduler::Inventory) {
    let cert_store = CertStore::new(&config.state_dir);
    match cert_store.recover() {
        Ok(removed) if !removed.is_empty() => {
            tracing::info!(removed = ?removed, "removed what interrupted installs left");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cleaning up interrupted installs failed"),
    }
    match PendingKeys::new(&config.state_dir).remove_orphans(store, ORPHAN_AGE) {
        Ok(removed) if !removed.is_empty() => {
            tracing::info!(removed = ?removed, "removed keys of orders no longer pending");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "removing orphaned order keys failed"),
    }
    let inventory = plan::scan(&cert_store, &config.certs);
    (cert_store, inventory)
}

fn open_circuits(store: &dyn StateStore, config: &Config) -> OpenCircuits {
    config
        .cas
        .iter()
        .filter_map(|ca| store.ca_health(&ca.name).ok().flatten())
        .filter(|h| h.circuit == CircuitState::Open)
        .map(|h| (h.ca, h.open_until))
        .collect()
}

fn initial_metrics(bridge: &Bridge, config: &Config, store: &dyn StateStore) {
    for ca in &config.cas {
        let (state, open_until) = store
            .ca_health(&ca.name)
            .ok()
            .flatten()
            .map_or((CircuitState::Closed, None), |h| (h.circuit, h.open_until));
        bridge.metrics.set_circuit(&ca.name, state, open_until);
    }
    all_cert_metrics(store, &bridge.metrics, config, bridge.clock.now());
}

/// Beats the daemon's heartbeat on every turn of the scheduler loop, and only then.
async fn relay_liveness(
    mut ticks: watch::Receiver<u64>,
    heartbeat: Heartbeat,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            changed = ticks.changed() => match changed {
                Ok(()) => heartbeat.beat(),
                Err(_) => break,
            },
        }
    }
}

impl Engine for RunningEngine {
    fn reload(&self, new: Arc<Config>) -> EngineFuture<'_, anyhow::Result<()>> {
        Box::pin(self.apply(new))
    }

    fn drain(&self, deadline: Instant) -> EngineFuture<'_, Drained> {
        Box::pin(async move {
            let mut pool_done = self.pool_done.clone();
            let finished = tokio::time::timeout_at(deadline, async {
                let _ = pool_done.wait_for(|d| *d).await;
            })
            .await;
            if finished.is_err() {
                tracing::warn!("the issuance pool did not finish within the shutdown grace");
            }
            let unfinished = self.pending_orders();
            self.stop.cancel();
            let mut tasks = self.tasks.lock().await;
            let joined = tokio::time::timeout(TASKS_GRACE, async {
                while let Some(r) = tasks.join_next().await {
                    if let Err(e) = r {
                        tracing::error!("an engine task failed: {e}");
                    }
                }
            })
            .await;
            if joined.is_err() {
                tasks.abort_all();
            }
            Drained { unfinished }
        })
    }
}

impl RunningEngine {
    /// SIGHUP: the issuer's CAs, the responders, the ledger's retention, a rescan and the
    /// scheduler's plans. The issuer goes first and is put back if the responders cannot
    /// bind.
    async fn apply(&self, new: Arc<Config>) -> anyhow::Result<()> {
        let old = self.config.borrow().clone();
        if new.state_dir != old.state_dir {
            anyhow::bail!(
                "state_dir changed from {} to {}, which needs a restart",
                old.state_dir.display(),
                new.state_dir.display()
            );
        }
        self.issuer
            .reload((*new).clone())
            .context("setting up the CAs")?;
        let responders_changed = new.http01 != old.http01
            || new.tls_alpn01 != old.tls_alpn01
            || new.dns01 != old.dns01
            || new.hooks.timeout != old.hooks.timeout;
        if responders_changed {
            let mut solvers = self.solvers.lock().await;
            if let Err(e) = solvers.reconfigure(&new, &self.stop).await {
                if let Err(back) = self.issuer.reload((*old).clone()) {
                    tracing::error!("putting the previous CAs back failed: {back}");
                }
                return Err(e).context("the challenge responders");
            }
            self.issuer.set_solvers(solver_map(&solvers));
            for (challenge, addr) in solvers.listening() {
                tracing::info!(%challenge, %addr, "challenge responder listening");
            }
        }
        let policy_fixed = [
            ("[renewal] urgency thresholds and ari", {
                plan::schedule_policy(&new) != plan::schedule_policy(&old)
            }),
            ("[daemon] workers", new.daemon.workers != old.daemon.workers),
        ];
        for (what, changed) in policy_fixed {
            if changed {
                tracing::warn!(
                    "{what} changed; the running loops keep the old value until the next start"
                );
            }
        }
        let inventory = {
            let (cert_store, config) = (self.cert_store.clone(), new.clone());
            tokio::task::spawn_blocking(move || plan::scan(&cert_store, &config.certs))
                .await
                .context("rescanning the certificates")?
        };
        self.config.send_replace(new.clone());
        self.scheduler
            .send(SchedulerCommand::Reload {
                plans: plan::cert_plans(&new),
                inventory,
            })
            .await
            .map_err(|_| anyhow::anyhow!("the scheduler loop has stopped"))?;
        // Last: pruning cannot be undone, so a reload that fails above prunes nothing.
        self.apply_retention(&old, &new).await;
        all_cert_metrics(self.store.as_ref(), &self.metrics, &new, chrono::Utc::now());
        Ok(())
    }

    /// A changed `[ledger]` applies at once: the store takes the new retention and prunes
    /// by it now (a failed prune is retried on the append schedule).
    async fn apply_retention(&self, old: &Config, new: &Config) {
        let retention = plan::retention(new);
        if retention == plan::retention(old) {
            return;
        }
        self.sqlite.set_retention(retention);
        let sqlite = self.sqlite.clone();
        let pruned = tokio::task::spawn_blocking(move || sqlite.prune_ledger()).await;
        let max_age = renewd_config::format_duration(retention.max_age);
        match pruned {
            Ok(Ok(report)) => tracing::info!(
                max_age,
                max_rows = retention.max_rows,
                removed = report.by_age + report.by_rows,
                "[ledger] retention changed; applied and the ledger pruned"
            ),
            Ok(Err(e)) => tracing::warn!(max_age, max_rows = retention.max_rows, error = %e,
                "[ledger] retention changed and applied; pruning now failed, the next prune retries"),
            Err(e) => {
                tracing::warn!(error = %e, "[ledger] retention changed and applied; pruning now failed")
            }
        }
    }

    /// Certificates with an order the next start resumes.
    fn pending_orders(&self) -> Vec<CertName> {
        match self.store.status_snapshot() {
            Ok(s) => s
                .certs
                .into_iter()
                .filter(|c| c.pending.is_some())
                .map(|c| c.cert)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the pending orders");
                Vec::new()
            }
        }
    }
}
