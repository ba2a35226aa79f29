//! The due-time table and the urgency thresholds.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use renewd_core::{CaName, CertName, RenewalReason, Urgency};
use renewd_store::{CaHealth, CertState, CircuitState, InstalledCert, InstalledState};

use super::*;
use crate::circuits::Circuits;
use crate::policy::{CertPlan, SchedulePolicy};
use crate::view::{CertView, Hold, HoldReason};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn days(n: i64) -> TimeDelta {
    TimeDelta::days(n)
}

fn ca(s: &str) -> CaName {
    s.parse().unwrap()
}

fn plan(name: &str) -> CertPlan {
    CertPlan::new(
        name.parse().unwrap(),
        vec![ca("zerossl"), ca("letsencrypt")],
    )
}

/// A certificate issued at t0 for `lifetime`, recorded in the store.
fn state(name: &str, lifetime: TimeDelta) -> CertState {
    let mut s = CertState::new(name.parse::<CertName>().unwrap());
    s.installed = Some(InstalledCert {
        serial: "4a3f01".to_string(),
        not_before: t0(),
        not_after: t0() + lifetime,
        issuer_ca: Some(ca("zerossl")),
        account_url: None,
        ari_cert_id: None,
    });
    s
}

fn view(s: &CertState) -> CertView {
    CertView::new(s, None)
}

fn at(p: &CertPlan, v: &CertView, now: DateTime<Utc>) -> Decision {
    decide(p, v, &Circuits::default(), &SchedulePolicy::default(), now)
}

fn open(ca_name: &str, until: DateTime<Utc>) -> CaHealth {
    let mut h = CaHealth::new(ca(ca_name));
    h.circuit = CircuitState::Open;
    h.open_until = Some(until);
    h
}

#[test]
fn ninety_day_certificate_is_due_at_sixty_days() {
    let d = at(&plan("www"), &view(&state("www", days(90))), t0());
    assert_eq!(d.renewal.due, t0() + days(60));
    assert_eq!(d.renewal.at, d.renewal.due);
    assert_eq!(d.renewal.reason, RenewalReason::Expiring);
    assert_eq!(d.renewal.basis, Basis::LifetimeLeft(1, 3));
    assert_eq!(d.renewal.urgency, Urgency::Normal);
    assert!(d.renewal.bound.is_none());
}

#[test]
fn short_lifetimes_renew_at_half() {
    let six = at(&plan("www"), &view(&state("www", days(6))), t0());
    assert_eq!(six.renewal.due, t0() + days(3));
    assert_eq!(six.renewal.basis, Basis::LifetimeLeft(1, 2));
    let ten = at(&plan("www"), &view(&state("www", days(10))), t0());
    assert_eq!(ten.renewal.due, t0() + days(5));
    let eleven = at(&plan("www"), &view(&state("www", days(11))), t0());
    assert_eq!(
        eleven.renewal.due,
        t0() + days(11) - TimeDelta::milliseconds(days(11).num_milliseconds() / 3)
    );
}

#[test]
fn ari_window_in_the_future_gives_a_stable_point_inside_it() {
    let mut s = state("www", days(90));
    let (start, end) = (t0() + days(50), t0() + days(52));
    s.ari.window_start = Some(start);
    s.ari.window_end = Some(end);
    let first = at(&plan("www"), &view(&s), t0());
    assert!(
        first.renewal.due >= start && first.renewal.due < end,
        "{first:?}"
    );
    assert_eq!(first.renewal.reason, RenewalReason::AriWindow);
    assert_eq!(first.renewal.basis, Basis::AriWindow { start, end });
    // Another computation, later, from a fresh view (as after a restart): the same point.
    let again = at(&plan("www"), &view(&s.clone()), t0() + days(3));
    assert_eq!(again.renewal.due, first.renewal.due);
    // Other certificates land elsewhere in the window.
    let points: std::collections::HashSet<_> = (0..50)
        .map(|i| {
            let name = format!("site{i}");
            let mut s = s.clone();
            s.cert = name.parse().unwrap();
            at(&plan(&name), &view(&s), t0()).renewal.due
        })
        .collect();
    assert!(points.len() > 45, "{} distinct points", points.len());
    assert!(points.iter().all(|p| *p >= start && *p < end));
    // A new serial (a renewed certificate) draws a new point.
    let mut renewed = s.clone();
    renewed.installed.as_mut().unwrap().serial = "77".to_string();
    assert_ne!(
        at(&plan("www"), &view(&renewed), t0()).renewal.due,
        first.renewal.due
    );
}

