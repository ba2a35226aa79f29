//! `renewd ledger` after a real issuance: by default only the ACME request steps the
//! contract lists; the rows of renewd's local steps (install, deploy hook) stay in the
//! store and show with `--all-steps`.

use renewd_testca::TestCa;
use serde_json::Value;

use crate::harness::Scene;
use crate::lab::{Ca, Lab, is_contract_step, script, text};

fn steps(rows: &[Value]) -> Vec<&str> {
    rows.iter().map(|r| text(&r["step"])).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_shows_the_contract_steps_and_all_steps_adds_the_local_ones() {
    let ca = Ca::testca("a", TestCa::builder(), "").await;
    let lab = Lab::new(Scene::new(), vec![ca]);
    let hook = script(lab.scene.dir.path(), "deploy", "true");
    lab.write_config(
        "",
        "",
        &[(
            "www",
            &["a"],
            &format!("deploy_hook = [\"{}\"]", hook.display()),
        )],
    );
    let out = lab.cli(&["renew"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let all = lab.ledger(&["--all-steps"]);
    let install = all
        .iter()
        .find(|r| r["step"] == "install")
        .unwrap_or_else(|| panic!("no install row: {:?}", steps(&all)));
    assert_eq!(install["class"], "ok");
    assert_eq!(install["cert"], "www");
    let download = all.iter().find(|r| r["step"] == "download").unwrap();
    assert_eq!(install["order_url"], download["order_url"]);
    assert!(
        all.iter()
            .any(|r| r["step"] == "deploy_hook" && r["class"] == "ok"),
        "{:?}",
        steps(&all)
    );

    let default = lab.ledger(&[]);
    assert!(
        steps(&default).iter().all(|s| is_contract_step(s)),
        "{:?}",
        steps(&default)
    );
    let requests: Vec<&Value> = all
        .iter()
        .filter(|r| is_contract_step(text(&r["step"])))
        .collect();
    assert_eq!(
        default.iter().collect::<Vec<_>>(),
        requests,
        "every request row, in the same order"
    );
    assert!(steps(&default).contains(&"finalize"));

    // The limit counts the rows shown: the newest request row, not the install after it.
    let out = lab.cli(&["ledger", "--json", "--limit", "1"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let newest: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0], *requests[0]);

    // The table follows the same rule.
    let table = |args: &[&str]| {
        let mut full = vec!["ledger", "--limit", "0"];
        full.extend_from_slice(args);
        let out = lab.cli(&full);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let shown = table(&[]);
    assert_eq!(shown.lines().count(), default.len() + 1, "{shown}");
    assert!(!shown.contains(" install "), "{shown}");
    let every = table(&["--all-steps"]);
    assert_eq!(every.lines().count(), all.len() + 1, "{every}");
    assert!(every.contains(" install "), "{every}");
    assert!(every.contains(" deploy_hook "), "{every}");
}
