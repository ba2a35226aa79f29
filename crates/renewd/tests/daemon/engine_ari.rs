//! ARI (RFC 9773) through the daemon: a renewal window the CA moved into the past renews
//! now; one in the future sets the next attempt inside it and renews nothing yet.

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use renewd_testca::{AriOverride, AriTarget, SuggestedWindow, TestCa};

use crate::harness::Scene;
use crate::lab::{Ca, FLOW, Lab, serial_form, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_in_the_past_renews_now_and_one_in_the_future_waits_for_it() {
    let ca = Ca::testca("a", TestCa::builder(), "").await;
    let mut lab = Lab::new(Scene::new(), vec![ca]);
    let certs: &[(&str, &[&str], &str)] = &[("past", &["a"], ""), ("future", &["a"], "")];
    // First without ARI: the certificates are issued and no window is asked for.
    lab.write_config("", "[renewal]\nari = false\n", certs);
    lab.start(&[]);
    let first = lab.wait_all_valid(FLOW);
    lab.stop();
    let serial = |rows: &[serde_json::Value], name: &str| {
        text(&rows.iter().find(|r| r["name"] == name).unwrap()["serial"]).to_string()
    };
    let (past, future) = (serial(&first, "past"), serial(&first, "future"));
    assert_eq!(
        lab.ca("a").counts().orders_replacing,
        0,
        "first issuances replace nothing"
    );

    // Whole seconds, as the CA states the window and `status` prints times.
    let now = Utc::now().trunc_subsecs(0);
    let ari = lab.ca("a");
    ari.set_ari_window(AriOverride::new(
        AriTarget::Serial(past.clone()),
        SuggestedWindow::new(now - TimeDelta::hours(3), now - TimeDelta::hours(1)),
    ));
    let (start, end) = (now + TimeDelta::days(2), now + TimeDelta::days(3));
    ari.set_ari_window(AriOverride::new(
        AriTarget::Serial(future.clone()),
        SuggestedWindow::new(start, end),
    ));

    // With ARI on, the restarted daemon asks the CA at once.
    lab.write_config("", "", certs);
    lab.start(&[]);
    lab.wait_for("the past window's certificate renewed", FLOW, || {
        let row = lab.status_of("past");
        (row["state"] == "valid" && text(&row["serial"]) != past).then_some(())
    });
    lab.wait_for("the future window read", FLOW, || {
        lab.ledger(&["--cert", "future"])
            .iter()
            .any(|r| r["step"] == "renewal_info" && r["class"] == "ok")
            .then_some(())
    });
    let row = lab.status_of("future");
    assert_eq!(row["state"], "valid", "{row}");
    assert_eq!(text(&row["serial"]), future, "not renewed yet");
    let next: DateTime<Utc> = text(&row["next_attempt"]).parse().unwrap();
    assert!(
        next >= start && next < end,
        "{next} not in [{start}, {end})"
    );
    assert_eq!(
        lab.ca("a").counts().certificates_issued,
        3,
        "the two first ones and the past window's renewal"
    );
    let replaced = lab
        .ledger(&["--cert", "past"])
        .into_iter()
        .filter(|r| r["step"] == "new_order")
        .count();
    assert_eq!(replaced, 2);
    // The renewal named the certificate it replaces (same CA, same account): RFC 9773 §5.
    assert_eq!(lab.ca("a").counts().orders_replacing, 1);
    let named: Vec<String> = lab
        .ca("a")
        .certificates()
        .into_iter()
        .filter(|c| c.replaced_by.is_some())
        .map(|c| serial_form(&c.serial))
        .collect();
    assert_eq!(named, [past]);
    lab.stop();
}
