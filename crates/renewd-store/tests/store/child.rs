//! The child side of the multi-process tests. `entry` is a test so that the harness can run
//! it in a child process (`--exact child::entry`); run without `RENEWD_STORE_CHILD` it
//! returns at once, and is not a test of anything by itself.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use renewd_core::{CaName, CertName, DomainName, KeyType, OutcomeClass, RequestOutcome, Step};
use renewd_store::{
    CertStore, Expectations, InstalledCert, LeaseHolder, LeaseOutcome, PendingKeys, PendingOrder,
    SqliteOptions, SqliteStore, StateStore,
};

use crate::pki;

pub const ROLE: &str = "RENEWD_STORE_CHILD";
pub const DIR: &str = "RENEWD_STORE_CHILD_DIR";
pub const ARG: &str = "RENEWD_STORE_CHILD_ARG";

pub const CERT: &str = "www";
pub const DOMAIN: &str = "www.example.com";

#[test]
fn entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(DIR).unwrap());
    let arg = std::env::var(ARG).unwrap_or_default();
    match role.as_str() {
        "install-loop" => install_loop(&dir),
        "lease-race" => lease_race(&dir, &arg),
        "lease-hold" => lease_hold(&dir, &arg),
        other => panic!("unknown child role {other}"),
    }
}

fn say(word: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "@@{word}@@").unwrap();
    out.flush().unwrap();
}

fn wait_for_line() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim().to_string()),
    }
}

/// Installs new versions forever, recording each step as the issuer would: the pending
/// order (key file + row) before, then the installed state and the order's removal in one
/// transaction after. The parent kills it at random moments.
fn install_loop(dir: &Path) {
    let store = SqliteStore::open_in(dir, SqliteOptions::default()).unwrap();
    let certs = CertStore::new(dir).keep_versions(3);
    let keys = PendingKeys::new(dir);
    // What the daemon does at startup.
    certs.recover().unwrap();
    keys.remove_orphans(&store, Duration::ZERO).unwrap();

    let name = CertName::new(CERT).unwrap();
    let ca_name = CaName::new("testca").unwrap();
    let domains = vec![DomainName::new(DOMAIN).unwrap()];
    // Consecutive versions come from different intermediates, so a chain.pem of one
    // version next to a cert.pem of another would show.
    let cas = [
        pki::TestCa::new("A"),
        pki::TestCa::new("B"),
        pki::TestCa::new("C"),
    ];
    let start = store
        .cert_state(&name)
        .unwrap()
        .map_or(0, |s| s.backoff_step);
    say("READY");
    for i in start + 1.. {
        let (chain, key) = cas[i as usize % cas.len()].issue(&[DOMAIN]);
        let key_path = keys.write(&name, &key).unwrap();
        store
            .set_pending_order(
                &name,
                &PendingOrder {
                    ca: ca_name.clone(),
                    account_url: "https://testca/acct/1".into(),
                    order_url: format!("https://testca/order/{i}"),
                    key_path: key_path.clone(),
                    csr_der: vec![0x30, 0x00],
                    created_at: Utc::now(),
                },
            )
            .unwrap();
        let expect = Expectations {
            domains: &domains,
            key_type: Some(KeyType::EcdsaP256),
            now: Utc::now(),
            skew: Duration::from_secs(60),
        };
        let done = certs.install(&name, &chain, &key, &expect, None).unwrap();
        store
            .update_cert_state(&name, &mut |st| {
                st.installed = Some(InstalledCert {
                    serial: done.facts.serial_hex(),
                    not_before: done.facts.not_before(),
                    not_after: done.facts.not_after(),
                    issuer_ca: Some(ca_name.clone()),
                    account_url: Some("https://testca/acct/1".into()),
                    ari_cert_id: done.facts.ari_cert_id(),
                });
                st.backoff_step = i;
                st.last_success = Some(Utc::now());
                st.pending = None;
            })
            .unwrap();
        keys.remove(&key_path).unwrap();
        store
            .append_outcome(&RequestOutcome {
                time: Utc::now(),
                ca: ca_name.clone(),
                account: None,
                cert: Some(name.clone()),
                step: Step::Download,
                http_status: Some(200),
                problem_type: None,
                class: OutcomeClass::Ok,
                latency: Duration::from_millis(5),
                order_url: Some(format!("https://testca/order/{i}")),
                detail: None,
            })
            .unwrap();
        if i == start + 1 {
            // One whole install done in this run: the parent kills from here on, so every
            // round makes progress however loaded the machine is.
            say("PROGRESS");
        }
    }
}

/// Opens the store, waits for "go", tries the lease once, reports, and holds it until
/// stdin closes.
fn lease_race(dir: &Path, cert: &str) {
    let store =
        SqliteStore::open(&dir.join(SqliteStore::FILE_NAME), SqliteOptions::default()).unwrap();
    let name = CertName::new(cert).unwrap();
    let me = LeaseHolder::this_process();
    say("OPEN");
    assert_eq!(wait_for_line().as_deref(), Some("go"));
    match store
        .acquire_lease(&name, &me, Duration::from_secs(60))
        .unwrap()
    {
        LeaseOutcome::Acquired { .. } => say("WON"),
        LeaseOutcome::Held(_) => say("LOST"),
    }
    while wait_for_line().is_some() {}
}

/// Takes the lease for an hour and waits to be killed.
fn lease_hold(dir: &Path, cert: &str) {
    let store =
        SqliteStore::open(&dir.join(SqliteStore::FILE_NAME), SqliteOptions::default()).unwrap();
    let name = CertName::new(cert).unwrap();
    let outcome = store
        .acquire_lease(
            &name,
            &LeaseHolder::this_process(),
            Duration::from_secs(3600),
        )
        .unwrap();
    assert!(matches!(outcome, LeaseOutcome::Acquired { .. }));
    say("HELD");
    while wait_for_line().is_some() {}
}
