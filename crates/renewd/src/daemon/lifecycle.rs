//! `renewd run` from READY to exit: startup, the main loop, reload and stop.
//!
//! One root [`CancellationToken`]; a child for each subsystem (the watchdog pinger, each
//! metrics endpoint, the engine's `shutdown`); long tasks in a [`JoinSet`]; every loop
//! `select!`s on its token. Signals arrive as [`Control`] messages, so tests drive the
//! lifecycle with a channel.
//!
//! With an engine (`renewd run` always has one) the engine's scheduler loop beats the
//! [`Heartbeat`], so the watchdog follows the loop that does the work; the main loop beats
//! it itself only when started without one (a lifecycle test, or a future tool).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use renewd_config::{Config, LoadError};
use sd_notify::NotifyState;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::control::Control;
use super::notify::{Notifier, one_line};
use super::watchdog;
use crate::check::plural;
use crate::engine::{Engine, EngineContext, StartEngine, StatusLine};
use crate::heartbeat::{self, Heartbeat};
use crate::metrics::{self, Metrics, MetricsListener};

/// How long after the drain deadline the daemon stops waiting for an engine that overran it.
const DRAIN_SLACK: Duration = Duration::from_secs(1);
/// How long subsystems get to end once the root token is cancelled.
const TASKS_GRACE: Duration = Duration::from_secs(2);

/// What `renewd run` starts from.
#[derive(Debug)]
pub struct DaemonSetup {
    /// The config file, re-read on SIGHUP.
    pub config_path: PathBuf,
    /// The config as loaded at startup.
    pub config: Config,
    /// `--log-format` was given, so the config's `log_format` does not matter.
    pub log_format_fixed: bool,
    /// Where notifications go.
    pub notifier: Arc<dyn Notifier>,
    /// The watchdog interval (`WATCHDOG_USEC`, for this process), if enabled.
    pub watchdog: Option<Duration>,
    /// The renewal engine (`renewd run`: `engine::starter`); `None` runs the lifecycle
    /// alone.
    pub start_engine: Option<StartEngineBox>,
}

/// [`StartEngine`] with a `Debug` that says only that it is there.
pub struct StartEngineBox(pub StartEngine);

impl std::fmt::Debug for StartEngineBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StartEngine")
    }
}

/// The STATUS= text of a lifecycle without an engine (and until the engine's first line).
pub fn engineless_status(config: &Config) -> String {
    format!(
        "no renewal engine; {} and {} configured, nothing is renewed",
        plural(config.certs.len(), "certificate"),
        plural(config.cas.len(), "CA"),
    )
}

struct Daemon {
    config_path: PathBuf,
    config: Arc<Config>,
    log_format_fixed: bool,
    notifier: Arc<dyn Notifier>,
    metrics: Metrics,
    heartbeat: Heartbeat,
    status: StatusLine,
    engine: Option<Box<dyn Engine>>,
    /// Why the last reload was refused, until one succeeds.
    reload_refused: Option<String>,
    /// Stops the metrics endpoint that is serving now.
    metrics_stop: Option<CancellationToken>,
    root: CancellationToken,
    tasks: JoinSet<()>,
}

