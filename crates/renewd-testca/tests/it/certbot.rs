//! certbot (Debian's 2.1, `/usr/bin/certbot`) as a second independent peer: RSA account
//! key (RS256), real http-01 against its standalone server, then revocation.

use std::path::Path;
use std::process::Output;

use renewd_testca::{Endpoint, TestCaHandle, Validators};

use crate::support::peers::{log_of, run_peer, trust_file};
use crate::support::{assert_chains_to, free_port, pem_certs, start_validating};

const CERTBOT: &str = "/usr/bin/certbot";

async fn certbot(ca: &TestCaHandle, dir: &Path, args: &[&str]) -> Output {
    let root = trust_file(CERTBOT, ca, dir);
    let mut command = tokio::process::Command::new(CERTBOT);
    command
        .env("REQUESTS_CA_BUNDLE", &root)
        .args(args)
        .args(["--server", &ca.directory_url(), "--non-interactive"])
        .arg("--config-dir")
        .arg(dir.join("config"))
        .arg("--work-dir")
        .arg(dir.join("work"))
        .arg("--logs-dir")
        .arg(dir.join("logs"));
    run_peer("certbot", command).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_obtains_and_revokes_with_an_rsa_account() {
    let port = free_port();
    let ca = start_validating(Validators {
        http01_port: Some(port),
        ..Validators::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port_arg = port.to_string();
    let out = certbot(
        &ca,
        dir.path(),
        &[
            "certonly",
            "--standalone",
            "--http-01-address",
            "127.0.0.1",
            "--http-01-port",
            &port_arg,
            "-d",
            "cb.example",
            "--agree-tos",
            "-m",
            "x@example.com",
        ],
    )
    .await;
    assert!(out.status.success(), "certbot failed:\n{}", log_of(&out));
    let live = dir.path().join("config/live/cb.example");
    let chain = std::fs::read_to_string(live.join("fullchain.pem")).expect("fullchain");
    let root = pem_certs(&ca.issuing_roots_pem()[0]).remove(0);
    assert_chains_to(&pem_certs(&chain), &root);
    assert_eq!(ca.counts().certificates_issued, 1);

    let cert_path = live.join("cert.pem");
    let cert_arg = cert_path.to_str().expect("UTF-8 path");
    let out = certbot(
        &ca,
        dir.path(),
        &[
            "revoke",
            "--cert-path",
            cert_arg,
            "--no-delete-after-revoke",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "certbot revoke failed:\n{}",
        log_of(&out)
    );
    let counts = ca.counts();
    assert_eq!(counts.certificates_revoked, 1);
    assert_eq!(counts.requests_to(Endpoint::Revoke), 1);
    assert!(ca.certificates()[0].revoked);
}
