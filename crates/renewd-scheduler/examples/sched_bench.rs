//! The scheduler at 100,000 certificates: load time, dispatch and `WorkDone` cost, memory.
//!
//! ```text
//! cargo run --release -p renewd-scheduler --example sched_bench [-- COUNT]
//! ```
//!
//! Builds a store of COUNT (default 100,000) certificates on tmpfs (`/dev/shm` when it
//! exists; the store commits with `synchronous=FULL`, and the fixture is not what is
//! measured): most valid with due times spread over 60 days and ARI windows for a fifth,
//! 5 % missing, 2 % backing off, 1 % with a pending order. Then:
//!
//! 1. `Scheduler::load` — wall time, and peak RSS (`VmHWM`, reset first through
//!    `/proc/self/clear_refs`) above the RSS before.
//! 2. The loop dispatches everything due at start into a channel large enough to hold it
//!    all (so the pool's speed does not count): time per dispatch.
//! 3. The "pool" records a success for each in the store (not timed), then all the
//!    `WorkDone`s are sent at once: time per `WorkDone` until nothing is in flight.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeDelta, Utc};
use renewd_core::{CaName, CertName, Clock, SystemClock, Work, WorkDone};
use renewd_scheduler::{
    CertPlan, Inventory, SchedulePolicy, Scheduler, SchedulerCommand, SchedulerStatus,
};
use renewd_store::{InstalledCert, PendingOrder, SqliteOptions, SqliteStore, StateStore};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |a| a.parse().expect("COUNT is a number"));
    let base = if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let store = Arc::new(SqliteStore::open_in(base.path(), SqliteOptions::default()).unwrap());
    let cas: Arc<[CaName]> =
        vec!["zerossl".parse().unwrap(), "letsencrypt".parse().unwrap()].into();
    let t = Instant::now();
    let plans = fixture(&store, &cas, count, base.path());
    println!(
        "fixture: {count} certificates in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(measure(store, plans));
}

async fn measure(store: Arc<SqliteStore>, plans: Vec<CertPlan>) {
    let count = plans.len();
    reset_peak();
    let rss_before = status_kib("VmRSS");
    let t = Instant::now();
    let scheduler = Scheduler::load(
        Arc::clone(&store) as Arc<dyn StateStore>,
        Arc::new(SystemClock),
        SchedulePolicy::default(),
        plans,
        Inventory::new(),
    );
    let load = t.elapsed();
    let peak = status_kib("VmHWM");
    let rss_after = status_kib("VmRSS");
    println!(
        "load: {:.0} ms ({:.2} µs/cert); VmHWM {:.1} MiB above the {:.1} MiB before; RSS after {:.1} MiB",
        load.as_secs_f64() * 1e3,
        load.as_secs_f64() * 1e6 / count as f64,
        (peak - rss_before) / 1024.0,
        rss_before / 1024.0,
        rss_after / 1024.0,
    );
    let mut status = scheduler.status();
    let initial = status.borrow().clone();
    println!("status: {initial}");
    let due = initial.queued;

    let (commands, commands_rx) = mpsc::channel(count + 16);
    let (work_tx, mut work) = mpsc::channel(count + 16);
    let token = CancellationToken::new();
    let t = Instant::now();
    let task = tokio::spawn(scheduler.run(token.clone(), commands_rx, work_tx));
    let st = wait(&mut status, |s| s.in_flight == due).await;
    let dispatch = t.elapsed();
    println!(
        "dispatch: {due} due at start in {:.0} ms ({:.1} µs each)",
        dispatch.as_secs_f64() * 1e3,
        dispatch.as_secs_f64() * 1e6 / due.max(1) as f64
    );
    assert_eq!(st.queued, 0);

    let mut done = Vec::with_capacity(due);
    let now = SystemClock.now();
    while let Ok(w) = work.try_recv() {
        if let Work::Renew(job) = &w {
            store.clear_pending_order(&job.cert).unwrap();
            store
                .update_cert_state(&job.cert, &mut |s| {
                    s.installed = Some(installed(now - TimeDelta::minutes(1), 90));
                    s.failure_streak = 0;
                    s.next_attempt = None;
                    // As after an ARI fetch at installation: no check due at once.
                    s.ari.next_check = Some(now + TimeDelta::hours(6));
                })
                .unwrap();
        } else {
            store
                .update_cert_state(w.cert(), &mut |s| {
                    s.ari.next_check = Some(now + TimeDelta::hours(6));
                })
                .unwrap();
        }
        done.push(WorkDone {
            cert: w.cert().clone(),
            was_renewal: matches!(w, Work::Renew(_)),
        });
    }
    assert_eq!(done.len(), due);
    reset_peak();
    let t = Instant::now();
    for d in done {
        commands.send(SchedulerCommand::WorkDone(d)).await.unwrap();
    }
    let st = wait(&mut status, |s| s.in_flight == 0).await;
    let per = t.elapsed();
    println!(
        "work done: {due} in {:.0} ms ({:.1} µs each, store reads included); VmHWM {:.1} MiB",
        per.as_secs_f64() * 1e3,
        per.as_secs_f64() * 1e6 / due.max(1) as f64,
        status_kib("VmHWM") / 1024.0
    );
    println!("status: {st}");
    token.cancel();
    task.await.unwrap().unwrap();
}

