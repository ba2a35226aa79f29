//! Tests of the SQLite backend, by concern; the fixtures live here.

mod ledger;
mod processes_and_schema;
mod records;

use std::process::Command;
use std::thread;

use chrono::TimeDelta;
use renewd_core::{ManualClock, OutcomeClass, Step, Urgency};
use tempfile::TempDir;

use super::*;
use crate::lease::{DEFAULT_LEASE_TTL, Takeover};
use crate::records::{AriState, CircuitState, InstalledCert, LastError};

pub(super) fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).unwrap()
}

pub(super) fn ca(s: &str) -> CaName {
    CaName::new(s).unwrap()
}

pub(super) fn cert(s: &str) -> CertName {
    CertName::new(s).unwrap()
}

pub(super) struct Fixture {
    _dir: TempDir,
    pub(super) clock: ManualClock,
    pub(super) store: SqliteStore,
}

pub(super) fn fixture_with(retention: Retention) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0());
    let store = SqliteStore::open_in(
        &dir.path().join("state"),
        SqliteOptions {
            retention,
            clock: Arc::new(clock.clone()),
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    Fixture {
        _dir: dir,
        clock,
        store,
    }
}

pub(super) fn fixture() -> Fixture {
    fixture_with(Retention::default())
}

pub(super) fn outcome(
    ca_name: &str,
    cert_name: Option<&str>,
    class: OutcomeClass,
    at: i64,
) -> RequestOutcome {
    RequestOutcome {
        time: t0() + TimeDelta::seconds(at),
        ca: ca(ca_name),
        account: Some(format!("https://{ca_name}/acct/1")),
        cert: cert_name.map(cert),
        step: Step::Finalize,
        http_status: (class == OutcomeClass::CaUnavailable).then_some(504),
        problem_type: None,
        class,
        latency: Duration::from_millis(120),
        order_url: Some(format!("https://{ca_name}/order/{at}")),
        detail: (class != OutcomeClass::Ok).then(|| "504 Gateway Time-out".to_string()),
    }
}

/// The bytes SQLite's page cache holds for the store's connection.
#[allow(unsafe_code)]
fn page_cache_bytes(store: &SqliteStore) -> i32 {
    let conn = store.lock();
    let (mut current, mut highest) = (0, 0);
    // SAFETY: the handle is the live connection's, used under its lock for one status
    // read that writes only the two integers passed.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_status(
            conn.handle(),
            rusqlite::ffi::SQLITE_DBSTATUS_CACHE_USED,
            &mut current,
            &mut highest,
            0,
        )
    };
    assert_eq!(rc, rusqlite::ffi::SQLITE_OK);
    current
}

#[test]
fn shrink_memory_empties_the_page_cache_and_the_store_reads_on() {
    let f = fixture();
    for i in 0..2000 {
        f.store
            .append_outcome(&outcome("a", Some("www"), OutcomeClass::Ok, i))
            .unwrap();
    }
    let rows = f.store.ledger(&LedgerQuery::default()).unwrap();
    let filled = page_cache_bytes(&f.store);
    f.store.shrink_memory().unwrap();
    let shrunk = page_cache_bytes(&f.store);
    assert!(
        shrunk < filled / 4,
        "page cache {filled} bytes after reads, {shrunk} after shrink_memory"
    );
    assert_eq!(f.store.ledger(&LedgerQuery::default()).unwrap(), rows);
}
