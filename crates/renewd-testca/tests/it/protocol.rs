//! RFC 8555 / 9773 behaviour without faults, over real HTTPS.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use http::StatusCode;
use renewd_testca::{AriOverride, AriTarget, Endpoint, SuggestedWindow, cert_id_of};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::client::{Acme, csr_payload, leaf_der};
use crate::support::signer::Signer;
use crate::support::{assert_chains_to, builder, pem_certs, start};

#[tokio::test]
async fn issues_a_chain_to_each_issuing_root() {
    let ca = start().await;
    let mut acme = Acme::connect(&ca).await;
    assert!(acme.dir["renewalInfo"].is_string());
    acme.register().await;
    let got = acme.issue(&["a.example", "b.example"], json!({})).await;
    assert_eq!(
        got.chain.header("content-type"),
        Some("application/pem-certificate-chain")
    );
    let alt = got.chain.header("link").expect("Link").to_owned();
    assert!(alt.ends_with(";rel=\"alternate\""), "{alt}");
    let alt_url = alt.trim_start_matches('<').split('>').next().expect("url");
    let alt_chain = acme.post(alt_url, None).await;
    assert_eq!(alt_chain.status, StatusCode::OK);
    assert!(
        alt_chain
            .header("link")
            .expect("Link back")
            .contains(&got.cert_url)
    );

    let roots: Vec<Vec<u8>> = ca
        .issuing_roots_pem()
        .iter()
        .map(|r| pem_certs(r).remove(0))
        .collect();
    assert_eq!(roots.len(), 2);
    let default = pem_certs(&got.chain.text());
    let alternate = pem_certs(&alt_chain.text());
    assert_eq!(default.len(), 2);
    assert_eq!(default[0], alternate[0], "same leaf in both chains");
    assert_chains_to(&default, &roots[0]);
    assert_chains_to(&alternate, &roots[1]);

    let (_, leaf) = x509_parser::parse_x509_certificate(&default[0]).expect("leaf");
    let sans = leaf.subject_alternative_name().expect("ext").expect("SAN");
    assert_eq!(sans.value.general_names.len(), 2);

    let counts = ca.counts();
    assert_eq!(counts.accounts_created, 1);
    assert_eq!(counts.orders_created, 1);
    assert_eq!(counts.finalize_requests, 1);
    assert_eq!(counts.certificates_issued, 1);
    assert_eq!(counts.validations_passed, 2);
    assert_eq!(counts.requests_to(Endpoint::Certificate), 2);
    assert_eq!(counts.faults_injected, 0);
    let issued = ca.certificates();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].names, vec!["a.example", "b.example"]);
}

fn window(answer: &Value) -> (DateTime<Utc>, DateTime<Utc>) {
    let parse = |k: &str| {
        DateTime::parse_from_rfc3339(answer["suggestedWindow"][k].as_str().expect(k))
            .expect("RFC 3339")
            .with_timezone(&Utc)
    };
    (parse("start"), parse("end"))
}

#[tokio::test]
async fn ari_window_is_the_last_third_unless_overridden() {
    let ca = builder()
        .validity(Duration::from_secs(300))
        .start()
        .await
        .expect("start");
    let mut acme = Acme::connect(&ca).await;
    acme.register().await;
    let got = acme.issue(&["ari.example"], json!({})).await;
    let (cert_id, _) = cert_id_of(&leaf_der(&got.chain.text())).expect("CertID");
    let info_url = format!("{}/{cert_id}", acme.url("renewalInfo"));

    let a = acme.http.get(&info_url).await.expect("ARI");
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("retry-after"), Some("21600"));
    let issued = &ca.certificates()[0];
    assert_eq!(issued.cert_id, cert_id);
    assert_eq!(
        window(&a.json()),
        (
            issued.not_before + chrono::Duration::seconds(200),
            issued.not_after
        )
    );
    assert!(a.json().get("explanationURL").is_none());

    let now_window = SuggestedWindow::open_now(Duration::from_secs(60), Duration::from_secs(60));
    ca.set_ari_window(
        AriOverride::new(AriTarget::Serial(issued.serial.to_uppercase()), now_window)
            .retry_after(Duration::from_secs(60))
            .explanation_url("https://example.invalid/incident"),
    );
    let a = acme.http.get(&info_url).await.expect("ARI");
    assert_eq!(a.header("retry-after"), Some("60"));
    assert_eq!(
        a.json()["explanationURL"],
        "https://example.invalid/incident"
    );
    let (start, end) = window(&a.json());
    assert_eq!(start.timestamp(), now_window.start.timestamp());
    assert_eq!(end.timestamp(), now_window.end.timestamp());

    ca.clear_ari_overrides();
    let a = acme.http.get(&info_url).await.expect("ARI");
    assert_eq!(a.header("retry-after"), Some("21600"));

    let unknown = acme
        .http
        .get(&format!("{}/AAAA.AAAA", acme.url("renewalInfo")))
        .await
        .expect("ARI");
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(ca.counts().requests_to(Endpoint::RenewalInfo), 4);
}

