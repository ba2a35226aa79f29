//! The failure ledger: one row per ACME request (probes included) with the right step and
//! class, and rows for local steps.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use renewd_acme::{BoxError, BoxFuture, ChallengeAnswer, ChallengeSolver};
use renewd_core::{FailureClass, OutcomeClass, RequestOutcome, Step, Urgency};
use renewd_issuer::{Issuer, JobResult, OutcomeKind};
use renewd_store::CircuitState;
use renewd_testca::{Endpoint, Fault, FaultPlan, TestCa};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_row_per_request_with_its_step() {
    let lab = lab()
        .ca("a", TestCa::builder())
        .cert("www", &["a"])
        .cert("api", &["a"])
        .start()
        .await;
    let issuer = lab.issuer();
    assert!(renew(&issuer, "www", Urgency::Normal).await.is_renewed());
    let rows = lab.ledger("a");
    let requests: Vec<_> = rows
        .iter()
        .filter(|r| !matches!(r.step, Step::Install | Step::DeployHook))
        .collect();
    let sent: u64 = lab.counts("a").requests.values().map(|c| c.total).sum();
    assert_eq!(
        requests.len() as u64,
        sent,
        "every request the CA saw, and no other"
    );
    assert!(requests.iter().all(|r| r.class == OutcomeClass::Ok));
    let mut by_step = BTreeMap::new();
    for r in &requests {
        *by_step.entry(r.step.as_str()).or_insert(0) += 1;
    }
    assert_eq!(by_step["probe"], 2, "directory + newNonce: {by_step:?}");
    for step in [
        "account",
        "new_order",
        "authorization",
        "challenge",
        "finalize",
        "download",
    ] {
        assert!(by_step.contains_key(step), "{step}: {by_step:?}");
    }
    // Probes and account setup belong to no certificate; order requests to www, with the
    // account and (once known) the order URL.
    for r in &requests {
        match r.step {
            Step::Probe | Step::Account | Step::Nonce => assert_eq!(r.cert, None, "{r:?}"),
            _ => {
                assert_eq!(r.cert.as_ref().unwrap().as_str(), "www", "{r:?}");
                assert!(r.account.is_some(), "{r:?}");
            }
        }
        if matches!(r.step, Step::Finalize | Step::Download | Step::Challenge) {
            assert!(r.order_url.is_some(), "{r:?}");
        }
    }
    let health = lab.health("a");
    assert_eq!(health.last_probe_ok, Some(true));
    assert!(health.last_probe.is_some() && health.last_probe_latency.is_some());

    // A burst right after: the good probe is reused.
    assert!(renew(&issuer, "api", Urgency::Normal).await.is_renewed());
    let probes = lab
        .ledger("a")
        .iter()
        .filter(|r| r.step == Step::Probe)
        .count();
    assert_eq!(probes, 2);
}

/// A solver whose responder cannot start.
#[derive(Debug)]
struct Unbindable;

