//! renewd-acme against a real pebble (and pebble-challtestsrv), each test on its own free
//! ports. Validation is real (http-01, dns-01, tls-alpn-01) unless a test says otherwise.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use renewd_acme::{
    Account, AccountKey, AcmeClient, CertId, Error, ExternalAccountKey, HyperClient, IssueRequest,
    Issued, MemoryPendingOrders, NewAccount, NewOrder, OrderStatus,
};
use renewd_core::{ChallengeType, FailureClass, KeyType, OutcomeClass, Step};
use renewd_testsupport::{Pebble, PebbleOptions};
use tokio::sync::Notify;

use support::faults::{Fault, FaultyHttp};
use support::solvers::{Dns01Solver, Http01Solver, NoopSolver, TlsAlpn01Solver};
use support::{account, client, client_over, settings, verify_chain};

fn request(names: &[&str], key_type: KeyType, challenge: ChallengeType) -> IssueRequest {
    IssueRequest {
        key_type,
        challenge,
        ..IssueRequest::dns(names)
    }
}

/// A pebble that validates nothing (`PEBBLE_VA_ALWAYS_VALID`): for tests of the order flow
/// rather than of the challenges.
async fn always_valid_pebble() -> Pebble {
    Pebble::start(PebbleOptions {
        va_always_valid: true,
        ..PebbleOptions::default()
    })
    .await
}

/// A fault injector in front of the real HTTP stack, set up to reach `pebble`.
fn faulty_http(pebble: &Pebble) -> Arc<FaultyHttp> {
    FaultyHttp::new(HyperClient::new(&settings(pebble).http).unwrap())
}

/// Issues a certificate for `name` without solving anything (an always-valid pebble) and
/// without keeping the pending-order record.
async fn issue_unsolved(acct: &Account, name: &str) -> Issued {
    acct.issue(
        &IssueRequest::dns(&[name]),
        &NoopSolver,
        &MemoryPendingOrders::default(),
    )
    .await
    .unwrap()
}

/// Checks `issued` for `names` against pebble's default root.
async fn verify_issued(pebble: &Pebble, issued: &Issued, names: &[&str]) {
    let root = pebble.issuing_root_pem(0).await;
    verify_chain(&issued.chain_pem, &root, names, &issued.key_pem);
}

#[tokio::test]
async fn account_create_find_update_and_rollover() {
    let pebble = Pebble::start(PebbleOptions::default()).await;
    let (client, recorder) = client(&pebble);
    let key = AccountKey::generate();
    let created = client
        .new_account(
            key.clone(),
            &NewAccount {
                contact: vec!["mailto:a@example.com".into()],
                terms_of_service_agreed: true,
                eab: None,
            },
        )
        .await
        .unwrap();
    assert!(created.url().starts_with("https://127.0.0.1:"));

    let found = client.find_account(key.clone()).await.unwrap();
    assert_eq!(found.url(), created.url());

    let unknown = client
        .find_account(AccountKey::generate())
        .await
        .unwrap_err();
    assert!(unknown.is_problem("accountDoesNotExist"), "{unknown}");
    assert_eq!(
        unknown.class(),
        FailureClass::Rejected { ca_specific: true }
    );
    assert_eq!(unknown.http_status(), Some(400));

    let updated = found
        .update_contact(&["mailto:b@example.com".to_string()])
        .await
        .unwrap();
    assert_eq!(updated.contact, vec!["mailto:b@example.com"]);

    let new_key = AccountKey::generate();
    let rolled = found.key_rollover(new_key.clone()).await.unwrap();
    assert_eq!(rolled.url(), created.url());
    assert_eq!(
        client.find_account(new_key).await.unwrap().url(),
        created.url()
    );
    assert!(
        client.find_account(key).await.is_err(),
        "the old key is gone"
    );
    // Every request reported exactly one event, with the step it belongs to.
    let events = recorder.events();
    assert_eq!(events[0].step, Step::Directory);
    assert_eq!(
        events
            .iter()
            .filter(|e| e.class == OutcomeClass::Rejected)
            .count(),
        2,
        "the two lookups of unknown keys"
    );
}

