//! The malformed-config corpus: `tests/malformed/NAME.toml`, each opening with
//!
//! ```text
//! # expect: LINE:COL: message fragment     (one line per expected error, in file order)
//! # env: no-credentials                    (optional: no $CREDENTIALS_DIRECTORY)
//! ```
//!
//! `@TMP@` inside a string stands for a fixture directory (see `fixture.rs`); it never
//! shares a line with an expected error that follows it, so columns are unaffected.
//! `RENEWD_CONFIG_CORPUS_DUMP=1` prints every message, to review their wording.

use std::fs;
use std::path::{Path, PathBuf};

use renewd_config::{Config, LoadEnv};

use crate::fixture::Fixture;

#[derive(Debug)]
struct Expected {
    line: usize,
    column: usize,
    fragment: String,
}

fn expectations(text: &str) -> (Vec<Expected>, bool) {
    let mut out = Vec::new();
    let mut no_credentials = false;
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if line.trim() == "# env: no-credentials" {
            no_credentials = true;
        }
        let Some(rest) = line.strip_prefix("# expect: ") else {
            continue;
        };
        let mut parts = rest.splitn(3, ':');
        let line = parts.next().unwrap().trim().parse().unwrap();
        let column = parts.next().unwrap().trim().parse().unwrap();
        let fragment = parts.next().unwrap().trim().to_string();
        out.push(Expected {
            line,
            column,
            fragment,
        });
    }
    (out, no_credentials)
}

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed");
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_malformed_config_reports_exactly_its_expected_errors() {
    let fixture = Fixture::new();
    let files = corpus();
    assert!(
        files.len() >= 30,
        "the corpus has only {} files",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let raw = fs::read_to_string(file).unwrap();
        let (expected, no_credentials) = expectations(&raw);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if expected.is_empty() {
            failures.push(format!("{name}: no `# expect:` line"));
            continue;
        }
        let env = if no_credentials {
            LoadEnv::default()
        } else {
            fixture.env()
        };
        let text = fixture.subst(&raw);
        let errors = match Config::from_str(&text, file, &env) {
            Ok(_) => {
                failures.push(format!("{name}: loaded without error"));
                continue;
            }
            Err(e) => e,
        };
        let got: Vec<String> = errors
            .errors()
            .iter()
            .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
            .collect();
        if std::env::var_os("RENEWD_CONFIG_CORPUS_DUMP").is_some() {
            eprintln!("{name}\n  {}", got.join("\n  "));
        }
        let matches = errors.len() == expected.len()
            && errors.errors().iter().zip(&expected).all(|(e, x)| {
                e.line == x.line && e.column == x.column && e.message.contains(&x.fragment)
            });
        if !matches {
            failures.push(format!(
                "{name}:\n  expected: {}\n  got:      {}",
                expected
                    .iter()
                    .map(|x| format!("{}:{}: {}", x.line, x.column, x.fragment))
                    .collect::<Vec<_>>()
                    .join("\n            "),
                got.join("\n            ")
            ));
        }
        // The binary prints errors with Display: PATH:LINE:COL: message.
        let first = &errors.errors()[0];
        assert_eq!(
            first.to_string(),
            format!(
                "{}:{}:{}: {}",
                file.display(),
                first.line,
                first.column,
                first.message
            )
        );
        // A fixture's absolute path must never leak a secret: no error quotes a key.
        assert!(
            !errors.to_string().contains(crate::fixture::MAC_KEY_B64URL),
            "{name}"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus files failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