#[test]
fn ari_unit_is_uniform_enough() {
    let (start, end) = (t0(), t0() + days(1));
    let mut buckets = [0u32; 10];
    for i in 0..10_000 {
        let u = ari_unit(&format!("c{i}"), "1", start, end);
        assert!((0.0..1.0).contains(&u));
        buckets[(u * 10.0) as usize] += 1;
    }
    assert!(
        buckets.iter().all(|&b| (850..1150).contains(&b)),
        "{buckets:?}"
    );
}

#[test]
fn ari_window_in_the_past_means_now() {
    let mut s = state("www", days(90));
    s.ari.window_start = Some(t0() + days(1));
    s.ari.window_end = Some(t0() + days(2));
    let now = t0() + days(3);
    let d = at(&plan("www"), &view(&s), now);
    assert_eq!(d.renewal.due, now);
    assert_eq!(d.renewal.reason, RenewalReason::AriWindow);
}

#[test]
fn an_ari_window_reaching_past_the_critical_threshold_is_cut_there() {
    // A 90-day certificate turns critical with 7 % of its lifetime left (day 83.7). A
    // window ending after expiry must not place the renewal there.
    let p = plan("www");
    let policy = SchedulePolicy::default();
    let mut s = state("www", days(90));
    let critical = critical_from(&view(&s).installed.unwrap(), &policy);
    for (start, end) in [
        (days(85), days(120)),
        (days(89), days(95)),
        (days(84), days(89)),
    ] {
        s.ari.window_start = Some(t0() + start);
        s.ari.window_end = Some(t0() + end);
        let d = at(&p, &view(&s), t0());
        assert_eq!(d.renewal.due, critical, "{start} .. {end}");
        assert!(d.renewal.due < t0() + days(90));
        assert!(matches!(d.renewal.basis, Basis::AriWindow { .. }));
        assert_eq!(d.renewal.urgency, Urgency::Critical);
    }
    // A window before the threshold is taken as it is.
    s.ari.window_start = Some(t0() + days(50));
    s.ari.window_end = Some(t0() + days(52));
    let due = at(&p, &view(&s), t0()).renewal.due;
    assert!(due >= t0() + days(50) && due < t0() + days(52), "{due}");
}

#[test]
fn degenerate_ari_window_is_ignored() {
    let mut s = state("www", days(90));
    s.ari.window_start = Some(t0() + days(10));
    s.ari.window_end = Some(t0() + days(10));
    let d = at(&plan("www"), &view(&s), t0());
    assert_eq!(d.renewal.due, t0() + days(60));
    assert_eq!(d.renewal.basis, Basis::LifetimeLeft(1, 3));
    s.ari.window_end = Some(t0() + days(9));
    assert_eq!(
        at(&plan("www"), &view(&s), t0()).renewal.due,
        t0() + days(60)
    );
}

#[test]
fn ari_off_ignores_the_window_and_plans_no_checks() {
    let mut s = state("www", days(90));
    s.ari.window_start = Some(t0() + days(1));
    s.ari.window_end = Some(t0() + days(2));
    let policy = SchedulePolicy {
        ari: false,
        ..SchedulePolicy::default()
    };
    let d = decide(&plan("www"), &view(&s), &Circuits::default(), &policy, t0());
    assert_eq!(d.renewal.due, t0() + days(60));
    assert_eq!(d.ari_check, None);
}

