//! Failure classes of server answers, against the test CA: gateway pages (status and body
//! kept), timeouts, dropped and refused connections, unusable 200s on every endpoint, 429
//! with Retry-After, a persisting `badNonce` — each counted on the CA's side too.

use std::time::Duration;

use renewd_acme::{CertId, Error, Identifier, NewOrder, TransportErrorKind};
use renewd_core::{FailureClass, OutcomeClass, Step};
use renewd_testca::{Endpoint, Fault, FaultPlan, TestCa};

use crate::common::{Env, about_now_plus, ready_order};

fn new_order(name: &str) -> NewOrder {
    NewOrder {
        identifiers: vec![Identifier::dns(name)],
        ..NewOrder::default()
    }
}

#[tokio::test]
async fn gateway_pages_502_503_504_keep_status_and_body_snippet() {
    let env = Env::start().await;
    let account = env.account().await;
    for (status, title) in [
        (502, "502 Bad Gateway"),
        (503, "503 Service Temporarily Unavailable"),
        (504, "504 Gateway Time-out"),
    ] {
        env.plan(FaultPlan::new().rule(Endpoint::NewOrder, Fault::status(status).html().times(1)));
        let err = account
            .new_order(&new_order("g.example"))
            .await
            .unwrap_err();
        assert_eq!(err.class(), FailureClass::CaUnavailable, "{err}");
        assert_eq!(err.http_status(), Some(status));
        assert_eq!(err.step(), Step::NewOrder);
        assert!(
            err.problem().is_none(),
            "an HTML page is no problem document"
        );
        let snippet = err.body_snippet().unwrap();
        assert!(snippet.starts_with("<html>"), "{snippet}");
        assert!(
            snippet.contains(&format!("<title>{title}</title>")),
            "{snippet}"
        );
        assert!(snippet.contains("nginx"), "{snippet}");
        assert!(
            err.to_string().contains(title),
            "the message shows the page: {err}"
        );
        let counts = env.counts();
        assert_eq!(
            counts.requests_to(Endpoint::NewOrder),
            1,
            "not retried: {counts:?}"
        );
        assert_eq!(counts.orders_created, 0);
        let last = env.recorder.events().pop().unwrap();
        assert_eq!(last.class, OutcomeClass::CaUnavailable);
        assert_eq!(last.http_status, Some(status));
    }
}

#[tokio::test]
async fn problem_5xx_and_empty_5xx_are_ca_unavailable() {
    let env = Env::start().await;
    let account = env.account().await;
    env.plan(
        FaultPlan::new()
            .rule(
                Endpoint::NewOrder,
                Fault::status(500)
                    .problem("serverInternal", "database on fire")
                    .retry_after(Duration::from_secs(30))
                    .times(1),
            )
            .rule(Endpoint::NewOrder, Fault::status(502).empty().times(1)),
    );
    let err = account
        .new_order(&new_order("p.example"))
        .await
        .unwrap_err();
    assert_eq!(err.class(), FailureClass::CaUnavailable);
    assert!(err.is_problem("serverInternal"), "{err}");
    assert_eq!(
        err.problem().unwrap().detail.as_deref(),
        Some("database on fire")
    );
    about_now_plus(err.retry_after().unwrap(), 30, 5);
    let err = account
        .new_order(&new_order("p.example"))
        .await
        .unwrap_err();
    assert_eq!(err.class(), FailureClass::CaUnavailable);
    assert_eq!(err.http_status(), Some(502));
    assert_eq!(err.body_snippet(), Some(""));
    assert!(err.to_string().contains("(empty body)"), "{err}");
    assert_eq!(env.counts().orders_created, 0);
}

#[tokio::test]
async fn directory_503_is_ca_unavailable_and_the_probe_reports_it() {
    let env = Env::start().await;
    env.plan(FaultPlan::new().rule(Endpoint::Directory, Fault::status(503).html().times(1)));
    let err = env.client.probe().await.unwrap_err();
    assert_eq!(err.class(), FailureClass::CaUnavailable);
    assert_eq!(err.http_status(), Some(503));
    assert_eq!(err.step(), Step::Probe);
    assert_eq!(err.url(), Some(env.ca.directory_url().as_str()));
    assert!(
        err.body_snippet()
            .unwrap()
            .contains("503 Service Temporarily Unavailable")
    );
    let counts = env.counts();
    assert_eq!(counts.requests_to(Endpoint::Directory), 1, "{counts:?}");
    assert_eq!(
        counts.requests_to(Endpoint::Nonce),
        0,
        "no nonce asked of a dead CA"
    );
    let events = env.recorder.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].step, Step::Probe);
    assert_eq!(events[0].class, OutcomeClass::CaUnavailable);

    // The gateway is back: the probe passes, with one directory GET and one HEAD newNonce.
    let report = env.client.probe().await.unwrap();
    assert!(report.latency >= report.directory_latency);
    let counts = env.counts();
    assert_eq!(counts.requests_to(Endpoint::Directory), 2);
    assert_eq!(counts.requests_to(Endpoint::Nonce), 1);
}

