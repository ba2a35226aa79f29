//! Refusals (`Rejected`, CA-specific or not) and local failures (`Local`) against the test
//! CA: each is classified once, and the CA's counts show the client stopped where it had to
//! (no finalize after a failed save, no challenge after a failed solver).

use renewd_acme::{
    BoxError, BoxFuture, CertificateKey, ChallengeAnswer, ChallengeSolver, Error, Identifier,
    IssueRequest, PendingOrder, PendingOrderSink,
};
use renewd_core::{FailureClass, KeyType, Step};
use renewd_testca::{ChallengeMode, Endpoint, TestCa, Validators};

use crate::common::{Env, ready_order};
use crate::support::solvers::{Http01Solver, NoopSolver};

const NOT_SPECIFIC: FailureClass = FailureClass::Rejected { ca_specific: false };

#[tokio::test]
async fn rejected_identifier_is_not_ca_specific() {
    let env = Env::start().await;
    let account = env.account().await;
    env.ca.reset_counts();
    let err = env
        .issue(&account, &["not_a_host.example"])
        .await
        .unwrap_err();
    assert!(err.is_problem("rejectedIdentifier"), "{err}");
    assert_eq!(err.class(), NOT_SPECIFIC);
    assert_eq!(env.counts().orders_created, 0);
}

#[tokio::test]
async fn bad_csr_is_not_ca_specific_and_leaves_the_order_ready() {
    let env = Env::start().await;
    let account = env.account().await;
    let order = ready_order(&account, "csr.example").await;
    let key = CertificateKey::generate(KeyType::EcdsaP256).unwrap();
    let wrong = key.csr_der(&[Identifier::dns("other.example")]).unwrap();
    env.ca.reset_counts();
    let err = account
        .finalize(&order.url, &order.body.finalize, &wrong)
        .await
        .unwrap_err();
    assert!(err.is_problem("badCSR"), "{err}");
    assert_eq!(err.class(), NOT_SPECIFIC);
    assert_eq!(env.counts().certificates_issued, 0);
    let still = account.order(&order.url).await.unwrap().body;
    assert_eq!(still.status, renewd_acme::OrderStatus::Ready);
    let right = key.csr_der(&[Identifier::dns("csr.example")]).unwrap();
    let done = account
        .finalize(&order.url, &order.body.finalize, &right)
        .await
        .unwrap();
    assert_eq!(done.body.status, renewd_acme::OrderStatus::Valid);
    assert_eq!(env.counts().certificates_issued, 1);
}

#[tokio::test]
async fn another_accounts_order_is_unauthorized() {
    let env = Env::start().await;
    let owner = env.account().await;
    let stranger = env.account().await;
    let order = ready_order(&owner, "mine.example").await;
    let err = stranger.order(&order.url).await.unwrap_err();
    assert!(err.is_problem("unauthorized"), "{err}");
    assert_eq!(err.class(), NOT_SPECIFIC);
    assert_eq!(err.http_status(), Some(403));
}

/// Real http-01 validation by the test CA, against our responder on loopback.
fn validating_ca(solver: &Http01Solver) -> renewd_testca::TestCaBuilder {
    TestCa::builder().challenge_mode(ChallengeMode::Validate(Validators {
        http01_port: Some(solver.port()),
        ..Validators::default()
    }))
}

#[tokio::test]
async fn real_http01_validation_issues_and_a_missing_answer_fails_the_authorization() {
    let responder = Http01Solver::start().await;
    let env = Env::start_with(validating_ca(&responder), |_| {}).await;
    let account = env.account().await;
    let issued = account
        .issue(&IssueRequest::dns(&["real.example"]), &responder, &env.sink)
        .await
        .unwrap();
    env.verify(&issued, &["real.example"]);
    assert_eq!(env.counts().validations_passed, 1);

    // Nothing presented: the CA's validator finds no answer.
    env.ca.reset_counts();
    let err = account
        .issue(
            &IssueRequest::dns(&["absent.example"]),
            &NoopSolver,
            &env.sink,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AuthorizationFailed { .. }), "{err:?}");
    assert_eq!(err.class(), NOT_SPECIFIC, "{err}");
    assert!(
        err.problem().is_some(),
        "the challenge's error is kept: {err}"
    );
    let counts = env.counts();
    assert_eq!(counts.validations_failed, 1, "{counts:?}");
    assert_eq!(counts.requests_to(Endpoint::Finalize), 0, "{counts:?}");
    assert_eq!(counts.orders_created, 1);
}

/// A sink whose disk is full.
struct FullDisk;

impl PendingOrderSink for FullDisk {
    fn save<'a>(&'a self, _: &'a PendingOrder) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async { Err(std::io::Error::other("No space left on device").into()) })
    }
    fn finished<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async { Ok(()) })
    }
}

/// A solver whose responder cannot bind.
struct CannotBind;

impl ChallengeSolver for CannotBind {
    fn present<'a>(&'a self, _: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async { Err(std::io::Error::other("Address already in use").into()) })
    }
    fn cleanup<'a>(&'a self, _: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn a_failed_save_is_local_and_nothing_is_finalized() {
    let env = Env::start().await;
    let account = env.account().await;
    env.ca.reset_counts();
    let err = account
        .issue(
            &IssueRequest::dns(&["save.example"]),
            &NoopSolver,
            &FullDisk,
        )
        .await
        .unwrap_err();
    assert_eq!(err.class(), FailureClass::Local, "{err}");
    assert!(err.to_string().contains("No space left"), "{err}");
    let counts = env.counts();
    assert_eq!(counts.orders_created, 1);
    assert_eq!(
        counts.requests_to(Endpoint::Challenge) + counts.requests_to(Endpoint::Finalize),
        0,
        "nothing after a record that could not be kept: {counts:?}"
    );
}

#[tokio::test]
async fn a_failed_solver_is_local_and_no_challenge_is_answered() {
    let env = Env::start().await;
    let account = env.account().await;
    env.ca.reset_counts();
    let err = account
        .issue(
            &IssueRequest::dns(&["bind.example"]),
            &CannotBind,
            &env.sink,
        )
        .await
        .unwrap_err();
    assert_eq!(err.class(), FailureClass::Local, "{err}");
    assert_eq!(err.step(), Step::ChallengeSetup);
    let counts = env.counts();
    assert_eq!(counts.requests_to(Endpoint::Challenge), 0, "{counts:?}");
    assert_eq!(counts.requests_to(Endpoint::Finalize), 0, "{counts:?}");
    assert_eq!(counts.validations_passed, 0);
}
