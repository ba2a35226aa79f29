//! The real binary against real CAs: test CAs (renewd-testca, in this process) or pebble,
//! a config in a temp directory, `renewd run` with a notify socket, and the CLI to read
//! what happened. Waits poll the store through the CLI (or the CA's counters) with a
//! deadline; nothing sleeps in place of an event.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use renewd_testca::{TestCaBuilder, TestCaHandle};
use serde_json::Value;

use crate::harness::{Daemon, NotifySocket, Scene, has, renewd};

/// How long a whole flow (issuance of a batch, a failover) may take on a loaded machine.
pub const FLOW: Duration = Duration::from_secs(90);

/// The pause between two looks at the store while waiting for a state.
const LOOK_AGAIN: Duration = Duration::from_millis(100);

/// One `[[ca]]`.
pub struct Ca {
    pub name: String,
    pub directory: String,
    /// PEM of its HTTPS root, written next to the config.
    pub root_pem: String,
    /// Extra `[[ca]]` lines.
    pub extra: String,
    /// The test CA behind it, when it is one.
    pub testca: Option<TestCaHandle>,
}

impl Ca {
    /// A running test CA.
    pub async fn testca(name: &str, builder: TestCaBuilder, extra: &str) -> Ca {
        let handle = builder.start().await.unwrap();
        Ca {
            name: name.into(),
            directory: handle.directory_url(),
            root_pem: handle.root_pem(),
            extra: extra.into(),
            testca: Some(handle),
        }
    }

    /// Any directory (pebble, a closed port) with its HTTPS root.
    pub fn at(name: &str, directory: &str, root_pem: &str, extra: &str) -> Ca {
        Ca {
            name: name.into(),
            directory: directory.into(),
            root_pem: root_pem.into(),
            extra: extra.into(),
            testca: None,
        }
    }

    pub fn handle(&self) -> &TestCaHandle {
        self.testca.as_ref().expect("a test CA")
    }
}

/// The scene, its CAs, the daemon (when running) and its notify socket.
pub struct Lab {
    pub scene: Scene,
    pub cas: Vec<Ca>,
    pub socket: NotifySocket,
    pub daemon: Option<Daemon>,
}

impl Lab {
    /// A scene (free ports chosen) and its CAs, built knowing the scene's http-01 port.
    pub fn new(scene: Scene, cas: Vec<Ca>) -> Lab {
        for ca in &cas {
            std::fs::write(scene.path(&format!("{}-root.pem", ca.name)), &ca.root_pem).unwrap();
        }
        let socket = scene.notify_socket();
        Lab {
            scene,
            cas,
            socket,
            daemon: None,
        }
    }

    pub fn ca(&self, name: &str) -> &TestCaHandle {
        self.cas
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no CA {name}"))
            .handle()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.scene.path("state")
    }

    /// Writes the config: `[daemon]` settings, `sections` (TOML: `[http01]` and the like,
    /// defaulting to the standalone responder on the scene's port), every CA, and `certs`
    /// as `(name, cas, extra [[cert]] lines)` for `NAME.example.test` (unless the extra
    /// lines set `domains`).
    pub fn write_config(&self, daemon: &str, sections: &str, certs: &[(&str, &[&str], &str)]) {
        let mut t = format!(
            "state_dir = \"{}\"\n\n[daemon]\nshutdown_grace = \"10s\"\n{daemon}\n\n",
            self.state_dir().display()
        );
        if sections.contains("[http01]") {
            t += sections;
        } else {
            t += &format!(
                "[http01]\nlisten = [\"127.0.0.1:{}\"]\n{sections}",
                self.scene.http01_port
            );
        }
        t += "\n";
        for ca in &self.cas {
            t += &format!(
                "\n[[ca]]\nname = \"{}\"\ndirectory = \"{}\"\ntrust_roots = [\"{}\"]\n",
                ca.name,
                ca.directory,
                self.scene.path(&format!("{}-root.pem", ca.name)).display()
            );
            if !ca.extra.contains("requests_per_second") {
                t += "requests_per_second = 1000\n";
            }
            t += &ca.extra;
            t += "\n";
        }
        for (name, cas, extra) in certs {
            let list: Vec<String> = cas.iter().map(|c| format!("\"{c}\"")).collect();
            t += &format!(
                "\n[[cert]]\nname = \"{name}\"\ncas = [{}]\n",
                list.join(", ")
            );
            if !extra.contains("domains") {
                t += &format!("domains = [\"{name}.example.test\"]\n");
            }
            t += extra;
            t += "\n";
        }
        self.scene.write_raw_config(&t);
    }

