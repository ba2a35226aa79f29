//! [`SecretsMode`]: which EAB MAC keys a load reads, what it makes of a credential outside
//! `renewd.service` (no `$CREDENTIALS_DIRECTORY`), and that everything else is validated
//! whatever the mode.

use std::path::Path;

use renewd_config::{Config, ConfigErrors, LoadEnv, LoadedConfig, SecretSource, SecretsMode};

use crate::fixture::Fixture;

/// CA `a` with a key file, CA `b` with a credential (line 12, column 27: its value).
/// `@FILE@` and `@CRED@` name them.
const TWO_KEYS: &str = r#"[[ca]]
name = "a"
directory = "https://acme.example/directory"
eab_kid = "kid-1"
eab_hmac_key_file = "@TMP@/@FILE@"

[[ca]]
name = "b"
directory = "https://acme.example/directory"
eab_kid = "kid-2"
# a comment, so the credential is on line 12
eab_hmac_key_credential = "@CRED@"

[http01]
listen = ["127.0.0.1:5002"]

[[cert]]
name = "www"
domains = ["example.com"]
cas = ["a", "b"]
"#;

const NOT_CHECKED: &str = "eab_hmac_key_credential \"zerossl.eab\" not checked: \
    $CREDENTIALS_DIRECTORY is unset (the credential is provided by systemd's LoadCredential= \
    inside renewd.service)";

fn text(fx: &Fixture, file: &str, credential: &str) -> String {
    fx.subst(TWO_KEYS)
        .replace("@FILE@", file)
        .replace("@CRED@", credential)
}

fn load(text: &str, env: &LoadEnv) -> Result<LoadedConfig, ConfigErrors> {
    Config::from_str_with_warnings(text, Path::new("renewd.toml"), env)
}

fn no_directory(mode: SecretsMode) -> LoadEnv {
    LoadEnv::default().with_secrets(mode)
}

fn messages(errors: &ConfigErrors) -> Vec<String> {
    errors.errors().iter().map(|e| e.to_string()).collect()
}

#[test]
fn required_is_the_default_and_needs_the_credentials_directory() {
    assert_eq!(LoadEnv::default().secrets, SecretsMode::Required);
    assert_eq!(LoadEnv::from_process().secrets, SecretsMode::Required);
    let fx = Fixture::new();
    let text = text(&fx, "good.eab", "zerossl.eab");
    let errors = load(&text, &LoadEnv::default()).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors}");
    assert!(
        messages(&errors)[0].starts_with("renewd.toml:12:27: eab_hmac_key_credential = \"zerossl.eab\" needs $CREDENTIALS_DIRECTORY"),
        "{errors}"
    );

    let loaded = load(&text, &fx.env()).unwrap();
    assert!(loaded.warnings.is_empty());
    assert!(
        loaded
            .config
            .cas
            .iter()
            .all(|ca| ca.eab.as_ref().unwrap().hmac_key.is_some())
    );
}

#[test]
fn deferred_credentials_without_the_directory_are_a_warning_and_not_read() {
    let fx = Fixture::new();
    let text = text(&fx, "good.eab", "zerossl.eab");
    let env = no_directory(SecretsMode::DeferCredentials);
    let LoadedConfig { config, warnings } = load(&text, &env).unwrap();

    let shown: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(shown, [format!("renewd.toml:12:27: {NOT_CHECKED}")]);
    let b = config.cas[1].eab.as_ref().unwrap();
    assert_eq!(b.kid, "kid-2");
    assert!(b.hmac_key.is_none());
    assert_eq!(
        b.source,
        SecretSource::Credential {
            name: "zerossl.eab".into(),
            path: None
        }
    );
    // The key file is still read.
    let a = config.cas[0].eab.as_ref().unwrap();
    assert!(a.hmac_key.as_ref().is_some_and(|k| !k.is_empty()));

    // from_str is the same load without the warnings.
    assert_eq!(
        Config::from_str(&text, Path::new("renewd.toml"), &env).unwrap(),
        config
    );
}

