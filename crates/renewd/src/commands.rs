//! From a parsed command line to an exit status.
//!
//! `renew` loads the config and checks its arguments against it (an unknown `--cert`/`--ca`
//! is a usage error, exit 2), then runs one pass (see [`crate::renew`]): forwarded to a
//! running daemon over its control socket, or in this process.
//!
//! `status`, `ledger` and `ca` read the state store read-only (see [`crate::inspect`]):
//! exit 0 with their result on stdout; 78 when the config is invalid; 1 when the store
//! cannot be read, with the reason on stderr and nothing on stdout. They never talk to a CA,
//! so they read no EAB MAC key ([`SecretsMode::Ignore`]): an operator runs them outside
//! `renewd.service`, where a systemd credential cannot be read.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use chrono::Utc;
use clap::CommandFactory;
use clap::error::ErrorKind;
use renewd_config::{Config, LoadEnv, SecretsMode};

use crate::check::{check, write_load_error};
use crate::cli::{Cli, Command, ImportSource, LedgerArgs};
use crate::import::import_certbot;
use crate::report::{Format, write_cas, write_ledger, write_status};
use crate::selection::{UsageError, ledger_filter, renew_selection};
use crate::{daemon, exit, inspect, renew};

/// Runs the command `cli` names and returns the process's exit status.
pub fn execute(cli: Cli) -> ExitCode {
    let path =
        crate::cli::config_path(cli.config.clone(), std::env::var_os(crate::cli::CONFIG_ENV));
    let status = match &cli.command {
        Command::Check => check(&path, &mut io::stdout(), &mut io::stderr()),
        Command::Run => daemon::run_daemon(&path, cli.log_format.map(Into::into), cli.verbose),
        // In its own process renew needs an EAB key only to create an account, and says so
        // then; forwarded to the daemon it needs none.
        Command::Renew(args) => with_config(&path, SecretsMode::DeferCredentials, |config| {
            let selection = renew_selection(config, args).unwrap_or_else(|e| usage_error(e));
            renew::run(
                config,
                &selection,
                cli.log_format.map(Into::into),
                cli.verbose,
            )
        }),
        Command::Status(flag) => with_config(&path, SecretsMode::Ignore, |config| {
            status(config, flag.json)
        }),
        Command::Ledger(args) => {
            with_config(&path, SecretsMode::Ignore, |config| ledger(config, args))
        }
        Command::Ca(flag) => {
            with_config(&path, SecretsMode::Ignore, |config| cas(config, flag.json))
        }
        Command::Import(args) => match &args.source {
            ImportSource::Certbot(a) => import_certbot(a, &mut io::stdout(), &mut io::stderr()),
        },
    };
    ExitCode::from(status)
}

/// Loads the config (exit 78 when it is invalid), reading the secrets `secrets` says, and
/// runs `f` with it.
fn with_config(path: &Path, secrets: SecretsMode, f: impl FnOnce(&Config) -> u8) -> u8 {
    match Config::load_with(path, &LoadEnv::from_process().with_secrets(secrets)) {
        Ok(loaded) => f(&loaded.config),
        Err(e) => {
            write_load_error(&e, &mut io::stderr());
            exit::CONFIG
        }
    }
}

/// Exits 2 with clap's format for usage errors.
fn usage_error(UsageError(message): UsageError) -> ! {
    Cli::command()
        .error(ErrorKind::InvalidValue, message)
        .exit()
}

fn status(config: &Config, json: bool) -> u8 {
    let now = Utc::now();
    match inspect::read_status(config, now) {
        Ok(rows) => print("status", |out| {
            write_status(out, &rows, Format::from_json_flag(json), now)
        }),
        Err(e) => failed("status", &e),
    }
}

fn cas(config: &Config, json: bool) -> u8 {
    let now = Utc::now();
    match inspect::read_cas(config) {
        Ok(rows) => print("ca", |out| {
            write_cas(out, &rows, Format::from_json_flag(json), now)
        }),
        Err(e) => failed("ca", &e),
    }
}

fn ledger(config: &Config, args: &LedgerArgs) -> u8 {
    let now = Utc::now();
    let filter = ledger_filter(args, now).unwrap_or_else(|e| usage_error(e));
    let mut err = io::stderr();
    for note in filter.unconfigured(config) {
        let _ = writeln!(err, "renewd ledger: note: {note}");
    }
    let rows = match inspect::read_ledger(&config.state_dir, &filter.query()) {
        Ok(rows) => rows,
        Err(e) => return failed("ledger", &e),
    };
    if let Some(limit) = filter.limit
        && rows.len() >= limit as usize
    {
        let _ = writeln!(
            err,
            "renewd ledger: note: showing the newest {limit} rows; --limit N for more, --limit 0 for all"
        );
    }
    print("ledger", |out| {
        write_ledger(out, &rows, Format::from_json_flag(args.json), now)
    })
}

/// Writes a result to stdout. A reader that went away (`renewd status | head -1`) is not
/// an error; any other write failure is (exit 1).
fn print(command: &str, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> u8 {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            let _ = writeln!(io::stderr(), "renewd {command}: writing the result: {e}");
            exit::FAILURE
        }
    }
}

fn failed(command: &str, e: &dyn std::error::Error) -> u8 {
    let _ = writeln!(io::stderr(), "renewd {command}: {e}");
    exit::FAILURE
}
