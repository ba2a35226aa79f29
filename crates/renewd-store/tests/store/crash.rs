//! SIGKILL at random moments during installs: `live` is always one complete, matching
//! version; restart clean-up leaves no temp files; the database is intact and each of the
//! child's transactions is there entirely or not at all.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::Duration;

use chrono::Utc;
use renewd_core::{CertName, DomainName, KeyType};
use renewd_store::{
    CertStore, Expectations, PendingKeys, SET_FILES, SqliteOptions, SqliteStore, StateStore,
    verify_issued,
};

use crate::ChildGuard;
use crate::child::{CERT, DOMAIN};

const ROUNDS: usize = 50;

#[test]
fn sigkill_during_installs_never_leaves_a_mixed_or_partial_set() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let name = CertName::new(CERT).unwrap();
    let domains = vec![DomainName::new(DOMAIN).unwrap()];
    let mut live_seen = Vec::new();

    for round in 0..ROUNDS {
        let mut child = ChildGuard::spawn("install-loop", state, "");
        child.expect_token("READY");
        child.expect_token("PROGRESS");
        // The point of the test is an arbitrary moment, so a random delay after readiness.
        thread::sleep(Duration::from_millis(fastrand::u64(0..120)));
        child.kill();

        let certs = CertStore::new(state);
        let live = certs.live_version(&name).unwrap();
        assert!(
            live.is_some() || live_seen.is_empty(),
            "round {round}: live vanished"
        );
        if let Some(v) = live {
            check_live_set(&certs, &name, &domains, round);
            live_seen.push(v);
        }

        // The restart's clean-up.
        let store = SqliteStore::open_in(state, SqliteOptions::default()).unwrap();
        certs.recover().unwrap();
        PendingKeys::new(state)
            .remove_orphans(&store, Duration::ZERO)
            .unwrap();
        let leftovers = temp_files(state);
        assert!(leftovers.is_empty(), "round {round}: {leftovers:?}");
        let numbered = fs::read_dir(certs.cert_dir(&name).join("archive"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(
            certs.versions(&name).unwrap().len(),
            numbered,
            "round {round}: every archive version is complete after clean-up"
        );
        if live.is_some() {
            check_live_set(&certs, &name, &domains, round);
        }

        // The database.
        assert_eq!(store.integrity_check().unwrap(), ["ok"], "round {round}");
        if let Some(st) = store.cert_state(&name).unwrap() {
            // The installed state and the order's removal were one transaction: a pending
            // order can only be the next iteration's.
            if let Some(p) = &st.pending {
                assert_eq!(
                    p.order_url,
                    format!("https://testca/order/{}", st.backoff_step + 1),
                    "round {round}: the state and its pending order disagree"
                );
                assert!(
                    p.key_path.is_file(),
                    "round {round}: the pending key is gone"
                );
            }
            match &st.installed {
                // Only the very first order can be in flight with nothing installed yet.
                None => assert!(
                    st.pending.is_some() && st.backoff_step == 0,
                    "round {round}: {st:?}"
                ),
                Some(installed) => {
                    // The state never runs ahead of the files.
                    let spec = renewd_store::CertSpec {
                        name: &name,
                        domains: &domains,
                        key_type: KeyType::EcdsaP256,
                    };
                    let scanned = certs.scan_one(&spec);
                    let live_serial = scanned
                        .facts()
                        .unwrap_or_else(|| panic!("round {round}: {scanned:?}"))
                        .serial_hex();
                    assert!(
                        installed.serial == live_serial || st.pending.is_some(),
                        "round {round}: state says {} but live has {live_serial} \
                         with no order in flight",
                        installed.serial
                    );
                }
            }
        }
        let pending_dir = PendingKeys::new(state).dir().to_path_buf();
        let keys_left = fs::read_dir(&pending_dir).map(|d| d.count()).unwrap_or(0);
        let referenced = store
            .cert_state(&name)
            .unwrap()
            .and_then(|s| s.pending)
            .is_some();
        assert_eq!(
            keys_left,
            usize::from(referenced),
            "round {round}: orphan keys"
        );
    }
    eprintln!("{ROUNDS} kills; live versions seen after each: {live_seen:?}");
    // Every round completed at least one install before its kill, so kills landed all
    // over the loop.
    assert_eq!(live_seen.len(), ROUNDS, "{live_seen:?}");
    assert!(
        live_seen.last().copied().unwrap_or(0) >= ROUNDS as u32,
        "{live_seen:?}"
    );
}

/// `live` is one complete version: the key matches the certificate, the chain links, and
/// fullchain.pem is cert.pem + chain.pem of the same version.
fn check_live_set(certs: &CertStore, name: &CertName, domains: &[DomainName], round: usize) {
    let live = certs.live_dir(name);
    let read = |f: &str| {
        fs::read_to_string(live.join(f)).unwrap_or_else(|e| panic!("round {round}: live/{f}: {e}"))
    };
    let [cert, chain, fullchain, key] = SET_FILES.map(read);
    assert_eq!(
        fullchain,
        format!("{cert}{chain}"),
        "round {round}: files of different versions"
    );
    let expect = Expectations {
        domains,
        key_type: Some(KeyType::EcdsaP256),
        now: Utc::now(),
        skew: Duration::from_secs(60),
    };
    verify_issued(&fullchain, &key, &expect)
        .unwrap_or_else(|e| panic!("round {round}: the live set does not hold together: {e}"));
}

fn temp_files(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.contains(".renewd-tmp-") {
                found.push(e.path().display().to_string());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    found
}
