//! `renewd check`: validate the config and the files it names.
//!
//! Valid: one line on stdout (`ok: 2 certificates, 2 CAs`), exit 0. Invalid: every problem on
//! stderr as `PATH:LINE:COL: message`, exit 78. Unreadable: `PATH: message` on stderr, exit 78.
//!
//! An operator runs `check` outside `renewd.service`, where `$CREDENTIALS_DIRECTORY` is
//! unset: an `eab_hmac_key_credential` then cannot be read, only its name checked. That is
//! a warning (`PATH:LINE:COL: warning: … not checked: …` on stderr), not a failure: the
//! status is still 0. With the variable set (`systemd-run -p LoadCredential=… renewd
//! check`) the credential is read and a missing one is an error.

use std::io::Write;
use std::path::Path;

use renewd_config::{Config, LoadEnv, LoadError, LoadedConfig, SecretsMode};

use crate::exit;

/// Checks the config at `path`, writing the result to `out` and problems to `err`; returns
/// the exit status.
pub fn check(path: &Path, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    check_with(path, &LoadEnv::from_process(), out, err)
}

/// [`check`] with the environment `env` supplies (tests pass their own).
pub(crate) fn check_with(
    path: &Path,
    env: &LoadEnv,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let env = env.clone().with_secrets(SecretsMode::DeferCredentials);
    match Config::load_with(path, &env) {
        Ok(LoadedConfig { config, warnings }) => {
            for w in &warnings {
                let _ = writeln!(
                    err,
                    "{}:{}:{}: warning: {}",
                    w.path.display(),
                    w.line,
                    w.column,
                    w.message
                );
            }
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
        run_in(path, &LoadEnv::default())
    }

    fn run_in(path: &Path, env: &LoadEnv) -> (u8, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = check_with(path, env, &mut out, &mut err);
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

    #[test]
    fn a_credential_outside_the_unit_is_a_warning_inside_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("renewd.toml");
        std::fs::write(
            &path,
            "[[ca]]\nname = \"z\"\ndirectory = \"https://acme.invalid/dir\"\n\
             eab_kid = \"k\"\neab_hmac_key_credential = \"z.eab\"\n\
             [http01]\nlisten = [\"127.0.0.1:5002\"]\n\
             [[cert]]\nname = \"www\"\ndomains = [\"www.example.com\"]\ncas = [\"z\"]\n",
        )
        .unwrap();
        let (status, out, err) = run_in(&path, &LoadEnv::default());
        assert_eq!((status, out.as_str()), (0, "ok: 1 certificate, 1 CA\n"));
        assert_eq!(
            err,
            format!(
                "{}:5:27: warning: eab_hmac_key_credential \"z.eab\" not checked: \
                 $CREDENTIALS_DIRECTORY is unset (the credential is provided by systemd's \
                 LoadCredential= inside renewd.service)\n",
                path.display()
            )
        );

        let creds = dir.path().join("creds");
        std::fs::create_dir(&creds).unwrap();
        let inside = LoadEnv::with_credentials_directory(&creds);
        let (status, out, err) = run_in(&path, &inside);
        assert_eq!((status, out.as_str()), (78, ""));
        assert!(
            err.contains("credential \"z.eab\" is not in $CREDENTIALS_DIRECTORY"),
            "{err}"
        );

        std::fs::write(creds.join("z.eab"), "aGVsbG8\n").unwrap();
        assert_eq!(
            run_in(&path, &inside),
            (0, "ok: 1 certificate, 1 CA\n".into(), String::new())
        );
    }
}
