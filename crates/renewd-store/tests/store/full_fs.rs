//! Installing onto a full and onto a read-only file system: a typed error naming the path,
//! the old set stays live, and the failure is recorded in the state. Needs root to mount a
//! small tmpfs; CI runs as root, so a refused mount fails the test loudly.

use std::fs;
use std::io::ErrorKind;
use std::time::Duration;

use chrono::Utc;
use renewd_core::{CertName, DomainName, KeyType, OutcomeClass, RequestOutcome, Step};
use renewd_store::{
    CertStore, Expectations, LastError, LedgerQuery, SqliteOptions, SqliteStore, StateStore,
    StoreError,
};

use renewd_testsupport::{Tmpfs, fill_until_full};

use crate::pki;

#[test]
fn a_full_or_read_only_file_system_keeps_the_old_set_live() {
    let dir = tempfile::tempdir().unwrap();
    let fs_root = dir.path().join("mnt");
    let tmpfs = Tmpfs::mount(&fs_root, "256k");
    // The database lives elsewhere, so the failure can be recorded.
    let store = SqliteStore::open_in(&dir.path().join("db"), SqliteOptions::default()).unwrap();
    let certs = CertStore::new(&fs_root);
    let name = CertName::new("www").unwrap();
    let domains = vec![DomainName::new("www.example.com").unwrap()];
    let expect = Expectations {
        domains: &domains,
        key_type: Some(KeyType::EcdsaP256),
        now: Utc::now(),
        skew: Duration::from_secs(60),
    };
    let ca = pki::TestCa::new("Full");
    let (chain1, key1) = ca.issue(&["www.example.com"]);
    certs.install(&name, &chain1, &key1, &expect, None).unwrap();
    let live = certs.live_dir(&name);

    fill_until_full(&fs_root);
    let (chain2, key2) = ca.issue(&["www.example.com"]);
    let err = certs
        .install(&name, &chain2, &key2, &expect, None)
        .unwrap_err();
    match &err {
        StoreError::Io { path, source, .. } => {
            assert_eq!(source.kind(), ErrorKind::StorageFull, "{err}");
            assert!(path.starts_with(&fs_root), "{err}");
        }
        other => panic!("expected an I/O error, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&fs_root.display().to_string()), "{msg}");
    assert!(msg.contains("free space"), "{msg}");
    assert_eq!(err.failure_class().outcome(), OutcomeClass::Local);
    assert_eq!(certs.live_version(&name).unwrap(), Some(1));
    assert_eq!(
        fs::read_to_string(live.join("fullchain.pem")).unwrap(),
        chain1
    );
    assert!(
        certs.recover().unwrap().is_empty(),
        "the failed install cleaned up after itself"
    );

    // The caller records the failure.
    let now = Utc::now();
    store
        .update_cert_state(&name, &mut |st| {
            st.last_error = Some(LastError {
                class: err.failure_class().outcome(),
                message: err.to_string(),
                at: now,
            });
            st.failure_streak += 1;
            st.failing_since.get_or_insert(now);
        })
        .unwrap();
    store
        .append_outcome(&RequestOutcome {
            time: now,
            ca: renewd_core::CaName::new("testca").unwrap(),
            account: None,
            cert: Some(name.clone()),
            step: Step::Install,
            http_status: None,
            problem_type: None,
            class: err.failure_class().outcome(),
            latency: Duration::ZERO,
            order_url: None,
            detail: Some(err.to_string()),
        })
        .unwrap();
    let st = store.cert_state(&name).unwrap().unwrap();
    let recorded = st.last_error.unwrap();
    assert_eq!(recorded.class, OutcomeClass::Local);
    assert!(
        recorded.message.contains("No space left"),
        "{}",
        recorded.message
    );
    assert_eq!(st.failure_streak, 1);
    let rows = store
        .ledger(&LedgerQuery::all().cert(name.clone()))
        .unwrap();
    assert_eq!(rows[0].step, Step::Install);

    // Read-only: space again, but no writes at all.
    fs::remove_file(fs_root.join("filler")).unwrap();
    tmpfs.remount("ro");
    let err = certs
        .install(&name, &chain2, &key2, &expect, None)
        .unwrap_err();
    match &err {
        StoreError::Io { source, .. } => {
            assert_eq!(source.kind(), ErrorKind::ReadOnlyFilesystem, "{err}");
        }
        other => panic!("expected an I/O error, got {other}"),
    }
    assert!(err.to_string().contains("read-only"), "{err}");
    assert_eq!(
        fs::read_to_string(live.join("fullchain.pem")).unwrap(),
        chain1
    );

    // Writable again: the install goes through.
    tmpfs.remount("rw");
    let done = certs.install(&name, &chain2, &key2, &expect, None).unwrap();
    assert_eq!(done.version, 2);
    assert_eq!(
        fs::read_to_string(live.join("fullchain.pem")).unwrap(),
        chain2
    );
}
