//! The lab the integration tests run in: test CAs (each `TestCa` is one CA, with its fault
//! plan), a real `SqliteStore` in a temp directory on a `ManualClock`, a config written as
//! TOML and validated like the daemon's, recording host actions and a challenge solver that
//! can hold orders at one CA.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use renewd_acme::{BoxError, BoxFuture, ChallengeAnswer, ChallengeSolver, PollPolicy};
use renewd_config::{Config, LoadEnv};
use renewd_core::{
    CaName, CertName, ChallengeType, Clock, ManualClock, RenewalJob, RenewalReason, Urgency,
};
use renewd_issuer::{
    Deployment, EventSender, FailureNotice, HostActions, Issuer, IssuerEvent, IssuerOptions,
    IssuerParts, JobResult, ServedCheck, Solvers, event_channel,
};
use renewd_store::{
    CaHealth, CertState, CertStore, LedgerQuery, SqliteOptions, SqliteStore, StateStore,
};
use renewd_testca::{Counts, TestCaBuilder, TestCaHandle};
use tempfile::TempDir;
use tokio::sync::{Notify, Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

/// One CA of the lab.
pub enum CaEnd {
    /// A running test CA.
    Running(TestCaHandle),
    /// A directory URL on a port nothing listens on: connections are refused.
    Closed(u16),
}

struct CaSpec {
    name: String,
    end: CaEnd,
    extra: String,
}

struct CertSpec {
    name: String,
    cas: Vec<String>,
    extra: String,
}

/// Builds a [`Lab`].
pub struct LabBuilder {
    cas: Vec<(String, Option<TestCaBuilder>, String)>,
    certs: Vec<CertSpec>,
    settings: BTreeMap<&'static str, String>,
    workers: usize,
}

impl LabBuilder {
    /// A test CA called `name`.
    pub fn ca(mut self, name: &str, ca: TestCaBuilder) -> Self {
        self.cas.push((name.to_string(), Some(ca), String::new()));
        self
    }

    /// A test CA with extra `[[ca]]` lines (`profile = "…"`, `max_concurrent_orders = 2`).
    pub fn ca_with(mut self, name: &str, ca: TestCaBuilder, extra: &str) -> Self {
        self.cas
            .push((name.to_string(), Some(ca), extra.to_string()));
        self
    }

    /// A CA whose directory is on a closed port.
    pub fn closed_ca(mut self, name: &str) -> Self {
        self.cas.push((name.to_string(), None, String::new()));
        self
    }

    /// A certificate `name` for `NAME.example.test`, from `cas` in that order.
    pub fn cert(self, name: &str, cas: &[&str]) -> Self {
        self.cert_with(name, cas, "")
    }

    /// A certificate with extra `[[cert]]` lines.
    pub fn cert_with(mut self, name: &str, cas: &[&str], extra: &str) -> Self {
        self.certs.push(CertSpec {
            name: name.to_string(),
            cas: cas.iter().map(|s| s.to_string()).collect(),
            extra: extra.to_string(),
        });
        self
    }

    /// `[breaker] key = value` (value as TOML).
    pub fn breaker(mut self, key: &'static str, value: &str) -> Self {
        self.settings.insert(key, value.to_string());
        self
    }

    /// `[daemon] workers`.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    pub async fn start(self) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let mut cas = Vec::new();
        for (name, builder, extra) in self.cas {
            let end = match builder {
                Some(b) => CaEnd::Running(b.start().await.unwrap()),
                None => CaEnd::Closed(renewd_testsupport::free_port()),
            };
            cas.push(CaSpec { name, end, extra });
        }
        // Whole seconds: the store keeps milliseconds.
        let start = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
        let clock = ManualClock::new(start);
        let state_dir = dir.path().join("state");
        let store = Arc::new(
            SqliteStore::open_in(
                &state_dir,
                SqliteOptions {
                    clock: Arc::new(clock.clone()),
                    ..SqliteOptions::default()
                },
            )
            .unwrap(),
        );
        let (events, _) = event_channel(1024);
        let lab = Lab {
            dir,
            clock,
            store,
            cas,
            certs: self.certs,
            settings: self.settings,
            workers: self.workers,
            host: Arc::new(RecordingHost::default()),
            solver: Arc::new(TestSolver::default()),
            events,
        };
        std::fs::create_dir_all(lab.dir.path().join("www")).unwrap();
        for ca in &lab.cas {
            if let CaEnd::Running(h) = &ca.end {
                std::fs::write(lab.root_path(&ca.name), h.root_pem()).unwrap();
            }
        }
        lab
    }
}

