//! The reason renewd exists, through the real binary: a CA whose finalize answers gateway
//! errors. Failing every time → its circuit opens and the certificates fail over; failing
//! after issuing → the order is re-polled and nothing is wasted.

use renewd_testca::{Endpoint, Fault, FaultPlan, TestCa};

use crate::harness::Scene;
use crate::lab::{Ca, FLOW, Lab, numbered, serial_form, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_failing_every_finalize_opens_its_circuit_and_the_certificates_fail_over() {
    let broken = TestCa::builder()
        .fault_plan(FaultPlan::new().rule(Endpoint::Finalize, Fault::status(502).html()));
    let cas = vec![
        // A short order limit: an urgent job gives up on A after 3 s of finalize recovery.
        Ca::testca("a", broken, "order_timeout = \"3s\"\n").await,
        Ca::testca("b", TestCa::builder(), "").await,
    ];
    let mut lab = Lab::new(Scene::new(), cas);
    let names = numbered(10);
    let certs: Vec<(&str, &[&str], &str)> = names
        .iter()
        .map(|n| (n.as_str(), &["a", "b"][..], ""))
        .collect();
    lab.write_config(
        "workers = 4",
        // The first failed attempt opens A's circuit, so every urgent job that failed
        // there fails over at its next try (a few seconds) instead of after its back-off.
        "[breaker]\nfailure_threshold = 1\ncooldown = \"1h\"\nmax_cooldown = \"1h\"\n",
        &certs,
    );
    lab.start(&[]);

    let rows = lab.wait_all_valid(FLOW);
    for row in &rows {
        assert_eq!(row["issuer_ca"], "b", "{row}");
    }
    let a = lab
        .ca_rows()
        .into_iter()
        .find(|r| r["name"] == "a")
        .unwrap();
    assert_eq!(a["circuit"], "open", "{a}");
    let b = lab
        .ca_rows()
        .into_iter()
        .find(|r| r["name"] == "b")
        .unwrap();
    assert_eq!(b["circuit"], "closed", "{b}");

    let finalize_502: Vec<_> = lab
        .ledger(&["--ca", "a"])
        .into_iter()
        .filter(|r| r["step"] == "finalize")
        .collect();
    assert!(!finalize_502.is_empty());
    for r in &finalize_502 {
        assert_eq!(r["class"], "ca_unavailable", "{r}");
        assert_eq!(r["http_status"], 502, "{r}");
        assert!(r["order_url"].is_string(), "{r}");
    }

    // Once open, A gets no new orders: at most the ones in flight when it opened (one per
    // worker), and the count stays put.
    let orders_at_a = lab.ca("a").counts().orders_created;
    assert!(orders_at_a <= 4, "{orders_at_a} orders at a");
    assert_eq!(lab.ca("a").counts().certificates_issued, 0);
    assert_eq!(lab.ca("b").counts().orders_created, 10);
    // Renewing again (forced, through the daemon) goes straight to B.
    let out = lab.cli(&["renew", "--force", "--cert", "c0"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(lab.ca("a").counts().orders_created, orders_at_a);
    assert_eq!(lab.ca("b").counts().orders_created, 11);
    lab.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finalize_answered_504_after_issuing_wastes_no_certificate() {
    let flaky = TestCa::builder().fault_plan(FaultPlan::new().rule(
        Endpoint::Finalize,
        Fault::status(504).html().after_processing(),
    ));
    let cas = vec![Ca::testca("a", flaky, "").await];
    let mut lab = Lab::new(Scene::new(), cas);
    let names = numbered(5);
    let certs: Vec<(&str, &[&str], &str)> =
        names.iter().map(|n| (n.as_str(), &["a"][..], "")).collect();
    lab.write_config("", "", &certs);
    lab.start(&[]);

    let rows = lab.wait_all_valid(FLOW);
    let counts = lab.ca("a").counts();
    assert_eq!(
        counts.faulted(Endpoint::Finalize),
        5,
        "every finalize got a 504"
    );
    assert_eq!(counts.orders_created, 5);
    assert_eq!(counts.certificates_issued, 5, "zero wasted");
    let issued: Vec<String> = lab
        .ca("a")
        .certificates()
        .into_iter()
        .map(|c| serial_form(&c.serial))
        .collect();
    for row in &rows {
        assert!(issued.contains(&text(&row["serial"]).to_string()), "{row}");
    }
    // The ledger keeps the 504s, each followed by a good look at the same order.
    let ledger = lab.ledger(&["--ca", "a"]);
    let gateway: Vec<_> = ledger
        .iter()
        .filter(|r| r["step"] == "finalize" && r["http_status"] == 504)
        .collect();
    assert_eq!(gateway.len(), 5);
    for r in gateway {
        assert!(
            ledger.iter().any(|o| o["step"] == "poll_order"
                && o["order_url"] == r["order_url"]
                && o["class"] == "ok"),
            "no poll of {}",
            r["order_url"]
        );
    }
    lab.stop();
}
