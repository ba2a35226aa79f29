//! renewd's scheduler: when each certificate is due, and the one timer loop that hands due
//! work to the issuance pool.
//!
//! # Place in the flow
//!
//! The daemon loads the config, opens the store and scans the installed certificates, then
//! builds a [`Scheduler`] from the store, a [`renewd_core::Clock`], the
//! [`SchedulePolicy`], one [`CertPlan`] per certificate and the scan ([`Inventory`]).
//! [`Scheduler::run`] sends [`renewd_core::Work`] on a bounded channel to the issuance pool
//! (`renewd-issuer`) and hears back through [`SchedulerCommand`]s. The scheduler never
//! calls the issuer: they share only those messages and the store. After a piece of work the
//! issuer writes the outcome into the store (installed certificate; back-off and
//! `next_attempt`; CA health) and sends [`SchedulerCommand::WorkDone`]; the scheduler reads
//! that certificate's state again and computes its next deadline. It writes nothing to the
//! store.
//!
//! # Design overview
//!
//! - **Due time** — [`decide`] is a pure function of a certificate's [`CertView`] (built
//!   from the store's `CertState` and the scan's `InstalledState`), its [`CertPlan`], the
//!   CAs' [`Circuits`], the policy and "now". It returns a [`Decision`]: the renewal's due
//!   time and [`Basis`], the lower [`Bound`] that delays it, its urgency ([`urgency`]), and
//!   the next ARI check. [`Decision::explain`] says it in one line. `renewd status` can
//!   compute the same from the store without the daemon.
//! - **The agenda** — one entry per certificate; future deadlines in a `BTreeSet` ordered by
//!   time, due work in a second one ordered by priority (pending orders, manual requests,
//!   critical, urgent, normal, ARI checks); in-flight work is in neither, so nothing is
//!   dispatched twice. Each event costs O(log n).
//! - **The loop** — [`Scheduler::run`] sleeps until the earliest deadline (converted from
//!   wall time through the clock, re-checked at least every [`WALL_CLOCK_RECHECK`]), a
//!   command, a free worker (`Sender::reserve`, only while something is due) or
//!   cancellation. Each iteration ticks [`Scheduler::liveness`] for the systemd watchdog
//!   and publishes a [`SchedulerStatus`] ([`Scheduler::status`]).
//! - **Time** — [`TokioClock`] ties wall time to tokio's clock, so tests run virtual days
//!   under `tokio::time::pause()`.
//!
//! One error type, [`SchedulerError`], says why the loop stopped on its own.

// Tests may unwrap: a panic is how they fail.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod agenda;
mod circuits;
mod clock;
mod command;
mod due;
mod error;
mod explain;
mod policy;
mod run;
mod scheduler;
mod status;
mod view;

pub use circuits::Circuits;
pub use clock::TokioClock;
pub use command::{Inventory, RenewNowReply, SchedulerCommand};
pub use due::{
    Basis, Bound, Decision, NextWork, RENEW_BEFORE_FLOOR, Renewal, SHORT_LIFETIME, ari_unit,
    critical_from, decide, urgency,
};
pub use error::SchedulerError;
pub use explain::format_time;
pub use policy::{CertPlan, SchedulePolicy};
pub use run::WALL_CLOCK_RECHECK;
pub use scheduler::{ARI_DEFAULT_RETRY, MISSING_BACKOFF_PAUSE, STORE_RETRY, Scheduler};
pub use status::{CertStatus, NextDeadline, SchedulerStatus};
pub use view::{AriView, CertView, Hold, HoldReason, Validity};
