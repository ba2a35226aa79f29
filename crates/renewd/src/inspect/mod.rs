//! What `status`, `ledger` and `ca` read: the state store, opened read-only (WAL lets a
//! reader in while the daemon writes), and the certificate files' inventory scan.
//!
//! A state directory without a database yet (a fresh install, a daemon that never ran) is
//! not an error: every command answers as for a store that has seen nothing, and nothing
//! is created — a read-only command never writes. A database that cannot be read (not a
//! database, written by a newer renewd, not yet migrated) is an error.

mod status;

use std::path::Path;

use chrono::{DateTime, Utc};
use renewd_config::Config;
use renewd_core::RequestOutcome;
use renewd_store::{
    CaHealth, CertSpec, CertStore, LedgerQuery, SqliteOptions, SqliteStore, StateStore,
    StatusSnapshot, StoreError,
};

pub use status::status_rows;

use crate::report::StatusRow;

/// Opens `STATE/state.db` read-only; `None` when it does not exist yet. The one place that
/// knows the backend: a read-only open (so a status command never writes, and WAL lets it
/// read while the daemon writes) and the file name are SQLite's. Everything else here reads
/// through the `StateStore` trait.
pub fn open_store(state_dir: &Path) -> Result<Option<Box<dyn StateStore>>, StoreError> {
    let path = state_dir.join(SqliteStore::FILE_NAME);
    // When we cannot even look (a state directory we may not enter), opening says why.
    if matches!(path.try_exists(), Ok(false)) {
        return Ok(None);
    }
    let store = SqliteStore::open_read_only(&path, SqliteOptions::default())?;
    Ok(Some(Box::new(store)))
}

/// One consistent read of the store; empty without a store.
pub fn snapshot(store: Option<&dyn StateStore>) -> Result<StatusSnapshot, StoreError> {
    store.map_or_else(|| Ok(StatusSnapshot::default()), |s| s.status_snapshot())
}

/// `renewd status`: the configured certificates, scanned and joined with the store.
pub fn read_status(config: &Config, now: DateTime<Utc>) -> Result<Vec<StatusRow>, StoreError> {
    let store = open_store(&config.state_dir)?;
    let snapshot = snapshot(store.as_deref())?;
    let specs: Vec<CertSpec<'_>> = config
        .certs
        .iter()
        .map(|c| CertSpec {
            name: &c.name,
            domains: &c.domains,
            key_type: c.key,
        })
        .collect();
    let scans = CertStore::new(&config.state_dir).scan(&specs);
    Ok(status_rows(config, &snapshot, &scans, now))
}

/// `renewd ca`: each configured CA's health, in config order; a CA the store has never
/// seen is closed, with nothing probed.
pub fn read_cas(config: &Config) -> Result<Vec<CaHealth>, StoreError> {
    let store = open_store(&config.state_dir)?;
    let snapshot = snapshot(store.as_deref())?;
    Ok(ca_rows(config, &snapshot))
}

/// The configured CAs' health from `snapshot`.
pub fn ca_rows(config: &Config, snapshot: &StatusSnapshot) -> Vec<CaHealth> {
    config
        .cas
        .iter()
        .map(|ca| {
            snapshot
                .cas
                .iter()
                .find(|h| h.ca == ca.name)
                .cloned()
                .unwrap_or_else(|| CaHealth::new(ca.name.clone()))
        })
        .collect()
}

/// `renewd ledger`: the rows `query` selects, newest first; none without a store.
pub fn read_ledger(
    state_dir: &Path,
    query: &LedgerQuery,
) -> Result<Vec<RequestOutcome>, StoreError> {
    match open_store(state_dir)? {
        None => Ok(Vec::new()),
        Some(store) => store.ledger(query),
    }
}
