//! Accounts the CA no longer accepts: one it lost is found again by its key without a
//! restart; a deactivated one, or a refused external account binding, is that CA's
//! problem, so the job fails over.

use std::os::unix::fs::PermissionsExt;

use renewd_acme::{AccountKey, AcmeClient, ClientSettings, HttpSettings};
use renewd_core::{FailureClass, Urgency};
use renewd_issuer::JobResult;
use renewd_store::StateStore;
use renewd_testca::TestCa;

use crate::support::*;

/// An ACME client of our own for `ca`, trusting its root.
fn acme_client(lab: &Lab, ca: &str) -> AcmeClient {
    let settings = ClientSettings {
        http: HttpSettings {
            trust_roots: vec![lab.dir.path().join(format!("{ca}-root.pem"))],
            ..HttpSettings::default()
        },
        ..ClientSettings::default()
    };
    AcmeClient::new(lab.testca(ca).directory_url(), settings).unwrap()
}

fn account_key(lab: &Lab, ca: &str) -> AccountKey {
    AccountKey::load(
        &lab.dir
            .path()
            .join(format!("state/accounts/{ca}/account.key")),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_the_ca_lost_is_found_again_by_its_key_without_a_restart() {
    let lab = lab()
        .ca("a", TestCa::builder())
        .cert("www", &["a"])
        .start()
        .await;
    assert!(
        renew(&lab.issuer(), "www", Urgency::Normal)
            .await
            .is_renewed()
    );
    // The stored URL names an account the CA does not know (it lost it, say).
    let mut record = lab.store.account(&ca_name("a")).unwrap().unwrap();
    let real = record.url.clone();
    record.url = format!("{}/acme/acct/999", lab.testca("a").base_url());
    lab.store.put_account(&record).unwrap();

    let issuer = lab.issuer();
    let result = renew(&issuer, "www", Urgency::Normal).await;
    assert!(
        matches!(
            result,
            JobResult::Failed {
                class: FailureClass::Rejected { ca_specific: true },
                ..
            }
        ),
        "{result:?}"
    );
    // The same process, the next attempt: the key is looked up, the account found.
    let result = renew(&issuer, "www", Urgency::Normal).await;
    assert!(result.is_renewed(), "{result:?}");
    assert_eq!(lab.store.account(&ca_name("a")).unwrap().unwrap().url, real);
    let a = lab.counts("a");
    assert_eq!(a.accounts_created, 1, "found by its key, not created again");
    assert_eq!(a.certificates_issued, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_account_makes_even_a_normal_job_fail_over() {
    let lab = lab()
        .ca("a", TestCa::builder())
        .ca("b", TestCa::builder())
        .cert("www", &["a", "b"])
        .start()
        .await;
    let issuer = lab.issuer();
    assert!(renew(&issuer, "www", Urgency::Normal).await.is_renewed());
    assert_eq!(lab.issuer_of("www").as_deref(), Some("a"));
    let url = lab.store.account(&ca_name("a")).unwrap().unwrap().url;
    acme_client(&lab, "a")
        .account(account_key(&lab, "a"), url)
        .deactivate()
        .await
        .unwrap();

    let result = renew(&issuer, "www", Urgency::Normal).await;
    assert!(result.is_renewed(), "{result:?}");
    assert_eq!(lab.issuer_of("www").as_deref(), Some("b"));
    assert_eq!(lab.counts("a").orders_created, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_external_account_binding_fails_over() {
    let a = TestCa::builder()
        .eab_key("kid-7", b"an external account key of 32 b.")
        .eab_required(true);
    let lab = lab()
        .ca("a", a)
        .ca("b", TestCa::builder())
        .cert("www", &["a", "b"])
        .start()
        .await;
    let key_file = lab.dir.path().join("a.eab");
    std::fs::write(&key_file, "bm90IHRoZSByaWdodCBrZXk").unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = lab.config_text(&[]).replacen(
        "requests_per_second = 500\n",
        &format!(
            "requests_per_second = 500\neab_kid = \"kid-7\"\neab_hmac_key_file = \"{}\"\n",
            key_file.display()
        ),
        1,
    );
    let issuer = renewd_issuer::Issuer::new(renewd_issuer::IssuerParts {
        config: lab.parse_config(&text),
        ..lab_parts(&lab)
    })
    .unwrap();
    let result = renew(&issuer, "www", Urgency::Normal).await;
    assert!(result.is_renewed(), "{result:?}");
    assert_eq!(lab.issuer_of("www").as_deref(), Some("b"));
    assert_eq!(lab.counts("a").accounts_created, 0);
}
