//! The environment a hook starts with: a few variables inherited from renewd's own
//! environment, then the `RENEWD_*` variables of the event.
//!
//! Hooks do not inherit renewd's whole environment. Under systemd that environment holds
//! `NOTIFY_SOCKET`, `WATCHDOG_PID`/`WATCHDOG_USEC`, `LISTEN_FDS` and `JOURNAL_STREAM`,
//! which would let a hook speak for the daemon to systemd or point at streams it does not
//! own; and whatever else the operator's shell had would make a hook behave differently
//! under `renewd renew` than under the daemon. So the environment is cleared and only
//! [`INHERITED`] is passed on, plus `RENEWD_*` for the event. `PATH` falls back to
//! [`DEFAULT_PATH`] when renewd has none.

use std::ffi::{OsStr, OsString};

/// The variables passed on from renewd's environment to every hook, when set: the program
/// search path, the user and locale, the temporary directory, and the directories systemd
/// gives the service (`$CREDENTIALS_DIRECTORY` lets a DNS hook read an API token delivered
/// with `LoadCredential=`).
pub const INHERITED: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TZ",
    "TMPDIR",
    "CREDENTIALS_DIRECTORY",
    "RUNTIME_DIRECTORY",
    "STATE_DIRECTORY",
    "CACHE_DIRECTORY",
    "LOGS_DIRECTORY",
    "CONFIGURATION_DIRECTORY",
];

/// `PATH` for hooks when renewd's environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Keeps the [`INHERITED`] variables of `vars` (and adds [`DEFAULT_PATH`] if `PATH` is
/// missing).
pub(crate) fn inherited_from(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    let mut kept: Vec<(OsString, OsString)> = vars
        .into_iter()
        .filter(|(k, _)| INHERITED.iter().any(|name| OsStr::new(name) == k))
        .collect();
    if !kept.iter().any(|(k, _)| k == "PATH") {
        kept.push((OsString::from("PATH"), OsString::from(DEFAULT_PATH)));
    }
    kept
}

/// `text` on one line of at most `max` characters: control characters (newlines included)
/// become spaces, runs of spaces collapse, and a cut is marked with `…`.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    let mut count = 0;
    let mut last_space = true;
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c == ' ' && last_space {
            continue;
        }
        if count + 1 >= max {
            out.push('…');
            return out;
        }
        last_space = c == ' ';
        out.push(c);
        count += 1;
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn only_the_allowlist_is_inherited() {
        let kept = inherited_from(os(&[
            ("PATH", "/bin"),
            ("LANG", "C.UTF-8"),
            ("NOTIFY_SOCKET", "/run/systemd/notify"),
            ("WATCHDOG_USEC", "1000"),
            ("RENEWD_CONFIG", "/etc/renewd/renewd.toml"),
            ("CREDENTIALS_DIRECTORY", "/run/credentials/renewd.service"),
        ]));
        assert_eq!(
            kept,
            os(&[
                ("PATH", "/bin"),
                ("LANG", "C.UTF-8"),
                ("CREDENTIALS_DIRECTORY", "/run/credentials/renewd.service"),
            ])
        );
        assert_eq!(inherited_from(Vec::new()), os(&[("PATH", DEFAULT_PATH)]));
    }

    #[test]
    fn one_line_flattens_and_cuts() {
        assert_eq!(one_line("a\nb\r\n\tc  d ", 100), "a b c d");
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert_eq!(one_line("", 4), "");
        assert_eq!(one_line("ééé", 10), "ééé");
    }
}
