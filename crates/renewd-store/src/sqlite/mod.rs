//! The embedded backend: one SQLite database (`STATE/state.db`) in WAL mode, so the CLI can
//! read while the daemon writes; a busy timeout, so writers from two processes queue instead
//! of failing; `synchronous=FULL`, so a committed pending order survives a power cut.

mod certs;
mod codec;
mod health;
mod leases;
mod ledger;
mod rows;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use renewd_core::{CaName, CertName, Clock, RequestOutcome, SystemClock};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::StoreError;
use crate::fsio;
use crate::lease::{Lease, LeaseHolder, LeaseOutcome};
use crate::records::{
    AccountRecord, CaHealth, CertState, LedgerQuery, LedgerStats, PendingOrder, PruneReport,
    Retention, StatusSnapshot,
};
use crate::state_store::StateStore;

/// How a [`SqliteStore`] behaves.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// How long a writer waits for another process's write lock (default 5 s).
    pub busy_timeout: Duration,
    /// How long the ledger keeps rows.
    pub retention: Retention,
    /// Where "now" comes from (lease expiry, pruning).
    pub clock: Arc<dyn Clock>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            retention: Retention::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// The state store on an embedded SQLite database. Cheap to share behind an `Arc`; calls
/// from several threads take turns on one connection.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    clock: Arc<dyn Clock>,
    /// Replaceable while open: a daemon applies a reloaded `[ledger]` at once.
    retention: Mutex<Retention>,
    appends: AtomicU32,
}

impl SqliteStore {
    /// The database's file name in the state directory.
    pub const FILE_NAME: &'static str = "state.db";

    /// The schema version this build reads and writes.
    pub const SCHEMA_VERSION: u32 = schema::LATEST;

    /// Opens (creating when needed, mode 0700) `state_dir` and its `state.db`, migrating
    /// an older schema.
    pub fn open_in(state_dir: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        fsio::ensure_dir(state_dir, 0o700)?;
        Self::open(&state_dir.join(Self::FILE_NAME), options)
    }

    /// Opens (creating when needed) the database at `path` read-write, migrating an older
    /// schema in one transaction; a newer schema is refused ([`StoreError::SchemaTooNew`]).
    pub fn open(path: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path).map_err(open_error(path))?;
        configure(&conn, path, options.busy_timeout)?;
        // The first statement reads the file: a file that is not a database fails here.
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .map_err(open_error(path))?;
        schema::migrate_to(&mut conn, path, schema::LATEST)?;
        Ok(Self::from_conn(conn, path, options))
    }

    /// Opens an existing database without writing to it, for the CLI's reads while the
    /// daemon runs. Refuses a schema other than this build's.
    pub fn open_read_only(path: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(open_error(path))?;
        configure(&conn, path, options.busy_timeout)?;
        let found: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(open_error(path))?;
        let found = u32::try_from(found).unwrap_or(u32::MAX);
        if found > schema::LATEST {
            return Err(StoreError::SchemaTooNew {
                path: path.to_path_buf(),
                found,
                supported: schema::LATEST,
            });
        }
        if found < schema::LATEST {
            return Err(StoreError::SchemaOutdated {
                path: path.to_path_buf(),
                found,
                supported: schema::LATEST,
            });
        }
        Ok(Self::from_conn(conn, path, options))
    }

    fn from_conn(conn: Connection, path: &Path, options: SqliteOptions) -> Self {
        Self {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            clock: options.clock,
            retention: Mutex::new(options.retention),
            appends: AtomicU32::new(0),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ledger's retention in force.
    pub fn retention(&self) -> Retention {
        *self
            .retention
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the ledger's retention (a reloaded config): the next prune, and the
    /// schedule of pruning on append, use it.
    pub fn set_retention(&self, retention: Retention) {
        *self
            .retention
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = retention;
    }

    /// The schema version in the file.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        schema::user_version(&self.lock())
    }

    /// SQLite's own consistency check: `["ok"]` for a sound database, else its complaints.
    pub fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.lock();
        let mut out = Vec::new();
        conn.pragma_query(None, "integrity_check", |r| {
            out.push(r.get(0)?);
            Ok(())
        })
        .map_err(StoreError::db("checking integrity"))?;
        Ok(out)
    }

    /// Frees what SQLite holds in memory for speed (the page cache, up to 2 MiB by default,
    /// filled by the start's reads and by bursts of work): the daemon calls it when it comes
    /// to rest, before handing free heap back to the system. Later reads refill the cache
    /// from the file.
    pub fn shrink_memory(&self) -> Result<(), StoreError> {
        self.lock()
            .execute_batch("PRAGMA shrink_memory")
            .map_err(StoreError::db("freeing the page cache"))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock dropped any open transaction (rolled back), so
        // the connection is usable.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Runs `f` in an immediate (write-locking) transaction.
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::db("starting a write transaction"))?;
        let out = f(&tx)?;
        tx.commit()
            .map_err(StoreError::db("committing a write transaction"))?;
        Ok(out)
    }

    /// Runs `f` in a read transaction: one consistent view.
    fn read<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(StoreError::db("starting a read transaction"))?;
        let out = f(&tx)?;
        tx.commit()
            .map_err(StoreError::db("ending a read transaction"))?;
        Ok(out)
    }

    fn expiry(&self, now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
        chrono::TimeDelta::from_std(ttl)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

fn open_error(path: &Path) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::OpenDatabase {
        path: path.to_path_buf(),
        source: Box::new(e),
    }
}

