use std::process::Command;
use std::thread;

use chrono::TimeDelta;
use renewd_core::{ManualClock, OutcomeClass, Step, Urgency};
use tempfile::TempDir;

use super::*;
use crate::lease::{DEFAULT_LEASE_TTL, Takeover};
use crate::records::{AriState, CircuitState, InstalledCert, LastError};

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).unwrap()
}

fn ca(s: &str) -> CaName {
    CaName::new(s).unwrap()
}

fn cert(s: &str) -> CertName {
    CertName::new(s).unwrap()
}

struct Fixture {
    _dir: TempDir,
    clock: ManualClock,
    store: SqliteStore,
}

fn fixture_with(retention: Retention) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0());
    let store = SqliteStore::open_in(
        &dir.path().join("state"),
        SqliteOptions {
            retention,
            clock: Arc::new(clock.clone()),
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    Fixture {
        _dir: dir,
        clock,
        store,
    }
}

fn fixture() -> Fixture {
    fixture_with(Retention::default())
}

fn outcome(ca_name: &str, cert_name: Option<&str>, class: OutcomeClass, at: i64) -> RequestOutcome {
    RequestOutcome {
        time: t0() + TimeDelta::seconds(at),
        ca: ca(ca_name),
        account: Some(format!("https://{ca_name}/acct/1")),
        cert: cert_name.map(cert),
        step: Step::Finalize,
        http_status: (class == OutcomeClass::CaUnavailable).then_some(504),
        problem_type: None,
        class,
        latency: Duration::from_millis(120),
        order_url: Some(format!("https://{ca_name}/order/{at}")),
        detail: (class != OutcomeClass::Ok).then(|| "504 Gateway Time-out".to_string()),
    }
}

#[test]
fn the_store_is_shareable_as_a_trait_object() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<SqliteStore>();
    let f = fixture();
    let shared: Arc<dyn StateStore> = Arc::new(f.store);
    let worker = Arc::clone(&shared);
    thread::spawn(move || {
        worker
            .append_outcome(&outcome("z", None, OutcomeClass::Ok, 0))
            .unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(shared.ledger(&LedgerQuery::all()).unwrap().len(), 1);
}

#[test]
fn ledger_queries_filter_and_come_newest_first() {
    let f = fixture();
    let s = &f.store;
    let rows = [
        outcome("zerossl", Some("www"), OutcomeClass::Ok, 0),
        outcome("zerossl", Some("api"), OutcomeClass::CaUnavailable, 10),
        outcome("letsencrypt", Some("www"), OutcomeClass::Ok, 20),
        outcome("zerossl", None, OutcomeClass::RateLimited, 30),
        outcome("zerossl", Some("www"), OutcomeClass::CaUnavailable, 40),
    ];
    for r in &rows {
        s.append_outcome(r).unwrap();
    }
    let all = s.ledger(&LedgerQuery::all()).unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0], rows[4], "newest first, every field back");
    assert_eq!(all[4], rows[0]);

    let z = s.ledger(&LedgerQuery::all().ca(ca("zerossl"))).unwrap();
    assert_eq!(
        z.iter().map(|o| o.time).collect::<Vec<_>>(),
        [rows[4].time, rows[3].time, rows[1].time, rows[0].time]
    );
    let www = s.ledger(&LedgerQuery::all().cert(cert("www"))).unwrap();
    assert_eq!(www.len(), 3);
    let since = s
        .ledger(&LedgerQuery::all().since(t0() + TimeDelta::seconds(20)))
        .unwrap();
    assert_eq!(since.len(), 3);
    let combined = s
        .ledger(
            &LedgerQuery::all()
                .ca(ca("zerossl"))
                .cert(cert("www"))
                .since(t0() + TimeDelta::seconds(1))
                .limit(5),
        )
        .unwrap();
    assert_eq!(combined, [rows[4].clone()]);
    let limited = s.ledger(&LedgerQuery::all().limit(2)).unwrap();
    assert_eq!(limited, [rows[4].clone(), rows[3].clone()]);
}

