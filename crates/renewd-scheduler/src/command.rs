//! What the rest of the daemon tells the scheduler loop.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use renewd_core::{CaName, CertName, WorkDone};
use renewd_store::InstalledState;
use tokio::sync::oneshot;

use crate::policy::CertPlan;

/// What the inventory scan found, by certificate. Certificates absent from it are judged
/// by what the store says is installed.
pub type Inventory = HashMap<CertName, InstalledState>;

/// A message to the scheduler loop.
#[derive(Debug)]
#[non_exhaustive]
pub enum SchedulerCommand {
    /// A new config: certificates not in `plans` are forgotten (an in-flight one once its
    /// work ends), new ones are read from the store, changed ones rescheduled. `inventory`
    /// holds the fresh scan of any certificates rescanned.
    Reload {
        /// Every configured certificate.
        plans: Vec<CertPlan>,
        /// Their scan, where one was made.
        inventory: Inventory,
    },
    /// A manual renewal (`renewd renew`).
    RenewNow {
        /// The certificates (empty: all).
        certs: Vec<CertName>,
        /// Dispatch even when not due (reason `forced`, no waiting for back-off or
        /// circuits).
        force: bool,
        /// Only this CA.
        only_ca: Option<CaName>,
        /// Where the answer goes.
        reply: oneshot::Sender<RenewNowReply>,
    },
    /// A piece of work ended; its outcome is in the store.
    WorkDone(WorkDone),
    /// A CA's circuit changed in the store: certificates waiting for it are rescheduled.
    CircuitChanged(CaName),
    /// A certificate's files were scanned again.
    Rescan(CertName, InstalledState),
}

/// The answer to [`SchedulerCommand::RenewNow`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenewNowReply {
    /// Queued for dispatch now (ahead of everything but pending orders).
    pub queued: Vec<CertName>,
    /// Already being worked on; nothing was queued.
    pub in_flight: Vec<CertName>,
    /// Not due (without `force`), with their next renewal time.
    pub not_due: Vec<(CertName, DateTime<Utc>)>,
    /// Not configured.
    pub unknown: Vec<CertName>,
}
