//! Manual renewals, reloads and rescans.

use std::time::Duration;

use chrono::TimeDelta;
use renewd_core::{RenewalReason, Urgency};
use renewd_scheduler::{CertStatus, Inventory, RenewNowReply, SchedulerCommand};
use renewd_store::InstalledState;
use tokio::sync::oneshot;

use crate::support::*;

async fn renew_now(
    s: &Running,
    certs: &[&str],
    force: bool,
    only_ca: Option<&str>,
) -> RenewNowReply {
    let (tx, rx) = oneshot::channel();
    s.send(SchedulerCommand::RenewNow {
        certs: certs.iter().map(|c| name(c)).collect(),
        force,
        only_ca: only_ca.map(ca),
        reply: tx,
    })
    .await;
    rx.await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn renew_now_dispatches_due_ones_and_forces_the_rest() {
    let w = World::new();
    let due = w.due_in("www", days(10));
    w.due_in("api", days(20));
    let mut s = w.run(vec![plan("www"), plan("api")], 4);

    // Not due: refused without force, with the time it will be due.
    let reply = renew_now(&s, &["www", "nope"], false, None).await;
    assert_eq!(reply.not_due, vec![(name("www"), due)]);
    assert_eq!(reply.unknown, vec![name("nope")]);
    assert!(reply.queued.is_empty());
    assert!(s.next_within(Duration::from_secs(60)).await.is_none());

    // Forced, at one CA: out at once.
    let before = w.now();
    let reply = renew_now(&s, &["www"], true, Some("letsencrypt")).await;
    assert_eq!(reply.queued, vec![name("www")]);
    let j = job(s.next().await);
    assert_eq!(w.now(), before);
    assert_eq!(j.cert, name("www"));
    assert_eq!(j.reason, RenewalReason::Forced);
    assert_eq!(j.urgency, Urgency::Normal);
    assert_eq!(j.only_ca, Some(ca("letsencrypt")));

    // Empty list = all: www is in flight, api gets forced.
    let reply = renew_now(&s, &[], true, None).await;
    assert_eq!(reply.in_flight, vec![name("www")]);
    assert_eq!(reply.queued, vec![name("api")]);
    assert_eq!(job(s.next().await).cert, name("api"));
}

#[tokio::test(start_paused = true)]
async fn renew_now_without_force_takes_what_is_due() {
    let w = World::new();
    w.due_in("www", days(10));
    // Due, but backing off: a manual request asks now, so it goes now (the back-off is
    // the scheduler's own pacing, not a reason to refuse an operator).
    w.due_in("slow", -TimeDelta::hours(1));
    let retry = w.now() + TimeDelta::minutes(10);
    w.fail("slow", retry);
    let mut s = w.run(vec![plan("www"), plan("slow")], 4);
    let reply = renew_now(&s, &["slow", "www"], false, Some("zerossl")).await;
    assert_eq!(reply.queued, vec![name("slow")]);
    // Not due yet: www waits for its time.
    assert_eq!(reply.not_due.len(), 1);
    assert_eq!(reply.not_due[0].0, name("www"));
    let j = job(s.next().await);
    assert_eq!(j.cert, name("slow"));
    assert_eq!(w.now(), t0());

    // Ten days on, www is due and dispatched by itself; a manual request after that
    // finds it in flight.
    let j = job(s.next().await);
    assert_eq!(
        (j.cert.as_str(), j.reason),
        ("www", RenewalReason::Expiring)
    );
    assert_eq!(
        renew_now(&s, &["www"], false, None).await.in_flight,
        vec![name("www")]
    );
}

#[tokio::test(start_paused = true)]
async fn reload_adds_changes_and_removes() {
    let w = World::new();
    w.due_in("old", TimeDelta::hours(1));
    w.due_in("kept", days(10));
    let mut s = w.run(vec![plan("old"), plan("kept")], 4);
    assert_eq!(s.status.borrow().certificates, 2);

    // New config: "old" gone, "new" added (nothing installed), "kept" renews 40 days
    // before expiry instead of at two thirds.
    let kept = plan("kept").renew_before(Duration::from_secs(40 * 86_400));
    s.send(SchedulerCommand::Reload {
        plans: vec![kept, plan("new")],
        inventory: Inventory::new(),
    })
    .await;
    let j = job(s.next().await);
    assert_eq!((j.cert.as_str(), j.reason), ("new", RenewalReason::Missing));
    assert_eq!(w.now(), t0());
    // "kept": it expires in 40 days, so renew_before = 40 days makes it due now.
    let j = job(s.next().await);
    assert_eq!(j.cert, name("kept"));
    assert_eq!(w.now(), t0());
    let st = s.status_until(|st| st.in_flight == 2).await;
    assert_eq!(st.certificates, 2);
    assert_eq!(st.count(CertStatus::Renewing), 2);
    // "old" (due in an hour) is never dispatched.
    assert!(s.next_within(Duration::from_secs(3 * 3600)).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn removing_an_in_flight_certificate_waits_for_its_work() {
    let w = World::new();
    let mut s = w.run(vec![plan("www")], 4);
    assert_eq!(job(s.next().await).cert, name("www"));
    s.send(SchedulerCommand::Reload {
        plans: vec![],
        inventory: Inventory::new(),
    })
    .await;
    s.status_until(|st| st.certificates == 0).await;
    // Put back while still in flight: not dispatched again.
    s.send(SchedulerCommand::Reload {
        plans: vec![plan("www")],
        inventory: Inventory::new(),
    })
    .await;
    s.status_until(|st| st.certificates == 1).await;
    assert!(s.next_within(Duration::from_secs(3600)).await.is_none());
    // Its work ends without a certificate: after the pause it is due again.
    s.done("www", true).await;
    assert_eq!(job(s.next().await).cert, name("www"));
}

#[tokio::test(start_paused = true)]
async fn rescan_finding_the_files_gone_makes_it_due() {
    let w = World::new();
    w.due_in("www", days(10));
    let mut s = w.run(vec![plan("www")], 4);
    assert!(s.next_within(Duration::from_secs(3600)).await.is_none());
    s.send(SchedulerCommand::Rescan(
        name("www"),
        InstalledState::Missing,
    ))
    .await;
    let j = job(s.next().await);
    assert_eq!(
        (j.reason, j.urgency),
        (RenewalReason::Missing, Urgency::Urgent)
    );
    assert_eq!(w.now(), t0() + TimeDelta::hours(1));
}
