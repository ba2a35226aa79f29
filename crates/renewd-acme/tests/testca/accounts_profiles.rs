//! Profiles (draft-ietf-acme-profiles) and external account binding against the test CA:
//! a profile is echoed and sets the certificate's lifetime, an unknown one is a
//! CA-specific refusal; an EAB-only CA takes the right key and refuses the others.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use renewd_acme::{AccountKey, Error, ExternalAccountKey, IssueRequest, NewAccount};
use renewd_core::FailureClass;
use renewd_testca::{Endpoint, TestCa};

use crate::common::{Env, leaf_validity};

const DAY: i64 = 24 * 3600;

fn with_profile(names: &[&str], profile: &str) -> IssueRequest {
    IssueRequest {
        profile: Some(profile.to_string()),
        ..IssueRequest::dns(names)
    }
}

#[tokio::test]
async fn chosen_profile_is_echoed_and_sets_the_certificate_lifetime() {
    // Without a profile: 30 days; the CA's profiles: classic 90 days, shortlived 160 hours,
    // and one of ours, tiny, 2 hours.
    let builder = TestCa::builder()
        .validity(Duration::from_secs(30 * DAY as u64))
        .profile("tiny", "two hours", Duration::from_secs(2 * 3600));
    let env = Env::start_with(builder, |_| {}).await;
    let account = env.account().await;
    let profiles = &env.client.directory().await.unwrap().meta.profiles;
    assert_eq!(
        profiles.keys().map(String::as_str).collect::<Vec<_>>(),
        ["classic", "shortlived", "tiny"]
    );
    for (profile, lifetime) in [
        (None, 30 * DAY),
        (Some("classic"), 90 * DAY),
        (Some("shortlived"), 160 * 3600),
        (Some("tiny"), 2 * 3600),
    ] {
        let request = match profile {
            Some(p) => with_profile(&["prof.example"], p),
            None => IssueRequest::dns(&["prof.example"]),
        };
        let issued = env.issue_request(&account, &request).await.unwrap();
        assert_eq!(issued.profile.as_deref(), profile);
        let order = account.order(&issued.order_url).await.unwrap().body;
        assert_eq!(order.profile.as_deref(), profile, "the order echoes it");
        let (not_before, not_after) = leaf_validity(&issued.chain_pem);
        assert_eq!(not_after - not_before, lifetime, "{profile:?}");
        let sent = env.new_orders_sent().pop().unwrap().payload.unwrap();
        assert_eq!(sent.get("profile").and_then(|p| p.as_str()), profile);
    }
    assert_eq!(env.counts().certificates_issued, 4);
}

#[tokio::test]
async fn unknown_profile_is_rejected_invalid_profile_ca_specific() {
    let env = Env::start().await;
    let account = env.account().await;
    env.ca.reset_counts();
    let err = env
        .issue_request(&account, &with_profile(&["x.example"], "retired"))
        .await
        .unwrap_err();
    assert_eq!(err.class(), FailureClass::Rejected { ca_specific: true });
    assert_eq!(
        err.problem_type(),
        Some("urn:ietf:params:acme:error:invalidProfile")
    );
    assert_eq!(err.http_status(), Some(400));
    let counts = env.counts();
    assert_eq!(counts.requests_to(Endpoint::NewOrder), 1);
    assert_eq!(counts.orders_created, 0);
}

#[tokio::test]
async fn a_profile_at_a_ca_without_profiles_is_refused_before_any_request() {
    let env = Env::start_with(TestCa::builder().no_profiles(), |_| {}).await;
    let account = env.account().await;
    env.ca.reset_counts();
    let err = env
        .issue_request(&account, &with_profile(&["x.example"], "shortlived"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert_eq!(err.class(), FailureClass::Rejected { ca_specific: true });
    assert_eq!(env.counts().requests_to(Endpoint::NewOrder), 0);
}

const MAC: &[u8] = b"an HMAC key of thirty-two bytes!";

fn new_account(eab: Option<ExternalAccountKey>) -> NewAccount {
    NewAccount {
        contact: vec!["mailto:ops@example.com".to_string()],
        terms_of_service_agreed: true,
        eab,
    }
}

#[tokio::test]
async fn eab_required_right_key_works_wrong_or_missing_key_is_rejected() {
    let builder = TestCa::builder().eab_key("kid-1", MAC).eab_required(true);
    let env = Env::start_with(builder, |_| {}).await;
    let directory = env.client.directory().await.unwrap();
    assert!(directory.meta.external_account_required);
    let right = ExternalAccountKey::new("kid-1", &URL_SAFE_NO_PAD.encode(MAC)).unwrap();
    let wrong_mac = ExternalAccountKey::new("kid-1", &URL_SAFE_NO_PAD.encode(b"not it")).unwrap();
    let wrong_kid = ExternalAccountKey::new("kid-2", &URL_SAFE_NO_PAD.encode(MAC)).unwrap();

    let missing = env
        .client
        .new_account(AccountKey::generate(), &new_account(None))
        .await
        .unwrap_err();
    assert!(missing.is_problem("externalAccountRequired"), "{missing}");
    assert_eq!(
        missing.class(),
        FailureClass::Rejected { ca_specific: true }
    );

    for (what, eab) in [("wrong MAC key", wrong_mac), ("unknown key id", wrong_kid)] {
        let err = env
            .client
            .new_account(AccountKey::generate(), &new_account(Some(eab)))
            .await
            .unwrap_err();
        // The binding is this CA's business: another CA may take the account.
        assert_eq!(
            err.class(),
            FailureClass::Rejected { ca_specific: true },
            "{what}: {err}"
        );
        assert!(err.is_problem("unauthorized"), "{what}: {err}");
        assert!(err.account_unusable(), "{what}: {err}");
    }
    assert_eq!(env.counts().accounts_created, 0);

    let key = AccountKey::generate();
    let account = env
        .client
        .new_account(key.clone(), &new_account(Some(right)))
        .await
        .unwrap();
    assert_eq!(env.counts().accounts_created, 1);
    // The bound account issues; asking for it again by key finds it without a binding.
    let issued = env.issue(&account, &["eab.example"]).await.unwrap();
    env.verify(&issued, &["eab.example"]);
    let found = env.client.find_account(key).await.unwrap();
    assert_eq!(found.url(), account.url());
    assert_eq!(env.counts().accounts_created, 1);
}

#[tokio::test]
async fn a_deactivated_account_is_refused_as_a_matter_of_this_ca() {
    let env = Env::start().await;
    let account = env.account().await;
    account.deactivate().await.unwrap();
    let err = env.issue(&account, &["gone.example"]).await.unwrap_err();
    assert!(err.is_problem("unauthorized"), "{err}");
    assert_eq!(err.class(), FailureClass::Rejected { ca_specific: true });
    assert!(err.account_unusable());
    assert_eq!(env.counts().orders_created, 0);
}
