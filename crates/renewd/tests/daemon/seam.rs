//! The lifecycle in-process, with a test double behind the engine seam: READY waits for the
//! engine, the watchdog follows the engine's loop, reloads go through the engine, and a stop
//! drains it within the grace period. Time is tokio's paused clock.

use std::future::pending;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use renewd::{
    Control, DaemonSetup, Drained, Engine, EngineContext, EngineFuture, Notifier, StartEngineBox,
    StatusLine, notify_wire, run_lifecycle,
};
use renewd_config::Config;
use sd_notify::NotifyState;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::harness::{Scene, has, value};

/// Hands every notification to the test.
#[derive(Debug)]
struct Recording(mpsc::UnboundedSender<String>);

impl Notifier for Recording {
    fn notify(&self, states: &[NotifyState<'_>]) {
        let _ = self.0.send(notify_wire(states));
    }
}

/// What the test controls and observes of its engine.
#[derive(Default)]
struct Probe {
    /// Hold `start` until notified.
    gate: Option<Arc<Notify>>,
    fail_start: bool,
    /// The scheduler loop stops beating.
    stuck: AtomicBool,
    refuse_reload: AtomicBool,
    hang_drain: bool,
    /// Certificate counts of the configs reloads delivered.
    reloads: Mutex<Vec<usize>>,
    /// The deadline `drain` got, and whether `shutdown` was cancelled by then.
    drained: Mutex<Option<(Instant, bool)>>,
    status: Mutex<Option<StatusLine>>,
}

struct TestEngine {
    probe: Arc<Probe>,
    shutdown: CancellationToken,
}

impl Engine for TestEngine {
    fn reload(&self, config: Arc<Config>) -> EngineFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            if self.probe.refuse_reload.load(Ordering::SeqCst) {
                anyhow::bail!("test engine refuses");
            }
            self.probe.reloads.lock().unwrap().push(config.certs.len());
            Ok(())
        })
    }

    fn drain(&self, deadline: Instant) -> EngineFuture<'_, Drained> {
        Box::pin(async move {
            *self.probe.drained.lock().unwrap() = Some((deadline, self.shutdown.is_cancelled()));
            if self.probe.hang_drain {
                pending::<()>().await;
            }
            Drained::default()
        })
    }
}

fn starter(probe: Arc<Probe>) -> StartEngineBox {
    StartEngineBox(Box::new(move |ctx: EngineContext| {
        Box::pin(async move {
            if let Some(gate) = &probe.gate {
                gate.notified().await;
            }
            if probe.fail_start {
                anyhow::bail!("the store is locked");
            }
            ctx.status.set(format!(
                "test engine: {} certificates",
                ctx.config.certs.len()
            ));
            *probe.status.lock().unwrap() = Some(ctx.status.clone());
            // The scheduler loop: beats every period unless stuck, ends on shutdown.
            let (heartbeat, token, p) =
                (ctx.heartbeat.clone(), ctx.shutdown.clone(), probe.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = token.cancelled() => break,
                        () = tokio::time::sleep(heartbeat.period()) => {
                            if !p.stuck.load(Ordering::SeqCst) {
                                heartbeat.beat();
                            }
                        }
                    }
                }
            });
            Ok(Box::new(TestEngine {
                probe,
                shutdown: ctx.shutdown,
            }) as Box<dyn Engine>)
        }) as EngineFuture<'static, anyhow::Result<Box<dyn Engine>>>
    }))
}

