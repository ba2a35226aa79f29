//! The state store's interface. SQLite ([`crate::SqliteStore`]) is the embedded backend; a
//! shared backend (PostgreSQL, so a fleet coordinates) can implement the same trait without
//! touching callers.

use std::time::Duration;

use chrono::{DateTime, Utc};
use renewd_core::{CaName, CertName, RequestOutcome};

use crate::error::StoreError;
use crate::lease::{Lease, LeaseHolder, LeaseOutcome};
use crate::records::{
    AccountRecord, CaHealth, CertState, LedgerQuery, LedgerStats, PendingOrder, PruneReport,
    StatusSnapshot,
};

/// Everything renewd remembers between runs.
///
/// Methods are synchronous: the embedded backend answers in microseconds. Async callers that
/// must not block a runtime thread may wrap calls in `spawn_blocking`. Every method is one
/// transaction: it happens entirely or not at all, also across a crash. Times are kept to
/// the millisecond.
pub trait StateStore: Send + Sync + std::fmt::Debug {
    // --- the failure ledger -------------------------------------------------------------

    /// Appends one outcome to the ledger (and, every so many appends, prunes it cheaply).
    fn append_outcome(&self, outcome: &RequestOutcome) -> Result<(), StoreError>;

    /// The ledger rows matching `query`, newest first.
    fn ledger(&self, query: &LedgerQuery) -> Result<Vec<RequestOutcome>, StoreError>;

    /// The number of `ca_unavailable` rows of `ca` since its newest `ok` row (all of them when
    /// it has none): what the circuit breaker counts.
    fn consecutive_ca_unavailable(&self, ca: &CaName) -> Result<u32, StoreError>;

    /// Counts of `ca`'s rows at or after `since`, by class.
    fn ledger_stats(&self, ca: &CaName, since: DateTime<Utc>) -> Result<LedgerStats, StoreError>;

    /// Removes rows older than the retention's maximum age and beyond its maximum count.
    /// The daemon calls this on a schedule.
    fn prune_ledger(&self) -> Result<PruneReport, StoreError>;

    // --- CA health ----------------------------------------------------------------------

    /// One CA's health, when it was ever stored.
    fn ca_health(&self, ca: &CaName) -> Result<Option<CaHealth>, StoreError>;

    /// Stores a CA's health, replacing what was there.
    fn put_ca_health(&self, health: &CaHealth) -> Result<(), StoreError>;

    /// Reads, changes and writes a CA's health in one transaction (starting from
    /// [`CaHealth::new`] when absent), returning the stored value.
    fn update_ca_health(
        &self,
        ca: &CaName,
        change: &mut dyn FnMut(&mut CaHealth),
    ) -> Result<CaHealth, StoreError>;

    // --- per-certificate state ----------------------------------------------------------

    /// One certificate's state (with its pending order), when it was ever stored.
    fn cert_state(&self, cert: &CertName) -> Result<Option<CertState>, StoreError>;

    /// Stores a certificate's state including its pending order (written when `Some`,
    /// removed when `None`), in one transaction.
    fn put_cert_state(&self, state: &CertState) -> Result<(), StoreError>;

    /// Reads, changes and writes a certificate's state in one transaction (starting from
    /// [`CertState::new`] when absent), returning the stored value.
    fn update_cert_state(
        &self,
        cert: &CertName,
        change: &mut dyn FnMut(&mut CertState),
    ) -> Result<CertState, StoreError>;

    /// Removes a certificate's state, pending order and lease (the certificate left the
    /// config). Returns the pending order that was removed, whose key file the caller deletes.
    fn remove_cert_state(&self, cert: &CertName) -> Result<Option<PendingOrder>, StoreError>;

    /// Records the order in flight for `cert` (before finalize), leaving the rest of its
    /// state alone.
    fn set_pending_order(&self, cert: &CertName, order: &PendingOrder) -> Result<(), StoreError>;

    /// Forgets `cert`'s order in flight, returning it. Its key file is the caller's to delete
    /// ([`crate::PendingKeys::clear`] does both).
    fn clear_pending_order(&self, cert: &CertName) -> Result<Option<PendingOrder>, StoreError>;

    // --- leases -------------------------------------------------------------------------

    /// Tries to take `cert`'s lease for `ttl`. Atomic across processes: of two racing
    /// callers exactly one gets it. A stale lease (expired, or its holder is gone) is taken
    /// over; the holder's own lease is renewed.
    fn acquire_lease(
        &self,
        cert: &CertName,
        holder: &LeaseHolder,
        ttl: Duration,
    ) -> Result<LeaseOutcome, StoreError>;

    /// Extends a held lease to now + `ttl` (the heartbeat). [`StoreError::LeaseLost`] when
    /// it was taken over meanwhile.
    fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError>;

    /// Gives a lease up. Returns whether it was still held by its holder.
    fn release_lease(&self, lease: &Lease) -> Result<bool, StoreError>;

    // --- accounts -----------------------------------------------------------------------

    /// The account used at `ca`, when one was created.
    fn account(&self, ca: &CaName) -> Result<Option<AccountRecord>, StoreError>;

    /// Stores the account used at its CA, replacing what was there.
    fn put_account(&self, account: &AccountRecord) -> Result<(), StoreError>;

    // --- reads for the CLI --------------------------------------------------------------

    /// One consistent read of certificates, CAs, accounts and leases for `renewd status`
    /// and `renewd ca`.
    fn status_snapshot(&self) -> Result<StatusSnapshot, StoreError>;
}
