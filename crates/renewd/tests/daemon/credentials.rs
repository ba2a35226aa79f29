//! A config whose EAB MAC key is a systemd credential (`eab_hmac_key_credential`), used the
//! way an operator does: `check`, `status`, `ledger`, `ca` and `renew` run outside
//! `renewd.service`, so without `$CREDENTIALS_DIRECTORY` (only `LoadCredential=` inside the
//! unit sets it); `run` inside it, with the variable.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use renewd_testca::TestCa;

use crate::harness::{Daemon, Scene, renewd};
use crate::lab::{Ca, Lab, text};

/// The MAC key the test CA accepts, and its base64url form as a credential file holds it.
const MAC_KEY: &[u8; 32] = b"a 32-byte EAB MAC key for tests!";
const MAC_KEY_B64URL: &str = "YSAzMi1ieXRlIEVBQiBNQUMga2V5IGZvciB0ZXN0cyE";

const NOT_CHECKED: &str = "warning: eab_hmac_key_credential \"zerossl.eab\" not checked: \
    $CREDENTIALS_DIRECTORY is unset (the credential is provided by systemd's LoadCredential= \
    inside renewd.service)";

/// `renewd --config CONFIG ARGS` with `$CREDENTIALS_DIRECTORY` = `credentials` (or unset).
fn cli(config: &Path, credentials: Option<&Path>, args: &[&str]) -> std::process::Output {
    let mut cmd = renewd();
    cmd.arg("--config").arg(config).args(args);
    if let Some(dir) = credentials {
        cmd.env("CREDENTIALS_DIRECTORY", dir);
    }
    tokio::task::block_in_place(|| cmd.output().unwrap())
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A directory holding the credential `name` (mode 0400, as systemd makes it).
fn credentials_dir(scene: &Scene, name: &str) -> std::path::PathBuf {
    let dir = scene.path("credentials");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, format!("{MAC_KEY_B64URL}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_warns_and_status_ledger_ca_need_no_credential_outside_the_unit() {
    let scene = Scene::new();
    let [port, _] = scene.ca_ports;
    let config = scene.config_path();
    // line 6, column 27: where the credential's name starts
    scene.write_raw_config(&format!(
        "state_dir = \"{}\"\n\
         [[ca]]\n\
         name = \"zerossl\"\n\
         directory = \"https://127.0.0.1:{port}/dir\"\n\
         eab_kid = \"kid-1\"\n\
         eab_hmac_key_credential = \"zerossl.eab\"\n\
         [http01]\nlisten = [\"127.0.0.1:{}\"]\n\
         [[cert]]\nname = \"www\"\ndomains = [\"www.example.test\"]\ncas = [\"zerossl\"]\n",
        scene.path("state").display(),
        scene.http01_port
    ));

    // check: everything else validated, the credential a warning; exit 0.
    let out = cli(&config, None, &["check"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(lossy(&out.stdout), "ok: 1 certificate, 1 CA\n");
    assert_eq!(
        lossy(&out.stderr),
        format!("{}:6:27: {NOT_CHECKED}\n", config.display())
    );
    // Its name is still validated.
    let text = std::fs::read_to_string(&config).unwrap();
    let bad = scene.path("bad-name.toml");
    std::fs::write(&bad, text.replace("\"zerossl.eab\"", "\"../zerossl.eab\"")).unwrap();
    let out = cli(&bad, None, &["check"]);
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    assert!(
        lossy(&out.stderr).contains(
            ":6:27: eab_hmac_key_credential \"../zerossl.eab\" must be a credential name"
        ),
        "{out:?}"
    );
    // And everything else is still checked: a bad value elsewhere fails the check.
    let broken = scene.path("broken.toml");
    std::fs::write(
        &broken,
        text.replace("eab_kid = \"kid-1\"", "eab_kid = \"\""),
    )
    .unwrap();
    assert_eq!(cli(&broken, None, &["check"]).status.code(), Some(78));

    // status, ledger and ca never read the key: exit 0, the result on stdout, nothing else.
    for args in [
        &["status", "--json"][..],
        &["status"],
        &["ledger", "--json"],
        &["ca", "--json"],
    ] {
        let out = cli(&config, None, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert!(out.stderr.is_empty(), "{args:?}: {}", lossy(&out.stderr));
    }
    let rows: serde_json::Value =
        serde_json::from_slice(&cli(&config, None, &["status", "--json"]).stdout).unwrap();
    assert_eq!(rows[0]["name"], "www", "{rows}");
    assert_eq!(rows[0]["state"], "missing", "{rows}");

    // Inside the unit ($CREDENTIALS_DIRECTORY set) a missing credential is an error for
    // check, still nothing for status; a present one is read and check is silent.
    let empty = scene.path("no-credentials");
    std::fs::create_dir(&empty).unwrap();
    let out = cli(&config, Some(&empty), &["check"]);
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    assert!(
        lossy(&out.stderr).starts_with(&format!(
            "{}:6:27: credential \"zerossl.eab\" is not in $CREDENTIALS_DIRECTORY",
            config.display()
        )),
        "{out:?}"
    );
    assert_eq!(
        cli(&config, Some(&empty), &["status"]).status.code(),
        Some(0)
    );
    let full = credentials_dir(&scene, "zerossl.eab");
    let out = cli(&config, Some(&full), &["check"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{}", lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_outside_the_unit_needs_the_credential_only_to_create_the_account() {
    let builder = TestCa::builder()
        .eab_key("kid-1", MAC_KEY)
        .eab_required(true);
    let ca = Ca::testca(
        "zerossl",
        builder,
        "eab_kid = \"kid-1\"\neab_hmac_key_credential = \"zerossl.eab\"\n",
    )
    .await;
    let mut lab = Lab::new(Scene::new(), vec![ca]);
    lab.write_config("", "", &[("www", &["zerossl"], "")]);
    let config = lab.scene.config_path();

    // No account yet: renew in this process cannot create one, and says why.
    let out = cli(&config, None, &["renew", "--cert", "www"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = lossy(&out.stderr);
    assert!(
        err.contains("needs the EAB MAC key from credential \"zerossl.eab\"")
            && err.contains("$CREDENTIALS_DIRECTORY is unset"),
        "{err}"
    );
    assert_eq!(lab.ca("zerossl").counts().orders_created, 0);

    // The daemon needs every secret: without $CREDENTIALS_DIRECTORY it does not start.
    let mut daemon = Daemon::spawn(lab.command(&["run"]));
    let (status, _) = tokio::task::block_in_place(|| daemon.wait_exit());
    assert_eq!(status.code(), Some(78));
    daemon.expect_stderr("the credential error", |l| {
        l.contains("needs $CREDENTIALS_DIRECTORY, which is not set")
    });

    // The daemon, with the credential as systemd hands it over, creates the account. The
    // failed pass left www backing off; the operator's `renew --force`, forwarded to the
    // daemon (still without the credential), issues it now.
    let credentials = credentials_dir(&lab.scene, "zerossl.eab");
    lab.start(&[("CREDENTIALS_DIRECTORY", credentials.to_str().unwrap())]);
    let out = cli(&config, None, &["renew", "--force", "--cert", "www"]);
    assert_eq!(out.status.code(), Some(0), "{}", lossy(&out.stderr));
    lab.daemon().expect_stderr("the forwarded request", |l| {
        l.contains("renew requested on the control socket")
    });
    let serial = text(&lab.status_of("www")["serial"]).to_string();
    lab.stop();

    // With the account in place, renew outside the unit works without the credential.
    let out = cli(&config, None, &["renew", "--force", "--cert", "www"]);
    assert_eq!(out.status.code(), Some(0), "{}", lossy(&out.stderr));
    assert_ne!(text(&lab.status_of("www")["serial"]), serial);
    assert_eq!(lab.ca("zerossl").counts().orders_created, 2);
}
