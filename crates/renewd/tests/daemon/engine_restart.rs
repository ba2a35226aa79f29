//! Orders that outlive the daemon: killed in the middle of twenty renewals, or stopped with
//! SIGTERM during one, the next start resumes every pending order — one order per
//! certificate at the CA, never a second.

use std::collections::BTreeSet;
use std::time::Duration;

use renewd_testca::{Endpoint, Fault, FaultPlan, TestCa};

use crate::harness::{Scene, has};
use crate::lab::{Ca, FLOW, Lab, numbered, text};

/// Longer than any test: orders leave `processing` when the test says so
/// (`release_processing`), not when a short hold happens to run out.
const HOLD: Duration = Duration::from_secs(3600);

/// A CA that keeps every finalized order `processing` until the test releases it.
async fn slow_ca() -> Ca {
    let plan = FaultPlan::new().rule(Endpoint::Finalize, Fault::processing_for(HOLD));
    let builder = TestCa::builder()
        .fault_plan(plan)
        .poll_retry_after(Duration::from_secs(1));
    Ca::testca("a", builder, "max_concurrent_orders = 20\n").await
}

/// The certificates with a finalize in the ledger (their orders are persisted and in the
/// CA's hands).
fn finalized(lab: &Lab) -> BTreeSet<String> {
    lab.ledger(&["--ca", "a"])
        .into_iter()
        .filter(|r| r["step"] == "finalize")
        .filter_map(|r| r["cert"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_the_middle_of_twenty_renewals_it_resumes_every_order() {
    let ca = slow_ca().await;
    let mut lab = Lab::new(Scene::new(), vec![ca]);
    let names = numbered(20);
    let certs: Vec<(&str, &[&str], &str)> =
        names.iter().map(|n| (n.as_str(), &["a"][..], "")).collect();
    lab.write_config("workers = 20", "", &certs);
    lab.start(&[]);

    // Every order is in flight (finalized, processing at the CA): kill the daemon now.
    lab.wait_for("all twenty orders finalized", FLOW, || {
        (finalized(&lab).len() == 20).then_some(())
    });
    assert_eq!(
        lab.ca("a").counts().certificates_issued,
        0,
        "still processing"
    );
    lab.kill();
    let pending = lab
        .status()
        .into_iter()
        .filter(|r| r["state"] == "renewing")
        .count();
    assert_eq!(pending, 20, "the pending orders are in the store");

    assert_eq!(lab.ca("a").release_processing(), 20);
    lab.start(&[]);
    lab.wait_all_valid(FLOW);
    let counts = lab.ca("a").counts();
    assert_eq!(counts.orders_created, 20, "not one order more");
    assert_eq!(counts.certificates_issued, 20);
    assert_eq!(
        counts.finalize_requests, 20,
        "resumed by polling, not finalized again"
    );
    lab.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_an_order_stops_within_the_grace_and_the_order_resumes() {
    let ca = slow_ca().await;
    let mut lab = Lab::new(Scene::new(), vec![ca]);
    lab.write_config("", "", &[("www", &["a"], "")]);
    lab.start(&[]);

    lab.wait_for("the order finalized", FLOW, || {
        finalized(&lab).contains("www").then_some(())
    });
    let order_url = lab
        .ledger(&["--cert", "www", "--ca", "a"])
        .into_iter()
        .find(|r| r["step"] == "finalize")
        .map(|r| text(&r["order_url"]).to_string())
        .unwrap();
    // shutdown_grace is 10 s; the job stops at once (its order is persisted).
    let took = lab.stop();
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(
        lab.socket.seen.iter().any(|m| has(m, "STOPPING=1")),
        "{:?}",
        lab.socket.seen
    );
    let row = lab.status_of("www");
    assert_eq!(row["state"], "renewing", "{row}");

    assert_eq!(lab.ca("a").release_processing(), 1);
    lab.start(&[]);
    lab.wait_all_valid(FLOW);
    let downloads: Vec<_> = lab
        .ledger(&["--cert", "www", "--ca", "a"])
        .into_iter()
        .filter(|r| r["step"] == "download")
        .collect();
    assert!(!downloads.is_empty());
    for d in &downloads {
        assert_eq!(text(&d["order_url"]), order_url, "the same order: {d}");
    }
    let counts = lab.ca("a").counts();
    assert_eq!(counts.orders_created, 1);
    assert_eq!(counts.certificates_issued, 1);
    lab.stop();
}
