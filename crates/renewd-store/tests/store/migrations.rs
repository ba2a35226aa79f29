//! Databases written by older renewd builds, frozen as SQL in `tests/fixtures/` (the schema
//! exactly as each version shipped, recovered from git history, plus rows), opened with
//! today's code: each migrates to the current version, keeps every row, ends with the same
//! tables and columns as a fresh database, and takes writes to the new columns.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use renewd_core::{CaName, CertName, OutcomeClass, Step, Urgency};
use renewd_store::{CircuitState, LedgerQuery, SqliteOptions, SqliteStore, StateStore, StoreError};
use rusqlite::Connection;

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

fn ca(s: &str) -> CaName {
    CaName::new(s).unwrap()
}

fn cert(s: &str) -> CertName {
    CertName::new(s).unwrap()
}

/// `state.db` in `dir`, built by running the frozen fixture of `version`.
fn database_at(dir: &Path, version: u32) -> std::path::PathBuf {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/schema_v{version}.sql"));
    let sql = std::fs::read_to_string(&fixture).unwrap();
    let path = dir.join(SqliteStore::FILE_NAME);
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(&sql).unwrap();
    let found: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(found, version, "{}", fixture.display());
    path
}

/// Every table's and index's columns: (table, [(name, type, not null, default, pk)]).
type Columns = Vec<(String, Vec<(String, String, bool, Option<String>, i64)>)>;

fn columns(path: &Path) -> Columns {
    let conn = Connection::open(path).unwrap();
    let mut names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    names.retain(|n| !n.starts_with("sqlite_"));
    names
        .into_iter()
        .map(|name| {
            let cols = conn
                .prepare(&format!("PRAGMA table_xinfo('{name}')"))
                .unwrap()
                .query_map([], |r| {
                    Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect::<Vec<_>>();
            let cols = if cols.is_empty() {
                // An index: its columns, in order.
                conn.prepare(&format!("PRAGMA index_info('{name}')"))
                    .unwrap()
                    .query_map([], |r| Ok((r.get(2)?, String::new(), false, None, 0)))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            } else {
                cols
            };
            (name, cols)
        })
        .collect()
}

/// Opens the fixture of `version` with today's code and checks what every version holds
/// (the v1 rows); returns the store for the version's own checks.
fn migrated(dir: &Path, version: u32) -> SqliteStore {
    let path = database_at(dir, version);
    // Not for read-only use until a writer migrated it.
    assert!(
        matches!(
            SqliteStore::open_read_only(&path, SqliteOptions::default()),
            Err(StoreError::SchemaOutdated { found, .. }) if found == version
        ),
        "v{version}"
    );
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    assert_eq!(store.schema_version().unwrap(), SqliteStore::SCHEMA_VERSION);
    assert_eq!(store.integrity_check().unwrap(), ["ok"]);

    // Same tables, columns and indexes as a database made today.
    let fresh_dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open_in(fresh_dir.path(), SqliteOptions::default()).unwrap());
    assert_eq!(
        columns(&path),
        columns(&fresh_dir.path().join(SqliteStore::FILE_NAME)),
        "v{version} migrated has the schema of a fresh database"
    );

    // The ledger, newest first.
    let rows = store.ledger(&LedgerQuery::all()).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].time, at(1_750_000_000_000));
    assert_eq!(rows[1].ca, ca("zerossl"));
    assert_eq!(rows[1].cert, Some(cert("www")));
    assert_eq!(rows[1].step, Step::Finalize);
    assert_eq!(rows[1].http_status, Some(504));
    assert_eq!(rows[1].class, OutcomeClass::CaUnavailable);
    assert_eq!(rows[1].latency, Duration::from_secs(30));
    assert_eq!(
        rows[1].order_url.as_deref(),
        Some("https://acme.zerossl.test/order/9")
    );
    assert_eq!(rows[0].step, Step::Download);
    assert_eq!(rows[0].class, OutcomeClass::Ok);
    assert_eq!(store.consecutive_ca_unavailable(&ca("zerossl")).unwrap(), 1);

    // CA health.
    let h = store.ca_health(&ca("zerossl")).unwrap().unwrap();
    assert_eq!(h.circuit, CircuitState::Open);
    assert_eq!(h.consecutive_failures, 4);
    assert_eq!(h.open_until, Some(at(1_750_000_600_000)));
    assert_eq!(h.last_probe, Some(at(1_749_999_990_000)));
    assert_eq!(h.last_probe_ok, Some(false));
    assert_eq!(h.last_probe_latency, Some(Duration::from_millis(900)));

    // The certificate's state, with its pending order.
    let s = store.cert_state(&cert("www")).unwrap().unwrap();
    let installed = s.installed.as_ref().unwrap();
    assert_eq!(installed.serial, "03a1f2");
    assert_eq!(installed.not_after, at(1_750_000_000_000));
    assert_eq!(installed.issuer_ca, Some(ca("letsencrypt")));
    assert_eq!(installed.ari_cert_id.as_deref(), Some("aaaa.03a1f2"));
    assert_eq!(s.ari.window_start, Some(at(1_747_000_000_000)));
    assert_eq!(s.ari.next_check, Some(at(1_750_003_600_000)));
    assert_eq!(s.ari.not_offered_at, None, "the v4 column starts empty");
    assert_eq!(s.next_attempt, Some(at(1_750_000_900_000)));
    assert_eq!(s.backoff_step, 2);
    assert_eq!(s.urgency_alerted, Some(Urgency::Urgent));
    assert_eq!(s.failure_streak, 3);
    let last = s.last_error.as_ref().unwrap();
    assert_eq!(last.class, OutcomeClass::CaUnavailable);
    assert_eq!(last.message, "zerossl: finalize: 504");
    assert_eq!(s.last_success, Some(at(1_742_224_000_000)));
    let pending = s.pending.as_ref().unwrap();
    assert_eq!(pending.ca, ca("zerossl"));
    assert_eq!(pending.order_url, "https://acme.zerossl.test/order/9");
    assert_eq!(pending.csr_der, [0x30, 0x82, 0x01, 0x0a, 0x02, 0x01]);
    assert_eq!(pending.created_at, at(1_749_999_000_000));

    // The account.
    let a = store.account(&ca("zerossl")).unwrap().unwrap();
    assert_eq!(a.url, "https://acme.zerossl.test/acct/7");
    assert_eq!(a.eab_kid.as_deref(), Some("kid-1"));
    assert_eq!(a.contact, ["mailto:ops@example.test"]);

    // The new column takes writes and keeps them across a reopen.
    let when = at(1_750_001_000_000);
    store
        .update_cert_state(&cert("www"), &mut |s| s.ari.not_offered_at = Some(when))
        .unwrap();
    drop(store);
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let s = store.cert_state(&cert("www")).unwrap().unwrap();
    assert_eq!(s.ari.not_offered_at, Some(when));
    assert_eq!(s.failure_streak, 3, "the rest is untouched");
    drop(SqliteStore::open_read_only(&path, SqliteOptions::default()).unwrap());
    store
}

