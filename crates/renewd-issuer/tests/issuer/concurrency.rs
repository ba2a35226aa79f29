//! Limits on concurrency: at most `max_concurrent_orders` orders in flight per CA, and one
//! job per certificate — in this process and across processes (the store's lease); a job
//! that waited while another process renewed the certificate orders nothing.

use std::time::Duration;

use chrono::TimeDelta;
use renewd_core::{RenewalReason, SeenInstalled, Urgency};
use renewd_issuer::JobResult;
use renewd_store::{LeaseHolder, StateStore};
use renewd_testca::TestCa;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_in_flight_per_ca_stay_within_max_concurrent_orders() {
    let certs = ["c1", "c2", "c3", "c4", "c5"];
    let mut b = lab()
        .ca_with("a", TestCa::builder(), "max_concurrent_orders = 2")
        .workers(5);
    for c in certs {
        b = b.cert(c, &["a"]);
    }
    let lab = b.start().await;
    let issuer = lab.issuer();
    lab.solver.hold(lab.testca("a"));
    let all = tokio::spawn({
        let issuer = issuer.clone();
        async move {
            run(
                &issuer,
                certs.iter().map(|c| job(c, Urgency::Normal)).collect(),
            )
            .await
        }
    });
    // Five workers, but only two orders exist at A while both are held.
    lab.solver.entered(2).await;
    assert_eq!(lab.solver.entered_count(), 2);
    assert_eq!(lab.counts("a").orders_created, 2);
    // Each order that finishes lets exactly one more in.
    for n in 3..=5 {
        lab.solver.release(1);
        lab.solver.entered(n).await;
        assert!(lab.counts("a").orders_created <= n as u64 + 1);
    }
    lab.solver.release(2);
    let results = all.await.unwrap();
    assert!(results.iter().all(JobResult::is_renewed), "{results:?}");
    assert_eq!(lab.solver.max_inside(), 2);
    assert_eq!(lab.counts("a").orders_created, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_leased_by_another_process_is_left_alone() {
    let lab = lab()
        .ca("a", TestCa::builder())
        .cert("www", &["a"])
        .start()
        .await;
    // "Another process": another holder, alive (it is this process), lease not expired.
    let other = LeaseHolder::this_process();
    let lease = lab
        .store
        .acquire_lease(&name("www"), &other, Duration::from_secs(600))
        .unwrap()
        .acquired()
        .unwrap();
    let issuer = lab.issuer();
    assert_eq!(
        renew(&issuer, "www", Urgency::Critical).await,
        JobResult::Busy
    );
    let counts = lab.counts("a");
    assert_eq!(counts.requests.values().map(|c| c.total).sum::<u64>(), 0);
    let state = lab.state("www");
    assert_eq!(state.next_attempt, Some(lab.now() + TimeDelta::minutes(1)));
    assert_eq!(state.failure_streak, 0, "being busy is not a failure");
    assert!(state.installed.is_none());

    lab.store.release_lease(&lease).unwrap();
    assert!(renew(&issuer, "www", Urgency::Normal).await.is_renewed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_jobs_for_one_certificate_never_run_together() {
    let lab = lab()
        .ca("a", TestCa::builder())
        .cert("www", &["a"])
        .start()
        .await;
    let issuer = lab.issuer();
    let second_issuer = lab.issuer();
    lab.solver.hold(lab.testca("a"));
    let first = tokio::spawn({
        let issuer = issuer.clone();
        async move { renew(&issuer, "www", Urgency::Normal).await }
    });
    lab.solver.entered(1).await;
    // The same issuer (in-process set) and another issuer on the same store (the lease).
    assert_eq!(
        renew(&issuer, "www", Urgency::Critical).await,
        JobResult::Busy
    );
    assert_eq!(
        renew(&second_issuer, "www", Urgency::Critical).await,
        JobResult::Busy
    );
    assert_eq!(lab.counts("a").orders_created, 1);
    lab.solver.release(1);
    assert!(first.await.unwrap().is_renewed());
    assert_eq!(lab.counts("a").orders_created, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_dispatched_before_another_process_renewed_orders_nothing() {
    let lab = lab()
        .ca("a", TestCa::builder())
        .cert("www", &["a"])
        .start()
        .await;
    let issuer = lab.issuer();
    assert!(renew(&issuer, "www", Urgency::Normal).await.is_renewed());
    let first = lab.state("www").installed.unwrap().serial;
    // The scheduler dispatches a job having seen `first`; while it waits for a worker,
    // `renewd renew` in another process renews the certificate and releases the lease.
    let stale = job("www", Urgency::Normal).seen(SeenInstalled::from_serial(Some(&first)));
    let other_process = lab.issuer();
    assert!(
        renew(&other_process, "www", Urgency::Normal)
            .await
            .is_renewed()
    );
    let second = lab.state("www").installed.unwrap().serial;
    assert_ne!(first, second);
    let orders = lab.counts("a").orders_created;

    let result = run(&issuer, vec![stale.clone()]).await.remove(0);
    assert_eq!(
        result,
        JobResult::AlreadyRenewed {
            serial: second.clone()
        }
    );
    assert_eq!(lab.counts("a").orders_created, orders, "no second order");
    let state = lab.state("www");
    assert_eq!((state.failure_streak, state.last_error), (0, None));
    assert!(lab.host.failure_calls().is_empty());

    // What the job saw is still installed: it renews. A forced job renews whatever it saw.
    let current = job("www", Urgency::Normal).seen(SeenInstalled::from_serial(Some(&second)));
    assert!(run(&issuer, vec![current]).await.remove(0).is_renewed());
    let forced = renewd_core::RenewalJob {
        reason: RenewalReason::Forced,
        ..stale
    };
    assert!(run(&issuer, vec![forced]).await.remove(0).is_renewed());
    assert_eq!(lab.counts("a").orders_created, orders + 2);
}

/// The pool tells how each job ended (`JobEnded`) before its `WorkDone`: the daemon's
/// control socket answers a `renew` with it (a held lease, a deferral, a renewal by
/// another process leave no trace in the store to read back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_reports_how_each_job_ended_before_its_work_done() {
    use renewd_core::Work;
    use renewd_issuer::IssuerEvent;
    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;

    let lab = lab()
        .ca("a", TestCa::builder())
        .cert("www", &["a"])
        .start()
        .await;
    let lease = lab
        .store
        .acquire_lease(
            &name("www"),
            &LeaseHolder::this_process(),
            Duration::from_secs(600),
        )
        .unwrap()
        .acquired()
        .unwrap();
    let mut events = lab.events();
    let issuer = lab.issuer();
    let (work_tx, work_rx) = mpsc::channel(1);
    let (done_tx, mut done_rx) = mpsc::channel(1);
    let shutdown = CancellationToken::new();
    let pool = tokio::spawn({
        let (issuer, shutdown) = (issuer.clone(), shutdown.clone());
        async move { issuer.run(shutdown, work_rx, done_tx).await }
    });
    work_tx
        .send(Work::Renew(job("www", Urgency::Normal)))
        .await
        .unwrap();
    let done = done_rx.recv().await.unwrap();
    assert_eq!(done.cert, name("www"));
    // Already queued when the WorkDone came: no waiting.
    let ended: Vec<_> = events_of(&mut events)
        .into_iter()
        .filter_map(|e| match e {
            IssuerEvent::JobEnded { cert, result } => Some((cert, result)),
            _ => None,
        })
        .collect();
    assert_eq!(ended, [(name("www"), JobResult::Busy)]);
    shutdown.cancel();
    pool.await.unwrap();
    lab.store.release_lease(&lease).unwrap();
}
