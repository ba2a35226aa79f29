//! `renewd run` under a stand-in for systemd: the notify socket, the watchdog, SIGHUP,
//! SIGSTOP/SIGCONT and SIGTERM, with the real binary.

use std::process::Command;
use std::time::Duration;

use crate::harness::{Daemon, Scene, assert_cadence, has, renewd, value, wait_state};

fn is_ready(m: &str) -> bool {
    has(m, "READY=1")
}

fn is_ping(m: &str) -> bool {
    has(m, "WATCHDOG=1")
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[test]
fn ready_with_status_then_sigterm_stops_cleanly() {
    let scene = Scene::new();
    scene.write_config(2, "");
    let mut socket = scene.notify_socket();
    let mut daemon = Daemon::start(&scene, &socket, &[]);
    let ready = socket.expect("READY=1", is_ready);
    let status = value(&ready, "STATUS").unwrap();
    // READY follows the first scan: both certificates are known (missing, so due now).
    assert!(status.starts_with("2 certificates: "), "{status}");

    daemon.signal("TERM");
    socket.expect("STOPPING=1", |m| has(m, "STOPPING=1"));
    let (status, stdout) = daemon.wait_exit();
    assert_eq!(status.code(), Some(0));
    assert_eq!(stdout, "", "nothing but results on stdout");
}

#[test]
fn sigint_stops_cleanly_too() {
    let scene = Scene::new();
    scene.write_config(1, "");
    let mut socket = scene.notify_socket();
    let mut daemon = Daemon::start(&scene, &socket, &[]);
    socket.expect("READY=1", is_ready);
    daemon.signal("INT");
    socket.expect("STOPPING=1", |m| has(m, "STOPPING=1"));
    assert_eq!(daemon.wait_exit().0.code(), Some(0));
}

#[test]
fn an_invalid_config_at_start_exits_78_before_ready() {
    let scene = Scene::new();
    scene.write_raw_config("state_dir = \"relative\"\n");
    let mut socket = scene.notify_socket();
    let mut daemon = Daemon::start(&scene, &socket, &[]);
    let (status, stdout) = daemon.wait_exit();
    assert_eq!(status.code(), Some(78));
    assert_eq!(stdout, "");
    let errors: Vec<serde_json::Value> = daemon
        .stderr_lines()
        .iter()
        .map(|l| json(l))
        .filter(|v| v["level"] == "ERROR")
        .collect();
    let prefix = format!("{}:1:13: ", scene.config_path().display());
    assert!(
        errors
            .iter()
            .any(|e| e["message"].as_str().unwrap().starts_with(&prefix)),
        "{errors:?}"
    );
    socket.drain();
    assert!(
        !socket.seen.iter().any(|m| is_ready(m)),
        "{:?}",
        socket.seen
    );
}

#[test]
fn watchdog_pings_at_half_the_interval_and_stop_while_the_process_is_stopped() {
    let scene = Scene::new();
    scene.write_config(1, "");
    let mut socket = scene.notify_socket();
    let daemon = Daemon::start(&scene, &socket, &[("WATCHDOG_USEC", "200000")]);
    socket.expect("READY=1", is_ready);

    // Every 100 ms: judged by the median interval, robust to a stall of a busy machine.
    let window = Duration::from_millis(1500);
    let pings = socket.arrivals_during(window, is_ping);
    assert_cadence(&pings, window, Duration::from_millis(100));

    daemon.signal("STOP");
    wait_state(daemon.pid(), 'T');
    socket.drain(); // pings sent before the stop took effect
    let while_stopped = socket.during(Duration::from_millis(600));
    assert!(
        !while_stopped.iter().any(|m| is_ping(m)),
        "pinged while stopped: {while_stopped:?}"
    );

    daemon.signal("CONT");
    socket.expect("WATCHDOG=1 after SIGCONT", is_ping);
}

#[test]
fn a_watchdog_for_another_pid_is_not_ours() {
    let scene = Scene::new();
    scene.write_config(1, "");
    let mut socket = scene.notify_socket();
    let _daemon = Daemon::start(
        &scene,
        &socket,
        &[("WATCHDOG_USEC", "200000"), ("WATCHDOG_PID", "1")],
    );
    socket.expect("READY=1", is_ready);
    let later = socket.during(Duration::from_millis(700));
    assert!(!later.iter().any(|m| is_ping(m)), "{later:?}");
}

#[test]
fn a_watchdog_for_our_own_pid_is_ours() {
    let scene = Scene::new();
    scene.write_config(1, "");
    let mut socket = scene.notify_socket();
    // The shell's pid is renewd's after `exec`, so WATCHDOG_PID=$$ names renewd.
    let renewd_path = renewd().get_program().to_owned();
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" --config \"$1\" --log-format json run")
        .arg(renewd_path)
        .arg(scene.config_path())
        .env("NOTIFY_SOCKET", &socket.path)
        .env("WATCHDOG_USEC", "200000")
        .env_remove("WATCHDOG_PID");
    let _daemon = Daemon::spawn(cmd);
    socket.expect("READY=1", is_ready);
    socket.expect("WATCHDOG=1", is_ping);
}

