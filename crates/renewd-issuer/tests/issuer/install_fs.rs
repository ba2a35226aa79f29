//! The real issuance path installing onto a full, then a read-only file system: the state
//! directory's `certs/` is a small tmpfs. The failure is local, the old set stays live, the
//! state records it, the CA is not blamed, and the order is kept: once there is room, the
//! next attempt installs the same order's certificate without ordering again. Needs root to
//! mount; CI runs as root, so a refused mount fails the test loudly.

use std::fs;

use renewd_core::{FailureClass, OutcomeClass, Step, Urgency};
use renewd_issuer::JobResult;
use renewd_store::CircuitState;
use renewd_testca::TestCa;

use renewd_testsupport::{Tmpfs, fill_until_full};

use crate::support::*;

/// One failed renewal of `www` whose install hit the file system: checks the job's result,
/// the live set, the state and the ledger; returns the message.
async fn install_fails(lab: &Lab, issuer: &renewd_issuer::Issuer, live_chain: &[u8]) -> String {
    let rows_before = lab.ledger("a").len();
    let result = renew(issuer, "www", Urgency::Normal).await;
    let JobResult::Failed { class, message, .. } = &result else {
        panic!("{result:?}");
    };
    assert_eq!(*class, FailureClass::Local, "{message}");
    assert!(message.contains("installing"), "{message}");
    let live = lab.dir.path().join("state/certs/www/live");
    assert_eq!(
        fs::read(live.join("fullchain.pem")).unwrap(),
        live_chain,
        "the old set stays live"
    );
    let state = lab.state("www");
    let last = state.last_error.as_ref().expect("last_error");
    assert_eq!(last.class, OutcomeClass::Local);
    assert_eq!(&last.message, message);
    assert!(state.pending.is_some(), "a local failure keeps the order");

    // The attempt's rows (newest first): an install row, local; nothing blames the CA.
    let rows = lab.ledger("a");
    let new_rows = &rows[..rows.len() - rows_before];
    let install: Vec<_> = new_rows
        .iter()
        .filter(|r| r.step == Step::Install)
        .collect();
    assert_eq!(install.len(), 1, "{new_rows:?}");
    assert_eq!(install[0].class, OutcomeClass::Local);
    assert!(
        new_rows
            .iter()
            .all(|r| r.class != OutcomeClass::CaUnavailable),
        "no ca_unavailable row: {new_rows:?}"
    );
    let health = lab.health("a");
    assert_eq!(
        (health.consecutive_failures, health.circuit),
        (0, CircuitState::Closed),
        "a local failure is never blamed on the CA"
    );
    message.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installing_onto_a_full_or_read_only_state_dir_is_local_and_keeps_the_old_set_live() {
    let lab = lab()
        .ca("a", TestCa::builder())
        .breaker("failure_threshold", "1")
        .cert("www", &["a"])
        .start()
        .await;
    let certs = lab.dir.path().join("state/certs");
    let tmpfs = Tmpfs::mount(&certs, "256k");
    let issuer = lab.issuer();
    let JobResult::Renewed { serial: old, .. } = renew(&issuer, "www", Urgency::Normal).await
    else {
        panic!("the first renewal must succeed");
    };
    let live = certs.join("www/live");
    let live_chain = fs::read(live.join("fullchain.pem")).unwrap();
    let deploys = lab.host.deploys.lock().unwrap().len();

    // Full.
    fill_until_full(&certs);
    lab.clock.advance(chrono::TimeDelta::hours(1));
    let message = install_fails(&lab, &issuer, &live_chain).await;
    assert!(message.contains(&certs.display().to_string()), "{message}");
    assert!(message.contains("free space"), "{message}");
    let state = lab.state("www");
    assert_eq!(state.failure_streak, 1);
    assert_eq!(state.installed.map(|i| i.serial), Some(old.clone()));
    let order = state.pending.expect("kept").order_url;
    let orders = lab.counts("a").orders_created;

    // Read-only, with room again: the same order is resumed and fails the same way.
    fs::remove_file(certs.join("filler")).unwrap();
    tmpfs.remount("ro");
    lab.clock.advance(chrono::TimeDelta::hours(1));
    let message = install_fails(&lab, &issuer, &live_chain).await;
    assert!(message.contains("read-only"), "{message}");
    let state = lab.state("www");
    assert_eq!(state.failure_streak, 2);
    assert_eq!(state.pending.map(|p| p.order_url), Some(order.clone()));
    assert_eq!(lab.counts("a").orders_created, orders, "no new order");
    assert_eq!(
        lab.host.deploys.lock().unwrap().len(),
        deploys,
        "nothing deployed"
    );

    // Writable again: the kept order's certificate is installed, no order made.
    tmpfs.remount("rw");
    lab.clock.advance(chrono::TimeDelta::hours(1));
    let JobResult::Renewed { serial, .. } = renew(&issuer, "www", Urgency::Normal).await else {
        panic!("renews once the file system takes writes");
    };
    assert_ne!(serial, old);
    assert_eq!(lab.counts("a").orders_created, orders, "the kept order");
    assert_ne!(fs::read(live.join("fullchain.pem")).unwrap(), live_chain);
    let state = lab.state("www");
    assert_eq!((state.failure_streak, state.pending), (0, None));
}
