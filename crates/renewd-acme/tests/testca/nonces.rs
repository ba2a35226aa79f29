//! 80 % of nonces rejected (the test CA's `bad_nonce` fault, seeded): issuance still
//! succeeds, every rejected request is retried with the fresh nonce, and no rejection ever
//! costs a second order.

use renewd_core::OutcomeClass;
use renewd_testca::{EndpointMatch, Fault, FaultPlan, TestCa};

use crate::common::Env;

#[tokio::test]
async fn eighty_percent_of_nonces_rejected_every_issuance_succeeds() {
    const CERTIFICATES: u64 = 5;
    let plan = FaultPlan::new()
        .seed(8_555)
        .rule(EndpointMatch::Any, Fault::bad_nonce().probability(0.8));
    let env = Env::start_with(TestCa::builder().fault_plan(plan), |_| {}).await;
    let account = env.account().await;
    for i in 0..CERTIFICATES {
        let name = format!("n{i}.example");
        let issued = env.issue(&account, &[name.as_str()]).await.unwrap();
        env.verify(&issued, &[name.as_str()]);
    }
    let counts = env.counts();
    assert_eq!(counts.certificates_issued, CERTIFICATES, "{counts:?}");
    assert_eq!(
        counts.orders_created, CERTIFICATES,
        "a rejected nonce is never a second order: {counts:?}"
    );
    assert_eq!(counts.accounts_created, 1);
    // Each rejection is one request the client saw fail with badNonce, and retried.
    let rejected_seen = env.recorder.count_class(OutcomeClass::BadNonce) as u64;
    assert_eq!(rejected_seen, counts.nonces_rejected, "{counts:?}");
    let signed: u64 = counts
        .requests
        .iter()
        .filter(|(e, _)| e.is_signed())
        .map(|(_, c)| c.total)
        .sum();
    let share = counts.nonces_rejected as f64 / signed as f64;
    assert!(
        (0.7..0.9).contains(&share),
        "{} of {signed} signed requests rejected",
        counts.nonces_rejected
    );
    eprintln!(
        "80 % badNonce: {CERTIFICATES} certificates, {signed} signed requests, {} badNonce \
         retries ({:.0} %), {} HEAD newNonce",
        counts.nonces_rejected,
        share * 100.0,
        counts.requests_to(renewd_testca::Endpoint::Nonce)
    );
}
