//! Running one hook: argv without a shell, a controlled environment, output captured,
//! and a time limit enforced on the hook's whole process group.

use std::ffi::OsString;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use renewd_config::Command;
use tokio::task::JoinHandle;

use crate::env::inherited_from;
use crate::error::Error;
use crate::group::ProcessGroup;
use crate::output::{OutputTail, TailBuffer, read_tail};

/// How long a hook that timed out gets between SIGTERM and SIGKILL, by default.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(5);

/// After a hook exits, how long its output pipes may stay open (held by a background
/// process it left behind) before renewd stops reading them.
const OUTPUT_DRAIN: Duration = Duration::from_secs(1);

/// Runs hook programs.
///
/// Each run: `argv[0]` executed directly with `argv[1..]` (no shell, no splitting, no
/// globbing), working directory `/`, stdin `/dev/null`, stdout and stderr captured (their
/// last 64 KiB), the environment cleared and rebuilt from the inherited variables (see
/// [`INHERITED`](crate::INHERITED)) plus the event's `RENEWD_*` variables. The hook runs in a
/// process group of its own; at the time limit the whole group gets SIGTERM, and SIGKILL
/// after the kill grace — so a hook that started children does not leave them running.
/// Processes a hook leaves in the background when it exits normally are not killed, but
/// their output is not captured past a short drain.
#[derive(Debug, Clone)]
pub struct HookRunner {
    timeout: Duration,
    kill_grace: Duration,
    inherited: Arc<[(OsString, OsString)]>,
}

/// How one hook run ended.
#[derive(Debug, Clone)]
pub struct HookOutcome {
    /// The command that ran.
    pub command: Command,
    /// Its exit status (after a time-out, the status of the killed process).
    pub status: ExitStatus,
    /// Whether it ran past its time limit and was killed.
    pub timed_out: bool,
    /// How long it ran.
    pub duration: Duration,
    /// The end of its stdout.
    pub stdout: OutputTail,
    /// The end of its stderr.
    pub stderr: OutputTail,
}

impl HookOutcome {
    /// Whether it exited 0 within its time limit.
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.success()
    }

    /// `Ok(self)` on success, else [`Error::HookFailed`] with the argv, status and stderr
    /// tail.
    pub fn into_result(self) -> Result<HookOutcome, Error> {
        if self.success() {
            Ok(self)
        } else {
            Err(Error::HookFailed {
                argv: self.command.to_string(),
                status: self.status,
                timed_out: self.timed_out,
                duration: self.duration,
                stderr_tail: self.stderr.text,
            })
        }
    }
}

impl HookRunner {
    /// A runner with time limit `timeout` (`[hooks] timeout`), inheriting the allowed
    /// variables of this process's environment.
    pub fn new(timeout: Duration) -> HookRunner {
        HookRunner {
            timeout,
            kill_grace: DEFAULT_KILL_GRACE,
            inherited: inherited_from(std::env::vars_os()).into(),
        }
    }

    /// Takes the inherited variables from `vars` instead of this process's environment
    /// (still filtered by [`INHERITED`](crate::INHERITED)). For tests and tools.
    pub fn with_inherited_env(
        mut self,
        vars: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> HookRunner {
        self.inherited = inherited_from(vars).into();
        self
    }

    /// Sets the time between SIGTERM and SIGKILL for a hook that timed out.
    pub fn with_kill_grace(mut self, grace: Duration) -> HookRunner {
        self.kill_grace = grace;
        self
    }

    /// The time limit of one run.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs `command` with `env` added to the inherited environment, within the time limit.
    /// `Err` only when it could not be started; a failed run is an `Ok` outcome whose
    /// [`HookOutcome::success`] is false (see [`HookOutcome::into_result`]).
    pub async fn run(
        &self,
        command: &Command,
        env: &[(&str, String)],
    ) -> Result<HookOutcome, Error> {
        self.run_within(command, env, self.timeout).await
    }

    /// [`HookRunner::run`] with a time limit of `limit` (never above the runner's).
    pub(crate) async fn run_within(
        &self,
        command: &Command,
        env: &[(&str, String)],
        limit: Duration,
    ) -> Result<HookOutcome, Error> {
        let limit = limit.min(self.timeout);
        let spawn_failed = |source| Error::HookSpawn {
            argv: command.to_string(),
            source,
        };
        let mut cmd = tokio::process::Command::new(command.program());
        cmd.args(command.args())
            .env_clear()
            .envs(self.inherited.iter().map(|(k, v)| (k, v)))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(spawn_failed)?;
        // Dropped before `child` if this future is dropped mid-run: kills the group while
        // its leader is not yet reaped.
        let group = ProcessGroup::of(child.id());
        let stdout = Collector::start(child.stdout.take());
        let stderr = Collector::start(child.stderr.take());
        tracing::debug!(hook = %command, pid = child.id(), "hook started");

        let (status, timed_out) = match tokio::time::timeout(limit, child.wait()).await {
            Ok(status) => (status.map_err(spawn_failed)?, false),
            Err(_) => {
                tracing::warn!(hook = %command, ?limit, "hook ran past its time limit; killing its process group");
                group.terminate();
                let status = match tokio::time::timeout(self.kill_grace, child.wait()).await {
                    Ok(status) => status,
                    Err(_) => {
                        group.kill();
                        child.wait().await
                    }
                };
                // Members that ignored SIGTERM may outlive the leader.
                group.kill();
                (status.map_err(spawn_failed)?, true)
            }
        };
        group.disarm();
        let duration = started.elapsed();
        Ok(HookOutcome {
            command: command.clone(),
            status,
            timed_out,
            duration,
            stdout: stdout.finish().await,
            stderr: stderr.finish().await,
        })
    }
}

/// Reads one output stream in the background.
struct Collector {
    tail: Arc<Mutex<TailBuffer>>,
    task: Option<JoinHandle<()>>,
}

impl Collector {
    fn start(stream: Option<impl tokio::io::AsyncRead + Unpin + Send + 'static>) -> Collector {
        let tail = Arc::new(Mutex::new(TailBuffer::default()));
        let task = stream.map(|s| tokio::spawn(read_tail(s, tail.clone())));
        Collector { tail, task }
    }

    /// Waits (briefly) for the end of the stream and returns its tail.
    async fn finish(mut self) -> OutputTail {
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(OUTPUT_DRAIN, task).await.is_err() {
                abort.abort();
            }
        }
        let buffer = std::mem::take(&mut *self.tail.lock().unwrap_or_else(|e| e.into_inner()));
        buffer.finish()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
