//! The `renewd` binary's crate: the command line, the daemon's lifecycle under systemd,
//! logging and metrics, and the renewal engine that wires the store, the scheduler, the
//! issuer and the host's responders and hooks together behind one seam, [`Engine`].
//!
//! # Design overview
//!
//! - **Command line** ([`Cli`], [`execute`]): `renewd [--config PATH] [--log-format F] [-v]
//!   COMMAND`, exactly as `CONTRACT.md` spells it. Usage errors exit 2 (clap's, and names
//!   the config does not know: [`renew_selection`]); `check` exits 0 or
//!   78 with every problem as `PATH:LINE:COL: message` ([`check`]). Nothing but the result
//!   goes to stdout.
//! - **Daemon** ([`run_daemon`], [`run_lifecycle`]): systemd `Type=notify`. One root
//!   cancellation token, a child per subsystem, long tasks in a `JoinSet`. `READY=1` and a
//!   one-line `STATUS=` once started; `WATCHDOG=1` every half `WATCHDOG_USEC` but only while
//!   the main loop beats its [`Heartbeat`]; SIGHUP → `RELOADING=1` + `MONOTONIC_USEC=` →
//!   load and validate → apply or keep the old config → `READY=1`; SIGTERM/SIGINT →
//!   `STOPPING=1`, no new jobs, drain within `[daemon] shutdown_grace`, exit 0.
//! - **Engine seam** ([`Engine`], [`StartEngine`], [`EngineContext`]): the daemon starts
//!   the engine, hands it the heartbeat, the [`StatusLine`], the [`Metrics`] and a shutdown
//!   token, then only asks it to reload and to drain.
//! - **Engine** (`engine`): opens the store (`recover`, orphaned keys), scans, starts the
//!   challenge responders, the issuer (hooks and `verify_served` through renewd-local,
//!   every ledger row to the log and the metrics) and the scheduler; bridges the issuer's
//!   `WorkDone` and events to the scheduler, the metrics, `STATUS=` and the crit alarm;
//!   relays the scheduler loop's ticks to the heartbeat (so the watchdog follows the loop
//!   that does the work); serves the control socket `STATE/control.sock`.
//! - **Renew** (`renew`): one pass — forwarded to the daemon over the control socket when
//!   one runs, else in this process with the same rules (`decide`, leases, the issuer's
//!   `run_once`); one result line per certificate on stdout.
//! - **Inspection** (`status`, `ledger`, `ca`): the state store opened read-only (safe while
//!   the daemon writes; a store that does not exist yet reads as empty and is not created)
//!   joined with the inventory scan of the configured certificates. A certificate's state
//!   follows the scheduler's order (renewing, failing, missing, due, valid); its due time
//!   and next attempt are `renewd_scheduler::decide`'s, the rule the daemon follows.
//!   `ledger --ca/--cert` accept names no longer configured: history outlives the config.
//! - **Migration** (`import certbot`): certbot's renewal configurations and current
//!   certificates → the equivalent config (checked by renewd's own validation) and the
//!   certificates adopted into the store, so they are renewed on time (`docs/MIGRATING.md`).
//! - **Logging** ([`init_logging`], [`log_fields`], [`log_expiry_danger`]): journald with
//!   upper-cased, unprefixed fields when `$JOURNAL_STREAM` is stderr; human or JSON lines
//!   otherwise; expiry alarms at journald priority crit.
//! - **Metrics** ([`Metrics`], [`serve_metrics`]): Prometheus text at `/metrics`, and
//!   `/healthz` tied to the heartbeat.
//! - **Memory** ([`tune_allocator_for_daemon`], [`release_free_memory`]): the daemon keeps
//!   glibc's malloc from holding on to what bursts of work freed, and empties SQLite's page
//!   cache when it comes to rest.
//! - **Reports** ([`write_status`], [`write_ledger`], [`write_cas`]): tables and the
//!   contract's JSON, from typed rows.
//!
//! Place in the flow: the top. It depends on every library crate; none depends on it.

mod alarm;
mod check;
mod cli;
mod commands;
mod daemon;
mod engine;
mod exit;
mod heartbeat;
mod import;
mod inspect;
pub mod log_fields;
mod logging;
mod memory;
mod metrics;
mod renew;
mod report;
mod selection;
#[cfg(test)]
mod test_support;

pub use alarm::{EXPIRY_DANGER, log_expiry_danger};
pub use check::{check, write_load_error};
pub use cli::{
    CONFIG_ENV, CertbotImportArgs, Cli, Command, DEFAULT_CONFIG_PATH, DEFAULT_LEDGER_LIMIT,
    ImportArgs, ImportSource, JsonFlag, LedgerArgs, LogFormatArg, RenewArgs, config_path,
};
pub use commands::execute;
pub use daemon::{
    Control, DaemonSetup, Notifier, StartEngineBox, SystemdNotifier, engineless_status,
    forward_signals, notify_wire, run_daemon, run_lifecycle,
};
pub use engine::control::{ControlRequest, RenewRequest, SOCKET_NAME as CONTROL_SOCKET_NAME};
pub use engine::outcome::{CertOutcome, FinalLine, Finish, RenewResult};
pub use engine::{Drained, Engine, EngineContext, EngineFuture, StartEngine, StatusLine};
pub use exit::{
    CONFIG as EXIT_CONFIG, FAILURE as EXIT_FAILURE, OK as EXIT_OK, USAGE as EXIT_USAGE,
};
pub use heartbeat::{Heartbeat, Liveness, period_for as heartbeat_period};
pub use logging::{
    FileId, Sink as LogSink, alarm_priorities, default_directives, init_logging,
    parse_journal_stream, stderr_id, wanted_sink,
};
pub use memory::{release_free_memory, tune_for_daemon as tune_allocator_for_daemon};
pub use metrics::{
    CONTENT_TYPE as METRICS_CONTENT_TYPE, CertTimes, Metrics, MetricsListener,
    serve as serve_metrics,
};
pub use report::{CertStatus, Format, StatusRow, write_cas, write_ledger, write_status};
pub use selection::{
    LEDGER_STEPS, LedgerFilter, RenewSelection, UsageError, ledger_filter, renew_selection,
};