#[tokio::test]
async fn eab_required_right_key_works_wrong_key_is_rejected() {
    let mac = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let pebble = Pebble::start(PebbleOptions {
        eab_required: true,
        eab_keys: vec![("kid-1".into(), mac.into())],
        ..PebbleOptions::default()
    })
    .await;
    let (client, _) = client(&pebble);
    assert!(
        client
            .directory()
            .await
            .unwrap()
            .meta
            .external_account_required
    );
    let new = |eab| NewAccount {
        contact: vec![],
        terms_of_service_agreed: true,
        eab,
    };

    let missing = client
        .new_account(AccountKey::generate(), &new(None))
        .await
        .unwrap_err();
    assert!(missing.is_problem("externalAccountRequired"), "{missing}");
    assert_eq!(
        missing.class(),
        FailureClass::Rejected { ca_specific: true }
    );

    let wrong = ExternalAccountKey::new("kid-1", "c29tZSBvdGhlciBrZXkgYnl0ZXMgaGVyZQ").unwrap();
    let refused = client
        .new_account(AccountKey::generate(), &new(Some(wrong)))
        .await
        .unwrap_err();
    assert!(
        matches!(refused.class(), FailureClass::Rejected { .. }),
        "{refused}"
    );
    assert!(refused.problem().is_some());

    let right = ExternalAccountKey::new("kid-1", mac).unwrap();
    let acct = client
        .new_account(AccountKey::generate(), &new(Some(right)))
        .await
        .unwrap();
    assert!(!acct.url().is_empty());
}

#[tokio::test]
async fn http01_issuance_p256_verifies_against_pebble_root() {
    let solver = Http01Solver::start().await;
    let pebble = Pebble::start(PebbleOptions {
        http_port: Some(solver.port()),
        ..PebbleOptions::default()
    })
    .await;
    let (client, recorder) = client(&pebble);
    let acct = account(&client).await;
    let sink = MemoryPendingOrders::default();
    let names = ["www.http01.test", "http01.test"];
    let issued = acct
        .issue(
            &request(&names, KeyType::EcdsaP256, ChallengeType::Http01),
            &solver,
            &sink,
        )
        .await
        .unwrap();
    verify_issued(&pebble, &issued, &names).await;
    assert!(
        sink.records().is_empty(),
        "the record was dropped after download"
    );
    let events = recorder.events();
    assert!(
        events.iter().all(|e| e.class == OutcomeClass::Ok),
        "{events:#?}"
    );
    assert_eq!(recorder.count(Step::NewOrder), 1);
    assert_eq!(recorder.count(Step::Finalize), 1);
    assert_eq!(recorder.count(Step::Challenge), 2);
    assert!(
        events
            .iter()
            .filter(|e| matches!(e.step, Step::Finalize | Step::PollOrder | Step::Download))
            .all(|e| e.order_url.as_deref() == Some(issued.order_url.as_str())),
        "events after newOrder carry the order URL"
    );
}

#[tokio::test]
async fn dns01_issuance_p384() {
    let pebble = Pebble::start(PebbleOptions::default()).await;
    let (client, _) = client(&pebble);
    let acct = account(&client).await;
    let solver = Dns01Solver { pebble: &pebble };
    let names = ["dns01.test", "*.dns01.test"];
    let issued = acct
        .issue(
            &request(&names, KeyType::EcdsaP384, ChallengeType::Dns01),
            &solver,
            &MemoryPendingOrders::default(),
        )
        .await
        .unwrap();
    verify_issued(&pebble, &issued, &names).await;
}

#[tokio::test]
async fn tls_alpn01_issuance_rsa2048() {
    let solver = TlsAlpn01Solver::start().await;
    let pebble = Pebble::start(PebbleOptions {
        tls_port: Some(solver.port()),
        ..PebbleOptions::default()
    })
    .await;
    let (client, _) = client(&pebble);
    let acct = account(&client).await;
    let names = ["tls-alpn.test"];
    let issued = acct
        .issue(
            &request(&names, KeyType::Rsa2048, ChallengeType::TlsAlpn01),
            &solver,
            &MemoryPendingOrders::default(),
        )
        .await
        .unwrap();
    assert!(issued.key_pem.contains("PRIVATE KEY"));
    verify_issued(&pebble, &issued, &names).await;
}

