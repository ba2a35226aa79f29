//! `renewd-bench`: measures renewd against issue 8's targets and against lego and certbot
//! on the same CA, and writes `docs/BENCHMARKS.md`. `scripts/bench` builds it and runs it;
//! see that script for the whole procedure.
//!
//! - [`lab`]: pebble shared by all scenarios, the work directory, renewd configs;
//! - [`peers`]: lego and certbot invocations, the rotating order of the clients;
//! - [`process`], [`procfs`], [`sys`]: children measured from the outside (wall, rusage,
//!   `/proc`, the notify socket);
//! - [`mod@scenario`]: one module per row of the table;
//! - [`report`]: the document; [`machine`]: what it ran on.

mod lab;
mod machine;
mod peers;
mod process;
mod procfs;
mod report;
mod scenario;
mod stats;
mod sys;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::lab::{Lab, Programs};
use crate::report::Results;
use crate::scenario::Outcome;

#[derive(Debug, Parser)]
#[command(about = "renewd's benchmarks against issue 8's targets (scripts/bench runs this).")]
struct Args {
    /// The renewd binary (release build).
    #[arg(long)]
    renewd: PathBuf,
    /// renewd-store's scan_bench example (release build).
    #[arg(long)]
    scan_bench: PathBuf,
    #[arg(long, default_value = "/usr/bin/lego")]
    lego: PathBuf,
    #[arg(long, default_value = "/usr/bin/certbot")]
    certbot: PathBuf,
    /// The repository, for its git revision.
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// Where the work directory goes (fixtures of up to 2 GB; removed at the end).
    #[arg(long)]
    work: Option<PathBuf>,
    /// Keep the work directory (logs, configs, state) instead of removing it.
    #[arg(long)]
    keep_work: bool,
    /// Write the report here (nothing is written without it).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Runs per figure (≥ 3 for the report).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Only these scenarios (comma-separated): one, batch, scan, idle, finalize, outage.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Certificates through the daemon in the batch row.
    #[arg(long, default_value_t = 100)]
    batch_certs: usize,
    /// Certificates lego and certbot obtain in sequence for the batch row's reference.
    #[arg(long, default_value_t = 5)]
    peer_certs: usize,
    /// Valid certificates the idle daemon manages.
    #[arg(long, default_value_t = 1000)]
    idle_certs: usize,
    /// Certificates due in the outage row.
    #[arg(long, default_value_t = 200)]
    outage_certs: usize,
    /// How long CA A refuses connections in the outage row's first run, seconds: the
    /// daemon stays up that long from its start, and its requests to A are counted over it.
    #[arg(long, default_value_t = 600)]
    outage_secs: u64,
}

impl Args {
    fn wants(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == scenario)
    }
}

/// Runs `f` when `name` is wanted, saying so on stderr; on a failure, also the end of
/// pebble's log (a pebble gone silent explains many failures).
fn scenario<T>(
    args: &Args,
    lab: &Lab,
    name: &str,
    f: impl FnOnce() -> Result<T, String>,
) -> Outcome<T> {
    if !args.wants(name) {
        return None;
    }
    eprintln!("== {name}");
    let started = Instant::now();
    let result = f();
    match &result {
        Ok(_) => eprintln!(
            "   {name}: done in {:.0} s",
            started.elapsed().as_secs_f64()
        ),
        Err(e) => {
            eprintln!("   {name}: FAILED: {e}");
            let log = lab.pebble.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            eprintln!("   the end of pebble's log:\n{tail}");
        }
    }
    Some(result)
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.runs < 3 && args.out.is_some() {
        eprintln!("renewd-bench: the report needs at least 3 runs per figure");
        return ExitCode::from(2);
    }
    let started = Instant::now();
    let machine = machine::Machine::now();
    let versions = machine::Versions::now(&args.repo);
    let programs = Programs {
        renewd: args.renewd.clone(),
        lego: args.lego.clone(),
        certbot: args.certbot.clone(),
        scan_bench: args.scan_bench.clone(),
    };
    let work = args.work.clone().unwrap_or_else(std::env::temp_dir);
    let mut lab = match Lab::start(programs, &work) {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("renewd-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "pebble at {}, http-01 on 127.0.0.1:{}, work in {}",
        lab.pebble.directory_url(),
        lab.http_port,
        lab.work().display()
    );
    let runs = args.runs;
    let one = scenario(&args, &lab, "one", || scenario::one_cert::run(&lab, runs));
    let batch = scenario(&args, &lab, "batch", || {
        scenario::batch::run(&lab, runs, args.batch_certs, args.peer_certs)
    });
    let finalize = scenario(&args, &lab, "finalize", || {
        scenario::finalize504::run(&lab, runs)
    });
    let outage = scenario(&args, &lab, "outage", || {
        scenario::outage::run(
            &lab,
            runs,
            args.outage_certs,
            Duration::from_secs(args.outage_secs),
        )
    });
    let idle = scenario(&args, &lab, "idle", || {
        scenario::idle::run(&lab, runs, args.idle_certs)
    });
    let scan = scenario(&args, &lab, "scan", || scenario::scan::run(&lab, runs));
    let results = Results {
        machine,
        versions,
        runs,
        batch_certs: args.batch_certs,
        idle_certs: args.idle_certs,
        outage_certs: args.outage_certs,
        minutes: started.elapsed().as_secs_f64() / 60.0,
        one,
        batch,
        scan,
        idle,
        finalize,
        outage,
    };
    let text = report::render(&results);
    if args.keep_work {
        eprintln!("work directory kept: {}", lab.keep().display());
    }
    drop(lab);
    println!("{text}");
    if let Some(out) = &args.out {
        if let Err(e) = std::fs::write(out, &text) {
            eprintln!("renewd-bench: {}: {e}", out.display());
            return ExitCode::FAILURE;
        }
        eprintln!("wrote {}", out.display());
    }
    let failed = [
        results.one.as_ref().is_some_and(|r| r.is_err()),
        results.batch.as_ref().is_some_and(|r| r.is_err()),
        results.scan.as_ref().is_some_and(|r| r.is_err()),
        results.idle.as_ref().is_some_and(|r| r.is_err()),
        results.finalize.as_ref().is_some_and(|r| r.is_err()),
        results.outage.as_ref().is_some_and(|r| r.is_err()),
    ];
    if failed.iter().any(|f| *f) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
