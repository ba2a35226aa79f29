//! ARI checks: the window of the installed certificate is asked of the CA that issued it,
//! and the next check honours `Retry-After` (clamped, on answers and errors alike), backs
//! off after CA failures and waits about 6 hours after other errors. A rate limit blocks
//! the CA; a blocked CA or an open circuit gets no check until it may be asked again.

use std::time::Duration;

use chrono::{SubsecRound, TimeDelta};
use renewd_core::{OutcomeClass, Step, Urgency};
use renewd_store::StateStore;
use renewd_testca::{AriOverride, AriTarget, Endpoint, Fault, FaultPlan, SuggestedWindow, TestCa};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_windows_and_when_to_ask_again() {
    let lab = lab()
        .ca(
            "a",
            TestCa::builder().ari_explanation_url("https://a.example/why"),
        )
        .ca("b", TestCa::builder())
        .cert("www", &["a", "b"])
        .start()
        .await;
    let issuer = lab.issuer();
    assert!(renew(&issuer, "www", Urgency::Normal).await.is_renewed());
    let installed = lab.state("www").installed.unwrap();
    assert!(installed.ari_cert_id.is_some());
    // A offers renewalInfo: the scheduler is to ask at once.
    assert_eq!(lab.state("www").ari.next_check, Some(lab.now()));

    issuer.check_renewal_info(&name("www")).await;
    let ari = lab.state("www").ari;
    assert_eq!(ari.window_end, Some(installed.not_after));
    assert!(ari.window_start.unwrap() < installed.not_after);
    assert_eq!(
        ari.explanation_url.as_deref(),
        Some("https://a.example/why")
    );
    assert_about(
        ari.next_check,
        lab.now() + TimeDelta::hours(6),
        "next check",
    );

    // Retry-After is clamped to [1 min, 1 day].
    let window = SuggestedWindow::open_now(Duration::from_secs(60), Duration::from_secs(3600));
    // The CA states times to the second.
    let start = window.start.trunc_subsecs(0);
    for (retry_after, expected) in [
        (Duration::from_secs(5), TimeDelta::minutes(1)),
        (Duration::from_secs(3 * 86_400), TimeDelta::days(1)),
        (Duration::from_secs(7200), TimeDelta::hours(2)),
    ] {
        lab.testca("a")
            .set_ari_window(AriOverride::new(AriTarget::All, window).retry_after(retry_after));
        issuer.check_renewal_info(&name("www")).await;
        let ari = lab.state("www").ari;
        assert_about(
            ari.next_check,
            lab.now() + expected,
            &format!("{retry_after:?}"),
        );
        assert_eq!(ari.window_start, Some(start));
    }

    // CA failures back off exponentially; other errors wait about 6 hours; the window
    // already known is kept.
    lab.testca("a")
        .set_fault_plan(FaultPlan::new().rule(Endpoint::RenewalInfo, Fault::status(503)))
        .unwrap();
    for minutes in [1, 2, 4] {
        issuer.check_renewal_info(&name("www")).await;
        let ari = lab.state("www").ari;
        assert_eq!(
            ari.next_check,
            Some(lab.now() + TimeDelta::minutes(minutes))
        );
        assert_eq!(ari.window_start, Some(start));
    }
    lab.testca("a")
        .set_fault_plan(FaultPlan::new().rule(Endpoint::RenewalInfo, Fault::status(404)))
        .unwrap();
    issuer.check_renewal_info(&name("www")).await;
    assert_eq!(
        lab.state("www").ari.next_check,
        Some(lab.now() + TimeDelta::hours(6))
    );

    let rows: Vec<_> = lab
        .ledger("a")
        .into_iter()
        .filter(|r| r.step == Step::RenewalInfo)
        .collect();
    assert_eq!(
        rows.len() as u64,
        lab.counts("a").requests_to(Endpoint::RenewalInfo)
    );
    assert_eq!(
        rows.iter().filter(|r| r.class == OutcomeClass::Ok).count(),
        4
    );
    assert!(
        rows.iter()
            .all(|r| r.cert.as_ref().is_some_and(|c| c.as_str() == "www"))
    );

    // A certificate from B is checked at B.
    lab.testca("a").set_fault_plan(FaultPlan::new()).unwrap();
    let mut at_b = job("www", Urgency::Normal);
    at_b.only_ca = Some(ca_name("b"));
    assert!(run(&issuer, vec![at_b]).await[0].is_renewed());
    let before_a = lab.counts("a").requests_to(Endpoint::RenewalInfo);
    issuer.check_renewal_info(&name("www")).await;
    assert_eq!(lab.counts("b").requests_to(Endpoint::RenewalInfo), 1);
    assert_eq!(lab.counts("a").requests_to(Endpoint::RenewalInfo), before_a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaces_goes_only_to_the_ca_and_account_that_issued() {
    // The test CA refuses a `replaces` naming a certificate of another account: a renewal
    // from A, then B, then A again, then A again only works if `replaces` is sent where it
    // belongs and nowhere else.
    let lab = lab()
        .ca("a", TestCa::builder())
        .ca("b", TestCa::builder())
        .cert("www", &["a", "b"])
        .start()
        .await;
    let issuer = lab.issuer();
    // (CA, orders with `replaces` at a and at b after that renewal): only the last one
    // renews a certificate of the same CA and account.
    let steps = [("a", 0, 0), ("b", 0, 0), ("a", 0, 0), ("a", 1, 0)];
    let mut serials = Vec::new();
    for (ca, at_a, at_b) in steps {
        let mut j = job("www", Urgency::Normal);
        j.only_ca = Some(ca_name(ca));
        let result = run(&issuer, vec![j]).await.remove(0);
        assert!(result.is_renewed(), "{ca}: {result:?}");
        assert_eq!(lab.issuer_of("www").as_deref(), Some(ca));
        serials.push(lab.state("www").installed.unwrap().serial);
        let replacing = (
            lab.counts("a").orders_replacing,
            lab.counts("b").orders_replacing,
        );
        assert_eq!(replacing, (at_a, at_b), "after the renewal at {ca}");
    }
    assert_eq!(lab.counts("a").certificates_issued, 3);
    // The order that named a certificate is the one after it at the same CA.
    let replaced: Vec<String> = lab
        .testca("a")
        .certificates()
        .into_iter()
        .filter(|c| c.replaced_by.is_some())
        .map(|c| c.serial.trim_start_matches('0').to_string())
        .collect();
    // The test CA prints whole bytes (`0e81…`), renewd the number (`e81…`).
    assert_eq!(replaced, [serials[2].trim_start_matches('0')]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_answers_an_ari_check() {
    let lab = lab()
        .ca("a", TestCa::builder())
        .cert("www", &["a"])
        .start()
        .await;
    let issuer = lab.issuer();
    assert!(renew(&issuer, "www", Urgency::Normal).await.is_renewed());
    let (work_tx, work_rx) = tokio::sync::mpsc::channel(4);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel(4);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let pool = tokio::spawn({
        let (issuer, shutdown) = (issuer.clone(), shutdown.clone());
        async move { issuer.run(shutdown, work_rx, done_tx).await }
    });
    work_tx
        .send(renewd_core::Work::AriCheck(name("www")))
        .await
        .unwrap();
    let done = done_rx.recv().await.unwrap();
    assert_eq!(done.cert.as_str(), "www");
    assert!(!done.was_renewal);
    assert_eq!(lab.counts("a").requests_to(Endpoint::RenewalInfo), 1);
    assert!(lab.state("www").ari.window_start.is_some());
    // Closing the work channel ends the pool once its jobs are done.
    drop(work_tx);
    pool.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_ari_cannot_be_asked_about_is_marked_not_offered() {
    // Installed before renewd (no issuing CA, no CertID): no request can be made, and the
    // scheduler is told so instead of asking again every six hours.
    let lab = lab()
        .ca("a", TestCa::builder())
        .cert("www", &["a"])
        .start()
        .await;
    let now = lab.now();
    lab.store
        .update_cert_state(&name("www"), &mut |s| {
            s.installed = Some(renewd_store::InstalledCert {
                serial: "1f".into(),
                not_before: now - TimeDelta::days(10),
                not_after: now + TimeDelta::days(80),
                issuer_ca: None,
                account_url: None,
                ari_cert_id: None,
            });
            s.ari.next_check = Some(now);
        })
        .unwrap();
    let issuer = lab.issuer();
    issuer.check_renewal_info(&name("www")).await;
    let ari = lab.state("www").ari;
    assert_eq!(ari.not_offered_at, Some(now));
    assert_eq!(ari.next_check, None);
    assert_eq!(lab.counts("a").requests_to(Endpoint::RenewalInfo), 0);
    // A certificate renewd installs from a CA offering renewalInfo is checked again.
    assert!(renew(&issuer, "www", Urgency::Normal).await.is_renewed());
    let ari = lab.state("www").ari;
    assert_eq!(
        (ari.next_check, ari.not_offered_at),
        (Some(lab.now()), None)
    );
}

/// A lab with `www` installed from A and its first window known.
async fn checked_once() -> (Lab, renewd_issuer::Issuer) {
    let lab = lab()
        .ca("a", TestCa::builder())
        .cert("www", &["a"])
        .start()
        .await;
    let issuer = lab.issuer();
    assert!(renew(&issuer, "www", Urgency::Normal).await.is_renewed());
    issuer.check_renewal_info(&name("www")).await;
    assert!(lab.state("www").ari.window_start.is_some());
    (lab, issuer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_on_renewal_info_blocks_the_ca_and_the_next_check_waits_for_it() {
    let (lab, issuer) = checked_once().await;
    lab.testca("a")
        .set_fault_plan(FaultPlan::new().rule(
            Endpoint::RenewalInfo,
            Fault::rate_limited(Duration::from_secs(2 * 3600)).times(1),
        ))
        .unwrap();
    issuer.check_renewal_info(&name("www")).await;
    let end = lab.health("a").blocked_until;
    assert_about(end, lab.now() + TimeDelta::hours(2), "the whole CA blocked");
    let end = end.unwrap();
    assert_eq!(lab.state("www").ari.next_check, Some(end));
    // Nothing goes to A meanwhile: not the next check, not an order.
    let asked = lab.counts("a").requests_to(Endpoint::RenewalInfo);
    lab.clock.advance(TimeDelta::hours(1));
    issuer.check_renewal_info(&name("www")).await;
    assert_eq!(lab.counts("a").requests_to(Endpoint::RenewalInfo), asked);
    assert_eq!(lab.state("www").ari.next_check, Some(end));
    let result = renew(&issuer, "www", Urgency::Normal).await;
    assert!(
        matches!(result, renewd_issuer::JobResult::Deferred { until, .. } if until == end),
        "{result:?}"
    );
    // Once it ends, A is asked again.
    lab.clock.set(end);
    issuer.check_renewal_info(&name("www")).await;
    assert_eq!(
        lab.counts("a").requests_to(Endpoint::RenewalInfo),
        asked + 1
    );
    assert_about(
        lab.state("www").ari.next_check,
        lab.now() + TimeDelta::hours(6),
        "next check",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_check_goes_to_a_ca_whose_circuit_is_open() {
    let (lab, issuer) = checked_once().await;
    let until = lab.now() + TimeDelta::minutes(8);
    lab.store
        .update_ca_health(&ca_name("a"), &mut |h| {
            h.circuit = renewd_store::CircuitState::Open;
            h.open_until = Some(until);
        })
        .unwrap();
    let asked = lab.counts("a").requests_to(Endpoint::RenewalInfo);
    issuer.check_renewal_info(&name("www")).await;
    assert_eq!(lab.counts("a").requests_to(Endpoint::RenewalInfo), asked);
    assert_eq!(lab.state("www").ari.next_check, Some(until));
    // The cool-down over, the check goes (it does not move the circuit).
    lab.clock.set(until);
    issuer.check_renewal_info(&name("www")).await;
    assert_eq!(
        lab.counts("a").requests_to(Endpoint::RenewalInfo),
        asked + 1
    );
    assert_eq!(lab.health("a").circuit, renewd_store::CircuitState::Open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_on_a_failed_check_is_honoured_within_a_day() {
    let (lab, issuer) = checked_once().await;
    for (status, retry_after, expected) in [
        (503, Duration::from_secs(12 * 3600), TimeDelta::hours(12)),
        (503, Duration::from_secs(5), TimeDelta::minutes(1)),
        (404, Duration::from_secs(3 * 86_400), TimeDelta::days(1)),
    ] {
        lab.testca("a")
            .set_fault_plan(FaultPlan::new().rule(
                Endpoint::RenewalInfo,
                Fault::status(status).retry_after(retry_after).times(1),
            ))
            .unwrap();
        issuer.check_renewal_info(&name("www")).await;
        assert_about(
            lab.state("www").ari.next_check,
            lab.now() + expected,
            &format!("{status} with Retry-After {retry_after:?}"),
        );
    }
    assert_eq!(lab.health("a").blocked_until, None);
}
