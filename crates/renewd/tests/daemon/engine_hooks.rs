//! Deploy hooks through the daemon: a hook that hangs is killed at `[hooks] timeout`,
//! recorded as a `local` failure, and never blamed on the CA; the new certificate stays.

use std::time::Instant;

use renewd_testca::TestCa;

use crate::harness::Scene;
use crate::lab::{Ca, FLOW, Lab, script, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_deploy_hook_is_killed_at_the_timeout_and_not_blamed_on_the_ca() {
    let ca = Ca::testca("a", TestCa::builder(), "").await;
    let mut lab = Lab::new(Scene::new(), vec![ca]);
    let pid_file = lab.scene.path("hook.pid");
    let hook = script(
        lab.scene.dir.path(),
        "deploy",
        &format!("echo $$ > {}\nexec sleep 600", pid_file.display()),
    );
    lab.write_config(
        "",
        "[hooks]\ntimeout = \"1s\"\n",
        &[(
            "www",
            &["a"],
            &format!("deploy_hook = [\"{}\"]", hook.display()),
        )],
    );
    let started = Instant::now();
    lab.start(&[]);

    let row = lab.wait_for("the deploy hook's failure in the ledger", FLOW, || {
        lab.ledger(&["--cert", "www", "--all-steps"])
            .into_iter()
            .find(|r| r["step"] == "deploy_hook")
    });
    let waited = started.elapsed();
    assert_eq!(row["class"], "local", "{row}");
    assert_eq!(row["http_status"], serde_json::Value::Null);
    let latency = row["latency_ms"].as_u64().unwrap();
    assert!(
        (1000..60_000).contains(&latency),
        "killed at the 1 s limit, not after the hook's 600 s: {latency} ms"
    );
    assert!(waited.as_secs() < 60, "{waited:?}");

    // The hook's process is gone (killed and reaped), not left sleeping.
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let proc_dir = format!("/proc/{}", pid.trim());
    assert!(
        !std::path::Path::new(&proc_dir).exists(),
        "the hook still runs: {proc_dir}"
    );

    // Reported loudly in the log, as a local failure naming the time limit.
    lab.daemon()
        .expect_stderr("the hook's failure in the log", |l| {
            l.contains("\"ERROR\"") && l.contains("deploy hook") && l.contains("time limit")
        });

    // The new certificate stays installed; nothing counts against the CA.
    let status = lab.status_of("www");
    assert_eq!(status["state"], "valid", "{status}");
    assert_eq!(status["issuer_ca"], "a");
    assert_eq!(status["last_error"], serde_json::Value::Null, "{status}");
    assert!(
        lab.state_dir()
            .join("certs/www/live/fullchain.pem")
            .is_file()
    );
    let cas = lab.ca_rows();
    assert_eq!(cas[0]["name"], "a");
    assert_eq!(cas[0]["circuit"], "closed");
    assert_eq!(cas[0]["consecutive_failures"], 0);
    let all = lab.ledger(&["--all-steps"]);
    let blamed: Vec<_> = all
        .iter()
        .filter(|r| r["class"] != "ok" && r["class"] != "local")
        .collect();
    assert!(blamed.is_empty(), "{blamed:#?}");
    assert_eq!(
        all.iter()
            .filter(|r| r["class"] == "local")
            .map(|r| text(&r["step"]))
            .collect::<Vec<_>>(),
        ["deploy_hook"]
    );
    lab.stop();
}