#[tokio::test]
async fn profiles_are_announced_echoed_and_checked() {
    let ca = builder()
        .profile("tiny", "ten minutes", Duration::from_secs(600))
        .start()
        .await
        .expect("start");
    let mut acme = Acme::connect(&ca).await;
    assert_eq!(acme.dir["meta"]["profiles"]["tiny"], "ten minutes");
    assert!(acme.dir["meta"]["profiles"]["classic"].is_string());
    acme.register().await;
    let bad = acme
        .new_order(&["p.example"], json!({"profile": "huge"}))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.problem(), "invalidProfile");
    let got = acme.issue(&["p.example"], json!({"profile": "tiny"})).await;
    let order = acme.post(&got.order_url, None).await.json();
    assert_eq!(order["profile"], "tiny");
    let c = &ca.certificates()[0];
    assert_eq!((c.not_after - c.not_before).num_seconds(), 600);
}

#[tokio::test]
async fn replaces_must_name_an_unreplaced_certificate_of_the_account() {
    let ca = start().await;
    let mut acme = Acme::connect(&ca).await;
    acme.register().await;
    let old = acme.issue(&["r.example"], json!({})).await;
    let (cert_id, _) = cert_id_of(&leaf_der(&old.chain.text())).expect("CertID");

    let first = acme
        .new_order(&["r.example"], json!({"replaces": cert_id}))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    assert_eq!(first.json()["replaces"], cert_id.as_str());
    let first_url = first.header("location").expect("Location").to_owned();
    let old_record = ca
        .certificates()
        .into_iter()
        .find(|c| c.cert_id == cert_id)
        .expect("the old certificate");
    assert_eq!(old_record.replaced_by.as_deref(), Some(first_url.as_str()));
    let second = acme
        .new_order(&["r.example"], json!({"replaces": cert_id}))
        .await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert_eq!(second.problem(), "alreadyReplaced");
    let unknown = acme
        .new_order(&["r.example"], json!({"replaces": "AAAA.AAAA"}))
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.problem(), "malformed");

    let mut other = Acme::connect(&ca).await;
    other.register().await;
    let foreign = other
        .new_order(&["r.example"], json!({"replaces": cert_id}))
        .await;
    assert_eq!(foreign.status, StatusCode::BAD_REQUEST);
    assert_eq!(ca.counts().orders_created, 2);
    assert_eq!(ca.counts().orders_replacing, 1);
}

#[tokio::test]
async fn finalize_needs_a_ready_order_and_exactly_its_names() {
    let ca = start().await;
    let mut acme = Acme::connect(&ca).await;
    acme.register().await;
    let a = acme.new_order(&["f.example"], json!({})).await;
    let order_url = a.header("location").expect("Location").to_owned();
    let order = a.json();
    let finalize = order["finalize"].as_str().expect("finalize").to_owned();
    let key = Signer::generate();

    let early = acme
        .post(&finalize, Some(&csr_payload(&key, &["f.example"])))
        .await;
    assert_eq!(early.status, StatusCode::FORBIDDEN);
    assert_eq!(early.problem(), "orderNotReady");

    acme.authorize(&order, "dns-01").await;
    let wrong = acme
        .post(
            &finalize,
            Some(&csr_payload(&key, &["f.example", "g.example"])),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong.problem(), "badCSR");
    assert_eq!(acme.post(&order_url, None).await.json()["status"], "ready");

    let good = acme
        .post(&finalize, Some(&csr_payload(&key, &["f.example"])))
        .await;
    assert_eq!(good.json()["status"], "valid");
    let again = acme
        .post(&finalize, Some(&csr_payload(&key, &["f.example"])))
        .await;
    assert_eq!(again.problem(), "orderNotReady");
    let counts = ca.counts();
    assert_eq!(counts.finalize_requests, 4);
    assert_eq!(counts.certificates_issued, 1);
}

