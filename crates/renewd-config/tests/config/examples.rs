//! Every example under `config/` at the workspace root loads cleanly.
//!
//! The examples name real-looking files (`/etc/renewd/zerossl.eab`, trust roots) and a
//! systemd credential. Validation reads those files — that is what `renewd check` vouches
//! for — so this test does not skip it: it roots every `/etc/renewd/` path in a temp
//! directory, creates each file named there (`.eab`: a MAC key, mode 0600; `.pem`: a
//! freshly generated certificate), and supplies a `$CREDENTIALS_DIRECTORY` holding every
//! credential the examples name. Hook programs and web roots are not read at load time, so
//! they stay as written.

use std::fs;
use std::path::{Path, PathBuf};

use renewd_config::{Config, Http01Config, LoadEnv, LogFormat, SecretSource};
use renewd_core::ChallengeType;

use crate::fixture::{Fixture, MAC_KEY_B64URL, self_signed_pem};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

/// Every quoted string in `text` that starts with `prefix`.
fn quoted_with_prefix<'t>(text: &'t str, prefix: &str) -> Vec<&'t str> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with(prefix))
        .collect()
}

/// Loads one example the way the test describes.
fn load_example(name: &str) -> Config {
    let path = examples_dir().join(name);
    let text = fs::read_to_string(&path).unwrap();
    let fixture = Fixture::new();
    for file in quoted_with_prefix(&text, "/etc/renewd/") {
        let rel = &file[1..];
        if file.ends_with(".pem") {
            fixture.write(rel, &self_signed_pem(), 0o644);
        } else {
            fixture.write(rel, MAC_KEY_B64URL, 0o600);
        }
    }
    let creds = fixture.path("credentials");
    fs::create_dir_all(&creds).unwrap();
    for line in text
        .lines()
        .filter(|l| l.trim_start().starts_with("eab_hmac_key_credential"))
    {
        for name in line.split('"').skip(1).step_by(2).take(1) {
            fs::write(creds.join(name), MAC_KEY_B64URL).unwrap();
        }
    }
    let rooted = text.replace(
        "\"/etc/renewd/",
        &format!("\"{}/etc/renewd/", fixture.root().display()),
    );
    match Config::from_str(&rooted, &path, &LoadEnv::with_credentials_directory(&creds)) {
        Ok(config) => config,
        Err(errors) => panic!("{name} does not load:\n{errors}"),
    }
}

#[test]
fn every_example_loads() {
    let mut names: Vec<String> = fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    for expected in [
        "dns01-hooks.toml",
        "fleet.toml",
        "minimal-letsencrypt.toml",
        "webroot.toml",
        "zerossl-eab-failover.toml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "config/{expected} is missing"
        );
    }
    for name in &names {
        let config = load_example(name);
        assert!(!config.certs.is_empty(), "{name} declares no certificate");
        for cert in &config.certs {
            assert_eq!(config.cas_of(cert).count(), cert.cas.len(), "{name}");
        }
    }
}

#[test]
fn minimal_example_is_mostly_defaults() {
    let c = load_example("minimal-letsencrypt.toml");
    assert_eq!(c.state_dir, Path::new("/var/lib/renewd"));
    assert_eq!(c.cas.len(), 1);
    assert_eq!(c.certs[0].domains.len(), 2);
    assert!(matches!(c.http01, Some(Http01Config::Standalone { .. })));
    assert_eq!(c.certs[0].challenge, ChallengeType::Http01);
}

#[test]
fn zerossl_example_fails_over_with_eab_from_a_credential() {
    let c = load_example("zerossl-eab-failover.toml");
    let names: Vec<&str> = c.certs[0].cas.iter().map(|n| n.as_str()).collect();
    assert_eq!(names, ["zerossl", "letsencrypt"]);
    let eab = c.cas[0].eab.as_ref().unwrap();
    assert!(matches!(&eab.source, SecretSource::Credential { name, .. } if name == "zerossl.eab"));
    assert!(!eab.hmac_key.as_ref().unwrap().is_empty());
    assert!(c.cas[1].eab.is_none());
}

#[test]
fn dns01_example_has_a_wildcard_and_hooks() {
    let c = load_example("dns01-hooks.toml");
    let dns = c.dns01.as_ref().unwrap();
    assert!(dns.remove_hook.is_some() && dns.propagation_check.is_some());
    assert!(c.certs[0].domains.iter().any(|d| d.is_wildcard()));
    assert_eq!(c.certs[0].challenge, ChallengeType::Dns01);
}

#[test]
fn webroot_example_copies_out() {
    let c = load_example("webroot.toml");
    assert!(matches!(c.http01, Some(Http01Config::Webroot { .. })));
    let cert = &c.certs[0];
    assert_eq!(cert.copy_out.mode, Some(0o640));
    assert!(cert.copy_out.key_path.is_some());
    assert_eq!(cert.verify_served.len(), 1);
    assert!(c.metrics.is_some());
}

#[test]
fn fleet_example_has_fifty_certificates() {
    let c = load_example("fleet.toml");
    assert_eq!(c.certs.len(), 50);
    assert_eq!(c.daemon.workers, 8);
    assert_eq!(c.daemon.log_format, LogFormat::Journald);
    let internal = c.ca(&"internal".parse().unwrap()).unwrap();
    assert_eq!(internal.trust_roots.len(), 1);
    assert_eq!(internal.trust_roots[0].certs.len(), 1);
    assert!(matches!(
        c.cas[1].eab.as_ref().unwrap().source,
        SecretSource::File(_)
    ));
}
