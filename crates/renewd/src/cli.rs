//! The command line, exactly as `CONTRACT.md` spells it:
//! `renewd [--config PATH] [--log-format F] [-v] COMMAND`.
//!
//! Parsing is clap's; a usage error exits 2 with clap's message. Checks that need the config
//! (does `--cert www` name a configured certificate?) live in [`crate::selection`] and exit 2
//! the same way.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use renewd_config::{LogFormat, parse_duration};
use renewd_core::{CaName, CertName};

/// Where the config is read when neither `--config` nor `$RENEWD_CONFIG` says.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/renewd/renewd.toml";

/// How many ledger rows `renewd ledger` shows unless `--limit` says otherwise.
pub const DEFAULT_LEDGER_LIMIT: u32 = 1000;

/// The environment variable naming the config file when `--config` is absent.
pub const CONFIG_ENV: &str = "RENEWD_CONFIG";

/// An ACME certificate renewal daemon that keeps certificates renewed through CA outages.
#[derive(Debug, Parser)]
#[command(name = "renewd", version, propagate_version = true)]
pub struct Cli {
    /// The config file [default: $RENEWD_CONFIG, else /etc/renewd/renewd.toml].
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Where log lines go; overrides the config's `[daemon] log_format`.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormatArg>,

    /// More detail in the logs: -v debug, -vv trace. RUST_LOG, when set, wins.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (systemd Type=notify).
    Run,
    /// One renewal pass now: renew the due certificates, then exit.
    Renew(RenewArgs),
    /// Validate the config and the files it names.
    Check,
    /// One row per certificate.
    Status(JsonFlag),
    /// The failure ledger, newest first.
    Ledger(LedgerArgs),
    /// Each CA's health and circuit.
    Ca(JsonFlag),
    /// Move from another ACME client: write the equivalent config and adopt its
    /// certificates.
    Import(ImportArgs),
}

impl Command {
    /// The command's name as typed, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Run => "run",
            Command::Renew(_) => "renew",
            Command::Check => "check",
            Command::Status(_) => "status",
            Command::Ledger(_) => "ledger",
            Command::Ca(_) => "ca",
            Command::Import(_) => "import",
        }
    }
}

/// `renew [--cert NAME]... [--force] [--ca NAME]`
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct RenewArgs {
    /// Only this certificate (repeat for more). Default: every configured certificate.
    #[arg(long = "cert", value_name = "NAME")]
    pub certs: Vec<CertName>,
    /// Renew the selected certificates even if they are not due.
    #[arg(long)]
    pub force: bool,
    /// Use only this CA (it must be in each selected certificate's list).
    #[arg(long, value_name = "NAME")]
    pub ca: Option<CaName>,
}

/// `ledger [--ca NAME] [--cert NAME] [--since DURATION] [--limit N] [--all-steps] [--json]`
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct LedgerArgs {
    /// Only this CA's rows.
    #[arg(long, value_name = "NAME")]
    pub ca: Option<CaName>,
    /// Only this certificate's rows.
    #[arg(long, value_name = "NAME")]
    pub cert: Option<CertName>,
    /// Only rows newer than this, such as 30m, 2h, 7d.
    #[arg(long, value_name = "DURATION", value_parser = parse_since)]
    pub since: Option<Duration>,
    /// At most this many rows, the newest; 0 for all.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LEDGER_LIMIT)]
    pub limit: u32,
    /// Also the rows of renewd's own steps (install, deploy_hook, challenge_setup) and of
    /// revoke. By default only the ACME requests of issuance are shown: directory, nonce,
    /// account, new_order, authorization, challenge, finalize, poll_order, download,
    /// renewal_info, probe.
    #[arg(long)]
    pub all_steps: bool,
    /// A JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `import SOURCE ...`
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct ImportArgs {
    /// Which client to import from.
    #[command(subcommand)]
    pub source: ImportSource,
}

/// The clients `import` knows.
#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum ImportSource {
    /// certbot: its renewal configurations and current certificates.
    Certbot(CertbotImportArgs),
}

/// `import certbot [DIR] [--output FILE] [--state-dir DIR] [--dry-run]`
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct CertbotImportArgs {
    /// certbot's configuration directory (its --config-dir).
    #[arg(value_name = "DIR", default_value = "/etc/letsencrypt")]
    pub dir: PathBuf,
    /// Write the config here (never over an existing file) instead of to stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// renewd's state directory, where the certificates are adopted.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/renewd")]
    pub state_dir: PathBuf,
    /// Change nothing: print the config and say what would be adopted.
    #[arg(long)]
    pub dry_run: bool,
}