#[test]
fn consecutive_failures_count_back_to_the_last_ok() {
    let f = fixture();
    let s = &f.store;
    let z = ca("zerossl");
    assert_eq!(s.consecutive_ca_unavailable(&z).unwrap(), 0);
    // Without any ok, every ca_unavailable counts.
    s.append_outcome(&outcome("zerossl", None, OutcomeClass::CaUnavailable, 0))
        .unwrap();
    assert_eq!(s.consecutive_ca_unavailable(&z).unwrap(), 1);
    s.append_outcome(&outcome("zerossl", None, OutcomeClass::Ok, 5))
        .unwrap();
    assert_eq!(s.consecutive_ca_unavailable(&z).unwrap(), 0);
    for (class, at) in [
        (OutcomeClass::CaUnavailable, 10),
        (OutcomeClass::RateLimited, 11), // not a health failure, does not break the run
        (OutcomeClass::CaUnavailable, 12),
        (OutcomeClass::Rejected, 13),
        (OutcomeClass::CaUnavailable, 14),
    ] {
        s.append_outcome(&outcome("zerossl", Some("www"), class, at))
            .unwrap();
    }
    // Another CA's rows do not count.
    s.append_outcome(&outcome("other", None, OutcomeClass::CaUnavailable, 15))
        .unwrap();
    s.append_outcome(&outcome("other", None, OutcomeClass::Ok, 16))
        .unwrap();
    assert_eq!(s.consecutive_ca_unavailable(&z).unwrap(), 3);
    assert_eq!(s.consecutive_ca_unavailable(&ca("other")).unwrap(), 0);
    // Same timestamp as the failures but appended later: the ok ends the run.
    s.append_outcome(&outcome("zerossl", None, OutcomeClass::Ok, 14))
        .unwrap();
    assert_eq!(s.consecutive_ca_unavailable(&z).unwrap(), 0);
}

#[test]
fn stats_over_a_window() {
    let f = fixture();
    let s = &f.store;
    for (class, at) in [
        (OutcomeClass::Ok, 0),
        (OutcomeClass::CaUnavailable, 100),
        (OutcomeClass::CaUnavailable, 110),
        (OutcomeClass::Ok, 120),
        (OutcomeClass::Local, 130),
    ] {
        s.append_outcome(&outcome("z", None, class, at)).unwrap();
    }
    s.append_outcome(&outcome("y", None, OutcomeClass::CaUnavailable, 140))
        .unwrap();
    let st = s
        .ledger_stats(&ca("z"), t0() + TimeDelta::seconds(100))
        .unwrap();
    assert_eq!(
        st,
        LedgerStats {
            total: 4,
            ok: 1,
            ca_unavailable: 2,
            local: 1,
            ..LedgerStats::default()
        }
    );
    assert!((st.failure_rate() - 0.5).abs() < 1e-9);
    let empty = s.ledger_stats(&ca("z"), t0() + TimeDelta::days(1)).unwrap();
    assert_eq!(empty.failure_rate(), 0.0);
}

#[test]
fn pruning_by_age_and_by_rows() {
    let f = fixture_with(Retention {
        max_age: Duration::from_secs(3600),
        max_rows: 5,
        prune_every: 0,
    });
    let s = &f.store;
    // Eight rows, one a minute, from t0.
    for i in 0..8 {
        s.append_outcome(&outcome("z", None, OutcomeClass::Ok, i * 60))
            .unwrap();
    }
    assert_eq!(
        s.ledger(&LedgerQuery::all()).unwrap().len(),
        8,
        "no prune on append"
    );
    let report = s.prune_ledger().unwrap();
    assert_eq!(
        report,
        PruneReport {
            by_age: 0,
            by_rows: 3
        }
    );
    let left = s.ledger(&LedgerQuery::all()).unwrap();
    assert_eq!(left.len(), 5);
    assert_eq!(
        left[4].time,
        t0() + TimeDelta::seconds(180),
        "the newest stay"
    );

    // An hour and four minutes later, rows before t0+4min are too old.
    f.clock.set(t0() + TimeDelta::seconds(3600 + 240));
    let report = s.prune_ledger().unwrap();
    assert_eq!(
        report,
        PruneReport {
            by_age: 1,
            by_rows: 0
        }
    );
    assert_eq!(s.ledger(&LedgerQuery::all()).unwrap().len(), 4);
}

#[test]
fn appending_prunes_every_n_appends() {
    let f = fixture_with(Retention {
        max_age: Duration::from_secs(86400),
        max_rows: 10,
        prune_every: 4,
    });
    for i in 0..30 {
        f.store
            .append_outcome(&outcome("z", None, OutcomeClass::Ok, i))
            .unwrap();
        let n = f.store.ledger(&LedgerQuery::all()).unwrap().len();
        // Never more than max_rows plus the appends since the last prune.
        assert!(n <= 10 + 3, "{n} rows after {} appends", i + 1);
    }
    assert_eq!(f.store.status_snapshot().unwrap().ledger_rows, 12);
}

