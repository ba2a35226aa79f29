//! SIGHUP with the engine: a new certificate is scheduled and issued, a responder whose
//! address moved is restarted there, and a responder that cannot bind refuses the whole
//! reload with the old config (and its responders) kept.

use std::net::{SocketAddr, TcpListener, TcpStream};

use renewd_testca::TestCa;

use crate::harness::{Scene, free_port, has, value};
use crate::lab::{Ca, FLOW, Lab};

fn listening(port: u16) -> bool {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    TcpStream::connect(addr).is_ok()
}

fn sections(http: u16, tls: u16) -> String {
    format!(
        "[http01]\nlisten = [\"127.0.0.1:{http}\"]\n\n[tls_alpn01]\nlisten = [\"127.0.0.1:{tls}\"]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_schedules_new_certificates_and_moves_responders() {
    let ca = Ca::testca("a", TestCa::builder(), "").await;
    let mut lab = Lab::new(Scene::new(), vec![ca]);
    let (http1, tls1, http2) = (lab.scene.http01_port, free_port(), free_port());
    lab.write_config("", &sections(http1, tls1), &[("c0", &["a"], "")]);
    lab.start(&[]);
    lab.wait_all_valid(FLOW);
    assert!(listening(http1) && listening(tls1));

    // A new certificate, and http-01 moved to another port.
    lab.write_config(
        "",
        &sections(http2, tls1),
        &[("c0", &["a"], ""), ("c1", &["a"], "")],
    );
    lab.daemon().signal("HUP");
    let ready = lab
        .socket
        .expect("READY=1 after the reload", |m| has(m, "READY=1"));
    let status = value(&ready, "STATUS").unwrap();
    assert!(!status.contains("refused"), "{status}");
    lab.wait_all_valid(FLOW);
    assert_eq!(lab.ca("a").counts().orders_created, 2);
    assert!(listening(http2), "the new address answers");
    lab.wait_for("the old http-01 address closed", FLOW, || {
        (!listening(http1)).then_some(())
    });
    assert!(listening(tls1), "tls-alpn-01 did not move and kept running");

    // tls-alpn-01 onto a taken port: the reload is refused, everything stays as it was.
    let blocker = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = blocker.local_addr().unwrap().port();
    lab.write_config(
        "",
        &sections(http2, taken),
        &[("c0", &["a"], ""), ("c1", &["a"], ""), ("c2", &["a"], "")],
    );
    lab.daemon().signal("HUP");
    let ready = lab
        .socket
        .expect("READY=1 after the refused reload", |m| has(m, "READY=1"));
    let status = value(&ready, "STATUS").unwrap();
    assert!(status.starts_with("reload refused ("), "{status}");
    assert!(status.contains(&format!("127.0.0.1:{taken}")), "{status}");
    assert!(listening(http2) && listening(tls1));
    // The daemon kept the old config: it does not know c2 (the CLI reads the new file).
    let out = lab.cli(&["renew", "--force", "--cert", "c2"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "c2: not configured in the running daemon\n"
    );
    assert_eq!(lab.ca("a").counts().orders_created, 2);
    lab.daemon().expect_stderr("the refusal in the log", |l| {
        l.contains("reload refused, keeping the running config")
    });
    drop(blocker);
    lab.stop();
}

/// `[ledger]` changed by a reload applies at once: rows the new `max_age` no longer keeps
/// are pruned by the reload itself, not at some later start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_applies_a_changed_ledger_retention_at_once() {
    use std::time::Duration;

    use chrono::{TimeDelta, Utc};
    use renewd_core::{CaName, OutcomeClass, RequestOutcome, Step};
    use renewd_store::{SqliteOptions, SqliteStore, StateStore};

    let ca = Ca::testca("a", TestCa::builder(), "").await;
    let mut lab = Lab::new(Scene::new(), vec![ca]);
    let certs: &[(&str, &[&str], &str)] = &[("c0", &["a"], "")];
    lab.write_config("", "", certs);
    // A row ten days old: kept by the default retention (90 days).
    let store = SqliteStore::open_in(&lab.state_dir(), SqliteOptions::default()).unwrap();
    let old = Utc::now() - TimeDelta::days(10);
    store
        .append_outcome(&RequestOutcome {
            time: old,
            ca: CaName::new("a").unwrap(),
            account: None,
            cert: None,
            step: Step::Probe,
            http_status: Some(504),
            problem_type: None,
            class: OutcomeClass::CaUnavailable,
            latency: Duration::from_millis(20),
            order_url: None,
            detail: None,
        })
        .unwrap();
    drop(store);
    let is_old = |r: &serde_json::Value| r["class"] == "ca_unavailable" && r["step"] == "probe";

    lab.start(&[]);
    lab.wait_all_valid(FLOW);
    assert_eq!(lab.ledger(&[]).iter().filter(|r| is_old(r)).count(), 1);

    lab.write_config("", "[ledger]\nmax_age = \"1d\"\n", certs);
    lab.daemon().signal("HUP");
    let ready = lab
        .socket
        .expect("READY=1 after the reload", |m| has(m, "READY=1"));
    let status = value(&ready, "STATUS").unwrap();
    assert!(!status.contains("refused"), "{status}");
    let rows = lab.ledger(&[]);
    assert!(!rows.iter().any(is_old), "{rows:?}");
    assert!(!rows.is_empty(), "this run's rows stay");
    lab.daemon().expect_stderr("the change in the log", |l| {
        l.contains("[ledger] retention changed")
    });
    lab.stop();
}
