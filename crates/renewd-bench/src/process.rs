//! Child processes measured from the outside: a command run to its end (wall time, CPU,
//! peak RSS, output), and a daemon with its systemd notify socket, killed if the bench
//! stops early.

use std::fs::{self, File};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::sys::{self, Exit};

/// A command that ran to its end.
#[derive(Debug)]
pub struct Finished {
    /// From spawn to exit.
    pub wall: Duration,
    pub exit: Exit,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Both outputs, for error messages.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The last `n` lines of both outputs, for error messages.
    pub fn tail(&self, n: usize) -> String {
        let all = self.output();
        let lines: Vec<&str> = all.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Runs `cmd` to its end with stdin closed, stdout and stderr in `dir/NAME.{out,err}`;
/// kills it after `limit`.
pub fn run(mut cmd: Command, dir: &Path, name: &str, limit: Duration) -> Result<Finished, String> {
    let out_path = dir.join(format!("{name}.out"));
    let err_path = dir.join(format!("{name}.err"));
    let create = |p: &Path| File::create(p).map_err(|e| format!("{}: {e}", p.display()));
    cmd.stdin(Stdio::null())
        .stdout(create(&out_path)?)
        .stderr(create(&err_path)?);
    let started = Instant::now();
    let child = cmd.spawn().map_err(|e| format!("starting {name}: {e}"))?;
    let pid = child.id();
    let (done, timer) = mpsc::channel::<()>();
    let killer = thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = timer.recv_timeout(limit) {
            let _ = sys::kill(pid, libc::SIGKILL);
        }
    });
    let exit = sys::wait(pid).map_err(|e| format!("waiting for {name}: {e}"));
    let wall = started.elapsed();
    let _ = done.send(());
    let _ = killer.join();
    let exit = exit?;
    if wall >= limit {
        return Err(format!("{name} did not finish within {limit:?}"));
    }
    Ok(Finished {
        wall,
        exit,
        stdout: fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: fs::read_to_string(&err_path).unwrap_or_default(),
    })
}

/// systemd's end of `sd_notify`: the datagram socket a daemon reports READY=1 and STATUS=
/// to.
#[derive(Debug)]
pub struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    /// Binds `path`.
    pub fn bind(path: &Path) -> Result<NotifySocket, String> {
        let _ = fs::remove_file(path);
        let socket = UnixDatagram::bind(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(NotifySocket {
            socket,
            path: path.to_path_buf(),
        })
    }

    /// The next message, or `None` when none arrives by `deadline`.
    pub fn recv_until(&self, deadline: Instant) -> Result<Option<String>, String> {
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.socket
                .set_read_timeout(Some(left))
                .map_err(|e| e.to_string())?;
            match self.socket.recv(&mut buf) {
                Ok(n) => return Ok(Some(String::from_utf8_lossy(&buf[..n]).into_owned())),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                // tokio's SIGCHLD handler in this process interrupts timed receives.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("notify socket: {e}")),
            }
        }
    }
}

/// The `STATUS=` value of a notify message, if it has one.
pub fn status_of(message: &str) -> Option<&str> {
    message.lines().find_map(|l| l.strip_prefix("STATUS="))
}

/// A daemon started with a notify socket; SIGKILLed and reaped on drop unless stopped.
#[derive(Debug)]
pub struct Daemon {
    pid: u32,
    name: String,
    started: Instant,
    notify: NotifySocket,
    log: PathBuf,
    reaped: bool,
}

impl Daemon {
    /// Starts `cmd` with `NOTIFY_SOCKET` at `dir/NAME.notify`, output in `dir/NAME.log`.
    pub fn start(mut cmd: Command, dir: &Path, name: &str) -> Result<Daemon, String> {
        let notify = NotifySocket::bind(&dir.join(format!("{name}.notify")))?;
        let log = dir.join(format!("{name}.log"));
        let file = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        cmd.env("NOTIFY_SOCKET", &notify.path)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err);
        let started = Instant::now();
        let child = cmd.spawn().map_err(|e| format!("starting {name}: {e}"))?;
        Ok(Daemon {
            pid: child.id(),
            name: name.to_string(),
            started,
            notify,
            log,
            reaped: false,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Waits for a notify message for which `pred` holds; returns the time since the
    /// spawn at which it arrived and the message.
    pub fn wait_for(
        &self,
        pred: impl Fn(&str) -> bool,
        limit: Duration,
    ) -> Result<(Duration, String), String> {
        let deadline = Instant::now() + limit;
        let mut last = String::new();
        while let Some(message) = self.notify.recv_until(deadline)? {
            if pred(&message) {
                return Ok((self.started.elapsed(), message));
            }
            if let Some(status) = status_of(&message) {
                last = status.to_string();
            }
        }
        Err(format!(
            "{}: the awaited notification did not come within {limit:?}; last STATUS={last}\n{}",
            self.name,
            self.log_tail(15)
        ))
    }

    /// Waits for READY=1, then (unless that message said so already) for a `STATUS=`
    /// starting with `status`; returns the times since the spawn of both.
    pub fn wait_ready_and(
        &self,
        status: &str,
        limit: Duration,
    ) -> Result<(Duration, Duration), String> {
        let (ready, message) = self.wait_for(|m| m.lines().any(|l| l == "READY=1"), limit)?;
        let reached = |m: &str| status_of(m).is_some_and(|s| s.starts_with(status));
        if reached(&message) {
            return Ok((ready, ready));
        }
        let (at, _) = self.wait_for(reached, limit)?;
        Ok((ready, at))
    }

    /// SIGTERM and wait for the exit.
    pub fn stop(mut self) -> Result<Exit, String> {
        sys::kill(self.pid, libc::SIGTERM).map_err(|e| format!("SIGTERM {}: {e}", self.name))?;
        let exit = sys::wait(self.pid).map_err(|e| format!("waiting for {}: {e}", self.name));
        self.reaped = true;
        exit
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = sys::kill(self.pid, libc::SIGKILL);
            let _ = sys::wait(self.pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_reports_its_exit_and_usage() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo hi; echo oops >&2; exit 3"]);
        let done = run(cmd, dir.path(), "sh", Duration::from_secs(10)).unwrap();
        assert_eq!(done.exit.code, Some(3));
        assert_eq!(done.stdout, "hi\n");
        assert_eq!(done.stderr, "oops\n");
        assert!(done.exit.usage.max_rss_kib > 0);
    }

    #[test]
    fn a_run_past_its_limit_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let err = run(cmd, dir.path(), "sleep", Duration::from_millis(200)).unwrap_err();
        assert!(err.contains("did not finish"), "{err}");
    }

    #[test]
    fn status_is_read_from_a_notify_message() {
        assert_eq!(
            status_of("READY=1\nSTATUS=3 certificates"),
            Some("3 certificates")
        );
        assert_eq!(status_of("WATCHDOG=1"), None);
    }
}
