//! The management endpoint, driven over plain HTTP like a script would.

use http::{Method, StatusCode};
use renewd_testca::Endpoint;
use serde_json::{Value, json};

use crate::support::client::{Acme, leaf_der, plain};
use crate::support::{pem_certs, start};

#[tokio::test]
async fn management_sets_plans_and_windows_and_reports() {
    let ca = start().await;
    let mgmt = ca.management_url().expect("management runs by default");
    let mut acme = Acme::connect(&ca).await;
    acme.register().await;
    let got = acme.issue(&["m.example"], json!({})).await;

    let (status, root) = plain(Method::GET, &format!("{mgmt}/roots/0"), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(root, ca.issuing_roots_pem()[0]);
    let (status, _) = plain(Method::GET, &format!("{mgmt}/roots/2"), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, tls_root) = plain(Method::GET, &format!("{mgmt}/tls-root"), "").await;
    assert_eq!(tls_root, ca.root_pem());
    assert_eq!(pem_certs(&root).len(), 1);

    // A TOML plan, then a JSON one.
    let toml_plan =
        "[[rule]]\nendpoint = \"directory\"\naction = \"status\"\nstatus = 500\ntimes = 1\n";
    let (status, body) = plain(Method::POST, &format!("{mgmt}/fault-plan"), toml_plan).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ca.fault_plan().rules.len(), 1);
    assert_eq!(
        acme.http
            .get(&ca.directory_url())
            .await
            .expect("http")
            .status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let json_plan = r#"{"seed": 1, "rule": [{"endpoint": "renewal_info", "action": "status", "status": 503, "body": "empty"}]}"#;
    let (status, _) = plain(Method::POST, &format!("{mgmt}/fault-plan"), json_plan).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = plain(
        Method::POST,
        &format!("{mgmt}/fault-plan"),
        "[[rule]]\nendpoint = 1\n",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("line 2"), "{body}");
    let (cert_id, _) = renewd_testca::cert_id_of(&leaf_der(&got.chain.text())).expect("CertID");
    let info = format!("{}/{cert_id}", acme.url("renewalInfo"));
    assert_eq!(
        acme.http.get(&info).await.expect("http").status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    plain(Method::POST, &format!("{mgmt}/fault-plan"), "").await;
    assert!(
        ca.fault_plan().rules.is_empty(),
        "an empty plan clears the faults"
    );

    let ari = json!({"target": {"cert_id": cert_id}, "window": {"start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z"}, "retry_after_secs": 30});
    let (status, body) = plain(Method::POST, &format!("{mgmt}/ari"), &ari.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let a = acme.http.get(&info).await.expect("http");
    assert_eq!(a.json()["suggestedWindow"]["start"], "2030-01-01T00:00:00Z");
    assert_eq!(a.header("retry-after"), Some("30"));
    let (status, _) = plain(
        Method::POST,
        &format!("{mgmt}/ari"),
        "{\"target\": \"some\"}",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    plain(Method::DELETE, &format!("{mgmt}/ari"), "").await;
    assert_ne!(
        acme.http.get(&info).await.expect("http").json()["suggestedWindow"]["start"],
        "2030-01-01T00:00:00Z"
    );

    let (_, counts) = plain(Method::GET, &format!("{mgmt}/counts"), "").await;
    let counts: Value = serde_json::from_str(&counts).expect("JSON");
    assert_eq!(counts["certificates_issued"], 1);
    assert_eq!(counts["requests"]["renewal_info"]["faulted"], 1);
    assert_eq!(counts["requests"]["directory"]["faulted"], 1);
    let (_, certs) = plain(Method::GET, &format!("{mgmt}/certificates"), "").await;
    let certs: Value = serde_json::from_str(&certs).expect("JSON");
    assert_eq!(certs[0]["cert_id"], cert_id.as_str());
    plain(Method::POST, &format!("{mgmt}/counts/reset"), "").await;
    assert_eq!(ca.counts().requests_to(Endpoint::Directory), 0);
}