#[tokio::test]
async fn a_used_nonce_is_refused_with_a_fresh_one() {
    let ca = start().await;
    let mut acme = Acme::connect(&ca).await;
    let nonce = acme.fresh_nonce().await;
    let url = acme.url("newAccount");
    let payload = json!({"termsOfServiceAgreed": true});
    let jws = acme.signer.sign(&acme.header(&url, &nonce), Some(&payload));
    assert_eq!(
        acme.post_jws(&url, &jws).await.expect("http").status,
        StatusCode::CREATED
    );
    let replay = acme.post_jws(&url, &jws).await.expect("http");
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.problem(), "badNonce");
    let fresh = replay
        .header("replay-nonce")
        .expect("fresh nonce")
        .to_owned();
    let jws = acme.signer.sign(&acme.header(&url, &fresh), Some(&payload));
    assert_eq!(
        acme.post_jws(&url, &jws).await.expect("http").status,
        StatusCode::OK
    );
    assert_eq!(ca.counts().nonces_rejected, 1);
}

#[tokio::test]
async fn accounts_are_found_updated_and_rekeyed() {
    let ca = start().await;
    let mut acme = Acme::connect(&ca).await;
    let missing = acme
        .post(
            &acme.url("newAccount"),
            Some(&json!({"onlyReturnExisting": true})),
        )
        .await;
    assert_eq!(missing.problem(), "accountDoesNotExist");
    let no_tos = acme.post(&acme.url("newAccount"), Some(&json!({}))).await;
    assert_eq!(no_tos.status, StatusCode::BAD_REQUEST);
    let created = acme.register().await;
    assert_eq!(created.status, StatusCode::CREATED);
    let kid = acme.kid.clone().expect("kid");

    acme.kid = None;
    let found = acme
        .post(
            &acme.url("newAccount"),
            Some(&json!({"onlyReturnExisting": true})),
        )
        .await;
    assert_eq!(found.status, StatusCode::OK);
    assert_eq!(found.header("location"), Some(kid.as_str()));
    acme.kid = Some(kid.clone());

    let updated = acme
        .post(&kid, Some(&json!({"contact": ["mailto:new@example.com"]})))
        .await;
    assert_eq!(updated.json()["contact"], json!(["mailto:new@example.com"]));

    // keyChange: inner JWS by the new key, outer by the old.
    let new_key = Signer::generate();
    let url = acme.url("keyChange");
    let inner = new_key.sign(
        &json!({"alg": "ES256", "url": url, "jwk": new_key.jwk()}),
        Some(&json!({"account": kid, "oldKey": acme.signer.jwk()})),
    );
    let changed = acme.post(&url, Some(&inner)).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    let stale = acme.post(&kid, None).await;
    assert_eq!(
        stale.status,
        StatusCode::BAD_REQUEST,
        "old key no longer verifies"
    );
    acme.signer = new_key;
    assert_eq!(acme.post(&kid, None).await.status, StatusCode::OK);

    let gone = acme
        .post(&kid, Some(&json!({"status": "deactivated"})))
        .await;
    assert_eq!(gone.json()["status"], "deactivated");
    assert_eq!(acme.post(&kid, None).await.problem(), "unauthorized");
    assert_eq!(ca.counts().accounts_created, 1);
}

