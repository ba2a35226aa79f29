//! A scheduler on a real `SqliteStore`, driven like the daemon drives it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use renewd_core::{CaName, CertName, Clock, Work, WorkDone};
use renewd_scheduler::{
    CertPlan, Inventory, SchedulePolicy, Scheduler, SchedulerCommand, SchedulerError,
    SchedulerStatus, TokioClock,
};
use renewd_store::{
    CaHealth, CertState, CircuitState, InstalledCert, PendingOrder, SqliteOptions, SqliteStore,
    StateStore,
};
use tempfile::TempDir;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The virtual wall time every test starts at.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-06-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub fn days(n: i64) -> TimeDelta {
    TimeDelta::days(n)
}

pub fn name(s: &str) -> CertName {
    s.parse().unwrap()
}

pub fn ca(s: &str) -> CaName {
    s.parse().unwrap()
}

pub fn plan(n: &str) -> CertPlan {
    CertPlan::new(name(n), vec![ca("zerossl"), ca("letsencrypt")])
}

/// The store and the clock, before the scheduler starts.
pub struct World {
    pub dir: TempDir,
    pub store: Arc<SqliteStore>,
    pub clock: TokioClock,
    pub policy: SchedulePolicy,
}

impl World {
    /// Must be called inside the (paused) runtime: the clock starts at `t0()` now.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = TokioClock::starting_at(t0());
        let store = SqliteStore::open_in(
            dir.path(),
            SqliteOptions {
                clock: Arc::new(clock),
                ..SqliteOptions::default()
            },
        )
        .unwrap();
        Self {
            dir,
            store: Arc::new(store),
            clock,
            policy: SchedulePolicy {
                ari: false,
                ..SchedulePolicy::default()
            },
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Records `cert` as installed with this validity.
    pub fn installed(&self, cert: &str, not_before: DateTime<Utc>, not_after: DateTime<Utc>) {
        self.store
            .update_cert_state(&name(cert), &mut |s| {
                s.installed = Some(InstalledCert {
                    serial: format!("{:x}", not_before.timestamp_millis()),
                    not_before,
                    not_after,
                    issuer_ca: Some(ca("zerossl")),
                    account_url: None,
                    ari_cert_id: None,
                });
            })
            .unwrap();
    }

    /// A 90-day certificate due (at 60 days) `in_` from now.
    pub fn due_in(&self, cert: &str, in_: TimeDelta) -> DateTime<Utc> {
        let due = self.now() + in_;
        self.installed(cert, due - days(60), due + days(30));
        due
    }

    pub fn pending(&self, cert: &str) {
        let order = PendingOrder {
            ca: ca("zerossl"),
            account_url: "https://ca.invalid/acct/1".into(),
            order_url: format!("https://ca.invalid/order/{cert}"),
            key_path: self.dir.path().join(format!("{cert}.key")),
            csr_der: vec![0x30, 0x00],
            created_at: self.now(),
        };
        self.store.set_pending_order(&name(cert), &order).unwrap();
    }

    /// What the issuer writes after a failed attempt.
    pub fn fail(&self, cert: &str, next_attempt: DateTime<Utc>) -> CertState {
        let now = self.now();
        self.store
            .update_cert_state(&name(cert), &mut |s| {
                s.failure_streak += 1;
                s.backoff_step += 1;
                s.failing_since.get_or_insert(now);
                s.next_attempt = Some(next_attempt);
            })
            .unwrap()
    }

    /// What the issuer writes after installing a new 90-day certificate.
    pub fn succeed(&self, cert: &str) {
        let now = self.now();
        self.store
            .update_cert_state(&name(cert), &mut |s| {
                s.installed = Some(InstalledCert {
                    serial: format!("{:x}", now.timestamp_millis()),
                    not_before: now,
                    not_after: now + days(90),
                    issuer_ca: Some(ca("zerossl")),
                    account_url: None,
                    ari_cert_id: None,
                });
                s.failure_streak = 0;
                s.backoff_step = 0;
                s.failing_since = None;
                s.next_attempt = None;
                s.last_success = Some(now);
            })
            .unwrap();
    }

    pub fn circuit(&self, ca_name: &str, open_until: Option<DateTime<Utc>>) {
        let mut h = CaHealth::new(ca(ca_name));
        if let Some(until) = open_until {
            h.circuit = CircuitState::Open;
            h.open_until = Some(until);
        }
        self.store.put_ca_health(&h).unwrap();
    }

    pub fn scheduler(&self, plans: Vec<CertPlan>, inventory: Inventory) -> Scheduler {
        Scheduler::load(
            Arc::clone(&self.store) as Arc<dyn StateStore>,
            Arc::new(self.clock),
            self.policy,
            plans,
            inventory,
        )
    }

    /// Loads and runs a scheduler whose work channel holds `capacity` items.
    pub fn run(&self, plans: Vec<CertPlan>, capacity: usize) -> Running {
        self.start(self.scheduler(plans, Inventory::new()), capacity)
    }

    pub fn start(&self, scheduler: Scheduler, capacity: usize) -> Running {
        let (commands, commands_rx) = mpsc::channel(64);
        let (work_tx, work) = mpsc::channel(capacity);
        let token = CancellationToken::new();
        let status = scheduler.status();
        let liveness = scheduler.liveness();
        let task = tokio::spawn(scheduler.run(token.clone(), commands_rx, work_tx));
        Running {
            commands,
            work,
            token,
            task: Some(task),
            status,
            liveness,
        }
    }
}

/// A running scheduler loop.
pub struct Running {
    pub commands: mpsc::Sender<SchedulerCommand>,
    pub work: mpsc::Receiver<Work>,
    pub token: CancellationToken,
    pub task: Option<JoinHandle<Result<(), SchedulerError>>>,
    pub status: watch::Receiver<SchedulerStatus>,
    pub liveness: watch::Receiver<u64>,
}

impl Running {
    /// The next piece of work (virtual time runs until it comes; a test fails instead of
    /// hanging when nothing comes for a virtual year).
    pub async fn next(&mut self) -> Work {
        self.next_within(Duration::from_secs(365 * 86_400))
            .await
            .expect("work within a virtual year")
    }

