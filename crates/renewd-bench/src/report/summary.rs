//! The table of targets: one row per scenario of issue 8, renewd's median, the peers'
//! medians from the same rounds, their ratio, and whether renewd met its target.

use std::fmt::Write as _;

use super::{Results, med, verdict};
use crate::scenario::Outcome;
use crate::stats::{mib, millis, ratio, secs};

/// A row's cells after "scenario" and "target".
struct Cells {
    renewd: String,
    reference: String,
    ratio: String,
    verdict: String,
}

fn failed(e: &str) -> Cells {
    Cells {
        renewd: format!("failed: {}", first_line(e)),
        reference: "—".into(),
        ratio: "—".into(),
        verdict: "not measured".into(),
    }
}

fn first_line(e: &str) -> String {
    e.lines()
        .next()
        .unwrap_or("")
        .replace('|', "/")
        .chars()
        .take(200)
        .collect()
}

fn row<T>(
    t: &mut String,
    scenario: &str,
    target: &str,
    outcome: &Outcome<T>,
    f: impl FnOnce(&T) -> Cells,
) {
    let cells = match outcome {
        None => return,
        Some(Err(e)) => failed(e),
        Some(Ok(v)) => f(v),
    };
    let _ = writeln!(
        t,
        "| {scenario} | {target} | {} | {} | {} | {} |",
        cells.renewd, cells.reference, cells.ratio, cells.verdict
    );
}

