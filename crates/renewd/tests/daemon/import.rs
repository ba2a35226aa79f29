//! `renewd import certbot` against lineages made by the real certbot (Debian's 2.1) from a
//! real pebble: the config passes `renewd check`, each lineage's names, key type and
//! challenge carry over, the adopted files are certbot's byte for byte, `renewd status`
//! shows them valid with their serials and expiry, and the converted deploy hook runs; and
//! an adopted lineage is then renewed by renewd at the same pebble, certbot's hook included.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use chrono::{DateTime, Utc};
use renewd_config::{Config, Http01Config};
use renewd_core::{CertName, ChallengeType, KeyType};
use renewd_testsupport::{Pebble, PebbleOptions};
use serde_json::Value;
use x509_parser::pem::Pem;

use crate::harness::run;

const CERTBOT: &str = "/usr/bin/certbot";

/// Runs certbot against `pebble` with its state in `dir`.
async fn certbot(pebble: &Pebble, dir: &Path, args: &[&str]) {
    assert!(
        Path::new(CERTBOT).exists(),
        "certbot is not installed (apt-get install certbot)"
    );
    let port = pebble.http01_port().to_string();
    let run = tokio::process::Command::new(CERTBOT)
        .env("REQUESTS_CA_BUNDLE", pebble.tls_root_pem())
        .args(["certonly", "--standalone", "--http-01-address", "127.0.0.1"])
        .args(["--http-01-port", &port])
        .args(["--server", &pebble.directory_url()])
        .args(["--agree-tos", "-m", "x@example.com", "--non-interactive"])
        .arg("--config-dir")
        .arg(dir.join("config"))
        .arg("--work-dir")
        .arg(dir.join("work"))
        .arg("--logs-dir")
        .arg(dir.join("logs"))
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("certbot finishes within 2 minutes")
        .expect("certbot runs");
    assert!(
        out.status.success(),
        "certbot {args:?} failed:\n{}{}\npebble:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        pebble.log()
    );
}

