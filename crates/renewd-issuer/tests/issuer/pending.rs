//! Pending orders: an order saved before finalize is resumed, never duplicated — after a
//! shutdown, after the pool is dropped mid-order, and across a restart; it is abandoned
//! only when its CA left the certificate's list, or by a critical job that orders
//! elsewhere while the order's CA is out of reach for long.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use renewd_core::{Urgency, Work, WorkDone};
use renewd_issuer::{Issuer, JobResult};
use renewd_store::{LeaseHolder, StateStore};
use renewd_testca::TestCa;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::support::*;

const CERTS: [&str; 3] = ["c1", "c2", "c3"];

async fn lab_with_three() -> Lab {
    let mut b = lab().ca("a", TestCa::builder()).ca("b", TestCa::builder());
    for c in CERTS {
        b = b.cert(c, &["a", "b"]);
    }
    b.start().await
}

/// Starts the pool with every order at A held inside its challenge, and waits until all
/// three orders are there (each saved in the store before its challenge).
async fn hold_three_orders(
    lab: &Lab,
    issuer: &Issuer,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<()>,
    mpsc::Receiver<WorkDone>,
) {
    lab.solver.hold(lab.testca("a"));
    let (work_tx, work_rx) = mpsc::channel(8);
    let (done_tx, done_rx) = mpsc::channel(8);
    let shutdown = CancellationToken::new();
    let pool = tokio::spawn({
        let (issuer, shutdown) = (issuer.clone(), shutdown.clone());
        async move { issuer.run(shutdown, work_rx, done_tx).await }
    });
    for c in CERTS {
        work_tx
            .send(Work::Renew(job(c, Urgency::Normal)))
            .await
            .unwrap();
    }
    lab.solver.entered(3).await;
    for c in CERTS {
        let pending = lab.state(c).pending.expect("saved before the challenge");
        assert_eq!(pending.ca.as_str(), "a");
        let mode = std::fs::metadata(&pending.key_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{c}");
    }
    assert_eq!(lab.counts("a").orders_created, 3);
    (shutdown, pool, done_rx)
}

/// Three orders at A saved before their challenges, then the pool shut down under them
/// (the orders stay pending at A and in the store) and the challenges let through again.
async fn leave_three_orders_pending(lab: &Lab, issuer: &Issuer) {
    let (shutdown, pool, _done) = hold_three_orders(lab, issuer).await;
    shutdown.cancel();
    pool.await.unwrap();
    lab.solver.stop_holding();
}

async fn resume_all(lab: &Lab) {
    lab.solver.stop_holding();
    let issuer = lab.issuer();
    let results = run(
        &issuer,
        CERTS.iter().map(|c| job(c, Urgency::Normal)).collect(),
    )
    .await;
    for (c, r) in CERTS.iter().zip(results) {
        assert!(r.is_renewed(), "{c}: {r:?}");
        assert_eq!(lab.issuer_of(c).as_deref(), Some("a"));
        assert_eq!(lab.state(c).pending, None, "{c}");
    }
    let a = lab.counts("a");
    assert_eq!(
        a.orders_created, 3,
        "the saved orders were resumed, none created"
    );
    assert_eq!(a.certificates_issued, 3);
    assert_eq!(lab.counts("b").orders_created, 0);
    let keys = lab.dir.path().join("state/pending");
    assert_eq!(
        std::fs::read_dir(keys).unwrap().count(),
        0,
        "the order keys are gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_at_the_saved_order_and_the_next_run_resumes_it() {
    let lab = lab_with_three().await;
    let issuer = lab.issuer();
    let (shutdown, pool, mut done) = hold_three_orders(&lab, &issuer).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), pool)
        .await
        .expect("the pool stops without waiting for the held orders")
        .unwrap();
    let mut answered = Vec::new();
    while let Ok(d) = done.try_recv() {
        assert!(d.was_renewal);
        answered.push(d.cert.to_string());
    }
    answered.sort();
    assert_eq!(answered, CERTS, "every job was answered");
    for c in CERTS {
        let state = lab.state(c);
        assert!(state.pending.is_some(), "{c}");
        assert_eq!(state.failure_streak, 0, "a shutdown is not a failure");
        // The lease was released.
        let lease = lab
            .store
            .acquire_lease(
                &name(c),
                &LeaseHolder::this_process(),
                Duration::from_secs(5),
            )
            .unwrap()
            .acquired()
            .unwrap();
        lab.store.release_lease(&lease).unwrap();
    }
    assert_eq!(lab.counts("a").certificates_issued, 0);
    resume_all(&lab).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_pool_mid_order_loses_nothing() {
    let lab = lab_with_three().await;
    let issuer = lab.issuer();
    let (_shutdown, pool, _done) = hold_three_orders(&lab, &issuer).await;
    // As abrupt as it gets in-process: the pool's future is dropped mid-order.
    pool.abort();
    assert!(pool.await.unwrap_err().is_cancelled());
    drop(issuer);
    // The jobs are aborted with the pool; their tasks end (releasing their leases) as the
    // runtime gets to them.
    while !lab.store.status_snapshot().unwrap().leases.is_empty() {
        tokio::task::yield_now().await;
    }
    resume_all(&lab).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_order_at_a_ca_no_longer_listed_is_abandoned() {
    let lab = lab_with_three().await;
    let issuer = lab.issuer();
    leave_three_orders_pending(&lab, &issuer).await;
    // c1 now comes from B only.
    issuer.reload(lab.config_with(&[("c1", &["b"])])).unwrap();
    let result = renew(&issuer, "c1", Urgency::Normal).await;
    assert!(result.is_renewed(), "{result:?}");
    assert_eq!(lab.issuer_of("c1").as_deref(), Some("b"));
    let note = lab
        .ledger("a")
        .into_iter()
        .find(|r| r.detail.as_deref().is_some_and(|d| d.contains("abandoned")))
        .unwrap();
    assert!(
        note.detail
            .unwrap()
            .contains("no longer in the certificate's list")
    );
    assert_eq!(note.cert.unwrap().as_str(), "c1");
    // The others still resume at A.
    for c in ["c2", "c3"] {
        assert!(renew(&issuer, c, Urgency::Normal).await.is_renewed());
    }
    let a = lab.counts("a");
    assert_eq!((a.orders_created, a.certificates_issued), (3, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_critical_job_abandons_the_pending_order_and_only_when_it_orders_elsewhere() {
    let lab = lab_with_three().await;
    let issuer = lab.issuer();
    leave_three_orders_pending(&lab, &issuer).await;
    // A goes down (its directory answers 503), and the last good probe is too old to trust.
    lab.clock.advance(chrono::TimeDelta::seconds(31));
    lab.testca("a")
        .set_fault_plan(renewd_testca::FaultPlan::new().rule(
            renewd_testca::Endpoint::Directory,
            renewd_testca::Fault::status(503),
        ))
        .unwrap();
    // Normal and urgent: wait for A (the order may still complete there).
    for urgency in [Urgency::Normal, Urgency::Urgent] {
        let result = renew(&issuer, "c1", urgency).await;
        assert!(!result.is_renewed(), "{urgency}: {result:?}");
        assert!(lab.state("c1").pending.is_some(), "{urgency}");
        assert_eq!(lab.counts("b").orders_created, 0, "{urgency}");
        let ledger = lab.ledger("a");
        assert!(
            !ledger
                .iter()
                .any(|r| r.detail.as_deref().is_some_and(|d| d.contains("abandoned"))),
            "{urgency}"
        );
    }
    // Critical: the order at A is abandoned as the job orders at B.
    let result = renew(&issuer, "c1", Urgency::Critical).await;
    assert!(result.is_renewed(), "{result:?}");
    assert_eq!(lab.issuer_of("c1").as_deref(), Some("b"));
    assert_eq!(lab.state("c1").pending, None);
    assert_eq!(lab.counts("b").orders_created, 1);
    let note = lab
        .ledger("a")
        .into_iter()
        .find(|r| r.detail.as_deref().is_some_and(|d| d.contains("abandoned")))
        .unwrap();
    assert!(note.detail.unwrap().contains("failing over to b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_order_for_names_no_longer_configured_is_dropped_before_resuming() {
    let lab = lab_with_three().await;
    let issuer = lab.issuer();
    leave_three_orders_pending(&lab, &issuer).await;
    // c1 gains a name while its order waits.
    let text = lab.config_text(&[]).replace(
        "domains = [\"c1.example.test\"]",
        "domains = [\"c1.example.test\", \"api.example.test\"]",
    );
    issuer.reload(lab.parse_config(&text)).unwrap();
    let result = renew(&issuer, "c1", Urgency::Normal).await;
    assert!(result.is_renewed(), "{result:?}");
    let a = lab.counts("a");
    assert_eq!(
        (a.orders_created, a.certificates_issued),
        (4, 1),
        "one new order, and no certificate for the old names"
    );
    let mut names: Vec<String> = lab
        .testca("a")
        .certificates()
        .into_iter()
        .flat_map(|c| c.names)
        .collect();
    names.sort();
    assert_eq!(names, ["api.example.test", "c1.example.test"]);
    let note = lab
        .ledger("a")
        .into_iter()
        .find(|r| r.detail.as_deref().is_some_and(|d| d.contains("abandoned")))
        .unwrap();
    assert!(
        note.detail.unwrap().contains("names changed"),
        "the ledger says why"
    );
    // The others, unchanged, still resume their orders.
    for c in ["c2", "c3"] {
        assert!(renew(&issuer, c, Urgency::Normal).await.is_renewed());
    }
    assert_eq!(lab.counts("a").orders_created, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critical_job_waits_out_a_short_rate_limit_on_the_orders_ca() {
    let lab = lab_with_three().await;
    let issuer = lab.issuer();
    leave_three_orders_pending(&lab, &issuer).await;
    let block = |minutes: i64| {
        let until = lab.now() + chrono::TimeDelta::minutes(minutes);
        lab.store
            .update_ca_health(&ca_name("a"), &mut |h| h.blocked_until = Some(until))
            .unwrap();
        until
    };
    // A rate-limited renewd for ten minutes: even a critical job waits for the order.
    let until = block(10);
    for (c, urgency) in [("c1", Urgency::Critical), ("c2", Urgency::Urgent)] {
        let result = renew(&issuer, c, urgency).await;
        assert!(
            matches!(result, JobResult::Deferred { until: u, .. } if u == until),
            "{c}: {result:?}"
        );
        assert!(lab.state(c).pending.is_some(), "{c}");
        assert_eq!(lab.state(c).failure_streak, 0, "{c}");
    }
    assert_eq!(lab.counts("b").orders_created, 0);
    // Blocked for hours: a critical job gives the order up and orders at B; an urgent one
    // still waits.
    block(180);
    let result = renew(&issuer, "c2", Urgency::Urgent).await;
    assert!(matches!(result, JobResult::Deferred { .. }), "{result:?}");
    let result = renew(&issuer, "c1", Urgency::Critical).await;
    assert!(result.is_renewed(), "{result:?}");
    assert_eq!(lab.issuer_of("c1").as_deref(), Some("b"));
    assert_eq!(lab.counts("b").orders_created, 1);
    assert!(lab.state("c2").pending.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_cannot_reach_a_persisted_point_is_aborted_after_the_grace_period() {
    // newOrder never answers, so no order is ever saved: on shutdown the job may not simply
    // stop (an order may exist at the CA), it gets the grace period, then it is aborted.
    let a = TestCa::builder().fault_plan(renewd_testca::FaultPlan::new().rule(
        renewd_testca::Endpoint::NewOrder,
        renewd_testca::Fault::hang(),
    ));
    let lab = lab().ca("a", a).cert("www", &["a"]).start().await;
    let text = lab
        .config_text(&[])
        .replace("[daemon]\n", "[daemon]\nshutdown_grace = \"1s\"\n");
    let issuer = Issuer::new(renewd_issuer::IssuerParts {
        config: lab.parse_config(&text),
        ..lab_parts(&lab)
    })
    .unwrap();
    let (work_tx, work_rx) = mpsc::channel(8);
    let (done_tx, mut done_rx) = mpsc::channel(8);
    let shutdown = CancellationToken::new();
    let pool = tokio::spawn({
        let (issuer, shutdown) = (issuer.clone(), shutdown.clone());
        async move { issuer.run(shutdown, work_rx, done_tx).await }
    });
    work_tx
        .send(Work::Renew(job("www", Urgency::Normal)))
        .await
        .unwrap();
    // Wait until the CA holds the newOrder request.
    while lab
        .counts("a")
        .requests_to(renewd_testca::Endpoint::NewOrder)
        == 0
    {
        tokio::task::yield_now().await;
    }
    let started = std::time::Instant::now();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), pool)
        .await
        .expect("aborted after the grace period")
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1),
        "{waited:?}: the grace period was given"
    );
    assert_eq!(done_rx.recv().await.unwrap().cert.as_str(), "www");
    let state = lab.store.cert_state(&name("www")).unwrap();
    assert!(state.is_none_or(|s| s.failure_streak == 0 && s.pending.is_none()));
    // The aborted job's lease is free.
    let lease = lab
        .store
        .acquire_lease(
            &name("www"),
            &LeaseHolder::this_process(),
            Duration::from_secs(5),
        )
        .unwrap();
    assert!(lease.acquired().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgent_job_gives_up_the_pending_order_once_its_cas_circuit_is_open() {
    let lab = lab_with_three().await;
    let issuer = lab.issuer();
    leave_three_orders_pending(&lab, &issuer).await;
    // The breaker has judged A down (as repeated failures of other certificates would).
    let mut health = lab.health("a");
    health.circuit = renewd_store::CircuitState::Open;
    health.consecutive_failures = 3;
    health.open_until = Some(lab.now() + chrono::TimeDelta::hours(1));
    lab.store.put_ca_health(&health).unwrap();
    // Normal: still waits for A.
    let result = renew(&issuer, "c1", Urgency::Normal).await;
    assert!(!result.is_renewed(), "{result:?}");
    assert!(lab.state("c1").pending.is_some());
    assert_eq!(lab.counts("b").orders_created, 0);
    // Urgent: the order at A is given up, and B issues.
    let result = renew(&issuer, "c1", Urgency::Urgent).await;
    assert!(result.is_renewed(), "{result:?}");
    assert_eq!(lab.issuer_of("c1").as_deref(), Some("b"));
    assert_eq!(lab.state("c1").pending, None);
    assert_eq!(lab.counts("b").orders_created, 1);
    assert!(
        lab.ledger("a")
            .iter()
            .any(|r| r.detail.as_deref().is_some_and(|d| d.contains("abandoned"))),
        "the abandoned order is noted in A's ledger"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_order_whose_certificate_fails_verification_is_local_not_the_ca_s_fault() {
    let lab = lab()
        .ca("a", TestCa::builder())
        .breaker("failure_threshold", "1")
        .cert("c1", &["a"])
        .cert("c2", &["a"])
        .cert("c3", &["a"])
        .start()
        .await;
    let issuer = lab.issuer();
    leave_three_orders_pending(&lab, &issuer).await;
    // c1's saved key is replaced by c2's: the certificate A issues for c1's CSR no longer
    // matches the key renewd would install with it.
    let (c1, c2) = (
        lab.state("c1").pending.unwrap(),
        lab.state("c2").pending.unwrap(),
    );
    std::fs::copy(&c2.key_path, &c1.key_path).unwrap();
    let result = renew(&issuer, "c1", Urgency::Normal).await;
    let JobResult::Failed { class, message, .. } = &result else {
        panic!("{result:?}");
    };
    assert_eq!(*class, renewd_core::FailureClass::Local, "{message}");
    assert!(
        message.contains("the resumed order's certificate does not fit"),
        "{message}"
    );
    let health = lab.health("a");
    assert_eq!(
        (health.consecutive_failures, health.circuit),
        (0, renewd_store::CircuitState::Closed),
        "a local failure is never blamed on the CA"
    );
    assert_eq!(lab.state("c1").pending, None, "the order was dropped");
    // The CA is still used as before: the next attempt makes a new order there.
    lab.clock.advance(chrono::TimeDelta::hours(1));
    assert!(renew(&issuer, "c1", Urgency::Normal).await.is_renewed());
}
