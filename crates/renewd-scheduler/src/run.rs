//! The one timer loop: sleep until the earliest deadline, a command, a free worker or
//! cancellation — never polling — then act and sleep again.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use renewd_core::{CaName, CertName, RenewalJob, RenewalReason, SeenInstalled, Work, WorkDone};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::agenda::{Manual, Slot};
use crate::command::{Inventory, RenewNowReply, SchedulerCommand};
use crate::due::{NextWork, urgency};
use crate::error::SchedulerError;
use crate::policy::CertPlan;
use crate::scheduler::Scheduler;
use crate::view::Disk;

/// The loop re-reads the wall clock at least this often, so that a suspend, a resume or a
/// clock jump delays a deadline by no more than this.
pub const WALL_CLOCK_RECHECK: Duration = Duration::from_secs(15 * 60);

impl Scheduler {
    /// Runs the loop until `token` is cancelled (`Ok`) or the pool drops its end of `work`
    /// ([`SchedulerError::WorkChannelClosed`]).
    ///
    /// Each iteration ticks [`Scheduler::liveness`], moves what came due into the ready
    /// queue, publishes [`Scheduler::status`], then waits for the first of: cancellation,
    /// a command, a free slot in `work` (only while something is due), or the next
    /// deadline (at most [`WALL_CLOCK_RECHECK`] or the liveness interval away). A full
    /// `work` channel therefore never blocks commands or ticks; due work waits in order.
    pub async fn run(
        mut self,
        token: CancellationToken,
        mut commands: mpsc::Receiver<SchedulerCommand>,
        work: mpsc::Sender<Work>,
    ) -> Result<(), SchedulerError> {
        let mut commands_open = true;
        loop {
            self.liveness.send_modify(|n| *n = n.wrapping_add(1));
            let now = self.clock.now();
            self.agenda.promote(now);
            self.publish();
            let wake = self.wake_at(now);
            tokio::select! {
                biased;
                () = token.cancelled() => return Ok(()),
                command = commands.recv(), if commands_open => match command {
                    Some(command) => self.handle(command),
                    None => commands_open = false,
                },
                permit = work.reserve(), if self.agenda.has_ready() => {
                    let permit = permit.map_err(|_| SchedulerError::WorkChannelClosed)?;
                    let now = self.clock.now();
                    if !self.dispatch(permit, now) {
                        continue;
                    }
                    // Fill whatever else the pool has room for in this same wake-up.
                    while self.agenda.has_ready() {
                        match work.try_reserve() {
                            Ok(permit) => {
                                if !self.dispatch(permit, now) {
                                    break;
                                }
                            }
                            Err(TrySendError::Full(())) => break,
                            Err(TrySendError::Closed(())) => {
                                return Err(SchedulerError::WorkChannelClosed);
                            }
                        }
                    }
                }
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// The tokio instant of the next wake-up.
    fn wake_at(&self, now: DateTime<Utc>) -> Instant {
        let longest = self
            .liveness_interval
            .map_or(WALL_CLOCK_RECHECK, |i| i.min(WALL_CLOCK_RECHECK));
        let until_deadline = self
            .agenda
            .next_deadline()
            .map(|at| (at - now).to_std().unwrap_or(Duration::ZERO));
        let sleep = until_deadline.map_or(longest, |d| d.min(longest));
        Instant::now() + sleep
    }

    fn handle(&mut self, command: SchedulerCommand) {
        let now = self.clock.now();
        match command {
            SchedulerCommand::WorkDone(done) => self.work_done(done, now),
            SchedulerCommand::CircuitChanged(ca) => {
                if self.read_circuits(std::iter::once(&ca)).is_empty() {
                    debug!(%ca, "circuit change announced, nothing changed for the scheduler");
                } else {
                    self.circuit_moved(&ca, now);
                }
            }
            SchedulerCommand::Rescan(cert, scan) => {
                let Some(slot) = self.agenda.slot_of(&cert) else {
                    debug!(cert_name = %cert, "rescan of a certificate not configured");
                    return;
                };
                self.agenda.entry_mut(slot).disk = Disk::from_scan(&scan);
                self.refresh(slot, now, None);
                self.agenda.place(slot, now);
            }
            SchedulerCommand::Reload { plans, inventory } => self.reload(plans, inventory, now),
            SchedulerCommand::RenewNow {
                certs,
                force,
                only_ca,
                reply,
            } => {
                let answer = self.renew_now(certs, force, only_ca, now);
                if reply.send(answer).is_err() {
                    debug!("the manual renewal's requester left before the answer");
                }
            }
        }
    }

    fn work_done(&mut self, done: WorkDone, now: DateTime<Utc>) {
        let Some(slot) = self.agenda.slot_of(&done.cert) else {
            debug!(cert_name = %done.cert, "work ended for a certificate no longer configured");
            return;
        };
        match self.agenda.finish(slot) {
            None => return,
            Some(false) => {
                warn!(cert_name = %done.cert, "work ended for a certificate not in flight")
            }
            Some(true) => {}
        }
        self.refresh(slot, now, Some(done.was_renewal));
        let cas = std::sync::Arc::clone(&self.agenda.entry(slot).plan.cas);
        for ca in self.read_circuits(cas.iter()) {
            self.circuit_moved(&ca, now);
        }
        self.agenda.place(slot, now);
        if tracing::enabled!(tracing::Level::DEBUG) {
            let why = self.agenda.decision(slot, now).explain(now);
            debug!(cert_name = %done.cert, %why, "work ended");
        }
    }

    /// Re-places the certificates waiting for `ca`'s circuit. (Ones that became blocked
    /// are caught when their deadline comes: every dispatch decides afresh.)
    fn circuit_moved(&mut self, ca: &CaName, now: DateTime<Utc>) {
        let waiting = self.agenda.waiting_on(ca);
        debug!(%ca, waiting = waiting.len(), "circuit changed");
        for slot in waiting {
            self.agenda.place(slot, now);
        }
    }

    fn reload(&mut self, plans: Vec<CertPlan>, mut inventory: Inventory, now: DateTime<Utc>) {
        // A new config may bring back a certificate's CA, or turn ARI on; and a CA may
        // offer renewalInfo by now: ask once more about every certificate marked as not
        // offered (the issuer marks it again if still so).
        self.ari_epoch = now;
        for slot in self.agenda.slots() {
            let e = self.agenda.entry_mut(slot);
            if e.view.ari.not_offered {
                e.view.ari.not_offered = false;
                e.view.ari_floor = None;
                self.agenda.place(slot, now);
            }
        }
        let keep: HashSet<&CertName> = plans.iter().map(|p| &p.name).collect();
        let gone: Vec<Slot> = self
            .agenda
            .slots()
            .into_iter()
            .filter(|&slot| !keep.contains(&self.agenda.entry(slot).plan.name))
            .collect();
        for &slot in &gone {
            self.agenda.remove(slot);
        }
        let cas: HashSet<CaName> = plans.iter().flat_map(|p| p.cas.iter().cloned()).collect();
        for ca in self.read_circuits(cas.iter()) {
            self.circuit_moved(&ca, now);
        }
        let (mut added, mut changed) = (0usize, 0usize);
        for plan in plans {
            let disk = inventory
                .remove(&plan.name)
                .map(|scan| Disk::from_scan(&scan));
            match self.agenda.slot_of(&plan.name) {
                Some(slot) => {
                    let e = self.agenda.entry(slot);
                    if e.plan == plan && !e.removed && disk.is_none() {
                        continue;
                    }
                    changed += 1;
                    self.agenda.set_plan(slot, plan);
                    if let Some(disk) = disk {
                        self.agenda.entry_mut(slot).disk = disk;
                        self.refresh(slot, now, None);
                    }
                    self.agenda.place(slot, now);
                }
                None => {
                    added += 1;
                    let state = self.store.cert_state(&plan.name);
                    self.add(plan, disk.unwrap_or_default(), state, now);
                }
            }
        }
        info!(added, changed, removed = gone.len(), "schedule reloaded");
    }

    fn renew_now(
        &mut self,
        certs: Vec<CertName>,
        force: bool,
        only_ca: Option<CaName>,
        now: DateTime<Utc>,
    ) -> RenewNowReply {
        let mut reply = RenewNowReply::default();
        let targets: Vec<(CertName, Option<Slot>)> = if certs.is_empty() {
            let mut all: Vec<(CertName, Option<Slot>)> = self
                .agenda
                .slots()
                .into_iter()
                .filter(|&slot| !self.agenda.entry(slot).removed)
                .map(|slot| (self.agenda.entry(slot).plan.name.clone(), Some(slot)))
                .collect();
            all.sort_by(|a, b| a.0.cmp(&b.0));
            all
        } else {
            certs
                .into_iter()
                .map(|c| {
                    let slot = self
                        .agenda
                        .slot_of(&c)
                        .filter(|&s| !self.agenda.entry(s).removed);
                    (c, slot)
                })
                .collect()
        };
        for (cert, slot) in targets {
            let Some(slot) = slot else {
                reply.unknown.push(cert);
                continue;
            };
            if self.agenda.entry(slot).in_flight() {
                reply.in_flight.push(cert);
                continue;
            }
            if !force {
                // A manual request asks now: a certificate that is due but backing off
                // after failures goes now too (the operator asked; open circuits and CA
                // rate limits still hold inside the job). Only one not yet due waits.
                let due_at = self.agenda.decision(slot, now).renewal.due;
                if due_at > now {
                    reply.not_due.push((cert, due_at));
                    continue;
                }
            }
            self.agenda.entry_mut(slot).manual = Some(Manual {
                force,
                only_ca: only_ca.clone(),
            });
            self.agenda.place(slot, now);
            reply.queued.push(cert);
        }
        info!(
            queued = reply.queued.len(),
            force, "manual renewal requested"
        );
        reply
    }

    /// Hands the first ready entry that is still due to the pool. Returns whether the
    /// permit was used.
    fn dispatch(&mut self, permit: mpsc::Permit<'_, Work>, now: DateTime<Utc>) -> bool {
        while let Some(slot) = self.agenda.pop_ready() {
            // The store is the truth: another process may have renewed meanwhile.
            self.refresh(slot, now, None);
            let decision = self.agenda.decision(slot, now);
            let e = self.agenda.entry(slot);
            let name = e.plan.name.clone();
            // Read from the store just now: the issuer compares it after taking the lease,
            // so a renewal by another process while the job waits for a worker is not
            // repeated.
            let seen = SeenInstalled::from_serial(e.store_serial.as_deref());
            let job = |reason: RenewalReason, only_ca: Option<CaName>| {
                Work::Renew(RenewalJob {
                    cert: name.clone(),
                    reason,
                    urgency: urgency(
                        e.view.installed.as_ref(),
                        e.view.problem,
                        &self.agenda.policy,
                        now,
                    ),
                    only_ca,
                    seen_installed: seen.clone(),
                })
            };
            let work = match &e.manual {
                Some(m) if m.force => Some(job(RenewalReason::Forced, m.only_ca.clone())),
                Some(m) => (decision.renewal.due <= now)
                    .then(|| job(decision.renewal.reason, m.only_ca.clone())),
                None => match decision.next() {
                    (at, _) if at > now => None,
                    (_, NextWork::Renew) => Some(job(decision.renewal.reason, None)),
                    (_, NextWork::AriCheck) => Some(Work::AriCheck(name.clone())),
                },
            };
            let Some(work) = work else {
                self.agenda.entry_mut(slot).manual = None;
                self.agenda.place(slot, now);
                continue;
            };
            let renewal = matches!(work, Work::Renew(_));
            match &work {
                Work::Renew(job) => info!(
                    cert_name = %job.cert,
                    reason = %job.reason,
                    urgency = %job.urgency,
                    why = %decision.explain(now),
                    "dispatching renewal"
                ),
                other => debug!(cert_name = %other.cert(), "dispatching ARI check"),
            }
            self.agenda.start(slot, renewal, now);
            permit.send(work);
            return true;
        }
        false
    }
}
