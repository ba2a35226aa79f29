//! Failover between CAs: which failures move a job on to the next CA, and at which urgency.

use renewd_core::{OutcomeClass, Step, Urgency};
use renewd_issuer::{IssuerEvent, JobResult};
use renewd_store::CircuitState;
use renewd_testca::{Endpoint, Fault, FaultPlan, TestCa};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalize_502_at_a_fails_over_to_b_and_opens_as_circuit() {
    let a = TestCa::builder()
        .fault_plan(FaultPlan::new().rule(Endpoint::Finalize, Fault::status(502).html()));
    let mut b = lab()
        .ca("a", a)
        .ca("b", TestCa::builder())
        .breaker("failure_threshold", "2")
        .breaker("cooldown", "\"1h\"")
        .workers(1);
    let certs = ["c1", "c2", "c3", "c4", "c5"];
    for c in certs {
        b = b.cert(c, &["a", "b"]);
    }
    let lab = b.start().await;
    let mut events = lab.events();
    let issuer = lab.issuer();

    // An order whose finalize failed may still complete at A: only a critical job
    // abandons it to order elsewhere.
    let mut new_orders_at_a = Vec::new();
    for c in certs {
        let result = renew(&issuer, c, Urgency::Critical).await;
        assert!(result.is_renewed(), "{c}: {result:?}");
        assert_eq!(lab.issuer_of(c).as_deref(), Some("b"), "{c}");
        assert_eq!(lab.state(c).pending, None, "{c}: no order left behind");
        new_orders_at_a.push(lab.counts("a").requests_to(Endpoint::NewOrder));
    }
    // Two orders failed at A (the threshold), then A was skipped without a request.
    assert_eq!(new_orders_at_a, [1, 2, 2, 2, 2]);
    let a_counts = lab.counts("a");
    assert_eq!(a_counts.orders_created, 2);
    assert_eq!(a_counts.certificates_issued, 0);
    assert_eq!(lab.counts("b").certificates_issued, 5);
    let health = lab.health("a");
    assert_eq!(health.circuit, CircuitState::Open);
    assert_eq!(
        health.open_until,
        Some(lab.now() + chrono::TimeDelta::hours(1))
    );
    assert!(events_of(&mut events).iter().any(|e| matches!(e,
        IssuerEvent::CircuitChanged { ca, state: CircuitState::Open, .. } if ca.as_str() == "a")));
    // Every failed finalize is in A's ledger, and each abandoned order is noted.
    let ledger = lab.ledger("a");
    let failed_finalizes = ledger
        .iter()
        .filter(|r| r.step == Step::Finalize && r.class == OutcomeClass::CaUnavailable)
        .filter(|r| r.http_status == Some(502))
        .count() as u64;
    assert_eq!(failed_finalizes, a_counts.requests_to(Endpoint::Finalize));
    let abandoned = ledger
        .iter()
        .filter(|r| r.detail.as_deref().is_some_and(|d| d.contains("abandoned")))
        .count();
    assert_eq!(abandoned, 2);
    // No pending-order key is left behind.
    let pending_dir = lab.dir.path().join("state/pending");
    assert_eq!(
        std::fs::read_dir(pending_dir)
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_fails_the_probe_and_no_order_goes_there() {
    let lab = lab()
        .closed_ca("a")
        .ca("b", TestCa::builder())
        .cert("urgent", &["a", "b"])
        .cert("normal", &["a", "b"])
        .breaker("failure_threshold", "2")
        .start()
        .await;
    let issuer = lab.issuer();

    // Urgent: the probe fails, the job moves on to B at once.
    let result = renew(&issuer, "urgent", Urgency::Urgent).await;
    assert!(result.is_renewed(), "{result:?}");
    assert_eq!(lab.issuer_of("urgent").as_deref(), Some("b"));
    let ledger = lab.ledger("a");
    assert!(!ledger.is_empty());
    assert!(ledger.iter().all(|r| r.step == Step::Probe), "{ledger:?}");
    assert!(
        ledger
            .iter()
            .all(|r| r.class == OutcomeClass::CaUnavailable)
    );
    let health = lab.health("a");
    assert_eq!(health.last_probe_ok, Some(false));
    assert_eq!(health.consecutive_failures, 1);

    // Normal urgency: the preferred CA only — the job fails and backs off…
    let result = renew(&issuer, "normal", Urgency::Normal).await;
    assert!(
        matches!(
            result,
            JobResult::Failed {
                class: renewd_core::FailureClass::CaUnavailable,
                ..
            }
        ),
        "{result:?}"
    );
    let state = lab.state("normal");
    assert_eq!(state.failure_streak, 1);
    assert!(state.next_attempt.unwrap() > lab.now());
    assert!(state.last_error.unwrap().message.contains("probe"));
    assert_eq!(
        lab.counts("b").orders_created,
        1,
        "no failover at normal urgency"
    );
    // …and that second failed probe opened A's circuit, so the next normal job starts at B.
    assert_eq!(lab.health("a").circuit, CircuitState::Open);
    let result = renew(&issuer, "normal", Urgency::Normal).await;
    assert!(result.is_renewed(), "{result:?}");
    assert_eq!(lab.issuer_of("normal").as_deref(), Some("b"));
    assert!(lab.ledger("a").iter().all(|r| r.step == Step::Probe));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalize_504_after_issuing_wastes_nothing() {
    let a = TestCa::builder().fault_plan(
        FaultPlan::new().rule(Endpoint::Finalize, Fault::status(504).after_processing()),
    );
    let mut b = lab().ca("a", a).ca("b", TestCa::builder());
    let certs = ["c1", "c2", "c3", "c4"];
    for c in certs {
        b = b.cert(c, &["a", "b"]);
    }
    let lab = b.start().await;
    let issuer = lab.issuer();
    let results = run(
        &issuer,
        certs.iter().map(|c| job(c, Urgency::Urgent)).collect(),
    )
    .await;
    for (c, r) in certs.iter().zip(&results) {
        assert!(r.is_renewed(), "{c}: {r:?}");
        assert_eq!(lab.issuer_of(c).as_deref(), Some("a"), "{c}");
    }
    let a = lab.counts("a");
    assert_eq!(
        a.faulted(Endpoint::Finalize),
        4,
        "every finalize answered 504"
    );
    assert_eq!(a.orders_created, 4);
    assert_eq!(
        a.certificates_issued, 4,
        "each order's certificate was used"
    );
    assert_eq!(lab.counts("b").orders_created, 0);
    // The installed serials are A's certificates. (The test CA writes a serial's leading
    // zero nibble; the store does not.)
    let issued: Vec<String> = lab
        .testca("a")
        .certificates()
        .into_iter()
        .map(|c| c.serial.trim_start_matches('0').to_string())
        .collect();
    for c in certs {
        let serial = lab.state(c).installed.unwrap().serial;
        assert!(issued.contains(&serial), "{c}: {serial} not in {issued:?}");
    }
    let health = lab.health("a");
    assert_eq!(
        (health.circuit, health.consecutive_failures),
        (CircuitState::Closed, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_specific_refusal_fails_over_even_at_normal_urgency() {
    let lab = lab()
        .ca_with("a", TestCa::builder(), "profile = \"retired\"")
        .ca("b", TestCa::builder())
        .cert("www", &["a", "b"])
        .start()
        .await;
    let result = renew(&lab.issuer(), "www", Urgency::Normal).await;
    assert!(result.is_renewed(), "{result:?}");
    assert_eq!(lab.issuer_of("www").as_deref(), Some("b"));
    let refusal = lab
        .ledger("a")
        .into_iter()
        .find(|r| r.step == Step::NewOrder)
        .unwrap();
    assert_eq!(refusal.class, OutcomeClass::Rejected);
    assert_eq!(
        refusal.problem_type.as_deref(),
        Some("urn:ietf:params:acme:error:invalidProfile")
    );
    // A refusal is not ill health.
    assert_eq!(lab.health("a").consecutive_failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validation_failure_does_not_fail_over() {
    // A really validates http-01 — against a port where nothing answers.
    let closed = renewd_testsupport::free_port();
    let a = TestCa::builder().challenge_mode(renewd_testca::ChallengeMode::Validate(
        renewd_testca::Validators {
            http01_port: Some(closed),
            ..Default::default()
        },
    ));
    let lab = lab()
        .ca("a", a)
        .ca("b", TestCa::builder())
        .cert("www", &["a", "b"])
        .start()
        .await;
    let issuer = lab.issuer();
    for urgency in [Urgency::Normal, Urgency::Critical] {
        let result = renew(&issuer, "www", urgency).await;
        assert!(
            matches!(
                &result,
                JobResult::Failed {
                    class: renewd_core::FailureClass::Rejected { ca_specific: false },
                    ..
                }
            ),
            "{urgency}: {result:?}"
        );
    }
    let b = lab.counts("b");
    assert_eq!(
        b.requests.values().map(|c| c.total).sum::<u64>(),
        0,
        "B never asked"
    );
    let state = lab.state("www");
    assert_eq!(state.failure_streak, 2);
    assert_eq!(state.pending, None, "the invalid order is not kept");
    assert_eq!(state.last_error.unwrap().class, OutcomeClass::Rejected);
    assert_eq!(
        lab.health("a").circuit,
        CircuitState::Closed,
        "not the CA's fault"
    );
}
