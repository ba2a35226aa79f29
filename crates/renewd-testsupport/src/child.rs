//! Child processes that die with the test, and free ports.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};
use std::ops::Range;
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::process::{Child, Command};

/// A TCP port on 127.0.0.1 that nobody listens on, for a server a test starts later (pebble,
/// the daemon's http-01 responder). Tests that can bind first should bind port 0 and pass the
/// port on instead.
///
/// A port found by binding port 0 and letting go is in the kernel's ephemeral range, where
/// the next `bind(0)` or outgoing connection of any test may take it before the server binds
/// it — a daemon that then cannot bind its responder never gets ready, about one run in a
/// hundred. So the port is drawn at random from below that range (see
/// `/proc/sys/net/ipv4/ip_local_port_range`), checked by binding it, and never handed out
/// twice by one process.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(range) = quiet_ports() {
        let span = u64::from(range.end - range.start);
        for _ in 0..1000 {
            let port = range.start + u16::try_from(random() % span).expect("below the span");
            if !given.contains(&port) && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
                given.insert(port);
                return port;
            }
        }
    }
    // No quiet range (an unusual ip_local_port_range): the ephemeral way.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local address").port();
    given.insert(port);
    port
}

/// Ports below the ephemeral range and above the ones services usually take, when there are
/// enough of them.
fn quiet_ports() -> Option<Range<u16>> {
    const LOWEST: u16 = 10_000;
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    (ephemeral_start >= LOWEST + 1_000).then_some(LOWEST..ephemeral_start)
}

/// 64 random bits from the standard library's per-process hash keys.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::hash::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
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
