//! Wake-ups: the liveness tick, the cost of an idle day, a saturated pool, clock jumps.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use renewd_core::{Clock, ManualClock};
use renewd_scheduler::{Inventory, Scheduler, SchedulerCommand, WALL_CLOCK_RECHECK};
use renewd_store::StateStore;
use tokio::time::Instant;

use crate::support::*;

#[tokio::test(start_paused = true)]
async fn liveness_ticks_at_the_interval_while_idle() {
    let w = World::new();
    w.due_in("www", days(30));
    let scheduler = w
        .scheduler(vec![plan("www")], Inventory::new())
        .with_liveness_interval(Duration::from_secs(10));
    let mut s = w.start(scheduler, 4);
    let start = Instant::now();
    let mut ticks = Vec::new();
    while Instant::now() - start < Duration::from_secs(120) {
        s.liveness.changed().await.unwrap();
        ticks.push(Instant::now());
    }
    let gaps: Vec<Duration> = ticks.windows(2).map(|p| p[1] - p[0]).collect();
    assert!(
        gaps.iter().all(|g| *g <= Duration::from_secs(10)),
        "{gaps:?}"
    );
    // And not much more often than that: about one tick per interval.
    assert!((11..=14).contains(&ticks.len()), "{} ticks", ticks.len());
}

#[tokio::test(start_paused = true)]
async fn an_idle_day_with_a_thousand_certificates_costs_few_wakeups() {
    let w = World::new();
    let mut plans = Vec::new();
    for i in 0..1000 {
        let cert = format!("site{i}");
        // Due between 2 and 40 days from now.
        w.due_in(&cert, days(2) + TimeDelta::minutes(i * 55));
        plans.push(plan(&cert));
    }
    let mut s = w.run(plans, 8);
    let before = *s.liveness.borrow_and_update();
    assert!(s.next_within(Duration::from_secs(86_400)).await.is_none());
    let iterations = *s.liveness.borrow() - before;
    println!("idle day, 1,000 valid certificates: {iterations} loop iterations");
    // One per wall-clock re-check (every 15 minutes), nothing else.
    let rechecks = 86_400 / WALL_CLOCK_RECHECK.as_secs();
    assert!(iterations <= rechecks + 2, "{iterations} iterations");
    assert!(iterations < 24 * 60);
    assert_eq!(s.status.borrow().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn a_saturated_pool_does_not_stop_ticks_or_commands() {
    let w = World::new();
    let plans: Vec<_> = (0..10).map(|i| plan(&format!("c{i}"))).collect();
    let scheduler = w
        .scheduler(plans, Inventory::new())
        .with_liveness_interval(Duration::from_secs(5));
    let mut s = w.start(scheduler, 2);
    // Nobody takes work: two fit in the channel, eight wait.
    let st = s.status_until(|st| st.in_flight == 2).await;
    assert_eq!(st.queued, 8);
    let start = *s.liveness.borrow_and_update();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let ticks = *s.liveness.borrow() - start;
    // One every 5 seconds (the last may land just after the test's own wake-up).
    assert!(ticks >= 11, "{ticks} ticks in a saturated minute");
    // Commands are still served.
    let (tx, rx) = tokio::sync::oneshot::channel();
    s.send(SchedulerCommand::RenewNow {
        certs: vec![name("c9")],
        force: false,
        only_ca: None,
        reply: tx,
    })
    .await;
    let reply = rx.await.unwrap();
    assert_eq!(reply.queued.len() + reply.in_flight.len(), 1);
    // Taking one frees a slot that is filled at once, in order.
    let mut seen = vec![what(&s.next().await).0];
    s.status_until(|st| st.in_flight == 3).await;
    seen.push(what(&s.next().await).0);
    seen.push(what(&s.next().await).0);
    // The two that filled the channel first, then the manual request ahead of the rest.
    assert_eq!(seen, ["c0", "c1", "c9"]);
    assert_eq!(w.now(), t0() + TimeDelta::seconds(60));
}

#[tokio::test(start_paused = true)]
async fn a_wall_clock_jump_is_noticed_within_the_recheck() {
    let w = World::new();
    let clock = ManualClock::new(t0());
    w.due_in("www", days(1));
    let scheduler = Scheduler::load(
        Arc::clone(&w.store) as Arc<dyn StateStore>,
        Arc::new(clock.clone()),
        w.policy,
        vec![plan("www")],
        Inventory::new(),
    );
    let mut s = w.start(scheduler, 4);
    // The loop sleeps towards a deadline a day away; the wall clock jumps a day ahead
    // (a resume from suspend) without tokio's clock moving.
    s.liveness.changed().await.unwrap();
    clock.advance(TimeDelta::days(1) + TimeDelta::seconds(1));
    let start = Instant::now();
    job(s.next().await);
    let waited = Instant::now() - start;
    assert!(waited <= WALL_CLOCK_RECHECK, "noticed after {waited:?}");
    assert!(clock.now() > t0() + days(1));
}
