//! Per-certificate leases: who may run an order for a certificate right now.
//!
//! The daemon and a concurrent `renewd renew` (another process) must never run two orders
//! for one certificate. Before ordering, a worker acquires the certificate's lease; the store
//! makes acquisition atomic across processes. A lease names its holder (process id and start
//! time, boot id, host name, a random token) and expires unless renewed by heartbeat. A lease
//! is taken over when it has expired, or when its holder ran on this host and is gone (the
//! process is dead or was replaced by another with the same pid, or the host rebooted).

use std::fs;
use std::time::Duration;

use chrono::{DateTime, Utc};
use renewd_core::CertName;

/// Who holds (or wants) a lease.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseHolder {
    /// The process id.
    pub pid: u32,
    /// The process's start time in clock ticks since boot (`/proc/PID/stat` field 22), to
    /// tell a reused pid from the holder. `None` when unknown.
    pub pid_start: Option<u64>,
    /// `/proc/sys/kernel/random/boot_id` of the holder's host.
    pub boot_id: String,
    /// The holder's host name.
    pub hostname: String,
    /// A random token unique to this holder (several workers of one process differ here).
    pub token: String,
}

impl LeaseHolder {
    /// A new holder identity for this process, with a fresh random token. Each worker (or
    /// each order) should use its own.
    pub fn this_process() -> Self {
        let pid = std::process::id();
        Self {
            pid,
            pid_start: process_start(pid),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
            hostname: read_trimmed("/proc/sys/kernel/hostname"),
            token: format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
        }
    }

    /// Whether `self` and `other` name the same holder.
    pub fn same_as(&self, other: &LeaseHolder) -> bool {
        self.token == other.token && self.pid == other.pid && self.boot_id == other.boot_id
    }

    /// Why a lease of this holder may be taken over at `now`, given its expiry; `None` when
    /// the holder may still be working.
    pub fn staleness(&self, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<Takeover> {
        if expires_at <= now {
            return Some(Takeover::Expired);
        }
        let here = read_trimmed("/proc/sys/kernel/hostname");
        if self.hostname != here || here.is_empty() {
            // Another host: only the expiry tells.
            return None;
        }
        let boot = read_trimmed("/proc/sys/kernel/random/boot_id");
        if !self.boot_id.is_empty() && !boot.is_empty() && self.boot_id != boot {
            return Some(Takeover::HostRebooted);
        }
        match process_state(self.pid) {
            ProcessState::Gone => Some(Takeover::HolderDead),
            ProcessState::Running { start } => match (self.pid_start, start) {
                (Some(ours), Some(theirs)) if ours != theirs => Some(Takeover::HolderDead),
                _ => None,
            },
        }
    }
}

/// Why a lease was taken over from its previous holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Takeover {
    /// Its expiry had passed (the holder stopped renewing it).
    Expired,
    /// The holder ran on this host and its process is gone.
    HolderDead,
    /// The holder ran on this host before the last reboot.
    HostRebooted,
}

/// A lease on one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The certificate.
    pub cert: CertName,
    /// Who holds it.
    pub holder: LeaseHolder,
    /// When it was acquired.
    pub acquired_at: DateTime<Utc>,
    /// When it lapses unless renewed.
    pub expires_at: DateTime<Utc>,
}

/// The result of trying to acquire a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The caller holds the lease now.
    Acquired {
        /// The lease.
        lease: Lease,
        /// The holder it was taken from, and why, when it was taken over.
        took_over: Option<(LeaseHolder, Takeover)>,
    },
    /// Someone else holds it.
    Held(Lease),
}

impl LeaseOutcome {
    /// The lease, when acquired.
    pub fn acquired(self) -> Option<Lease> {
        match self {
            LeaseOutcome::Acquired { lease, .. } => Some(lease),
            LeaseOutcome::Held(_) => None,
        }
    }
}

/// The default time a lease lives without a heartbeat.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(120);

enum ProcessState {
    Gone,
    Running { start: Option<u64> },
}

fn process_state(pid: u32) -> ProcessState {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => ProcessState::Gone,
        Ok(stat) => match parse_stat(&stat) {
            // Zombies and dead tasks do no work.
            Some(('Z' | 'X' | 'x', _)) => ProcessState::Gone,
            Some((_, start)) => ProcessState::Running { start },
            None => ProcessState::Running { start: None },
        },
    }
}

fn process_start(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)?.1
}

/// The state letter and start time from `/proc/PID/stat`. The command name (field 2) may hold
/// spaces and parentheses, so the fields are counted from its closing parenthesis.
fn parse_stat(stat: &str) -> Option<(char, Option<u64>)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // Fields after the command: state is field 3, starttime is field 22.
    let start = fields.nth(22 - 4).and_then(|s| s.parse().ok());
    Some((state, start))
}

fn read_trimmed(path: &str) -> String {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let stat = "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 \
                    1000 10 18446744073709551615";
        assert_eq!(parse_stat(stat), Some(('S', Some(987654))));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_unique() {
        let a = LeaseHolder::this_process();
        let b = LeaseHolder::this_process();
        assert_ne!(a.token, b.token);
        assert!(!a.same_as(&b));
        assert!(a.pid_start.is_some());
        let now = Utc::now();
        let later = now + chrono::TimeDelta::seconds(60);
        assert_eq!(a.staleness(later, now), None);
        assert_eq!(a.staleness(now, now), Some(Takeover::Expired));
        let mut reused = a.clone();
        reused.pid_start = a.pid_start.map(|s| s + 1);
        assert_eq!(reused.staleness(later, now), Some(Takeover::HolderDead));
        let mut rebooted = a.clone();
        rebooted.boot_id = "00000000-0000-0000-0000-000000000000".into();
        assert_eq!(rebooted.staleness(later, now), Some(Takeover::HostRebooted));
        let mut elsewhere = a;
        elsewhere.hostname = "another-host.invalid".into();
        elsewhere.pid = u32::MAX;
        assert_eq!(elsewhere.staleness(later, now), None);
    }
}
