//! The idle daemon: 1,000 valid certificates (issued once through the daemon from pebble),
//! then `renewd run` started again on that state with ARI off, so nothing is due for
//! months and no ACME request may happen. After it settles, one window of 60 s: RSS, CPU
//! time and context switches from `/proc`; and in one more window, strace's timestamps of
//! every return from a blocking wait, to show when the process wakes.

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::lab::Lab;
use crate::process::Daemon;
use crate::procfs::{self, Window};
use crate::scenario::batch::{DaemonBatch, RestUntil, daemon_batch};
use crate::sys;

/// After READY: startup work finishing, tokio's blocking threads ending (10 s idle).
pub const SETTLE: Duration = Duration::from_secs(15);
/// The measured window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// The window under strace: three minutes, so that a once-a-minute wake-up shows as a rate.
pub const STRACE_WINDOW: Duration = Duration::from_secs(180);
/// Returns from waits closer together than this count as one wake-up episode (tokio's
/// timer wheel reaches a far deadline in up to three steps, the first ≤ 4.1 s early).
pub const EPISODE_GAP: Duration = Duration::from_secs(5);

/// One idle window.
#[derive(Debug, Clone)]
pub struct IdleRun {
    pub window: Window,
    /// Ledger rows written while the daemon ran (must be 0: no ACME work).
    pub ledger_rows_added: usize,
}

/// strace's view of one window.
#[derive(Debug, Clone)]
pub struct Wakeups {
    /// Seconds into the window of every return from a blocking wait.
    pub returns: Vec<f64>,
    /// Groups of returns closer than [`EPISODE_GAP`], by their first return.
    pub episodes: Vec<f64>,
    /// The window's length.
    pub window_secs: f64,
}

/// The whole scenario.
#[derive(Debug, Clone)]
pub struct Idle {
    pub setup: DaemonBatch,
    pub runs: Vec<IdleRun>,
    pub wakeups: Option<Wakeups>,
}

/// Issues `certs` certificates, then `runs` idle windows on fresh starts, then one under
/// strace (when installed).
pub fn run(lab: &Lab, runs: usize, certs: usize) -> Result<Idle, String> {
    let setup = daemon_batch(
        lab,
        "idle",
        certs,
        8,
        vec![lab.pebble_ca("pebble")],
        Some(RestUntil::AfterValid(SETTLE)),
    )?;
    eprintln!(
        "  {certs} certificates issued in {:.2} s (peak {} KiB; {} KiB {} s later)",
        setup.all_valid.as_secs_f64(),
        setup.peak_rss_kib,
        setup.after_rest.map_or(0, |s| s.rss_kib),
        SETTLE.as_secs()
    );
    let mut result = Idle {
        setup,
        runs: Vec::new(),
        wakeups: None,
    };
    let config = result.setup.config.clone();
    for k in 0..runs {
        let rows_before = lab.ledger(&config)?.len();
        let daemon = start(lab, &config, certs, &format!("idle{k}"))?;
        thread::sleep(SETTLE);
        let start = snap(&daemon)?;
        thread::sleep(WINDOW);
        let end = snap(&daemon)?;
        stop(daemon)?;
        let window = Window::between(&start, &end);
        let ledger_rows_added = lab.ledger(&config)?.len() - rows_before;
        eprintln!(
            "  window {k}: RSS {} KiB (anon {}, file {}), CPU {:?} ({:?} precise), {} + {} context switches, threads {} → {}, ledger +{ledger_rows_added}",
            window.end.rss_kib,
            window.end.anon_kib,
            window.end.file_kib,
            window.cpu,
            window.cpu_precise,
            window.voluntary_switches,
            window.involuntary_switches,
            window.threads_at_start,
            window.end.threads
        );
        result.runs.push(IdleRun {
            window,
            ledger_rows_added,
        });
    }
    if which("strace") {
        let daemon = start(lab, &config, certs, "idle-strace")?;
        thread::sleep(SETTLE);
        let out = config.with_file_name("strace.txt");
        let wakeups = strace_window(daemon.pid(), &out)?;
        stop(daemon)?;
        eprintln!(
            "  strace: {} returns from waits in {} episodes at {:?} s",
            wakeups.returns.len(),
            wakeups.episodes.len(),
            wakeups.episodes
        );
        result.wakeups = Some(wakeups);
    }
    Ok(result)
}