/// The table.
pub fn table(t: &mut String, r: &Results) {
    let _ = writeln!(
        t,
        "## Results\n\n\
         Ratios are the reference's figure over renewd's (how many times faster or smaller \
         renewd is). Targets are issue 8's.\n\n\
         | scenario | renewd target | renewd (median) | reference (same run) | ratio | target |\n\
         |---|---|---|---|---|---|"
    );
    row(
        t,
        "one certificate, real http-01, wall",
        "≤ 0.3 s",
        &r.one,
        |o| {
            let renewd = med(&o.renewd, |x| x.run.wall.as_secs_f64());
            let forced = med(&o.renewd_forced, |x| x.run.wall.as_secs_f64());
            let lego = med(&o.lego, |x| x.wall.as_secs_f64());
            let certbot = med(&o.certbot, |x| x.wall.as_secs_f64());
            Cells {
                renewd: format!(
                    "{} (`renew`, empty state); {} (`renew --force`, account known)",
                    secs(renewd),
                    secs(forced)
                ),
                reference: format!("lego {}, certbot {}", secs(lego), secs(certbot)),
                ratio: format!(
                    "lego {}, certbot {}",
                    ratio(lego, renewd),
                    ratio(certbot, renewd)
                ),
                verdict: verdict(renewd <= 0.3 && forced <= 0.3).into(),
            }
        },
    );
    let n = r.batch_certs;
    row(
        t,
        &format!("{n} certificates through the daemon (8 workers)"),
        "≤ 5 s",
        &r.batch,
        |b| {
            let renewd = med(&b.renewd, |x| x.all_valid.as_secs_f64());
            let per = |s: &[crate::scenario::batch::PeerSequence]| {
                med(s, |x| x.per_cert().as_secs_f64()) * n as f64
            };
            let (lego, certbot) = (per(&b.lego), per(&b.certbot));
            Cells {
                renewd: format!("{} (READY after {})", secs(renewd), {
                    secs(med(&b.renewd, |x| x.ready.as_secs_f64()))
                }),
                reference: format!(
                    "lego {}, certbot {} — {n} × the per-certificate median of {} in sequence \
                     (extrapolated)",
                    secs(lego),
                    secs(certbot),
                    b.peer_certs
                ),
                ratio: format!(
                    "lego {}, certbot {}",
                    ratio(lego, renewd),
                    ratio(certbot, renewd)
                ),
                verdict: verdict(renewd <= 5.0).into(),
            }
        },
    );
    if let Some(Ok(scans)) = &r.scan {
        for (n, limit_s) in [(10_000usize, 0.5), (100_000, 5.0)] {
            let Some(runs) = scans.get(&n) else { continue };
            let wall = med(runs, |x| x.wall_ms);
            let peak = med(runs, |x| x.peak_mib);
            let _ = writeln!(
                t,
                "| inventory scan, {n} certificates | ≤ {limit_s} s, ≤ 64 MiB | {}, peak RSS {peak:.1} MiB | — | — | {} |",
                millis(wall),
                verdict(wall / 1e3 <= limit_s && peak <= 64.0)
            );
        }
    } else {
        row(
            t,
            "inventory scan",
            "≤ 0.5 s / ≤ 5 s, ≤ 64 MiB",
            &r.scan,
            |_| failed(""),
        );
    }
    let (lego_rss, certbot_rss) = match &r.one {
        Some(Ok(o)) => (
            med(&o.lego, |x| x.max_rss_kib as f64),
            med(&o.certbot, |x| x.max_rss_kib as f64),
        ),
        _ => (f64::NAN, f64::NAN),
    };
    row(
        t,
        &format!("idle daemon managing {} valid certificates", r.idle_certs),
        "RSS ≤ 15 MiB; ≤ 20 ms CPU over 60 s; wake-ups at most once a minute",
        &r.idle,
        |i| {
            let rss = med(&i.runs, |x| x.window.end.rss_kib as f64);
            let anon = med(&i.runs, |x| x.window.end.anon_kib as f64);
            let file = med(&i.runs, |x| x.window.end.file_kib as f64);
            let cpu = med(&i.runs, |x| x.window.cpu_precise.as_secs_f64() * 1e3);
            let switches = med(&i.runs, |x| x.window.voluntary_switches as f64);
            let (wake, wake_ok) = match &i.wakeups {
                Some(w) => {
                    let per_min = w.episodes.len() as f64 * 60.0 / w.window_secs;
                    (
                        format!(
                            "{per_min:.1} wake-up episodes a minute (strace, {} returns from waits in {:.0} s)",
                            w.returns.len(),
                            w.window_secs
                        ),
                        per_min <= 1.0,
                    )
                }
                None => ("wake-ups not traced (no strace)".into(), false),
            };
            Cells {
                renewd: format!(
                    "RSS {} ({} anonymous + {} file-backed); CPU {} per 60 s; {switches:.0} \
                     context switches per 60 s; {wake}",
                    mib(rss),
                    mib(anon),
                    mib(file),
                    millis(cpu)
                ),
                reference: format!(
                    "peak RSS per run: lego {}, certbot {}",
                    mib(lego_rss),
                    mib(certbot_rss)
                ),
                ratio: format!(
                    "RSS: lego {}, certbot {}",
                    ratio(lego_rss, rss),
                    ratio(certbot_rss, rss)
                ),
                verdict: format!(
                    "RSS {}; CPU {}; wake-ups {}",
                    verdict(rss <= 15.0 * 1024.0),
                    verdict(cpu <= 20.0),
                    verdict(wake_ok)
                ),
            }
        },
    );
    row(
        t,
        "finalize answered 504 after issuing, on every order",
        "0 wasted issuances, every certificate issued",
        &r.finalize,
        |attempts| {
            let tally = |c: crate::peers::Client| {
                let mine: Vec<_> = attempts.iter().filter(|a| a.client == c).collect();
                let obtained = mine.iter().filter(|a| a.obtained).count();
                let wasted: u64 = mine.iter().map(|a| a.wasted()).sum();
                let errors = mine.iter().filter(|a| !a.exit_ok).count();
                (mine.len(), obtained, wasted, errors)
            };
            let (n, ok, wasted, _) = tally(crate::peers::Client::Renewd);
            let peer = |c| {
                let (n, ok, wasted, errors) = tally(c);
                format!("{c}: {ok} of {n} obtained, {wasted} wasted, {errors} errors")
            };
            Cells {
                renewd: format!("{ok} of {n} obtained, {wasted} wasted"),
                reference: format!(
                    "{}; {}",
                    peer(crate::peers::Client::Lego),
                    peer(crate::peers::Client::Certbot)
                ),
                ratio: "—".into(),
                verdict: verdict(ok == n && wasted == 0).into(),
            }
        },
    );
    row(
        t,
        &format!(
            "CA A refusing connections, {} certificates due, B healthy",
            r.outage_certs
        ),
        "all issued via B; requests to A limited to probes",
        &r.outage,
        |runs| {
            let all_b = runs.iter().all(|x| x.issued_by_b == x.certs);
            let only_probes = runs
                .iter()
                .all(|x| x.a_rows.keys().all(|k| k.starts_with("probe/")));
            let wall = med(runs, |x| x.all_valid.as_secs_f64());
            let long = runs.first();
            Cells {
                renewd: format!(
                    "all {} valid via B after {}; requests to A over {} with the daemon up: {} \
                     ({})",
                    r.outage_certs,
                    secs(wall),
                    long.map_or_else(
                        || "—".into(),
                        |x| secs((x.all_valid + x.kept_up).as_secs_f64())
                    ),
                    long.map_or(0, |x| x.a_attempts()),
                    long.map(|x| rows(&x.a_rows)).unwrap_or_default()
                ),
                reference: "—".into(),
                ratio: "—".into(),
                verdict: verdict(all_b && only_probes).into(),
            }
        },
    );
    row(
        t,
        &format!("peak RSS while issuing {n} certificates"),
        "≤ 40 MiB",
        &r.batch,
        |b| {
            let peak = med(&b.renewd, |x| x.peak_rss_kib as f64);
            Cells {
                renewd: mib(peak),
                reference: format!(
                    "per process: lego {}, certbot {}",
                    mib(lego_rss),
                    mib(certbot_rss)
                ),
                ratio: "—".into(),
                verdict: verdict(peak <= 40.0 * 1024.0).into(),
            }
        },
    );
    let _ = writeln!(t);
}

/// `probe/ca_unavailable: 3, …`.
pub fn rows(map: &std::collections::BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k} × {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
