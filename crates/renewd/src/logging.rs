//! Where log lines go: journald, human-readable lines or JSON lines on stderr.
//!
//! The format is `--log-format`, else the config's `[daemon] log_format`, else `auto`:
//!
//! - `auto`: journald's native protocol when `$JOURNAL_STREAM` names stderr (systemd
//!   connected our stderr to the journal, so structured entries are better than text),
//!   otherwise human-readable lines.
//! - `journald`: native journald entries, field names upper-cased without a prefix
//!   (`CERT_NAME`, `CA`, see `log_fields`), `SYSLOG_IDENTIFIER=renewd`; alarm events at
//!   priority crit (see `alarm`).
//! - `human`: `tracing_subscriber::fmt` lines, coloured only on a terminal.
//! - `json`: one JSON object per line, event fields at the top level.
//!
//! When journald is wanted but its socket cannot be reached, logs fall back to human lines
//! and the first line says why. Filtering: `RUST_LOG` when set, else `info`, with `-v`
//! raising renewd's own crates to `debug` and `-vv` to `trace`.

use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;

use renewd_config::LogFormat;
use tracing_journald::{Priority, PriorityMappings};
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use crate::log_fields::{ALARM_TARGET, SYSLOG_IDENTIFIER};

/// Where logs actually go, once set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// journald's native protocol.
    Journald,
    /// Human-readable lines on stderr.
    Human,
    /// JSON lines on stderr.
    Json,
}

/// A device and inode pair, as `$JOURNAL_STREAM` spells it (`DEV:INO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    /// `st_dev`
    pub dev: u64,
    /// `st_ino`
    pub ino: u64,
}

/// Parses `$JOURNAL_STREAM` (`"DEV:INO"`, both decimal).
pub fn parse_journal_stream(value: &str) -> Option<FileId> {
    let (dev, ino) = value.trim().split_once(':')?;
    Some(FileId {
        dev: dev.parse().ok()?,
        ino: ino.parse().ok()?,
    })
}