    /// Starts `renewd run` and waits for READY=1; returns that message.
    pub fn start(&mut self, env: &[(&str, &str)]) -> String {
        assert!(self.daemon.is_none(), "a daemon is running already");
        let mut daemon = Daemon::start(&self.scene, &self.socket, env);
        let ready = self
            .socket
            .expect_from(&mut daemon, "READY=1", |m| has(m, "READY=1"));
        self.daemon = Some(daemon);
        ready
    }

    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("the daemon runs")
    }

    /// SIGTERM, STOPPING=1, exit 0; returns how long the exit took.
    pub fn stop(&mut self) -> Duration {
        let mut daemon = self.daemon.take().expect("the daemon runs");
        let asked = Instant::now();
        daemon.signal("TERM");
        self.socket.expect("STOPPING=1", |m| has(m, "STOPPING=1"));
        let (status, stdout) = daemon.wait_exit();
        assert_eq!(status.code(), Some(0), "{:#?}", daemon.stderr_lines());
        assert_eq!(stdout, "");
        asked.elapsed()
    }

    /// SIGKILL, and the process reaped.
    pub fn kill(&mut self) {
        drop(self.daemon.take().expect("the daemon runs"));
    }

    /// `renewd --config CONFIG ARGS`, off the async workers.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = renewd();
        cmd.arg("--config")
            .arg(self.scene.config_path())
            .args(args)
            .stdin(Stdio::null());
        tokio::task::block_in_place(|| cmd.output().unwrap())
    }

    /// A `renewd … ARGS` command ready to spawn (for runs in the background).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = renewd();
        cmd.arg("--config").arg(self.scene.config_path()).args(args);
        cmd
    }

    fn json(&self, args: &[&str]) -> Vec<Value> {
        let out = self.cli(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `status --json`.
    pub fn status(&self) -> Vec<Value> {
        self.json(&["status", "--json"])
    }

    /// One certificate's `status --json` row.
    pub fn status_of(&self, cert: &str) -> Value {
        self.status()
            .into_iter()
            .find(|r| r["name"] == cert)
            .unwrap_or_else(|| panic!("no status row for {cert}"))
    }

    /// `ledger --json --limit 0 ARGS`.
    pub fn ledger(&self, args: &[&str]) -> Vec<Value> {
        let mut full = vec!["ledger", "--json", "--limit", "0"];
        full.extend_from_slice(args);
        self.json(&full)
    }

    /// `ledger --json --limit 0 ARGS`, or `None` while the store cannot be read yet (another
    /// process is creating it).
    pub fn try_ledger(&self, args: &[&str]) -> Option<Vec<Value>> {
        let mut full = vec!["ledger", "--json", "--limit", "0"];
        full.extend_from_slice(args);
        let out = self.cli(&full);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    }

    /// `ca --json`.
    pub fn ca_rows(&self) -> Vec<Value> {
        self.json(&["ca", "--json"])
    }

    /// Waits until every certificate's state is `valid`; returns the status rows.
    pub fn wait_all_valid(&self, within: Duration) -> Vec<Value> {
        self.wait_for("every certificate valid", within, || {
            let rows = self.status();
            rows.iter().all(|r| r["state"] == "valid").then_some(rows)
        })
    }

    /// Polls `look` until it gives a value, or panics after `within` with the daemon's
    /// last log lines.
    pub fn wait_for<T>(
        &self,
        what: &str,
        within: Duration,
        mut look: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + within;
        loop {
            if let Some(v) = look() {
                return v;
            }
            if Instant::now() >= deadline {
                let tail: Vec<String> = self
                    .daemon
                    .as_ref()
                    .map(|d| d.stderr_lines())
                    .unwrap_or_default()
                    .into_iter()
                    .rev()
                    .take(40)
                    .collect();
                panic!(
                    "not {what} within {within:?}; status: {:#?}\ndaemon log (newest first): {tail:#?}",
                    self.status()
                );
            }
            std::thread::sleep(LOOK_AGAIN);
        }
    }
}

/// An executable shell script in `dir`.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\nset -eu\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// `(name, cas, "")` for `n` certificates `c0`, `c1`, …
pub fn numbered(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("c{i}")).collect()
}

/// A serial as `status --json` spells it: lower-case hex without leading zeros.
pub fn serial_form(hex: &str) -> String {
    let s = hex.to_ascii_lowercase();
    let t = s.trim_start_matches('0');
    if t.is_empty() { "0".into() } else { t.into() }
}

/// Whether `step` is one `ledger --json` may show by default: a step of `CONTRACT.md`'s
/// list (which renewd-core's `contract_labels` test pins `Step::ISSUANCE_REQUESTS` to).
pub fn is_contract_step(step: &str) -> bool {
    step.parse::<renewd_core::Step>()
        .is_ok_and(renewd_core::Step::is_issuance_request)
}

/// The text of a string JSON value.
pub fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}
