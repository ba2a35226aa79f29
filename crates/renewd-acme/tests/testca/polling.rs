//! Polling a `processing` order at the pace the CA asks (Retry-After), counted on the CA's
//! side; and an order that outlives the client's deadline, finished later by `resume`.

use std::time::Duration;

use renewd_core::FailureClass;
use renewd_testca::{Endpoint, Fault, FaultPlan, TestCa};

use crate::common::{Env, assert_one_order_one_certificate};
use crate::support::solvers::NoopSolver;

/// The order stays `processing` for `hold`, each answer asking for `retry_after`. The
/// client must not poll faster. The CA counts the order fetches: one that finds the order
/// `ready` (after the authorizations), at most ⌈hold / retry_after⌉ while it is
/// `processing` (the last one finds it `valid`), and one more of slack. A client that
/// ignored Retry-After and used its own back-off (50 ms growing to 500 ms) would make
/// about three times as many.
async fn polls_at_the_pace_asked(hold: Duration, retry_after: Duration) {
    let env = Env::start().await;
    let account = env.account().await;
    env.plan(
        FaultPlan::new().rule(
            Endpoint::Finalize,
            Fault::processing_for(hold)
                .retry_after(retry_after)
                .times(1),
        ),
    );
    let started = tokio::time::Instant::now();
    let issued = env.issue(&account, &["p.example"]).await.unwrap();
    let took = started.elapsed();
    assert_one_order_one_certificate(&env, &issued);
    let counts = env.counts();
    let polls = counts.requests_to(Endpoint::Order);
    let bound = 1 + (hold.as_secs_f64() / retry_after.as_secs_f64()).ceil() as u64 + 1;
    assert!(
        (2..=bound).contains(&polls),
        "{polls} order polls while processing for {hold:?} with Retry-After {retry_after:?} \
         (at most {bound}): {counts:?}"
    );
    assert_eq!(counts.requests_to(Endpoint::Finalize), 1, "{counts:?}");
    // Sanity, loosely: the certificate cannot have come before the CA issued it.
    assert!(took >= hold, "{took:?}");
    eprintln!("processing {hold:?}, Retry-After {retry_after:?}: {polls} order polls in {took:?}");
}

#[tokio::test]
async fn processing_with_retry_after_1s_is_polled_no_faster() {
    polls_at_the_pace_asked(Duration::from_secs(4), Duration::from_secs(1)).await;
}

#[tokio::test]
async fn processing_with_retry_after_2s_is_polled_no_faster() {
    polls_at_the_pace_asked(Duration::from_secs(5), Duration::from_secs(2)).await;
}

#[tokio::test]
async fn an_order_past_the_deadline_is_kept_and_resumed_without_a_new_order() {
    let env = Env::start_with(TestCa::builder(), |s| {
        s.order_timeout = Duration::from_secs(2);
    })
    .await;
    let account = env.account().await;
    env.plan(
        FaultPlan::new().rule(
            Endpoint::Finalize,
            Fault::processing_for(Duration::from_secs(4))
                .retry_after(Duration::from_secs(1))
                .times(1),
        ),
    );
    let err = env.issue(&account, &["d.example"]).await.unwrap_err();
    assert!(matches!(err, renewd_acme::Error::Deadline { .. }), "{err}");
    assert_eq!(err.class(), FailureClass::CaUnavailable);
    let records = env.sink.records();
    assert_eq!(records.len(), 1, "the pending order is kept for a resume");
    assert_eq!(env.counts().certificates_issued, 0);

    // After a restart, with a deadline that leaves the CA time to finish: resume the
    // record. Never a second order.
    let restarted = env
        .second_client(|_| {})
        .account(account.key().clone(), account.url());
    let issued = restarted
        .resume(&records[0], &NoopSolver, &env.sink)
        .await
        .unwrap();
    assert_eq!(issued.order_url, records[0].order_url);
    assert_eq!(issued.key_pem, records[0].key_pem, "the persisted key");
    assert_one_order_one_certificate(&env, &issued);
    assert_eq!(env.counts().requests_to(Endpoint::Finalize), 1);
}
