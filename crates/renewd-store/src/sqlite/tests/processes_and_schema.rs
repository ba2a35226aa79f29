use super::*;

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
fn migrates_a_version_2_database_to_the_rate_limit_block() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let mut conn = Connection::open(&path).unwrap();
        schema::migrate_to(&mut conn, &path, 2).unwrap();
        conn.execute_batch(
            "INSERT INTO ca_health (ca, circuit, consecutive_failures, open_until_ms, cooldown_ms) \
             VALUES ('zerossl', 'open', 3, 1750000600000, 120000);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    assert_eq!(store.schema_version().unwrap(), 4);
    let h = store.ca_health(&ca("zerossl")).unwrap().unwrap();
    assert_eq!(
        h.cooldown,
        Some(Duration::from_secs(120)),
        "v2 data is kept"
    );
    assert_eq!(h.blocked_until, None, "the v3 column starts empty");
    let until = t0() + TimeDelta::minutes(7);
    let blocked = store
        .update_ca_health(&ca("zerossl"), &mut |h| h.blocked_until = Some(until))
        .unwrap();
    assert_eq!(blocked.blocked_until, Some(until));
    drop(store);
    let reopened = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    assert_eq!(
        reopened
            .ca_health(&ca("zerossl"))
            .unwrap()
            .unwrap()
            .blocked_until,
        Some(until),
        "the block survives a restart"
    );
}

#[test]
fn migrates_a_version_3_database_to_the_ari_marker() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let mut conn = Connection::open(&path).unwrap();
        schema::migrate_to(&mut conn, &path, 3).unwrap();
        conn.execute_batch(
            "INSERT INTO cert_state (cert, ari_next_check_ms) VALUES ('www', 1750000600000);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    assert_eq!(store.schema_version().unwrap(), 4);
    let s = store.cert_state(&cert("www")).unwrap().unwrap();
    assert!(s.ari.next_check.is_some(), "v3 data is kept");
    assert_eq!(s.ari.not_offered_at, None, "the v4 column starts empty");
    let marked = store
        .update_cert_state(&cert("www"), &mut |s| s.ari.not_offered_at = Some(t0()))
        .unwrap();
    assert_eq!(marked.ari.not_offered_at, Some(t0()));
    drop(store);
    let reopened = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    assert_eq!(
        reopened
            .cert_state(&cert("www"))
            .unwrap()
            .unwrap()
            .ari
            .not_offered_at,
        Some(t0())
    );
}

#[test]
fn open_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/state.db");
    let not_a_db = dir.path().join("junk.db");
    std::fs::write(&not_a_db, vec![0x55; 8192]).unwrap();
    for (path, read_only) in [
        (&missing, false),
        (&missing, true),
        (&not_a_db, false),
        (&not_a_db, true),
    ] {
        let result = if read_only {
            SqliteStore::open_read_only(path, SqliteOptions::default())
        } else {
            SqliteStore::open(path, SqliteOptions::default())
        };
        let err = result.unwrap_err();
        assert!(matches!(err, StoreError::OpenDatabase { .. }), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
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