/// Settings every connection gets; part of opening, so errors name the file.
fn configure(conn: &Connection, path: &Path, busy_timeout: Duration) -> Result<(), StoreError> {
    conn.busy_timeout(busy_timeout).map_err(open_error(path))?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(open_error(path))?;
    Ok(())
}

impl StateStore for SqliteStore {
    fn append_outcome(&self, outcome: &RequestOutcome) -> Result<(), StoreError> {
        ledger::append(&self.lock(), outcome)?;
        let every = self.retention().prune_every;
        let n = self.appends.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if every > 0
            && n.is_multiple_of(every)
            && let Err(e) = self.prune_ledger()
        {
            // The row is in; a prune that failed now is retried on the next schedule.
            tracing::warn!(error = %e, "pruning the ledger failed");
        }
        Ok(())
    }

    fn ledger(&self, query: &LedgerQuery) -> Result<Vec<RequestOutcome>, StoreError> {
        ledger::query(&self.lock(), query)
    }

    fn consecutive_ca_unavailable(&self, ca: &CaName) -> Result<u32, StoreError> {
        self.read(|tx| ledger::consecutive_ca_unavailable(tx, ca))
    }

    fn ledger_stats(&self, ca: &CaName, since: DateTime<Utc>) -> Result<LedgerStats, StoreError> {
        ledger::stats(&self.lock(), ca, since)
    }

    fn prune_ledger(&self) -> Result<PruneReport, StoreError> {
        let now = self.now();
        let retention = self.retention();
        self.write(|tx| ledger::prune(tx, now, &retention))
    }

    fn ca_health(&self, ca: &CaName) -> Result<Option<CaHealth>, StoreError> {
        health::get(&self.lock(), ca)
    }

    fn put_ca_health(&self, h: &CaHealth) -> Result<(), StoreError> {
        health::put(&self.lock(), h)
    }

    fn update_ca_health(
        &self,
        ca: &CaName,
        change: &mut dyn FnMut(&mut CaHealth),
    ) -> Result<CaHealth, StoreError> {
        self.write(|tx| {
            let mut h = health::get(tx, ca)?.unwrap_or_else(|| CaHealth::new(ca.clone()));
            change(&mut h);
            h.ca = ca.clone();
            health::put(tx, &h)?;
            Ok(h)
        })
    }

    fn cert_state(&self, cert: &CertName) -> Result<Option<CertState>, StoreError> {
        self.read(|tx| certs::get(tx, cert))
    }

    fn put_cert_state(&self, state: &CertState) -> Result<(), StoreError> {
        self.write(|tx| certs::put(tx, state))
    }

    fn update_cert_state(
        &self,
        cert: &CertName,
        change: &mut dyn FnMut(&mut CertState),
    ) -> Result<CertState, StoreError> {
        self.write(|tx| {
            let mut s = certs::get(tx, cert)?.unwrap_or_else(|| CertState::new(cert.clone()));
            change(&mut s);
            s.cert = cert.clone();
            certs::put(tx, &s)?;
            Ok(s)
        })
    }

    fn remove_cert_state(&self, cert: &CertName) -> Result<Option<PendingOrder>, StoreError> {
        self.write(|tx| certs::remove(tx, cert))
    }

    fn set_pending_order(&self, cert: &CertName, order: &PendingOrder) -> Result<(), StoreError> {
        self.write(|tx| certs::set_pending(tx, cert, order))
    }

    fn clear_pending_order(&self, cert: &CertName) -> Result<Option<PendingOrder>, StoreError> {
        self.write(|tx| certs::clear_pending(tx, cert))
    }

    fn acquire_lease(
        &self,
        cert: &CertName,
        holder: &LeaseHolder,
        ttl: Duration,
    ) -> Result<LeaseOutcome, StoreError> {
        let now = self.now();
        let expires = self.expiry(now, ttl);
        self.write(|tx| leases::acquire(tx, cert, holder, now, expires))
    }

    fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError> {
        let expires_at = self.expiry(self.now(), ttl);
        if self.write(|tx| leases::renew(tx, lease, expires_at))? {
            Ok(Lease {
                expires_at,
                ..lease.clone()
            })
        } else {
            Err(StoreError::LeaseLost {
                cert: lease.cert.to_string(),
            })
        }
    }

    fn release_lease(&self, lease: &Lease) -> Result<bool, StoreError> {
        self.write(|tx| leases::release(tx, lease))
    }

    fn account(&self, ca: &CaName) -> Result<Option<AccountRecord>, StoreError> {
        health::get_account(&self.lock(), ca)
    }

    fn put_account(&self, account: &AccountRecord) -> Result<(), StoreError> {
        health::put_account(&self.lock(), account)
    }

    fn status_snapshot(&self) -> Result<StatusSnapshot, StoreError> {
        self.read(|tx| {
            Ok(StatusSnapshot {
                certs: certs::all(tx)?,
                cas: health::all(tx)?,
                accounts: health::all_accounts(tx)?,
                leases: leases::all(tx)?,
                ledger_rows: ledger::row_count(tx)?,
            })
        })
    }
}

#[cfg(test)]
mod tests;
