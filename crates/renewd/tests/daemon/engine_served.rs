//! `verify_served` through the daemon, against real TLS servers (`openssl s_server`): one
//! that the deploy hook restarts with the new certificate passes the check; one still
//! serving an old certificate is a `local` failure, logged with both serials, and the new
//! certificate stays installed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use renewd_testca::TestCa;

use crate::harness::{PROMPT, Scene, free_port};
use crate::lab::{Ca, FLOW, Lab, script, text};

/// Kills the `openssl s_server` whose pid is in a file (the one a deploy hook started) when
/// the test ends, however it ends.
struct KillPidFile(PathBuf);

impl Drop for KillPidFile {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// A child killed and reaped when the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `openssl s_server` arguments serving `cert` and `key` on 127.0.0.1:`port`.
fn s_server_args(port: u16, cert: &str, key: &str) -> Vec<String> {
    [
        "s_server",
        "-quiet",
        "-naccept",
        "1000",
        "-accept",
        &format!("127.0.0.1:{port}"),
        "-cert",
        cert,
        "-key",
        key,
    ]
    .map(String::from)
    .to_vec()
}

/// Waits until 127.0.0.1:`port` accepts connections.
fn wait_listening(port: u16) {
    let deadline = Instant::now() + PROMPT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A self-signed certificate for `name` and its key, as PEM files in `dir`; returns the
/// paths and the serial as renewd prints it.
fn stale_certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x0b, 0xad, 0xc0, 0xde]));
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.join("stale.pem"), dir.join("stale.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path, "badc0de".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_checks_what_the_servers_present_after_the_deploy_hook() {
    let ca = Ca::testca("a", TestCa::builder(), "").await;
    let mut lab = Lab::new(Scene::new(), vec![ca]);
    let dir = lab.scene.dir.path().to_path_buf();

    // "stale": a server that is never reloaded.
    let stale_port = free_port();
    let (cert, key, stale_serial) = stale_certificate(&dir, "stale.example.test");
    let _stale = Server(
        Command::new("openssl")
            .args(s_server_args(
                stale_port,
                cert.to_str().unwrap(),
                key.to_str().unwrap(),
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl runs (apt-get install openssl)"),
    );
    wait_listening(stale_port);

    // "fresh": its deploy hook (re)starts the server with the new certificate, as a reload
    // would, and leaves it running.
    let fresh_port = free_port();
    let pid_file = dir.join("fresh.pid");
    let _fresh = KillPidFile(pid_file.clone());
    let args = s_server_args(
        fresh_port,
        "\"$RENEWD_FULLCHAIN_PATH\"",
        "\"$RENEWD_KEY_PATH\"",
    )
    .join(" ");
    let hook = script(
        &dir,
        "reload-fresh",
        &format!(
            "openssl {args} </dev/null >/dev/null 2>&1 &\necho $! > {pid}\n\
             until openssl s_client -connect 127.0.0.1:{fresh_port} </dev/null >/dev/null 2>&1; \
             do sleep 0.05; done",
            pid = pid_file.display()
        ),
    );
    lab.write_config(
        "",
        "",
        &[
            (
                "stale",
                &["a"],
                &format!("verify_served = [\"127.0.0.1:{stale_port}\"]"),
            ),
            (
                "fresh",
                &["a"],
                &format!(
                    "deploy_hook = [\"{}\"]\nverify_served = [\"127.0.0.1:{fresh_port}\"]",
                    hook.display()
                ),
            ),
        ],
    );
    lab.start(&[]);
    let rows = lab.wait_all_valid(FLOW);

    // The stale server: a local failure naming both serials, reported loudly; nothing is
    // blamed on the CA and the new certificate stays.
    let stale_row = lab.wait_for("stale's served-certificate check", FLOW, || {
        lab.ledger(&["--cert", "stale", "--all-steps"])
            .into_iter()
            .find(|r| r["step"] == "deploy_hook")
    });
    assert_eq!(stale_row["class"], "local", "{stale_row}");
    let new_serial =
        |name: &str| text(&rows.iter().find(|r| r["name"] == name).unwrap()["serial"]).to_string();
    let stale_new = new_serial("stale");
    let line = lab.daemon().expect_stderr("the mismatch in the log", |l| {
        l.contains("verify_served") && l.contains(&stale_serial)
    });
    assert!(
        line.contains(&stale_new),
        "names the expected serial: {line}"
    );
    assert!(line.contains(&format!("127.0.0.1:{stale_port}")), "{line}");
    let status = lab.status_of("stale");
    assert_eq!(status["state"], "valid", "{status}");
    assert_eq!(status["serial"], stale_new.as_str());

    // The reloaded server presents the new certificate: no failure for "fresh".
    lab.wait_for("fresh's deploy recorded", FLOW, || {
        lab.ledger(&["--cert", "fresh", "--all-steps"])
            .into_iter()
            .find(|r| r["step"] == "deploy_hook")
    });
    let fresh: Vec<_> = lab
        .ledger(&["--cert", "fresh", "--all-steps"])
        .into_iter()
        .filter(|r| r["class"] != "ok")
        .collect();
    assert!(fresh.is_empty(), "{fresh:#?}");
    assert!(
        !lab.daemon()
            .stderr_lines()
            .iter()
            .any(|l| l.contains("verify_served") && l.contains("fresh")),
        "{:#?}",
        lab.daemon().stderr_lines()
    );
    let blamed: Vec<_> = lab
        .ledger(&["--all-steps"])
        .into_iter()
        .filter(|r| r["class"] != "ok" && r["class"] != "local")
        .collect();
    assert!(blamed.is_empty(), "{blamed:#?}");
    lab.stop();
}
