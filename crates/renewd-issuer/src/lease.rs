//! Who may work on a certificate: one job per certificate in this process ([`BusySet`]) and
//! one across processes (the store's lease, [`LeaseGuard`], kept alive by a heartbeat). Both
//! are released on drop, so an aborted job frees them too.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use renewd_core::CertName;
use renewd_store::{Lease, LeaseHolder, LeaseOutcome, StateStore, StoreError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The certificates with a job running in this process.
#[derive(Debug, Default)]
pub(crate) struct BusySet(Mutex<HashSet<CertName>>);

/// Marks a certificate busy until dropped.
#[derive(Debug)]
pub(crate) struct BusyGuard {
    set: Arc<BusySet>,
    cert: CertName,
}

impl BusySet {
    /// Claims `cert`; `None` when a job of this process already works on it.
    pub(crate) fn claim(self: &Arc<Self>, cert: &CertName) -> Option<BusyGuard> {
        let mut busy = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        busy.insert(cert.clone()).then(|| BusyGuard {
            set: self.clone(),
            cert: cert.clone(),
        })
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.set
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.cert);
    }
}

/// A held lease with its heartbeat. `lost` is cancelled when the heartbeat finds the lease
/// taken over; the job must stop then.
#[derive(Debug)]
pub(crate) struct LeaseGuard {
    store: Arc<dyn StateStore>,
    lease: Arc<Mutex<Lease>>,
    heartbeat: JoinHandle<()>,
    pub(crate) lost: CancellationToken,
}

/// Takes `cert`'s lease for `ttl`; `Ok(None)` when another holder has it.
pub(crate) fn acquire(
    store: &Arc<dyn StateStore>,
    cert: &CertName,
    ttl: Duration,
) -> Result<Option<LeaseGuard>, StoreError> {
    let lease = match store.acquire_lease(cert, &LeaseHolder::this_process(), ttl)? {
        LeaseOutcome::Acquired { lease, took_over } => {
            if let Some((holder, why)) = took_over {
                tracing::info!(cert_name = %cert, previous_pid = holder.pid, reason = ?why,
                    "took over a stale lease");
            }
            lease
        }
        LeaseOutcome::Held(lease) => {
            tracing::info!(cert_name = %cert, holder_pid = lease.holder.pid,
                holder_host = %lease.holder.hostname, "another process is renewing this certificate");
            return Ok(None);
        }
    };
    let lease = Arc::new(Mutex::new(lease));
    let lost = CancellationToken::new();
    let heartbeat = tokio::spawn(heartbeat(store.clone(), lease.clone(), ttl, lost.clone()));
    Ok(Some(LeaseGuard {
        store: store.clone(),
        lease,
        heartbeat,
        lost,
    }))
}

async fn heartbeat(
    store: Arc<dyn StateStore>,
    lease: Arc<Mutex<Lease>>,
    ttl: Duration,
    lost: CancellationToken,
) {
    let period = (ttl / 3).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(period).await;
        let current = lease.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match store.renew_lease(&current, ttl) {
            Ok(renewed) => *lease.lock().unwrap_or_else(PoisonError::into_inner) = renewed,
            Err(StoreError::LeaseLost { .. }) => {
                tracing::error!(cert_name = %current.cert,
                    "the certificate's lease was taken over; stopping this job");
                lost.cancel();
                return;
            }
            // A busy or failing store: keep trying; the lease lives until its expiry.
            Err(e) => tracing::warn!(cert_name = %current.cert, error = %e,
                "could not renew the certificate's lease"),
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.heartbeat.abort();
        let lease = self
            .lease
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Err(e) = self.store.release_lease(&lease) {
            tracing::warn!(cert_name = %lease.cert, error = %e, "could not release the lease");
        }
    }
}
