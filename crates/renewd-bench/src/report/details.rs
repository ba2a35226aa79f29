//! Each scenario's runs, and the profile of one issuance.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use renewd_core::Step;

use super::summary::rows;
use super::{Results, med};
use crate::scenario::one_cert::{OneCert, RenewdRun};
use crate::stats::{list, mib, millis, secs};

/// Whether a ledger step is an ACME request of issuance; the others are renewd's local
/// steps.
fn is_acme(step: &str) -> bool {
    step.parse::<Step>().is_ok_and(Step::is_issuance_request)
}

pub fn all(t: &mut String, r: &Results) {
    let _ = writeln!(t, "## Details\n");
    if let Some(Ok(o)) = &r.one {
        profile(t, o);
        one_runs(t, o);
    }
    if let Some(Ok(b)) = &r.batch {
        let _ = writeln!(
            t,
            "### {} certificates through the daemon\n\n\
             - renewd, all valid after: {}; READY after: {}; peak RSS: {}; CPU over the run: {}\n\
             - lego, {} certificates in sequence: {} in all\n\
             - certbot, {} certificates in sequence: {} in all\n",
            r.batch_certs,
            list(&secs_of(&b.renewd, |x| x.all_valid), secs),
            list(&secs_of(&b.renewd, |x| x.ready), secs),
            list(&kib_of(&b.renewd, |x| x.peak_rss_kib), mib),
            list(&secs_of(&b.renewd, |x| x.cpu), secs),
            b.peer_certs,
            list(&secs_of(&b.lego, |x| x.total), secs),
            b.peer_certs,
            list(&secs_of(&b.certbot, |x| x.total), secs),
        );
    }
    if let Some(Ok(scans)) = &r.scan {
        let _ = writeln!(t, "### Inventory scan\n");
        for (n, runs) in scans {
            let _ = writeln!(
                t,
                "- {n} certificates: {}; peak RSS {}",
                list(&runs.iter().map(|x| x.wall_ms).collect::<Vec<_>>(), millis),
                list(&runs.iter().map(|x| x.peak_mib).collect::<Vec<_>>(), |v| {
                    format!("{v:.1} MiB")
                })
            );
        }
        let _ = writeln!(t);
    }
    if let Some(Ok(i)) = &r.idle {
        idle(t, r, i);
    }
    if let Some(Ok(attempts)) = &r.finalize {
        let _ = writeln!(
            t,
            "### Finalize answered 504 after issuing\n\n\
             renewd-testca with the plan `endpoint = \"finalize\", action = \"status\", status = \
             504, body = \"html\", when = \"after\"` on every finalize: the CA issues the \
             certificate, then answers 504. Counts are the CA's (`certificates_issued`, requests \
             per endpoint) for each attempt alone.\n\n\
             | client | wall | exit | obtained | orders | issued | finalize 504s | downloads | wasted | the client's error |\n\
             |---|---|---|---|---|---|---|---|---|---|"
        );
        for a in attempts {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                a.client,
                secs(a.wall.as_secs_f64()),
                if a.exit_ok { "0" } else { "error" },
                if a.obtained { "yes" } else { "no" },
                a.orders,
                a.issued,
                a.finalize_504,
                a.downloads,
                a.wasted(),
                a.error
                    .as_deref()
                    .map(|e| format!("`{}`", e.replace(['|', '`'], "'")))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(t);
    }
    if let Some(Ok(runs)) = &r.outage {
        let _ = writeln!(
            t,
            "### CA A refusing connections\n\n\
             A's directory is a loopback port nothing listens on (connections refused), B is \
             pebble; every certificate lists A first; each run starts from an empty state, so \
             no circuit is open at the start. Attempts to reach A are the ledger's rows for A \
             (every request and probe is one row). The first run keeps the daemon up, A still \
             refusing, until the outage's length has passed since its start; the others stop \
             once all certificates are valid.\n"
        );
        for (k, x) in runs.iter().enumerate() {
            let _ = writeln!(
                t,
                "- run {}: all {} valid after {} ({} by B); up {} in all; A: {}; A's circuit at \
                 the end: {}; peak RSS {}",
                k + 1,
                x.certs,
                secs(x.all_valid.as_secs_f64()),
                x.issued_by_b,
                secs((x.all_valid + x.kept_up).as_secs_f64()),
                rows(&x.a_rows),
                x.a_circuit,
                mib(x.peak_rss_kib as f64)
            );
        }
        let _ = writeln!(t);
    }
}

fn secs_of<T>(v: &[T], f: impl Fn(&T) -> std::time::Duration) -> Vec<f64> {
    v.iter().map(|x| f(x).as_secs_f64()).collect()
}

fn kib_of<T>(v: &[T], f: impl Fn(&T) -> u64) -> Vec<f64> {
    v.iter().map(|x| f(x) as f64).collect()
}

fn step_ms(runs: &[RenewdRun], step: &str) -> (f64, f64) {
    (
        med(runs, |x| x.steps.get(step).map_or(0.0, |s| s.0 as f64)),
        med(runs, |x| x.steps.get(step).map_or(0.0, |s| s.1)),
    )
}

/// Where the time of one issuance goes.
fn profile(t: &mut String, o: &OneCert) {
    let _ = writeln!(
        t,
        "### Where the time of one issuance goes\n\n\
         From the single-certificate runs: the process's wall time and its own CPU time \
         (user + system, all threads), and the ledger's `latency_ms` of every row summed by \
         step (medians over the runs; a step's rows are its requests, e.g. each poll of an \
         authorization). ACME rows are round trips to pebble — the CA's own processing plus \
         loopback TLS; the rest of the wall time is renewd's local work (start, config, \
         store, key and CSR, installing the files) and the pause between polls.\n"
    );
    let steps: BTreeSet<&str> = o
        .renewd
        .iter()
        .chain(&o.renewd_forced)
        .flat_map(|x| x.steps.keys().map(String::as_str))
        .collect();
    let _ = writeln!(
        t,
        "| step | `renew`, empty state: rows | ms | `renew --force`: rows | ms |\n|---|---|---|---|---|"
    );
    let ordered = Step::ISSUANCE_REQUESTS
        .iter()
        .map(|s| s.as_str())
        .filter(|s| steps.contains(s))
        .chain(steps.iter().copied().filter(|s| !is_acme(s)));
    for step in ordered {
        let (n1, ms1) = step_ms(&o.renewd, step);
        let (n2, ms2) = step_ms(&o.renewd_forced, step);
        let kind = if is_acme(step) { "" } else { " (local)" };
        let _ = writeln!(
            t,
            "| {step}{kind} | {n1:.0} | {} | {n2:.0} | {} |",
            millis(ms1),
            millis(ms2)
        );
    }
    let summary = |runs: &[RenewdRun]| {
        let wall = med(runs, |x| x.run.wall.as_secs_f64() * 1e3);
        let cpu = med(runs, |x| x.run.cpu.as_secs_f64() * 1e3);
        let acme = med(runs, |x| {
            x.steps
                .iter()
                .filter(|(k, _)| is_acme(k))
                .map(|(_, v)| v.1)
                .sum()
        });
        let local = med(runs, |x| {
            x.steps
                .iter()
                .filter(|(k, _)| !is_acme(k))
                .map(|(_, v)| v.1)
                .sum()
        });
        (wall, cpu, acme, local)
    };
    let (w1, c1, a1, l1) = summary(&o.renewd);
    let (w2, c2, a2, l2) = summary(&o.renewd_forced);
    let _ = writeln!(
        t,
        "| **wall (process)** | | **{}** | | **{}** |\n\
         | renewd's CPU (user + system) | | {} ({:.0} % of wall) | | {} ({:.0} % of wall) |\n\
         | ACME round trips (sum of the rows above) | | {} | | {} |\n\
         | local steps in the ledger | | {} | | {} |\n\
         | the rest: start-up, key and CSR, store, pauses between polls | | {} | | {} |\n",
        millis(w1),
        millis(w2),
        millis(c1),
        c1 / w1 * 100.0,
        millis(c2),
        c2 / w2 * 100.0,
        millis(a1),
        millis(a2),
        millis(l1),
        millis(l2),
        millis((w1 - a1 - l1).max(0.0)),
        millis((w2 - a2 - l2).max(0.0)),
    );
}

fn one_runs(t: &mut String, o: &OneCert) {
    let walls = |v: &[RenewdRun]| secs_of(v, |x| x.run.wall);
    let _ = writeln!(
        t,
        "### One certificate, every run\n\n\
         - renewd `renew` (empty state): {}; CPU {}; peak RSS {}\n\
         - renewd `renew --force --cert one`: {}; CPU {}; peak RSS {}\n\
         - lego: {}; CPU {}; peak RSS {}\n\
         - certbot: {}; CPU {}; peak RSS {}\n",
        list(&walls(&o.renewd), secs),
        list(&secs_of(&o.renewd, |x| x.run.cpu), secs),
        list(&kib_of(&o.renewd, |x| x.run.max_rss_kib), mib),
        list(&walls(&o.renewd_forced), secs),
        list(&secs_of(&o.renewd_forced, |x| x.run.cpu), secs),
        list(&kib_of(&o.renewd_forced, |x| x.run.max_rss_kib), mib),
        list(&secs_of(&o.lego, |x| x.wall), secs),
        list(&secs_of(&o.lego, |x| x.cpu), secs),
        list(&kib_of(&o.lego, |x| x.max_rss_kib), mib),
        list(&secs_of(&o.certbot, |x| x.wall), secs),
        list(&secs_of(&o.certbot, |x| x.cpu), secs),
        list(&kib_of(&o.certbot, |x| x.max_rss_kib), mib),
    );
}

fn idle(t: &mut String, r: &Results, i: &crate::scenario::idle::Idle) {
    let _ = writeln!(
        t,
        "### Idle daemon\n\n\
         Setup: {} certificates issued through the daemon (8 workers) in {}, peak RSS {}, CPU \
         {}; {} s after the last, that same daemon's RSS was {} ({} anonymous). Then each \
         window on a fresh start:\n\n\
         | window | VmRSS | RssAnon (start → end) | RssFile | VmHWM | CPU (stat) | CPU (schedstat) | voluntary / involuntary switches | threads | ledger rows added |\n\
         |---|---|---|---|---|---|---|---|---|---|",
        r.idle_certs,
        secs(i.setup.all_valid.as_secs_f64()),
        mib(i.setup.peak_rss_kib as f64),
        secs(i.setup.cpu.as_secs_f64()),
        crate::scenario::idle::SETTLE.as_secs(),
        mib(i.setup.after_rest.map_or(f64::NAN, |s| s.rss_kib as f64)),
        mib(i.setup.after_rest.map_or(f64::NAN, |s| s.anon_kib as f64)),
    );
    for (k, run) in i.runs.iter().enumerate() {
        let w = &run.window;
        let _ = writeln!(
            t,
            "| {} | {} | {} → {} | {} | {} | {} | {} | {} / {} | {} → {} | {} |",
            k + 1,
            mib(w.end.rss_kib as f64),
            mib(w.anon_at_start_kib as f64),
            mib(w.end.anon_kib as f64),
            mib(w.end.file_kib as f64),
            mib(w.end.hwm_kib as f64),
            millis(w.cpu.as_secs_f64() * 1e3),
            millis(w.cpu_precise.as_secs_f64() * 1e3),
            w.voluntary_switches,
            w.involuntary_switches,
            w.threads_at_start,
            w.end.threads,
            run.ledger_rows_added
        );
    }
    match &i.wakeups {
        Some(w) => {
            let _ = writeln!(
                t,
                "\nUnder strace for {:.0} s: {} returns from blocking waits, in {} episodes \
                 starting at {} s into the window.\n",
                w.window_secs,
                w.returns.len(),
                w.episodes.len(),
                list(&w.episodes, |v| format!("{v:.1}"))
            );
        }
        None => {
            let _ = writeln!(t, "\nstrace is not installed: no wake-up timestamps.\n");
        }
    }
}
