//! The [`Scheduler`]: built from the store, the clock, the policy and the plans; keeps the
//! agenda in step with the store. The loop itself is in `run.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use renewd_core::{CaName, CertName, Clock};
use renewd_store::{CertState, StateStore, StoreError};
use tokio::sync::watch;
use tracing::warn;

use crate::agenda::{Agenda, Entry, Slot};
use crate::circuits::Circuits;
use crate::command::Inventory;
use crate::due::Decision;
use crate::policy::{CertPlan, SchedulePolicy};
use crate::status::SchedulerStatus;
use crate::view::{CertView, Disk, Hold, HoldReason};

/// How long a certificate whose state could not be read waits before it is read again.
pub const STORE_RETRY: TimeDelta = TimeDelta::minutes(1);

/// The pause after a renewal that ended with neither a new certificate nor a back-off in
/// the store.
pub const MISSING_BACKOFF_PAUSE: TimeDelta = TimeDelta::minutes(1);

/// The earliest next ARI check after a check that stored no later `next_check`
/// (RFC 9773 leaves the default to the client; a few hours keeps the CA unbothered).
pub const ARI_DEFAULT_RETRY: TimeDelta = TimeDelta::hours(6);

/// Due-time computation and the one timer loop that hands work to the issuance pool.
///
/// Build it with [`Scheduler::load`], take its [`Scheduler::status`] and
/// [`Scheduler::liveness`] receivers, then drive it with [`Scheduler::run`].
#[derive(Debug)]
pub struct Scheduler {
    pub(crate) store: Arc<dyn StateStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) agenda: Agenda,
    pub(crate) liveness_interval: Option<Duration>,
    pub(crate) liveness: watch::Sender<u64>,
    pub(crate) status: watch::Sender<SchedulerStatus>,
    /// The last (re)load of the config: the issuer's "ARI not offered" markers older than
    /// this are ignored, so each such certificate is asked about once per load (the config
    /// or the CA's directory may have changed).
    pub(crate) ari_epoch: DateTime<Utc>,
}

impl Scheduler {
    /// Reads every planned certificate's state and every CA's health from `store` (one
    /// snapshot), takes in the first scan's `inventory`, and computes all deadlines. A
    /// store that cannot be read is not fatal: the certificates concerned are held back
    /// and read again a minute later.
    pub fn load(
        store: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
        policy: SchedulePolicy,
        plans: Vec<CertPlan>,
        mut inventory: Inventory,
    ) -> Self {
        let (mut states, health) = match store.status_snapshot() {
            Ok(snapshot) => {
                let states: HashMap<CertName, CertState> = snapshot
                    .certs
                    .into_iter()
                    .map(|s| (s.cert.clone(), s))
                    .collect();
                (Some(states), snapshot.cas)
            }
            Err(error) => {
                warn!(%error, "reading the state store's snapshot failed; reading certificate by certificate");
                (None, Vec::new())
            }
        };
        let ari_epoch = clock.now();
        let mut scheduler = Self {
            store,
            clock,
            agenda: Agenda::new(policy, Circuits::from_health(&health)),
            liveness_interval: None,
            liveness: watch::Sender::new(0),
            status: watch::Sender::new(SchedulerStatus::default()),
            ari_epoch,
        };
        if states.is_none() {
            let cas: HashSet<CaName> = plans.iter().flat_map(|p| p.cas.iter().cloned()).collect();
            scheduler.read_circuits(cas.iter());
        }
        let now = scheduler.clock.now();
        for plan in plans {
            let disk = inventory
                .remove(&plan.name)
                .map(|scan| Disk::from_scan(&scan))
                .unwrap_or_default();
            let state = match &mut states {
                Some(states) => Ok(states.remove(&plan.name)),
                None => scheduler.store.cert_state(&plan.name),
            };
            scheduler.add(plan, disk, state, now);
        }
        scheduler.publish();
        scheduler
    }

    /// Wakes the loop at least every `interval` to tick [`Scheduler::liveness`] (for the
    /// systemd watchdog).
    pub fn with_liveness_interval(mut self, interval: Duration) -> Self {
        self.liveness_interval = Some(interval.max(Duration::from_millis(1)));
        self
    }

    /// A counter the loop increments on every iteration. A stuck loop stops counting;
    /// the daemon pings the watchdog only when it moves.
    pub fn liveness(&self) -> watch::Receiver<u64> {
        self.liveness.subscribe()
    }

    /// The status snapshot, updated whenever it changes.
    pub fn status(&self) -> watch::Receiver<SchedulerStatus> {
        self.status.subscribe()
    }

    /// What the scheduler decided for `cert` as of now (before the loop runs; for tests and
    /// for logging at startup).
    pub fn decision(&self, cert: &CertName) -> Option<Decision> {
        let slot = self.agenda.slot_of(cert)?;
        Some(self.agenda.decision(slot, self.clock.now()))
    }