#[test]
fn renew_before_overrides_ari_and_lifetime() {
    let mut s = state("www", days(90));
    s.ari.window_start = Some(t0() + days(50));
    s.ari.window_end = Some(t0() + days(52));
    let p = plan("www").renew_before(Duration::from_secs(10 * 86_400));
    let d = at(&p, &view(&s), t0());
    assert_eq!(d.renewal.due, t0() + days(80));
    assert_eq!(d.renewal.reason, RenewalReason::Expiring);
    assert!(matches!(
        d.renewal.basis,
        Basis::RenewBefore { clamped: false, .. }
    ));
    // Longer than the lifetime: clamped so a new certificate is not due at once.
    let six = state("www", days(6));
    let d = at(&p, &view(&six), t0());
    assert_eq!(
        d.renewal.due,
        t0() + TimeDelta::milliseconds((days(6).num_milliseconds() as f64 * 0.1) as i64)
    );
    assert!(matches!(
        d.renewal.basis,
        Basis::RenewBefore { clamped: true, .. }
    ));
}

#[test]
fn missing_corrupt_mismatch_are_due_now() {
    let now = t0() + days(5);
    let empty = CertState::new("www".parse().unwrap());
    let d = at(&plan("www"), &view(&empty), now);
    assert_eq!(
        (d.renewal.due, d.renewal.reason),
        (now, RenewalReason::Missing)
    );
    assert_eq!(d.renewal.urgency, Urgency::Urgent);
    assert_eq!(d.ari_check, None);

    let s = state("www", days(90));
    let missing = CertView::new(&s, Some(&InstalledState::Missing));
    let d = at(&plan("www"), &missing, now);
    assert_eq!(
        (d.renewal.due, d.renewal.reason),
        (now, RenewalReason::Missing)
    );

    let corrupt = CertView::new(
        &s,
        Some(&InstalledState::Corrupt {
            file: "cert.pem",
            reason: "does not parse".into(),
        }),
    );
    let d = at(&plan("www"), &corrupt, now);
    assert_eq!(
        (d.renewal.due, d.renewal.reason),
        (now, RenewalReason::Corrupt)
    );
    assert_eq!(d.renewal.urgency, Urgency::Urgent);
    assert_eq!(d.ari_check, None);

    let unreadable = CertView::new(
        &s,
        Some(&InstalledState::Unreadable {
            file: "privkey.pem",
            kind: std::io::ErrorKind::PermissionDenied,
        }),
    );
    assert_eq!(
        at(&plan("www"), &unreadable, now).renewal.reason,
        RenewalReason::Corrupt
    );

    // A mismatched certificate (facts known) keeps its dates: past expiry it is critical.
    let mut mismatched = view(&s);
    mismatched.problem = Some(RenewalReason::Mismatch);
    let d = at(&plan("www"), &mismatched, now);
    assert_eq!(
        (d.renewal.due, d.renewal.reason),
        (now, RenewalReason::Mismatch)
    );
    assert_eq!(d.renewal.urgency, Urgency::Urgent);
    let d = at(&plan("www"), &mismatched, t0() + days(91));
    assert_eq!(d.renewal.urgency, Urgency::Critical);
}

#[test]
fn pending_order_is_due_now_and_resumed() {
    let mut v = view(&state("www", days(90)));
    v.pending = true;
    let now = t0() + days(1);
    let d = at(&plan("www"), &v, now);
    assert_eq!(d.renewal.due, now);
    assert_eq!(d.renewal.reason, RenewalReason::ResumePending);
    assert_eq!(d.renewal.basis, Basis::PendingOrder);
    assert_eq!(d.ari_check, None);
    // A finalize that failed keeps the order and backs off: the back-off still holds.
    v.next_attempt = Some(now + TimeDelta::minutes(10));
    v.failure_streak = 2;
    let d = at(&plan("www"), &v, now);
    assert_eq!(d.renewal.at, now + TimeDelta::minutes(10));
    assert_eq!(d.renewal.reason, RenewalReason::ResumePending);
}

