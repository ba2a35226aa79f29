//! `docs/BENCHMARKS.md`: the machine and versions, the method, the table of targets with
//! renewd's medians and the peers' measured in the same run, then each scenario's runs
//! and the profile of one issuance.

mod details;
mod summary;

use std::fmt::Write as _;

use crate::machine::{Machine, Versions};
use crate::scenario::Outcome;
use crate::scenario::batch::Batch;
use crate::scenario::finalize504::Attempt;
use crate::scenario::idle::Idle;
use crate::scenario::one_cert::OneCert;
use crate::scenario::outage::OutageRun;
use crate::scenario::scan::Scans;

/// Everything one bench run measured.
#[derive(Debug)]
pub struct Results {
    pub machine: Machine,
    pub versions: Versions,
    /// Runs per figure (the medians' sample size).
    pub runs: usize,
    pub batch_certs: usize,
    pub idle_certs: usize,
    pub outage_certs: usize,
    /// The bench's own wall time, minutes.
    pub minutes: f64,
    pub one: Outcome<OneCert>,
    pub batch: Outcome<Batch>,
    pub scan: Outcome<Scans>,
    pub idle: Outcome<Idle>,
    pub finalize: Outcome<Vec<Attempt>>,
    pub outage: Outcome<Vec<OutageRun>>,
}

/// The whole document.
pub fn render(r: &Results) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# renewd benchmarks\n\n\
         Written by `scripts/bench` ({:.0} minutes on the machine below); do not edit by hand — \
         run it again. Every figure is the median of {} runs unless it says otherwise; renewd \
         and the other clients were measured in the same run against the same CA, in rounds \
         that rotate which client goes first.\n",
        r.minutes, r.runs
    );
    machine(&mut t, r);
    method(&mut t, r);
    summary::table(&mut t, r);
    details::all(&mut t, r);
    t
}

fn machine(t: &mut String, r: &Results) {
    let m = &r.machine;
    let v = &r.versions;
    let _ = writeln!(
        t,
        "## Machine and versions\n\n\
         | | |\n|---|---|\n\
         | CPU | {} ({} cores) |\n\
         | RAM | {:.1} GiB |\n\
         | kernel | {} |\n\
         | OS | {} |\n\
         | date | {} |\n\
         | renewd | git {} (release build) |\n\
         | lego | {} |\n\
         | certbot | {} |\n\
         | pebble | {} |\n\
         | rustc | {} |\n",
        m.cpu,
        m.cores,
        m.ram_gib,
        m.kernel,
        m.os,
        m.date,
        v.renewd,
        v.lego,
        v.certbot,
        v.pebble,
        v.rustc
    );
    let _ = writeln!(
        t,
        "The machine is shared: other builds and tests may run meanwhile. That is why every \
         figure is a median and each comparison is a ratio of figures taken in the same rounds.\n"
    );
}

fn method(t: &mut String, r: &Results) {
    let _ = writeln!(
        t,
        "## Method\n\n\
         - **CA.** One pebble (Debian's) for every scenario, run as PEERS.md says: \
         `PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0`, with \
         pebble-challtestsrv answering 127.0.0.1 for every name, so http-01 is validated for \
         real: pebble's validator fetches the token from the client's own server on one \
         loopback port, which each client binds in turn. The finalize-504 row uses \
         renewd-testca (in the bench process) with real http-01 on that port instead.\n\
         - **renewd** is the release binary run as the CLI (`renewd renew`) or the daemon \
         (`renewd run`, `NOTIFY_SOCKET` pointing at the bench, which times `READY=1` and the \
         `STATUS=` line that says every certificate is valid). Config: the standalone http-01 \
         responder, `requests_per_second = 1000` and `max_concurrent_orders` = workers on each \
         CA (the defaults, 20 and 4, are meant for public CAs and would set the pace instead of \
         renewd), `[renewal] ari = false` for the daemon runs (pebble has no ARI).\n\
         - **lego** runs `lego --server … --http --http.port 127.0.0.1:PORT --path DIR run` with \
         `LEGO_CA_CERTIFICATES`; **certbot** runs `certbot certonly --standalone \
         --http-01-address 127.0.0.1 --http-01-port PORT` with `REQUESTS_CA_BUNDLE` and its own \
         config, work and logs directories. Each starts from an empty directory (account \
         registration included), like renewd's first-issuance runs.\n\
         - **Wall time** is from spawn to exit (or to the `STATUS=`); **CPU** is user + system \
         time from `wait4(2)`'s rusage of the process (all threads); **peak RSS** is \
         `ru_maxrss` (= `VmHWM`).\n\
         - **Idle:** {} certificates issued once through the daemon, then `renewd run` started \
         again on that state (nothing due for 60 days, ARI off: no ACME request may happen, \
         and the ledger proves none did); after {} s to settle, a window of {} s: `VmRSS` \
         (with `RssAnon`/`RssFile`) at its end, CPU as the change of utime + stime in \
         `/proc/PID/stat`, and wake-ups as the change of the context switches summed over \
         `/proc/PID/task/*/status` (an idle thread switches out once per wake-up). A further \
         window under `strace -f` lists the time of every return from a blocking wait \
         (`epoll_wait`, `futex` waits, …); returns less than {} s apart are one wake-up episode \
         (tokio's timer wheel reaches a far deadline in up to three steps, the first up to \
         4.1 s early).\n\
         - **Idle and the systemd watchdog.** The idle figures are without a watchdog \
         (`WATCHDOG_USEC` unset), where the scheduler loop beats once a minute. Under the \
         packaged unit the loop beats every half of `WatchdogSec` (at most once a minute) \
         and `WATCHDOG=1` goes out on those beats, not on a timer of its own, so the unit's \
         `WatchdogSec=120s` keeps the same single wake-up a minute (pings 60 s apart when \
         idle, at most 90 s; a hung loop is restarted within 2 minutes). A drop-in with a \
         shorter `WatchdogSec` makes an idle daemon wake every half of it: 60 s, the unit's \
         value before issue 8, would mean a wake-up every 30 s.\n",
        r.idle_certs,
        crate::scenario::idle::SETTLE.as_secs(),
        crate::scenario::idle::WINDOW.as_secs(),
        crate::scenario::idle::EPISODE_GAP.as_secs(),
    );
}

/// The median of `f` over `runs` (NaN when there are none).
pub(crate) fn med<T>(runs: &[T], f: impl Fn(&T) -> f64) -> f64 {
    crate::stats::median(&runs.iter().map(f).collect::<Vec<_>>()).unwrap_or(f64::NAN)
}

/// The verdict on a target.
pub(crate) fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}