impl ChallengeSolver for Unbindable {
    fn present<'a>(&'a self, _: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async { Err("could not bind 0.0.0.0:80: address in use".into()) })
    }

    fn cleanup<'a>(&'a self, _: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_failure_is_noted_never_blamed_on_the_ca_and_keeps_the_order() {
    let lab = lab()
        .ca("a", TestCa::builder())
        .ca("b", TestCa::builder())
        .cert("www", &["a", "b"])
        .breaker("failure_threshold", "1")
        .start()
        .await;
    let broken = lab.issuer_with(Arc::new(Unbindable));
    let result = renew(&broken, "www", Urgency::Critical).await;
    assert!(
        matches!(
            result,
            JobResult::Failed {
                class: FailureClass::Local,
                ..
            }
        ),
        "{result:?}"
    );
    let row = lab
        .ledger("a")
        .into_iter()
        .find(|r| r.step == Step::ChallengeSetup)
        .unwrap();
    assert_eq!(row.class, OutcomeClass::Local);
    assert!(row.detail.unwrap().contains("address in use"));
    assert_eq!(lab.health("a").circuit, CircuitState::Closed);
    assert_eq!(
        lab.counts("b").orders_created,
        0,
        "no failover for a local failure"
    );
    assert!(lab.state("www").pending.is_some());

    // Fixed: the same order completes.
    assert!(
        renew(&lab.issuer(), "www", Urgency::Normal)
            .await
            .is_renewed()
    );
    assert_eq!(lab.counts("a").orders_created, 1);
    assert_eq!(lab.issuer_of("www").as_deref(), Some("a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outcome_hook_sees_every_row_as_it_is_appended() {
    let lab = lab()
        .ca("a", TestCa::builder())
        .cert("www", &["a"])
        .start()
        .await;
    let seen: Arc<Mutex<Vec<RequestOutcome>>> = Arc::default();
    let mut parts = lab_parts(&lab);
    let sink = seen.clone();
    parts.options.on_outcome = Arc::new(move |row: &RequestOutcome, kind| {
        assert_eq!(kind, OutcomeKind::Recorded, "{row:?}");
        sink.lock().unwrap().push(row.clone());
    });
    let issuer = Issuer::new(parts).unwrap();
    assert!(renew(&issuer, "www", Urgency::Normal).await.is_renewed());

    // The ledger lists newest first; the hook saw them in the order they were appended.
    let mut ledger = lab.ledger("a");
    ledger.reverse();
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() > 5, "{seen:?}");
    let key = |r: &RequestOutcome| (r.step, r.class, r.cert.clone(), r.order_url.clone());
    assert_eq!(
        seen.iter().map(key).collect::<Vec<_>>(),
        ledger.iter().map(key).collect::<Vec<_>>()
    );
    assert!(seen.iter().any(|r| r.step == Step::Install));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_solvers_serve_the_next_attempts() {
    let lab = lab()
        .ca("a", TestCa::builder())
        .cert("www", &["a"])
        .cert("api", &["a"])
        .start()
        .await;
    let issuer = lab.issuer_with(Arc::new(Unbindable));
    let result = renew(&issuer, "www", Urgency::Normal).await;
    assert!(
        matches!(
            result,
            JobResult::Failed {
                class: FailureClass::Local,
                ..
            }
        ),
        "{result:?}"
    );
    issuer.set_solvers(solvers(lab.solver.clone()));
    assert!(renew(&issuer, "api", Urgency::Normal).await.is_renewed());
}

/// Runs one renewal of `www` at a CA refusing `refusals` newOrder nonces in a row; returns
/// the outcomes the hook saw, with their kind.
async fn renew_through_refused_nonces(refusals: u32) -> (Lab, Vec<(RequestOutcome, OutcomeKind)>) {
    let a = TestCa::builder()
        .fault_plan(FaultPlan::new().rule(Endpoint::NewOrder, Fault::bad_nonce().times(refusals)));
    let lab = lab().ca("a", a).cert("www", &["a"]).start().await;
    let seen: Arc<Mutex<Vec<(RequestOutcome, OutcomeKind)>>> = Arc::default();
    let mut parts = lab_parts(&lab);
    let sink = seen.clone();
    parts.options.on_outcome = Arc::new(move |row: &RequestOutcome, kind| {
        sink.lock().unwrap().push((row.clone(), kind));
    });
    let issuer = Issuer::new(parts).unwrap();
    assert!(renew(&issuer, "www", Urgency::Normal).await.is_renewed());
    assert_eq!(lab.counts("a").nonces_rejected, u64::from(refusals));
    let seen = seen.lock().unwrap().clone();
    (lab, seen)
}

fn bad_nonces(rows: impl IntoIterator<Item = RequestOutcome>) -> usize {
    rows.into_iter()
        .filter(|r| r.class == OutcomeClass::BadNonce)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_nonce_the_client_retries_is_counted_but_no_ledger_row() {
    let (lab, seen) = renew_through_refused_nonces(2).await;
    assert_eq!(
        bad_nonces(lab.ledger("a")),
        0,
        "retried at once: not a failure"
    );
    let retried: Vec<_> = seen
        .iter()
        .filter(|(_, kind)| *kind == OutcomeKind::Retried)
        .map(|(r, _)| (r.step, r.class))
        .collect();
    assert_eq!(
        retried,
        [(Step::NewOrder, OutcomeClass::BadNonce); 2],
        "the hook (metrics, logs) still sees each refusal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_nonce_that_persists_is_one_ledger_row() {
    // Six refusals in a row outlast the client's five immediate retries: the sixth is the
    // request's outcome (a ledger row); newOrder is tried again later and succeeds.
    let (lab, seen) = renew_through_refused_nonces(6).await;
    let rows: Vec<_> = lab
        .ledger("a")
        .into_iter()
        .filter(|r| r.class == OutcomeClass::BadNonce)
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].step, Step::NewOrder);
    let kinds: Vec<OutcomeKind> = seen
        .iter()
        .filter(|(r, _)| r.class == OutcomeClass::BadNonce)
        .map(|(_, k)| *k)
        .collect();
    let mut expected = vec![OutcomeKind::Retried; 5];
    expected.push(OutcomeKind::Recorded);
    assert_eq!(kinds, expected);
}
