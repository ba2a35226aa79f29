//! Running the real `renewd` binary: configs in a temp directory, a notify socket standing
//! in for systemd, stderr collected line by line, and a guard that kills the child.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Deadline for anything the daemon should do promptly (READY, a reload, an exit).
pub const PROMPT: Duration = Duration::from_secs(15);

pub fn renewd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_renewd"));
    for var in [
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "JOURNAL_STREAM",
        "RUST_LOG",
        "RENEWD_CONFIG",
        "CREDENTIALS_DIRECTORY",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `renewd ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    renewd().args(args).stdin(Stdio::null()).output().unwrap()
}

/// A temp directory holding a config file and the state directory it names, and the ports
/// its configs use: two CAs nothing listens on (connections are refused) and the http-01
/// responder's.
pub struct Scene {
    pub dir: tempfile::TempDir,
    pub ca_ports: [u16; 2],
    pub http01_port: u16,
}

impl Scene {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            ca_ports: [free_port(), free_port()],
            http01_port: free_port(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("renewd.toml")
    }

    /// Writes the config: `certs` certificates, and `extra` TOML appended. Its CAs refuse
    /// connections, so the engine's renewals fail (and back off) without reaching anyone.
    pub fn write_config(&self, certs: usize, extra: &str) {
        let [a, b] = self.ca_ports;
        let mut text = format!(
            "state_dir = \"{}\"\n\
             [daemon]\nshutdown_grace = \"2s\"\n\
             [[ca]]\nname = \"testca\"\ndirectory = \"https://127.0.0.1:{a}/dir\"\n\
             [[ca]]\nname = \"backup\"\ndirectory = \"https://127.0.0.1:{b}/dir\"\n\
             [http01]\nlisten = [\"127.0.0.1:{}\"]\n",
            self.path("state").display(),
            self.http01_port
        );
        for i in 0..certs {
            text.push_str(&format!(
                "[[cert]]\nname = \"cert{i}\"\ndomains = [\"c{i}.example.test\"]\ncas = [\"testca\", \"backup\"]\n"
            ));
        }
        text.push_str(extra);
        std::fs::write(self.config_path(), text).unwrap();
    }

    pub fn write_raw_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).unwrap();
    }

    /// A datagram socket where the daemon's `NOTIFY_SOCKET` points.
    pub fn notify_socket(&self) -> NotifySocket {
        let path = self.path("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        NotifySocket {
            socket,
            path,
            seen: Vec::new(),
        }
    }
}

/// systemd's end of `sd_notify`.
pub struct NotifySocket {
    socket: UnixDatagram,
    pub path: PathBuf,
    /// Every message received so far, in order.
    pub seen: Vec<String>,
}

impl NotifySocket {
    /// The next message, or `None` when none arrives within `within`.
    pub fn recv(&mut self, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        let mut buf = vec![0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            self.socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.socket.recv(&mut buf) {
                Ok(n) => {
                    let msg = String::from_utf8(buf[..n].to_vec()).unwrap();
                    self.seen.push(msg.clone());
                    return Some(msg);
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return None;
                }
                // A receive with a timeout is not restarted after a signal handler ran
                // (tests that start peers with tokio::process have one for SIGCHLD).
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("notify socket: {e}"),
            }
        }
    }

    /// Waits (up to [`PROMPT`]) for a message for which `pred` holds; panics otherwise.
    pub fn expect(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PROMPT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Some(m) if pred(&m) => return m,
                Some(_) => {}
                None => panic!("no {what} within {PROMPT:?}; got {:?}", self.seen),
            }
        }
    }

    /// [`expect`](Self::expect) from `daemon`: gives up as soon as it exits, and a failure
    /// shows how it exited and what it wrote to stderr.
    pub fn expect_from(
        &mut self,
        daemon: &mut Daemon,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + PROMPT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Some(m) = self.recv(left.min(Duration::from_millis(200))) {
                if pred(&m) {
                    return m;
                }
                continue;
            }
            let exited = daemon.child.try_wait().unwrap();
            if exited.is_some() || Instant::now() >= deadline {
                // The reader thread has the last lines once the pipe closes.
                if exited.is_some()
                    && let Some(reader) = daemon.reader.take()
                {
                    reader.join().unwrap();
                }
                panic!(
                    "no {what} within {PROMPT:?} (renewd {}); notify messages {:?}; stderr: {:#?}",
                    exited.map_or("still running".to_string(), |s| format!("exited: {s}")),
                    self.seen,
                    daemon.stderr_lines()
                );
            }
        }
    }

    /// Every message arriving during `window`.
    pub fn during(&mut self, window: Duration) -> Vec<String> {
        self.collect_during(window, Some)
    }

    /// When each message for which `pred` holds arrived during `window`.
    pub fn arrivals_during(
        &mut self,
        window: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Vec<Instant> {
        self.collect_during(window, |m| pred(&m).then(Instant::now))
    }

    /// `keep(message)` of every message arriving during `window`, where it is `Some`.
    fn collect_during<T>(
        &mut self,
        window: Duration,
        mut keep: impl FnMut(String) -> Option<T>,
    ) -> Vec<T> {
        let end = Instant::now() + window;
        let mut got = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return got;
            }
            if let Some(kept) = self.recv(left).and_then(&mut keep) {
                got.push(kept);
            }
        }
    }

    /// Drops every message already queued.
    pub fn drain(&mut self) {
        while self.recv(Duration::from_millis(1)).is_some() {}
    }
}

/// Checks the watchdog's cadence from the arrivals of its pings during `window` when it should
/// ping every `every`: at least about half the pings expected, and a median interval
/// within 1.5 × `every`. The median, not the longest gap: one stall of a busy machine
/// says nothing about the daemon, a ping every two periods would.
pub fn assert_cadence(arrivals: &[Instant], window: Duration, every: Duration) {
    let expected = window.as_millis() / every.as_millis();
    let fewest = usize::try_from(expected / 2 + 1).unwrap();
    assert!(
        arrivals.len() >= fewest,
        "{} pings in {window:?} (expected about {expected}, at least {fewest})",
        arrivals.len()
    );
    let mut gaps: Vec<Duration> = arrivals.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_unstable();
    let median = gaps[gaps.len() / 2];
    assert!(
        median <= every * 3 / 2,
        "median interval {median:?}, expected {every:?}; intervals {gaps:?}"
    );
}

/// Fails the test loudly unless it runs as root: `what` needs root, and CI runs the suite
/// as root, so a test that quietly returned would hide that the behaviour went unchecked.
pub fn require_root(what: &str) {
    use std::os::unix::fs::MetadataExt;
    let uid =
        std::fs::metadata("/proc/self").map_or_else(|e| e.to_string(), |m| m.uid().to_string());
    assert!(
        uid == "0",
        "{what} needs root — this test must run as root (CI does); running as uid {uid}"
    );
}

/// Whether `msg` holds the line `line`.
pub fn has(msg: &str, line: &str) -> bool {
    msg.lines().any(|l| l == line)
}

/// The value of `KEY=` in `msg`.
pub fn value<'m>(msg: &'m str, key: &str) -> Option<&'m str> {
    msg.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// A running daemon; killed on drop. Its stderr is collected line by line.
pub struct Daemon {
    child: Child,
    stderr: Arc<(Mutex<Vec<String>>, Condvar)>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    /// Spawns `cmd` (stdout and stderr piped).
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let shared = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                shared.0.lock().unwrap().push(line);
                shared.1.notify_all();
            }
        });
        Self {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// Spawns `cmd` with stderr going to `file` (not collected here).
    pub fn spawn_stderr_to(mut cmd: Command, file: std::fs::File) -> Self {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(file)
            .spawn()
            .unwrap();
        Self {
            child,
            stderr: Arc::new((Mutex::new(Vec::new()), Condvar::new())),
            reader: None,
        }
    }

    /// `renewd --config CONFIG --log-format json run`, notifying `socket`, with `env`.
    pub fn start(scene: &Scene, socket: &NotifySocket, env: &[(&str, &str)]) -> Self {
        let mut cmd = renewd();
        cmd.arg("--config")
            .arg(scene.config_path())
            .args(["--log-format", "json", "run"])
            .env("NOTIFY_SOCKET", &socket.path);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self::spawn(cmd)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, name: &str) {
        send_signal(self.pid(), name);
    }

    /// The stderr lines so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.0.lock().unwrap().clone()
    }

    /// Waits (up to [`PROMPT`]) for a stderr line for which `pred` holds.
    pub fn expect_stderr(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PROMPT;
        let (lines, arrived) = &*self.stderr;
        let mut guard = lines.lock().unwrap();
        loop {
            if let Some(l) = guard.iter().find(|l| pred(l)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no stderr line with {what}; stderr: {guard:#?}"
            );
            guard = arrived.wait_timeout(guard, left).unwrap().0;
        }
    }

    /// Waits (up to [`PROMPT`]) for the process to exit; returns its status and stdout.
    pub fn wait_exit(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + PROMPT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "renewd did not exit; stderr: {:#?}",
                self.stderr_lines()
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            out.read_to_string(&mut stdout).unwrap();
        }
        (status, stdout)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends signal `name` (`HUP`, `TERM`, `STOP`, …) with the shell's `kill` builtin, which
/// every machine has.
pub fn send_signal(pid: u32, name: &str) {
    let status = Command::new("/bin/sh")
        .args(["-c", "kill -s \"$0\" \"$1\"", name, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -s {name} {pid}");
}

/// The process state letter from `/proc/PID/stat` (`T` when stopped).
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces; the state follows it.
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// Waits (up to [`PROMPT`]) until `/proc` shows `pid` in state `state`.
pub fn wait_state(pid: u32, state: char) {
    let deadline = Instant::now() + PROMPT;
    while proc_state(pid) != Some(state) {
        assert!(
            Instant::now() < deadline,
            "pid {pid} never reached state {state}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub use renewd_testsupport::free_port;

/// `GET path` over HTTP/1.1; returns the status code and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

/// The device and inode of `path`, as `$JOURNAL_STREAM` spells them.
pub fn dev_ino(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap();
    format!("{}:{}", m.dev(), m.ino())
}
