//! lego (Debian's, `/usr/bin/lego`) against the test CA: a third-party client proves the
//! server speaks RFC 8555, and documents how such clients fail where renewd recovers.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use renewd_testca::{Endpoint, Fault, FaultPlan, TestCaHandle, Validators};

use crate::support::peers::{log_of, run_peer, trust_file};
use crate::support::{assert_chains_to, free_port, pem_certs, start, start_validating};

const LEGO: &str = "/usr/bin/lego";

/// Runs `lego … run` for `domain` against `ca`, answering http-01 on `http_port`, with all
/// its files under `dir`. The process is killed if the test ends first.
async fn run_lego(ca: &TestCaHandle, dir: &Path, domain: &str, http_port: u16) -> Output {
    let root = trust_file(LEGO, ca, dir);
    let mut command = tokio::process::Command::new(LEGO);
    command
        .env("LEGO_CA_CERTIFICATES", &root)
        .args(["--server", &ca.directory_url()])
        .args([
            "--email",
            "x@example.com",
            "--accept-tos",
            "--domains",
            domain,
        ])
        .args(["--http", "--http.port", &format!("127.0.0.1:{http_port}")])
        .arg("--path")
        .arg(dir.join("lego"))
        .arg("run");
    run_peer("lego", command).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_obtains_a_certificate_with_real_http01() {
    let port = free_port();
    let ca = start_validating(Validators {
        http01_port: Some(port),
        ..Validators::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_lego(&ca, dir.path(), "test.example", port).await;
    assert!(out.status.success(), "lego failed:\n{}", log_of(&out));

    let certs = dir.path().join("lego/certificates");
    let chain = std::fs::read_to_string(certs.join("test.example.crt")).expect("cert file");
    assert!(certs.join("test.example.key").exists());
    let root = pem_certs(&ca.issuing_roots_pem()[0]).remove(0);
    assert_chains_to(&pem_certs(&chain), &root);
    let counts = ca.counts();
    assert_eq!(counts.orders_created, 1);
    assert_eq!(counts.certificates_issued, 1);
    assert_eq!(counts.validations_passed, 1);
    assert_eq!(counts.accounts_created, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_gives_up_when_finalize_answers_504_after_issuing() {
    let ca = start().await;
    ca.set_fault_plan(FaultPlan::new().rule(
        Endpoint::Finalize,
        Fault::status(504).after_processing().html().times(1),
    ))
    .expect("plan");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_lego(&ca, dir.path(), "wasted.example", free_port()).await;
    // This is the behaviour renewd improves on: lego stops at the gateway error and never
    // fetches the order again, so the certificate the CA issued is wasted.
    assert!(
        !out.status.success(),
        "lego unexpectedly succeeded:\n{}",
        log_of(&out)
    );
    assert!(log_of(&out).contains("504"), "{}", log_of(&out));
    assert!(
        !dir.path()
            .join("lego/certificates/wasted.example.crt")
            .exists()
    );
    let counts = ca.counts();
    assert_eq!(counts.certificates_issued, 1, "issued behind the 504");
    assert_eq!(counts.faulted(Endpoint::Finalize), 1);
    assert_eq!(
        counts.requests_to(Endpoint::Certificate),
        0,
        "never downloaded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_waits_out_a_processing_order() {
    let ca = start().await;
    ca.set_fault_plan(FaultPlan::new().rule(
        Endpoint::Finalize,
        Fault::processing_for(Duration::from_secs(2)).retry_after(Duration::from_secs(1)),
    ))
    .expect("plan");
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let out = run_lego(&ca, dir.path(), "slow.example", free_port()).await;
    assert!(out.status.success(), "lego failed:\n{}", log_of(&out));
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(
        dir.path()
            .join("lego/certificates/slow.example.crt")
            .exists()
    );
    let counts = ca.counts();
    assert_eq!(counts.certificates_issued, 1);
    assert!(
        counts.requests_to(Endpoint::Order) >= 1,
        "lego polled the order"
    );
}
