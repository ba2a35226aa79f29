//! `renewd-testca`: the test ACME server as a process, for scripts and demos.
//!
//! Prints `renewd-testca: directory https://ADDR/dir` on stdout once it serves (after a
//! `renewd-testca: management http://ADDR` line when `--management` is given), writes the
//! HTTPS trust root to `--root-out`, and re-reads `--fault-plan` on SIGHUP (a plan that does
//! not parse is reported on stderr and the old one stays). SIGTERM or SIGINT stop it.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Parser;
use renewd_testca::{ChallengeMode, FaultPlan, TestCa, TestCaError, Validators};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "A test ACME server with a fault plan (loopback only)."
)]
struct Args {
    /// Address of the HTTPS ACME listener.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// TOML fault plan; re-read on SIGHUP.
    #[arg(long, value_name = "FILE")]
    fault_plan: Option<PathBuf>,
    /// Where to write the HTTPS trust root (PEM) clients must trust to reach the CA.
    #[arg(long, value_name = "FILE")]
    root_out: PathBuf,
    /// Where to write the issuing roots (PEM, primary then alternate).
    #[arg(long, value_name = "FILE")]
    issuing_roots_out: Option<PathBuf>,
    /// Address of the plain-HTTP management endpoint (none without it).
    #[arg(long, value_name = "ADDR")]
    management: Option<SocketAddr>,
    /// Lifetime in seconds of certificates ordered without a profile.
    #[arg(long, value_name = "SECS")]
    validity: Option<u64>,
    /// A profile NAME=SECS (repeatable); replaces the default profiles.
    #[arg(long = "profile", value_name = "NAME=SECS", value_parser = parse_profile)]
    profiles: Vec<(String, u64)>,
    /// An EAB key KID=KEY, KEY in base64url (repeatable).
    #[arg(long = "eab", value_name = "KID=KEY", value_parser = parse_eab)]
    eab: Vec<(String, Vec<u8>)>,
    /// Refuse accounts without an external account binding.
    #[arg(long)]
    eab_required: bool,
    /// `auto`, or real validation: `http01:PORT,tlsalpn01:PORT` (either or both).
    #[arg(long, default_value = "auto", value_parser = parse_challenge)]
    challenge: ChallengeArg,
}

#[derive(Debug, Clone)]
struct ChallengeArg(Option<Validators>);

fn parse_eab(s: &str) -> Result<(String, Vec<u8>), String> {
    let (kid, key) = s.split_once('=').ok_or("expected KID=KEY")?;
    let key = URL_SAFE_NO_PAD
        .decode(key.trim_end_matches('='))
        .map_err(|e| format!("KEY is not base64url: {e}"))?;
    Ok((kid.to_owned(), key))
}

fn parse_profile(s: &str) -> Result<(String, u64), String> {
    let (name, secs) = s.split_once('=').ok_or("expected NAME=SECS")?;
    let secs = secs.parse().map_err(|e| format!("SECS: {e}"))?;
    Ok((name.to_owned(), secs))
}

fn parse_challenge(s: &str) -> Result<ChallengeArg, String> {
    if s == "auto" {
        return Ok(ChallengeArg(None));
    }
    let mut v = Validators::default();
    for part in s.split(',') {
        let (kind, port) = part.split_once(':').ok_or("expected TYPE:PORT")?;
        let port: u16 = port.parse().map_err(|e| format!("{part}: {e}"))?;
        match kind {
            "http01" => v.http01_port = Some(port),
            "tlsalpn01" => v.tls_alpn01_port = Some(port),
            other => return Err(format!("unknown challenge type {other:?}")),
        }
    }
    Ok(ChallengeArg(Some(v)))
}

fn read_plan(path: &Path) -> Result<FaultPlan, TestCaError> {
    let text = std::fs::read_to_string(path).map_err(|source| TestCaError::Io {
        path: path.to_owned(),
        source,
    })?;
    FaultPlan::from_toml_str(&text)
}

fn write_file(path: &Path, text: &str) -> Result<(), TestCaError> {
    std::fs::write(path, text).map_err(|source| TestCaError::Io {
        path: path.to_owned(),
        source,
    })
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // Nothing sensible is left to do when stdout is gone; the server keeps serving.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn run(args: Args) -> Result<(), TestCaError> {
    let mut builder = TestCa::builder()
        .listen(args.listen)
        .management(args.management)
        .eab_required(args.eab_required);
    if let Some(secs) = args.validity {
        builder = builder.validity(Duration::from_secs(secs));
    }
    if !args.profiles.is_empty() {
        builder = builder.no_profiles();
        for (name, secs) in &args.profiles {
            let description = format!("{secs} seconds");
            builder = builder.profile(name, &description, Duration::from_secs(*secs));
        }
    }
    for (kid, key) in &args.eab {
        builder = builder.eab_key(kid, key);
    }
    if let ChallengeArg(Some(v)) = args.challenge {
        builder = builder.challenge_mode(ChallengeMode::Validate(v));
    }
    if let Some(path) = &args.fault_plan {
        builder = builder.fault_plan(read_plan(path)?);
    }
    let ca = builder.start().await?;
    write_file(&args.root_out, &ca.root_pem())?;
    if let Some(path) = &args.issuing_roots_out {
        write_file(path, &ca.issuing_roots_pem().concat())?;
    }
    let io = |source| TestCaError::Io {
        path: PathBuf::from("<signal>"),
        source,
    };
    let mut hup = signal(SignalKind::hangup()).map_err(io)?;
    let mut term = signal(SignalKind::terminate()).map_err(io)?;
    let mut int = signal(SignalKind::interrupt()).map_err(io)?;
    if let Some(url) = ca.management_url() {
        say(&format!("renewd-testca: management {url}"));
    }
    say(&format!("renewd-testca: directory {}", ca.directory_url()));
    loop {
        tokio::select! {
            _ = hup.recv() => match &args.fault_plan {
                Some(path) => match read_plan(path).and_then(|p| {
                    let n = p.rules.len();
                    ca.set_fault_plan(p).map(|()| n)
                }) {
                    Ok(n) => say(&format!("renewd-testca: fault plan reloaded ({n} rules)")),
                    Err(e) => eprintln!("renewd-testca: keeping the old fault plan: {e}"),
                },
                None => eprintln!("renewd-testca: SIGHUP without --fault-plan: nothing to reload"),
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    ca.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("renewd-testca: {e}");
            ExitCode::FAILURE
        }
    }
}