    /// The next piece of work if one comes within `d` of virtual time.
    pub async fn next_within(&mut self, d: Duration) -> Option<Work> {
        tokio::time::timeout(d, self.work.recv())
            .await
            .ok()
            .flatten()
    }

    pub async fn send(&self, command: SchedulerCommand) {
        self.commands.send(command).await.unwrap();
    }

    pub async fn done(&self, cert: &str, was_renewal: bool) {
        self.send(SchedulerCommand::WorkDone(WorkDone {
            cert: name(cert),
            was_renewal,
        }))
        .await;
    }

    /// Waits until the published status satisfies `pred`.
    pub async fn status_until(
        &mut self,
        pred: impl Fn(&SchedulerStatus) -> bool,
    ) -> SchedulerStatus {
        let wait = self.status.wait_for(|s| pred(s));
        tokio::time::timeout(Duration::from_secs(7 * 86_400), wait)
            .await
            .expect("the status within a virtual week")
            .unwrap()
            .clone()
    }

    /// Stops the loop and returns how it ended.
    pub async fn stop(mut self) -> Result<(), SchedulerError> {
        self.token.cancel();
        self.task.take().unwrap().await.unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// The certificate and kind of a piece of work: `("www", "renew")` or `("www", "ari")`.
pub fn what(work: &Work) -> (String, &'static str) {
    match work {
        Work::Renew(job) => (job.cert.to_string(), "renew"),
        Work::AriCheck(cert) => (cert.to_string(), "ari"),
        _ => unreachable!("no other work exists"),
    }
}

pub fn job(work: Work) -> renewd_core::RenewalJob {
    match work {
        Work::Renew(job) => job,
        other => panic!("expected a renewal, got {other:?}"),
    }
}
