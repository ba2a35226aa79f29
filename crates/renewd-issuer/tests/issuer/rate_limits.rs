//! A CA that rate-limits renewd gets nothing before its `Retry-After` — not an order, not a
//! probe — at any urgency, across restarts; afterwards it is the preferred CA again.

use chrono::TimeDelta;
use renewd_core::{FailureClass, OutcomeClass, Step, Urgency};
use renewd_issuer::{IssuerEvent, JobResult};
use renewd_testca::{Endpoint, Fault, FaultPlan, TestCa};

use crate::support::*;

fn total(counts: &renewd_testca::Counts) -> u64 {
    counts.requests.values().map(|c| c.total).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_goes_to_a_rate_limiting_ca_before_retry_after() {
    let a = TestCa::builder().fault_plan(FaultPlan::new().rule(
        Endpoint::NewOrder,
        Fault::rate_limited(std::time::Duration::from_secs(3600)).times(1),
    ));
    let lab = lab()
        .ca("a", a)
        .ca("b", TestCa::builder())
        .cert("c1", &["a", "b"])
        .cert("c2", &["a", "b"])
        .start()
        .await;
    let issuer = lab.issuer();
    let mut events = lab.events();

    // Normal urgency: the 429 fails the job (no failover) and blocks A for an hour.
    let result = renew(&issuer, "c1", Urgency::Normal).await;
    assert!(
        matches!(
            result,
            JobResult::Failed {
                class: FailureClass::RateLimited { .. },
                ..
            }
        ),
        "{result:?}"
    );
    let blocked = lab.health("a").blocked_until.unwrap();
    let hour = lab.now() + TimeDelta::hours(1);
    assert!(
        (blocked - hour).num_seconds().abs() <= 2,
        "{blocked} vs {hour}"
    );
    assert!(
        events_of(&mut events)
            .iter()
            .any(|e| matches!(e, IssuerEvent::CaBlocked { ca, .. } if ca.as_str() == "a"))
    );
    let refusal = lab
        .ledger("a")
        .into_iter()
        .find(|r| r.step == Step::NewOrder)
        .unwrap();
    assert_eq!(
        (refusal.class, refusal.http_status),
        (OutcomeClass::RateLimited, Some(429))
    );
    let a_before = total(&lab.counts("a"));

    // While blocked: every job goes to B, A hears nothing — also from a restarted issuer,
    // also at critical urgency, also when only A may be used.
    lab.clock.advance(TimeDelta::minutes(30));
    assert!(renew(&issuer, "c1", Urgency::Normal).await.is_renewed());
    assert_eq!(lab.issuer_of("c1").as_deref(), Some("b"));
    let restarted = lab.issuer();
    assert!(
        renew(&restarted, "c2", Urgency::Critical)
            .await
            .is_renewed()
    );
    assert_eq!(lab.issuer_of("c2").as_deref(), Some("b"));
    let mut only_a = job("c2", Urgency::Critical);
    only_a.only_ca = Some(ca_name("a"));
    let result = run(&restarted, vec![only_a]).await.remove(0);
    // That job could use no CA before the block ends: it waits until then, which is no
    // failure of the certificate.
    assert!(
        matches!(result, JobResult::Deferred { until, .. } if until == blocked),
        "{result:?}"
    );
    let next = lab.state("c2").next_attempt.unwrap();
    assert!(next >= blocked, "{next} < {blocked}");
    assert_eq!(lab.state("c2").failure_streak, 0);
    assert_eq!(
        total(&lab.counts("a")),
        a_before,
        "not a single request to A"
    );

    // After Retry-After, A is the preferred CA again.
    lab.clock.advance(TimeDelta::minutes(31));
    assert!(renew(&restarted, "c1", Urgency::Normal).await.is_renewed());
    assert_eq!(lab.issuer_of("c1").as_deref(), Some("a"));
    assert!(total(&lab.counts("a")) > a_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgent_job_fails_over_from_a_rate_limit() {
    let a = TestCa::builder().fault_plan(FaultPlan::new().rule(
        Endpoint::NewOrder,
        Fault::rate_limited(std::time::Duration::from_secs(600)),
    ));
    let lab = lab()
        .ca("a", a)
        .ca("b", TestCa::builder())
        .cert("www", &["a", "b"])
        .start()
        .await;
    let result = renew(&lab.issuer(), "www", Urgency::Urgent).await;
    assert!(result.is_renewed(), "{result:?}");
    assert_eq!(lab.issuer_of("www").as_deref(), Some("b"));
    assert!(lab.health("a").blocked_until.is_some());
    assert_eq!(
        lab.health("a").consecutive_failures,
        0,
        "a rate limit is not ill health"
    );
}