/// `renewd ARGS`, off the async workers.
fn renewd(args: &[&str]) -> Output {
    tokio::task::block_in_place(|| run(args))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The serial (lower-case hex), notBefore and notAfter of the PEM certificate at `path`.
fn serial_and_validity(path: &Path) -> (String, DateTime<Utc>, DateTime<Utc>) {
    let pem = std::fs::read(path).unwrap();
    let block = Pem::iter_from_buffer(&pem).next().unwrap().unwrap();
    let cert = block.parse_x509().unwrap();
    let serial: String = cert
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let time = |t: x509_parser::time::ASN1Time| DateTime::from_timestamp(t.timestamp(), 0).unwrap();
    (
        serial.trim_start_matches('0').to_string(),
        time(cert.validity().not_before),
        time(cert.validity().not_after),
    )
}

/// When the scheduler renews a certificate with this validity and no other rule: when a
/// third of its lifetime is left (half, for lifetimes of ten days or less).
fn renews_at(not_before: DateTime<Utc>, not_after: DateTime<Utc>) -> DateTime<Utc> {
    let lifetime = not_after - not_before;
    if lifetime <= chrono::TimeDelta::days(10) {
        not_before + lifetime / 2
    } else {
        not_after - lifetime / 3
    }
}

/// pebble, a scratch directory with certbot's in it, and a certbot deploy hook that writes
/// its variables to `hook_out`.
struct Scratch {
    pebble: Pebble,
    tmp: tempfile::TempDir,
    certbot_dir: PathBuf,
    hook_out: PathBuf,
    hook: String,
}

async fn scratch() -> Scratch {
    let pebble = Pebble::start(PebbleOptions::default()).await;
    let tmp = tempfile::tempdir().unwrap();
    let certbot_dir = tmp.path().join("certbot");
    let hook_out = tmp.path().join("hook.out");
    let hook = format!(
        "echo \"$RENEWED_LINEAGE $RENEWED_DOMAINS\" > {}",
        hook_out.display()
    );
    Scratch {
        pebble,
        tmp,
        certbot_dir,
        hook_out,
        hook,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_lineages_become_config_and_adopted_certificates() {
    let Scratch {
        pebble,
        tmp,
        certbot_dir,
        hook_out,
        hook,
    } = scratch().await;
    certbot(
        &pebble,
        &certbot_dir,
        &[
            "-d",
            "a.example",
            "-d",
            "b.example",
            "--key-type",
            "ecdsa",
            "--deploy-hook",
            &hook,
        ],
    )
    .await;
    certbot(
        &pebble,
        &certbot_dir,
        &[
            "-d",
            "c.example",
            "--key-type",
            "rsa",
            "--rsa-key-size",
            "3072",
            "--cert-name",
            "cee",
        ],
    )
    .await;
    let config_dir = certbot_dir.join("config");
    // A lineage whose files are gone: reported, and the others still imported.
    std::fs::write(
        config_dir.join("renewal/broken.conf"),
        "cert = /nonexistent/cert.pem\nfullchain = /nonexistent/fullchain.pem\n\
         privkey = /nonexistent/privkey.pem\n[renewalparams]\nauthenticator = standalone\n",
    )
    .unwrap();
    let config_arg = config_dir.to_str().unwrap();

    let state = tmp.path().join("state");
    let state_arg = state.to_str().unwrap();
    // As root, the state directory belongs to the daemon's user: so must what is adopted.
    let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    const NOBODY: u32 = 65534;

    // --dry-run: the config on stdout, the plan on stderr, nothing on disk.
    let out = renewd(&[
        "import",
        "certbot",
        config_arg,
        "--state-dir",
        state_arg,
        "--dry-run",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the broken lineage fails: {out:?}"
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("would adopt a.example"), "{stderr}");
    assert!(stderr.contains("would adopt cee"), "{stderr}");
    assert!(
        stderr.contains("broken.conf: /nonexistent/cert.pem"),
        "{stderr}"
    );
    assert!(text(&out.stdout).contains("[[cert]]"));
    assert!(!state.exists(), "a dry run created the state directory");

    if root {
        std::fs::create_dir(&state).unwrap();
        std::os::unix::fs::chown(&state, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let config_path = tmp.path().join("renewd.toml");
    let config_path_arg = config_path.to_str().unwrap();
    let out = renewd(&[
        "import",
        "certbot",
        config_arg,
        "--state-dir",
        state_arg,
        "--output",
        config_path_arg,
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "the config went to --output");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("adopted a.example as a.example"),
        "{stderr}"
    );
    assert!(stderr.contains("adopted cee as cee"), "{stderr}");
    assert!(stderr.contains("broken.conf"), "{stderr}");

    // The config passes check and says what certbot did.
    let out = renewd(&["--config", config_path_arg, "check"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(text(&out.stdout), "ok: 2 certificates, 1 CA\n");
    let config = Config::load(&config_path).unwrap();
    assert_eq!(config.state_dir, state);
    assert_eq!(config.cas.len(), 1);
    assert_eq!(config.cas[0].directory.to_string(), pebble.directory_url());
    let listen = format!("127.0.0.1:{}", pebble.http01_port())
        .parse()
        .unwrap();
    assert_eq!(
        config.http01,
        Some(Http01Config::Standalone {
            listen: vec![listen]
        })
    );
    let a = config.cert(&CertName::new("a.example").unwrap()).unwrap();
    let domains: Vec<&str> = a.domains.iter().map(|d| d.as_str()).collect();
    assert_eq!(domains, ["a.example", "b.example"]);
    assert_eq!(
        (a.key, a.challenge),
        (KeyType::EcdsaP256, ChallengeType::Http01)
    );
    assert_eq!(a.cas, [config.cas[0].name.clone()]);
    let cee = config.cert(&CertName::new("cee").unwrap()).unwrap();
    let domains: Vec<&str> = cee.domains.iter().map(|d| d.as_str()).collect();
    assert_eq!(domains, ["c.example"]);
    assert_eq!(
        (cee.key, cee.challenge),
        (KeyType::Rsa3072, ChallengeType::Http01)
    );
    assert!(cee.deploy_hook.is_none());

    // The adopted files are certbot's, byte for byte.
    for (lineage, name) in [("a.example", "a.example"), ("cee", "cee")] {
        for file in ["cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"] {
            let theirs = std::fs::read(config_dir.join("live").join(lineage).join(file)).unwrap();
            let ours_path = state.join("certs").join(name).join("live").join(file);
            let ours = std::fs::read(&ours_path).unwrap();
            assert!(theirs == ours, "{lineage}/{file} differs");
            if root {
                let meta = std::fs::metadata(&ours_path).unwrap();
                assert_eq!((meta.uid(), meta.gid()), (NOBODY, NOBODY), "{ours_path:?}");
            }
        }
    }
    if root {
        let db = std::fs::metadata(state.join("state.db")).unwrap();
        assert_eq!((db.uid(), db.gid()), (NOBODY, NOBODY));
    }

    // renewd status: both valid, with certbot's serials and expiry, issued by the mapped CA.
    let out = renewd(&["--config", config_path_arg, "status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 2);
    let now = Utc::now();
    for (row, lineage) in rows.iter().zip(["a.example", "cee"]) {
        let (serial, not_before, expiry) =
            serial_and_validity(&config_dir.join("live").join(lineage).join("cert.pem"));
        assert_eq!(row["state"], "valid", "{row}");
        // Due by its real lifetime: neither at once nor left to expire.
        let next: DateTime<Utc> = row["next_attempt"].as_str().unwrap().parse().unwrap();
        let expected = renews_at(not_before, expiry);
        assert!(
            (next - expected).num_seconds().abs() <= 1,
            "{lineage}: next attempt {next}, expected {expected} (valid {not_before} .. {expiry})"
        );
        assert!(next > now && next < expiry, "{lineage}: {next}");
        assert_eq!(row["serial"], serial.as_str());
        assert_eq!(
            row["not_after"],
            expiry.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        assert_eq!(row["issuer_ca"], config.cas[0].name.as_str());
    }

    // The converted deploy hook runs with certbot's variables, pointing at renewd's files.
    let argv = a.deploy_hook.as_ref().unwrap().argv();
    assert_eq!(argv[..2], ["/bin/sh", "-c"]);
    let status = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .status()
        .unwrap();
    assert!(status.success());
    let live: PathBuf = state.join("certs/a.example/live");
    assert_eq!(
        std::fs::read_to_string(&hook_out).unwrap(),
        format!("{} a.example b.example\n", live.display())
    );

    // Importing again changes nothing and refuses to overwrite the config.
    let out = renewd(&[
        "import",
        "certbot",
        config_arg,
        "--state-dir",
        state_arg,
        "--output",
        config_path_arg,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("does not overwrite"), "{out:?}");
    let again = tmp.path().join("again.toml");
    let out = renewd(&[
        "import",
        "certbot",
        config_arg,
        "--state-dir",
        state_arg,
        "--output",
        again.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("adopted a.example as a.example: serial"),
        "{stderr}"
    );
    assert!(stderr.contains("already live"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(state.join("certs/a.example/archive"))
            .unwrap()
            .count(),
        1,
        "no second version"
    );
}

#[test]
fn a_directory_without_lineages_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(&[
        "import",
        "certbot",
        tmp.path().to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("certbot's configuration directory"),
        "{out:?}"
    );
    std::fs::create_dir(tmp.path().join("renewal")).unwrap();
    let out = run(&[
        "import",
        "certbot",
        tmp.path().to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no lineage to import"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_certbot_lineage_is_renewed_by_renewd() {
    let Scratch {
        pebble,
        tmp,
        certbot_dir,
        hook_out,
        hook,
    } = scratch().await;
    certbot(
        &pebble,
        &certbot_dir,
        &[
            "-d",
            "r.example",
            "--key-type",
            "ecdsa",
            "--deploy-hook",
            &hook,
        ],
    )
    .await;
    let config_dir = certbot_dir.join("config");
    let (old_serial, _, _) = serial_and_validity(&config_dir.join("live/r.example/cert.pem"));
    // A state directory of the user running this test (as root, root's): the pass runs here.
    let state = tmp.path().join("state");
    let config_path = tmp.path().join("renewd.toml");
    let out = renewd(&[
        "import",
        "certbot",
        config_dir.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--output",
        config_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // The imported config trusts the system's roots; pebble's is a test root. The operator
    // of a private CA adds it the same way.
    let imported = std::fs::read_to_string(&config_path).unwrap();
    let directory_line = format!("directory = \"{}\"", pebble.directory_url());
    assert!(imported.contains(&directory_line), "{imported}");
    let with_root = imported.replacen(
        &directory_line,
        &format!(
            "{directory_line}\ntrust_roots = [\"{}\"]",
            pebble.tls_root_pem().display()
        ),
        1,
    );
    std::fs::write(&config_path, with_root).unwrap();
    let config_arg = config_path.to_str().unwrap();
    std::fs::remove_file(&hook_out).unwrap();

    let out = renewd(&["--config", config_arg, "renew", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("r.example: renewed by "), "{stdout}");

    // A new version beside certbot's, live; certbot's own files untouched.
    let live = state.join("certs/r.example/live");
    let (new_serial, _, _) = serial_and_validity(&live.join("cert.pem"));
    assert_ne!(new_serial, old_serial);
    let (certbot_serial, _, _) = serial_and_validity(&config_dir.join("live/r.example/cert.pem"));
    assert_eq!(
        certbot_serial, old_serial,
        "certbot's lineage is left as it was"
    );
    assert_eq!(
        std::fs::read_dir(state.join("certs/r.example/archive"))
            .unwrap()
            .count(),
        2
    );
    let out = renewd(&["--config", config_arg, "status", "--json"]);
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["state"], "valid", "{rows:?}");
    assert_eq!(rows[0]["serial"], new_serial.as_str());
    // certbot's deploy hook, converted, ran after the install with certbot's variables.
    assert_eq!(
        std::fs::read_to_string(&hook_out).unwrap(),
        format!("{} r.example\n", live.display())
    );
}
