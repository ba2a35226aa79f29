//! When a saved order is dropped: only on the CA's own evidence that it can never complete
//! (the order is `invalid`, whatever its `error` says), never on a gateway's page.

use chrono::TimeDelta;
use renewd_core::{FailureClass, Urgency};
use renewd_issuer::JobResult;
use renewd_testca::{Endpoint, Fault, FaultPlan, TestCa};

use crate::support::*;

fn abandoned_notes(lab: &Lab, ca: &str) -> usize {
    lab.ledger(ca)
        .iter()
        .filter(|r| r.detail.as_deref().is_some_and(|d| d.contains("abandoned")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_order_whose_error_is_a_rate_limit_is_dropped_not_resumed_forever() {
    let a = TestCa::builder().fault_plan(FaultPlan::new().rule(
        Endpoint::Order,
        Fault::invalid_order("rateLimited", "too many failed orders").times(1),
    ));
    let lab = lab().ca("a", a).cert("www", &["a"]).start().await;
    let issuer = lab.issuer();
    let result = renew(&issuer, "www", Urgency::Normal).await;
    assert!(
        matches!(
            result,
            JobResult::Failed {
                class: FailureClass::RateLimited { .. },
                ..
            }
        ),
        "{result:?}"
    );
    assert_eq!(
        lab.state("www").pending,
        None,
        "an invalid order can never complete: it is dropped"
    );
    assert_eq!(abandoned_notes(&lab, "a"), 1);
    // Once the (default) rate-limit block is over, a new order, not the dead one.
    lab.clock.advance(TimeDelta::minutes(6));
    let result = renew(&issuer, "www", Urgency::Normal).await;
    assert!(result.is_renewed(), "{result:?}");
    let a = lab.counts("a");
    assert_eq!((a.orders_created, a.certificates_issued), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_invalid_with_server_internal_counts_against_the_ca_and_fails_over() {
    let a = TestCa::builder().fault_plan(FaultPlan::new().rule(
        Endpoint::Order,
        Fault::invalid_order("serverInternal", "the signer is down"),
    ));
    let lab = lab()
        .ca("a", a)
        .ca("b", TestCa::builder())
        .cert("www", &["a", "b"])
        .start()
        .await;
    let result = renew(&lab.issuer(), "www", Urgency::Urgent).await;
    assert!(result.is_renewed(), "{result:?}");
    assert_eq!(lab.issuer_of("www").as_deref(), Some("b"));
    assert_eq!(
        lab.health("a").consecutive_failures,
        1,
        "the CA failing to issue is ill health"
    );
    assert_eq!(abandoned_notes(&lab, "a"), 1);
    assert_eq!(lab.state("www").pending, None);
}

/// Finalize answers 504 after the CA issued; then `endpoint` answers a gateway's 404 page
/// once. The certificate is the one A issued: the order is neither dropped nor replaced.
async fn a_gateway_404_after_issuance_keeps_the_order(endpoint: Endpoint) {
    let a = TestCa::builder().fault_plan(
        FaultPlan::new()
            .rule(
                Endpoint::Finalize,
                Fault::status(504).html().after_processing().times(1),
            )
            .rule(endpoint, Fault::status(404).html().times(1)),
    );
    let lab = lab()
        .ca("a", a)
        .ca("b", TestCa::builder())
        .cert("www", &["a", "b"])
        .start()
        .await;
    let result = renew(&lab.issuer(), "www", Urgency::Normal).await;
    assert!(result.is_renewed(), "{result:?}");
    assert_eq!(lab.issuer_of("www").as_deref(), Some("a"));
    let a = lab.counts("a");
    assert_eq!(a.faulted(endpoint), 1, "the 404 page was served");
    assert_eq!((a.orders_created, a.certificates_issued), (1, 1));
    assert_eq!(lab.counts("b").orders_created, 0, "no failover, no waste");
    assert_eq!(abandoned_notes(&lab, "a"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_page_on_the_order_after_a_504_finalize_keeps_the_issued_certificate() {
    a_gateway_404_after_issuance_keeps_the_order(Endpoint::Order).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_page_on_the_download_after_a_504_finalize_keeps_the_issued_certificate() {
    a_gateway_404_after_issuance_keeps_the_order(Endpoint::Certificate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_page_that_outlasts_the_attempt_keeps_the_order_for_the_next() {
    // The order fetch answers a WAF's 403 page until the attempt's deadline: the attempt
    // fails ca_unavailable (counted against A), the order stays saved, no failover at
    // normal urgency, and the next attempt finishes it.
    let a = TestCa::builder().fault_plan(
        FaultPlan::new()
            .rule(
                Endpoint::Finalize,
                Fault::status(504).html().after_processing().times(1),
            )
            .rule(Endpoint::Order, Fault::status(403).html()),
    );
    let lab = lab()
        .ca("a", a)
        .ca("b", TestCa::builder())
        .cert("www", &["a", "b"])
        .start()
        .await;
    let issuer = lab.issuer();
    let result = renew(&issuer, "www", Urgency::Normal).await;
    assert!(
        matches!(
            result,
            JobResult::Failed {
                class: FailureClass::CaUnavailable,
                ..
            }
        ),
        "{result:?}"
    );
    assert!(lab.state("www").pending.is_some(), "the order is kept");
    assert_eq!(lab.health("a").consecutive_failures, 1);
    assert_eq!(lab.counts("b").orders_created, 0);
    lab.testca("a").set_fault_plan(FaultPlan::new()).unwrap();
    lab.clock.advance(TimeDelta::hours(2));
    let result = renew(&issuer, "www", Urgency::Normal).await;
    assert!(result.is_renewed(), "{result:?}");
    let a = lab.counts("a");
    assert_eq!((a.orders_created, a.certificates_issued), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_running_behind_keeps_the_order_and_installs_once_it_is_right() {
    let lab = lab()
        .ca("a", TestCa::builder())
        .cert("www", &["a"])
        .start()
        .await;
    let issuer = lab.issuer();
    // Our clock is an hour behind: the new certificate is "not valid yet".
    let right = lab.now();
    lab.clock.set(right - TimeDelta::hours(1));
    let result = renew(&issuer, "www", Urgency::Normal).await;
    let JobResult::Failed { class, message, .. } = &result else {
        panic!("{result:?}");
    };
    assert_eq!(*class, FailureClass::Local);
    assert!(
        message.contains("the system clock looks wrong: certificate not valid before"),
        "{message}"
    );
    assert!(message.contains("local time"), "{message}");
    let state = lab.state("www");
    assert!(state.pending.is_some(), "the order is kept");
    assert!(state.next_attempt.unwrap() <= lab.now() + TimeDelta::minutes(10));
    assert_eq!(
        lab.health("a").consecutive_failures,
        0,
        "not the CA's fault"
    );
    assert_eq!(abandoned_notes(&lab, "a"), 0);

    // The clock is put right: the same order's certificate is installed, nothing new ordered.
    lab.clock.set(right);
    let result = renew(&issuer, "www", Urgency::Normal).await;
    assert!(result.is_renewed(), "{result:?}");
    let a = lab.counts("a");
    assert_eq!((a.orders_created, a.certificates_issued), (1, 1));
    assert_eq!(lab.state("www").pending, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ca_s_order_timeout_is_the_limit_even_when_longer_than_the_default() {
    // The order stays `processing` for 2.5 s: longer than the lab's usual 1.2 s limit, well
    // within this CA's configured 20 s. One attempt, one order, no failure.
    let a = TestCa::builder().fault_plan(FaultPlan::new().rule(
        Endpoint::Finalize,
        Fault::processing_for(std::time::Duration::from_millis(2500)),
    ));
    let lab = lab()
        .ca_with("a", a, "order_timeout = \"20s\"\n")
        .cert("www", &["a"])
        .start()
        .await;
    let result = renew(&lab.issuer(), "www", Urgency::Normal).await;
    assert!(result.is_renewed(), "{result:?}");
    let a = lab.counts("a");
    assert_eq!((a.orders_created, a.certificates_issued), (1, 1));
    assert_eq!(lab.health("a").consecutive_failures, 0);
}
