//! dns-01 hooks as real processes: environment, the propagation check retried until it
//! succeeds, the time-out when it never does. (The back-off arithmetic itself is tested
//! under paused time in `src/dns01.rs`; here the pauses are short real ones.)

use std::path::Path;
use std::time::Duration;

use renewd_acme::ChallengeSolver;
use renewd_config::{Command, Dns01Config};
use renewd_local::{CheckInterval, Dns01Hooks, Error, HookRunner};

use crate::support::{dns01_answer, local_error, script};

const QUICK: CheckInterval = CheckInterval {
    first: Duration::from_millis(20),
    max: Duration::from_millis(80),
};

/// A hook that appends its `RENEWD_*` variables (one line) to `log`.
fn logging_hook(dir: &Path, name: &str, log: &Path, then: &str) -> Command {
    script(
        dir,
        name,
        &format!(
            "echo \"$RENEWD_DNS_NAME|$RENEWD_DNS_VALUE|$RENEWD_DOMAIN|$RENEWD_TOKEN\" >> {}\n{then}",
            log.display()
        ),
    )
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn solver(config: Dns01Config) -> Dns01Hooks {
    Dns01Hooks::new(config, HookRunner::new(Duration::from_secs(10))).with_check_interval(QUICK)
}

#[tokio::test]
async fn propagation_check_is_retried_until_it_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let (add_log, check_log, remove_log) = (
        dir.path().join("add.log"),
        dir.path().join("check.log"),
        dir.path().join("remove.log"),
    );
    // The check fails twice ("not visible yet"), then succeeds.
    let check = logging_hook(
        dir.path(),
        "check",
        &check_log,
        &format!(
            "[ $(wc -l < {}) -ge 3 ] || {{ echo 'not visible yet' >&2; exit 1; }}",
            check_log.display()
        ),
    );
    let hooks = solver(Dns01Config {
        add_hook: logging_hook(dir.path(), "add", &add_log, ""),
        remove_hook: Some(logging_hook(dir.path(), "remove", &remove_log, "")),
        propagation_delay: Duration::ZERO,
        propagation_check: Some(check),
        propagation_timeout: Duration::from_secs(30),
    });
    let answer = dns01_answer("example.test", true, "tok-w");
    let renewd_acme::ChallengeProof::Dns01 { value, .. } = &answer.proof else {
        unreachable!()
    };
    let expected = format!("_acme-challenge.example.test|{value}|*.example.test|tok-w");

    hooks.present(&answer).await.unwrap();
    assert_eq!(lines(&add_log), std::slice::from_ref(&expected));
    assert_eq!(
        lines(&check_log),
        [expected.clone(), expected.clone(), expected.clone()],
        "checked three times, with the same environment"
    );
    assert!(lines(&remove_log).is_empty());

    hooks.cleanup(&answer).await.unwrap();
    assert_eq!(lines(&remove_log), [expected]);
}

#[tokio::test]
async fn propagation_timeout_removes_the_record_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let remove_log = dir.path().join("remove.log");
    let check_log = dir.path().join("check.log");
    let hooks = solver(Dns01Config {
        add_hook: script(dir.path(), "add", "exit 0"),
        remove_hook: Some(logging_hook(dir.path(), "remove", &remove_log, "")),
        propagation_delay: Duration::from_millis(50),
        propagation_check: Some(logging_hook(
            dir.path(),
            "check",
            &check_log,
            "echo 'NXDOMAIN from ns1' >&2; exit 1",
        )),
        // Long enough that a loaded machine still finishes a few checks, each of which
        // may be cut off at the deadline.
        propagation_timeout: Duration::from_secs(2),
    });
    let answer = dns01_answer("slow.test", false, "tok-s");
    let err = hooks.present(&answer).await.unwrap_err();
    match local_error(&err) {
        Error::PropagationTimeout {
            name,
            waited,
            attempts,
            last,
        } => {
            assert_eq!(name, "_acme-challenge.slow.test");
            assert!(*waited >= Duration::from_millis(2050), "{waited:?}");
            assert!(*attempts >= 2, "retried: {attempts}");
            // The last check may be killed at the deadline before its first line ran.
            let logged = lines(&check_log).len();
            assert!(
                logged == *attempts as usize || logged + 1 == *attempts as usize,
                "{attempts} attempts, {logged} logged"
            );
            assert!(
                last.as_deref().unwrap().contains("NXDOMAIN from ns1"),
                "{last:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        lines(&remove_log).len(),
        1,
        "the record is withdrawn: the flow never cleans up a failed present"
    );
}

#[tokio::test]
async fn a_failing_add_hook_is_reported_and_nothing_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let check_log = dir.path().join("check.log");
    let hooks = solver(Dns01Config {
        add_hook: script(dir.path(), "add", "echo 'API token rejected' >&2; exit 2"),
        remove_hook: None,
        propagation_delay: Duration::ZERO,
        propagation_check: Some(logging_hook(dir.path(), "check", &check_log, "")),
        propagation_timeout: Duration::from_secs(5),
    });
    let err = hooks
        .present(&dns01_answer("a.test", false, "tok"))
        .await
        .unwrap_err();
    assert!(matches!(local_error(&err), Error::HookFailed { .. }));
    assert!(err.to_string().contains("API token rejected"), "{err}");
    assert!(lines(&check_log).is_empty());
}
