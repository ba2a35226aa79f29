//! Hooks as real processes: environment, argv without a shell, time limits on the whole
//! process group, failures with their stderr.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use renewd_config::{CertConfig, Command, CopyOut, GlobalHooks};
use renewd_core::{CaName, CertName, DomainName, FailureClass, KeyType, Urgency};
use renewd_local::{Deployed, Error, FailureNotice, HookRunner, Hooks, OUTPUT_TAIL_BYTES};

use crate::support::{cmd, script, wait_dead};

fn runner(timeout: Duration) -> HookRunner {
    let parent: Vec<(OsString, OsString)> = [
        ("PATH", "/usr/bin:/bin"),
        ("LANG", "C.UTF-8"),
        ("NOTIFY_SOCKET", "/run/systemd/notify"),
        ("WATCHDOG_USEC", "30000000"),
        ("RENEWD_CONFIG", "/etc/renewd/renewd.toml"),
        ("AWS_SECRET_ACCESS_KEY", "not for hooks"),
    ]
    .into_iter()
    .map(|(k, v)| (k.into(), v.into()))
    .collect();
    HookRunner::new(timeout)
        .with_inherited_env(parent)
        .with_kill_grace(Duration::from_millis(300))
}

fn env_map(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .map(|l| l.split_once('=').unwrap())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn cert(deploy: Option<Command>, failure: Option<Command>) -> CertConfig {
    CertConfig {
        name: CertName::new("www").unwrap(),
        domains: vec![
            DomainName::new("www.example.test").unwrap(),
            DomainName::new("*.example.test").unwrap(),
        ],
        cas: vec![CaName::new("pebble").unwrap()],
        key: KeyType::EcdsaP256,
        challenge: renewd_core::ChallengeType::Dns01,
        deploy_hook: deploy,
        failure_hook: failure,
        renew_before: None,
        profile: None,
        preferred_chain: None,
        copy_out: CopyOut::default(),
        verify_served: vec![],
    }
}

fn deployed(live: &Path) -> Deployed {
    Deployed {
        cert: CertName::new("www").unwrap(),
        domains: cert(None, None).domains,
        ca: CaName::new("pebble").unwrap(),
        serial: "0A1B2C".into(),
        not_after: Utc.with_ymd_and_hms(2031, 2, 3, 4, 5, 6).unwrap(),
        live_dir: live.to_path_buf(),
    }
}

fn hooks(global_deploy: Option<Command>, global_failure: Option<Command>) -> Hooks {
    let global = GlobalHooks {
        deploy: global_deploy,
        failure: global_failure,
        timeout: Duration::from_secs(10),
    };
    Hooks::with_runner(&global, runner(global.timeout))
}

#[tokio::test]
async fn deploy_hooks_get_exactly_their_environment_own_hook_first() {
    let dir = tempfile::tempdir().unwrap();
    let live = PathBuf::from("/var/lib/renewd/certs/www/live");
    let order = dir.path().join("order");
    let global = script(
        dir.path(),
        "global",
        &format!("echo \"global $RENEWD_CERT_NAME\" >> {}", order.display()),
    );
    let hooks = hooks(Some(global), None);
    let results = hooks
        .deploy(&cert(Some(cmd(&["/usr/bin/env"])), None), &deployed(&live))
        .await;
    assert_eq!(
        results.len(),
        2,
        "the certificate's hook, then the global one"
    );
    let own = results[0].as_ref().unwrap();
    assert!(own.success());
    let env = env_map(&own.stdout.text);
    let expected: BTreeMap<String, String> = [
        ("PATH", "/usr/bin:/bin"),
        ("LANG", "C.UTF-8"),
        ("RENEWD_CERT_NAME", "www"),
        ("RENEWD_DOMAINS", "www.example.test *.example.test"),
        ("RENEWD_CA", "pebble"),
        ("RENEWD_SERIAL", "0a1b2c"),
        ("RENEWD_NOT_AFTER", "2031-02-03T04:05:06Z"),
        ("RENEWD_LIVE_DIR", "/var/lib/renewd/certs/www/live"),
        (
            "RENEWD_CERT_PATH",
            "/var/lib/renewd/certs/www/live/cert.pem",
        ),
        (
            "RENEWD_KEY_PATH",
            "/var/lib/renewd/certs/www/live/privkey.pem",
        ),
        (
            "RENEWD_FULLCHAIN_PATH",
            "/var/lib/renewd/certs/www/live/fullchain.pem",
        ),
        (
            "RENEWD_CHAIN_PATH",
            "/var/lib/renewd/certs/www/live/chain.pem",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(env, expected, "nothing else: no NOTIFY_SOCKET, no secrets");
    assert!(results[1].is_ok());
    assert_eq!(std::fs::read_to_string(&order).unwrap(), "global www\n");
}

#[tokio::test]
async fn failure_hooks_get_a_one_line_error_and_empty_not_after() {
    let hooks = hooks(None, Some(cmd(&["/usr/bin/env"])));
    let notice = FailureNotice {
        cert: CertName::new("www").unwrap(),
        domains: vec![DomainName::new("www.example.test").unwrap()],
        urgency: Urgency::Critical,
        error: "finalize: https://ca/finalize/1 answered HTTP 504:\n<html>\n  Gateway Time-out\n</html>"
            .into(),
        class: FailureClass::CaUnavailable,
        not_after: None,
        failures: 3,
    };
    let results = hooks.failure(&cert(None, None), &notice).await;
    assert_eq!(results.len(), 1, "only the global hook is configured");
    let env = env_map(&results[0].as_ref().unwrap().stdout.text);
    assert_eq!(env["RENEWD_CERT_NAME"], "www");
    assert_eq!(env["RENEWD_DOMAINS"], "www.example.test");
    assert_eq!(env["RENEWD_URGENCY"], "critical");
    assert_eq!(
        env["RENEWD_ERROR"],
        "finalize: https://ca/finalize/1 answered HTTP 504: <html> Gateway Time-out </html>"
    );
    assert_eq!(env["RENEWD_ERROR_CLASS"], "ca_unavailable");
    assert_eq!(env["RENEWD_NOT_AFTER"], "");
    assert_eq!(env["RENEWD_FAILURES"], "3");
    assert_eq!(env.keys().filter(|k| k.starts_with("RENEWD_")).count(), 7);
}

#[tokio::test]
async fn argv_is_not_shell_interpreted() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let injection = format!("$(touch {})", marker.display());
    let outcome = runner(Duration::from_secs(10))
        .run(
            &cmd(&["/bin/echo", &injection, "a  b", "*", "; rm -rf /", "$HOME"]),
            &[],
        )
        .await
        .unwrap();
    assert!(outcome.success());
    assert_eq!(
        outcome.stdout.text,
        format!("{injection} a  b * ; rm -rf / $HOME\n")
    );
    assert!(!marker.exists(), "no shell ran the argument");
}

#[tokio::test]
async fn a_hanging_hook_is_killed_at_its_time_limit() {
    let limit = Duration::from_millis(500);
    let outcome = runner(limit)
        .run(&cmd(&["/bin/sleep", "600"]), &[])
        .await
        .unwrap();
    assert!(outcome.timed_out);
    assert!(!outcome.success());
    assert_eq!(outcome.status.signal(), Some(libc::SIGTERM));
    assert!(outcome.duration >= limit, "{:?}", outcome.duration);
    assert!(
        outcome.duration < Duration::from_secs(5),
        "{:?}",
        outcome.duration
    );
    let err = outcome.into_result().unwrap_err();
    assert!(matches!(
        err,
        Error::HookFailed {
            timed_out: true,
            ..
        }
    ));
    assert_eq!(err.class(), FailureClass::Local);
    assert!(err.to_string().contains("/bin/sleep 600"), "{err}");
    assert!(err.to_string().contains("time limit"), "{err}");
}

#[tokio::test]
async fn the_whole_process_group_dies_even_when_it_ignores_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    // The hook ignores SIGTERM (and so does its background grandchild, which inherits the
    // disposition): only the SIGKILL after the grace ends them.
    let hook = script(
        dir.path(),
        "stubborn",
        &format!(
            "trap '' TERM\n/bin/sleep 600 &\necho $! > {}\necho started\nwait",
            pidfile.display()
        ),
    );
    let outcome = runner(Duration::from_secs(1))
        .run(&hook, &[])
        .await
        .unwrap();
    assert!(outcome.timed_out);
    assert_eq!(outcome.status.signal(), Some(libc::SIGKILL), "{outcome:?}");
    assert_eq!(
        outcome.stdout.text, "started\n",
        "output before the kill is kept"
    );
    let grandchild: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_dead(grandchild).await,
        "the background grandchild {grandchild} died too"
    );
}

