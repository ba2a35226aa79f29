//! Checks of single values: numbers in range, durations, paths, commands, addresses.
//!
//! Each returns [`Checked`]: the value, or [`Reported`] once the problem is recorded, so a
//! caller can check every key first and combine the results afterwards.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::{Check, Checked, Reported};
use crate::command::Command;
use crate::defaults::{DurationBounds, IntBounds};
use crate::duration::{RawDuration, format_duration};
use crate::raw::{Field, StringList};

impl Check<'_> {
    /// Records a problem and returns [`Reported`].
    pub(crate) fn report<T>(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Checked<T> {
        self.problems.push(span, message);
        Err(Reported)
    }

    /// A key that must be present; `table` is the span of the enclosing table, where a
    /// missing key is reported. `example` is a line to suggest, such as `directory = "…"`.
    pub(crate) fn required<'r, T>(
        &mut self,
        field: &'r Field<T>,
        what: &str,
        table: &Range<usize>,
        example: &str,
    ) -> Checked<&'r Spanned<T>> {
        match field {
            Some(v) => Ok(v),
            None => self.report(table.clone(), format!("{what} is missing; add {example}")),
        }
    }

    /// An optional value checked by `f` when present.
    pub(crate) fn optional<'r, T, U>(
        &mut self,
        field: &'r Field<T>,
        f: impl FnOnce(&mut Self, &'r Spanned<T>) -> Checked<U>,
    ) -> Checked<Option<U>> {
        field.as_ref().map(|v| f(self, v)).transpose()
    }

    /// An integer in `bounds`, or `default` when absent.
    pub(crate) fn int(
        &mut self,
        field: &Field<i64>,
        key: &str,
        default: i64,
        bounds: IntBounds,
    ) -> Checked<i64> {
        let Some(v) = field else { return Ok(default) };
        let n = *v.get_ref();
        if n < bounds.min || n > bounds.max {
            return self.report(
                v.span(),
                format!(
                    "{key} must be between {} and {}; got {n}",
                    bounds.min, bounds.max
                ),
            );
        }
        Ok(n)
    }

    /// A duration in `bounds`, or `default` when absent.
    pub(crate) fn duration(
        &mut self,
        field: &Field<RawDuration>,
        key: &str,
        default: Duration,
        bounds: DurationBounds,
    ) -> Checked<Duration> {
        match field {
            None => Ok(default),
            Some(v) => self.some_duration(v, key, bounds),
        }
    }

    /// A present duration in `bounds`.
    pub(crate) fn some_duration(
        &mut self,
        v: &Spanned<RawDuration>,
        key: &str,
        bounds: DurationBounds,
    ) -> Checked<Duration> {
        let d = match v.get_ref().parse() {
            Ok(d) => d,
            Err(e) => return self.report(v.span(), format!("{key}: {e}")),
        };
        if d < bounds.min || d > bounds.max {
            return self.report(
                v.span(),
                format!(
                    "{key} must be between {} and {}; got {}",
                    format_duration(bounds.min),
                    format_duration(bounds.max),
                    format_duration(d)
                ),
            );
        }
        Ok(d)
    }

    /// A free-form label (profile, chain name, EAB key id): non-empty, no control
    /// characters, no surrounding spaces.
    pub(crate) fn label(&mut self, v: &Spanned<String>, key: &str) -> Checked<String> {
        let s = v.get_ref();
        if s.trim().is_empty() {
            return self.report(
                v.span(),
                format!("{key} is empty; remove it or give a value"),
            );
        }
        if s.trim() != s || s.chars().any(char::is_control) {
            return self.report(
                v.span(),
                format!("{key} {s:?} has surrounding spaces or control characters; remove them"),
            );
        }
        Ok(s.clone())
    }

    /// An absolute path without NUL bytes.
    pub(crate) fn abs_path(&mut self, v: &Spanned<String>, key: &str) -> Checked<PathBuf> {
        let s = v.get_ref();
        if s.is_empty() {
            return self.report(v.span(), format!("{key} is empty; give an absolute path"));
        }
        if s.contains('\0') {
            return self.report(v.span(), format!("{key} contains a NUL byte"));
        }
        if !Path::new(s).is_absolute() {
            return self.report(
                v.span(),
                format!(
                    "{key} {s:?} is not an absolute path; write it from the root, as in \"/{}\"",
                    s.trim_start_matches("./")
                ),
            );
        }
        Ok(PathBuf::from(s))
    }

    /// An argv list: at least the program, given as an absolute path.
    pub(crate) fn command(&mut self, v: &Spanned<StringList>, key: &str) -> Checked<Command> {
        let argv: Vec<String> = v.get_ref().iter().map(|a| a.get_ref().clone()).collect();
        let Some(first) = v.get_ref().first() else {
            return self.report(
                v.span(),
                format!("{key} is empty; give the program and its arguments, as in [\"/usr/bin/systemctl\", \"reload\", \"nginx\"]"),
            );
        };
        let program = first.get_ref();
        if program.contains(' ') && !Path::new(program).exists() {
            let words: Vec<String> = program
                .split_whitespace()
                .map(|w| format!("{w:?}"))
                .collect();
            return self.report(
                first.span(),
                format!("{key}: {program:?} is one string with spaces, but no shell splits it; give each word separately: [{}]", words.join(", ")),
            );
        }
        if !Path::new(program).is_absolute() {
            return self.report(
                first.span(),
                format!("{key}: the program {program:?} must be an absolute path (no shell or $PATH lookup is involved), as in \"/usr/bin/{program}\""),
            );
        }
        if let Some(a) = v.get_ref().iter().find(|a| a.get_ref().contains('\0')) {
            return self.report(a.span(), format!("{key}: an argument contains a NUL byte"));
        }
        Command::new(argv).map_or_else(
            || self.report(v.span(), format!("{key} is not a valid command")),
            Ok,
        )
    }

    /// A socket address `IP:PORT`.
    pub(crate) fn socket_addr(&mut self, v: &Spanned<String>, key: &str) -> Checked<SocketAddr> {
        let s = v.get_ref();
        match s.parse::<SocketAddr>() {
            Ok(a) => Ok(a),
            Err(_) => {
                let hint = if s.parse::<std::net::IpAddr>().is_ok() {
                    "it lacks a port; "
                } else if s.starts_with(|c: char| c.is_ascii_alphabetic())
                    && s.contains(':')
                    && !s.contains("::")
                {
                    "host names are not resolved here; "
                } else {
                    ""
                };
                self.report(
                    v.span(),
                    format!("{key}: {s:?} is not an IP:PORT socket address; {hint}write it as in \"127.0.0.1:5002\", \"0.0.0.0:80\" or \"[::1]:5002\""),
                )
            }
        }
    }

    /// A non-empty list of distinct socket addresses.
    pub(crate) fn socket_addrs(
        &mut self,
        v: &Spanned<StringList>,
        key: &str,
    ) -> Checked<Vec<SocketAddr>> {
        if v.get_ref().is_empty() {
            return self.report(
                v.span(),
                format!("{key} is empty; give at least one address, as in [\"0.0.0.0:80\"]"),
            );
        }
        let mut out: Vec<SocketAddr> = Vec::new();
        let mut failed = false;
        for item in v.get_ref() {
            match self.socket_addr(item, key) {
                Ok(a) if out.contains(&a) => {
                    failed = true;
                    self.problems.push(
                        item.span(),
                        format!("{key}: {a} is listed twice; remove one"),
                    );
                }
                Ok(a) => out.push(a),
                Err(Reported) => failed = true,
            }
        }
        if failed { Err(Reported) } else { Ok(out) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::LoadEnv;
    use crate::error::Problems;

    fn spanned<T>(v: T) -> Spanned<T> {
        Spanned::new(3..7, v)
    }

    fn with_check<R>(f: impl FnOnce(&mut Check<'_>) -> R) -> (R, Vec<String>) {
        let mut problems = Problems::default();
        let env = LoadEnv::default();
        let text = "0123456789";
        let r = f(&mut Check {
            problems: &mut problems,
            env: &env,
            text,
        });
        let msgs = problems
            .into_errors(Path::new("t"), text)
            .into_iter()
            .map(|e| e.message)
            .collect();
        (r, msgs)
    }

    #[test]
    fn ints_and_durations_respect_bounds_and_defaults() {
        let b = IntBounds { min: 1, max: 256 };
        let (r, m) = with_check(|c| c.int(&None, "workers", 4, b));
        assert_eq!((r.unwrap(), m.len()), (4, 0));
        let (r, m) = with_check(|c| c.int(&Some(spanned(0)), "workers", 4, b));
        assert!(r.is_err());
        assert_eq!(m, ["workers must be between 1 and 256; got 0"]);

        let db = DurationBounds {
            min: Duration::from_secs(1),
            max: Duration::from_secs(3600),
        };
        let (r, _) = with_check(|c| c.duration(&None, "t", Duration::from_secs(9), db));
        assert_eq!(r.unwrap(), Duration::from_secs(9));
        let (r, m) = with_check(|c| {
            c.duration(
                &Some(spanned(RawDuration::Text("2h".into()))),
                "t",
                Duration::ZERO,
                db,
            )
        });
        assert!(r.is_err());
        assert_eq!(m, ["t must be between 1s and 1h; got 2h"]);
        let (_, m) = with_check(|c| {
            c.duration(
                &Some(spanned(RawDuration::Text("soon".into()))),
                "t",
                Duration::ZERO,
                db,
            )
        });
        assert!(m[0].starts_with("t: \"soon\" is not a duration"), "{m:?}");
    }

    #[test]
    fn commands_need_an_absolute_program_and_separate_words() {
        let list =
            |w: &[&str]| spanned(w.iter().map(|s| spanned(s.to_string())).collect::<Vec<_>>());
        let (r, m) = with_check(|c| c.command(&list(&["/bin/true"]), "deploy_hook"));
        assert!(r.is_ok() && m.is_empty());
        let (_, m) = with_check(|c| c.command(&list(&[]), "deploy_hook"));
        assert!(m[0].contains("is empty"));
        let (_, m) = with_check(|c| c.command(&list(&["systemctl", "reload"]), "deploy_hook"));
        assert!(m[0].contains("must be an absolute path"), "{m:?}");
        let (_, m) =
            with_check(|c| c.command(&list(&["/usr/bin/systemctl reload nginx"]), "deploy_hook"));
        assert!(
            m[0].contains(r#"["/usr/bin/systemctl", "reload", "nginx"]"#),
            "{m:?}"
        );
    }

    #[test]
    fn socket_addresses() {
        let (r, _) = with_check(|c| c.socket_addr(&spanned("[::1]:80".to_string()), "listen"));
        assert_eq!(r.unwrap().port(), 80);
        for (bad, hint) in [
            ("127.0.0.1", "lacks a port"),
            ("localhost:80", "not resolved"),
            ("x", "IP:PORT"),
        ] {
            let (_, m) = with_check(|c| c.socket_addr(&spanned(bad.to_string()), "listen"));
            assert!(m[0].contains(hint), "{bad}: {m:?}");
        }
    }
}
