//! Every fault action, seen on the wire by the raw client.

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use renewd_testca::{Endpoint, EndpointMatch, Fault, FaultPlan, Mismatch};
use serde_json::{Value, json};

use crate::support::client::{Acme, csr_payload};
use crate::support::signer::Signer;
use crate::support::{assert_chains_to, pem_certs, start};

/// An account with a ready order for `name`: (order URL, finalize URL).
async fn ready_order(acme: &mut Acme, name: &str) -> (String, String) {
    let a = acme.new_order(&[name], json!({})).await;
    let url = a.header("location").expect("Location").to_owned();
    let order = a.json();
    acme.authorize(&order, "http-01").await;
    (
        url,
        order["finalize"].as_str().expect("finalize").to_owned(),
    )
}

#[tokio::test]
async fn a_504_before_processing_leaves_the_order_ready() {
    let ca = start().await;
    let mut acme = Acme::connect(&ca).await;
    acme.register().await;
    let (order_url, finalize) = ready_order(&mut acme, "s.example").await;
    ca.set_fault_plan(FaultPlan::new().rule(Endpoint::Finalize, Fault::status(504).times(1)))
        .expect("plan");
    let key = Signer::generate();
    let a = acme
        .post(&finalize, Some(&csr_payload(&key, &["s.example"])))
        .await;
    assert_eq!(a.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(a.header("content-type"), Some("text/html"));
    assert!(
        a.text().contains("<title>504 Gateway Time-out</title>"),
        "{}",
        a.text()
    );
    assert!(
        a.header("replay-nonce").is_none(),
        "a gateway page carries no nonce"
    );
    assert_eq!(acme.post(&order_url, None).await.json()["status"], "ready");
    let counts = ca.counts();
    assert_eq!(counts.certificates_issued, 0);
    assert_eq!(counts.faulted(Endpoint::Finalize), 1);
    assert_eq!(
        counts.finalize_requests, 0,
        "the request never reached the CA"
    );

    let retry = acme
        .post(&finalize, Some(&csr_payload(&key, &["s.example"])))
        .await;
    assert_eq!(retry.json()["status"], "valid", "times = 1 is used up");
}

#[tokio::test]
async fn a_504_after_processing_hides_an_issued_certificate() {
    let ca = start().await;
    let mut acme = Acme::connect(&ca).await;
    acme.register().await;
    let (order_url, finalize) = ready_order(&mut acme, "z.example").await;
    ca.set_fault_plan(FaultPlan::new().rule(
        Endpoint::Finalize,
        Fault::status(504).after_processing().times(1),
    ))
    .expect("plan");
    let a = acme
        .post(
            &finalize,
            Some(&csr_payload(&Signer::generate(), &["z.example"])),
        )
        .await;
    assert_eq!(a.status, StatusCode::GATEWAY_TIMEOUT);
    let counts = ca.counts();
    assert_eq!(
        counts.certificates_issued, 1,
        "issued behind the gateway error"
    );
    assert_eq!(counts.finalize_requests, 1);
    let order = acme.post(&order_url, None).await.json();
    assert_eq!(order["status"], "valid");
    let chain = acme
        .post(order["certificate"].as_str().expect("cert"), None)
        .await;
    assert_eq!(chain.status, StatusCode::OK);
}

#[tokio::test]
async fn invalid_order_makes_the_order_invalid_with_the_given_error() {
    let ca = start().await;
    let mut acme = Acme::connect(&ca).await;
    acme.register().await;
    let (order_url, finalize) = ready_order(&mut acme, "i.example").await;
    ca.set_fault_plan(FaultPlan::new().rule(
        Endpoint::Order,
        Fault::invalid_order("rateLimited", "gave up").times(1),
    ))
    .expect("plan");
    let order = acme.post(&order_url, None).await.json();
    assert_eq!(order["status"], "invalid");
    assert_eq!(
        order["error"]["type"],
        "urn:ietf:params:acme:error:rateLimited"
    );
    assert_eq!(order["error"]["detail"], "gave up");
    // For good: the rule is used up, the order stays invalid and cannot be finalized.
    assert_eq!(
        acme.post(&order_url, None).await.json()["status"],
        "invalid"
    );
    let a = acme
        .post(
            &finalize,
            Some(&csr_payload(&Signer::generate(), &["i.example"])),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(ca.counts().certificates_issued, 0);
}

#[tokio::test]
async fn problem_empty_and_garbage_bodies() {
    let ca = start().await;
    let mut acme = Acme::connect(&ca).await;
    acme.register().await;
    let dir = ca.directory_url();
    ca.set_fault_plan(
        FaultPlan::new()
            .rule(
                Endpoint::NewOrder,
                Fault::status(503)
                    .problem("serverInternal", "maintenance")
                    .retry_after(Duration::from_secs(120))
                    .times(1),
            )
            .rule(Endpoint::Directory, Fault::status(502).empty().times(1))
            .rule(Endpoint::Directory, Fault::status(200).garbage().times(1)),
    )
    .expect("plan");
    let a = acme.new_order(&["b.example"], json!({})).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.header("content-type"), Some("application/problem+json"));
    assert_eq!(a.header("retry-after"), Some("120"));
    assert!(a.header("replay-nonce").is_some(), "the CA itself answered");
    assert_eq!(a.problem(), "serverInternal");
    assert_eq!(a.json()["detail"], "maintenance");

    let empty = acme.http.get(&dir).await.expect("http");
    assert_eq!(empty.status, StatusCode::BAD_GATEWAY);
    assert!(empty.body.is_empty());
    let garbage = acme.http.get(&dir).await.expect("http");
    assert_eq!(garbage.status, StatusCode::OK);
    assert_eq!(garbage.header("content-type"), Some("application/json"));
    assert!(serde_json::from_slice::<Value>(&garbage.body).is_err());
    assert!(!garbage.body.is_empty());
    let fine = acme.http.get(&dir).await.expect("http");
    assert!(fine.json()["newOrder"].is_string());
    assert_eq!(ca.counts().faulted(Endpoint::Directory), 2);
    assert_eq!(ca.counts().orders_created, 0);
}

#[tokio::test]
async fn a_delay_holds_the_answer() {
    let ca = start().await;
    let acme = Acme::connect(&ca).await;
    ca.set_fault_plan(FaultPlan::new().rule(
        Endpoint::Directory,
        Fault::delay(Duration::from_millis(400)),
    ))
    .expect("plan");
    let started = Instant::now();
    let a = acme.http.get(&ca.directory_url()).await.expect("http");
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn a_hang_outlasts_the_client() {
    let ca = start().await;
    let acme = Acme::connect(&ca).await;
    ca.set_fault_plan(FaultPlan::new().rule(Endpoint::Directory, Fault::hang().times(1)))
        .expect("plan");
    let url = ca.directory_url();
    let pending = acme.http.send(Method::GET, &url, None, Vec::new());
    let gave_up = tokio::time::timeout(Duration::from_millis(500), pending).await;
    assert!(gave_up.is_err(), "no answer, and the connection stays open");
    assert_eq!(ca.counts().faulted(Endpoint::Directory), 1);
    let after = acme.http.get(&ca.directory_url()).await.expect("http");
    assert_eq!(after.status, StatusCode::OK);
}

#[tokio::test]
async fn a_drop_closes_without_an_answer_even_after_processing() {
    let ca = start().await;
    let mut acme = Acme::connect(&ca).await;
    acme.register().await;
    ca.set_fault_plan(
        FaultPlan::new()
            .rule(Endpoint::NewOrder, Fault::drop_connection().times(1))
            .rule(
                Endpoint::NewOrder,
                Fault::drop_connection().after_processing().times(1),
            ),
    )
    .expect("plan");
    let before = acme
        .try_post(
            &acme.url("newOrder"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "d.example"}]})),
        )
        .await;
    let err = before.expect_err("connection dropped");
    assert!(err.starts_with("request:"), "{err}");
    assert_eq!(ca.counts().orders_created, 0);
    let after = acme
        .try_post(
            &acme.url("newOrder"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "d.example"}]})),
        )
        .await;
    assert!(after.is_err());
    assert_eq!(ca.counts().orders_created, 1, "processed, then dropped");
}

