//! `renewd status`, `ledger` and `ca` on a real state store: populated through
//! `renewd-store`'s API in a temp directory, read by the real binary, checked against
//! CONTRACT.md's JSON shapes key by key.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use renewd_core::{CaName, CertName, OutcomeClass, RequestOutcome, Step};
use renewd_store::{
    CaHealth, CertState, CertStore, CircuitState, Expectations, InstalledCert, LastError,
    SqliteOptions, SqliteStore, StateStore,
};
use serde_json::Value;

use crate::harness::{Scene, require_root, run};
use crate::lab::is_contract_step;
use crate::pki;

const STATUS_KEYS: [&str; 8] = [
    "name",
    "domains",
    "state",
    "not_after",
    "serial",
    "issuer_ca",
    "next_attempt",
    "last_error",
];
const LEDGER_KEYS: [&str; 9] = [
    "time",
    "ca",
    "cert",
    "step",
    "http_status",
    "problem_type",
    "class",
    "latency_ms",
    "order_url",
];
/// The contract's keys, and `blocked_until`.
const CA_KEYS: [&str; 8] = [
    "name",
    "circuit",
    "consecutive_failures",
    "open_until",
    "last_probe",
    "last_probe_ok",
    "last_probe_latency_ms",
    "blocked_until",
];
const CLASSES: [&str; 6] = [
    "ok",
    "ca_unavailable",
    "rate_limited",
    "bad_nonce",
    "rejected",
    "local",
];

fn ca(n: &str) -> CaName {
    CaName::new(n).unwrap()
}

fn cert(n: &str) -> CertName {
    CertName::new(n).unwrap()
}

/// A config with two CAs and three certificates: `www` (installed, valid), `old`
/// (installed, past its due time) and `api` (never installed, failing).
fn scene() -> Scene {
    let scene = Scene::new();
    scene.write_raw_config(&format!(
        "state_dir = \"{}\"\n\
         [[ca]]\nname = \"zerossl\"\ndirectory = \"https://127.0.0.1:14000/dir\"\n\
         [[ca]]\nname = \"letsencrypt\"\ndirectory = \"https://127.0.0.1:14001/dir\"\n\
         [http01]\nlisten = [\"127.0.0.1:5002\"]\n\
         [[cert]]\nname = \"www\"\ndomains = [\"www.example.test\", \"example.test\"]\ncas = [\"zerossl\", \"letsencrypt\"]\n\
         [[cert]]\nname = \"old\"\ndomains = [\"old.example.test\"]\ncas = [\"letsencrypt\"]\n\
         [[cert]]\nname = \"api\"\ndomains = [\"api.example.test\"]\ncas = [\"zerossl\", \"letsencrypt\"]\n",
        scene.path("state").display()
    ));
    scene
}

fn open_store(scene: &Scene) -> SqliteStore {
    SqliteStore::open_in(&scene.path("state"), SqliteOptions::default()).unwrap()
}

/// Installs a fresh self-signed certificate for `name` valid from `from` to `until`.
fn install(
    scene: &Scene,
    name: &str,
    domains: &[&str],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    serial: u64,
) {
    let issued = pki::leaf(domains, from, until, serial);
    let expect = Expectations {
        domains: &[],
        key_type: None,
        now: Utc::now(),
        skew: Duration::ZERO,
    };
    CertStore::new(&scene.path("state"))
        .install(
            &cert(name),
            &issued.chain_pem,
            &issued.key_pem,
            &expect,
            None,
        )
        .unwrap();
}

fn outcome(
    time: DateTime<Utc>,
    ca_name: &str,
    cert_name: Option<&str>,
    step: Step,
    class: OutcomeClass,
) -> RequestOutcome {
    RequestOutcome {
        time,
        ca: ca(ca_name),
        account: Some(format!("https://{ca_name}.test/acct/1")),
        cert: cert_name.map(cert),
        step,
        http_status: Some(if class == OutcomeClass::Ok { 200 } else { 504 }),
        problem_type: (class == OutcomeClass::RateLimited)
            .then(|| "urn:ietf:params:acme:error:rateLimited".to_string()),
        class,
        latency: Duration::from_millis(1234),
        order_url: cert_name.map(|c| format!("https://{ca_name}.test/order/{c}")),
        detail: None,
    }
}

