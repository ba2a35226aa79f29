//! Accounts and reloads: an account is created once per CA (with EAB where the CA requires
//! it), found again after a restart, its contact updated when the config's changes; a
//! reload rebuilds only the CAs that changed.

use std::os::unix::fs::PermissionsExt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use renewd_core::Urgency;
use renewd_issuer::Issuer;
use renewd_store::StateStore;
use renewd_testca::{Endpoint, TestCa};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_per_ca_kept_across_restarts_and_reloads() {
    let lab = lab()
        .ca("a", TestCa::builder())
        .ca("b", TestCa::builder())
        .cert("c1", &["a"])
        .cert("c2", &["a"])
        .cert("c3", &["b"])
        .start()
        .await;
    let issuer = lab.issuer();
    let results = run(
        &issuer,
        ["c1", "c2", "c3"]
            .iter()
            .map(|c| job(c, Urgency::Normal))
            .collect(),
    )
    .await;
    assert!(results.iter().all(|r| r.is_renewed()), "{results:?}");
    assert_eq!(
        lab.counts("a").accounts_created,
        1,
        "one account, shared by the jobs"
    );
    let record = lab.store.account(&ca_name("a")).unwrap().unwrap();
    let key = lab.dir.path().join("state/accounts/a/account.key");
    assert_eq!(record.key_path, key);
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(record.contact, ["mailto:ops@example.test"]);

    // A restart uses the stored account without asking the CA for one.
    let restarted = lab.issuer();
    let account_requests = |lab: &Lab| {
        let c = lab.counts("a");
        c.requests_to(Endpoint::NewAccount) + c.requests_to(Endpoint::Account)
    };
    let before = account_requests(&lab);
    assert!(renew(&restarted, "c1", Urgency::Normal).await.is_renewed());
    assert_eq!(account_requests(&lab), before);
    assert_eq!(
        lab.state("c1").installed.unwrap().account_url,
        Some(record.url.clone())
    );

    // A reload that changes only B leaves A's runtime (and account) alone; A's new contact
    // is sent to the CA once, on A's next use.
    let text = lab.config_text(&[]);
    let (a_part, b_part) = text.split_once("[[ca]]\nname = \"b\"").unwrap();
    let changed = format!(
        "{a_part}[[ca]]\nname = \"b\"{}",
        b_part.replacen("requests_per_second = 500", "requests_per_second = 400", 1)
    );
    assert_ne!(changed, text);
    restarted.reload(lab.parse_config(&changed)).unwrap();
    assert!(renew(&restarted, "c1", Urgency::Normal).await.is_renewed());
    assert_eq!(account_requests(&lab), before, "A kept its runtime");
    // A's contact (the first CA's) changes.
    let new_contact = changed.replacen("mailto:ops@example.test", "mailto:new@example.test", 1);
    restarted.reload(lab.parse_config(&new_contact)).unwrap();
    assert!(renew(&restarted, "c1", Urgency::Normal).await.is_renewed());
    assert_eq!(account_requests(&lab), before + 1, "one contact update");
    let record = lab.store.account(&ca_name("a")).unwrap().unwrap();
    assert_eq!(record.contact, ["mailto:new@example.test"]);
    assert_eq!(lab.counts("a").accounts_created, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_at_a_ca_requiring_eab_are_bound() {
    let mac = b"an external account key of 32 b.";
    let a = TestCa::builder().eab_key("kid-7", mac).eab_required(true);
    let lab = lab().cert("www", &["a"]).ca_with("a", a, "").start().await;
    let key_file = lab.dir.path().join("a.eab");
    std::fs::write(&key_file, URL_SAFE_NO_PAD.encode(mac)).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = lab.config_text(&[]).replace(
        "requests_per_second = 500\n",
        &format!(
            "requests_per_second = 500\neab_kid = \"kid-7\"\neab_hmac_key_file = \"{}\"\n",
            key_file.display()
        ),
    );
    let issuer = Issuer::new(renewd_issuer::IssuerParts {
        config: lab.parse_config(&text),
        ..lab_parts(&lab)
    })
    .unwrap();
    assert!(renew(&issuer, "www", Urgency::Normal).await.is_renewed());
    assert_eq!(lab.counts("a").accounts_created, 1);
    assert_eq!(
        lab.store
            .account(&ca_name("a"))
            .unwrap()
            .unwrap()
            .eab_kid
            .as_deref(),
        Some("kid-7")
    );
    // Without the binding the CA refuses the account: a CA-specific refusal.
    let lab2 = lab_refusing().await;
    let result = renew(&lab2.issuer(), "www", Urgency::Normal).await;
    assert!(
        matches!(
            result,
            renewd_issuer::JobResult::Failed {
                class: renewd_core::FailureClass::Rejected { ca_specific: true },
                ..
            }
        ),
        "{result:?}"
    );
}

async fn lab_refusing() -> Lab {
    let a = TestCa::builder()
        .eab_key("kid-7", b"an external account key of 32 b.")
        .eab_required(true);
    lab().ca("a", a).cert("www", &["a"]).start().await
}
