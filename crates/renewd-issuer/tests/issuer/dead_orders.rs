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