#[tokio::test]
async fn half_of_nonces_rejected_every_issuance_succeeds() {
    let pebble = Pebble::start(PebbleOptions {
        nonce_reject_percent: 50,
        va_always_valid: true,
        ..PebbleOptions::default()
    })
    .await;
    let (client, recorder) = client(&pebble);
    let acct = account(&client).await;
    for i in 0..4 {
        issue_unsolved(&acct, &format!("nonce{i}.test")).await;
    }
    let bad = recorder.count_class(OutcomeClass::BadNonce);
    assert!(
        bad > 0,
        "pebble rejected some nonces and the client retried them"
    );
    assert_eq!(
        recorder.count_class(OutcomeClass::Ok) + bad,
        recorder.events().len()
    );
}

#[tokio::test]
async fn alternate_chains_and_preferred_chain() {
    let pebble = Pebble::start(PebbleOptions {
        alternate_roots: 2,
        va_always_valid: true,
        ..PebbleOptions::default()
    })
    .await;
    let (client, _) = client(&pebble);
    let acct = account(&client).await;
    let first = issue_unsolved(&acct, "alt.test").await;
    assert_eq!(
        first.alternates.len(),
        2,
        "pebble offers two alternate chains"
    );
    let roots = [
        pebble.issuing_root_pem(0).await,
        pebble.issuing_root_pem(1).await,
        pebble.issuing_root_pem(2).await,
    ];
    verify_chain(&first.chain_pem, &roots[0], &["alt.test"], &first.key_pem);
    let all_roots = roots.concat();
    for alt in &first.alternates {
        verify_chain(alt, &all_roots, &["alt.test"], &first.key_pem);
    }
    // The CN of root 2, as the top-most certificate's issuer names it.
    let want = renewd_acme::CertificateChain {
        url: String::new(),
        pem: first.alternates[1].clone(),
    }
    .top_issuer_common_name()
    .unwrap();
    assert!(want.starts_with("Pebble Root CA"), "{want}");
    let preferred = acct
        .issue(
            &IssueRequest {
                preferred_chain: Some(want.clone()),
                ..IssueRequest::dns(&["alt.test"])
            },
            &NoopSolver,
            &MemoryPendingOrders::default(),
        )
        .await
        .unwrap();
    let chosen = renewd_acme::CertificateChain {
        url: preferred.cert_url.clone(),
        pem: preferred.chain_pem.clone(),
    };
    assert_eq!(
        chosen.top_issuer_common_name().as_deref(),
        Some(want.as_str())
    );
    assert_ne!(preferred.cert_url, format!("{}", preferred.order_url));
    assert_eq!(preferred.alternates.len(), 2);
}

#[tokio::test]
async fn resume_after_the_client_died_right_after_finalize() {
    let pebble = always_valid_pebble().await;
    let http = faulty_http(&pebble);
    let died = Arc::new(Notify::new());
    http.add("/finalize-order/", 1, Fault::HangAfterSending(died.clone()));
    let (first_client, _) = client_over(&pebble, http.clone());
    let acct = account(&first_client).await;
    let sink = MemoryPendingOrders::default();
    let req = IssueRequest::dns(&["resume.test"]);
    tokio::select! {
        result = acct.issue(&req, &NoopSolver, &sink) => panic!("the flow should hang: {result:?}"),
        () = died.notified() => {} // finalize reached pebble; the flow is dropped here
    }
    let records = sink.records();
    assert_eq!(records.len(), 1, "the record was saved before finalize");
    let record: renewd_acme::PendingOrder =
        serde_json::from_str(&serde_json::to_string(&records[0]).unwrap()).unwrap();

    // A new process: a fresh client, the account from the store, the record.
    let (client, recorder) = client(&pebble);
    let acct = client.account(acct.key().clone(), record.account_url.clone());
    let issued = acct.resume(&record, &NoopSolver, &sink).await.unwrap();
    assert_eq!(issued.order_url, record.order_url);
    assert_eq!(recorder.count(Step::NewOrder), 0, "no second order");
    assert_eq!(
        recorder.count(Step::Finalize),
        0,
        "pebble had the CSR already"
    );
    assert_eq!(issued.key_pem, record.key_pem, "the recorded key");
    verify_issued(&pebble, &issued, &["resume.test"]).await;
    assert!(sink.records().is_empty());
}