#[tokio::test]
async fn rate_limited_carries_retry_after() {
    let ca = start().await;
    let mut acme = Acme::connect(&ca).await;
    ca.set_fault_plan(FaultPlan::new().rule(
        Endpoint::NewAccount,
        Fault::rate_limited(Duration::from_secs(60)),
    ))
    .expect("plan");
    let a = acme
        .post(
            &acme.url("newAccount"),
            Some(&json!({"termsOfServiceAgreed": true})),
        )
        .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.header("retry-after"), Some("60"));
    assert_eq!(a.problem(), "rateLimited");
    assert_eq!(ca.counts().accounts_created, 0);
}

#[tokio::test]
async fn processing_for_a_while_with_retry_after() {
    let ca = start().await;
    let mut acme = Acme::connect(&ca).await;
    acme.register().await;
    let (order_url, finalize) = ready_order(&mut acme, "p.example").await;
    ca.set_fault_plan(FaultPlan::new().rule(
        Endpoint::Finalize,
        Fault::processing_for(Duration::from_millis(1500)).retry_after(Duration::from_secs(1)),
    ))
    .expect("plan");
    let started = Instant::now();
    let a = acme
        .post(
            &finalize,
            Some(&csr_payload(&Signer::generate(), &["p.example"])),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["status"], "processing");
    assert_eq!(a.header("retry-after"), Some("1"));
    let polled = acme.post(&order_url, None).await;
    assert_eq!(polled.json()["status"], "processing");
    assert_eq!(polled.header("retry-after"), Some("1"));
    assert_eq!(ca.counts().certificates_issued, 0);
    let done = acme.poll_order(&order_url, 10).await;
    assert_eq!(done["status"], "valid");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert_eq!(ca.counts().certificates_issued, 1);
}