#[tokio::test]
async fn non_zero_exit_is_reported_with_the_stderr_tail() {
    let hook = cmd(&[
        "/bin/sh",
        "-c",
        "echo reloading; echo 'nginx: [emerg] unknown directive in nginx.conf:12' >&2; exit 3",
    ]);
    let outcome = runner(Duration::from_secs(10))
        .run(&hook, &[])
        .await
        .unwrap();
    assert!(!outcome.success());
    assert!(!outcome.timed_out);
    assert_eq!(outcome.status.code(), Some(3));
    assert_eq!(outcome.stdout.text, "reloading\n");
    let err = outcome.into_result().unwrap_err();
    let Error::HookFailed {
        argv, stderr_tail, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(argv.starts_with("/bin/sh -c"), "{argv}");
    assert_eq!(
        stderr_tail,
        "nginx: [emerg] unknown directive in nginx.conf:12\n"
    );
    let message = err.to_string();
    assert!(message.contains("exit status: 3"), "{message}");
    assert!(
        message.contains("unknown directive in nginx.conf:12"),
        "{message}"
    );
}

#[tokio::test]
async fn a_missing_program_is_a_spawn_error_and_long_output_keeps_its_end() {
    let err = runner(Duration::from_secs(10))
        .run(&cmd(&["/nonexistent/renewd-hook"]), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::HookSpawn { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/renewd-hook"));

    let outcome = runner(Duration::from_secs(10))
        .run(
            &cmd(&[
                "/bin/sh",
                "-c",
                "i=0; while [ $i -lt 20000 ]; do echo line-$i; i=$((i+1)); done",
            ]),
            &[],
        )
        .await
        .unwrap();
    assert!(outcome.success());
    assert!(outcome.stdout.truncated());
    assert_eq!(outcome.stdout.text.len(), OUTPUT_TAIL_BYTES);
    assert!(outcome.stdout.text.ends_with("line-19999\n"));
}

#[tokio::test]
async fn a_background_process_holding_stdout_does_not_hold_up_the_hook() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("bg.pid");
    let hook = cmd(&[
        "/bin/sh",
        "-c",
        &format!(
            "/bin/sleep 600 & echo $! > {}; echo done",
            pidfile.display()
        ),
    ]);
    let outcome = runner(Duration::from_secs(30))
        .run(&hook, &[])
        .await
        .unwrap();
    assert!(outcome.success());
    assert!(!outcome.timed_out);
    assert_eq!(outcome.stdout.text, "done\n");
    assert!(
        outcome.duration < Duration::from_secs(5),
        "{:?}",
        outcome.duration
    );
    // Not renewd's to kill; the test cleans up after itself.
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    let killed = std::process::Command::new("/bin/kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(wait_dead(pid.parse().unwrap()).await);
}

#[tokio::test]
async fn a_failing_own_hook_does_not_skip_the_global_one() {
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("global-ran");
    let global = cmd(&["/usr/bin/touch", ran.to_str().unwrap()]);
    let hooks = hooks(Some(global), None);
    let results = hooks
        .deploy(
            &cert(Some(cmd(&["/bin/false"])), None),
            &deployed(Path::new("/live")),
        )
        .await;
    assert!(matches!(results[0], Err(Error::HookFailed { .. })));
    assert!(results[1].is_ok());
    assert!(ran.exists());
}

#[tokio::test]
async fn an_abandoned_run_kills_the_hook_and_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("started");
    assert!(
        std::process::Command::new("/usr/bin/mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // The hook reports its grandchild's pid through the FIFO: reading it waits for the event.
    let hook = cmd(&[
        "/bin/sh",
        "-c",
        &format!("/bin/sleep 600 & echo $! > {}; wait", fifo.display()),
    ]);
    let run = tokio::spawn(async move { runner(Duration::from_secs(600)).run(&hook, &[]).await });
    let pid: u32 = tokio::task::spawn_blocking(move || std::fs::read_to_string(fifo).unwrap())
        .await
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!crate::support::process_is_dead(pid));
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    assert!(
        wait_dead(pid).await,
        "the group was killed when the run was dropped"
    );
}
