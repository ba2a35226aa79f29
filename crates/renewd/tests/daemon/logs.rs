//! Log formats: JSON lines, human lines, and journald detection through `$JOURNAL_STREAM`.

use std::path::Path;

use crate::harness::{Daemon, Scene, dev_ino, has, renewd};

fn run_until_ready_and_stop(
    mut daemon: Daemon,
    socket: &mut crate::harness::NotifySocket,
) -> Daemon {
    socket.expect("READY=1", |m| has(m, "READY=1"));
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit().0.code(), Some(0));
    daemon
}

#[test]
fn json_lines_on_stderr_with_log_format_json() {
    let scene = Scene::new();
    scene.write_config(1, "");
    let mut socket = scene.notify_socket();
    let daemon = run_until_ready_and_stop(Daemon::start(&scene, &socket, &[]), &mut socket);
    let lines = daemon.stderr_lines();
    assert!(lines.len() >= 3, "{lines:?}");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        assert!(v["message"].is_string(), "{line}");
    }
    assert!(
        lines.iter().any(|l| l.contains("\"message\":\"ready: ")),
        "{lines:?}"
    );
}

#[test]
fn the_config_log_format_applies_without_the_flag() {
    let scene = Scene::new();
    scene.write_config(1, "");
    let text = std::fs::read_to_string(scene.config_path()).unwrap();
    scene.write_raw_config(&text.replace("[daemon]\n", "[daemon]\nlog_format = \"json\"\n"));
    let mut socket = scene.notify_socket();
    let mut cmd = renewd();
    cmd.arg("--config")
        .arg(scene.config_path())
        .arg("run")
        .env("NOTIFY_SOCKET", &socket.path);
    let daemon = run_until_ready_and_stop(Daemon::spawn(cmd), &mut socket);
    let lines = daemon.stderr_lines();
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(line.starts_with('{'), "{line}");
    }
}

#[test]
fn human_lines_without_colour_when_stderr_is_not_a_terminal() {
    let scene = Scene::new();
    scene.write_config(1, "");
    let mut socket = scene.notify_socket();
    let mut cmd = renewd();
    cmd.arg("--config")
        .arg(scene.config_path())
        .args(["--log-format", "human", "run"])
        .env("NOTIFY_SOCKET", &socket.path);
    let daemon = run_until_ready_and_stop(Daemon::spawn(cmd), &mut socket);
    let lines = daemon.stderr_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("INFO") && l.contains("ready: ")),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains('\u{1b}')),
        "ANSI escapes: {lines:?}"
    );
    assert!(!lines.iter().any(|l| l.starts_with('{')), "{lines:?}");
}

/// Runs the daemon with stderr in a file and `JOURNAL_STREAM` set; returns the file's text.
fn stderr_with_journal_stream(scene: &Scene, journal_stream: impl Fn(&Path) -> String) -> String {
    let log = scene.path("stderr.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut socket = scene.notify_socket();
    let mut cmd = renewd();
    cmd.arg("--config")
        .arg(scene.config_path())
        .args(["--log-format", "auto", "run"])
        .env("NOTIFY_SOCKET", &socket.path)
        .env("JOURNAL_STREAM", journal_stream(&log));
    run_until_ready_and_stop(Daemon::spawn_stderr_to(cmd, file), &mut socket);
    std::fs::read_to_string(&log).unwrap()
}

#[test]
fn auto_chooses_journald_when_journal_stream_is_stderr() {
    let scene = Scene::new();
    scene.write_config(1, "");
    let text = stderr_with_journal_stream(&scene, dev_ino);
    if Path::new("/run/systemd/journal/socket").exists() {
        // Entries went to the journal, not to stderr.
        assert!(!text.contains("ready: "), "{text}");
    } else {
        // journald was chosen, found missing, and the fallback says so first.
        let first = text.lines().next().unwrap_or_default();
        assert!(first.contains("journald is not reachable"), "{text}");
        assert!(text.contains("ready: "), "{text}");
    }
}

#[test]
fn auto_stays_human_when_journal_stream_names_another_file() {
    let scene = Scene::new();
    scene.write_config(1, "");
    let other = scene.path("other");
    std::fs::write(&other, "").unwrap();
    let text = stderr_with_journal_stream(&scene, |_| dev_ino(&other));
    assert!(!text.contains("journald"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("INFO") && l.contains("ready: ")),
        "{text}"
    );
}