fn start(lab: &Lab, config: &Path, certs: usize, name: &str) -> Result<Daemon, String> {
    let dir = config.parent().ok_or("config without a directory")?;
    let daemon = Daemon::start(lab.renewd(config, &["run"]), dir, name)?;
    let all = format!("{certs} certificates: {certs} valid");
    daemon.wait_ready_and(&all, Duration::from_secs(120))?;
    Ok(daemon)
}

fn snap(daemon: &Daemon) -> Result<procfs::Snapshot, String> {
    procfs::snapshot(daemon.pid()).map_err(|e| format!("/proc of the daemon: {e}"))
}

fn stop(daemon: Daemon) -> Result<(), String> {
    let exit = daemon.stop()?;
    if exit.success() {
        Ok(())
    } else {
        Err(format!("renewd run ended with {exit}"))
    }
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// The blocking waits a tokio process sleeps in.
const WAITS: &str =
    "trace=epoll_wait,epoll_pwait,epoll_pwait2,futex,poll,ppoll,nanosleep,clock_nanosleep";

/// strace attached to every thread of `pid` for [`STRACE_WINDOW`].
fn strace_window(pid: u32, out: &Path) -> Result<Wakeups, String> {
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-ttt", "-e", WAITS, "-o"])
        .arg(out)
        .args(["-p", &pid.to_string()]);
    let child = cmd.spawn().map_err(|e| format!("strace: {e}"))?;
    let started_at = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
    thread::sleep(STRACE_WINDOW);
    let _ = sys::kill(child.id(), libc::SIGINT);
    let _ = sys::wait(child.id());
    let text = std::fs::read_to_string(out).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(wakeups(&text, started_at, STRACE_WINDOW))
}

/// Returns from waits in strace `-f -ttt` output (`PID SECS.USECS call(…) = N` or
/// `PID SECS.USECS <... call resumed>… = N`), as seconds after `t0`, and their episodes.
/// A call still blocked when strace detached has no return and does not count; nor do the
/// returns within the first 50 ms, which are the attach interrupting the waits.
pub fn wakeups(text: &str, t0: f64, window: Duration) -> Wakeups {
    let mut returns = Vec::new();
    for line in text.lines() {
        // A wake of another thread is not a return from a wait.
        if line.contains("<unfinished ...>") || line.contains("FUTEX_WAKE") || !line.contains(" = ")
        {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(_pid), Some(ts)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(ts) = ts.parse::<f64>() else {
            continue;
        };
        let at = ts - t0;
        if at >= 0.05 {
            returns.push(at);
        }
    }
    returns.sort_by(f64::total_cmp);
    let mut episodes: Vec<f64> = Vec::new();
    let mut last = f64::NEG_INFINITY;
    for &at in &returns {
        if at - last > EPISODE_GAP.as_secs_f64() {
            episodes.push(at);
        }
        last = at;
    }
    Wakeups {
        returns,
        episodes,
        window_secs: window.as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_are_grouped_into_episodes() {
        let text = "\
10 1000.000010 epoll_wait(3,  <unfinished ...>
10 1000.010000 <... epoll_wait resumed>[], 1024, 5) = 0
10 1056.100000 <... epoll_wait resumed>[], 1024, 60000) = 0
10 1059.900000 epoll_wait(3, [], 1024, 40) = 0
11 1059.950000 futex(0x1, FUTEX_WAKE_PRIVATE, 1) = 1
10 1059.990000 epoll_wait(3,  <unfinished ...>
";
        let w = wakeups(text, 1000.0, Duration::from_secs(60));
        assert_eq!(w.returns.len(), 2, "{:?}", w.returns);
        assert_eq!(w.episodes.len(), 1);
        assert!((w.episodes[0] - 56.1).abs() < 1e-6);
    }
}
