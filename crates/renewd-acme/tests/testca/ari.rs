//! ARI (RFC 9773) against the test CA: renewalInfo's window and Retry-After parsed, the
//! CertID agreed on, `replaces` sent and recorded on the CA's side, and `409
//! alreadyReplaced` retried exactly once without `replaces`.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use renewd_acme::{CertId, Error, IssueRequest, Issued};
use renewd_core::{FailureClass, Step};
use renewd_testca::{AriOverride, AriTarget, Endpoint, Fault, FaultPlan, SuggestedWindow};

use crate::common::{Env, about_now_plus};
use crate::support::leaf_der;

fn cert_id(issued: &Issued) -> CertId {
    CertId::from_certificate_der(&leaf_der(&issued.chain_pem)).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

#[tokio::test]
async fn renewal_info_window_retry_after_and_explanation_are_parsed() {
    let env = Env::start().await;
    let account = env.account().await;
    let issued = env.issue(&account, &["ari.example"]).await.unwrap();
    let id = cert_id(&issued);
    let on_ca = env.ca.certificates().pop().unwrap();
    assert_eq!(
        id.as_str(),
        on_ca.cert_id,
        "client and CA agree on the CertID"
    );

    // The CA's default: the last third of the lifetime, ask again in 6 hours.
    env.ca.reset_counts();
    let info = env.client.renewal_info(&id).await.unwrap();
    let lifetime = on_ca.not_after - on_ca.not_before;
    assert_eq!(
        info.window_start.timestamp(),
        (on_ca.not_before + lifetime * 2 / 3).timestamp()
    );
    assert_eq!(info.window_end, on_ca.not_after);
    assert_eq!(info.explanation_url, None);
    about_now_plus(info.retry_after.unwrap(), 6 * 3600, 5);

    // A moved window, with its own Retry-After and explanation.
    let (start, end) = (at(1_900_000_000), at(1_900_086_400));
    env.ca.set_ari_window(
        AriOverride::new(
            AriTarget::CertId(id.to_string()),
            SuggestedWindow::new(start, end),
        )
        .retry_after(Duration::from_secs(120))
        .explanation_url("https://ca.example/incident/42"),
    );
    let info = env.client.renewal_info(&id).await.unwrap();
    assert_eq!((info.window_start, info.window_end), (start, end));
    assert_eq!(
        info.explanation_url.as_deref(),
        Some("https://ca.example/incident/42")
    );
    about_now_plus(info.retry_after.unwrap(), 120, 5);
    assert_eq!(env.counts().requests_to(Endpoint::RenewalInfo), 2);
    assert!(
        env.recorder
            .events()
            .iter()
            .filter(|e| e.step == Step::RenewalInfo)
            .all(|e| e.url.ends_with(id.as_str()) && e.http_status == Some(200)),
        "GET renewalInfo/CertID"
    );

    // A window that ends before it starts is no answer.
    env.ca.set_ari_window(AriOverride::new(
        AriTarget::CertId(id.to_string()),
        SuggestedWindow::new(end, start),
    ));
    let err = env.client.renewal_info(&id).await.unwrap_err();
    assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
    assert_eq!(err.class(), FailureClass::CaUnavailable);

    // An unknown certificate: 404 with a problem document.
    let unknown = CertId::from_parts(&[1, 2, 3], &[4, 5]);
    let err = env.client.renewal_info(&unknown).await.unwrap_err();
    assert_eq!(err.http_status(), Some(404));
    assert!(
        matches!(err.class(), FailureClass::Rejected { .. }),
        "{err}"
    );
}

/// A renewal of `old` at the account that issued it.
fn renewal_of(old: &Issued, names: &[&str]) -> IssueRequest {
    IssueRequest {
        replaces: Some(cert_id(old).to_string()),
        ..IssueRequest::dns(names)
    }
}

#[tokio::test]
async fn renewal_sends_replaces_and_the_ca_marks_the_old_certificate_replaced() {
    let env = Env::start().await;
    let account = env.account().await;
    let old = env.issue(&account, &["ren.example"]).await.unwrap();
    env.ca.reset_counts();
    let new = env
        .issue_request(&account, &renewal_of(&old, &["ren.example"]))
        .await
        .unwrap();
    env.verify(&new, &["ren.example"]);
    let counts = env.counts();
    assert_eq!(counts.orders_created, 1, "{counts:?}");
    assert_eq!(
        counts.orders_replacing, 1,
        "the CA took replaces: {counts:?}"
    );
    assert_eq!(counts.requests_to(Endpoint::NewOrder), 1);
    let sent = env.new_orders_sent();
    assert_eq!(
        sent.last().unwrap().payload.as_ref().unwrap()["replaces"],
        cert_id(&old).as_str()
    );
    let old_on_ca = env
        .ca
        .certificates()
        .into_iter()
        .find(|c| c.cert_id == cert_id(&old).as_str())
        .unwrap();
    assert_eq!(
        old_on_ca.replaced_by.as_deref(),
        Some(new.order_url.as_str())
    );
    let order = account.order(&new.order_url).await.unwrap().body;
    assert_eq!(order.replaces.as_deref(), Some(cert_id(&old).as_str()));
}

#[tokio::test]
async fn already_replaced_is_retried_exactly_once_without_replaces() {
    let env = Env::start().await;
    let account = env.account().await;
    let old = env.issue(&account, &["twice.example"]).await.unwrap();
    let renewal = renewal_of(&old, &["twice.example"]);
    env.issue_request(&account, &renewal).await.unwrap();

    // The old certificate is replaced already: the CA says 409 alreadyReplaced, the client
    // orders once more without replaces.
    env.ca.reset_counts();
    let before = env.new_orders_sent().len();
    let again = env.issue_request(&account, &renewal).await.unwrap();
    env.verify(&again, &["twice.example"]);
    let counts = env.counts();
    assert_eq!(counts.requests_to(Endpoint::NewOrder), 2, "{counts:?}");
    assert_eq!(counts.orders_created, 1, "{counts:?}");
    assert_eq!(counts.orders_replacing, 0, "{counts:?}");
    let sent = env.new_orders_sent();
    let payloads: Vec<_> = sent[before..]
        .iter()
        .map(|s| s.payload.clone().unwrap())
        .collect();
    assert_eq!(payloads.len(), 2);
    assert!(payloads[0].get("replaces").is_some());
    assert!(payloads[1].get("replaces").is_none(), "{}", payloads[1]);

    // Asked not to retry: the refusal comes back, CA-specific, after one request.
    env.ca.reset_counts();
    let strict = IssueRequest {
        retry_without_replaces: false,
        ..renewal.clone()
    };
    let err = env.issue_request(&account, &strict).await.unwrap_err();
    assert!(err.is_problem("alreadyReplaced"), "{err}");
    assert_eq!(err.http_status(), Some(409));
    assert_eq!(err.class(), FailureClass::Rejected { ca_specific: true });
    assert_eq!(env.counts().requests_to(Endpoint::NewOrder), 1);
    assert_eq!(env.counts().orders_created, 0);

    // A CA that refuses the retry too: exactly one retry, then the refusal.
    env.plan(FaultPlan::new().rule(
        Endpoint::NewOrder,
        Fault::status(409).problem("alreadyReplaced", "still replaced"),
    ));
    let err = env.issue_request(&account, &renewal).await.unwrap_err();
    assert!(err.is_problem("alreadyReplaced"), "{err}");
    assert_eq!(env.counts().requests_to(Endpoint::NewOrder), 2);
    assert_eq!(env.counts().orders_created, 0);
}

#[tokio::test]
async fn renewal_window_follows_a_revocation() {
    // After a revocation the CA moves the window to now: the client sees it at once.
    let env = Env::start().await;
    let account = env.account().await;
    let issued = env.issue(&account, &["rev.example"]).await.unwrap();
    account
        .revoke(&leaf_der(&issued.chain_pem), Some(1))
        .await
        .unwrap();
    assert_eq!(env.counts().certificates_revoked, 1);
    let info = env.client.renewal_info(&cert_id(&issued)).await.unwrap();
    assert!(info.window_start <= Utc::now() + TimeDelta::seconds(1));
    assert!(info.window_end <= Utc::now() + TimeDelta::hours(1) + TimeDelta::seconds(1));
}