#[tokio::test]
async fn a_held_order_is_issued_when_released() {
    let ca = start().await;
    let mut acme = Acme::connect(&ca).await;
    acme.register().await;
    let (order_url, finalize) = ready_order(&mut acme, "held.example").await;
    ca.set_fault_plan(FaultPlan::new().rule(
        Endpoint::Finalize,
        Fault::processing_for(Duration::from_secs(3600)),
    ))
    .expect("plan");
    let a = acme
        .post(
            &finalize,
            Some(&csr_payload(&Signer::generate(), &["held.example"])),
        )
        .await;
    assert_eq!(a.json()["status"], "processing");
    assert_eq!(
        acme.post(&order_url, None).await.json()["status"],
        "processing"
    );
    assert_eq!(ca.counts().certificates_issued, 0);

    assert_eq!(ca.release_processing(), 1);
    assert_eq!(ca.counts().certificates_issued, 1);
    let done = acme.post(&order_url, None).await.json();
    assert_eq!(done["status"], "valid");
    assert!(done["certificate"].is_string(), "{done}");
    assert_eq!(ca.release_processing(), 0, "nothing left to release");
}

/// Which of 30 account reads get `badNonce` under a seeded 50 % rule.
async fn rejected_pattern(
    ca: &renewd_testca::TestCaHandle,
    acme: &mut Acme,
    seed: u64,
) -> Vec<bool> {
    ca.set_fault_plan(
        FaultPlan::new()
            .seed(seed)
            .rule(EndpointMatch::Any, Fault::bad_nonce().probability(0.5)),
    )
    .expect("plan");
    let kid = acme.kid.clone().expect("kid");
    let mut pattern = Vec::new();
    for _ in 0..30 {
        let a = acme.post(&kid, None).await;
        let rejected = a.status == StatusCode::BAD_REQUEST;
        if rejected {
            assert_eq!(a.problem(), "badNonce");
            assert!(a.header("replay-nonce").is_some());
        } else {
            assert_eq!(a.status, StatusCode::OK);
        }
        pattern.push(rejected);
    }
    pattern
}

#[tokio::test]
async fn nonce_rejection_follows_probability_and_seed() {
    let ca = start().await;
    let mut acme = Acme::connect(&ca).await;
    acme.register().await;
    let before = ca.counts().nonces_rejected;
    let first = rejected_pattern(&ca, &mut acme, 11).await;
    let rejected = first.iter().filter(|r| **r).count();
    assert!(
        (6..=24).contains(&rejected),
        "about half of 30, got {rejected}"
    );
    assert_eq!(ca.counts().nonces_rejected - before, rejected as u64);
    let again = rejected_pattern(&ca, &mut acme, 11).await;
    assert_eq!(first, again, "same seed, same rejections");
}

#[tokio::test]
async fn over_http2_drop_and_hang_work_and_shutdown_waits_for_every_task() {
    let ca = start().await;
    let h2 = crate::support::client::Https::http2(&ca);
    let url = ca.directory_url();
    assert_eq!(h2.get(&url).await.expect("h2").status, StatusCode::OK);
    ca.set_fault_plan(
        FaultPlan::new()
            .rule(Endpoint::Directory, Fault::drop_connection().times(1))
            .rule(Endpoint::Directory, Fault::hang().times(1)),
    )
    .expect("plan");
    assert!(h2.get(&url).await.is_err(), "dropped");
    let hung = tokio::time::timeout(
        Duration::from_millis(300),
        h2.send(Method::GET, &url, None, Vec::new()),
    )
    .await;
    assert!(hung.is_err(), "no answer");
    assert_eq!(ca.counts().faulted(Endpoint::Directory), 2);
    // Every connection and stream task is tracked: shutdown ends them all, promptly.
    tokio::time::timeout(Duration::from_secs(5), ca.shutdown())
        .await
        .expect("shutdown completes");
}