#[test]
fn ca_health_round_trip() {
    let f = fixture();
    let s = &f.store;
    assert_eq!(s.ca_health(&ca("z")).unwrap(), None);
    let h = CaHealth {
        ca: ca("z"),
        circuit: CircuitState::Open,
        consecutive_failures: 5,
        open_until: Some(t0() + TimeDelta::minutes(10)),
        cooldown: Some(Duration::from_secs(600)),
        last_probe: Some(t0()),
        last_probe_ok: Some(false),
        last_probe_latency: Some(Duration::from_millis(2500)),
    };
    s.put_ca_health(&h).unwrap();
    assert_eq!(s.ca_health(&ca("z")).unwrap(), Some(h.clone()));
    let doubled = s
        .update_ca_health(&ca("z"), &mut |h| {
            h.circuit = CircuitState::HalfOpen;
            h.cooldown = h.cooldown.map(|c| c * 2);
        })
        .unwrap();
    assert_eq!(doubled.cooldown, Some(Duration::from_secs(1200)));
    assert_eq!(s.ca_health(&ca("z")).unwrap(), Some(doubled));
    let fresh = s.update_ca_health(&ca("new"), &mut |_| {}).unwrap();
    assert_eq!(fresh, CaHealth::new(ca("new")));
    assert_eq!(s.status_snapshot().unwrap().cas.len(), 2);
}

fn full_state(name: &str) -> CertState {
    CertState {
        cert: cert(name),
        installed: Some(InstalledCert {
            serial: "3a5f".into(),
            not_before: t0(),
            not_after: t0() + TimeDelta::days(90),
            issuer_ca: Some(ca("zerossl")),
            account_url: Some("https://z/acct/1".into()),
            ari_cert_id: Some("aYhba4dGQEE.AIdlQyE".into()),
        }),
        ari: AriState {
            window_start: Some(t0() + TimeDelta::days(60)),
            window_end: Some(t0() + TimeDelta::days(62)),
            explanation_url: Some("https://z/why".into()),
            next_check: Some(t0() + TimeDelta::hours(6)),
        },
        next_attempt: Some(t0() + TimeDelta::minutes(5)),
        backoff_step: 2,
        urgency_alerted: Some(Urgency::Urgent),
        failing_since: Some(t0() - TimeDelta::hours(1)),
        failure_streak: 3,
        last_error: Some(LastError {
            class: OutcomeClass::CaUnavailable,
            message: "finalize: 504 Gateway Time-out".into(),
            at: t0(),
        }),
        last_success: Some(t0() - TimeDelta::days(60)),
        pending: Some(PendingOrder {
            ca: ca("zerossl"),
            account_url: "https://z/acct/1".into(),
            order_url: "https://z/order/9".into(),
            key_path: PathBuf::from("/var/lib/renewd/pending/www.0123.key"),
            csr_der: vec![0x30, 0x82, 0x01, 0x00, 0xff],
            created_at: t0() - TimeDelta::minutes(2),
        }),
    }
}

#[test]
fn cert_state_round_trip_with_pending_order() {
    let f = fixture();
    let s = &f.store;
    let full = full_state("www");
    s.put_cert_state(&full).unwrap();
    assert_eq!(s.cert_state(&cert("www")).unwrap(), Some(full.clone()));

    let bare = CertState::new(cert("api"));
    s.put_cert_state(&bare).unwrap();
    assert_eq!(s.cert_state(&cert("api")).unwrap(), Some(bare));
    assert_eq!(s.cert_state(&cert("none")).unwrap(), None);

    // Clearing the pending order keeps the rest.
    let cleared = s.clear_pending_order(&cert("www")).unwrap();
    assert_eq!(cleared, full.pending);
    let after = s.cert_state(&cert("www")).unwrap().unwrap();
    assert_eq!(after.pending, None);
    assert_eq!(after.installed, full.installed);
    assert_eq!(s.clear_pending_order(&cert("www")).unwrap(), None);

    // A pending order for a certificate with no state yet.
    let order = full.pending.clone().unwrap();
    s.set_pending_order(&cert("new"), &order).unwrap();
    assert_eq!(
        s.cert_state(&cert("new")).unwrap().unwrap().pending,
        Some(order.clone())
    );
    // put_cert_state with pending None removes the order.
    let mut st = s.cert_state(&cert("new")).unwrap().unwrap();
    st.pending = None;
    s.put_cert_state(&st).unwrap();
    assert_eq!(s.cert_state(&cert("new")).unwrap().unwrap().pending, None);

    let updated = s
        .update_cert_state(&cert("www"), &mut |st| {
            st.failure_streak += 1;
            st.last_error = None;
        })
        .unwrap();
    assert_eq!(updated.failure_streak, 4);
    assert_eq!(s.cert_state(&cert("www")).unwrap(), Some(updated));

    s.set_pending_order(&cert("www"), &order).unwrap();
    assert_eq!(s.remove_cert_state(&cert("www")).unwrap(), Some(order));
    assert_eq!(s.cert_state(&cert("www")).unwrap(), None);
    let names: Vec<String> = s
        .status_snapshot()
        .unwrap()
        .certs
        .into_iter()
        .map(|c| c.cert.to_string())
        .collect();
    assert_eq!(names, ["api", "new"]);
}

