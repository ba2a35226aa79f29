//! Dispatch at the right virtual time, in the right order, never twice; back-off after a
//! failure; ARI checks; circuits.

use std::time::Duration;

use chrono::TimeDelta;
use renewd_core::{Backoff, RenewalReason, SeenInstalled, Urgency, Work};
use renewd_scheduler::{CertStatus, SchedulerCommand};
use renewd_store::StateStore;

use crate::support::*;

#[tokio::test(start_paused = true)]
async fn dispatches_at_the_due_time_to_the_millisecond() {
    let w = World::new();
    let due_a = w.due_in("a", days(3) + TimeDelta::milliseconds(1234));
    let due_b = w.due_in("b", days(1));
    let mut s = w.run(vec![plan("a"), plan("b")], 4);

    let first = job(s.next().await);
    assert_eq!(first.cert, name("b"));
    assert_eq!(w.now(), due_b);
    assert_eq!(first.reason, RenewalReason::Expiring);
    assert_eq!(first.urgency, Urgency::Normal);

    let second = job(s.next().await);
    assert_eq!(second.cert, name("a"));
    assert_eq!(w.now(), due_a);
    s.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_job_carries_the_installed_serial_read_from_the_store_at_dispatch() {
    let w = World::new();
    let due = w.due_in("www", days(1));
    let mut s = w.run(vec![plan("www"), plan("new")], 4);
    assert_eq!(job(s.next().await).seen_installed, SeenInstalled::Nothing);
    // Recorded after the scheduler loaded it, before it is due: the dispatch reads it.
    w.store
        .update_cert_state(&name("www"), &mut |st| {
            if let Some(i) = st.installed.as_mut() {
                i.serial = "c0ffee".into();
            }
        })
        .unwrap();
    let renewal = job(s.next().await);
    assert_eq!(w.now(), due);
    assert_eq!(
        renewal.seen_installed,
        SeenInstalled::Serial("c0ffee".into())
    );
    s.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn pending_orders_go_first_then_by_urgency() {
    let w = World::new();
    // Due now, each for another reason: nothing installed, an expired certificate, a
    // certificate due by its lifetime, and a pending order.
    w.installed("expired", w.now() - days(91), w.now() - days(1));
    w.due_in("normal", -TimeDelta::hours(1));
    w.due_in("resume", days(20));
    w.pending("resume");
    let plans = vec![
        plan("missing"),
        plan("normal"),
        plan("expired"),
        plan("resume"),
    ];
    let mut s = w.run(plans, 1);

    let order: Vec<_> = [
        s.next().await,
        s.next().await,
        s.next().await,
        s.next().await,
    ]
    .into_iter()
    .map(job)
    .map(|j| (j.cert.to_string(), j.reason, j.urgency))
    .collect();
    assert_eq!(
        order,
        [
            (
                "resume".into(),
                RenewalReason::ResumePending,
                Urgency::Normal
            ),
            ("expired".into(), RenewalReason::Expiring, Urgency::Critical),
            ("missing".into(), RenewalReason::Missing, Urgency::Urgent),
            ("normal".into(), RenewalReason::Expiring, Urgency::Normal),
        ]
    );
    // All four went out at once: no virtual time passed.
    assert_eq!(w.now(), t0());
}

#[tokio::test(start_paused = true)]
async fn never_twice_while_in_flight() {
    let w = World::new();
    let mut s = w.run(vec![plan("www")], 4);
    assert_eq!(job(s.next().await).reason, RenewalReason::Missing);
    let st = s.status_until(|st| st.in_flight == 1).await;
    assert_eq!(st.count(CertStatus::Renewing), 1);

    // Still missing in the store, still due — but in flight: nothing for a virtual day.
    assert!(s.next_within(Duration::from_secs(86_400)).await.is_none());
    // A forced manual renewal is refused too.
    let (tx, rx) = tokio::sync::oneshot::channel();
    s.send(SchedulerCommand::RenewNow {
        certs: vec![],
        force: true,
        only_ca: None,
        reply: tx,
    })
    .await;
    assert_eq!(rx.await.unwrap().in_flight, vec![name("www")]);

    // The issuer installs a certificate and reports: next renewal in 60 days.
    w.succeed("www");
    let installed_at = w.now();
    s.done("www", true).await;
    let st = s.status_until(|st| st.in_flight == 0).await;
    assert_eq!(st.count(CertStatus::Valid), 1);
    assert_eq!(st.next.as_ref().unwrap().at, installed_at + days(60));
    let again = job(s.next().await);
    assert_eq!(again.reason, RenewalReason::Expiring);
    assert_eq!(w.now(), installed_at + days(60));
}

#[tokio::test(start_paused = true)]
async fn a_failure_reschedules_at_the_backoff() {
    let w = World::new();
    let due = w.due_in("www", TimeDelta::hours(2));
    let mut s = w.run(vec![plan("www")], 4);
    let backoff = Backoff::default();

    job(s.next().await);
    assert_eq!(w.now(), due);
    for failures in 1..=3u32 {
        let retry = w.now() + TimeDelta::from_std(backoff.delay(failures)).unwrap();
        let state = w.fail("www", retry);
        assert_eq!(state.failure_streak, failures);
        s.done("www", true).await;
        let st = s.status_until(|st| st.in_flight == 0).await;
        assert_eq!(st.count(CertStatus::Failing), 1);
        assert_eq!(st.next.as_ref().unwrap().at, retry);
        job(s.next().await);
        assert_eq!(w.now(), retry, "attempt after {failures} failures");
    }
    // After 1, 10 and 100 minutes.
    assert_eq!(w.now() - due, TimeDelta::minutes(111));
}

#[tokio::test(start_paused = true)]
async fn an_issuer_that_records_no_backoff_is_paused_not_spun() {
    let w = World::new();
    let mut s = w.run(vec![plan("www")], 4);
    job(s.next().await);
    // The issuer reports without recording anything: the certificate is still missing.
    s.done("www", true).await;
    let start = w.now();
    job(s.next().await);
    assert_eq!(w.now() - start, renewd_scheduler::MISSING_BACKOFF_PAUSE);
}

#[tokio::test(start_paused = true)]
async fn circuits_hold_back_and_circuit_changed_wakes() {
    let mut w = World::new();
    w.policy.ari = false;
    w.circuit("zerossl", Some(w.now() + TimeDelta::hours(2)));
    w.circuit("letsencrypt", Some(w.now() + TimeDelta::hours(3)));
    // Two certificates due now (normal urgency), one only at letsencrypt.
    w.due_in("both", -TimeDelta::minutes(1));
    w.due_in("le", -TimeDelta::minutes(1));
    let le_only = renewd_scheduler::CertPlan::new(name("le"), vec![ca("letsencrypt")]);
    let mut s = w.run(vec![plan("both"), le_only], 4);

    let st = s.status_until(|st| st.next.is_some()).await;
    assert_eq!(st.count(CertStatus::Due), 2);
    assert_eq!(st.next.as_ref().unwrap().at, t0() + TimeDelta::hours(2));
    assert!(s.next_within(Duration::from_secs(3600)).await.is_none());

    // letsencrypt's circuit closes early: both may go now.
    w.circuit("letsencrypt", None);
    s.send(SchedulerCommand::CircuitChanged(ca("letsencrypt")))
        .await;
    let mut woke = vec![what(&s.next().await).0, what(&s.next().await).0];
    woke.sort();
    assert_eq!(woke, ["both", "le"]);
    assert_eq!(w.now(), t0() + TimeDelta::hours(1));
}

#[tokio::test(start_paused = true)]
async fn waiting_for_circuits_ends_at_the_earliest_cool_down() {
    let w = World::new();
    w.circuit("zerossl", Some(w.now() + TimeDelta::hours(2)));
    w.circuit("letsencrypt", Some(w.now() + TimeDelta::minutes(90)));
    w.due_in("www", -TimeDelta::minutes(1));
    // An expired certificate is critical: circuits do not hold it.
    w.installed("old", w.now() - days(91), w.now() - days(1));
    let mut s = w.run(vec![plan("www"), plan("old")], 4);
    let first = job(s.next().await);
    assert_eq!(
        (first.cert.as_str(), first.urgency),
        ("old", Urgency::Critical)
    );
    assert_eq!(w.now(), t0());
    let second = job(s.next().await);
    assert_eq!(second.cert, name("www"));
    assert_eq!(w.now(), t0() + TimeDelta::minutes(90));
}

#[tokio::test(start_paused = true)]
async fn ari_checks_run_at_next_check_and_follow_the_store() {
    let mut w = World::new();
    w.policy.ari = true;
    w.due_in("www", days(30));
    w.store
        .update_cert_state(&name("www"), &mut |s| {
            s.ari.next_check = Some(t0() + TimeDelta::hours(1));
        })
        .unwrap();
    let mut s = w.run(vec![plan("www")], 4);

    assert!(matches!(s.next().await, Work::AriCheck(_)));
    assert_eq!(w.now(), t0() + TimeDelta::hours(1));
    // The CA suggests a window in two days and asks to be polled again in 6 hours.
    let (start, end) = (t0() + days(2), t0() + days(2) + TimeDelta::hours(4));
    w.store
        .update_cert_state(&name("www"), &mut |s| {
            s.ari.window_start = Some(start);
            s.ari.window_end = Some(end);
            s.ari.next_check = Some(t0() + TimeDelta::hours(7));
        })
        .unwrap();
    s.done("www", false).await;
    assert!(matches!(s.next().await, Work::AriCheck(_)));
    assert_eq!(w.now(), t0() + TimeDelta::hours(7));
    // The issuer stores no next check this time: the scheduler's own 6-hour floor applies.
    w.store
        .update_cert_state(&name("www"), &mut |s| s.ari.next_check = None)
        .unwrap();
    s.done("www", false).await;
    assert!(matches!(s.next().await, Work::AriCheck(_)));
    assert_eq!(w.now(), t0() + TimeDelta::hours(13));
    w.store
        .update_cert_state(&name("www"), &mut |s| {
            s.ari.next_check = Some(t0() + days(5))
        })
        .unwrap();
    s.done("www", false).await;
    // Next: the renewal, inside the window.
    let j = job(s.next().await);
    assert_eq!(j.reason, RenewalReason::AriWindow);
    assert!(w.now() >= start && w.now() < end, "{}", w.now());
}

#[tokio::test(start_paused = true)]
async fn no_ari_checks_where_the_issuer_found_ari_not_offered_until_a_reload() {
    let mut w = World::new();
    w.policy.ari = true;
    let due = w.due_in("www", days(30));
    let mut s = w.run(vec![plan("www")], 4);
    // Never checked: at once. The CA offers no renewalInfo: the issuer marks it.
    assert!(matches!(s.next().await, Work::AriCheck(_)));
    let marked = w.now();
    w.store
        .update_cert_state(&name("www"), &mut |st| {
            st.ari.next_check = None;
            st.ari.not_offered_at = Some(marked);
        })
        .unwrap();
    s.done("www", false).await;
    // No check every 6 hours: nothing for twenty days.
    assert!(
        s.next_within(Duration::from_secs(20 * 86_400))
            .await
            .is_none()
    );
    assert!(w.now() < due);
    // A reload (the CA may offer renewalInfo now, or be back in the config): asked once more.
    s.send(SchedulerCommand::Reload {
        plans: vec![plan("www")],
        inventory: renewd_scheduler::Inventory::new(),
    })
    .await;
    let check = s.next_within(Duration::from_secs(60)).await;
    assert!(matches!(check, Some(Work::AriCheck(_))), "{check:?}");
    // Still not offered: marked again, and quiet again until the renewal.
    w.store
        .update_cert_state(&name("www"), &mut |st| {
            st.ari.not_offered_at = Some(w.now())
        })
        .unwrap();
    s.done("www", false).await;
    let j = job(s.next().await);
    assert_eq!(j.reason, RenewalReason::Expiring);
    assert_eq!(w.now(), due);
}
