//! The `renewd-testca` binary: ready line, trust root file, SIGHUP plan reload.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use http::StatusCode;
use tokio::io::AsyncRead;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, Command};

use crate::support::client::Https;

/// The next stdout line, within 30 s.
async fn next_line<R: AsyncRead + Unpin>(lines: &mut Lines<BufReader<R>>) -> String {
    tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("a line in time")
        .expect("stdout readable")
        .expect("the process is still running")
}

fn hup(child: &Child) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[tokio::test]
async fn the_binary_serves_and_reloads_its_plan_on_sighup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = dir.path().join("plan.toml");
    let root = dir.path().join("root.pem");
    std::fs::write(&plan, "# no faults yet\n").expect("plan");
    let mut child = Command::new(env!("CARGO_BIN_EXE_renewd-testca"))
        .arg("--fault-plan")
        .arg(&plan)
        .arg("--root-out")
        .arg(&root)
        .args(["--management", "127.0.0.1:0", "--validity", "600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut errors = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let management = next_line(&mut lines).await;
    let management = management
        .strip_prefix("renewd-testca: management ")
        .unwrap_or_else(|| panic!("unexpected line {management:?}"))
        .to_owned();
    let ready = next_line(&mut lines).await;
    let directory = ready
        .strip_prefix("renewd-testca: directory ")
        .unwrap_or_else(|| panic!("unexpected line {ready:?}"))
        .to_owned();
    let addr: SocketAddr = directory
        .trim_start_matches("https://")
        .trim_end_matches("/dir")
        .parse()
        .expect("address");

    let https = Https::with_root(addr, &std::fs::read_to_string(&root).expect("root written"));
    let dir_answer = https.get(&directory).await.expect("directory over HTTPS");
    assert_eq!(dir_answer.status, StatusCode::OK);
    assert!(dir_answer.json()["newOrder"].is_string());

    std::fs::write(
        &plan,
        "seed = 3\n[[rule]]\nendpoint = \"directory\"\naction = \"status\"\nstatus = 503\ntimes = 1\n",
    )
    .expect("plan");
    hup(&child);
    assert_eq!(
        next_line(&mut lines).await,
        "renewd-testca: fault plan reloaded (1 rules)"
    );
    assert_eq!(
        https.get(&directory).await.expect("http").status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        https.get(&directory).await.expect("http").status,
        StatusCode::OK
    );

    // A broken plan keeps the old one (its count is used up, so nothing fires).
    std::fs::write(&plan, "[[rule]]\nendpoint = \"nowhere\"\n").expect("plan");
    hup(&child);
    let complaint = next_line(&mut errors).await;
    assert!(
        complaint.contains("keeping the old fault plan"),
        "{complaint}"
    );
    assert!(complaint.contains("line 2"), "{complaint}");
    assert_eq!(
        https.get(&directory).await.expect("http").status,
        StatusCode::OK
    );
    std::fs::write(
        &plan,
        "[[rule]]\nendpoint = \"directory\"\naction = \"status\"\nstatus = 502\ntimes = 1\n",
    )
    .expect("plan");
    hup(&child);
    assert_eq!(
        next_line(&mut lines).await,
        "renewd-testca: fault plan reloaded (1 rules)"
    );
    assert_eq!(
        https.get(&directory).await.expect("http").status,
        StatusCode::BAD_GATEWAY
    );

    let counts = crate::support::client::plain_get(&format!("{management}/counts")).await;
    let counts: serde_json::Value = serde_json::from_str(&counts).expect("JSON");
    assert_eq!(counts["requests"]["directory"]["total"], 5);
    assert_eq!(counts["requests"]["directory"]["faulted"], 2);

    child.start_kill().expect("kill");
    child.wait().await.expect("exit");
}
