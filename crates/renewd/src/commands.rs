//! From a parsed command line to an exit status.
//!
//! `check` and `run` are complete. `renew`, `status`, `ledger` and `ca` load the config and
//! check their arguments against it (an unknown `--cert`/`--ca` is a usage error, exit 2),
//! then stop with exit status 1: they need the state store and the renewal engine, which
//! this build does not wire in yet. Their output is already written (`report`) and waits
//! for rows from the store.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;
use clap::error::ErrorKind;
use renewd_config::Config;

use crate::check::{check, write_load_error};
use crate::cli::{Cli, Command, config_path};
use crate::selection::{UsageError, ledger_filter, renew_selection};
use crate::{daemon, exit};

/// Runs the command `cli` names and returns the process's exit status.
pub fn execute(cli: Cli) -> ExitCode {
    let path = config_path(cli.config.clone(), std::env::var_os(crate::cli::CONFIG_ENV));
    let status = match &cli.command {
        Command::Check => check(&path, &mut std::io::stdout(), &mut std::io::stderr()),
        Command::Run => daemon::run_daemon(&path, cli.log_format.map(Into::into), cli.verbose),
        other => needs_store(other, &path),
    };
    ExitCode::from(status)
}

/// `renew`, `status`, `ledger`, `ca`: everything up to reading the store.
fn needs_store(command: &Command, path: &Path) -> u8 {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            write_load_error(&e, &mut std::io::stderr());
            return exit::CONFIG;
        }
    };
    let checked = match command {
        Command::Renew(args) => renew_selection(&config, args).map(|_| ()),
        Command::Ledger(args) => ledger_filter(&config, args, chrono::Utc::now()).map(|_| ()),
        _ => Ok(()),
    };
    if let Err(UsageError(message)) = checked {
        // clap's own format and exit status (2) for usage errors.
        Cli::command()
            .error(ErrorKind::InvalidValue, message)
            .exit();
    }
    let _ = writeln!(
        std::io::stderr(),
        "renewd {}: reading the state store in {} is not wired into this build yet",
        command.name(),
        config.state_dir.display()
    );
    exit::FAILURE
}