fn eab(kid: &str, mac_key: &[u8], url: &str, jwk: &Value) -> Value {
    let protected =
        URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "kid": kid, "url": url}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(jwk.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(mac_key).expect("key");
    mac.update(format!("{protected}.{payload}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    json!({"protected": protected, "payload": payload, "signature": signature})
}

#[tokio::test]
async fn eab_is_required_and_verified() {
    let mac_key = b"0123456789abcdef0123456789abcdef";
    let ca = builder()
        .eab_key("kid-1", mac_key)
        .eab_required(true)
        .start()
        .await
        .expect("start");
    let mut acme = Acme::connect(&ca).await;
    assert_eq!(acme.dir["meta"]["externalAccountRequired"], true);
    let url = acme.url("newAccount");
    let without = acme
        .post(&url, Some(&json!({"termsOfServiceAgreed": true})))
        .await;
    assert_eq!(without.problem(), "externalAccountRequired");
    let bad = eab("kid-1", b"wrong key", &url, &acme.signer.jwk());
    let refused = acme
        .post(
            &url,
            Some(&json!({"termsOfServiceAgreed": true, "externalAccountBinding": bad})),
        )
        .await;
    assert_eq!(refused.problem(), "unauthorized");
    let good = eab("kid-1", mac_key, &url, &acme.signer.jwk());
    let created = acme
        .post(
            &url,
            Some(&json!({"termsOfServiceAgreed": true, "externalAccountBinding": good})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(created.json()["externalAccountBinding"]["kid"], "kid-1");
}

#[tokio::test]
async fn revocation_by_account_or_certificate_key() {
    let ca = start().await;
    let mut acme = Acme::connect(&ca).await;
    acme.register().await;
    let first = acme.issue(&["v1.example"], json!({})).await;
    let second = acme.issue(&["v2.example"], json!({})).await;
    let url = acme.url("revokeCert");
    let payload = |o: &crate::support::client::Obtained| json!({"certificate": URL_SAFE_NO_PAD.encode(leaf_der(&o.chain.text())), "reason": 4});

    let by_account = acme.post(&url, Some(&payload(&first))).await;
    assert_eq!(by_account.status, StatusCode::OK, "{}", by_account.text());
    let twice = acme.post(&url, Some(&payload(&first))).await;
    assert_eq!(twice.problem(), "alreadyRevoked");

    let nonce = acme.fresh_nonce().await;
    let stranger = Signer::generate();
    let jws = stranger.sign(
        &json!({"alg": "ES256", "nonce": nonce, "url": url, "jwk": stranger.jwk()}),
        Some(&payload(&second)),
    );
    assert_eq!(
        acme.post_jws(&url, &jws).await.expect("http").problem(),
        "unauthorized"
    );

    let nonce = acme.fresh_nonce().await;
    let jws = second.key.sign(
        &json!({"alg": "ES256", "nonce": nonce, "url": url, "jwk": second.key.jwk()}),
        Some(&payload(&second)),
    );
    let by_key = acme.post_jws(&url, &jws).await.expect("http");
    assert_eq!(by_key.status, StatusCode::OK, "{}", by_key.text());
    assert_eq!(ca.counts().certificates_revoked, 2);
    assert!(ca.certificates().iter().all(|c| c.revoked));
}

#[tokio::test]
async fn pending_authorizations_and_wildcards() {
    let ca = start().await;
    let mut acme = Acme::connect(&ca).await;
    acme.register().await;
    let order = acme
        .new_order(&["*.w.example", "w.example"], json!({}))
        .await
        .json();
    let authzs = order["authorizations"].as_array().expect("authzs").clone();
    let wild = acme.post(authzs[0].as_str().expect("url"), None).await;
    assert_eq!(wild.header("retry-after"), Some("1"));
    let wild = wild.json();
    assert_eq!(wild["status"], "pending");
    assert_eq!(wild["wildcard"], true);
    assert_eq!(wild["identifier"]["value"], "w.example");
    let types: Vec<&str> = wild["challenges"]
        .as_array()
        .expect("challenges")
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert_eq!(types, vec!["dns-01"]);
    let plain = acme
        .post(authzs[1].as_str().expect("url"), None)
        .await
        .json();
    assert_eq!(plain["challenges"].as_array().expect("challenges").len(), 3);
}
