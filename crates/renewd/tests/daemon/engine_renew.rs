//! `renewd renew`: one pass in this process when no daemon runs, forwarded over the
//! daemon's control socket when one does — and never two orders for one certificate.

use std::process::Stdio;
use std::time::Duration;

use renewd_testca::{Endpoint, Fault, FaultPlan, TestCa};

use crate::harness::{Daemon, Scene, free_port, require_root};
use crate::lab::{Ca, FLOW, Lab, serial_form, text};

fn stdout(out: &std::process::Output) -> Vec<String> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn serial(lab: &Lab, cert: &str) -> String {
    text(&lab.status_of(cert)["serial"]).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_daemon_renew_issues_then_finds_nothing_due_then_forces() {
    let ca = Ca::testca("a", TestCa::builder(), "").await;
    let lab = Lab::new(Scene::new(), vec![ca]);
    lab.write_config("", "", &[("c0", &["a"], ""), ("c1", &["a"], "")]);

    let out = lab.cli(&["renew"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = stdout(&out);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, cert) in lines.iter().zip(["c0", "c1"]) {
        assert!(
            line.starts_with(&format!("{cert}: renewed by a (serial ")),
            "{line}"
        );
        assert!(line.contains(&serial(&lab, cert)), "{line}");
    }
    assert!(!lab.state_dir().join("control.sock").exists());

    let out = lab.cli(&["renew"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = stdout(&out);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines.iter().all(|l| l.contains(": not due (next renewal ")),
        "{lines:?}"
    );
    assert_eq!(lab.ca("a").counts().orders_created, 2);

    let (c0, c1) = (serial(&lab, "c0"), serial(&lab, "c1"));
    let out = lab.cli(&["renew", "--force", "--cert", "c0"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).len(), 1);
    assert_ne!(serial(&lab, "c0"), c0);
    assert_eq!(serial(&lab, "c1"), c1);
    assert_eq!(lab.ca("a").counts().orders_created, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_with_ca_orders_only_at_that_ca() {
    let a = Ca::testca("a", TestCa::builder(), "").await;
    let b = Ca::testca("b", TestCa::builder(), "").await;
    let lab = Lab::new(Scene::new(), vec![a, b]);
    // a comes first: without --ca the pass would order there.
    lab.write_config("", "", &[("www", &["a", "b"], "")]);

    let out = lab.cli(&["renew", "--ca", "b"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = stdout(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("www: renewed by b (serial "),
        "{lines:?}"
    );
    assert_eq!(lab.status_of("www")["issuer_ca"], "b");
    let issued_by_b = lab.ca("b").certificates();
    assert_eq!(issued_by_b.len(), 1);
    assert_eq!(serial_form(&issued_by_b[0].serial), serial(&lab, "www"));
    let at_a = lab.ca("a").counts();
    assert_eq!(
        (at_a.orders_created, at_a.certificates_issued),
        (0, 0),
        "nothing ordered at a"
    );
    assert!(
        lab.ledger(&["--ca", "a", "--all-steps"]).is_empty(),
        "not even a probe at a"
    );

    // Forced again at b: a renewal at the issuing CA, which names the certificate it
    // replaces (ARI). Then without --ca: a, first in the list, and no `replaces` there.
    let out = lab.cli(&["renew", "--force", "--ca", "b"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out)[0].starts_with("www: renewed by b"));
    assert_eq!(lab.ca("a").counts().orders_created, 0);
    let at_b = lab.ca("b").counts();
    assert_eq!((at_b.orders_created, at_b.orders_replacing), (2, 1));
    let out = lab.cli(&["renew", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out)[0].starts_with("www: renewed by a"));
    let at_a = lab.ca("a").counts();
    assert_eq!((at_a.orders_created, at_a.orders_replacing), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_ca_makes_renew_exit_1_with_the_error_on_stderr() {
    // A directory on a port nothing listens on (the root is only there to be valid).
    let root = TestCa::builder().start().await.unwrap().root_pem();
    let down = Ca::at(
        "down",
        &format!("https://127.0.0.1:{}/dir", free_port()),
        &root,
        "",
    );
    let lab = Lab::new(Scene::new(), vec![down]);
    lab.write_config("", "", &[("www", &["down"], "")]);
    let out = lab.cli(&["renew", "--cert", "www"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), ["www: failed (ca_unavailable)"]);
    let err = stderr(&out);
    assert!(err.contains("renewd renew: www: "), "{err}");
    assert!(err.contains("down"), "{err}");
    let row = lab.status_of("www");
    assert_eq!(row["state"], "failing", "{row}");
    assert!(row["last_error"].is_string(), "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alongside_a_daemon_renew_goes_through_its_control_socket() {
    let ca = Ca::testca("a", TestCa::builder(), "").await;
    let mut lab = Lab::new(Scene::new(), vec![ca]);
    lab.write_config("", "", &[("c0", &["a"], ""), ("c1", &["a"], "")]);
    lab.start(&[]);
    lab.wait_all_valid(FLOW);
    let socket = lab.state_dir().join("control.sock");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&socket).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    // The daemon holds the http-01 port: only the daemon can run this renewal.
    let before = serial(&lab, "c0");
    let out = lab.cli(&["renew", "--force", "--cert", "c0"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = stdout(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let now = serial(&lab, "c0");
    assert_ne!(now, before);
    assert!(
        lines[0].starts_with(&format!("c0: renewed by a (serial {now}, ")),
        "{lines:?}"
    );
    lab.daemon().expect_stderr("the forwarded request", |l| {
        l.contains("renew requested on the control socket")
    });
    assert_eq!(lab.ca("a").counts().orders_created, 3);

    let out = lab.cli(&["renew"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).iter().all(|l| l.contains("not due")),
        "{out:?}"
    );

    // A daemon killed leaves its socket file behind: renew runs here, and the next daemon
    // replaces the file.
    lab.kill();
    assert!(socket.exists());
    let out = lab.cli(&["renew", "--force", "--cert", "c1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(lab.ca("a").counts().orders_created, 4);
    lab.start(&[]);
    let out = lab.cli(&["renew", "--force", "--cert", "c1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(lab.ca("a").counts().orders_created, 5);
    // A second daemon on the same state directory refuses to start.
    let mut second = Daemon::spawn({
        let mut cmd = lab.command(&["run"]);
        cmd.stdout(Stdio::null());
        cmd
    });
    let (status, _) = second.wait_exit();
    assert_eq!(status.code(), Some(1));
    assert!(
        second
            .stderr_lines()
            .iter()
            .any(|l| l.contains("another renewd daemon is running")),
        "{:#?}",
        second.stderr_lines()
    );
    lab.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_during_the_daemons_own_renewal_of_that_certificate_makes_one_order() {
    let slow = TestCa::builder()
        .fault_plan(FaultPlan::new().rule(
            Endpoint::Finalize,
            // Until the test releases it (`release_processing`).
            Fault::processing_for(Duration::from_secs(3600)),
        ))
        .poll_retry_after(Duration::from_secs(1));
    let ca = Ca::testca("a", slow, "").await;
    let mut lab = Lab::new(Scene::new(), vec![ca]);
    lab.write_config("", "", &[("www", &["a"], "")]);
    lab.start(&[]);
    lab.wait_for("the daemon's order finalized", FLOW, || {
        lab.ledger(&["--cert", "www"])
            .iter()
            .any(|r| r["step"] == "finalize")
            .then_some(())
    });
    let mut renew = Daemon::spawn(lab.command(&["renew", "--force", "--cert", "www"]));
    // The request joined the daemon's renewal while its order still waits at the CA.
    lab.daemon().expect_stderr("the renew request taken", |l| {
        l.contains("renew request taken: 0 queued, 1 already in flight")
    });
    assert_eq!(lab.ca("a").release_processing(), 1);
    let (status, out) = renew.wait_exit();
    assert_eq!(status.code(), Some(0), "{:#?}", renew.stderr_lines());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("www: renewed by a"), "{lines:?}");
    let counts = lab.ca("a").counts();
    assert_eq!(counts.orders_created, 1, "one order at the CA");
    assert_eq!(counts.certificates_issued, 1);
    assert_eq!(lab.status_of("www")["state"], "valid");
    lab.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_renew_stops_cleanly_and_the_next_one_resumes_its_order() {
    let slow = TestCa::builder()
        .fault_plan(FaultPlan::new().rule(
            Endpoint::Finalize,
            // Until the test releases it (`release_processing`).
            Fault::processing_for(Duration::from_secs(3600)),
        ))
        .poll_retry_after(Duration::from_secs(1));
    let ca = Ca::testca("a", slow, "").await;
    let lab = Lab::new(Scene::new(), vec![ca]);
    lab.write_config("", "", &[("www", &["a"], "")]);
    let mut renew = Daemon::spawn(lab.command(&["renew"]));
    lab.wait_for("the order finalized", FLOW, || {
        lab.try_ledger(&["--cert", "www"])?
            .iter()
            .any(|r| r["step"] == "finalize")
            .then_some(())
    });
    renew.signal("INT");
    let (status, out) = renew.wait_exit();
    assert_eq!(status.code(), Some(1));
    assert!(
        out.starts_with("www: not renewed: interrupted"),
        "{out:?}\n{:#?}",
        renew.stderr_lines()
    );
    assert_eq!(lab.status_of("www")["state"], "renewing");

    assert_eq!(lab.ca("a").release_processing(), 1);
    let out = lab.cli(&["renew"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out)[0].starts_with("www: renewed by a"));
    assert_eq!(
        lab.ca("a").counts().orders_created,
        1,
        "the same order, resumed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_does_not_run_the_pass_in_the_daemon_users_state_directory() {
    use std::os::unix::fs::MetadataExt;
    require_root("refusing a pass run by root in another user's state directory");
    const NOBODY: u32 = 65534;
    let ca = Ca::testca("a", TestCa::builder(), "").await;
    let lab = Lab::new(Scene::new(), vec![ca]);
    lab.write_config("", "", &[("www", &["a"], "")]);
    std::fs::create_dir(lab.state_dir()).unwrap();
    std::os::unix::fs::chown(lab.state_dir(), Some(NOBODY), Some(NOBODY)).unwrap();
    let out = lab.cli(&["renew"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("belongs to uid 65534: run the pass as that user"),
        "{err}"
    );
    assert_eq!(lab.ca("a").counts().orders_created, 0);
    let created: Vec<_> = std::fs::read_dir(lab.state_dir()).unwrap().collect();
    assert!(created.is_empty(), "nothing written");
    assert_eq!(std::fs::metadata(lab.state_dir()).unwrap().uid(), NOBODY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_tries_a_certificate_backing_off_after_a_failure_again_at_once() {
    // The CA answers new orders with 503 at first: the renewal fails and backs off.
    let flaky = TestCa::builder()
        .fault_plan(FaultPlan::new().rule(Endpoint::NewOrder, Fault::status(503).html()));
    let lab = Lab::new(Scene::new(), vec![Ca::testca("a", flaky, "").await]);
    lab.write_config("", "", &[("www", &["a"], "")]);
    let out = lab.cli(&["renew"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let row = lab.status_of("www");
    assert_eq!(row["state"], "failing", "{row}");
    // The CA recovers. The operator asks again, without --force: the certificate is due
    // (it is missing), so renew tries it now rather than reporting it "not due" until its
    // back-off ends.
    lab.ca("a").set_fault_plan(FaultPlan::new()).unwrap();
    let out = lab.cli(&["renew"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = stdout(&out);
    assert!(lines[0].starts_with("www: renewed by a"), "{lines:?}");
    assert_eq!(lab.status_of("www")["state"], "valid");
}