/// Test CAs, a store, a clock and what the issuer was asked to do.
pub struct Lab {
    pub dir: TempDir,
    pub clock: ManualClock,
    pub store: Arc<SqliteStore>,
    cas: Vec<CaSpec>,
    certs: Vec<CertSpec>,
    settings: BTreeMap<&'static str, String>,
    workers: usize,
    pub host: Arc<RecordingHost>,
    pub solver: Arc<TestSolver>,
    pub events: EventSender,
}

/// Logs to the test's output when `RUST_LOG` is set.
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

pub fn lab() -> LabBuilder {
    init_logs();
    LabBuilder {
        cas: Vec::new(),
        certs: Vec::new(),
        settings: BTreeMap::new(),
        workers: 4,
    }
}

/// Short waits (the short order limit is each CA's `order_timeout`, see
/// [`Lab::config_text`]).
pub fn quick_options() -> IssuerOptions {
    IssuerOptions {
        poll: PollPolicy {
            first_interval: Duration::from_millis(20),
            max_interval: Duration::from_millis(100),
            max_retry_after: Duration::from_millis(300),
            timeout: Duration::from_secs(2),
            max_failure_interval: Duration::from_millis(100),
            ..PollPolicy::default()
        },
        ..IssuerOptions::default()
    }
}

/// `at` is `expected` give or take 2 s. A `Retry-After` becomes a time on the real clock when
/// it is read and a wait when it is used; a loaded machine may pause a second in between.
#[track_caller]
pub fn assert_about(at: Option<DateTime<Utc>>, expected: DateTime<Utc>, what: &str) {
    let at = at.unwrap_or_else(|| panic!("{what}: none, expected {expected}"));
    assert!(
        (at - expected).num_seconds().abs() <= 2,
        "{what}: {at}, expected {expected}"
    );
}

pub fn name(s: &str) -> CertName {
    CertName::new(s).unwrap()
}

pub fn ca_name(s: &str) -> CaName {
    CaName::new(s).unwrap()
}

pub fn job(cert: &str, urgency: Urgency) -> RenewalJob {
    RenewalJob::new(name(cert), RenewalReason::Expiring, urgency)
}

impl Lab {
    fn root_path(&self, ca: &str) -> PathBuf {
        self.dir.path().join(format!("{ca}-root.pem"))
    }

    /// The config as TOML (`cert_cas` overrides certificates' CA lists).
    pub fn config_text(&self, cert_cas: &[(&str, &[&str])]) -> String {
        let dir = self.dir.path().display();
        let mut t = format!(
            "state_dir = \"{dir}/state\"\n\n[daemon]\nworkers = {}\n\n[breaker]\n",
            self.workers
        );
        for (k, v) in &self.settings {
            t += &format!("{k} = {v}\n");
        }
        t += &format!("\n[http01]\nwebroot = \"{dir}/www\"\n");
        for ca in &self.cas {
            let directory = match &ca.end {
                CaEnd::Running(h) => h.directory_url(),
                CaEnd::Closed(port) => format!("https://127.0.0.1:{port}/dir"),
            };
            t += &format!(
                "\n[[ca]]\nname = \"{}\"\ndirectory = \"{directory}\"\ncontact = [\"mailto:ops@example.test\"]\n",
                ca.name
            );
            if matches!(ca.end, CaEnd::Running(_)) {
                t += &format!(
                    "trust_roots = [\"{}\"]\n",
                    self.root_path(&ca.name).display()
                );
            }
            if !ca.extra.contains("order_timeout") {
                // A CA that never completes an order costs a second, not ten minutes.
                t += "order_timeout = \"1200ms\"\n";
            }
            if !ca.extra.contains("requests_per_second") {
                // The limiter has its own tests; here it would only slow the flows down.
                t += "requests_per_second = 500\n";
            }
            t += &ca.extra;
            t += "\n";
        }
        for cert in &self.certs {
            let cas = cert_cas
                .iter()
                .find(|(n, _)| *n == cert.name)
                .map(|(_, cas)| cas.iter().map(|s| s.to_string()).collect())
                .unwrap_or_else(|| cert.cas.clone());
            let list: Vec<String> = cas.iter().map(|c| format!("\"{c}\"")).collect();
            t += &format!(
                "\n[[cert]]\nname = \"{0}\"\ndomains = [\"{0}.example.test\"]\ncas = [{1}]\n{2}\n",
                cert.name,
                list.join(", "),
                cert.extra
            );
        }
        t
    }

