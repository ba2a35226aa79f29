//! A certificate the CA returns that fails the check before install (the test CA's
//! `wrong_certificate` fault): nothing is installed, the old set stays live, the ledger and
//! the certificate's state say why, a new order's bad certificate counts against the CA,
//! and the order is dropped so the next attempt orders afresh.

use renewd_core::{FailureClass, OutcomeClass, Step, Urgency};
use renewd_issuer::JobResult;
use renewd_testca::{Endpoint, Fault, FaultPlan, Mismatch, TestCa};

use crate::support::*;

/// Renews `www` once, then again with the CA serving a certificate wrong in `mismatch`,
/// and checks everything the refusal must (and must not) change. `what` is a phrase of
/// the verification error.
async fn refused(mismatch: Mismatch, what: &str) {
    let lab = lab()
        .ca("a", TestCa::builder())
        .cert("www", &["a"])
        .start()
        .await;
    let issuer = lab.issuer();
    let JobResult::Renewed { serial: old, .. } = renew(&issuer, "www", Urgency::Normal).await
    else {
        panic!("the first renewal must succeed");
    };
    let live = lab.dir.path().join("state/certs/www/live");
    let live_chain = std::fs::read(live.join("fullchain.pem")).unwrap();
    let live_key = std::fs::read(live.join("privkey.pem")).unwrap();
    let deploys = lab.host.deploys.lock().unwrap().len();
    let rows_before = lab.ledger("a").len();
    let downloads_before = lab.counts("a").requests_to(Endpoint::Certificate);

    lab.clock.advance(chrono::TimeDelta::hours(1));
    lab.testca("a")
        .set_fault_plan(
            FaultPlan::new().rule(Endpoint::Certificate, Fault::wrong_certificate(mismatch)),
        )
        .unwrap();
    let result = renew(&issuer, "www", Urgency::Normal).await;
    let JobResult::Failed { class, ca, message } = &result else {
        panic!("{result:?}");
    };
    assert_eq!(*class, FailureClass::CaUnavailable, "{message}");
    assert_eq!(ca.as_ref().map(|c| c.as_str()), Some("a"));
    assert!(message.contains("failed verification"), "{message}");
    assert!(message.contains(what), "{message}");
    // Every chain downloaded (the default and its alternate) was a wrong one.
    let counts = lab.counts("a");
    assert!(counts.faulted(Endpoint::Certificate) >= 1);
    assert_eq!(
        counts.faulted(Endpoint::Certificate),
        counts.requests_to(Endpoint::Certificate) - downloads_before
    );

    // Nothing installed: the old set is live, untouched, and nothing was deployed.
    let state = lab.state("www");
    assert_eq!(
        state.installed.as_ref().map(|i| i.serial.as_str()),
        Some(old.as_str())
    );
    assert_eq!(
        std::fs::read(live.join("fullchain.pem")).unwrap(),
        live_chain
    );
    assert_eq!(std::fs::read(live.join("privkey.pem")).unwrap(), live_key);
    assert_eq!(lab.host.deploys.lock().unwrap().len(), deploys);

    // The certificate's state records the failure.
    assert_eq!(state.failure_streak, 1);
    let last = state.last_error.as_ref().expect("last_error");
    assert_eq!(last.class, OutcomeClass::CaUnavailable);
    assert!(last.message.contains(what), "{}", last.message);
    assert!(state.next_attempt.is_some(), "a back-off is set");

    // The ledger: one install row with the CA's class, for the order just made.
    // (Newest first; the clock moved on, so this attempt's rows come before the first's.)
    let rows = lab.ledger("a");
    let new_rows = &rows[..rows.len() - rows_before];
    let install: Vec<_> = new_rows
        .iter()
        .filter(|r| r.step == Step::Install)
        .collect();
    assert_eq!(install.len(), 1, "{new_rows:?}");
    let row = install[0];
    assert_eq!(row.class, OutcomeClass::CaUnavailable);
    assert_eq!(row.cert.as_ref().map(|c| c.as_str()), Some("www"));
    assert!(
        row.detail.as_deref().unwrap_or("").contains(what),
        "{row:?}"
    );
    let order_url = row.order_url.clone().expect("the order is named");
    assert!(
        new_rows.iter().any(|r| r.step == Step::Download
            && r.class == OutcomeClass::Ok
            && r.order_url.as_ref() == Some(&order_url)),
        "the download itself succeeded: {new_rows:?}"
    );

    // A new order's bad certificate is the CA's failure: its circuit counts it.
    assert_eq!(lab.health("a").consecutive_failures, 1);

    // The order is dropped (its certificate can never be installed) with a ledger row
    // saying so, and its key is gone.
    assert_eq!(state.pending, None);
    assert!(
        new_rows.iter().any(|r| r.step == Step::PollOrder
            && r.order_url.as_ref() == Some(&order_url)
            && r.detail.as_deref().is_some_and(|d| d.contains("abandoned"))),
        "{new_rows:?}"
    );
    // (The directory exists: the order's key was written there before finalize.)
    let pending_keys: Vec<_> = std::fs::read_dir(lab.dir.path().join("state/pending"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(pending_keys.is_empty(), "{pending_keys:?}");

    // The next attempt orders afresh and installs the right certificate.
    lab.testca("a").set_fault_plan(FaultPlan::new()).unwrap();
    let orders_before = lab.counts("a").orders_created;
    lab.clock.advance(chrono::TimeDelta::hours(2));
    let JobResult::Renewed { serial, .. } = renew(&issuer, "www", Urgency::Normal).await else {
        panic!("the next attempt must renew");
    };
    assert_ne!(serial, old);
    assert_eq!(
        lab.counts("a").orders_created,
        orders_before + 1,
        "a new order, not the refused one"
    );
    let state = lab.state("www");
    assert_eq!((state.failure_streak, state.last_error), (0, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_other_names_is_refused_and_the_old_set_stays_live() {
    refused(Mismatch::Names, "www.example.test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_key_is_refused_and_the_old_set_stays_live() {
    refused(Mismatch::Key, "does not match the private key").await;
}
