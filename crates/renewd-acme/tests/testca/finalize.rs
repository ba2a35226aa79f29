//! Finalize recovery against the test CA: whatever the CA did to finalize (a gateway page
//! before or after issuing, a hang past our timeout, a dropped connection, a garbage 200),
//! the client re-fetches the same order, finalizes again with the same CSR only when the
//! order is still `ready`, and downloads — one order, one certificate, on the CA's books.

use std::time::Duration;

use renewd_core::{FailureClass, OutcomeClass, Step};
use renewd_testca::{Endpoint, Fault, FaultPlan};

use crate::common::{Env, assert_one_order_one_certificate, csrs_sent};

const NAME: &str = "f.example";

/// Runs one issuance under `plan` (set after the account exists) and checks the outcome
/// every variant shares. Returns the env for the variant's own assertions.
async fn recover(plan: FaultPlan) -> Env {
    recover_with(plan, |_| {}, 1).await
}

/// As [`recover`], with client settings changed by `adjust`, expecting `faults` faulted
/// finalize requests.
async fn recover_with(
    plan: FaultPlan,
    adjust: impl FnOnce(&mut renewd_acme::ClientSettings),
    faults: usize,
) -> Env {
    let env = Env::start_with(renewd_testca::TestCa::builder(), adjust).await;
    let account = env.account().await;
    env.plan(plan);
    let issued = env.issue(&account, &[NAME]).await.unwrap();
    env.verify(&issued, &[NAME]);
    assert_one_order_one_certificate(&env, &issued);
    let counts = env.counts();
    assert_eq!(
        counts.faulted(Endpoint::Finalize),
        faults as u64,
        "{counts:?}"
    );
    let failed_finalizes = env
        .recorder
        .events()
        .iter()
        .filter(|e| e.step == Step::Finalize && e.class != OutcomeClass::Ok)
        .count();
    assert_eq!(
        failed_finalizes, faults,
        "each faulted finalize is one failure event"
    );
    env
}

/// Before processing, the order stays `ready`: the client must finalize again, with the
/// same CSR (the key is already persisted in the pending record).
fn assert_finalized_twice_with_the_same_csr(env: &Env) {
    let counts = env.counts();
    assert_eq!(counts.requests_to(Endpoint::Finalize), 2, "{counts:?}");
    assert_eq!(
        counts.finalize_requests, 1,
        "only the second finalize reached the CA: {counts:?}"
    );
    let csrs = csrs_sent(&env.finalizes_sent());
    assert_eq!(csrs.len(), 2);
    assert_eq!(csrs[0], csrs[1], "finalized again with the same CSR");
    assert!(
        counts.requests_to(Endpoint::Order) >= 1,
        "the order was re-fetched: {counts:?}"
    );
}

/// After processing, the order is `valid`: the client must not finalize again, just
/// re-fetch the order and download.
fn assert_finalized_once_then_fetched(env: &Env) {
    assert_finalized_once_then_fetched_with(env, 2);
}

/// As [`assert_finalized_once_then_fetched`], with `downloads` certificate requests.
fn assert_finalized_once_then_fetched_with(env: &Env, downloads: u64) {
    let counts = env.counts();
    assert_eq!(counts.requests_to(Endpoint::Finalize), 1, "{counts:?}");
    assert_eq!(counts.finalize_requests, 1, "{counts:?}");
    assert!(
        counts.requests_to(Endpoint::Order) >= 1,
        "the order was re-fetched: {counts:?}"
    );
    assert_eq!(
        counts.requests_to(Endpoint::Certificate),
        downloads,
        "default + alternate chain, and the failed ones: {counts:?}"
    );
}

#[tokio::test]
async fn finalize_502_html_before_processing_finalizes_again_with_the_same_csr() {
    let env =
        recover(FaultPlan::new().rule(Endpoint::Finalize, Fault::status(502).html().times(1)))
            .await;
    assert_finalized_twice_with_the_same_csr(&env);
    let e = env
        .recorder
        .events()
        .into_iter()
        .find(|e| e.step == Step::Finalize && e.class == OutcomeClass::CaUnavailable)
        .unwrap();
    assert_eq!(e.http_status, Some(502));
    assert!(
        e.detail.unwrap().contains("<title>502 Bad Gateway</title>"),
        "the event keeps the gateway page"
    );
}

#[tokio::test]
async fn finalize_504_after_processing_downloads_the_certificate_already_issued() {
    let env = recover(FaultPlan::new().rule(
        Endpoint::Finalize,
        Fault::status(504).html().after_processing().times(1),
    ))
    .await;
    assert_finalized_once_then_fetched(&env);
}

/// A short request timeout, so a hung finalize costs the test seconds, not minutes.
fn short_timeout(s: &mut renewd_acme::ClientSettings) {
    s.http.request_timeout = Duration::from_secs(3);
}

