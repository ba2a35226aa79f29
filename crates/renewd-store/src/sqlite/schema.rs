//! The schema, as an ordered list of migrations. `PRAGMA user_version` holds the number of
//! migrations applied. Opening a database applies the missing ones in one transaction; a
//! database from a newer renewd (a version beyond the list) is refused.
//!
//! Never edit a migration that has shipped: add a new one.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::StoreError;

/// Version 1: the ledger, CA health, certificate state, pending orders and accounts.
const V1: &str = "
CREATE TABLE ledger (
    id            INTEGER PRIMARY KEY,
    time_ms       INTEGER NOT NULL,
    ca            TEXT NOT NULL,
    account       TEXT,
    cert          TEXT,
    step          TEXT NOT NULL,
    http_status   INTEGER,
    problem_type  TEXT,
    class         TEXT NOT NULL,
    latency_ms    INTEGER NOT NULL,
    order_url     TEXT,
    detail        TEXT
);
CREATE INDEX ledger_by_time ON ledger (time_ms);
CREATE INDEX ledger_by_ca ON ledger (ca, time_ms);
CREATE INDEX ledger_by_cert ON ledger (cert, time_ms);

CREATE TABLE ca_health (
    ca                     TEXT PRIMARY KEY,
    circuit                TEXT NOT NULL,
    consecutive_failures   INTEGER NOT NULL,
    open_until_ms          INTEGER,
    last_probe_ms          INTEGER,
    last_probe_ok          INTEGER,
    last_probe_latency_ms  INTEGER
);

CREATE TABLE cert_state (
    cert                  TEXT PRIMARY KEY,
    serial                TEXT,
    not_before_ms         INTEGER,
    not_after_ms          INTEGER,
    issuer_ca             TEXT,
    account_url           TEXT,
    ari_cert_id           TEXT,
    ari_window_start_ms   INTEGER,
    ari_window_end_ms     INTEGER,
    ari_explanation_url   TEXT,
    ari_next_check_ms     INTEGER,
    next_attempt_ms       INTEGER,
    backoff_step          INTEGER NOT NULL DEFAULT 0,
    urgency_alerted       TEXT,
    failing_since_ms      INTEGER,
    failure_streak        INTEGER NOT NULL DEFAULT 0,
    last_error_class      TEXT,
    last_error_message    TEXT,
    last_error_ms         INTEGER,
    last_success_ms       INTEGER
);

CREATE TABLE pending_order (
    cert          TEXT PRIMARY KEY,
    ca            TEXT NOT NULL,
    account_url   TEXT NOT NULL,
    order_url     TEXT NOT NULL,
    key_path      TEXT NOT NULL,
    csr_der       BLOB NOT NULL,
    created_ms    INTEGER NOT NULL
);

CREATE TABLE account (
    ca          TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    key_path    TEXT NOT NULL,
    eab_kid     TEXT,
    contact     TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);
";

/// Version 2: the breaker's cool-down survives restarts (so it can keep growing), leases
/// keep the daemon and `renewd renew` from running two orders for one certificate, and the
/// breaker's count of consecutive failures gets its own index.
const V2: &str = "
ALTER TABLE ca_health ADD COLUMN cooldown_ms INTEGER;

CREATE INDEX ledger_by_ca_class ON ledger (ca, class, time_ms);

CREATE TABLE lease (
    cert         TEXT PRIMARY KEY,
    pid          INTEGER NOT NULL,
    pid_start    INTEGER,
    boot_id      TEXT NOT NULL,
    hostname     TEXT NOT NULL,
    token        TEXT NOT NULL,
    acquired_ms  INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL
);
";

/// Version 3: a CA's rate-limit block (`Retry-After` of a 429 / `rateLimited`) survives
/// restarts, so nothing is sent to that CA before it ends.
const V3: &str = "
ALTER TABLE ca_health ADD COLUMN blocked_until_ms INTEGER;
";

/// Version 4: the issuer's marker that ARI cannot be asked about a certificate, so the
/// scheduler stops planning checks that can only come back empty.
const V4: &str = "
ALTER TABLE cert_state ADD COLUMN ari_not_offered_ms INTEGER;
";

const MIGRATIONS: &[&str] = &[V1, V2, V3, V4];

/// The schema version this build writes.
pub(crate) const LATEST: u32 = MIGRATIONS.len() as u32;

pub(crate) fn user_version(conn: &Connection) -> Result<u32, StoreError> {
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(StoreError::db("reading the schema version"))?;
    Ok(u32::try_from(v).unwrap_or(u32::MAX))
}

/// Brings the database to `target` (at most [`LATEST`]) in one immediate transaction, so a
/// concurrent opener waits and then finds the work done. Returns the version found.
pub(crate) fn migrate_to(
    conn: &mut Connection,
    path: &Path,
    target: u32,
) -> Result<u32, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::db("starting the schema migration"))?;
    let found = user_version(&tx)?;
    if found > LATEST {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: LATEST,
        });
    }
    if found >= target {
        return Ok(found);
    }
    for sql in &MIGRATIONS[found as usize..target as usize] {
        tx.execute_batch(sql)
            .map_err(StoreError::db("applying a schema migration"))?;
    }
    tx.pragma_update(None, "user_version", i64::from(target))
        .map_err(StoreError::db("recording the schema version"))?;
    tx.commit()
        .map_err(StoreError::db("committing the schema migration"))?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(conn: &Connection) -> Vec<String> {
        let mut st = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn from_empty_to_latest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut conn = Connection::open(&path).unwrap();
        assert_eq!(migrate_to(&mut conn, &path, LATEST).unwrap(), 0);
        assert_eq!(user_version(&conn).unwrap(), LATEST);
        assert_eq!(
            tables(&conn),
            [
                "account",
                "ca_health",
                "cert_state",
                "lease",
                "ledger",
                "pending_order"
            ]
        );
        // Idempotent.
        assert_eq!(migrate_to(&mut conn, &path, LATEST).unwrap(), LATEST);
    }

    #[test]
    fn newer_schema_is_refused_naming_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 7).unwrap();
        let err = migrate_to(&mut conn, &path, LATEST).unwrap_err();
        assert!(matches!(
            err,
            StoreError::SchemaTooNew {
                found: 7,
                supported: LATEST,
                ..
            }
        ));
        let msg = err.to_string();
        assert!(
            msg.contains("version 7") && msg.contains(&format!("version {LATEST}")),
            "{msg}"
        );
        assert!(msg.contains("state.db"), "{msg}");
    }

    #[test]
    fn a_failed_migration_leaves_the_old_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate_to(&mut conn, &path, 1).unwrap();
        // Sabotage step 2: its table already exists, so CREATE TABLE lease fails midway.
        conn.execute_batch("CREATE TABLE lease (x)").unwrap();
        assert!(migrate_to(&mut conn, &path, LATEST).is_err());
        assert_eq!(user_version(&conn).unwrap(), 1);
        // The ALTER TABLE of step 2 was rolled back with the rest.
        let cols: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('ca_health')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(!cols.iter().any(|c| c == "cooldown_ms"), "{cols:?}");
    }
}
