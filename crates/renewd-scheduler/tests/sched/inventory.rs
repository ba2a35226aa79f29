//! The first scan's inventory from real files: a valid 6-day certificate is due at half
//! its lifetime, a mismatched one at once; an unreadable store state holds back.

use std::fs;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rcgen::{CertificateParams, KeyPair};
use renewd_core::{DomainName, KeyType, RenewalReason, Urgency};
use renewd_scheduler::{Inventory, STORE_RETRY};
use renewd_store::{CertSpec, CertStore, InstalledState, StateStore};

use crate::support::*;

fn odt(t: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap()
}

/// Writes a self-signed live set for `cert` covering `domains`.
fn write_live(root: &Path, cert: &str, domains: &[&str], nb: DateTime<Utc>, na: DateTime<Utc>) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(domains.iter().map(|d| d.to_string()).collect::<Vec<_>>()).unwrap();
    params.not_before = odt(nb);
    params.not_after = odt(na);
    let pem = params.self_signed(&key).unwrap().pem();
    let live = root.join(cert).join("live");
    fs::create_dir_all(&live).unwrap();
    fs::write(live.join("cert.pem"), &pem).unwrap();
    fs::write(live.join("chain.pem"), &pem).unwrap();
    fs::write(live.join("fullchain.pem"), &pem).unwrap();
    fs::write(live.join("privkey.pem"), key.serialize_pem()).unwrap();
}

fn scan(store: &CertStore, cert: &str, domains: &[&str]) -> InstalledState {
    let domains: Vec<DomainName> = domains.iter().map(|d| d.parse().unwrap()).collect();
    store.scan_one(&CertSpec {
        name: &name(cert),
        domains: &domains,
        key_type: KeyType::EcdsaP256,
    })
}

#[tokio::test(start_paused = true)]
async fn the_first_scan_decides_for_files_on_disk() {
    let w = World::new();
    let certs = CertStore::new(w.dir.path());
    let (nb, na) = (t0() - days(1), t0() + days(5));
    write_live(certs.root(), "short", &["short.example"], nb, na);
    write_live(certs.root(), "grown", &["grown.example"], nb, na);
    let mut inventory = Inventory::new();
    let short = scan(&certs, "short", &["short.example"]);
    assert_eq!(short.label(), "valid");
    inventory.insert(name("short"), short);
    // The config gained a name the installed certificate lacks.
    let grown = scan(&certs, "grown", &["grown.example", "www.grown.example"]);
    assert_eq!(grown.label(), "mismatch");
    inventory.insert(name("grown"), grown);
    // The store believes an older certificate is installed for "short": the files win.
    w.installed("short", t0() - days(80), t0() + days(10));

    let scheduler = w.scheduler(vec![plan("short"), plan("grown")], inventory);
    let explained = scheduler.explain(&name("short")).unwrap();
    assert!(explained.contains("1/2 of lifetime left"), "{explained}");
    let mut s = w.start(scheduler, 4);
    let j = job(s.next().await);
    assert_eq!(
        (j.cert.as_str(), j.reason),
        ("grown", RenewalReason::Mismatch)
    );
    assert_eq!(j.urgency, Urgency::Urgent);
    assert_eq!(w.now(), t0());
    let j = job(s.next().await);
    assert_eq!(
        (j.cert.as_str(), j.reason),
        ("short", RenewalReason::Expiring)
    );
    // A 6-day certificate: due at 3 days, two days from t0.
    assert_eq!(w.now(), nb + days(3));
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_state_is_held_back_and_read_again() {
    let w = World::new();
    w.due_in("www", -TimeDelta::hours(1));
    // Damage the row behind the store's back: a negative back-off step cannot be decoded.
    let db = rusqlite::Connection::open(w.dir.path().join("state.db")).unwrap();
    db.execute(
        "UPDATE cert_state SET backoff_step = -5 WHERE cert = 'www'",
        [],
    )
    .unwrap();
    assert!(w.store.cert_state(&name("www")).is_err());

    let mut s = w.run(vec![plan("www")], 4);
    assert!(s.next_within(Duration::from_secs(50)).await.is_none());
    // Repaired: read again at the end of the hold, and dispatched.
    db.execute(
        "UPDATE cert_state SET backoff_step = 0 WHERE cert = 'www'",
        [],
    )
    .unwrap();
    let j = job(s.next().await);
    assert_eq!(j.reason, RenewalReason::Expiring);
    assert_eq!(w.now(), t0() + STORE_RETRY);
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_state_is_read_again_even_when_the_files_look_fine() {
    let w = World::new();
    let certs = CertStore::new(w.dir.path());
    write_live(
        certs.root(),
        "www",
        &["www.example"],
        t0() - days(1),
        t0() + days(89),
    );
    let mut inventory = Inventory::new();
    inventory.insert(name("www"), scan(&certs, "www", &["www.example"]));
    // The store holds a pending order the scheduler cannot see while the row is damaged.
    w.pending("www");
    let db = rusqlite::Connection::open(w.dir.path().join("state.db")).unwrap();
    db.execute(
        "UPDATE cert_state SET failure_streak = -1 WHERE cert = 'www'",
        [],
    )
    .unwrap();

    let scheduler = w.scheduler(vec![plan("www")], inventory);
    let explained = scheduler.explain(&name("www")).unwrap();
    assert!(explained.contains("1/3 of lifetime left"), "{explained}");
    let mut s = w.start(scheduler, 4);
    assert!(s.next_within(Duration::from_secs(50)).await.is_none());
    db.execute(
        "UPDATE cert_state SET failure_streak = 0 WHERE cert = 'www'",
        [],
    )
    .unwrap();
    let j = job(s.next().await);
    assert_eq!(j.reason, RenewalReason::ResumePending);
    assert_eq!(w.now(), t0() + STORE_RETRY);
}