/// Runs the daemon until a stop request; `Ok` is a clean stop (exit 0).
pub async fn run_lifecycle(
    setup: DaemonSetup,
    mut control: mpsc::Receiver<Control>,
) -> anyhow::Result<()> {
    let config = Arc::new(setup.config);
    let heartbeat = Heartbeat::new(heartbeat::period_for(setup.watchdog));
    let mut d = Daemon {
        config_path: setup.config_path,
        status: StatusLine::new(engineless_status(&config)),
        config,
        log_format_fixed: setup.log_format_fixed,
        notifier: setup.notifier,
        metrics: Metrics::new(),
        heartbeat,
        engine: None,
        reload_refused: None,
        metrics_stop: None,
        root: CancellationToken::new(),
        tasks: JoinSet::new(),
    };

    if let Some(m) = &d.config.metrics {
        let listener = MetricsListener::bind(m.listen)
            .await
            .with_context(|| format!("cannot listen on {} for [metrics]", m.listen))?;
        d.serve_metrics(listener);
    }

    let engine_shutdown = d.root.child_token();
    let mut reload_pending = false;
    match setup.start_engine {
        Some(StartEngineBox(start)) => {
            let ctx = EngineContext {
                config: d.config.clone(),
                heartbeat: d.heartbeat.clone(),
                status: d.status.clone(),
                metrics: d.metrics.clone(),
                shutdown: engine_shutdown.clone(),
            };
            let starting = start(ctx);
            tokio::pin!(starting);
            loop {
                tokio::select! {
                    started = &mut starting => {
                        d.engine = Some(started.context("starting the renewal engine")?);
                        break;
                    }
                    control = control.recv() => match control {
                        // Not ready yet: the reload happens right after READY.
                        Some(Control::Reload) => reload_pending = true,
                        Some(Control::Stop(signal)) => {
                            tracing::info!("{signal} while starting: stopping");
                            d.notifier.notify(&[NotifyState::Stopping]);
                            d.finish().await;
                            return Ok(());
                        }
                        None => anyhow::bail!("the control channel closed"),
                    },
                }
            }
        }
        None => tracing::warn!(
            "started without a renewal engine: renewd runs its lifecycle (systemd \
             notifications, watchdog, reload, metrics) but renews nothing"
        ),
    }

    let status = d.status_text();
    d.notifier
        .notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
    tracing::info!("ready: {status}");
    if let Some(interval) = setup.watchdog {
        tracing::info!(
            "systemd watchdog enabled: {interval:?}, pinging on the main loop's beats (at \
             least every {:?})",
            d.heartbeat.period()
        );
        d.tasks.spawn(watchdog::run(
            d.heartbeat.liveness(),
            d.notifier.clone(),
            d.root.child_token(),
        ));
    }
    if reload_pending {
        d.reload().await;
    }

    let mut status_rx = d.status.subscribe();
    status_rx.mark_unchanged();
    let mut status_open = true;
    // Only without an engine: the engine's scheduler loop beats once it exists.
    let mut beat = tokio::time::interval(d.heartbeat.period());
    beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let signal = loop {
        tokio::select! {
            () = d.root.cancelled() => break "cancellation",
            control = control.recv() => match control {
                Some(Control::Reload) => d.reload().await,
                Some(Control::Stop(signal)) => break signal,
                None => break "the control channel closing",
            },
            changed = status_rx.changed(), if status_open => match changed {
                Ok(()) => {
                    let status = d.status_text();
                    d.notifier.notify(&[NotifyState::Status(&status)]);
                }
                Err(_) => status_open = false,
            },
            _ = beat.tick(), if d.engine.is_none() => d.heartbeat.beat(),
            Some(joined) = d.tasks.join_next() => {
                if let Err(e) = joined {
                    tracing::error!("a daemon task failed: {e}");
                }
            }
        }
    };
    d.stop(signal, engine_shutdown, &mut control).await;
    Ok(())
}

impl Daemon {
    /// STATUS= text: the engine's line, prefixed by a refused reload while there is one.
    fn status_text(&self) -> String {
        let base = self.status.get();
        one_line(&match &self.reload_refused {
            Some(why) => format!("reload refused ({why}), running the previous config; {base}"),
            None => base,
        })
    }

    fn serve_metrics(&mut self, listener: MetricsListener) {
        if let Some(old) = self.metrics_stop.take() {
            old.cancel();
        }
        let stop = self.root.child_token();
        self.metrics_stop = Some(stop.clone());
        self.tasks.spawn(metrics::serve(
            listener,
            self.metrics.clone(),
            self.heartbeat.liveness(),
            stop,
        ));
    }