#[test]
fn next_attempt_is_a_lower_bound() {
    let mut v = view(&state("www", days(90)));
    let due = t0() + days(60);
    v.next_attempt = Some(due + TimeDelta::minutes(100));
    v.failure_streak = 3;
    let d = at(&plan("www"), &v, due);
    assert_eq!(d.renewal.due, due);
    assert_eq!(d.renewal.at, due + TimeDelta::minutes(100));
    assert_eq!(
        d.renewal.bound,
        Some(Bound::Backoff {
            until: due + TimeDelta::minutes(100),
            failures: 3
        })
    );
    // An earlier next_attempt does not move anything.
    v.next_attempt = Some(t0());
    assert_eq!(at(&plan("www"), &v, due).renewal.at, due);
    // Neither does the scheduler's own expired hold; a running one does.
    v.hold = Some(Hold {
        until: due + TimeDelta::minutes(1),
        reason: HoldReason::NoBackoffRecorded,
    });
    assert_eq!(
        at(&plan("www"), &v, due).renewal.at,
        due + TimeDelta::minutes(1)
    );
}

#[test]
fn all_circuits_open_waits_for_the_earliest_unless_critical() {
    let v = view(&state("www", days(90)));
    let due = t0() + days(60);
    let now = due;
    let policy = SchedulePolicy::default();
    let both = Circuits::from_health(&[
        open("zerossl", now + TimeDelta::minutes(30)),
        open("letsencrypt", now + TimeDelta::minutes(20)),
    ]);
    let d = decide(&plan("www"), &v, &both, &policy, now);
    assert_eq!(d.renewal.at, now + TimeDelta::minutes(20));
    assert!(matches!(
        &d.renewal.bound,
        Some(Bound::Circuits { ca: c, critical_at: None, .. }) if c.as_str() == "letsencrypt"
    ));
    assert!(
        d.explain(now).contains("waiting for letsencrypt's circuit"),
        "{}",
        d.explain(now)
    );

    // One usable CA: no wait.
    let one = Circuits::from_health(&[open("zerossl", now + TimeDelta::minutes(30))]);
    assert_eq!(decide(&plan("www"), &v, &one, &policy, now).renewal.at, now);
    // Half-open or a cool-down already over: no wait.
    let mut half = open("letsencrypt", now + TimeDelta::minutes(30));
    half.circuit = CircuitState::HalfOpen;
    let mixed = Circuits::from_health(&[open("zerossl", now - TimeDelta::minutes(1)), half]);
    assert_eq!(
        decide(&plan("www"), &v, &mixed, &policy, now).renewal.at,
        now
    );

    // Critical never waits for circuits.
    let late = t0() + days(88);
    let long = Circuits::from_health(&[
        open("zerossl", late + days(1)),
        open("letsencrypt", late + days(1)),
    ]);
    let d = decide(&plan("www"), &v, &long, &policy, late);
    assert_eq!(d.renewal.urgency, Urgency::Critical);
    assert_eq!(d.renewal.at, d.renewal.due);
    // Waiting stops when the certificate turns critical before the circuits close.
    let urgent_now = t0() + days(80);
    let long = Circuits::from_health(&[
        open("zerossl", urgent_now + days(5)),
        open("letsencrypt", urgent_now + days(5)),
    ]);
    let d = decide(&plan("www"), &v, &long, &policy, urgent_now);
    let critical = critical_from(v.installed.as_ref().unwrap(), &policy);
    assert_eq!(d.renewal.at, critical);
    assert_eq!(d.renewal.urgency, Urgency::Critical);
    assert!(matches!(
        d.renewal.bound,
        Some(Bound::Circuits {
            critical_at: Some(_),
            ..
        })
    ));
}