    pub fn config(&self) -> Config {
        self.config_with(&[])
    }

    pub fn config_with(&self, cert_cas: &[(&str, &[&str])]) -> Config {
        self.parse_config(&self.config_text(cert_cas))
    }

    pub fn parse_config(&self, text: &str) -> Config {
        Config::from_str(
            text,
            &self.dir.path().join("renewd.toml"),
            &LoadEnv::with_credentials_directory(self.dir.path()),
        )
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    /// A new issuer on the lab's store (a restart of the daemon, as far as state goes).
    pub fn issuer(&self) -> Issuer {
        self.issuer_with(self.solver.clone())
    }

    pub fn issuer_with(&self, solver: Arc<dyn ChallengeSolver>) -> Issuer {
        let config = self.config();
        let mut solvers = Solvers::new();
        for t in [
            ChallengeType::Http01,
            ChallengeType::Dns01,
            ChallengeType::TlsAlpn01,
        ] {
            solvers.insert(t, solver.clone());
        }
        Issuer::new(IssuerParts {
            cert_store: CertStore::new(&config.state_dir),
            config,
            store: self.store.clone(),
            clock: Arc::new(self.clock.clone()),
            solvers,
            host_actions: self.host.clone(),
            events: self.events.clone(),
            options: quick_options(),
        })
        .unwrap()
    }

    pub fn events(&self) -> broadcast::Receiver<IssuerEvent> {
        self.events.subscribe()
    }

    pub fn testca(&self, ca: &str) -> &TestCaHandle {
        match self.cas.iter().find(|c| c.name == ca).map(|c| &c.end) {
            Some(CaEnd::Running(h)) => h,
            _ => panic!("no running CA {ca}"),
        }
    }

    pub fn counts(&self, ca: &str) -> Counts {
        self.testca(ca).counts()
    }

    pub fn state(&self, cert: &str) -> CertState {
        self.store.cert_state(&name(cert)).unwrap().unwrap()
    }

    pub fn health(&self, ca: &str) -> CaHealth {
        self.store
            .ca_health(&ca_name(ca))
            .unwrap()
            .unwrap_or_else(|| CaHealth::new(ca_name(ca)))
    }

    /// The CA that issued the installed certificate.
    pub fn issuer_of(&self, cert: &str) -> Option<String> {
        self.state(cert)
            .installed
            .and_then(|i| i.issuer_ca)
            .map(|c| c.to_string())
    }

    pub fn ledger(&self, ca: &str) -> Vec<renewd_core::RequestOutcome> {
        self.store
            .ledger(&LedgerQuery::all().ca(ca_name(ca)))
            .unwrap()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// Every challenge type answered by `solver`.
pub fn solvers(solver: Arc<dyn ChallengeSolver>) -> Solvers {
    let mut solvers = Solvers::new();
    for t in [
        ChallengeType::Http01,
        ChallengeType::Dns01,
        ChallengeType::TlsAlpn01,
    ] {
        solvers.insert(t, solver.clone());
    }
    solvers
}

/// The parts of an issuer on the lab's store, config, clock, solver and host.
pub fn lab_parts(lab: &Lab) -> IssuerParts {
    let config = lab.config();
    IssuerParts {
        cert_store: CertStore::new(&config.state_dir),
        config,
        store: lab.store.clone(),
        clock: Arc::new(lab.clock.clone()),
        solvers: solvers(lab.solver.clone()),
        host_actions: lab.host.clone(),
        events: lab.events.clone(),
        options: quick_options(),
    }
}

/// Runs one job to its end.
pub async fn renew(issuer: &Issuer, cert: &str, urgency: Urgency) -> JobResult {
    run(issuer, vec![job(cert, urgency)]).await.remove(0)
}

/// Runs jobs together (at most `workers` at once).
pub async fn run(issuer: &Issuer, jobs: Vec<RenewalJob>) -> Vec<JobResult> {
    issuer
        .run_once(jobs, CancellationToken::new())
        .await
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

/// Host actions that record every call; deploys fail while `fail_deploy` is set, and the
/// served-certificate check finds another certificate while `serve_stale` is set.
#[derive(Debug, Default)]
pub struct RecordingHost {
    pub deploys: Mutex<Vec<Deployment>>,
    pub failures: Mutex<Vec<FailureNotice>>,
    pub served: Mutex<Vec<ServedCheck>>,
    pub fail_deploy: AtomicBool,
    pub serve_stale: AtomicBool,
}

impl RecordingHost {
    pub fn failure_calls(&self) -> Vec<FailureNotice> {
        self.failures.lock().unwrap().clone()
    }
}

impl HostActions for RecordingHost {
    fn deploy<'a>(&'a self, d: &'a Deployment) -> BoxFuture<'a, Result<(), BoxError>> {
        self.deploys.lock().unwrap().push(d.clone());
        let fail = self.fail_deploy.load(Ordering::SeqCst);
        Box::pin(async move {
            if fail {
                Err("the hook exited with status 3".into())
            } else {
                Ok(())
            }
        })
    }

    fn failure<'a>(&'a self, n: &'a FailureNotice) -> BoxFuture<'a, Result<(), BoxError>> {
        self.failures.lock().unwrap().push(n.clone());
        Box::pin(async { Ok(()) })
    }

    fn verify_served<'a>(&'a self, c: &'a ServedCheck) -> BoxFuture<'a, Result<(), BoxError>> {
        self.served.lock().unwrap().push(c.clone());
        let stale = self.serve_stale.load(Ordering::SeqCst);
        Box::pin(async move {
            if stale {
                Err(format!("{} serves serial 0badc0de, not {}", c.addrs[0], c.serial).into())
            } else {
                Ok(())
            }
        })
    }
}

/// A challenge solver for auto-valid test CAs: presents nothing, except that it can hold
/// every order at one CA inside `present` until released, and it counts the orders inside
/// `present` at once.
#[derive(Debug)]
pub struct TestSolver {
    /// `host:port` of the CA whose orders are held.
    hold_at: Mutex<Option<String>>,
    release: Semaphore,
    entered: AtomicUsize,
    entered_changed: Notify,
    inside: AtomicUsize,
    max_inside: AtomicUsize,
}

impl Default for TestSolver {
    fn default() -> Self {
        TestSolver {
            hold_at: Mutex::default(),
            release: Semaphore::new(0),
            entered: AtomicUsize::new(0),
            entered_changed: Notify::new(),
            inside: AtomicUsize::new(0),
            max_inside: AtomicUsize::new(0),
        }
    }
}

impl TestSolver {
    /// Holds orders at `ca` from now on.
    pub fn hold(&self, ca: &TestCaHandle) {
        *self.hold_at.lock().unwrap() = Some(ca.acme_addr().to_string());
    }

    /// Holds no new orders (those held stay held until released).
    pub fn stop_holding(&self) {
        *self.hold_at.lock().unwrap() = None;
    }

    /// Lets `n` held orders go on.
    pub fn release(&self, n: usize) {
        self.release.add_permits(n);
    }

    /// Waits until `n` orders in all have entered `present` at the held CA.
    pub async fn entered(&self, n: usize) {
        loop {
            let changed = self.entered_changed.notified();
            if self.entered.load(Ordering::SeqCst) >= n {
                return;
            }
            changed.await;
        }
    }

    pub fn entered_count(&self) -> usize {
        self.entered.load(Ordering::SeqCst)
    }

    /// The most orders ever inside `present` at once (held or not).
    pub fn max_inside(&self) -> usize {
        self.max_inside.load(Ordering::SeqCst)
    }
}

impl ChallengeSolver for TestSolver {
    fn present<'a>(&'a self, answer: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let inside = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_inside.fetch_max(inside, Ordering::SeqCst);
            let held = self
                .hold_at
                .lock()
                .unwrap()
                .as_ref()
                .is_some_and(|addr| answer.url.contains(addr.as_str()));
            if held {
                self.entered.fetch_add(1, Ordering::SeqCst);
                self.entered_changed.notify_waiters();
                match self.release.acquire().await {
                    Ok(permit) => permit.forget(),
                    Err(_) => return Err("closed".into()),
                }
            }
            Ok(())
        })
    }

    fn cleanup<'a>(&'a self, _: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        self.inside.fetch_sub(1, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }
}

/// The events received so far.
pub fn events_of(rx: &mut broadcast::Receiver<IssuerEvent>) -> Vec<IssuerEvent> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}
