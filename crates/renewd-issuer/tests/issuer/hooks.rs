//! What the host is asked to do: failure hooks once per failure streak and on rising
//! urgency, deploy hooks and the served-certificate check after an install, and how their
//! failures are reported without undoing anything.

use chrono::TimeDelta;
use renewd_core::{FailureClass, OutcomeClass, Step, Urgency};
use renewd_issuer::{HookKind, IssuerEvent, JobResult};
use renewd_testca::{Endpoint, Fault, FaultPlan, TestCa};

use crate::support::*;

const HOOKS: &str = "failure_hook = [\"/bin/true\", \"www\"]\n\
                     deploy_hook = [\"/bin/true\", \"deploy\"]\n\
                     verify_served = [\"127.0.0.1:8443\"]";

fn down() -> FaultPlan {
    FaultPlan::new().rule(Endpoint::Directory, Fault::status(503))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_hooks_once_per_streak_and_when_urgency_rises() {
    let lab = lab()
        .ca("a", TestCa::builder().fault_plan(down()))
        .cert_with("www", &["a"], HOOKS)
        .breaker("failure_threshold", "100")
        .breaker("probe_cache", "\"0s\"")
        .start()
        .await;
    let issuer = lab.issuer();
    let mut events = lab.events();
    let started = lab.now();
    let hook_calls = |lab: &Lab| lab.host.failure_calls().len();

    assert!(!renew(&issuer, "www", Urgency::Normal).await.is_renewed());
    assert_eq!(hook_calls(&lab), 1);
    let notice = lab.host.failure_calls().remove(0);
    assert_eq!(notice.class, FailureClass::CaUnavailable);
    assert_eq!(
        (notice.urgency, notice.failure_streak),
        (Urgency::Normal, 1)
    );
    assert_eq!(notice.hooks[0].argv(), ["/bin/true", "www"]);
    assert_eq!(notice.ca.unwrap().as_str(), "a");
    let s = lab.state("www");
    assert_eq!((s.failure_streak, s.backoff_step), (1, 1));
    assert_eq!(s.failing_since, Some(started));
    assert_eq!(s.urgency_alerted, Some(Urgency::Normal));
    let wait = (s.next_attempt.unwrap() - lab.now()).num_seconds();
    assert!((54..=66).contains(&wait), "about a minute: {wait}");
    assert_eq!(s.last_error.unwrap().class, OutcomeClass::CaUnavailable);

    lab.clock.advance(TimeDelta::minutes(1));
    assert!(!renew(&issuer, "www", Urgency::Normal).await.is_renewed());
    assert_eq!(hook_calls(&lab), 1, "not again in the same streak");
    let s = lab.state("www");
    assert_eq!(s.failing_since, Some(started), "the streak's first failure");
    let wait = (s.next_attempt.unwrap() - lab.now()).num_seconds();
    assert!((540..=660).contains(&wait), "about ten minutes: {wait}");

    for (urgency, expected) in [
        (Urgency::Urgent, 2),
        (Urgency::Urgent, 2),
        (Urgency::Normal, 2),
        (Urgency::Critical, 3),
        (Urgency::Critical, 3),
    ] {
        assert!(!renew(&issuer, "www", urgency).await.is_renewed());
        assert_eq!(hook_calls(&lab), expected, "{urgency}");
    }
    assert_eq!(lab.state("www").urgency_alerted, Some(Urgency::Critical));
    let seen = events_of(&mut events);
    assert!(
        seen.iter()
            .any(|e| matches!(e, IssuerEvent::ExpiryDanger { .. }))
    );
    assert_eq!(
        seen.iter()
            .filter(|e| matches!(e, IssuerEvent::Failed { .. }))
            .count(),
        7
    );

    // Success ends the streak…
    lab.testca("a").set_fault_plan(FaultPlan::new()).unwrap();
    assert!(renew(&issuer, "www", Urgency::Normal).await.is_renewed());
    let s = lab.state("www");
    assert_eq!((s.failure_streak, s.backoff_step), (0, 0));
    assert_eq!(
        (s.failing_since, s.last_error, s.urgency_alerted),
        (None, None, None)
    );
    assert_eq!((s.next_attempt, s.last_success), (None, Some(lab.now())));
    // …so the next failure starts a new one, with its hook.
    lab.testca("a").set_fault_plan(down()).unwrap();
    assert!(!renew(&issuer, "www", Urgency::Normal).await.is_renewed());
    assert_eq!(hook_calls(&lab), 4);
    assert_eq!(lab.host.failure_calls()[3].failure_streak, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_and_served_check_follow_the_install_and_their_failures_are_reported() {
    let lab = lab()
        .ca("a", TestCa::builder())
        .cert_with("www", &["a"], HOOKS)
        .start()
        .await;
    let issuer = lab.issuer();
    let result = renew(&issuer, "www", Urgency::Normal).await;
    let JobResult::Renewed {
        serial, warnings, ..
    } = result
    else {
        panic!("{result:?}")
    };
    assert!(warnings.is_empty(), "{warnings:?}");
    let deploy = lab.host.deploys.lock().unwrap()[0].clone();
    assert_eq!(deploy.serial, serial);
    assert_eq!(deploy.hooks.len(), 1);
    assert_eq!(deploy.live_dir, lab.dir.path().join("state/certs/www/live"));
    assert!(deploy.live_dir.join("fullchain.pem").is_file());
    let served = lab.host.served.lock().unwrap()[0].clone();
    assert_eq!(served.serial, serial);
    assert_eq!(served.server_name.as_str(), "www.example.test");
    let ok = lab
        .ledger("a")
        .into_iter()
        .find(|r| r.step == Step::DeployHook)
        .unwrap();
    assert_eq!(ok.class, OutcomeClass::Ok);

    // A failing deploy hook: reported, and the new certificate stays installed.
    lab.host
        .fail_deploy
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let mut events = lab.events();
    let result = renew(&issuer, "www", Urgency::Normal).await;
    let JobResult::Renewed {
        serial: second,
        warnings,
        ..
    } = result
    else {
        panic!("{result:?}")
    };
    assert_ne!(second, serial);
    assert_eq!(lab.state("www").installed.unwrap().serial, second);
    assert!(warnings[0].contains("exited with status 3"), "{warnings:?}");
    let row = lab
        .ledger("a")
        .into_iter()
        .find(|r| r.step == Step::DeployHook && r.class == OutcomeClass::Local)
        .unwrap();
    assert!(row.detail.unwrap().contains("deploy hook"));
    assert!(events_of(&mut events).iter().any(|e| matches!(
        e,
        IssuerEvent::HookFailed {
            hook: HookKind::Deploy,
            ..
        }
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_still_presenting_the_old_certificate_is_reported_and_not_blamed_on_the_ca() {
    let lab = lab()
        .ca("a", TestCa::builder())
        .cert_with("www", &["a"], HOOKS)
        .start()
        .await;
    let issuer = lab.issuer();
    lab.host
        .serve_stale
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let mut events = lab.events();
    let result = renew(&issuer, "www", Urgency::Normal).await;
    let JobResult::Renewed {
        serial, warnings, ..
    } = result
    else {
        panic!("a mismatch after the install is no failed renewal: {result:?}")
    };

    // The new certificate stays installed and live.
    assert_eq!(lab.state("www").installed.unwrap().serial, serial);
    assert!(
        lab.dir
            .path()
            .join("state/certs/www/live/fullchain.pem")
            .is_file()
    );
    assert_eq!(lab.host.served.lock().unwrap()[0].serial, serial);

    // Reported loudly: a warning of the job, a `local` deploy_hook row, a HookFailed event.
    let mismatch = format!("verify_served: 127.0.0.1:8443 serves serial 0badc0de, not {serial}");
    assert_eq!(warnings, std::slice::from_ref(&mismatch));
    let rows = lab.ledger("a");
    let row = rows
        .iter()
        .find(|r| r.step == Step::DeployHook && r.class == OutcomeClass::Local)
        .unwrap_or_else(|| panic!("no local deploy_hook row: {rows:#?}"));
    assert_eq!(row.detail.as_deref(), Some(mismatch.as_str()));
    assert_eq!(row.cert.as_ref().map(|c| c.as_str()), Some("www"));
    assert!(events_of(&mut events).iter().any(|e| matches!(
        e,
        IssuerEvent::HookFailed {
            hook: HookKind::VerifyServed,
            message,
            ..
        } if *message == mismatch
    )));

    // Not the CA's fault: no CA failure, the circuit closed, no failure streak or hook.
    assert!(
        rows.iter().all(|r| r.class == OutcomeClass::Ok
            || (r.step == Step::DeployHook && r.class == OutcomeClass::Local)),
        "{rows:#?}"
    );
    let health = lab.health("a");
    assert_eq!(health.consecutive_failures, 0);
    assert_eq!(health.circuit, renewd_store::CircuitState::Closed);
    let state = lab.state("www");
    assert_eq!((state.failure_streak, state.last_error), (0, None));
    assert!(lab.host.failure_calls().is_empty());
}