#[tokio::test]
async fn finalize_504_after_the_ca_acted_recovers_the_same_order() {
    let pebble = always_valid_pebble().await;
    let http = faulty_http(&pebble);
    http.add(
        "/finalize-order/",
        1,
        Fault::ReplaceAnswer {
            status: 504,
            body: "<html><head><title>504 Gateway Time-out</title></head></html>",
        },
    );
    let (client, recorder) = client_over(&pebble, http.clone());
    let acct = account(&client).await;
    let issued = issue_unsolved(&acct, "gateway.test").await;
    assert_eq!(recorder.count(Step::NewOrder), 1);
    let finalize: Vec<_> = recorder
        .events()
        .into_iter()
        .filter(|e| e.step == Step::Finalize)
        .collect();
    assert_eq!(finalize.len(), 1, "the CA had the CSR: no second finalize");
    assert_eq!(finalize[0].http_status, Some(504));
    assert_eq!(finalize[0].class, OutcomeClass::CaUnavailable);
    assert!(
        finalize[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("504 Gateway Time-out")
    );
    verify_issued(&pebble, &issued, &["gateway.test"]).await;
}

#[tokio::test]
async fn finalize_502_before_the_ca_acted_finalizes_again_with_the_same_csr() {
    let pebble = always_valid_pebble().await;
    let http = faulty_http(&pebble);
    http.add(
        "/finalize-order/",
        2,
        Fault::AnswerWithoutSending {
            status: 502,
            body: "<html>502 Bad Gateway</html>",
        },
    );
    http.add("/finalize-order/", 1, Fault::TimeoutAfterSending);
    let (client, recorder) = client_over(&pebble, http.clone());
    let acct = account(&client).await;
    let issued = issue_unsolved(&acct, "again.test").await;
    assert_eq!(recorder.count(Step::NewOrder), 1, "never a second order");
    let finalize_payloads: Vec<_> = http
        .sent()
        .into_iter()
        .filter(|s| s.url.contains("/finalize-order/"))
        .map(|s| s.payload.unwrap()["csr"].clone())
        .collect();
    assert_eq!(
        finalize_payloads.len(),
        3,
        "502, 502, timeout (accepted by pebble)"
    );
    assert!(
        finalize_payloads.windows(2).all(|w| w[0] == w[1]),
        "the same CSR each time"
    );
    let classes: Vec<_> = recorder
        .events()
        .into_iter()
        .filter(|e| e.step == Step::Finalize)
        .map(|e| e.class)
        .collect();
    assert_eq!(classes, vec![OutcomeClass::CaUnavailable; 3]);
    verify_issued(&pebble, &issued, &["again.test"]).await;
}

#[tokio::test]
async fn already_replaced_is_retried_without_replaces() {
    let pebble = always_valid_pebble().await;
    let http = faulty_http(&pebble);
    // pebble 2.4 has no ARI: pretend its directory has renewalInfo, and refuse the first
    // newOrder as alreadyReplaced.
    http.add(
        "/dir",
        usize::MAX,
        Fault::AddJson(serde_json::json!({"renewalInfo": "https://127.0.0.1:1/ari"})),
    );
    http.add(
        "/order-plz",
        1,
        Fault::AnswerWithoutSending {
            status: 409,
            body: r#"{"type":"urn:ietf:params:acme:error:alreadyReplaced","detail":"already replaced","status":409}"#,
        },
    );
    let (client, recorder) = client_over(&pebble, http.clone());
    let acct = account(&client).await;
    let issued = acct
        .issue(
            &IssueRequest {
                replaces: Some("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE".into()),
                ..IssueRequest::dns(&["replaced.test"])
            },
            &NoopSolver,
            &MemoryPendingOrders::default(),
        )
        .await
        .unwrap();
    assert!(!issued.chain_pem.is_empty());
    let orders: Vec<_> = http
        .sent()
        .into_iter()
        .filter(|s| s.url.ends_with("/order-plz"))
        .map(|s| s.payload.unwrap())
        .collect();
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0]["replaces"], "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    assert!(orders[1].get("replaces").is_none());
    let first = &recorder
        .events()
        .into_iter()
        .find(|e| e.step == Step::NewOrder)
        .unwrap();
    assert_eq!(first.class, OutcomeClass::Rejected);
    assert_eq!(first.http_status, Some(409));
}

