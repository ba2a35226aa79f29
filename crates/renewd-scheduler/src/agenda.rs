//! The agenda: one entry per certificate, the future deadlines in time order (the
//! timeline), the due work waiting for a free worker in priority order (the ready queue),
//! the certificates waiting for circuits by CA, and the counts by state. Every event costs
//! O(log n), so 100,000 certificates stay cheap.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use renewd_core::{CaName, CertName, Urgency};

use crate::circuits::Circuits;
use crate::due::{Bound, Decision, NextWork, decide};
use crate::policy::{CertPlan, SchedulePolicy};
use crate::status::{CertStatus, NextDeadline, SchedulerStatus};
use crate::view::{CertView, Disk};

/// An entry's index in the agenda.
pub(crate) type Slot = u32;

/// Ready-queue ranks: lower is dispatched first.
const RANK_PENDING: u8 = 0;
const RANK_MANUAL: u8 = 1;
const RANK_CRITICAL: u8 = 2;
const RANK_URGENT: u8 = 3;
const RANK_NORMAL: u8 = 4;
const RANK_ARI: u8 = 5;
const RANK_REREAD: u8 = 6;

/// An operator's `renewd renew` waiting for dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manual {
    pub force: bool,
    pub only_ca: Option<CaName>,
}

/// Where an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Unplaced,
    Timeline(DateTime<Utc>, u8),
    Ready(u8, DateTime<Utc>),
    InFlight,
}

/// One certificate.
#[derive(Debug)]
pub(crate) struct Entry {
    pub plan: CertPlan,
    /// What the last scan found.
    pub disk: Disk,
    /// The serial the store recorded as installed when last read: a change means the
    /// issuer installed a new certificate, which supersedes the scan.
    pub store_serial: Option<Box<str>>,
    pub view: CertView,
    pub manual: Option<Manual>,
    /// Left the config while in flight: dropped when its work ends.
    pub removed: bool,
    /// Its state could not be read from the store: whatever its view says, it is read
    /// again when its hold ends (through the ready queue, where dispatch reads first).
    pub stale: bool,
    place: Place,
    /// Its state, when counted (removed entries are not).
    status: Option<CertStatus>,
    /// Listed under its CAs in the circuit-waiting index.
    waiting: bool,
}

impl Entry {
    pub(crate) fn new(
        plan: CertPlan,
        disk: Disk,
        view: CertView,
        store_serial: Option<Box<str>>,
    ) -> Self {
        Self {
            plan,
            disk,
            store_serial,
            view,
            manual: None,
            removed: false,
            stale: false,
            place: Place::Unplaced,
            status: None,
            waiting: false,
        }
    }

    pub(crate) fn in_flight(&self) -> bool {
        self.place == Place::InFlight
    }
}

#[derive(Debug)]
pub(crate) struct Agenda {
    pub policy: SchedulePolicy,
    pub circuits: Circuits,
    entries: Vec<Option<Entry>>,
    free: Vec<Slot>,
    index: HashMap<CertName, Slot>,
    timeline: BTreeSet<(DateTime<Utc>, u8, Slot)>,
    ready: BTreeSet<(u8, DateTime<Utc>, Slot)>,
    waiting: HashMap<CaName, HashSet<Slot>>,
    by_status: [usize; 5],
    in_flight: usize,
    removed: usize,
    ca_lists: HashSet<Arc<[CaName]>>,
}

impl Agenda {
    pub(crate) fn new(policy: SchedulePolicy, circuits: Circuits) -> Self {
        Self {
            policy,
            circuits,
            entries: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            timeline: BTreeSet::new(),
            ready: BTreeSet::new(),
            waiting: HashMap::new(),
            by_status: [0; 5],
            in_flight: 0,
            removed: 0,
            ca_lists: HashSet::new(),
        }
    }

    pub(crate) fn slot_of(&self, cert: &CertName) -> Option<Slot> {
        self.index.get(cert).copied()
    }

    /// Every slot in use.
    pub(crate) fn slots(&self) -> Vec<Slot> {
        self.index.values().copied().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len() - self.removed
    }

    pub(crate) fn entry(&self, slot: Slot) -> &Entry {
        self.entries[slot as usize]
            .as_ref()
            .expect("slots handed out point at live entries")
    }

