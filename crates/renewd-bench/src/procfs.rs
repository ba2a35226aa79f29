//! A running process as `/proc` shows it: memory, CPU time and context switches of all its
//! threads.

use std::fs;
use std::io;
use std::time::Duration;

use crate::sys;

/// One look at a process.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    /// `VmRSS`, KiB.
    pub rss_kib: u64,
    /// `VmHWM` (peak RSS), KiB.
    pub hwm_kib: u64,
    /// `RssAnon`: heap, stacks and other private memory, KiB.
    pub anon_kib: u64,
    /// `RssFile`: pages of the executable and libraries mapped in, KiB.
    pub file_kib: u64,
    /// `Threads`.
    pub threads: u64,
    /// utime + stime of the whole process (`/proc/PID/stat`, clock ticks turned into time;
    /// includes threads that have exited).
    pub cpu: Duration,
    /// Time on a CPU summed over the live threads (`/proc/PID/task/*/schedstat`, ns).
    pub cpu_live_threads: Duration,
    /// Voluntary context switches summed over the live threads: each one is a thread
    /// going to sleep, so each wake-up of an idle process adds at least one.
    pub voluntary_switches: u64,
    /// Involuntary context switches summed over the live threads.
    pub involuntary_switches: u64,
}

fn status_field(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().trim_end_matches("kB").trim())
        .and_then(|v| v.parse().ok())
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// utime + stime from `/proc/PID/stat`.
fn stat_cpu(pid: u32) -> io::Result<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name in parentheses may hold spaces: the fields start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| invalid("stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of stat(5), utime 14 and stime 15.
    let tick = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| invalid("stat field"))
    };
    let ticks = tick(11)? + tick(12)?;
    Ok(Duration::from_nanos(
        ticks.saturating_mul(1_000_000_000) / sys::clock_ticks(),
    ))
}

/// Looks at `pid` now.
pub fn snapshot(pid: u32) -> io::Result<Snapshot> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| status_field(&status, name).ok_or_else(|| invalid(name));
    let mut cpu_live = Duration::ZERO;
    let mut voluntary = 0;
    let mut involuntary = 0;
    for task in fs::read_dir(format!("/proc/{pid}/task"))? {
        let task = task?.path();
        // A thread may end between the listing and the read: skip it.
        let Ok(schedstat) = fs::read_to_string(task.join("schedstat")) else {
            continue;
        };
        let Ok(task_status) = fs::read_to_string(task.join("status")) else {
            continue;
        };
        let ns: u64 = schedstat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        cpu_live += Duration::from_nanos(ns);
        voluntary += status_field(&task_status, "voluntary_ctxt_switches").unwrap_or(0);
        involuntary += status_field(&task_status, "nonvoluntary_ctxt_switches").unwrap_or(0);
    }
    Ok(Snapshot {
        rss_kib: field("VmRSS")?,
        hwm_kib: field("VmHWM")?,
        anon_kib: field("RssAnon")?,
        file_kib: field("RssFile")?,
        threads: field("Threads")?,
        cpu: stat_cpu(pid)?,
        cpu_live_threads: cpu_live,
        voluntary_switches: voluntary,
        involuntary_switches: involuntary,
    })
}

/// What changed between two looks at the same process.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// CPU time used in the window (`/proc/PID/stat`, 10 ms resolution).
    pub cpu: Duration,
    /// CPU time used in the window by the threads alive at both ends (schedstat, ns).
    pub cpu_precise: Duration,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
    pub end: Snapshot,
    pub threads_at_start: u64,
    /// `RssAnon` at the start: against the end's, whether the idle daemon grows.
    pub anon_at_start_kib: u64,
}

impl Window {
    /// From `start` to `end`.
    pub fn between(start: &Snapshot, end: &Snapshot) -> Window {
        Window {
            cpu: end.cpu.saturating_sub(start.cpu),
            cpu_precise: end.cpu_live_threads.saturating_sub(start.cpu_live_threads),
            voluntary_switches: end
                .voluntary_switches
                .saturating_sub(start.voluntary_switches),
            involuntary_switches: end
                .involuntary_switches
                .saturating_sub(start.involuntary_switches),
            end: *end,
            threads_at_start: start.threads,
            anon_at_start_kib: start.anon_kib,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_process() {
        let me = snapshot(std::process::id()).unwrap();
        assert!(me.rss_kib > 0 && me.hwm_kib >= me.rss_kib);
        assert!(me.threads >= 1);
        assert!(me.voluntary_switches + me.involuntary_switches > 0);
    }

    #[test]
    fn status_fields_parse_with_and_without_units() {
        let text = "Name:\tx\nVmRSS:\t   14136 kB\nThreads:\t4\n";
        assert_eq!(status_field(text, "VmRSS"), Some(14136));
        assert_eq!(status_field(text, "Threads"), Some(4));
        assert_eq!(status_field(text, "VmHWM"), None);
    }
}