#[tokio::test]
async fn revocation_by_account_key_and_by_certificate_key() {
    let pebble = always_valid_pebble().await;
    let (client, _) = client(&pebble);
    let acct = account(&client).await;
    let sink = MemoryPendingOrders::default();
    let one = acct
        .issue(&IssueRequest::dns(&["revoke1.test"]), &NoopSolver, &sink)
        .await
        .unwrap();
    let leaf = support::leaf_der(&one.chain_pem);
    acct.revoke(&leaf, Some(4)).await.unwrap();
    let again = acct.revoke(&leaf, None).await.unwrap_err();
    assert!(again.is_problem("alreadyRevoked"), "{again}");
    assert!(matches!(again.class(), FailureClass::Rejected { .. }));

    let two = acct
        .issue(&IssueRequest::dns(&["revoke2.test"]), &NoopSolver, &sink)
        .await
        .unwrap();
    let key = renewd_acme::CertificateKey::from_pem(&two.key_pem).unwrap();
    let fresh = AcmeClient::new(pebble.directory_url(), settings(&pebble)).unwrap();
    fresh
        .revoke_with_certificate_key(&key, &support::leaf_der(&two.chain_pem), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn blocked_name_is_rejected_with_the_problem_detail() {
    let pebble = Pebble::start(PebbleOptions {
        domain_blocklist: vec!["blocked.test".into()],
        va_always_valid: true,
        ..PebbleOptions::default()
    })
    .await;
    let (client, _) = client(&pebble);
    let acct = account(&client).await;
    let sink = MemoryPendingOrders::default();
    let err = acct
        .issue(&IssueRequest::dns(&["blocked.test"]), &NoopSolver, &sink)
        .await
        .unwrap_err();
    assert_eq!(err.step(), Step::NewOrder);
    assert!(err.is_problem("rejectedIdentifier"), "{err}");
    assert_eq!(err.class(), FailureClass::Rejected { ca_specific: false });
    let detail = err.problem().unwrap().detail.clone().unwrap();
    assert!(!detail.is_empty());
    assert!(err.to_string().contains(&detail));
    assert!(sink.records().is_empty(), "no order, no record");
}

#[tokio::test]
async fn low_level_order_steps_and_what_pebble_lacks() {
    let pebble = always_valid_pebble().await;
    let (client, _) = client(&pebble);
    let report = client.probe().await.unwrap();
    assert!(report.latency >= report.nonce_latency);
    let acct = account(&client).await;
    let order = acct
        .new_order(&NewOrder {
            identifiers: vec![renewd_acme::Identifier::dns("low.test")],
            ..NewOrder::default()
        })
        .await
        .unwrap();
    assert_eq!(order.body.status, OrderStatus::Pending);
    let again = acct.order(&order.url).await.unwrap();
    assert_eq!(again.body.authorizations, order.body.authorizations);
    let authz = acct
        .authorization(&order.body.authorizations[0])
        .await
        .unwrap();
    assert_eq!(authz.body.identifier.value, "low.test");
    let http = authz
        .body
        .challenges
        .iter()
        .find(|c| c.kind == "http-01")
        .unwrap();
    acct.respond_challenge(&http.url).await.unwrap();
    acct.poll_authorization(&authz.url).await.unwrap();
    // Finalizing with a CSR for other names is refused (pebble: 403 unauthorized), and the
    // order stays usable.
    let key = renewd_acme::CertificateKey::generate(KeyType::EcdsaP256).unwrap();
    let ready = acct.poll_order(&order.url).await.unwrap();
    assert_eq!(ready.status, OrderStatus::Ready);
    let bad_csr = key
        .csr_der(&[renewd_acme::Identifier::dns("other.test")])
        .unwrap();
    let err = acct
        .finalize(&order.url, &ready.finalize, &bad_csr)
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), Some(403));
    assert!(err.is_problem("unauthorized"), "{err}");
    assert_eq!(err.class(), FailureClass::Rejected { ca_specific: false });
    let csr = key
        .csr_der(&[renewd_acme::Identifier::dns("low.test")])
        .unwrap();
    acct.finalize(&order.url, &ready.finalize, &csr)
        .await
        .unwrap();
    let valid = acct.poll_order(&order.url).await.unwrap();
    assert_eq!(valid.status, OrderStatus::Valid);
    let chains = acct
        .download(valid.certificate.as_deref().unwrap())
        .await
        .unwrap();
    let id = CertId::from_certificate_der(&support::leaf_der(&chains.default.pem)).unwrap();

    // pebble 2.4 has neither ARI nor profiles: both are CA-specific refusals.
    let ari = client.renewal_info(&id).await.unwrap_err();
    assert!(matches!(ari, Error::Unsupported { .. }), "{ari}");
    assert_eq!(ari.class(), FailureClass::Rejected { ca_specific: true });
    let profile = acct
        .new_order(&NewOrder {
            identifiers: vec![renewd_acme::Identifier::dns("low.test")],
            profile: Some("shortlived".into()),
            replaces: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(profile, Error::Unsupported { .. }), "{profile}");
}

#[tokio::test]
async fn probe_reports_a_dead_ca_as_unavailable() {
    let mut pebble = Pebble::start(PebbleOptions::default()).await;
    let (client, recorder) = client(&pebble);
    client.probe().await.unwrap();
    assert_eq!(recorder.count(Step::Probe), 2, "directory and newNonce");
    pebble.kill().await;
    let err = client.probe().await.unwrap_err();
    assert_eq!(err.class(), FailureClass::CaUnavailable, "{err}");
    assert_eq!(err.step(), Step::Probe);
    assert_eq!(err.url(), Some(pebble.directory_url().as_str()));
    let last = recorder.events().pop().unwrap();
    assert_eq!(
        (last.step, last.class),
        (Step::Probe, OutcomeClass::CaUnavailable)
    );
}

#[tokio::test]
async fn resume_of_a_pending_order_redoes_the_authorizations() {
    let solver = Http01Solver::start().await;
    let pebble = Pebble::start(PebbleOptions {
        http_port: Some(solver.port()),
        ..PebbleOptions::default()
    })
    .await;
    let http = faulty_http(&pebble);
    let died = Arc::new(Notify::new());
    // The first process dies while reading the first authorization: nothing answered yet.
    http.add("/authZ/", 1, Fault::HangAfterSending(died.clone()));
    let (first_client, _) = client_over(&pebble, http.clone());
    let acct = account(&first_client).await;
    let sink = MemoryPendingOrders::default();
    let req = IssueRequest::dns(&["pending.test"]);
    tokio::select! {
        result = acct.issue(&req, &solver, &sink) => {
            panic!("the flow should hang: {result:?}")
        }
        () = died.notified() => {}
    }
    let record = sink.records().pop().unwrap();
    let (client, recorder) = client(&pebble);
    let acct = client.account(acct.key().clone(), record.account_url.clone());
    assert_eq!(
        acct.order(&record.order_url).await.unwrap().body.status,
        OrderStatus::Pending
    );
    let issued = acct.resume(&record, &solver, &sink).await.unwrap();
    assert_eq!(issued.order_url, record.order_url);
    assert_eq!(recorder.count(Step::NewOrder), 0);
    assert_eq!(
        recorder.count(Step::Challenge),
        1,
        "the authorization was redone"
    );
    verify_issued(&pebble, &issued, &["pending.test"]).await;
}

#[tokio::test]
async fn failed_validation_is_rejected_with_the_challenge_problem() {
    // Nobody serves http-01 on pebble's httpPort: validation fails for real.
    let pebble = Pebble::start(PebbleOptions::default()).await;
    let (client, _) = client(&pebble);
    let acct = account(&client).await;
    let sink = MemoryPendingOrders::default();
    let err = acct
        .issue(&IssueRequest::dns(&["unserved.test"]), &NoopSolver, &sink)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AuthorizationFailed { .. }), "{err}");
    assert_eq!(err.class(), FailureClass::Rejected { ca_specific: false });
    let problem = err.problem().unwrap();
    assert!(
        problem.is("connection") || problem.is("unauthorized"),
        "{problem:?}"
    );
    // The order is invalid now, and resuming says so with the order's error.
    let record = sink.records().pop().unwrap();
    let resumed = acct.resume(&record, &NoopSolver, &sink).await.unwrap_err();
    assert!(matches!(resumed, Error::OrderInvalid { .. }), "{resumed}");
    assert!(resumed.problem().is_some(), "the order's error is kept");
    assert!(
        sink.records().is_empty(),
        "an invalid order's record is dropped"
    );
}

