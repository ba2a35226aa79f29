//! renewd's memory and its disk: everything the daemon must remember across restarts and
//! everything it writes, crash-safe.
//!
//! # Place in the flow
//!
//! The daemon opens the store first: [`SqliteStore`] (the state database), [`CertStore`]
//! (the certificate files) and [`PendingKeys`] (keys of orders in flight). At startup it
//! runs [`CertStore::recover`] and [`PendingKeys::remove_orphans`], then
//! [`CertStore::scan`]s the configured certificates into the inventory the scheduler plans
//! from. The issuer takes a per-certificate lease ([`StateStore::acquire_lease`]), records
//! every ACME request in the ledger ([`StateStore::append_outcome`]), persists the order
//! before finalize ([`PendingKeys::write`] + [`StateStore::set_pending_order`]), and
//! installs the result ([`CertStore::install`], which verifies first). The CLI reads
//! [`StateStore::status_snapshot`] and [`StateStore::ledger`] while the daemon runs.
//!
//! # Design overview
//!
//! - **State** — [`StateStore`] is the backend-neutral trait (synchronous; every method one
//!   transaction); [`SqliteStore`] implements it on one SQLite file in WAL mode with
//!   versioned migrations. Records: the failure ledger (rows are
//!   [`renewd_core::RequestOutcome`]s; [`LedgerQuery`], [`LedgerStats`], pruning by
//!   [`Retention`]), [`CaHealth`] (circuit, cool-down), [`CertState`] with its
//!   [`PendingOrder`], [`Lease`]s, [`AccountRecord`]s, and the [`StatusSnapshot`].
//! - **Files** — [`CertStore`]: `STATE/certs/NAME/archive/N/` versions and the `live`
//!   symlink, swapped atomically; optional [`CopyOut`] paths; [`write_file_atomic`] for
//!   any other file. Every write is temp file → fsync → rename → fsync directory, and a key
//!   is mode 0600 from its first byte.
//! - **Verification** — [`verify_issued`] checks an issued chain before installation: it
//!   parses and links, its leaf matches the key, the names and the clock
//!   ([`VerifyError`] says what failed).
//! - **Inventory** — [`CertStore::scan`] reads every live set in parallel into an
//!   [`InstalledState`] holding compact [`CertFacts`].
//!
//! One error type, [`StoreError`], covers the crate.

// Tests may unwrap: a panic is how they fail.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod cert_store;
mod copy_out;
mod der;
mod error;
mod facts;
mod fsio;
mod inventory;
mod lease;
mod owners;
mod pending_keys;
mod records;
mod sqlite;
mod state_store;
mod verify;

#[cfg(test)]
#[path = "../tests/support/pki.rs"]
mod test_pki;

pub use cert_store::{CertStore, DEFAULT_KEEP_VERSIONS, Installed, SET_FILES};
pub use copy_out::CopyOut;
pub use error::{StoreError, VerifyError};
pub use facts::CertFacts;
pub use fsio::{FileSpec, write_file_atomic};
pub use inventory::{CertSpec, InstalledState, Mismatch};
pub use lease::{DEFAULT_LEASE_TTL, Lease, LeaseHolder, LeaseOutcome, Takeover};
pub use pending_keys::PendingKeys;
pub use records::{
    AccountRecord, AriState, CaHealth, CertState, CircuitState, InstalledCert, LastError,
    LedgerQuery, LedgerStats, PendingOrder, PruneReport, Retention, StatusSnapshot,
};
pub use sqlite::{SqliteOptions, SqliteStore};
pub use state_store::StateStore;
pub use verify::{Expectations, VerifiedSet, verify_issued};
