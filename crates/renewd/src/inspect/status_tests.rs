use std::path::Path;
use std::time::Duration;

use chrono::TimeDelta;
use renewd_config::LoadEnv;
use renewd_core::{CertName, OutcomeClass};
use renewd_store::{
    CertSpec, CertStore, CircuitState, Expectations, InstalledCert, LastError, Lease, LeaseHolder,
    PendingOrder,
};

use super::*;

#[path = "../../tests/support/pki.rs"]
mod pki;

fn now() -> DateTime<Utc> {
    // 2023-11-14 22:13:20 UTC
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

fn config(extra: &str) -> Config {
    let text = format!(
        "state_dir = \"/tmp/renewd-status-test\"\n\
         [[ca]]\nname = \"zerossl\"\ndirectory = \"https://zerossl.invalid/dir\"\n\
         [[ca]]\nname = \"letsencrypt\"\ndirectory = \"https://le.invalid/dir\"\n\
         [http01]\nlisten = [\"127.0.0.1:5002\"]\n\
         [[cert]]\nname = \"www\"\ndomains = [\"www.example.com\"]\ncas = [\"zerossl\", \"letsencrypt\"]\n{extra}"
    );
    Config::from_str(&text, Path::new("t.toml"), &LoadEnv::default()).unwrap()
}

/// The scan of a certificate valid `days_before` days before now until `days_after` after,
/// as installed in a temp store.
fn scan(domains: &[&str], days_before: i64, days_after: i64, serial: u64) -> InstalledState {
    let dir = tempfile::tempdir().unwrap();
    let store = CertStore::new(dir.path());
    let name = CertName::new("www").unwrap();
    let issued = pki::leaf(
        domains,
        now() - TimeDelta::days(days_before),
        now() + TimeDelta::days(days_after),
        serial,
    );
    let expect = Expectations {
        domains: &[],
        key_type: None,
        now: now(),
        skew: Duration::ZERO,
    };
    store
        .install(&name, &issued.chain_pem, &issued.key_pem, &expect, None)
        .unwrap();
    let config = config("");
    let cert = &config.certs[0];
    store.scan_one(&CertSpec {
        name: &cert.name,
        domains: &cert.domains,
        key_type: cert.key,
    })
}

fn stored(serial: &str) -> CertState {
    CertState {
        installed: Some(InstalledCert {
            serial: serial.into(),
            not_before: now() - TimeDelta::days(10),
            not_after: now() + TimeDelta::days(80),
            issuer_ca: Some(CaName::new("zerossl").unwrap()),
            account_url: None,
            ari_cert_id: None,
        }),
        ..CertState::new(CertName::new("www").unwrap())
    }
}

fn row(config: &Config, snapshot: &StatusSnapshot, scan: InstalledState) -> StatusRow {
    status_rows(config, snapshot, &[scan], now()).remove(0)
}

fn with(states: Vec<CertState>) -> StatusSnapshot {
    StatusSnapshot {
        certs: states,
        ..StatusSnapshot::default()
    }
}

#[test]
fn valid_until_a_third_of_the_lifetime_is_left() {
    // 90 days: due 30 days before expiry, 50 days from now.
    let scanned = scan(&["www.example.com"], 10, 80, 0x2a);
    let r = row(&config(""), &with(vec![stored("2a")]), scanned);
    assert_eq!(r.state, CertStatus::Valid);
    assert_eq!(r.serial.as_deref(), Some("2a"));
    assert_eq!(r.not_after, Some(now() + TimeDelta::days(80)));
    assert_eq!(r.issuer_ca, Some(CaName::new("zerossl").unwrap()));
    assert_eq!(r.next_attempt, Some(now() + TimeDelta::days(50)));
    assert_eq!(r.why, "renews 2024-01-03 22:13 (1/3 of lifetime left)");
    assert_eq!(r.last_error, None);
}

#[test]
fn due_once_the_due_time_passed() {
    let scanned = scan(&["www.example.com"], 70, 20, 7);
    let r = row(&config(""), &StatusSnapshot::default(), scanned);
    assert_eq!(r.state, CertStatus::Due);
    assert_eq!(r.why, "due: 1/3 of lifetime left");
    assert_eq!(r.next_attempt, Some(now() - TimeDelta::days(10)));
    // Nothing stored about it: no issuer known.
    assert_eq!(r.issuer_ca, None);
}

#[test]
fn renew_before_and_ari_set_the_due_time() {
    let r = row(
        &config("renew_before = \"30d\"\n"),
        &StatusSnapshot::default(),
        scan(&["www.example.com"], 70, 20, 7),
    );
    assert_eq!(r.state, CertStatus::Due);
    assert_eq!(r.why, "due: renew_before 30d before expiry");

    let mut st = stored("7");
    st.ari.window_start = Some(now() + TimeDelta::days(2));
    st.ari.window_end = Some(now() + TimeDelta::days(4));
    let snapshot = with(vec![st]);
    let r = row(
        &config(""),
        &snapshot,
        scan(&["www.example.com"], 10, 80, 7),
    );
    assert_eq!(r.state, CertStatus::Valid);
    // The scheduler's point in the window, stable for this certificate and window.
    let at = r.next_attempt.unwrap();
    assert!(
        at >= now() + TimeDelta::days(2) && at < now() + TimeDelta::days(4),
        "{at}"
    );
    assert!(
        r.why
            .ends_with("(in the CA's ARI window 2023-11-16 22:13 UTC – 2023-11-18 22:13 UTC)"),
        "{}",
        r.why
    );
    assert_eq!(
        row(
            &config(""),
            &snapshot,
            scan(&["www.example.com"], 10, 80, 7)
        )
        .next_attempt,
        Some(at)
    );
    // ARI turned off: the lifetime rule.
    let off = config("[renewal]\nari = false\n");
    let r = row(&off, &snapshot, scan(&["www.example.com"], 10, 80, 7));
    assert!(r.why.ends_with("(1/3 of lifetime left)"), "{}", r.why);
    // A window stored for another certificate than the one installed is not used.
    let r = row(
        &config(""),
        &snapshot,
        scan(&["www.example.com"], 10, 80, 8),
    );
    assert!(r.why.ends_with("(1/3 of lifetime left)"), "{}", r.why);
    assert_eq!(
        r.issuer_ca, None,
        "the stored facts are another certificate's"
    );
}

#[test]
fn missing_and_unusable_sets() {
    let r = row(
        &config(""),
        &StatusSnapshot::default(),
        InstalledState::Missing,
    );
    assert_eq!(r.state, CertStatus::Missing);
    assert_eq!(r.why, "no certificate installed");
    assert_eq!(r.next_attempt, Some(now()));
    assert_eq!((r.not_after, r.serial), (None, None));

    let corrupt = InstalledState::Corrupt {
        file: "cert.pem",
        reason: "does not parse: bad DER".into(),
    };
    let r = row(&config(""), &StatusSnapshot::default(), corrupt);
    assert_eq!(r.state, CertStatus::Due);
    assert_eq!(r.why, "corrupt: cert.pem does not parse: bad DER");

    // A name added to the config: the old certificate does not cover it.
    let mut one_more = config("");
    one_more.certs[0]
        .domains
        .push(renewd_core::DomainName::new("example.com").unwrap());
    let scanned = {
        let dir = tempfile::tempdir().unwrap();
        let store = CertStore::new(dir.path());
        let issued = pki::leaf(
            &["www.example.com"],
            now() - TimeDelta::days(1),
            now() + TimeDelta::days(89),
            3,
        );
        let expect = Expectations {
            domains: &[],
            key_type: None,
            now: now(),
            skew: Duration::ZERO,
        };
        let cert = &one_more.certs[0];
        store
            .install(
                &cert.name,
                &issued.chain_pem,
                &issued.key_pem,
                &expect,
                None,
            )
            .unwrap();
        store.scan_one(&CertSpec {
            name: &cert.name,
            domains: &cert.domains,
            key_type: cert.key,
        })
    };
    let r = row(&one_more, &StatusSnapshot::default(), scanned);
    assert_eq!(r.state, CertStatus::Due);
    assert_eq!(r.why, "names added to the config: example.com");
    assert_eq!(
        r.serial.as_deref(),
        Some("3"),
        "a mismatched set still shows its facts"
    );
}

#[test]
fn failing_explains_the_back_off_and_the_circuits() {
    let mut st = stored("2a");
    st.failure_streak = 3;
    st.next_attempt = Some(now() + TimeDelta::minutes(7));
    st.last_error = Some(LastError {
        class: OutcomeClass::CaUnavailable,
        message: "finalize: 504 Gateway Time-out".into(),
        at: now() - TimeDelta::minutes(1),
    });
    let snapshot = StatusSnapshot {
        certs: vec![st],
        cas: vec![CaHealth {
            circuit: CircuitState::Open,
            open_until: Some(now() + TimeDelta::minutes(5)),
            consecutive_failures: 4,
            ..CaHealth::new(CaName::new("zerossl").unwrap())
        }],
        ..StatusSnapshot::default()
    };
    let r = row(
        &config(""),
        &snapshot,
        scan(&["www.example.com"], 70, 20, 0x2a),
    );
    assert_eq!(r.state, CertStatus::Failing);
    assert_eq!(
        r.why,
        "backing off after 3 failures until 22:20; due: 1/3 of lifetime left; \
         zerossl circuit open until 22:18, will try letsencrypt"
    );
    assert_eq!(r.next_attempt, Some(now() + TimeDelta::minutes(7)));
    assert_eq!(
        r.last_error.as_deref(),
        Some("finalize: 504 Gateway Time-out")
    );

    // Every CA open.
    let mut all_open = snapshot.clone();
    all_open.cas.push(CaHealth {
        circuit: CircuitState::Open,
        open_until: Some(now() + TimeDelta::hours(2)),
        ..CaHealth::new(CaName::new("letsencrypt").unwrap())
    });
    let r = row(
        &config(""),
        &all_open,
        scan(&["www.example.com"], 70, 20, 0x2a),
    );
    assert!(
        r.why.ends_with(
            "zerossl circuit open until 22:18; every CA of this certificate has an open circuit"
        ),
        "{}",
        r.why
    );
    // A cool-down that is over is no longer mentioned.
    let mut over = snapshot;
    over.cas[0].open_until = Some(now() - TimeDelta::minutes(1));
    let r = row(&config(""), &over, scan(&["www.example.com"], 70, 20, 0x2a));
    assert!(!r.why.contains("circuit"), "{}", r.why);
}

#[test]
fn renewing_with_a_pending_order_or_a_live_lease() {
    let mut st = stored("2a");
    st.pending = Some(PendingOrder {
        ca: CaName::new("letsencrypt").unwrap(),
        account_url: "https://le.invalid/acct/1".into(),
        order_url: "https://le.invalid/order/9".into(),
        key_path: "/tmp/key.pem".into(),
        csr_der: vec![1, 2, 3],
        created_at: now() - TimeDelta::minutes(3),
    });
    st.failure_streak = 1;
    let r = row(
        &config(""),
        &with(vec![st]),
        scan(&["www.example.com"], 70, 20, 0x2a),
    );
    assert_eq!(r.state, CertStatus::Renewing);
    assert_eq!(r.why, "order in flight at letsencrypt since 22:10");

    let holder = LeaseHolder::this_process();
    let lease = |expires_at| Lease {
        cert: CertName::new("www").unwrap(),
        holder: holder.clone(),
        acquired_at: now() - TimeDelta::minutes(1),
        expires_at,
    };
    // The lease's expiry is judged against the real clock (the holder is this process).
    let live = StatusSnapshot {
        leases: vec![lease(Utc::now() + TimeDelta::minutes(2))],
        ..StatusSnapshot::default()
    };
    let r = row(&config(""), &live, scan(&["www.example.com"], 10, 80, 0x2a));
    assert_eq!(r.state, CertStatus::Renewing);
    assert!(
        r.why.starts_with(&format!(
            "pid {} on {} holds the lease until ",
            holder.pid, holder.hostname
        )),
        "{}",
        r.why
    );
    let expired = StatusSnapshot {
        leases: vec![lease(now() - TimeDelta::minutes(1))],
        ..StatusSnapshot::default()
    };
    let r = row(
        &config(""),
        &expired,
        scan(&["www.example.com"], 10, 80, 0x2a),
    );
    assert_eq!(r.state, CertStatus::Valid);
}
