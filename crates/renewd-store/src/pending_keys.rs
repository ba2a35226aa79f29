//! The private keys of orders in flight: files in `STATE/pending/`, mode 0600 from the
//! first byte, never database values. A key is written before its order is recorded
//! ([`crate::StateStore::set_pending_order`]) and removed after the order is cleared, so a
//! crash leaves at worst an orphan key file, which [`PendingKeys::remove_orphans`] deletes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use renewd_core::CertName;

use crate::error::StoreError;
use crate::fsio::{self, FileSpec};
use crate::records::PendingOrder;
use crate::state_store::StateStore;

/// The directory of pending orders' key files.
#[derive(Debug, Clone)]
pub struct PendingKeys {
    dir: PathBuf,
}

impl PendingKeys {
    /// The pending-key directory of `state_dir` (`STATE/pending`).
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("pending"),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a new order's key atomically, mode 0600, under a fresh name
    /// (`NAME.<random>.key`, so a new key never overwrites one a recorded order still
    /// names). Returns the path to record in the [`PendingOrder`].
    pub fn write(&self, cert: &CertName, key_pem: &str) -> Result<PathBuf, StoreError> {
        fsio::ensure_dir(&self.dir, 0o700)?;
        let path = self
            .dir
            .join(format!("{cert}.{:016x}.key", fastrand::u64(..)));
        fsio::write_file_atomic(&path, key_pem.as_bytes(), &FileSpec::SECRET)?;
        Ok(path)
    }

    /// Reads a pending order's key.
    pub fn read(&self, order: &PendingOrder) -> Result<String, StoreError> {
        fs::read_to_string(&order.key_path)
            .map_err(|e| StoreError::io("reading the pending key", &order.key_path, e))
    }

    /// Deletes a key file (a missing one is fine) and syncs the directory.
    pub fn remove(&self, path: &Path) -> Result<(), StoreError> {
        match fs::remove_file(path) {
            Ok(()) => fsio::sync_dir(fsio::parent_of(path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("removing the pending key", path, e)),
        }
    }

    /// Forgets `cert`'s pending order in the store, then deletes its key file. Returns the
    /// order that was cleared.
    pub fn clear(
        &self,
        store: &dyn StateStore,
        cert: &CertName,
    ) -> Result<Option<PendingOrder>, StoreError> {
        let order = store.clear_pending_order(cert)?;
        if let Some(o) = &order {
            self.remove(&o.key_path)?;
        }
        Ok(order)
    }

    /// Deletes key files no pending order names, and leftover temp files, when older than
    /// `older_than` (a key just written for an order about to be recorded is not an orphan
    /// yet). Returns what was deleted. Meant for the daemon's start.
    pub fn remove_orphans(
        &self,
        store: &dyn StateStore,
        older_than: Duration,
    ) -> Result<Vec<PathBuf>, StoreError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("listing", &self.dir, e)),
        };
        let referenced: Vec<PathBuf> = store
            .status_snapshot()?
            .certs
            .into_iter()
            .filter_map(|c| c.pending.map(|p| p.key_path))
            .collect();
        let cutoff = SystemTime::now()
            .checked_sub(older_than)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut removed = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("listing", &self.dir, e))?;
            let path = entry.path();
            if referenced.contains(&path) {
                continue;
            }
            let old_enough = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t <= cutoff);
            if old_enough {
                self.remove(&path)?;
                removed.push(path);
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use chrono::Utc;
    use renewd_core::CaName;

    use super::*;
    use crate::sqlite::{SqliteOptions, SqliteStore};

    #[test]
    fn keys_are_private_unique_and_cleared_with_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(dir.path(), SqliteOptions::default()).unwrap();
        let keys = PendingKeys::new(dir.path());
        let www = CertName::new("www").unwrap();
        let a = keys.write(&www, "KEY A").unwrap();
        let b = keys.write(&www, "KEY B").unwrap();
        assert_ne!(a, b, "a new key never overwrites another");
        assert_eq!(
            fs::metadata(&a).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(keys.dir()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let order = PendingOrder {
            ca: CaName::new("z").unwrap(),
            account_url: "https://z/acct/1".into(),
            order_url: "https://z/order/1".into(),
            key_path: b.clone(),
            csr_der: vec![1, 2, 3],
            // Stored times keep milliseconds.
            created_at: chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis())
                .unwrap(),
        };
        store.set_pending_order(&www, &order).unwrap();
        assert_eq!(keys.read(&order).unwrap(), "KEY B");

        // A fresh orphan is spared (its order may be about to be recorded); an old one goes.
        assert!(
            keys.remove_orphans(&store, Duration::from_secs(3600))
                .unwrap()
                .is_empty()
        );
        assert_eq!(keys.remove_orphans(&store, Duration::ZERO).unwrap(), [a]);
        assert!(b.exists(), "the recorded order's key stays");

        assert_eq!(keys.clear(&store, &www).unwrap(), Some(order));
        assert!(!b.exists());
        assert_eq!(store.cert_state(&www).unwrap().unwrap().pending, None);
        assert_eq!(keys.clear(&store, &www).unwrap(), None);
        keys.remove(&b).unwrap();
    }
}