#[tokio::test]
async fn probe_nonce_failure_is_ca_unavailable() {
    let env = Env::start().await;
    env.plan(FaultPlan::new().rule(Endpoint::Nonce, Fault::status(504).html().times(1)));
    let err = env.client.probe().await.unwrap_err();
    assert_eq!(err.class(), FailureClass::CaUnavailable);
    assert_eq!(err.http_status(), Some(504));
    assert!(err.url().unwrap().ends_with("/nonce"), "{err}");
    assert_eq!(env.counts().requests_to(Endpoint::Nonce), 1);
}

/// A 200 whose body is of no use (random bytes labelled JSON, an HTML page, nothing) on
/// every endpoint the client reads: `InvalidResponse`, `CaUnavailable`, no panic.
#[tokio::test]
async fn unusable_200_on_every_endpoint_is_ca_unavailable() {
    let env = Env::start().await;
    let account = env.account().await;
    let issued = env.issue(&account, &["u.example"]).await.unwrap();
    let cert_id =
        CertId::from_certificate_der(&crate::support::leaf_der(&issued.chain_pem)).unwrap();
    let cert_url = issued.cert_url.clone();
    type Shape = fn(Fault) -> Fault;
    let bodies: [(&str, Shape); 3] = [
        ("garbage", Fault::garbage),
        ("html", Fault::html),
        ("empty", Fault::empty),
    ];
    let mut checked = 0;
    for (body, shape) in bodies {
        for endpoint in [
            Endpoint::Directory,
            Endpoint::Nonce,
            Endpoint::NewAccount,
            Endpoint::NewOrder,
            Endpoint::Order,
            Endpoint::Authorization,
            Endpoint::Challenge,
            Endpoint::Finalize,
            Endpoint::Certificate,
            Endpoint::RenewalInfo,
        ] {
            // Prerequisites first, without faults.
            env.ca.set_fault_plan(FaultPlan::new()).unwrap();
            let order = ready_order(&account, "v.example").await;
            let authz_url = order.body.authorizations[0].clone();
            let authz = account.authorization(&authz_url).await.unwrap().body;
            let challenge_url = authz.challenges[0].url.clone();
            let csr = renewd_acme::CertificateKey::generate(renewd_core::KeyType::EcdsaP256)
                .unwrap()
                .csr_der(&[Identifier::dns("v.example")])
                .unwrap();
            // A client that has not fetched the directory yet, for the unsigned ones.
            let fresh = env.second_client(|_| {});
            env.plan(FaultPlan::new().rule(endpoint, shape(Fault::status(200)).times(1)));
            let result: Result<(), Error> = match endpoint {
                Endpoint::Directory => fresh.directory().await.map(drop),
                Endpoint::Nonce => fresh.probe().await.map(drop),
                Endpoint::NewAccount => fresh
                    .new_account(renewd_acme::AccountKey::generate(), &Default::default())
                    .await
                    .map(drop),
                Endpoint::NewOrder => account.new_order(&new_order("v.example")).await.map(drop),
                Endpoint::Order => account.order(&order.url).await.map(drop),
                Endpoint::Authorization => account.authorization(&authz_url).await.map(drop),
                Endpoint::Challenge => account.respond_challenge(&challenge_url).await.map(drop),
                Endpoint::Finalize => account
                    .finalize(&order.url, &order.body.finalize, &csr)
                    .await
                    .map(drop),
                Endpoint::Certificate => account.download(&cert_url).await.map(drop),
                Endpoint::RenewalInfo => fresh.renewal_info(&cert_id).await.map(drop),
                _ => unreachable!(),
            };
            let err = result.expect_err(&format!("{body} 200 on {endpoint}"));
            assert_eq!(
                err.class(),
                FailureClass::CaUnavailable,
                "{body} 200 on {endpoint}: {err}"
            );
            assert!(
                matches!(err, Error::InvalidResponse { status: 200, .. }),
                "{body} 200 on {endpoint}: {err:?}"
            );
            assert_eq!(
                env.counts().faulted(endpoint),
                1,
                "{body} 200 on {endpoint}: the CA answered it"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 30);
}

#[tokio::test]
async fn rate_limited_new_order_carries_the_retry_after_instant() {
    let env = Env::start().await;
    let account = env.account().await;
    env.plan(FaultPlan::new().rule(
        Endpoint::NewOrder,
        Fault::rate_limited(Duration::from_secs(3600)),
    ));
    let err = env.issue(&account, &["r.example"]).await.unwrap_err();
    let FailureClass::RateLimited {
        retry_after: Some(at),
    } = err.class()
    else {
        panic!(
            "not RateLimited with Retry-After: {:?} ({err})",
            err.class()
        );
    };
    about_now_plus(at, 3600, 5);
    assert_eq!(err.retry_after(), Some(at));
    assert_eq!(err.http_status(), Some(429));
    assert!(err.is_problem("rateLimited"), "{err}");
    let counts = env.counts();
    assert_eq!(
        counts.requests_to(Endpoint::NewOrder),
        1,
        "a rate limit is not retried: {counts:?}"
    );
    assert_eq!(counts.orders_created, 0);
    let last = env.recorder.events().pop().unwrap();
    assert_eq!(last.class, OutcomeClass::RateLimited);
}

#[tokio::test]
async fn persisting_bad_nonce_is_bad_nonce_after_the_client_retries() {
    let env = Env::start().await;
    let account = env.account().await;
    env.plan(FaultPlan::new().rule(Endpoint::NewOrder, Fault::bad_nonce()));
    let err = account
        .new_order(&new_order("n.example"))
        .await
        .unwrap_err();
    assert_eq!(err.class(), FailureClass::BadNonce, "{err}");
    assert!(err.is_problem("badNonce"));
    let counts = env.counts();
    assert_eq!(
        counts.requests_to(Endpoint::NewOrder),
        6,
        "one try and five retries with the fresh nonce: {counts:?}"
    );
    assert_eq!(counts.nonces_rejected, 6);
    assert_eq!(counts.orders_created, 0);
    assert_eq!(
        counts.requests_to(Endpoint::Nonce),
        0,
        "every retry used the nonce of the badNonce answer"
    );
}

#[tokio::test]
async fn timeout_and_dropped_connections_are_ca_unavailable() {
    let env = Env::start_with(TestCa::builder(), |s| {
        s.http.request_timeout = Duration::from_secs(2);
    })
    .await;
    let account = env.account().await;
    env.plan(
        FaultPlan::new()
            .rule(Endpoint::NewOrder, Fault::hang().times(1))
            .rule(Endpoint::NewOrder, Fault::drop_connection().times(1))
            .rule(
                Endpoint::NewOrder,
                Fault::drop_connection().after_processing().times(1),
            ),
    );
    let timeout = account
        .new_order(&new_order("t.example"))
        .await
        .unwrap_err();
    assert_eq!(timeout.class(), FailureClass::CaUnavailable);
    assert!(
        matches!(
            timeout,
            Error::Transport {
                kind: TransportErrorKind::Timeout,
                ..
            }
        ),
        "{timeout:?}"
    );
    let dropped = account
        .new_order(&new_order("t.example"))
        .await
        .unwrap_err();
    assert_eq!(dropped.class(), FailureClass::CaUnavailable);
    assert!(matches!(dropped, Error::Transport { .. }), "{dropped:?}");
    assert_eq!(env.counts().orders_created, 0, "nothing processed so far");
    let dropped_after = account
        .new_order(&new_order("t.example"))
        .await
        .unwrap_err();
    assert_eq!(dropped_after.class(), FailureClass::CaUnavailable);
    assert_eq!(
        env.counts().orders_created,
        1,
        "processed, then the answer lost: the client cannot know"
    );
}

#[tokio::test]
async fn refused_connection_is_ca_unavailable() {
    let env = Env::start().await;
    // A loopback port nobody listens on.
    let port = renewd_testsupport::free_port();
    let url = format!("https://127.0.0.1:{port}/dir");
    let settings = env.second_client(|_| {}).settings().clone();
    let nobody = renewd_acme::AcmeClient::new(url.clone(), settings).unwrap();
    let refused = nobody.probe().await.unwrap_err();
    assert_eq!(refused.class(), FailureClass::CaUnavailable);
    assert!(
        matches!(
            refused,
            Error::Transport {
                kind: TransportErrorKind::Connect,
                ..
            }
        ),
        "{refused:?}"
    );
    assert_eq!(refused.url(), Some(url.as_str()));
}

#[tokio::test]
async fn tls_failure_is_ca_unavailable() {
    let env = Env::start().await;
    // A client that does not trust the test CA's HTTPS root.
    let untrusting = renewd_acme::AcmeClient::new(
        env.ca.directory_url(),
        renewd_acme::ClientSettings::default(),
    )
    .unwrap();
    let err = untrusting.probe().await.unwrap_err();
    assert_eq!(err.class(), FailureClass::CaUnavailable);
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: TransportErrorKind::Tls,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        env.counts().requests_to(Endpoint::Directory),
        0,
        "no request got through"
    );
}