/// Fills the store: certificates, their states, CA health and ledger rows (including a CA
/// and a certificate no longer in the config).
fn populate(scene: &Scene) -> DateTime<Utc> {
    let now = Utc::now();
    let store = open_store(scene);
    install(
        scene,
        "www",
        &["www.example.test", "example.test"],
        now - TimeDelta::days(10),
        now + TimeDelta::days(80),
        0xABCDEF,
    );
    install(
        scene,
        "old",
        &["old.example.test"],
        now - TimeDelta::days(80),
        now + TimeDelta::days(10),
        0x0F00,
    );
    store
        .put_cert_state(&CertState {
            installed: Some(InstalledCert {
                serial: "abcdef".into(),
                not_before: now - TimeDelta::days(10),
                not_after: now + TimeDelta::days(80),
                issuer_ca: Some(ca("zerossl")),
                account_url: Some("https://zerossl.test/acct/1".into()),
                ari_cert_id: None,
            }),
            last_success: Some(now - TimeDelta::days(10)),
            ..CertState::new(cert("www"))
        })
        .unwrap();
    store
        .put_cert_state(&CertState {
            failure_streak: 3,
            next_attempt: Some(now + TimeDelta::minutes(10)),
            failing_since: Some(now - TimeDelta::hours(1)),
            last_error: Some(LastError {
                class: OutcomeClass::CaUnavailable,
                message: "finalize: 504 Gateway Time-out".into(),
                at: now - TimeDelta::minutes(2),
            }),
            ..CertState::new(cert("api"))
        })
        .unwrap();
    store
        .put_ca_health(&CaHealth {
            circuit: CircuitState::Open,
            consecutive_failures: 4,
            open_until: Some(now + TimeDelta::minutes(5)),
            cooldown: Some(Duration::from_secs(300)),
            last_probe: Some(now - TimeDelta::minutes(1)),
            last_probe_ok: Some(false),
            last_probe_latency: Some(Duration::from_millis(5000)),
            ..CaHealth::new(ca("zerossl"))
        })
        .unwrap();
    for o in [
        outcome(
            now - TimeDelta::hours(30),
            "buypass",
            Some("retired"),
            Step::Finalize,
            OutcomeClass::Ok,
        ),
        outcome(
            now - TimeDelta::hours(3),
            "letsencrypt",
            None,
            Step::Probe,
            OutcomeClass::RateLimited,
        ),
        outcome(
            now - TimeDelta::minutes(30),
            "zerossl",
            Some("api"),
            Step::NewOrder,
            OutcomeClass::Ok,
        ),
        outcome(
            now - TimeDelta::minutes(2),
            "zerossl",
            Some("api"),
            Step::Finalize,
            OutcomeClass::CaUnavailable,
        ),
        outcome(
            now - TimeDelta::minutes(1),
            "zerossl",
            None,
            Step::Probe,
            OutcomeClass::CaUnavailable,
        ),
    ] {
        store.append_outcome(&o).unwrap();
    }
    now
}

fn cli(scene: &Scene, args: &[&str]) -> Output {
    let config = scene.config_path();
    let mut full = vec!["--config", config.to_str().unwrap()];
    full.extend_from_slice(args);
    run(&full)
}

/// Runs a `--json` command that must succeed and returns its array.
fn json(scene: &Scene, args: &[&str]) -> Vec<Value> {
    let out = cli(scene, args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    v.as_array()
        .unwrap_or_else(|| panic!("{args:?}: not an array: {v}"))
        .clone()
}

fn assert_keys(obj: &Value, keys: &[&str]) {
    let mut got: Vec<&str> = obj
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    got.sort_unstable();
    let mut want = keys.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "{obj}");
}

/// RFC 3339 in UTC, spelled with `Z`.
fn assert_time(v: &Value) -> DateTime<Utc> {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("not a time string: {v}"));
    assert!(s.ends_with('Z'), "{s} is not UTC with Z");
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

fn assert_time_or_null(v: &Value) {
    if !v.is_null() {
        assert_time(v);
    }
}

