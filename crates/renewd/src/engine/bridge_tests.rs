use std::path::Path;

use chrono::TimeDelta;
use renewd_config::LoadEnv;
use renewd_core::{SystemClock, Urgency};
use renewd_store::{SqliteOptions, SqliteStore};

use super::*;
use crate::log_fields::{ALARM, ALARM_TARGET, CERT_NAME};
use crate::test_support::capture;

struct Rig {
    _dir: tempfile::TempDir,
    bridge: Bridge,
    scheduler: mpsc::Receiver<SchedulerCommand>,
    finished: broadcast::Receiver<WorkDone>,
    open: watch::Receiver<OpenCircuits>,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "state_dir = \"{}\"\n[[ca]]\nname = \"a\"\ndirectory = \"https://a.invalid/dir\"\n\
         [http01]\nlisten = [\"127.0.0.1:0\"]\n\
         [[cert]]\nname = \"www\"\ndomains = [\"www.example.test\"]\ncas = [\"a\"]\n",
        dir.path().join("state").display()
    );
    let config = Config::from_str(&text, Path::new("t.toml"), &LoadEnv::default()).unwrap();
    let store = SqliteStore::open_in(&config.state_dir, SqliteOptions::default()).unwrap();
    let (sched_tx, scheduler) = mpsc::channel(16);
    let (finished_tx, finished) = broadcast::channel(16);
    let (open_tx, open) = watch::channel(OpenCircuits::new());
    let (_, config_rx) = watch::channel(Arc::new(config));
    Rig {
        _dir: dir,
        bridge: Bridge {
            store: Arc::new(store),
            clock: Arc::new(SystemClock),
            metrics: Metrics::new(),
            config: config_rx,
            scheduler: sched_tx,
            finished: finished_tx,
            open_circuits: open_tx,
        },
        scheduler,
        finished,
        open,
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn series(metrics: &Metrics, prefix: &str) -> Option<f64> {
    metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(prefix)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn a_circuit_change_reaches_the_scheduler_the_metrics_and_the_status() {
    let mut r = rig();
    let ca = CaName::new("a").unwrap();
    let until = Utc::now() + TimeDelta::minutes(5);
    block_on(r.bridge.event(IssuerEvent::CircuitChanged {
        ca: ca.clone(),
        state: CircuitState::Open,
        open_until: Some(until),
    }));
    assert!(matches!(
        r.scheduler.try_recv(),
        Ok(SchedulerCommand::CircuitChanged(c)) if c == ca
    ));
    assert_eq!(
        series(
            &r.bridge.metrics,
            r#"renewd_ca_circuit_state{ca="a",state="open"}"#
        ),
        Some(1.0)
    );
    assert_eq!(r.open.borrow_and_update().get(&ca), Some(&Some(until)));

    block_on(r.bridge.event(IssuerEvent::CircuitChanged {
        ca: ca.clone(),
        state: CircuitState::HalfOpen,
        open_until: None,
    }));
    assert!(r.open.borrow().is_empty());
    assert_eq!(
        series(
            &r.bridge.metrics,
            r#"renewd_ca_circuit_state{ca="a",state="half_open"}"#
        ),
        Some(1.0)
    );
}

#[test]
fn expiry_danger_is_a_crit_alarm_and_a_metric_until_renewed() {
    let r = rig();
    let www = CertName::new("www").unwrap();
    let events = capture(|| {
        block_on(r.bridge.event(IssuerEvent::ExpiryDanger {
            cert: www.clone(),
            urgency: Urgency::Critical,
            not_after: Some(Utc::now() + TimeDelta::hours(20)),
        }))
    });
    let alarm = events
        .iter()
        .find(|e| e.target == ALARM_TARGET)
        .expect("an alarm event");
    assert_eq!(alarm.field(ALARM), Some("expiry_danger"));
    assert_eq!(alarm.field(CERT_NAME), Some("www"));
    let danger = r#"renewd_certificate_expiry_danger{cert="www"}"#;
    assert_eq!(series(&r.bridge.metrics, danger), Some(1.0));

    block_on(r.bridge.event(IssuerEvent::Renewed {
        cert: www.clone(),
        ca: CaName::new("a").unwrap(),
        serial: "1f".into(),
        not_after: Utc::now() + TimeDelta::days(90),
    }));
    assert_eq!(series(&r.bridge.metrics, danger), Some(0.0));
}

#[test]
fn work_done_goes_to_the_scheduler_and_to_waiting_requests() {
    let mut r = rig();
    let done = WorkDone {
        cert: CertName::new("www").unwrap(),
        was_renewal: true,
    };
    block_on(r.bridge.work_done(done.clone()));
    assert!(matches!(
        r.scheduler.try_recv(),
        Ok(SchedulerCommand::WorkDone(d)) if d == done
    ));
    assert_eq!(r.finished.try_recv().unwrap(), done);
    // Nothing installed: due now, so the next attempt is set (notAfter is not).
    assert!(
        series(
            &r.bridge.metrics,
            r#"renewd_certificate_next_attempt_seconds{cert="www"}"#
        )
        .is_some()
    );
    assert!(
        series(
            &r.bridge.metrics,
            r#"renewd_certificate_not_after_seconds{cert="www"}"#
        )
        .is_none()
    );
}

fn install(r: &Rig, lived_days: i64, left_hours: i64) {
    let now = Utc::now();
    r.bridge
        .store
        .update_cert_state(&CertName::new("www").unwrap(), &mut |s| {
            s.installed = Some(renewd_store::InstalledCert {
                serial: "1f".into(),
                not_before: now - TimeDelta::days(lived_days),
                not_after: now + TimeDelta::hours(left_hours),
                issuer_ca: Some(CaName::new("a").unwrap()),
                account_url: None,
                ari_cert_id: None,
            });
        })
        .unwrap();
}

#[test]
fn a_certificate_already_critical_is_in_danger_from_the_start() {
    let r = rig();
    // 89 days lived, 20 hours left: under 7 % of the lifetime, no job has run yet.
    install(&r, 89, 20);
    let config = r.bridge.config.borrow().clone();
    all_cert_metrics(
        r.bridge.store.as_ref(),
        &r.bridge.metrics,
        &config,
        Utc::now(),
    );
    let danger = r#"renewd_certificate_expiry_danger{cert="www"}"#;
    assert_eq!(series(&r.bridge.metrics, danger), Some(1.0));

    // Renewed meanwhile (another process): the next look at the store clears it.
    install(&r, 1, 89 * 24);
    r.bridge.cert_metrics(&CertName::new("www").unwrap());
    assert_eq!(series(&r.bridge.metrics, danger), Some(0.0));
}

#[test]
fn the_failure_streak_is_a_gauge_back_to_zero_after_a_success() {
    let r = rig();
    let www = CertName::new("www").unwrap();
    let streak = r#"renewd_certificate_failure_streak{cert="www"}"#;
    let config = r.bridge.config.borrow().clone();
    all_cert_metrics(
        r.bridge.store.as_ref(),
        &r.bridge.metrics,
        &config,
        Utc::now(),
    );
    assert_eq!(series(&r.bridge.metrics, streak), Some(0.0), "never tried");

    r.bridge
        .store
        .update_cert_state(&www, &mut |s| s.failure_streak = 4)
        .unwrap();
    block_on(r.bridge.work_done(WorkDone {
        cert: www.clone(),
        was_renewal: true,
    }));
    assert_eq!(series(&r.bridge.metrics, streak), Some(4.0));

    r.bridge
        .store
        .update_cert_state(&www, &mut |s| s.failure_streak = 0)
        .unwrap();
    block_on(r.bridge.event(IssuerEvent::Renewed {
        cert: www.clone(),
        ca: CaName::new("a").unwrap(),
        serial: "2e".into(),
        not_after: Utc::now() + TimeDelta::days(90),
    }));
    assert_eq!(series(&r.bridge.metrics, streak), Some(0.0));
}
