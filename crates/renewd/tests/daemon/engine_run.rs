//! `renewd run` with the engine against renewd-testca validating http-01 for real on the
//! daemon's own responder: READY after the first scan, issuance and installation, the deploy
//! hook's environment, STATUS=, the watchdog driven by the scheduler loop, `/metrics`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use renewd_testca::{ChallengeMode, TestCa, Validators};

use crate::harness::{Scene, assert_cadence, free_port, has, http_get, value, wait_state};
use crate::lab::{Ca, FLOW, Lab, script, serial_form, text};

fn is_ping(m: &str) -> bool {
    has(m, "WATCHDOG=1")
}

/// `name{labels} value` lines of the Prometheus text, keyed by the series as printed.
fn samples(body: &str) -> BTreeMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            Some((series.to_string(), v.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_issues_installs_deploys_and_reports() {
    let scene = Scene::new();
    let validate = ChallengeMode::Validate(Validators {
        http01_port: Some(scene.http01_port),
        ..Validators::default()
    });
    let ca = Ca::testca("testca", TestCa::builder().challenge_mode(validate), "").await;
    let mut lab = Lab::new(scene, vec![ca]);
    let hook_log = lab.scene.path("deploy.log");
    let hook = script(
        lab.scene.dir.path(),
        "deploy",
        &format!(
            "env | grep '^RENEWD_' | sort > {}.$RENEWD_CERT_NAME",
            hook_log.display()
        ),
    );
    let metrics_port = free_port();
    lab.write_config(
        "",
        &format!("[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n"),
        &[
            (
                "www",
                &["testca"],
                &format!("deploy_hook = [\"{}\"]", hook.display()),
            ),
            ("api", &["testca"], ""),
        ],
    );

    // 200 ms: while the test waits for the issuance it does not read the notify socket, so
    // its queue (net.unix.max_dgram_qlen, 10) fills within a second; the daemon's sends must
    // not stall the issuance meanwhile (they once blocked a runtime worker).
    let ready = lab.start(&[("WATCHDOG_USEC", "200000")]);
    // READY follows the first scan: it already knows both certificates are missing.
    let status = value(&ready, "STATUS").unwrap();
    assert!(status.starts_with("2 certificates: "), "{status}");
    assert!(!status.contains("valid"), "{status}");

    let rows = lab.wait_all_valid(FLOW);
    let issued = lab.ca("testca").certificates();
    assert_eq!(issued.len(), 2, "one order each");
    for row in &rows {
        let serial = text(&row["serial"]);
        let at_ca = issued
            .iter()
            .find(|c| serial_form(&c.serial) == serial)
            .unwrap_or_else(|| panic!("{serial} not issued by the test CA: {issued:?}"));
        assert_eq!(
            at_ca.names,
            [format!("{}.example.test", text(&row["name"]))]
        );
        assert_eq!(row["issuer_ca"], "testca");
        let not_after: DateTime<Utc> = text(&row["not_after"]).parse().unwrap();
        assert_eq!(not_after, at_ca.not_after);
        let live = lab
            .state_dir()
            .join("certs")
            .join(text(&row["name"]))
            .join("live");
        for file in ["cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"] {
            assert!(live.join(file).is_file(), "{file}");
        }
        let mode = std::fs::metadata(live.join("privkey.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let counts = lab.ca("testca").counts();
    assert_eq!(
        counts.validations_passed, 2,
        "real http-01 on the daemon's responder"
    );

    // The deploy hook of www (only www has one) ran with the install's facts.
    let www = rows.iter().find(|r| r["name"] == "www").unwrap();
    let env = lab.wait_for("the deploy hook's output", FLOW, || {
        std::fs::read_to_string(format!("{}.www", hook_log.display())).ok()
    });
    let live = lab.state_dir().join("certs/www/live");
    for line in [
        "RENEWD_CERT_NAME=www".to_string(),
        "RENEWD_CA=testca".to_string(),
        "RENEWD_DOMAINS=www.example.test".to_string(),
        format!("RENEWD_SERIAL={}", text(&www["serial"])),
        format!("RENEWD_LIVE_DIR={}", live.display()),
        format!(
            "RENEWD_FULLCHAIN_PATH={}",
            live.join("fullchain.pem").display()
        ),
        format!("RENEWD_KEY_PATH={}", live.join("privkey.pem").display()),
        format!("RENEWD_CERT_PATH={}", live.join("cert.pem").display()),
        format!("RENEWD_CHAIN_PATH={}", live.join("chain.pem").display()),
        // The installed certificate's expiry, as `status --json` spells it (RFC 3339 UTC).
        format!("RENEWD_NOT_AFTER={}", text(&www["not_after"])),
    ] {
        assert!(env.lines().any(|l| l == line), "{line} not in {env}");
    }
    assert!(!std::path::Path::new(&format!("{}.api", hook_log.display())).exists());

    // STATUS= follows: both valid now.
    lab.socket.expect("STATUS= with both valid", |m| {
        value(m, "STATUS").is_some_and(|s| s.starts_with("2 certificates: 2 valid"))
    });

    // Idle, the scheduler loop still turns and the pings keep coming; stopped, they stop.
    // The pings queued while the test did not read (the socket's and the daemon's queues)
    // are drained first: arriving at once, they would pass for a cadence.
    lab.socket.drain();
    lab.socket.expect("a fresh WATCHDOG=1", is_ping);
    let window = Duration::from_millis(2000);
    let pings = lab.socket.arrivals_during(window, is_ping);
    assert_cadence(&pings, window, Duration::from_millis(100));
    let pid = lab.daemon().pid();
    lab.daemon().signal("STOP");
    wait_state(pid, 'T');
    lab.socket.drain();
    let stopped = lab.socket.during(Duration::from_millis(800));
    assert!(!stopped.iter().any(|m| is_ping(m)), "{stopped:?}");
    lab.daemon().signal("CONT");
    lab.socket.expect("WATCHDOG=1 after SIGCONT", is_ping);

    // Every request reached the metrics, and the certificate's notAfter is there.
    let addr = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    let (code, body) = tokio::task::block_in_place(|| http_get(addr, "/metrics")).unwrap();
    assert_eq!(code, 200);
    let m = samples(&body);
    let finalized = m
        .get(r#"renewd_acme_requests_total{ca="testca",step="finalize",class="ok"}"#)
        .copied();
    assert_eq!(finalized, Some(2.0), "{body}");
    let ledger_rows = lab.ledger(&["--ca", "testca", "--all-steps"]).len() as f64;
    let counted: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with(r#"renewd_acme_requests_total{ca="testca""#))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(
        counted, ledger_rows,
        "one count per ledger row, local steps too"
    );
    let not_after: DateTime<Utc> = text(&www["not_after"]).parse().unwrap();
    assert_eq!(
        m.get(r#"renewd_certificate_not_after_seconds{cert="www"}"#)
            .copied(),
        Some(not_after.timestamp() as f64)
    );

    let control = lab.state_dir().join("control.sock");
    assert!(control.exists());
    lab.stop();
    assert!(!control.exists(), "the control socket goes with the daemon");
}