fn near(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    (a - b).num_seconds().abs() <= 1
}

#[test]
fn status_json_follows_the_contract() {
    let scene = scene();
    let now = populate(&scene);
    let rows = json(&scene, &["status", "--json"]);
    assert_eq!(rows.len(), 3);
    for r in &rows {
        assert_keys(r, &STATUS_KEYS);
        assert!(
            ["valid", "due", "renewing", "failing", "missing"]
                .contains(&r["state"].as_str().unwrap())
        );
        assert!(
            r["domains"]
                .as_array()
                .unwrap()
                .iter()
                .all(Value::is_string)
        );
        assert_time_or_null(&r["not_after"]);
        assert_time_or_null(&r["next_attempt"]);
        if let Some(serial) = r["serial"].as_str() {
            assert!(
                !serial.is_empty()
                    && serial
                        .chars()
                        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
                "{serial}"
            );
        }
    }
    let www = &rows[0];
    assert_eq!(www["name"], "www");
    assert_eq!(
        www["domains"],
        serde_json::json!(["www.example.test", "example.test"])
    );
    assert_eq!(www["state"], "valid");
    assert_eq!(www["serial"], "abcdef");
    assert_eq!(www["issuer_ca"], "zerossl");
    assert!(near(
        assert_time(&www["not_after"]),
        now + TimeDelta::days(80)
    ));
    // 90-day lifetime: due when 30 days are left.
    assert!(near(
        assert_time(&www["next_attempt"]),
        now + TimeDelta::days(50)
    ));
    assert_eq!(www["last_error"], Value::Null);

    let old = &rows[1];
    assert_eq!(
        (old["name"].as_str(), old["state"].as_str()),
        (Some("old"), Some("due"))
    );
    assert_eq!(old["serial"], "f00");
    assert_eq!(
        old["issuer_ca"],
        Value::Null,
        "nothing stored about who issued it"
    );

    let api = &rows[2];
    assert_eq!(
        (api["name"].as_str(), api["state"].as_str()),
        (Some("api"), Some("failing"))
    );
    assert_eq!(api["not_after"], Value::Null);
    assert_eq!(api["serial"], Value::Null);
    assert_eq!(api["last_error"], "finalize: 504 Gateway Time-out");
    assert!(near(
        assert_time(&api["next_attempt"]),
        now + TimeDelta::minutes(10)
    ));

    // The human table explains each state.
    let out = cli(&scene, &["status"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("CERT "), "{text}");
    assert!(text.contains("(1/3 of lifetime left)"), "{text}");
    assert!(text.contains("due: 1/3 of lifetime left"), "{text}");
    assert!(
        text.contains("backing off after 3 failures until"),
        "{text}"
    );
    assert!(text.contains("zerossl circuit open until"), "{text}");
    assert!(text.contains(", will try letsencrypt"), "{text}");
    assert!(
        text.contains("api: last error: finalize: 504 Gateway Time-out"),
        "{text}"
    );
}

#[test]
fn ledger_json_follows_the_contract_and_filters() {
    let scene = scene();
    let now = populate(&scene);
    let rows = json(&scene, &["ledger", "--json"]);
    assert_eq!(rows.len(), 5);
    let mut last = None;
    for r in &rows {
        assert_keys(r, &LEDGER_KEYS);
        assert!(is_contract_step(r["step"].as_str().unwrap()), "{r}");
        assert!(CLASSES.contains(&r["class"].as_str().unwrap()), "{r}");
        assert!(r["latency_ms"].is_u64());
        assert!(r["http_status"].is_u64());
        assert!(r["ca"].is_string());
        assert!(r["cert"].is_string() || r["cert"].is_null());
        assert!(r["order_url"].is_string() || r["order_url"].is_null());
        assert!(r["problem_type"].is_string() || r["problem_type"].is_null());
        let t = assert_time(&r["time"]);
        assert!(last.is_none_or(|l| t <= l), "not newest first");
        last = Some(t);
    }
    let newest = &rows[0];
    assert_eq!(newest["ca"], "zerossl");
    assert_eq!(newest["step"], "probe");
    assert_eq!(newest["class"], "ca_unavailable");
    assert_eq!(newest["cert"], Value::Null);
    assert_eq!(newest["latency_ms"], 1234);
    assert!(near(
        assert_time(&newest["time"]),
        now - TimeDelta::minutes(1)
    ));
    let finalize = &rows[1];
    assert_eq!(finalize["http_status"], 504);
    assert_eq!(finalize["order_url"], "https://zerossl.test/order/api");
    assert_eq!(
        rows[3]["problem_type"],
        "urn:ietf:params:acme:error:rateLimited"
    );
    assert_eq!(rows[3]["class"], "rate_limited");

    let names = |rows: &[Value], key: &str| -> Vec<String> {
        rows.iter()
            .map(|r| r[key].as_str().unwrap_or("-").to_string())
            .collect()
    };
    let by_ca = json(&scene, &["ledger", "--ca", "zerossl", "--json"]);
    assert_eq!(names(&by_ca, "ca"), ["zerossl"; 3]);
    let by_cert = json(&scene, &["ledger", "--cert", "api", "--json"]);
    assert_eq!(names(&by_cert, "step"), ["finalize", "new_order"]);
    let recent = json(&scene, &["ledger", "--since", "1h", "--json"]);
    assert_eq!(recent.len(), 3);
    let both = json(
        &scene,
        &[
            "ledger", "--since", "1h", "--ca", "zerossl", "--cert", "api", "--json",
        ],
    );
    assert_eq!(both.len(), 2);
    let limited = json(&scene, &["ledger", "--limit", "2", "--json"]);
    assert_eq!(names(&limited, "step"), ["probe", "finalize"]);

    // History of a CA and a certificate that left the config stays queryable.
    let out = cli(&scene, &["ledger", "--ca", "buypass", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let gone: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0]["cert"], "retired");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("CA \"buypass\" is not in the config"),
        "{stderr}"
    );
    assert_eq!(
        json(&scene, &["ledger", "--cert", "retired", "--json"]).len(),
        1
    );
    assert!(json(&scene, &["ledger", "--cert", "never-seen", "--json"]).is_empty());

    // A malformed name is still a usage error.
    let out = cli(&scene, &["ledger", "--ca", "bad/name"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());

    let out = cli(&scene, &["ledger"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("TIME "), "{text}");
    assert_eq!(text.lines().count(), 6, "{text}");
}

#[test]
fn ca_json_follows_the_contract() {
    let scene = scene();
    let now = populate(&scene);
    let rows = json(&scene, &["ca", "--json"]);
    assert_eq!(rows.len(), 2, "the configured CAs, in config order");
    for r in &rows {
        assert_keys(r, &CA_KEYS);
        assert!(["closed", "open", "half_open"].contains(&r["circuit"].as_str().unwrap()));
        assert!(r["consecutive_failures"].is_u64());
        assert_time_or_null(&r["open_until"]);
        assert_time_or_null(&r["last_probe"]);
        assert_time_or_null(&r["blocked_until"]);
    }
    let z = &rows[0];
    assert_eq!(z["name"], "zerossl");
    assert_eq!(z["circuit"], "open");
    assert_eq!(z["consecutive_failures"], 4);
    assert!(near(
        assert_time(&z["open_until"]),
        now + TimeDelta::minutes(5)
    ));
    assert!(near(
        assert_time(&z["last_probe"]),
        now - TimeDelta::minutes(1)
    ));
    assert_eq!(z["last_probe_ok"], false);
    assert_eq!(z["last_probe_latency_ms"], 5000);
    // Never seen: closed, zeros and nulls.
    let le = &rows[1];
    assert_eq!(le["name"], "letsencrypt");
    assert_eq!(le["circuit"], "closed");
    assert_eq!(le["consecutive_failures"], 0);
    for key in [
        "open_until",
        "last_probe",
        "last_probe_ok",
        "last_probe_latency_ms",
        "blocked_until",
    ] {
        assert_eq!(le[key], Value::Null, "{key}");
    }
    let out = cli(&scene, &["ca"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("CA "), "{text}");
    assert!(
        text.contains("zerossl") && text.contains("failed in 5000ms"),
        "{text}"
    );
}

#[test]
fn a_store_that_does_not_exist_yet_is_empty_and_is_not_created() {
    let scene = scene();
    let rows = json(&scene, &["status", "--json"]);
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["state"] == "missing"));
    assert!(json(&scene, &["ledger", "--json"]).is_empty());
    let cas = json(&scene, &["ca", "--json"]);
    assert!(cas.iter().all(|r| r["circuit"] == "closed"));
    for args in [&["status"][..], &["ledger"], &["ca"]] {
        let out = cli(&scene, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            !out.stdout.is_empty(),
            "{args:?}: the human table has at least its header"
        );
    }
    assert!(
        !scene.path("state").exists(),
        "a read-only command created the state directory"
    );
}

#[test]
fn an_unreadable_store_is_an_error_with_nothing_on_stdout() {
    let scene = scene();
    std::fs::create_dir(scene.path("state")).unwrap();
    let db = scene.path("state").join("state.db");
    std::fs::write(&db, vec![0x55; 8192]).unwrap();
    expect_failure(&scene, &db);

    // Written by a newer renewd.
    std::fs::remove_file(&db).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let stderr = expect_failure(&scene, &db);
    assert!(stderr.contains("newer renewd"), "{stderr}");
}

fn expect_failure(scene: &Scene, db: &Path) -> String {
    let mut last = String::new();
    for args in [&["status", "--json"][..], &["ledger", "--json"], &["ca"]] {
        let out = cli(scene, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        last = String::from_utf8(out.stderr).unwrap();
        assert!(last.contains(&db.display().to_string()), "{args:?}: {last}");
    }
    last
}

#[test]
fn reads_while_another_connection_writes() {
    let scene = scene();
    populate(&scene);
    let stop = AtomicBool::new(false);
    let written = AtomicU32::new(0);
    let writer = open_store(&scene);
    std::thread::scope(|s| {
        let writing = s.spawn(|| {
            let mut n = 0u32;
            // Bounded: the readers below finish long before.
            while !stop.load(Ordering::Relaxed) && n < 100_000 {
                n += 1;
                writer
                    .append_outcome(&outcome(
                        Utc::now(),
                        "zerossl",
                        Some("www"),
                        Step::Probe,
                        OutcomeClass::Ok,
                    ))
                    .unwrap();
                writer
                    .update_cert_state(&cert("api"), &mut |st| st.failure_streak = 3 + n % 5)
                    .unwrap();
                written.store(n, Ordering::Release);
            }
        });
        // The writer is under way before the first read.
        while written.load(Ordering::Acquire) == 0 {
            std::thread::yield_now();
        }
        let mut seen = 0;
        for _ in 0..8 {
            let rows = json(&scene, &["ledger", "--json", "--limit", "0"]);
            assert!(rows.len() >= seen, "rows went missing");
            seen = rows.len();
            let status = json(&scene, &["status", "--json"]);
            assert_eq!(status[2]["state"], "failing");
        }
        stop.store(true, Ordering::Relaxed);
        writing.join().unwrap();
        assert!(seen > 5, "the readers saw the writer's rows");
    });
}

#[test]
fn reading_as_root_leaves_the_database_files_to_their_owner() {
    require_root("reading another user's store");
    const NOBODY: u32 = 65534;
    let scene = scene();
    populate(&scene);
    let state = scene.path("state");
    for entry in std::fs::read_dir(&state).unwrap() {
        std::os::unix::fs::lchown(entry.unwrap().path(), Some(NOBODY), Some(NOBODY)).unwrap();
    }
    std::os::unix::fs::chown(&state, Some(NOBODY), Some(NOBODY)).unwrap();
    assert!(
        !state.join("state.db-wal").exists(),
        "the writer closed cleanly"
    );
    // A read-only connection creates the WAL files; SQLite gives the ones it creates as root
    // the database file's owner, so a root `renewd status` while the daemon is stopped does
    // not lock the daemon (user renewd) out of its own database.
    for args in [&["status"][..], &["ledger"], &["ca"]] {
        let out = cli(&scene, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
    }
    for entry in std::fs::read_dir(&state).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (NOBODY, NOBODY), "{path:?}");
    }
}
