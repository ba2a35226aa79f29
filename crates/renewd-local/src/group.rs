//! A hook's process group, and the one `unsafe` call of this crate: `killpg(2)`.

use std::sync::atomic::{AtomicBool, Ordering};

/// The process group a hook was started in (`process_group(0)`: its id is the hook's pid).
/// Dropped while armed (the run was abandoned), it kills the whole group.
#[derive(Debug)]
pub(crate) struct ProcessGroup {
    pgid: Option<libc::pid_t>,
    armed: AtomicBool,
}

impl ProcessGroup {
    /// The group led by `pid` (the id of a child that has not been reaped yet).
    pub(crate) fn of(pid: Option<u32>) -> ProcessGroup {
        // 0 and 1 would mean "our own group" and init's: never signal those.
        let pgid = pid
            .and_then(|p| libc::pid_t::try_from(p).ok())
            .filter(|p| *p > 1);
        ProcessGroup {
            pgid,
            armed: AtomicBool::new(true),
        }
    }

    /// SIGTERM to every member.
    pub(crate) fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// SIGKILL to every member.
    pub(crate) fn kill(&self) {
        self.signal(libc::SIGKILL);
    }

    /// The run finished normally: do not kill on drop.
    pub(crate) fn disarm(&self) {
        self.armed.store(false, Ordering::Relaxed);
    }

    fn signal(&self, signal: libc::c_int) {
        let Some(pgid) = self.pgid else { return };
        if let Err(e) = killpg(pgid, signal) {
            // ESRCH: every member is gone already.
            if e.raw_os_error() != Some(libc::ESRCH) {
                tracing::warn!(pgid, signal, error = %e, "could not signal a hook's process group");
            }
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if *self.armed.get_mut() {
            self.kill();
        }
    }
}

/// `killpg(pgid, signal)`. A group id stays allocated while any member (or the unreaped
/// leader) exists, so signalling a group whose leader has not been reaped, or that still
/// has members, cannot hit an unrelated process; when every member is gone the call fails
/// with ESRCH.
#[allow(unsafe_code)]
fn killpg(pgid: libc::pid_t, signal: libc::c_int) -> std::io::Result<()> {
    debug_assert!(pgid > 1, "never our own group (0) or init's");
    // SAFETY: killpg(2) takes two integers, reads and writes no memory of this process
    // and has no other precondition; its only effect is sending a signal, and `pgid` is
    // always a hook's group (> 1, checked in `ProcessGroup::of`).
    let rc = unsafe { libc::killpg(pgid, signal) };
    if rc == -1 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}