#[test]
fn urgency_rises_as_the_clock_advances() {
    let policy = SchedulePolicy::default();
    let v = view(&state("www", days(100)));
    let installed = v.installed.as_ref();
    let at = |d: f64| t0() + TimeDelta::milliseconds((d * 86_400_000.0) as i64);
    let u = |d: f64| urgency(installed, None, &policy, at(d));
    // 100-day lifetime: urgent below 16 days left, critical below 7, critical once expired.
    assert_eq!(u(0.0), Urgency::Normal);
    assert_eq!(u(84.0), Urgency::Normal);
    assert_eq!(u(84.01), Urgency::Urgent);
    assert_eq!(u(93.0), Urgency::Urgent);
    assert_eq!(u(93.01), Urgency::Critical);
    assert_eq!(u(100.0), Urgency::Critical);
    assert_eq!(u(150.0), Urgency::Critical);
    let critical = critical_from(installed.unwrap(), &policy);
    assert_eq!(critical, at(93.0) + TimeDelta::milliseconds(1));
    assert_eq!(
        urgency(installed, None, &policy, critical),
        Urgency::Critical
    );
    assert_eq!(
        urgency(
            installed,
            None,
            &policy,
            critical - TimeDelta::milliseconds(1)
        ),
        Urgency::Urgent
    );
    // Missing: urgent, whatever the time.
    assert_eq!(
        urgency(None, Some(RenewalReason::Missing), &policy, at(0.0)),
        Urgency::Urgent
    );
    // The decision's urgency follows the clock.
    let p = plan("www");
    let seq: Vec<Urgency> = [10.0, 85.0, 95.0, 101.0]
        .iter()
        .map(|d| {
            decide(&p, &v, &Circuits::default(), &policy, at(*d))
                .renewal
                .urgency
        })
        .collect();
    assert_eq!(
        seq,
        [
            Urgency::Normal,
            Urgency::Urgent,
            Urgency::Critical,
            Urgency::Critical
        ]
    );
}

#[test]
fn ari_checks_follow_next_check_while_the_certificate_is_sound() {
    let p = plan("www");
    let mut s = state("www", days(90));
    // Never checked: now.
    let d = at(&p, &view(&s), t0() + days(1));
    assert_eq!(d.ari_check, Some(t0() + days(1)));
    assert_eq!(d.next(), (t0() + days(1), NextWork::AriCheck));
    // Checked: at next_check, and the floor applies.
    s.ari.next_check = Some(t0() + days(2));
    let mut v = view(&s);
    assert_eq!(at(&p, &v, t0() + days(1)).ari_check, Some(t0() + days(2)));
    v.ari_floor = Some(t0() + days(3));
    assert_eq!(at(&p, &v, t0() + days(1)).ari_check, Some(t0() + days(3)));
    // Renewal due: no check (the certificate is about to be replaced); the renewal wins.
    let d = at(&p, &view(&s), t0() + days(61));
    assert_eq!(d.ari_check, None);
    assert_eq!(d.next().1, NextWork::Renew);
    // A check later than the renewal is not what comes next.
    s.ari.next_check = Some(t0() + days(70));
    assert_eq!(
        at(&p, &view(&s), t0() + days(1)).next(),
        (t0() + days(60), NextWork::Renew)
    );
    // ARI data about another certificate than the one on disk is ignored.
    let other = CertState {
        installed: None,
        ..s.clone()
    };
    assert_eq!(view(&other).ari, crate::view::AriView::default());
}

#[test]
fn explanations_read_well() {
    let p = plan("www");
    let mut v = view(&state("www", days(90)));
    let now = t0();
    assert_eq!(
        at(&p, &v, now + days(2)).renewal.basis,
        Basis::LifetimeLeft(1, 3)
    );
    v.ari.next_check = Some(now + days(100));
    assert_eq!(
        at(&p, &v, now).explain(now),
        "due at 2025-03-02 00:00 UTC (1/3 of lifetime left)"
    );
    v.next_attempt = Some(now + days(60) + TimeDelta::minutes(100));
    v.failure_streak = 3;
    assert_eq!(
        at(&p, &v, now + days(60)).explain(now + days(60)),
        "backing off after 3 failures until 2025-03-02 01:40 UTC; due now (1/3 of lifetime left)"
    );
    v.pending = true;
    v.next_attempt = None;
    assert_eq!(
        at(&p, &v, now).explain(now),
        "due now (a pending order to resume)"
    );
    let d = at(&p, &view(&CertState::new("www".parse().unwrap())), now);
    assert_eq!(
        d.explain(now),
        "due now (no certificate installed) [urgent]"
    );
    let d = at(&p, &view(&state("www", days(90))), now);
    assert!(
        d.explain(now)
            .starts_with("ARI check due now; renewal at 2025-03-02 00:00 UTC")
    );
}