#[test]
fn accounts_round_trip() {
    let f = fixture();
    let a = AccountRecord {
        ca: ca("zerossl"),
        url: "https://z/acct/7".into(),
        key_path: PathBuf::from("/var/lib/renewd/accounts/zerossl.key"),
        eab_kid: Some("kid-1".into()),
        contact: vec!["mailto:ops@example.com".into()],
        created: t0(),
    };
    f.store.put_account(&a).unwrap();
    assert_eq!(f.store.account(&ca("zerossl")).unwrap(), Some(a.clone()));
    assert_eq!(f.store.account(&ca("other")).unwrap(), None);
    assert_eq!(f.store.status_snapshot().unwrap().accounts, [a]);
}

#[test]
fn corrupt_values_are_reported_not_panicked_on() {
    let f = fixture();
    f.store.put_cert_state(&full_state("www")).unwrap();
    f.store
        .lock()
        .execute("UPDATE cert_state SET urgency_alerted = 'panic'", [])
        .unwrap();
    let err = f.store.cert_state(&cert("www")).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::CorruptValue {
                table: "cert_state",
                column: "urgency_alerted",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn leases_exclude_renew_release_and_expire() {
    let f = fixture();
    let s = &f.store;
    let www = cert("www");
    let ttl = Duration::from_secs(60);
    let a = LeaseHolder::this_process();
    let b = LeaseHolder::this_process();

    let lease = s.acquire_lease(&www, &a, ttl).unwrap().acquired().unwrap();
    assert_eq!(lease.expires_at, t0() + TimeDelta::seconds(60));
    // b is alive (it is this process) and a's lease has not expired: held.
    match s.acquire_lease(&www, &b, ttl).unwrap() {
        LeaseOutcome::Held(l) => assert_eq!(l.holder, a),
        other => panic!("{other:?}"),
    }
    // Re-acquiring one's own lease extends it.
    f.clock.advance(TimeDelta::seconds(30));
    let again = s.acquire_lease(&www, &a, ttl).unwrap().acquired().unwrap();
    assert_eq!(again.acquired_at, t0());
    assert_eq!(again.expires_at, t0() + TimeDelta::seconds(90));
    // Heartbeat.
    f.clock.advance(TimeDelta::seconds(50));
    let renewed = s.renew_lease(&again, ttl).unwrap();
    assert_eq!(renewed.expires_at, t0() + TimeDelta::seconds(140));
    assert!(matches!(
        s.acquire_lease(&www, &b, ttl).unwrap(),
        LeaseOutcome::Held(_)
    ));

    // No heartbeat: it expires and b takes over; a has lost it.
    f.clock.advance(TimeDelta::seconds(61));
    match s.acquire_lease(&www, &b, ttl).unwrap() {
        LeaseOutcome::Acquired {
            took_over: Some((from, Takeover::Expired)),
            lease,
        } => {
            assert_eq!(from, a);
            assert_eq!(lease.holder, b);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.renew_lease(&renewed, ttl),
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(!s.release_lease(&renewed).unwrap());
    let held = s.status_snapshot().unwrap().leases;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].holder, b);
    let b_lease = held[0].clone();
    assert!(s.release_lease(&b_lease).unwrap());
    assert!(s.status_snapshot().unwrap().leases.is_empty());
    // Other certificates are independent.
    assert!(
        s.acquire_lease(&cert("api"), &a, ttl)
            .unwrap()
            .acquired()
            .is_some()
    );
}

#[test]
fn a_dead_holders_lease_is_taken_over() {
    let f = fixture();
    let mut child = Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let dead = LeaseHolder {
        pid: dead_pid,
        pid_start: None,
        ..LeaseHolder::this_process()
    };
    let www = cert("www");
    f.store
        .acquire_lease(&www, &dead, Duration::from_secs(3600))
        .unwrap()
        .acquired()
        .unwrap();
    let me = LeaseHolder::this_process();
    match f.store.acquire_lease(&www, &me, DEFAULT_LEASE_TTL).unwrap() {
        LeaseOutcome::Acquired {
            took_over: Some((from, Takeover::HolderDead)),
            ..
        } => {
            assert_eq!(from.pid, dead_pid);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn migrates_a_version_1_database_keeping_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let mut conn = Connection::open(&path).unwrap();
        schema::migrate_to(&mut conn, &path, 1).unwrap();
        conn.execute_batch(
            "INSERT INTO ca_health (ca, circuit, consecutive_failures, open_until_ms) \
             VALUES ('zerossl', 'open', 4, 1750000600000);
             INSERT INTO ledger (time_ms, ca, step, class, latency_ms) \
             VALUES (1750000000000, 'zerossl', 'finalize', 'ca_unavailable', 30000);
             INSERT INTO cert_state (cert, serial, not_before_ms, not_after_ms) \
             VALUES ('www', 'ab', 1750000000000, 1757776000000);",
        )
        .unwrap();
        assert_eq!(schema::user_version(&conn).unwrap(), 1);
    }
    // A v1 database is not for read-only use until a writer migrated it.
    assert!(matches!(
        SqliteStore::open_read_only(&path, SqliteOptions::default()),
        Err(StoreError::SchemaOutdated { found: 1, .. })
    ));
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    assert_eq!(store.schema_version().unwrap(), SqliteStore::SCHEMA_VERSION);
    let h = store.ca_health(&ca("zerossl")).unwrap().unwrap();
    assert_eq!(h.circuit, CircuitState::Open);
    assert_eq!(h.consecutive_failures, 4);
    assert_eq!(h.cooldown, None, "the v2 column starts empty");
    assert_eq!(store.consecutive_ca_unavailable(&ca("zerossl")).unwrap(), 1);
    let st = store.cert_state(&cert("www")).unwrap().unwrap();
    assert_eq!(st.installed.unwrap().serial, "ab");
    // And the v2 parts work.
    store
        .acquire_lease(
            &cert("www"),
            &LeaseHolder::this_process(),
            DEFAULT_LEASE_TTL,
        )
        .unwrap()
        .acquired()
        .unwrap();
    assert_eq!(store.integrity_check().unwrap(), ["ok"]);
    drop(store);
    SqliteStore::open_read_only(&path, SqliteOptions::default()).unwrap();
}

#[test]
fn a_newer_schema_is_refused_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    for result in [
        SqliteStore::open(&path, SqliteOptions::default()),
        SqliteStore::open_read_only(&path, SqliteOptions::default()),
    ] {
        let err = result.unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("version 99"), "{err}");
    }
}

#[test]
fn a_reader_connection_reads_while_a_writer_writes() {
    let dir = tempfile::tempdir().unwrap();
    let writer = SqliteStore::open_in(dir.path(), SqliteOptions::default()).unwrap();
    let path = writer.path().to_path_buf();
    let reader = SqliteStore::open_read_only(&path, SqliteOptions::default()).unwrap();
    let reader_rw = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let www = cert("www");
    const WRITES: u32 = 300;
    thread::scope(|s| {
        s.spawn(|| {
            for i in 1..=WRITES {
                // Two tables, one transaction each; the reader must never see an error.
                writer
                    .update_cert_state(&www, &mut |st| st.failure_streak = i)
                    .unwrap();
                writer
                    .append_outcome(&outcome("z", Some("www"), OutcomeClass::Ok, i64::from(i)))
                    .unwrap();
            }
        });
        for r in [&reader, &reader_rw] {
            s.spawn(move || {
                let mut last = 0;
                while last < WRITES {
                    let snap = r.status_snapshot().unwrap();
                    let streak = snap.certs.first().map_or(0, |c| c.failure_streak);
                    assert!(streak >= last, "went back from {last} to {streak}");
                    // One consistent view: the ledger has at least streak - 1 rows.
                    assert!(snap.ledger_rows + 1 >= u64::from(streak));
                    last = streak;
                }
            });
        }
    });
    assert_eq!(
        reader.cert_state(&www).unwrap().unwrap().failure_streak,
        WRITES
    );
}