    /// SIGHUP: RELOADING=1 → load and validate → apply or refuse → READY=1.
    async fn reload(&mut self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.notifier.notify(&[NotifyState::Reloading, now]),
            Err(e) => {
                tracing::warn!("cannot read the monotonic clock: {e}");
                self.notifier.notify(&[NotifyState::Reloading]);
            }
        }
        tracing::info!("reloading {}", self.config_path.display());
        match self.try_reload().await {
            Ok(summary) => {
                tracing::info!("reloaded: {summary}");
                self.reload_refused = None;
                self.metrics.set_last_reload_successful(true);
            }
            Err(why) => {
                tracing::error!("reload refused, keeping the running config: {why}");
                self.reload_refused = Some(why);
                self.metrics.set_last_reload_successful(false);
            }
        }
        if self.engine.is_none() {
            self.status.set(engineless_status(&self.config));
        }
        let status = self.status_text();
        self.notifier
            .notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
    }

    /// Loads, checks and applies the config file; `Err` says why it was refused.
    async fn try_reload(&mut self) -> Result<String, String> {
        let path = self.config_path.clone();
        let new = match tokio::task::spawn_blocking(move || Config::load(&path)).await {
            Ok(Ok(config)) => config,
            Ok(Err(LoadError::Invalid(errors))) => {
                for e in errors.errors() {
                    tracing::error!("{e}");
                }
                return Err(format!(
                    "{} in {}",
                    plural(errors.len(), "problem"),
                    self.config_path.display()
                ));
            }
            Ok(Err(e)) => {
                tracing::error!("{e}");
                return Err(e.to_string());
            }
            Err(e) => return Err(format!("loading the config failed: {e}")),
        };
        let diff = self.config.diff(&new);
        if diff.is_empty() {
            return Ok("no changes".to_string());
        }
        if new.state_dir != self.config.state_dir {
            return Err(format!(
                "state_dir changed from {} to {}, which needs a restart",
                self.config.state_dir.display(),
                new.state_dir.display()
            ));
        }
        // Bind a new metrics address before changing anything, so a taken port refuses the
        // whole reload.
        let metrics_change = if new.metrics == self.config.metrics {
            None
        } else {
            match &new.metrics {
                Some(m) => Some(Some(MetricsListener::bind(m.listen).await.map_err(
                    |e| format!("cannot listen on {} for [metrics]: {e}", m.listen),
                )?)),
                None => Some(None),
            }
        };
        let new = Arc::new(new);
        if let Some(engine) = &self.engine {
            engine.reload(new.clone()).await.map_err(|e| {
                format!(
                    "the renewal engine refused it: {}",
                    crate::exit::error_text(&e)
                )
            })?;
        }
        match metrics_change {
            Some(Some(listener)) => self.serve_metrics(listener),
            Some(None) => {
                if let Some(stop) = self.metrics_stop.take() {
                    stop.cancel();
                }
            }
            None => {}
        }
        for cert in &diff.certs_removed {
            self.metrics.remove_cert(cert);
        }
        for ca in &diff.cas_removed {
            self.metrics.remove_ca(ca);
        }
        if !self.log_format_fixed && new.daemon.log_format != self.config.daemon.log_format {
            tracing::warn!(
                "[daemon] log_format changed to {}; that takes effect at the next start",
                new.daemon.log_format
            );
        }
        self.config = new;
        Ok(diff.to_string())
    }

    /// SIGTERM/SIGINT: STOPPING=1, no new jobs, drain until the grace period ends, exit.
    async fn stop(
        mut self,
        signal: &str,
        engine_shutdown: CancellationToken,
        control: &mut mpsc::Receiver<Control>,
    ) {
        self.notifier.notify(&[NotifyState::Stopping]);
        let grace = self.config.daemon.shutdown_grace;
        engine_shutdown.cancel();
        if let Some(engine) = &self.engine {
            tracing::info!("stopping on {signal}; in-flight work gets up to {grace:?}");
            let deadline = Instant::now() + grace;
            tokio::select! {
                drained = engine.drain(deadline) => {
                    if drained.unfinished.is_empty() {
                        tracing::info!("in-flight work reached a persisted point");
                    } else {
                        let names: Vec<String> =
                            drained.unfinished.iter().map(ToString::to_string).collect();
                        tracing::warn!(
                            "stopping with unfinished orders for {}; they resume at the next start",
                            names.join(", ")
                        );
                    }
                }
                () = tokio::time::sleep_until(deadline + DRAIN_SLACK) => {
                    tracing::warn!("the renewal engine overran the shutdown grace; stopping anyway");
                }
                Some(Control::Stop(again)) = control.recv() => {
                    tracing::warn!("{again} again: not waiting for in-flight work");
                }
            }
        }
        if self.engine.is_none() {
            tracing::info!("stopping on {signal}");
        }
        self.finish().await;
        tracing::info!("stopped");
    }

    /// Cancels every subsystem and waits briefly for their tasks.
    async fn finish(&mut self) {
        self.root.cancel();
        let joined = tokio::time::timeout(TASKS_GRACE, async {
            while let Some(joined) = self.tasks.join_next().await {
                if let Err(e) = joined {
                    tracing::error!("a daemon task failed: {e}");
                }
            }
        })
        .await;
        if joined.is_err() {
            tracing::warn!("some daemon tasks did not end in time; abandoning them");
            self.tasks.abort_all();
        }
    }
}