    /// Mutable access for changes that do not move the entry; call [`Agenda::place`]
    /// after changing what its decision reads.
    pub(crate) fn entry_mut(&mut self, slot: Slot) -> &mut Entry {
        self.entries[slot as usize]
            .as_mut()
            .expect("slots handed out point at live entries")
    }

    /// Shares equal CA lists between plans.
    pub(crate) fn intern(&mut self, mut plan: CertPlan) -> CertPlan {
        match self.ca_lists.get(&plan.cas) {
            Some(shared) => plan.cas = Arc::clone(shared),
            None => {
                self.ca_lists.insert(Arc::clone(&plan.cas));
            }
        }
        plan
    }

    /// Adds a certificate (unplaced; the caller places it).
    pub(crate) fn insert(&mut self, entry: Entry) -> Slot {
        let name = entry.plan.name.clone();
        let slot = match self.free.pop() {
            Some(slot) => {
                self.entries[slot as usize] = Some(entry);
                slot
            }
            None => {
                let slot = Slot::try_from(self.entries.len())
                    .expect("fewer than 2^32 certificates are configured");
                self.entries.push(Some(entry));
                slot
            }
        };
        self.index.insert(name, slot);
        slot
    }

    /// Replaces an entry's plan (its place is recomputed by the caller).
    pub(crate) fn set_plan(&mut self, slot: Slot, plan: CertPlan) {
        self.unlink(slot);
        let plan = self.intern(plan);
        let e = self.entry_mut(slot);
        e.plan = plan;
        if e.removed {
            e.removed = false;
            self.removed -= 1;
        }
    }

    /// The certificate left the config: gone now, or when its work ends.
    pub(crate) fn remove(&mut self, slot: Slot) {
        self.unlink(slot);
        if self.entry(slot).in_flight() {
            if !self.entry(slot).removed {
                self.entry_mut(slot).removed = true;
                self.removed += 1;
            }
            self.count(slot, None);
        } else {
            self.drop_entry(slot);
        }
    }

    fn drop_entry(&mut self, slot: Slot) {
        self.count(slot, None);
        if let Some(e) = self.entries[slot as usize].take() {
            if e.removed {
                self.removed -= 1;
            }
            self.index.remove(&e.plan.name);
            self.free.push(slot);
        }
    }

    pub(crate) fn decision(&self, slot: Slot, now: DateTime<Utc>) -> Decision {
        let e = self.entry(slot);
        decide(&e.plan, &e.view, &self.circuits, &self.policy, now)
    }

    /// Takes an entry off the timeline, the ready queue and the waiting index.
    fn unlink(&mut self, slot: Slot) {
        let e = self.entries[slot as usize]
            .as_mut()
            .expect("slots handed out point at live entries");
        match std::mem::replace(&mut e.place, Place::Unplaced) {
            Place::Timeline(at, rank) => {
                self.timeline.remove(&(at, rank, slot));
            }
            Place::Ready(rank, at) => {
                self.ready.remove(&(rank, at, slot));
            }
            Place::InFlight => e.place = Place::InFlight,
            Place::Unplaced => {}
        }
        if std::mem::take(&mut e.waiting) {
            for ca in e.plan.cas.iter() {
                if let Some(set) = self.waiting.get_mut(ca) {
                    set.remove(&slot);
                    if set.is_empty() {
                        self.waiting.remove(ca);
                    }
                }
            }
        }
    }

    fn count(&mut self, slot: Slot, status: Option<CertStatus>) {
        let e = self.entries[slot as usize]
            .as_mut()
            .expect("slots handed out point at live entries");
        let status = if e.removed { None } else { status };
        if let Some(old) = std::mem::replace(&mut e.status, status) {
            self.by_status[old.index()] -= 1;
        }
        if let Some(new) = status {
            self.by_status[new.index()] += 1;
        }
    }