#[test]
fn deferred_credentials_still_validate_everything_else() {
    let fx = Fixture::new();
    let env = no_directory(SecretsMode::DeferCredentials);
    // A key file too open, and a credential name with a '/': both errors, no warning.
    let errors = load(&text(&fx, "open.eab", "../zerossl.eab"), &env).unwrap_err();
    let shown = messages(&errors);
    assert_eq!(shown.len(), 2, "{errors}");
    assert!(
        shown[0].contains("is accessible by group or others"),
        "{errors}"
    );
    assert!(
        shown[1].starts_with("renewd.toml:12:27: eab_hmac_key_credential \"../zerossl.eab\" must be a credential name"),
        "{errors}"
    );
    // Any other mistake fails the load as before.
    let broken = text(&fx, "good.eab", "zerossl.eab").replace("eab_kid = \"kid-2\"\n", "");
    let errors = load(&broken, &env).unwrap_err();
    assert!(
        messages(&errors)[0].contains("an EAB MAC key is set but eab_kid is not"),
        "{errors}"
    );
}

#[test]
fn deferred_credentials_with_the_directory_are_read_and_a_missing_one_is_an_error() {
    let fx = Fixture::new();
    let env = fx.env().with_secrets(SecretsMode::DeferCredentials);
    let loaded = load(&text(&fx, "good.eab", "zerossl.eab"), &env).unwrap();
    assert!(loaded.warnings.is_empty());
    let b = loaded.config.cas[1].eab.as_ref().unwrap();
    assert!(b.hmac_key.is_some());
    assert_eq!(
        b.source,
        SecretSource::Credential {
            name: "zerossl.eab".into(),
            path: Some(fx.path("creds/zerossl.eab"))
        }
    );

    let errors = load(&text(&fx, "good.eab", "nope.eab"), &env).unwrap_err();
    assert!(
        messages(&errors)[0].starts_with(
            "renewd.toml:12:27: credential \"nope.eab\" is not in $CREDENTIALS_DIRECTORY"
        ),
        "{errors}"
    );
    let errors = load(&text(&fx, "good.eab", "bad.eab"), &env).unwrap_err();
    assert!(
        messages(&errors)[0]
            .contains("the EAB MAC key in credential \"bad.eab\" is not valid base64url"),
        "{errors}"
    );
}

#[test]
fn ignore_reads_no_key_but_checks_names_and_paths() {
    let fx = Fixture::new();
    // A missing key file and a missing credential: neither is read, so neither is an error,
    // with or without the credentials directory.
    let text_missing = text(&fx, "missing.eab", "nope.eab");
    for env in [
        no_directory(SecretsMode::Ignore),
        fx.env().with_secrets(SecretsMode::Ignore),
    ] {
        let LoadedConfig { config, warnings } = load(&text_missing, &env).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(
            config
                .cas
                .iter()
                .all(|ca| ca.eab.as_ref().unwrap().hmac_key.is_none())
        );
        assert_eq!(
            config.cas[0].eab.as_ref().unwrap().source,
            SecretSource::File(fx.path("missing.eab"))
        );
    }
    // A relative key path and a bad credential name are still errors.
    let bad = text(&fx, "good.eab", "a/b").replace(&fx.root().display().to_string(), ".");
    let errors = load(&bad, &no_directory(SecretsMode::Ignore)).unwrap_err();
    let shown = messages(&errors);
    assert_eq!(shown.len(), 2, "{errors}");
    assert!(shown[0].contains("is not an absolute path"), "{errors}");
    assert!(shown[1].contains("must be a credential name"), "{errors}");
}

#[test]
fn load_reads_every_secret_and_load_with_takes_the_mode() {
    let fx = Fixture::new();
    let path = fx.write("renewd.toml", &text(&fx, "good.eab", "zerossl.eab"), 0o640);
    // Config::load uses the process environment, where the test runner sets no
    // $CREDENTIALS_DIRECTORY: the credential is an error there.
    if std::env::var_os("CREDENTIALS_DIRECTORY").is_none() {
        assert!(Config::load(&path).is_err());
    }
    let loaded = Config::load_with(&path, &no_directory(SecretsMode::DeferCredentials)).unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(loaded.warnings[0].path, path);
    assert_eq!(
        (loaded.warnings[0].line, loaded.warnings[0].column),
        (12, 27)
    );
    let loaded = Config::load_with(&path, &fx.env()).unwrap();
    assert!(loaded.warnings.is_empty());
}
