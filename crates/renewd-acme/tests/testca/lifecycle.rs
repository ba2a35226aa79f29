//! The rest of a certificate's and an account's life against the test CA: the preferred
//! of two chains, revocation by account key and by certificate key, key rollover — each
//! checked on the CA's side.

use std::time::Duration;

use renewd_acme::{AccountKey, CertificateKey, IssueRequest};
use renewd_core::FailureClass;
use renewd_testca::{Endpoint, Fault, FaultPlan};
use x509_parser::prelude::*;

use crate::common::Env;
use crate::support::leaf_der;

/// The issuer CN of the top-most certificate of a PEM chain.
fn top_issuer(chain_pem: &str) -> String {
    renewd_acme::CertificateChain {
        url: String::new(),
        pem: chain_pem.to_string(),
    }
    .top_issuer_common_name()
    .unwrap()
}

/// The subject CN of a PEM root.
fn subject_cn(root_pem: &str) -> String {
    let der = crate::support::leaf_der(root_pem);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    cert.subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn preferred_chain_picks_the_alternate_root() {
    let env = Env::start().await;
    let account = env.account().await;
    let roots = env.ca.issuing_roots_pem();
    let (primary, alternate) = (subject_cn(&roots[0]), subject_cn(&roots[1]));

    let default = env.issue(&account, &["chain.example"]).await.unwrap();
    assert_eq!(top_issuer(&default.chain_pem), primary);
    assert_eq!(default.alternates.len(), 1);

    let request = IssueRequest {
        preferred_chain: Some(alternate.clone()),
        ..IssueRequest::dns(&["chain.example"])
    };
    let preferred = env.issue_request(&account, &request).await.unwrap();
    assert_eq!(top_issuer(&preferred.chain_pem), alternate);
    assert!(
        preferred.cert_url.contains("/alt/"),
        "{}",
        preferred.cert_url
    );
    crate::support::verify_chain(
        &preferred.chain_pem,
        &roots[1],
        &["chain.example"],
        &preferred.key_pem,
    );
    assert_eq!(top_issuer(&preferred.alternates[0]), primary);
    assert_eq!(env.counts().certificates_issued, 2);
}

#[tokio::test]
async fn an_alternate_chain_that_cannot_be_fetched_is_left_out() {
    // The default chain downloads; every later certificate request (the alternate) gets a
    // gateway's 404 page. The certificate is in hand: the alternate is asked for twice and
    // then left out, even when it is the preferred one.
    let env = Env::start().await;
    let account = env.account().await;
    let roots = env.ca.issuing_roots_pem();
    let (primary, alternate) = (subject_cn(&roots[0]), subject_cn(&roots[1]));
    env.plan(
        FaultPlan::new()
            .rule(Endpoint::Certificate, Fault::delay(Duration::ZERO).times(1))
            .rule(Endpoint::Certificate, Fault::status(404).html()),
    );
    let request = IssueRequest {
        preferred_chain: Some(alternate),
        ..IssueRequest::dns(&["alt.example"])
    };
    let issued = env.issue_request(&account, &request).await.unwrap();
    assert_eq!(top_issuer(&issued.chain_pem), primary);
    assert!(issued.alternates.is_empty());
    env.verify(&issued, &["alt.example"]);
    let counts = env.counts();
    assert_eq!(counts.faulted(Endpoint::Certificate), 3, "{counts:?}");
    assert_eq!(counts.requests_to(Endpoint::Certificate), 3, "{counts:?}");
    assert_eq!((counts.orders_created, counts.certificates_issued), (1, 1));
}

#[tokio::test]
async fn revocation_by_account_key_and_by_certificate_key() {
    let env = Env::start().await;
    let account = env.account().await;
    let first = env.issue(&account, &["rv1.example"]).await.unwrap();
    let second = env.issue(&account, &["rv2.example"]).await.unwrap();

    account
        .revoke(&leaf_der(&first.chain_pem), Some(4))
        .await
        .unwrap();
    let key = CertificateKey::from_pem(&second.key_pem).unwrap();
    env.client
        .revoke_with_certificate_key(&key, &leaf_der(&second.chain_pem), None)
        .await
        .unwrap();
    assert_eq!(env.counts().certificates_revoked, 2);
    assert!(env.ca.certificates().iter().all(|c| c.revoked));

    let again = account
        .revoke(&leaf_der(&first.chain_pem), None)
        .await
        .unwrap_err();
    assert!(again.is_problem("alreadyRevoked"), "{again}");
    assert_eq!(again.class(), FailureClass::Rejected { ca_specific: false });
    assert_eq!(env.counts().certificates_revoked, 2);
}

#[tokio::test]
async fn key_rollover_moves_the_account_to_the_new_key() {
    let env = Env::start().await;
    let account = env.account().await;
    let old_key = account.key().clone();
    let new_key = AccountKey::generate();
    let rolled = account.key_rollover(new_key.clone()).await.unwrap();
    assert_eq!(rolled.url(), account.url());
    assert_eq!(env.counts().requests_to(Endpoint::KeyChange), 1);
    assert_eq!(
        env.client.find_account(new_key).await.unwrap().url(),
        account.url()
    );
    let gone = env.client.find_account(old_key).await.unwrap_err();
    assert!(gone.is_problem("accountDoesNotExist"), "{gone}");
    let issued = env.issue(&rolled, &["roll.example"]).await.unwrap();
    env.verify(&issued, &["roll.example"]);
    assert_eq!(env.counts().accounts_created, 1);
}