/// The device and inode of what our stderr is connected to (fstat on a duplicate of fd 2).
pub fn stderr_id() -> Option<FileId> {
    use std::os::fd::AsFd;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some(FileId {
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

/// The sink a format asks for, given `$JOURNAL_STREAM` and stderr's identity.
pub fn wanted_sink(
    format: LogFormat,
    journal_stream: Option<&str>,
    stderr: Option<FileId>,
) -> Sink {
    match format {
        LogFormat::Journald => Sink::Journald,
        LogFormat::Human => Sink::Human,
        LogFormat::Json => Sink::Json,
        LogFormat::Auto => {
            let stream = journal_stream.and_then(parse_journal_stream);
            if stream.is_some() && stream == stderr {
                Sink::Journald
            } else {
                Sink::Human
            }
        }
    }
}

/// The default filter directives for `-v` counted `verbose` times.
pub fn default_directives(verbose: u8) -> &'static str {
    match verbose {
        0 => "info",
        1 => "info,renewd=debug",
        2 => "debug,renewd=trace",
        _ => "trace",
    }
}

/// Whether an event belongs to the alarm layer (journald priority crit).
fn is_alarm(meta: &tracing::Metadata<'_>) -> bool {
    meta.target() == ALARM_TARGET
}

/// The journald priorities of alarm events: `ERROR` becomes crit.
pub fn alarm_priorities() -> PriorityMappings {
    PriorityMappings {
        error: Priority::Critical,
        ..PriorityMappings::new()
    }
}

fn journald_layer() -> std::io::Result<tracing_journald::Layer> {
    Ok(tracing_journald::layer()?
        .with_field_prefix(None)
        .with_syslog_identifier(SYSLOG_IDENTIFIER.to_string()))
}

/// Installs the global subscriber for `format` and returns where logs go. Call once.
pub fn init_logging(format: LogFormat, verbose: u8) -> Sink {
    let mut notes = Vec::new();
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(&v).unwrap_or_else(|e| {
            notes.push(format!(
                "RUST_LOG={v:?} is not a valid filter ({e}); using the default"
            ));
            EnvFilter::new(default_directives(verbose))
        }),
        _ => EnvFilter::new(default_directives(verbose)),
    };
    let journal_stream = std::env::var("JOURNAL_STREAM").ok();
    let mut sink = wanted_sink(format, journal_stream.as_deref(), stderr_id());
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match sink {
        Sink::Journald => match (journald_layer(), journald_layer()) {
            (Ok(plain), Ok(alarm)) => {
                let plain = plain.with_filter(filter_fn(|m| !is_alarm(m)));
                let alarm = alarm
                    .with_priority_mappings(alarm_priorities())
                    .with_filter(filter_fn(is_alarm));
                registry.with(plain).with(alarm).try_init()
            }
            (Err(e), _) | (_, Err(e)) => {
                notes.push(format!(
                    "journald is not reachable ({e}); logging human-readable lines to stderr"
                ));
                sink = Sink::Human;
                registry.with(human_layer()).try_init()
            }
        },
        Sink::Human => registry.with(human_layer()).try_init(),
        Sink::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    if let Err(e) = installed {
        // Only a second call can fail; the first subscriber stays.
        eprintln!("renewd: logging was already set up: {e}");
    }
    for note in notes {
        tracing::warn!("{note}");
    }
    sink
}

fn human_layer<S>() -> impl Layer<S> + Send + Sync
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_parses() {
        assert_eq!(
            parse_journal_stream("8:12345"),
            Some(FileId { dev: 8, ino: 12345 })
        );
        assert_eq!(
            parse_journal_stream("8:12345\n"),
            Some(FileId { dev: 8, ino: 12345 })
        );
        assert_eq!(parse_journal_stream("8"), None);
        assert_eq!(parse_journal_stream("8:x"), None);
        assert_eq!(parse_journal_stream(""), None);
    }

    #[test]
    fn stderr_id_is_what_proc_says_fd_2_is() {
        // /proc/self/fd/2 is a magic link: stat() on it reaches the same open file as
        // fstat(2). The two ways must agree, whatever stderr is in this test run.
        let id = stderr_id().unwrap();
        let meta = std::fs::metadata("/proc/self/fd/2").unwrap();
        assert_eq!(
            id,
            FileId {
                dev: meta.dev(),
                ino: meta.ino()
            }
        );
    }

    #[test]
    fn auto_picks_journald_only_when_the_stream_is_stderr() {
        let me = FileId { dev: 27, ino: 9001 };
        assert_eq!(
            wanted_sink(LogFormat::Auto, Some("27:9001"), Some(me)),
            Sink::Journald
        );
        assert_eq!(
            wanted_sink(LogFormat::Auto, Some("27:9002"), Some(me)),
            Sink::Human
        );
        assert_eq!(
            wanted_sink(LogFormat::Auto, Some("garbage"), Some(me)),
            Sink::Human
        );
        assert_eq!(wanted_sink(LogFormat::Auto, None, Some(me)), Sink::Human);
        assert_eq!(
            wanted_sink(LogFormat::Auto, Some("27:9001"), None),
            Sink::Human
        );
        // An explicit format is taken as asked.
        assert_eq!(
            wanted_sink(LogFormat::Json, Some("27:9001"), Some(me)),
            Sink::Json
        );
        assert_eq!(
            wanted_sink(LogFormat::Human, Some("27:9001"), Some(me)),
            Sink::Human
        );
        assert_eq!(wanted_sink(LogFormat::Journald, None, None), Sink::Journald);
    }

    #[test]
    fn verbosity_raises_renewd_first() {
        assert_eq!(default_directives(0), "info");
        assert!(default_directives(1).contains("renewd=debug"));
        assert!(default_directives(2).contains("renewd=trace"));
        assert_eq!(default_directives(9), "trace");
        for v in 0..4 {
            EnvFilter::try_new(default_directives(v)).unwrap();
        }
    }

    #[test]
    fn alarms_go_to_the_crit_layer_only() {
        let emit = || {
            crate::alarm::log_expiry_danger(
                &renewd_core::CertName::new("www").unwrap(),
                None,
                chrono::Utc::now(),
                renewd_core::Urgency::Critical,
                "x",
            );
            tracing::error!(target: "renewd::daemon", "not an alarm");
        };
        let crit = crate::test_support::capture_where(is_alarm, emit);
        assert_eq!(crit.len(), 1);
        assert_eq!(crit[0].target, ALARM_TARGET);
        let plain = crate::test_support::capture_where(|m| !is_alarm(m), emit);
        assert_eq!(plain.len(), 1);
        assert_eq!(plain[0].target, "renewd::daemon");
        let p = alarm_priorities();
        assert_eq!(p.error, Priority::Critical);
        assert_eq!(p.warn, Priority::Warning);
        assert_eq!(p.info, Priority::Notice);
    }
}