#[tokio::test]
async fn finalize_hanging_past_the_client_timeout_before_processing() {
    let env = recover_with(
        FaultPlan::new().rule(Endpoint::Finalize, Fault::hang().times(1)),
        short_timeout,
        1,
    )
    .await;
    assert_finalized_twice_with_the_same_csr(&env);
    assert!(
        env.recorder
            .events()
            .iter()
            .any(|e| e.step == Step::Finalize
                && e.detail.as_deref().is_some_and(|d| d.contains("timeout"))),
        "the hang is seen as a timeout"
    );
}

#[tokio::test]
async fn finalize_hanging_past_the_client_timeout_after_processing() {
    let env = recover_with(
        FaultPlan::new().rule(
            Endpoint::Finalize,
            Fault::hang().after_processing().times(1),
        ),
        short_timeout,
        1,
    )
    .await;
    assert_finalized_once_then_fetched(&env);
}

#[tokio::test]
async fn finalize_connection_dropped_before_processing() {
    let env =
        recover(FaultPlan::new().rule(Endpoint::Finalize, Fault::drop_connection().times(1))).await;
    assert_finalized_twice_with_the_same_csr(&env);
}

#[tokio::test]
async fn finalize_connection_dropped_after_processing() {
    let env = recover(FaultPlan::new().rule(
        Endpoint::Finalize,
        Fault::drop_connection().after_processing().times(1),
    ))
    .await;
    assert_finalized_once_then_fetched(&env);
}

#[tokio::test]
async fn finalize_garbage_200_before_processing_finalizes_again() {
    let env =
        recover(FaultPlan::new().rule(Endpoint::Finalize, Fault::status(200).garbage().times(1)))
            .await;
    assert_finalized_twice_with_the_same_csr(&env);
}

#[tokio::test]
async fn finalize_502_twice_then_504_after_processing() {
    // Several failures in a row, the last one after the CA acted: still one order.
    let env = recover_with(
        FaultPlan::new()
            .rule(Endpoint::Finalize, Fault::status(502).html().times(2))
            .rule(
                Endpoint::Finalize,
                Fault::status(504).html().after_processing().times(1),
            ),
        |_| {},
        3,
    )
    .await;
    let counts = env.counts();
    assert_eq!(counts.requests_to(Endpoint::Finalize), 3, "{counts:?}");
    assert_eq!(counts.finalize_requests, 1, "{counts:?}");
    let csrs = csrs_sent(&env.finalizes_sent());
    assert!(csrs.iter().all(|c| *c == csrs[0]), "one CSR throughout");
}

#[tokio::test]
async fn gateway_errors_on_order_fetches_and_downloads_are_waited_out() {
    // Finalize lost after issuing; then the order fetch and the download fail too.
    let env = recover_with(
        FaultPlan::new()
            .rule(
                Endpoint::Finalize,
                Fault::status(504).html().after_processing().times(1),
            )
            .rule(Endpoint::Order, Fault::status(502).html().times(2))
            .rule(Endpoint::Certificate, Fault::status(503).html().times(2)),
        |_| {},
        1,
    )
    .await;
    let counts = env.counts();
    assert_eq!(counts.faulted(Endpoint::Order), 2, "{counts:?}");
    assert_eq!(counts.faulted(Endpoint::Certificate), 2, "{counts:?}");
    assert_finalized_once_then_fetched_with(&env, 4);
}

#[tokio::test]
async fn a_failed_alternate_chain_is_downloaded_again_alone() {
    // After a 504 that hid the issuance, the default chain comes through (a 1 ms delay uses
    // up the first certificate rule) and the alternate's download meets a gateway error:
    // only the alternate is asked for again, not the default chain already in hand.
    let env = recover(
        FaultPlan::new()
            .rule(
                Endpoint::Finalize,
                Fault::status(504).html().after_processing().times(1),
            )
            .rule(
                Endpoint::Certificate,
                Fault::delay(Duration::from_millis(1)).times(1),
            )
            .rule(Endpoint::Certificate, Fault::status(503).html().times(1)),
    )
    .await;
    let downloads: Vec<String> = env
        .wire
        .sent()
        .into_iter()
        .map(|s| s.url)
        .filter(|u| u.contains("/cert/"))
        .collect();
    assert_eq!(downloads.len(), 3, "{downloads:?}");
    assert_ne!(downloads[0], downloads[1], "the default, then an alternate");
    assert_eq!(
        downloads[1], downloads[2],
        "the alternate again: {downloads:?}"
    );
    assert_finalized_once_then_fetched_with(&env, 3);
}

