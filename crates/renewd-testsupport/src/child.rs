//! Child processes that die with the test, and free ports.

use std::net::{Ipv4Addr, TcpListener};
use std::process::Stdio;

use tokio::process::{Child, Command};

/// A free TCP port on 127.0.0.1 at the time of the call. Another process may take it before
/// it is used; tests that can bind first should bind port 0 and pass the port on instead.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// A child process that is killed when the guard is dropped. On Linux the child also gets
/// `SIGKILL` when the thread that started it dies, so a crashed or killed test run leaves no
/// orphaned servers behind.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Child,
}

impl ChildGuard {
    /// Spawns `command` with stdout piped (stderr merged into the log by the caller's
    /// choice), stdin closed, killed on drop.
    pub fn spawn(name: &str, mut command: Command) -> ChildGuard {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        die_with_parent(&mut command);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {name}: {e}"));
        ChildGuard {
            name: name.to_string(),
            child,
        }
    }

    /// The child, for taking its pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the child now (for tests that simulate an outage) and waits for it to exit.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // kill_on_drop would do it too; be explicit so the intent is visible here.
        let _ = self.child.start_kill();
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_parent(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2),
    // which is async-signal-safe, touches no memory of the parent and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}