#[tokio::test]
async fn head_answers_carry_no_body_over_http2_even_fault_pages() {
    // Over HTTP/2 a body on a HEAD answer is a protocol error the client refuses: a gateway
    // page on HEAD newNonce must arrive as a bare 504, like nginx sends it.
    let ca = start().await;
    let h2 = crate::support::client::Https::http2(&ca);
    let nonce_url = format!("{}/nonce", ca.base_url());
    let plain = h2
        .send(Method::HEAD, &ca.directory_url(), None, Vec::new())
        .await
        .expect("HEAD directory over h2");
    assert_eq!(plain.status, StatusCode::OK);
    assert!(plain.body.is_empty());
    ca.set_fault_plan(FaultPlan::new().rule(Endpoint::Nonce, Fault::status(504).html().times(1)))
        .expect("plan");
    let page = h2
        .send(Method::HEAD, &nonce_url, None, Vec::new())
        .await
        .expect("HEAD newNonce over h2 with a fault page");
    assert_eq!(page.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(page.body.is_empty());
    assert_eq!(page.header("content-type"), Some("text/html"));
    let fine = h2
        .send(Method::HEAD, &nonce_url, None, Vec::new())
        .await
        .expect("HEAD newNonce over h2");
    assert_eq!(fine.status, StatusCode::OK);
    assert!(fine.header("replay-nonce").is_some());
}

/// The leaf of a PEM chain: (its subjectPublicKeyInfo DER, its DNS SANs).
fn leaf_key_and_names(chain_pem: &str) -> (Vec<u8>, Vec<String>) {
    let der = crate::support::client::leaf_der(chain_pem);
    let (_, leaf) = x509_parser::parse_x509_certificate(&der).expect("leaf parses");
    let names = leaf
        .subject_alternative_name()
        .expect("SAN parses")
        .expect("SAN present")
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
        .collect();
    (leaf.public_key().raw.to_vec(), names)
}

#[tokio::test]
async fn wrong_certificate_serves_a_leaf_for_other_names_or_another_key_then_the_right_one() {
    let ca = start().await;
    let mut acme = Acme::connect(&ca).await;
    acme.register().await;
    let got = acme.issue(&["w.example"], json!({})).await;
    let right = got.chain.text();
    let (right_key, right_names) = leaf_key_and_names(&right);
    assert_eq!(right_names, ["w.example"]);
    ca.set_fault_plan(
        FaultPlan::new()
            .rule(
                Endpoint::Certificate,
                Fault::wrong_certificate(Mismatch::Names).times(1),
            )
            .rule(
                Endpoint::Certificate,
                Fault::wrong_certificate(Mismatch::Key).times(1),
            ),
    )
    .expect("plan");
    let root = pem_certs(&ca.issuing_roots_pem()[0]).remove(0);

    let names = acme.post(&got.cert_url, None).await;
    assert_eq!(names.status, StatusCode::OK);
    assert_eq!(
        names.header("content-type"),
        Some("application/pem-certificate-chain")
    );
    let (key, wrong_names) = leaf_key_and_names(&names.text());
    assert_eq!(key, right_key, "names: the CSR's key is kept");
    assert_eq!(wrong_names, ["wrong-name.invalid"]);
    assert_chains_to(&pem_certs(&names.text()), &root);

    let other_key = acme.post(&got.cert_url, None).await;
    let (key, same_names) = leaf_key_and_names(&other_key.text());
    assert_ne!(key, right_key, "key: not the CSR's key");
    assert_eq!(same_names, ["w.example"]);
    assert_chains_to(&pem_certs(&other_key.text()), &root);

    assert_eq!(
        acme.post(&got.cert_url, None).await.text(),
        right,
        "the rules are used up: the stored certificate again"
    );
    let counts = ca.counts();
    assert_eq!(counts.faulted(Endpoint::Certificate), 2);
    assert_eq!(
        counts.certificates_issued, 1,
        "the wrong ones are not issued"
    );
}
