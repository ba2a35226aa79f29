//! The `renewd` executable: parse the command line (usage errors exit 2), run the command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    renewd::execute(renewd::Cli::parse())
}