#[tokio::test]
async fn recovery_gives_up_at_the_deadline_and_keeps_the_record() {
    let pebble = always_valid_pebble().await;
    let http = faulty_http(&pebble);
    http.add(
        "/finalize-order/",
        usize::MAX,
        Fault::AnswerWithoutSending {
            status: 503,
            body: r#"{"type":"urn:ietf:params:acme:error:serverInternal","detail":"down"}"#,
        },
    );
    let mut short = settings(&pebble);
    short.order_timeout = std::time::Duration::from_millis(1500);
    let recorder = Arc::new(support::Recorder::default());
    let client = AcmeClient::with_http_client(pebble.directory_url(), http.clone(), short)
        .with_observer(recorder.clone());
    let acct = account(&client).await;
    let sink = MemoryPendingOrders::default();
    let started = std::time::Instant::now();
    let err = acct
        .issue(&IssueRequest::dns(&["down.test"]), &NoopSolver, &sink)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    assert_eq!(err.class(), FailureClass::CaUnavailable, "{err}");
    assert_eq!(
        err.http_status(),
        Some(503),
        "the last failure is reported: {err}"
    );
    assert_eq!(
        sink.records().len(),
        1,
        "the order can still complete later"
    );
    assert_eq!(recorder.count(Step::NewOrder), 1);
    assert!(recorder.count(Step::Finalize) >= 2, "finalize was retried");
}