    /// Computes an entry's next deadline as of `now` and files it on the timeline, or in
    /// the ready queue when it is due. In-flight entries stay put (only their count is
    /// refreshed).
    pub(crate) fn place(&mut self, slot: Slot, now: DateTime<Utc>) {
        self.unlink(slot);
        let decision = self.decision(slot, now);
        let e = self.entry(slot);
        if e.in_flight() {
            let status = CertStatus::of(&e.view, &decision, true, now);
            self.count(slot, Some(status));
            return;
        }
        let status = CertStatus::of(&e.view, &decision, false, now);
        let (at, rank) = if e.manual.is_some() {
            (now, RANK_MANUAL)
        } else if e.stale {
            (e.view.hold.map_or(now, |h| h.until.max(now)), RANK_REREAD)
        } else {
            let (at, work) = decision.next();
            (at, rank_of(work, &decision))
        };
        let waits = e.manual.is_none()
            && !e.stale
            && at > now
            && matches!(decision.renewal.bound, Some(Bound::Circuits { .. }))
            && decision.next().1 == NextWork::Renew;
        let cas = Arc::clone(&e.plan.cas);
        let e = self.entries[slot as usize]
            .as_mut()
            .expect("slots handed out point at live entries");
        if at <= now {
            e.place = Place::Ready(rank, at);
            self.ready.insert((rank, at, slot));
        } else {
            e.place = Place::Timeline(at, rank);
            self.timeline.insert((at, rank, slot));
        }
        if waits {
            e.waiting = true;
            for ca in cas.iter() {
                self.waiting.entry(ca.clone()).or_default().insert(slot);
            }
        }
        self.count(slot, Some(status));
    }

    /// Moves every entry whose deadline has come into the ready queue (recomputing it:
    /// one that must still wait goes back on the timeline, later).
    pub(crate) fn promote(&mut self, now: DateTime<Utc>) {
        while let Some(&(at, _, slot)) = self.timeline.first() {
            if at > now {
                break;
            }
            self.place(slot, now);
        }
    }

    /// Takes the first entry of the ready queue off it.
    pub(crate) fn pop_ready(&mut self) -> Option<Slot> {
        let (_, _, slot) = self.ready.pop_first()?;
        self.entry_mut(slot).place = Place::Unplaced;
        Some(slot)
    }

    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The earliest deadline on the timeline.
    pub(crate) fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.timeline.first().map(|&(at, _, _)| at)
    }

    /// Marks an entry as in flight.
    pub(crate) fn start(&mut self, slot: Slot, renewal: bool, now: DateTime<Utc>) {
        self.unlink(slot);
        let e = self.entry_mut(slot);
        e.place = Place::InFlight;
        e.manual = None;
        self.in_flight += 1;
        if renewal {
            self.count(slot, Some(CertStatus::Renewing));
        } else {
            let decision = self.decision(slot, now);
            let status = CertStatus::of(&self.entry(slot).view, &decision, false, now);
            self.count(slot, Some(status));
        }
    }

    /// Its work ended. Returns whether it was in flight; an entry removed meanwhile is
    /// dropped (and `None` returned).
    pub(crate) fn finish(&mut self, slot: Slot) -> Option<bool> {
        let e = self.entry_mut(slot);
        let was = e.place == Place::InFlight;
        if was {
            e.place = Place::Unplaced;
            self.in_flight -= 1;
        }
        if self.entry(slot).removed {
            self.drop_entry(slot);
            return None;
        }
        Some(was)
    }

    /// The entries waiting for `ca`'s circuit.
    pub(crate) fn waiting_on(&self, ca: &CaName) -> Vec<Slot> {
        self.waiting
            .get(ca)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default()
    }

    pub(crate) fn status(&self) -> SchedulerStatus {
        let first_ready = self.ready.first().map(|&(rank, at, slot)| (at, rank, slot));
        let next =
            first_ready
                .or_else(|| self.timeline.first().copied())
                .map(|(at, rank, slot)| NextDeadline {
                    cert: self.entry(slot).plan.name.clone(),
                    at,
                    work: if rank == RANK_ARI {
                        NextWork::AriCheck
                    } else {
                        NextWork::Renew
                    },
                });
        SchedulerStatus {
            certificates: self.len(),
            by_status: self.by_status,
            in_flight: self.in_flight,
            queued: self.ready.len(),
            next,
        }
    }
}

fn rank_of(work: NextWork, decision: &Decision) -> u8 {
    match work {
        NextWork::AriCheck => RANK_ARI,
        NextWork::Renew => match decision.renewal.basis {
            crate::due::Basis::PendingOrder => RANK_PENDING,
            _ => match decision.renewal.urgency {
                Urgency::Critical => RANK_CRITICAL,
                Urgency::Urgent => RANK_URGENT,
                Urgency::Normal => RANK_NORMAL,
            },
        },
    }
}