/// `--json` alone.
#[derive(Debug, Clone, Copy, Args, PartialEq, Eq)]
pub struct JsonFlag {
    /// A JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `--log-format`: the config's [`LogFormat`] as a command-line value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// journald when $JOURNAL_STREAM matches stderr, else human-readable.
    Auto,
    /// Structured journald entries.
    Journald,
    /// Human-readable lines on stderr.
    Human,
    /// One JSON object per line on stderr.
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(f: LogFormatArg) -> LogFormat {
        match f {
            LogFormatArg::Auto => LogFormat::Auto,
            LogFormatArg::Journald => LogFormat::Journald,
            LogFormatArg::Human => LogFormat::Human,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

fn parse_since(text: &str) -> Result<Duration, String> {
    parse_duration(text)
}

/// The config file: `--config`, else a non-empty `$RENEWD_CONFIG`, else the default.
pub fn config_path(flag: Option<PathBuf>, env: Option<OsString>) -> PathBuf {
    flag.or_else(|| env.filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("renewd").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn config_path_precedence() {
        let flag = Some(PathBuf::from("/flag.toml"));
        let env = Some(OsString::from("/env.toml"));
        assert_eq!(config_path(flag, env.clone()), PathBuf::from("/flag.toml"));
        assert_eq!(config_path(None, env), PathBuf::from("/env.toml"));
        assert_eq!(
            config_path(None, Some(OsString::new())),
            PathBuf::from(DEFAULT_CONFIG_PATH)
        );
        assert_eq!(config_path(None, None), PathBuf::from(DEFAULT_CONFIG_PATH));
    }

    #[test]
    fn global_flags_go_before_or_after_the_command() {
        let a = parse(&[
            "--config",
            "/a.toml",
            "--log-format",
            "json",
            "-vv",
            "check",
        ])
        .unwrap();
        let b = parse(&[
            "check",
            "--config",
            "/a.toml",
            "--log-format",
            "json",
            "-vv",
        ])
        .unwrap();
        for cli in [a, b] {
            assert_eq!(cli.config, Some(PathBuf::from("/a.toml")));
            assert_eq!(cli.log_format, Some(LogFormatArg::Json));
            assert_eq!(cli.verbose, 2);
            assert!(matches!(cli.command, Command::Check));
        }
    }

    #[test]
    fn renew_arguments() {
        let cli = parse(&[
            "renew", "--cert", "www", "--cert", "api", "--force", "--ca", "le",
        ])
        .unwrap();
        let Command::Renew(args) = cli.command else {
            panic!("not renew")
        };
        assert_eq!(
            args.certs,
            vec![CertName::new("www").unwrap(), CertName::new("api").unwrap()]
        );
        assert!(args.force);
        assert_eq!(args.ca, Some(CaName::new("le").unwrap()));
    }

    #[test]
    fn ledger_arguments() {
        let cli = parse(&["ledger", "--since", "1h30m", "--ca", "zerossl", "--json"]).unwrap();
        let Command::Ledger(args) = cli.command else {
            panic!("not ledger")
        };
        assert_eq!(args.since, Some(Duration::from_secs(5400)));
        assert_eq!(args.ca, Some(CaName::new("zerossl").unwrap()));
        assert_eq!(args.cert, None);
        assert_eq!(args.limit, DEFAULT_LEDGER_LIMIT);
        assert!(args.json);
        assert!(!args.all_steps);
        let cli = parse(&["ledger", "--limit", "0", "--cert", "gone", "--all-steps"]).unwrap();
        let Command::Ledger(args) = cli.command else {
            panic!("not ledger")
        };
        assert_eq!(args.limit, 0);
        assert_eq!(args.cert, Some(CertName::new("gone").unwrap()));
        assert!(args.all_steps);
    }

    #[test]
    fn usage_errors_are_clap_errors_with_exit_status_2() {
        for args in [
            &["ledger", "--since", "soon"][..],
            &["ledger", "--limit", "-1"],
            &["ledger", "--ca", "not/a/name"],
            &["renew", "--cert", "bad/name"],
            &["renew", "--ca", ""],
            &["status", "--yaml"],
            &["--log-format", "xml", "check"],
            &["frobnicate"],
            &[],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}: {err}");
            assert_ne!(err.kind(), ErrorKind::DisplayHelp, "{args:?}");
        }
    }

    #[test]
    fn log_format_values_match_the_config_spelling() {
        for f in LogFormat::ALL {
            let arg = LogFormatArg::from_str(f.as_str(), false).unwrap();
            assert_eq!(LogFormat::from(arg), *f);
        }
    }
}