#[tokio::test]
async fn finalize_rate_limited_beyond_what_the_client_may_wait_is_not_retried_early() {
    // 429 on finalize with Retry-After of an hour: nothing may be sent to the CA for that
    // account before then. The order is kept for a later resume, not finalized again now.
    let env = Env::start().await;
    let account = env.account().await;
    env.plan(FaultPlan::new().rule(
        Endpoint::Finalize,
        Fault::rate_limited(Duration::from_secs(3600)).times(1),
    ));
    let err = env.issue(&account, &[NAME]).await.unwrap_err();
    let FailureClass::RateLimited {
        retry_after: Some(at),
    } = err.class()
    else {
        panic!("not RateLimited with Retry-After: {err}");
    };
    crate::common::about_now_plus(at, 3600, 5);
    let counts = env.counts();
    assert_eq!(counts.requests_to(Endpoint::Finalize), 1, "{counts:?}");
    let after_finalize = env
        .wire
        .sent()
        .into_iter()
        .skip_while(|s| !s.url.ends_with("/finalize"))
        .count();
    assert_eq!(after_finalize, 1, "no request after the 429");
    assert_eq!(
        env.sink.records().len(),
        1,
        "the order is kept for a resume"
    );
    assert_eq!(counts.certificates_issued, 0);
}

#[tokio::test]
async fn finalize_rate_limited_for_a_moment_is_waited_out() {
    // A Retry-After the client may wait (within its clamp and deadline): wait, then go on.
    let env = recover_with(
        FaultPlan::new().rule(
            Endpoint::Finalize,
            Fault::rate_limited(Duration::from_secs(1)).times(1),
        ),
        |_| {},
        1,
    )
    .await;
    assert_finalized_twice_with_the_same_csr(&env);
}

#[tokio::test]
async fn concurrent_issuances_through_a_flaky_ca_cost_one_order_each() {
    // Six issuances at once on one account (one connection, one nonce pool), while the CA
    // loses finalize answers after issuing, hangs some, fails order fetches and rejects
    // nonces. The plan is seeded, but six tasks draw from it in whatever order they run,
    // so which request meets which fault differs from run to run; every run must hold.
    const N: usize = 6;
    let env = Env::start_with(renewd_testca::TestCa::builder(), short_timeout).await;
    let account = env.account().await;
    env.plan(
        FaultPlan::new()
            .seed(2024)
            .rule(
                Endpoint::Finalize,
                Fault::status(504)
                    .html()
                    .after_processing()
                    .probability(0.4),
            )
            .rule(Endpoint::Finalize, Fault::hang().probability(0.2).times(2))
            .rule(Endpoint::Order, Fault::status(502).html().probability(0.3))
            .rule(
                renewd_testca::EndpointMatch::Any,
                Fault::bad_nonce().probability(0.3),
            ),
    );
    let names: Vec<String> = (0..N).map(|i| format!("c{i}.example")).collect();
    let issue = |i: usize| {
        let (env, account, name) = (&env, &account, names[i].as_str());
        async move { (name, env.issue(account, &[name]).await) }
    };
    let (a, b, c, d, e, f) =
        tokio::join!(issue(0), issue(1), issue(2), issue(3), issue(4), issue(5));
    for (name, result) in [a, b, c, d, e, f] {
        let issued = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        env.verify(&issued, &[name]);
    }
    let counts = env.counts();
    assert_eq!(counts.orders_created, N as u64, "{counts:?}");
    assert_eq!(counts.certificates_issued, N as u64, "{counts:?}");
    assert!(counts.faults_injected > 0, "{counts:?}");
    assert!(env.sink.records().is_empty());
    eprintln!(
        "{N} concurrent issuances: {} faults injected, {} finalize requests sent, {} order \
         fetches",
        counts.faults_injected,
        counts.requests_to(Endpoint::Finalize),
        counts.requests_to(Endpoint::Order)
    );
}

#[tokio::test]
async fn rate_limited_without_retry_after_ends_the_attempt_and_resume_finishes() {
    // A 429 that does not say for how long: the client must not guess with its short poll
    // back-off (dozens of requests to a CA that asked for fewer). The attempt ends with
    // RateLimited; the pending order is resumed later — still one order, one certificate.
    let env = Env::start().await;
    let account = env.account().await;
    env.plan(
        FaultPlan::new()
            .rule(
                Endpoint::Finalize,
                Fault::status(504).html().after_processing().times(1),
            )
            .rule(Endpoint::Order, Fault::status(429).times(1)),
    );
    let err = env.issue(&account, &[NAME]).await.unwrap_err();
    assert_eq!(
        err.class(),
        FailureClass::RateLimited { retry_after: None },
        "{err}"
    );
    let counts = env.counts();
    assert_eq!(counts.requests_to(Endpoint::Order), 1, "{counts:?}");
    let records = env.sink.records();
    assert_eq!(records.len(), 1, "kept for a resume");

    let issued = account
        .resume(&records[0], &crate::support::solvers::NoopSolver, &env.sink)
        .await
        .unwrap();
    assert_one_order_one_certificate(&env, &issued);
}
