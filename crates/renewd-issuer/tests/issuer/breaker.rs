//! The circuit breaker end to end: a CA that is down opens, stays skipped across a restart,
//! and after the cool-down gets exactly one probe and one order before it is trusted again.

use chrono::TimeDelta;
use renewd_core::{Step, Urgency};
use renewd_issuer::{IssuerEvent, JobResult};
use renewd_store::{CircuitState, StateStore};
use renewd_testca::{Endpoint, Fault, FaultPlan, TestCa};

use crate::support::*;

fn directory_down() -> FaultPlan {
    FaultPlan::new().rule(Endpoint::Directory, Fault::status(503).html())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovered_ca_gets_one_probe_then_one_order_then_its_certificates_back() {
    let lab = lab()
        .ca("a", TestCa::builder().fault_plan(directory_down()))
        .ca("b", TestCa::builder())
        .cert("c1", &["a", "b"])
        .cert("c2", &["a", "b"])
        .cert("c3", &["a", "b"])
        .cert("c4", &["a", "b"])
        .breaker("failure_threshold", "2")
        .breaker("cooldown", "\"10m\"")
        .breaker("max_cooldown", "\"1h\"")
        .start()
        .await;
    let issuer = lab.issuer();
    let mut events = lab.events();

    // Two failed probes open A; at normal urgency those jobs fail, the next goes to B.
    for _ in 0..2 {
        assert!(!renew(&issuer, "c1", Urgency::Normal).await.is_renewed());
    }
    assert_eq!(lab.health("a").circuit, CircuitState::Open);
    assert!(renew(&issuer, "c1", Urgency::Normal).await.is_renewed());
    assert_eq!(lab.issuer_of("c1").as_deref(), Some("b"));

    // A recovers, but the cool-down is not over: still skipped, not even probed.
    lab.testca("a").set_fault_plan(FaultPlan::new()).unwrap();
    lab.testca("a").reset_counts();
    lab.clock.advance(TimeDelta::minutes(9));
    assert!(renew(&issuer, "c2", Urgency::Normal).await.is_renewed());
    assert_eq!(lab.issuer_of("c2").as_deref(), Some("b"));
    assert_eq!(lab.counts("a").requests_to(Endpoint::Directory), 0);

    // After it: half-open. One job takes the trial and is held inside its order at A…
    lab.clock.advance(TimeDelta::minutes(1));
    lab.solver.hold(lab.testca("a"));
    let trial = tokio::spawn({
        let issuer = issuer.clone();
        async move { renew(&issuer, "c3", Urgency::Normal).await }
    });
    lab.solver.entered(1).await;
    assert_eq!(lab.health("a").circuit, CircuitState::HalfOpen);
    // …meanwhile another job treats A as open and goes to B.
    assert!(renew(&issuer, "c4", Urgency::Normal).await.is_renewed());
    assert_eq!(lab.issuer_of("c4").as_deref(), Some("b"));
    let a = lab.counts("a");
    assert_eq!(a.requests_to(Endpoint::Directory), 1, "exactly one probe");
    assert_eq!(a.requests_to(Endpoint::NewOrder), 1, "exactly one order");
    // The trial order completes: the circuit closes.
    lab.solver.stop_holding();
    lab.solver.release(1);
    assert!(trial.await.unwrap().is_renewed());
    assert_eq!(lab.issuer_of("c3").as_deref(), Some("a"));
    let health = lab.health("a");
    assert_eq!(health.circuit, CircuitState::Closed);
    assert_eq!((health.consecutive_failures, health.cooldown), (0, None));
    let changes: Vec<CircuitState> = events_of(&mut events)
        .into_iter()
        .filter_map(|e| match e {
            IssuerEvent::CircuitChanged { ca, state, .. } if ca.as_str() == "a" => Some(state),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        [
            CircuitState::Open,
            CircuitState::HalfOpen,
            CircuitState::Closed
        ]
    );

    // Orders return to the preferred CA.
    for c in ["c1", "c2", "c4"] {
        assert!(renew(&issuer, c, Urgency::Normal).await.is_renewed());
        assert_eq!(lab.issuer_of(c).as_deref(), Some("a"), "{c}");
    }
    assert_eq!(lab.counts("a").certificates_issued, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_trial_reopens_for_twice_as_long() {
    let lab = lab()
        .ca("a", TestCa::builder().fault_plan(directory_down()))
        .ca("b", TestCa::builder())
        .cert("www", &["a", "b"])
        .breaker("failure_threshold", "1")
        .breaker("cooldown", "\"5m\"")
        .breaker("max_cooldown", "\"15m\"")
        .start()
        .await;
    let issuer = lab.issuer();
    assert!(!renew(&issuer, "www", Urgency::Normal).await.is_renewed());
    let opened = lab.health("a");
    assert_eq!(opened.cooldown, Some(std::time::Duration::from_secs(300)));
    for expected in [600, 900, 900] {
        lab.clock
            .advance(TimeDelta::seconds(opened.cooldown.unwrap().as_secs() as i64));
        let before = lab.counts("a").requests_to(Endpoint::Directory);
        // The trial probe fails; the job (normal urgency) does not move on to B.
        assert!(!renew(&issuer, "www", Urgency::Normal).await.is_renewed());
        assert_eq!(lab.counts("a").requests_to(Endpoint::Directory), before + 1);
        let h = lab.health("a");
        assert_eq!(h.circuit, CircuitState::Open);
        assert_eq!(h.cooldown, Some(std::time::Duration::from_secs(expected)));
        assert_eq!(
            h.open_until,
            Some(lab.now() + TimeDelta::seconds(expected as i64))
        );
        lab.clock.advance(TimeDelta::seconds(expected as i64 - 300));
    }
    assert_eq!(lab.counts("b").orders_created, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_circuit_survives_a_restart() {
    let lab = lab()
        .ca("a", TestCa::builder().fault_plan(directory_down()))
        .ca("b", TestCa::builder())
        .cert("www", &["a", "b"])
        .breaker("failure_threshold", "1")
        .breaker("cooldown", "\"1h\"")
        .start()
        .await;
    assert!(
        !renew(&lab.issuer(), "www", Urgency::Normal)
            .await
            .is_renewed()
    );
    assert_eq!(lab.health("a").circuit, CircuitState::Open);
    let before = lab.counts("a");

    // A new issuer on the same store: A is still open, so the job goes to B untouched.
    let restarted = lab.issuer();
    assert!(renew(&restarted, "www", Urgency::Normal).await.is_renewed());
    assert_eq!(lab.issuer_of("www").as_deref(), Some("b"));
    assert_eq!(lab.counts("a"), before, "not a single request to A");

    // Critical: every CA in the list, but open circuits last.
    lab.testca("a").set_fault_plan(FaultPlan::new()).unwrap();
    let ledger_before = lab.ledger("a").len();
    let result = renew(&restarted, "www", Urgency::Critical).await;
    assert!(result.is_renewed(), "{result:?}");
    // B is healthy, and healthy CAs come before open circuits: A is not needed.
    assert_eq!(lab.issuer_of("www").as_deref(), Some("b"));
    assert_eq!(lab.ledger("a").len(), ledger_before);
    assert!(lab.ledger("a").iter().all(|r| r.step == Step::Probe));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn critical_jobs_try_open_circuits_last_after_a_fresh_probe() {
    let lab = lab()
        .ca("a", TestCa::builder().fault_plan(directory_down()))
        .closed_ca("b")
        .cert("www", &["a", "b"])
        .breaker("failure_threshold", "1")
        .breaker("cooldown", "\"1h\"")
        .start()
        .await;
    let issuer = lab.issuer();
    assert!(!renew(&issuer, "www", Urgency::Urgent).await.is_renewed());
    assert_eq!(lab.health("a").circuit, CircuitState::Open);
    assert_eq!(lab.health("b").circuit, CircuitState::Open);
    // A recovers within its cool-down; only a critical job looks.
    lab.testca("a").set_fault_plan(FaultPlan::new()).unwrap();
    let mut events = lab.events();
    assert!(!renew(&issuer, "www", Urgency::Urgent).await.is_renewed());
    let result = renew(&issuer, "www", Urgency::Critical).await;
    assert!(result.is_renewed(), "{result:?}");
    assert_eq!(lab.issuer_of("www").as_deref(), Some("a"));
    assert_eq!(lab.health("a").circuit, CircuitState::Closed);
    let seen = events_of(&mut events);
    assert!(
        seen.iter()
            .any(|e| matches!(e, IssuerEvent::ExpiryDanger { .. })),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_waiting_on_another_jobs_trial_are_deferred_not_failed() {
    // Three certificates whose only CA is A. When A's cool-down ends, one job takes the
    // half-open trial; the others must wait for it — not record a failure, back off and
    // fire the failure hook.
    let lab = lab()
        .ca("a", TestCa::builder())
        .cert("c1", &["a"])
        .cert("c2", &["a"])
        .cert("c3", &["a"])
        .start()
        .await;
    let mut health = renewd_store::CaHealth::new(ca_name("a"));
    health.circuit = CircuitState::HalfOpen;
    health.cooldown = Some(std::time::Duration::from_secs(600));
    lab.store.put_ca_health(&health).unwrap();
    let issuer = lab.issuer();
    lab.solver.hold(lab.testca("a"));
    let trial = tokio::spawn({
        let issuer = issuer.clone();
        async move { renew(&issuer, "c1", Urgency::Normal).await }
    });
    lab.solver.entered(1).await;

    for (c, urgency) in [("c2", Urgency::Normal), ("c3", Urgency::Urgent)] {
        let result = renew(&issuer, c, urgency).await;
        let JobResult::Deferred { until, reason } = result else {
            panic!("{c}: {result:?}");
        };
        assert_eq!(until, lab.now() + TimeDelta::minutes(1), "{c}");
        assert!(reason.contains("trial"), "{reason}");
        let state = lab.state(c);
        assert_eq!(state.next_attempt, Some(until), "{c}");
        assert_eq!(
            (state.failure_streak, state.backoff_step, state.last_error),
            (0, 0, None),
            "{c}"
        );
    }
    assert!(lab.host.failure_calls().is_empty(), "no failure hook");
    assert_eq!(lab.counts("a").orders_created, 1, "only the trial's order");

    lab.solver.stop_holding();
    lab.solver.release(1);
    assert!(trial.await.unwrap().is_renewed());
    assert_eq!(lab.health("a").circuit, CircuitState::Closed);
    lab.clock.advance(TimeDelta::minutes(1));
    for c in ["c2", "c3"] {
        assert!(renew(&issuer, c, Urgency::Normal).await.is_renewed(), "{c}");
    }
}