#[test]
fn a_version_1_database_migrates_keeping_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = migrated(dir.path(), 1);
    let h = store.ca_health(&ca("zerossl")).unwrap().unwrap();
    assert_eq!(
        (h.cooldown, h.blocked_until),
        (None, None),
        "v2/v3 columns start empty"
    );
    assert!(store.status_snapshot().unwrap().leases.is_empty());
}

#[test]
fn a_version_2_database_migrates_keeping_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = migrated(dir.path(), 2);
    let h = store.ca_health(&ca("zerossl")).unwrap().unwrap();
    assert_eq!(h.cooldown, Some(Duration::from_secs(120)));
    assert_eq!(h.blocked_until, None, "the v3 column starts empty");
    let leases = store.status_snapshot().unwrap().leases;
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0].cert, cert("api"));
    assert_eq!(leases[0].holder.pid, 4242);
    assert_eq!(leases[0].holder.pid_start, Some(99_887_766));
    assert_eq!(leases[0].expires_at, at(1_750_000_120_000));
}

#[test]
fn a_version_3_database_migrates_keeping_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = migrated(dir.path(), 3);
    let h = store.ca_health(&ca("zerossl")).unwrap().unwrap();
    assert_eq!(h.cooldown, Some(Duration::from_secs(120)));
    assert_eq!(h.blocked_until, Some(at(1_750_000_420_000)));
    assert_eq!(store.status_snapshot().unwrap().leases.len(), 1);
}
