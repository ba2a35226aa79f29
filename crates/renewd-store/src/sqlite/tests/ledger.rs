use super::*;

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
fn a_step_filter_keeps_those_steps_and_the_limit_counts_what_passes() {
    let f = fixture();
    let s = &f.store;
    let step_at = |step, at| RequestOutcome {
        step,
        ..outcome("z", Some("www"), OutcomeClass::Ok, at)
    };
    let rows = [
        step_at(Step::Finalize, 0),
        step_at(Step::Download, 10),
        step_at(Step::Install, 20),
        step_at(Step::DeployHook, 30),
    ];
    for r in &rows {
        s.append_outcome(r).unwrap();
    }
    let acme = LedgerQuery::all().steps([Step::Finalize, Step::Download]);
    assert_eq!(s.ledger(&acme).unwrap(), [rows[1].clone(), rows[0].clone()]);
    // The two newest rows are local: the limit still finds one request row.
    assert_eq!(s.ledger(&acme.limit(1)).unwrap(), [rows[1].clone()]);
    assert_eq!(s.ledger(&LedgerQuery::all().steps([])).unwrap(), []);
    assert_eq!(s.ledger(&LedgerQuery::all()).unwrap().len(), 4);
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
fn a_retention_replaced_while_open_rules_the_next_prune() {
    let f = fixture_with(Retention {
        max_age: Duration::from_secs(86400),
        max_rows: 100,
        prune_every: 0,
    });
    for i in 0..8 {
        f.store
            .append_outcome(&outcome("z", None, OutcomeClass::Ok, i * 60))
            .unwrap();
    }
    assert_eq!(f.store.prune_ledger().unwrap(), PruneReport::default());
    let tighter = Retention {
        max_age: Duration::from_secs(86400),
        max_rows: 3,
        prune_every: 0,
    };
    f.store.set_retention(tighter);
    assert_eq!(f.store.retention(), tighter);
    assert_eq!(f.store.prune_ledger().unwrap().by_rows, 5);
    assert_eq!(f.store.ledger(&LedgerQuery::all()).unwrap().len(), 3);
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