#[tokio::test]
async fn tls_failure_and_timeouts_are_ca_unavailable() {
    let pebble = Pebble::start(PebbleOptions::default()).await;
    // Without pebble's TLS root, the handshake fails.
    let untrusting = AcmeClient::new(
        pebble.directory_url(),
        renewd_acme::ClientSettings::default(),
    )
    .unwrap();
    let err = untrusting.directory().await.unwrap_err();
    assert_eq!(err.class(), FailureClass::CaUnavailable);
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: renewd_acme::TransportErrorKind::Tls,
                ..
            }
        ),
        "{err}"
    );

    // A server that accepts and never answers: the whole-request timeout fires.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/dir", silent.local_addr().unwrap());
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let mut quick = renewd_acme::ClientSettings::default();
    quick.http.request_timeout = std::time::Duration::from_millis(300);
    let err = AcmeClient::new(url, quick)
        .unwrap()
        .directory()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: renewd_acme::TransportErrorKind::Timeout,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.class(), FailureClass::CaUnavailable);

    // Nothing listening: refused.
    let port = renewd_testsupport::free_port();
    let err = AcmeClient::new(
        format!("http://127.0.0.1:{port}/dir"),
        renewd_acme::ClientSettings::default(),
    )
    .unwrap()
    .directory()
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: renewd_acme::TransportErrorKind::Connect,
                ..
            }
        ),
        "{err}"
    );
}