#[test]
fn sighup_with_a_valid_changed_config_reloads() {
    let scene = Scene::new();
    scene.write_config(1, "");
    let mut socket = scene.notify_socket();
    let daemon = Daemon::start(&scene, &socket, &[]);
    let ready = socket.expect("READY=1", is_ready);
    assert!(
        value(&ready, "STATUS")
            .unwrap()
            .starts_with("1 certificate: ")
    );

    scene.write_config(2, "");
    daemon.signal("HUP");
    let reloading = socket.expect("RELOADING=1", |m| has(m, "RELOADING=1"));
    // systemd wants MONOTONIC_USEC in the same message as RELOADING=1.
    let usec: u64 = value(&reloading, "MONOTONIC_USEC")
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"))
        .parse()
        .unwrap();
    assert!(usec > 0);
    let ready = socket.expect("READY=1 after the reload", is_ready);
    let status = value(&ready, "STATUS").unwrap();
    assert!(!status.contains("refused"), "{status}");
    // The scheduler takes the new plans right after; STATUS= follows.
    if !status.starts_with("2 certificates") {
        socket.expect("STATUS= with the new certificate", |m| {
            value(m, "STATUS").is_some_and(|s| s.starts_with("2 certificates"))
        });
    }
    daemon.expect_stderr("the reload summary", |l| {
        json(l)["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("reloaded: certs +cert1"))
    });
}

#[test]
fn sighup_with_an_invalid_config_keeps_the_old_one() {
    let scene = Scene::new();
    scene.write_config(1, "");
    let mut socket = scene.notify_socket();
    let daemon = Daemon::start(&scene, &socket, &[]);
    socket.expect("READY=1", is_ready);

    // Two certificates, but [daemon] workers out of range: refused as a whole.
    scene.write_config(2, "");
    let text = std::fs::read_to_string(scene.config_path()).unwrap();
    scene.write_raw_config(&text.replace("[daemon]\n", "[daemon]\nworkers = 0\n"));
    daemon.signal("HUP");
    socket.expect("RELOADING=1", |m| has(m, "RELOADING=1"));
    let ready = socket.expect("READY=1 after the refused reload", is_ready);
    let status = value(&ready, "STATUS").unwrap();
    assert!(
        status.starts_with("reload refused (1 problem in "),
        "{status}"
    );
    assert!(
        status.contains("; 1 certificate:"),
        "old config kept: {status}"
    );
    let prefix = format!("{}:3:11: ", scene.config_path().display());
    daemon.expect_stderr("the config error at error level", |l| {
        let v = json(l);
        v["level"] == "ERROR"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(&prefix))
    });

    // Fixed: the next reload goes through and the refusal leaves STATUS.
    scene.write_config(2, "");
    daemon.signal("HUP");
    socket.expect("RELOADING=1", |m| has(m, "RELOADING=1"));
    let ready = socket.expect("READY=1", is_ready);
    let status = value(&ready, "STATUS").unwrap();
    assert!(!status.contains("refused"), "{status}");
    if !status.starts_with("2 certificates") {
        socket.expect("STATUS= with the new certificate", |m| {
            value(m, "STATUS").is_some_and(|s| s.starts_with("2 certificates"))
        });
    }
}

#[test]
fn sighup_with_an_unreadable_config_keeps_the_old_one() {
    let scene = Scene::new();
    scene.write_config(1, "");
    let mut socket = scene.notify_socket();
    let daemon = Daemon::start(&scene, &socket, &[]);
    socket.expect("READY=1", is_ready);
    std::fs::remove_file(scene.config_path()).unwrap();
    daemon.signal("HUP");
    let ready = socket.expect("READY=1 after the refused reload", is_ready);
    let status = value(&ready, "STATUS").unwrap();
    assert!(status.contains("cannot read the config file"), "{status}");
    assert!(status.contains("; 1 certificate:"), "{status}");
}

#[test]
fn a_taken_http01_port_at_start_is_one_clear_error_before_ready() {
    let scene = Scene::new();
    let port = scene.http01_port;
    let _blocker = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    scene.write_config(1, "");
    let mut socket = scene.notify_socket();
    let mut daemon = Daemon::start(&scene, &socket, &[]);
    assert_eq!(daemon.wait_exit().0.code(), Some(1));
    let line = daemon.expect_stderr("the bind error", |l| {
        l.contains(&format!("could not listen on 127.0.0.1:{port} for http-01"))
    });
    // The OS error once, with the hint; not repeated by the error chain.
    assert_eq!(line.matches("os error 98").count(), 1, "{line}");
    assert!(
        line.contains("is another web server on this port?"),
        "{line}"
    );
    socket.drain();
    assert!(!socket.seen.iter().any(|m| has(m, "READY=1")));
}
