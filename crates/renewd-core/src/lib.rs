//! Domain types shared by every renewd crate. No I/O lives here.
//!
//! # Design overview
//!
//! renewd renews certificates through a pipeline of crates (see `docs/ARCHITECTURE.md`):
//! config → store (inventory) → scheduler → issuer (ACME client) → store. The crates talk
//! only through the types in this crate and through channels, so each piece can be tested
//! alone:
//!
//! - [`CertName`], [`CaName`], [`DomainName`]: validated names, checked once at the edge.
//! - [`Step`]: which ACME request an outcome belongs to (the ledger's `step` column).
//! - [`FailureClass`] and [`OutcomeClass`]: the one classification of a failure, computed
//!   next to the protocol in `renewd-acme` and only *read* everywhere downstream.
//! - [`RequestOutcome`]: one ACME request's result, as the ledger stores it.
//! - [`Urgency`], [`RenewalJob`], [`RenewalReason`], [`SeenInstalled`]: what the scheduler
//!   hands the workers.
//! - [`KeyType`], [`ChallengeType`]: the choices a certificate's config makes.
//! - [`Work`], [`WorkDone`]: the messages between the scheduler and the issuance pool.
//! - [`Backoff`]: the per-certificate back-off steps after failures.
//! - [`Clock`]: where "now" comes from, so tests control time.

mod backoff;
mod clock;
mod failure;
mod job;
mod kinds;
mod names;
mod outcome;

pub use backoff::Backoff;
pub use clock::{Clock, ManualClock, SystemClock};
pub use failure::{FailureClass, OutcomeClass, Step, UnknownLabel};
pub use job::{RenewalJob, RenewalReason, SeenInstalled, Urgency, Work, WorkDone};
pub use kinds::{ChallengeType, KeyType};
pub use names::{CaName, CertName, DomainName, NameError};
pub use outcome::RequestOutcome;