struct InProcess {
    scene: Scene,
    notes: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
    control: mpsc::Sender<Control>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl InProcess {
    fn start(probe: Arc<Probe>, watchdog: Option<Duration>) -> Self {
        let scene = Scene::new();
        scene.write_config(1, "");
        let config = Config::load(&scene.config_path()).unwrap();
        let (tx, notes) = mpsc::unbounded_channel();
        let (control, control_rx) = mpsc::channel(8);
        let setup = DaemonSetup {
            config_path: scene.config_path(),
            config,
            log_format_fixed: true,
            notifier: Arc::new(Recording(tx)),
            watchdog,
            start_engine: Some(starter(probe)),
        };
        let task = tokio::spawn(run_lifecycle(setup, control_rx));
        Self {
            scene,
            notes,
            seen: Vec::new(),
            control,
            task,
        }
    }

    /// The next notification for which `pred` holds, within a minute of (paused) time.
    async fn expect(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match tokio::time::timeout_at(deadline, self.notes.recv()).await {
                Ok(Some(m)) => {
                    self.seen.push(m.clone());
                    if pred(&m) {
                        return m;
                    }
                }
                _ => panic!("no {what}; got {:?}", self.seen),
            }
        }
    }

    /// Every notification during `window` of (paused) time.
    async fn during(&mut self, window: Duration) -> Vec<String> {
        let end = Instant::now() + window;
        let mut got = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout_at(end, self.notes.recv()).await {
            got.push(m);
        }
        got
    }

    async fn send(&self, c: Control) {
        self.control.send(c).await.unwrap();
    }
}

fn pings(messages: &[String]) -> usize {
    messages.iter().filter(|m| has(m, "WATCHDOG=1")).count()
}

#[tokio::test(start_paused = true)]
async fn ready_waits_for_the_engine_and_carries_its_status() {
    let gate = Arc::new(Notify::new());
    let probe = Arc::new(Probe {
        gate: Some(gate.clone()),
        ..Probe::default()
    });
    let mut d = InProcess::start(probe.clone(), None);
    let early = d.during(Duration::from_secs(30)).await;
    assert!(
        early.is_empty(),
        "notified before the engine was loaded: {early:?}"
    );
    gate.notify_one();
    let ready = d.expect("READY=1", |m| has(m, "READY=1")).await;
    assert_eq!(value(&ready, "STATUS"), Some("test engine: 1 certificates"));

    // The engine's status changes reach STATUS= on their own.
    let status = probe.status.lock().unwrap().clone().unwrap();
    status.set("test engine: next renewal in 3d".into());
    let m = d.expect("STATUS=", |m| m.starts_with("STATUS=")).await;
    assert_eq!(m, "STATUS=test engine: next renewal in 3d\n");
}

#[tokio::test(start_paused = true)]
async fn the_watchdog_follows_the_engine_loop() {
    let probe = Arc::new(Probe::default());
    let mut d = InProcess::start(probe.clone(), Some(Duration::from_millis(200)));
    d.expect("READY=1", |m| has(m, "READY=1")).await;
    // A ping every 100 ms while the engine's loop beats.
    let beating = d.during(Duration::from_secs(2)).await;
    assert!(pings(&beating) >= 18, "{} pings in 2 s", pings(&beating));

    probe.stuck.store(true, Ordering::SeqCst);
    // One ping may still be owed to a beat from before the loop stuck.
    d.during(Duration::from_millis(200)).await;
    let stuck = d.during(Duration::from_secs(2)).await;
    assert_eq!(pings(&stuck), 0, "pinged for a stuck loop: {stuck:?}");

    probe.stuck.store(false, Ordering::SeqCst);
    d.expect("WATCHDOG=1 again", |m| has(m, "WATCHDOG=1")).await;
}