async fn wait(
    status: &mut tokio::sync::watch::Receiver<SchedulerStatus>,
    pred: impl Fn(&SchedulerStatus) -> bool,
) -> SchedulerStatus {
    status.wait_for(|s| pred(s)).await.unwrap().clone()
}

fn installed(not_before: chrono::DateTime<Utc>, days: i64) -> InstalledCert {
    InstalledCert {
        serial: format!("{:x}", not_before.timestamp_millis()),
        not_before,
        not_after: not_before + TimeDelta::days(days),
        issuer_ca: None,
        account_url: None,
        ari_cert_id: None,
    }
}

fn fixture(store: &SqliteStore, cas: &Arc<[CaName]>, count: usize, dir: &Path) -> Vec<CertPlan> {
    let now = Utc::now();
    let mut plans = Vec::with_capacity(count);
    for i in 0..count {
        let name: CertName = format!("site{i:06}").parse().unwrap();
        plans.push(CertPlan {
            name: name.clone(),
            cas: Arc::clone(cas),
            renew_before: None,
        });
        match i % 100 {
            // Missing: nothing stored.
            0..=4 => {}
            5 | 6 => {
                store
                    .update_cert_state(&name, &mut |s| {
                        s.installed = Some(installed(now - TimeDelta::days(70), 90));
                        s.failure_streak = 2;
                        s.next_attempt = Some(now + TimeDelta::minutes(10 + (i % 50) as i64));
                    })
                    .unwrap();
            }
            7 => {
                store
                    .update_cert_state(&name, &mut |s| {
                        s.installed = Some(installed(now - TimeDelta::days(65), 90));
                    })
                    .unwrap();
                let order = PendingOrder {
                    ca: cas[0].clone(),
                    account_url: "https://ca.invalid/acct".into(),
                    order_url: format!("https://ca.invalid/order/{i}"),
                    key_path: dir.join(format!("{i}.key")),
                    csr_der: vec![0x30; 300],
                    created_at: now,
                };
                store.set_pending_order(&name, &order).unwrap();
            }
            k => {
                // Valid, due over the next 60 days; a fifth with an ARI window.
                let age = TimeDelta::minutes((i as i64 * 37) % (60 * 24 * 60));
                store
                    .update_cert_state(&name, &mut |s| {
                        s.installed = Some(installed(now - age, 90));
                        s.ari.next_check = Some(now + TimeDelta::hours(1 + (i % 24) as i64));
                        if k % 5 == 0 {
                            s.ari.window_start = Some(now + TimeDelta::days(20));
                            s.ari.window_end = Some(now + TimeDelta::days(22));
                        }
                    })
                    .unwrap();
            }
        }
    }
    plans
}

fn reset_peak() {
    fs::write("/proc/self/clear_refs", "5").expect("resetting the peak RSS");
}

fn status_kib(field: &str) -> f64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("the field is in /proc/self/status")
}