    /// Why `cert` is scheduled when it is, as [`Decision::explain`] says it.
    pub fn explain(&self, cert: &CertName) -> Option<String> {
        let slot = self.agenda.slot_of(cert)?;
        let now = self.clock.now();
        Some(self.agenda.decision(slot, now).explain(now))
    }

    /// Adds a certificate and places it.
    pub(crate) fn add(
        &mut self,
        plan: CertPlan,
        disk: Disk,
        state: Result<Option<CertState>, StoreError>,
        now: DateTime<Utc>,
    ) -> Slot {
        if let Some(slot) = self.agenda.slot_of(&plan.name) {
            warn!(cert_name = %plan.name, "certificate planned twice; the later plan wins");
            self.agenda.set_plan(slot, plan);
            self.agenda.entry_mut(slot).disk = disk;
            self.refresh(slot, now, None);
            self.agenda.place(slot, now);
            return slot;
        }
        let plan = self.agenda.intern(plan);
        let (view, serial, stale) = match state {
            Ok(state) => {
                let state = state.unwrap_or_else(|| CertState::new(plan.name.clone()));
                let view = CertView::from_disk(&disk, &state, self.ari_epoch);
                (view, serial_of(&state), false)
            }
            Err(error) => {
                warn!(cert_name = %plan.name, %error, "reading the certificate's state failed");
                let mut view =
                    CertView::from_disk(&disk, &CertState::new(plan.name.clone()), self.ari_epoch);
                view.hold = Some(unreadable(now));
                (view, None, true)
            }
        };
        let mut entry = Entry::new(plan, disk, view, serial);
        entry.stale = stale;
        let slot = self.agenda.insert(entry);
        self.agenda.place(slot, now);
        slot
    }

    /// Reads a certificate's state again and rebuilds its view (not its place). `done`:
    /// the work that just ended was a renewal (`Some(true)`) or an ARI check
    /// (`Some(false)`).
    pub(crate) fn refresh(&mut self, slot: Slot, now: DateTime<Utc>, done: Option<bool>) {
        let name = self.agenda.entry(slot).plan.name.clone();
        let state = self.store.cert_state(&name);
        let e = self.agenda.entry_mut(slot);
        let state = match state {
            Ok(state) => state.unwrap_or_else(|| CertState::new(name.clone())),
            Err(error) => {
                warn!(cert_name = %name, %error, "reading the certificate's state failed; holding it back");
                e.view.hold = Some(unreadable(now));
                e.stale = true;
                return;
            }
        };
        e.stale = false;
        let serial = serial_of(&state);
        let installed_now = serial != e.store_serial;
        if installed_now {
            // The issuer (or another renewd process) installed a certificate since the
            // scan: the store knows it better than the scan did.
            e.disk = Disk::Unknown;
            e.store_serial = serial;
        }
        let mut view = CertView::from_disk(&e.disk, &state, self.ari_epoch);
        view.ari_floor = e.view.ari_floor;
        view.hold = e
            .view
            .hold
            .filter(|h| h.reason == HoldReason::NoBackoffRecorded && h.until > now);
        match done {
            Some(true) if !installed_now && view.next_attempt.is_none_or(|t| t <= now) => {
                warn!(cert_name = %name, "a renewal ended without a new certificate or a back-off in the store; pausing");
                view.hold = Some(Hold {
                    until: now + MISSING_BACKOFF_PAUSE,
                    reason: HoldReason::NoBackoffRecorded,
                });
            }
            Some(true) => view.hold = None,
            Some(false) => {
                view.ari_floor = view
                    .ari
                    .next_check
                    .is_none_or(|t| t <= now)
                    .then(|| now + ARI_DEFAULT_RETRY);
            }
            None => {}
        }
        e.view = view;
    }

    /// Reads the health of `cas` again. Returns the CAs whose circuit changed.
    pub(crate) fn read_circuits<'a>(
        &mut self,
        cas: impl Iterator<Item = &'a CaName>,
    ) -> Vec<CaName> {
        let mut changed = Vec::new();
        for ca in cas {
            let moved = match self.store.ca_health(ca) {
                Ok(Some(health)) => self.agenda.circuits.update(&health),
                Ok(None) => self.agenda.circuits.forget(ca),
                Err(error) => {
                    warn!(%ca, %error, "reading the CA's health failed; keeping what was known");
                    false
                }
            };
            if moved {
                changed.push(ca.clone());
            }
        }
        changed
    }

    /// Publishes the status snapshot when it changed.
    pub(crate) fn publish(&self) {
        let status = self.agenda.status();
        self.status.send_if_modified(|current| {
            if *current == status {
                false
            } else {
                *current = status;
                true
            }
        });
    }
}

fn serial_of(state: &CertState) -> Option<Box<str>> {
    state
        .installed
        .as_ref()
        .map(|i| Box::from(i.serial.as_str()))
}

fn unreadable(now: DateTime<Utc>) -> Hold {
    Hold {
        until: now + STORE_RETRY,
        reason: HoldReason::StoreUnreadable,
    }
}
