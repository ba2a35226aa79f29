use super::*;

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
        blocked_until: Some(t0() + TimeDelta::minutes(30)),
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
            not_offered_at: Some(t0() - TimeDelta::days(1)),
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