#[tokio::test(start_paused = true)]
async fn reloads_go_through_the_engine_which_may_refuse() {
    let probe = Arc::new(Probe::default());
    let mut d = InProcess::start(probe.clone(), None);
    d.expect("READY=1", |m| has(m, "READY=1")).await;

    // Unchanged: the engine is not bothered.
    d.send(Control::Reload).await;
    d.expect("READY=1", |m| has(m, "READY=1")).await;
    assert!(probe.reloads.lock().unwrap().is_empty());

    d.scene.write_config(2, "");
    d.send(Control::Reload).await;
    let reloading = d.expect("RELOADING=1", |m| has(m, "RELOADING=1")).await;
    assert!(value(&reloading, "MONOTONIC_USEC").is_some(), "{reloading}");
    d.expect("READY=1", |m| has(m, "READY=1")).await;
    assert_eq!(*probe.reloads.lock().unwrap(), vec![2]);

    probe.refuse_reload.store(true, Ordering::SeqCst);
    d.scene.write_config(3, "");
    d.send(Control::Reload).await;
    let ready = d.expect("READY=1", |m| has(m, "READY=1")).await;
    let status = value(&ready, "STATUS").unwrap();
    assert!(
        status.starts_with("reload refused (the renewal engine refused it: test engine refuses)"),
        "{status}"
    );
    assert_eq!(*probe.reloads.lock().unwrap(), vec![2]);

    // The refused config was never taken: accepting it later is a change again.
    probe.refuse_reload.store(false, Ordering::SeqCst);
    d.send(Control::Reload).await;
    let ready = d.expect("READY=1", |m| has(m, "READY=1")).await;
    assert!(
        !value(&ready, "STATUS").unwrap().contains("refused"),
        "{ready}"
    );
    assert_eq!(*probe.reloads.lock().unwrap(), vec![2, 3]);
}

#[tokio::test(start_paused = true)]
async fn stop_cancels_new_work_then_drains_until_the_grace_deadline() {
    let probe = Arc::new(Probe::default());
    let mut d = InProcess::start(probe.clone(), None);
    d.expect("READY=1", |m| has(m, "READY=1")).await;
    let asked = Instant::now();
    d.send(Control::Stop("SIGTERM")).await;
    d.expect("STOPPING=1", |m| has(m, "STOPPING=1")).await;
    d.task.await.unwrap().unwrap();
    let (deadline, shutdown_first) = probe.drained.lock().unwrap().unwrap();
    assert!(
        shutdown_first,
        "drain before the shutdown token was cancelled"
    );
    // [daemon] shutdown_grace = "2s" in the scene's config.
    let grace = deadline - asked;
    assert!(
        grace >= Duration::from_secs(2) && grace < Duration::from_millis(2100),
        "{grace:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_drain_that_overruns_the_grace_is_cut_off() {
    let probe = Arc::new(Probe {
        hang_drain: true,
        ..Probe::default()
    });
    let mut d = InProcess::start(probe, None);
    d.expect("READY=1", |m| has(m, "READY=1")).await;
    let asked = Instant::now();
    d.send(Control::Stop("SIGTERM")).await;
    d.task.await.unwrap().unwrap();
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_second_stop_signal_does_not_wait_for_the_drain() {
    let probe = Arc::new(Probe {
        hang_drain: true,
        ..Probe::default()
    });
    let mut d = InProcess::start(probe, None);
    d.expect("READY=1", |m| has(m, "READY=1")).await;
    let asked = Instant::now();
    d.send(Control::Stop("SIGTERM")).await;
    d.expect("STOPPING=1", |m| has(m, "STOPPING=1")).await;
    d.send(Control::Stop("SIGINT")).await;
    d.task.await.unwrap().unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn an_engine_that_cannot_start_is_an_error_without_ready() {
    let probe = Arc::new(Probe {
        fail_start: true,
        ..Probe::default()
    });
    let mut d = InProcess::start(probe, None);
    let err = (&mut d.task).await.unwrap().unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "starting the renewal engine: the store is locked"
    );
    assert!(d.during(Duration::from_secs(1)).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_stop_while_the_engine_starts_ends_without_ready() {
    let probe = Arc::new(Probe {
        gate: Some(Arc::new(Notify::new())),
        ..Probe::default()
    });
    let mut d = InProcess::start(probe, None);
    d.send(Control::Stop("SIGTERM")).await;
    d.expect("STOPPING=1", |m| has(m, "STOPPING=1")).await;
    (&mut d.task).await.unwrap().unwrap();
    assert!(!d.seen.iter().any(|m| has(m, "READY=1")), "{:?}", d.seen);
}
