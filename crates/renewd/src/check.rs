//! `renewd check`: validate the config and the files it names.
//!
//! Valid: one line on stdout (`ok: 2 certificates, 2 CAs`), exit 0. Invalid: every problem on
//! stderr as `PATH:LINE:COL: message`, exit 78. Unreadable: `PATH: message` on stderr, exit 78.

use std::io::Write;
use std::path::Path;

use renewd_config::{Config, LoadError};

use crate::exit;

/// Checks the config at `path`, writing the result to `out` and problems to `err`; returns
/// the exit status.
pub fn check(path: &Path, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match Config::load(path) {
        Ok(config) => {
            // A closed stdout is not a config problem; the status still says "valid".
            let _ = writeln!(
                out,
                "ok: {}, {}",
                plural(config.certs.len(), "certificate"),
                plural(config.cas.len(), "CA")
            );
            exit::OK
        }
        Err(e) => {
            write_load_error(&e, err);
            exit::CONFIG
        }
    }
}

/// Every problem of a failed load, one per line: `PATH:LINE:COL: message` for an invalid
/// file, `PATH: message` for an unreadable one.
pub fn write_load_error(e: &LoadError, err: &mut dyn Write) {
    let _ = match e {
        LoadError::Invalid(errors) => errors
            .errors()
            .iter()
            .try_for_each(|e| writeln!(err, "{e}")),
        other => writeln!(err, "{other}"),
    };
}

/// `1 certificate`, `2 certificates`.
pub(crate) fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(path: &Path) -> (u8, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = check(path, &mut out, &mut err);
        (
            status,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn valid_invalid_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(
            &good,
            "[[ca]]\nname = \"le\"\ndirectory = \"https://acme.invalid/dir\"\n\
             [http01]\nlisten = [\"127.0.0.1:5002\"]\n\
             [[cert]]\nname = \"www\"\ndomains = [\"www.example.com\"]\ncas = [\"le\"]\n",
        )
        .unwrap();
        assert_eq!(
            run(&good),
            (0, "ok: 1 certificate, 1 CA\n".into(), String::new())
        );

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "state_dir = \"relative\"\n[daemon]\nworkers = 0\n").unwrap();
        let (status, out, err) = run(&bad);
        assert_eq!(status, 78);
        assert_eq!(out, "");
        let prefix = format!("{}:", bad.display());
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(lines[0].starts_with(&format!("{prefix}1:13: ")), "{err}");
        assert!(lines[1].starts_with(&format!("{prefix}3:11: ")), "{err}");

        let missing = dir.path().join("missing.toml");
        let (status, out, err) = run(&missing);
        assert_eq!((status, out.as_str()), (78, ""));
        assert!(
            err.starts_with(&format!("{}: ", missing.display())),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1);
    }
}
