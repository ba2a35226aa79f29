//! `renewd check` and usage errors, as CONTRACT.md specifies them.

use std::path::Path;

use crate::harness::{Scene, renewd, run};

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

fn malformed() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../renewd-config/tests/malformed")
}

#[test]
fn a_valid_config_exits_0_with_one_line_on_stdout() {
    let path = examples().join("minimal-letsencrypt.toml");
    let out = run(&["--config", path.to_str().unwrap(), "check"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "ok: 1 certificate, 1 CA\n"
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_problem_goes_to_stderr_as_path_line_col_and_exits_78() {
    let path = malformed().join("many-problems.toml");
    let path_text = path.to_str().unwrap();
    let out = run(&["--config", path_text, "check"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    // The file lists the expected problems as `# expect: LINE:COL: text` comments.
    let expected: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(str::to_string)
        .collect();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{stderr}");
    for (line, want) in lines.iter().zip(&expected) {
        let rest = line
            .strip_prefix(&format!("{path_text}:"))
            .unwrap_or_else(|| panic!("{line:?} does not start with the path"));
        let (line_col, message) = want.split_once(": ").unwrap();
        assert!(
            rest.starts_with(&format!("{line_col}: ")),
            "{line:?} vs {want:?}"
        );
        assert!(rest.contains(message), "{line:?} vs {want:?}");
    }
}

#[test]
fn a_missing_or_unreadable_file_exits_78_with_path_and_message() {
    let scene = Scene::new();
    let missing = scene.path("missing.toml");
    let out = run(&["--config", missing.to_str().unwrap(), "check"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with(&format!("{}: ", missing.display())),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1);

    // A directory is unreadable as a config too.
    let out = run(&["--config", scene.dir.path().to_str().unwrap(), "check"]);
    assert_eq!(out.status.code(), Some(78));
}

#[test]
fn the_config_path_comes_from_renewd_config_when_no_flag_is_given() {
    let path = examples().join("minimal-letsencrypt.toml");
    let out = renewd()
        .env("RENEWD_CONFIG", &path)
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // --config wins over the environment.
    let out = renewd()
        .env("RENEWD_CONFIG", &path)
        .args(["--config", "/nonexistent/renewd.toml", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("/nonexistent/renewd.toml: "));
}

#[test]
fn usage_errors_exit_2_with_nothing_on_stdout() {
    let example = examples().join("minimal-letsencrypt.toml");
    let example = example.to_str().unwrap();
    for args in [
        &["frobnicate"][..],
        &["check", "--bogus"],
        &["--log-format", "xml", "check"],
        &["ledger", "--since", "yesterday"],
        &["renew", "--cert", "not/a/name"],
        // Names the config does not know are usage errors too (but not for `ledger`, whose
        // history outlives the config: see inspect.rs).
        &["--config", example, "renew", "--cert", "nope"],
        &["--config", example, "renew", "--ca", "nope"],
        &["--config", example, "ledger", "--ca", "bad/name"],
        &["--config", example, "ledger", "--limit", "many"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
    // No command at all: the help, on stderr, and still 2.
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: renewd"));

    let out = run(&["--config", example, "renew", "--cert", "nope"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("certificate \"nope\" is not configured; configured certificates: www"),
        "{stderr}"
    );
}
