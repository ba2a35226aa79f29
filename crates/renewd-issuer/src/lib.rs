//! renewd's issuance side: the worker pool that turns the scheduler's [`Work`] into
//! installed certificates, choosing CAs by urgency, probing their health, keeping a circuit
//! breaker per CA and never wasting an order the CA may still complete.
//!
//! # Place in the flow
//!
//! The scheduler decides *when* and sends [`Work`] over a channel; [`Issuer::run`] does the
//! work and answers each piece with [`WorkDone`] once its outcome is in the state store
//! (the single source of truth the scheduler re-reads). `renewd renew` calls
//! [`Issuer::run_once`] instead. ACME goes through `renewd-acme` (one client per CA), state
//! and files through `renewd-store`; challenges are answered by the [`Solvers`] and hooks
//! run through [`HostActions`], both supplied by the binary.
//!
//! # Design overview
//!
//! - `pool`: [`Issuer`], [`IssuerParts`], [`JobResult`] — the workers, shutdown, reload.
//! - `ca_runtime`: per CA a rate-limited client (`rate_limit`, a token bucket behind the
//!   client's `HttpClient` seam), an order semaphore (`max_concurrent_orders`), a
//!   single-flight probe cache and the account (`account`).
//! - `breaker` and `health`: the circuit of each CA as pure transitions of its persisted
//!   `CaHealth` (closed → open → half-open with one trial, doubling cool-down), rate-limit
//!   blocks (`blocked_until`), read and written through the store.
//! - `selection`: which CAs a job tries and when it moves on, by urgency and failure class.
//! - `job` (one renewal), `attempt` (one CA: probe, account, resume or new order),
//!   `success` (verify, install, state, deploy), `failure` (back-off, failure hooks),
//!   `deferral` (waiting on a CA's trial, cool-down or rate limit without a failure),
//!   `ari_check` (renewal windows), `pending` (pending orders in the store), `lease`
//!   (one job per certificate, across processes), `ledger` (one row per request — a
//!   refused nonce the client retries at once is none — each also handed to the
//!   [`OutcomeHook`] of the [`IssuerOptions`], retried nonces too; by default
//!   [`log_outcome`]).
//! - [`IssuerEvent`]s on a broadcast channel tell the daemon about circuits, renewals,
//!   failures, expiry danger, failed hooks and how each job of the pool ended.
//!
//! # The failure policy
//!
//! Every failure arrives classified ([`FailureClass`](renewd_core::FailureClass), computed
//! in `renewd-acme`). `ca_unavailable` counts against the CA's circuit and keeps the
//! pending order for the next attempt. A pending order is given up (just before ordering
//! elsewhere) only when the CA says it can never complete, or by a job that fails over:
//! - a critical job, after a failed attempt at the order's CA, or at the start of the job
//!   when that CA cannot take it now and the wait is not short — never merely because its
//!   CA's trial is busy or the CA rate-limits renewd for at most 30 more minutes: then it
//!   waits;
//! - an urgent job, once that order's CA circuit is open (the breaker has judged the CA
//!   down): at the start of the job when the circuit is already open, or after a failed
//!   attempt there that opened it; while the CA is only rate-limiting renewd or its trial
//!   is busy, the urgent job waits (deferred);
//! - a normal job never: it waits for the order's CA (deferred), and after a failure there
//!   it does not move on.
//!
//! `rate_limited` blocks the CA until its `Retry-After`; a persistent `bad_nonce` is
//! retried later at the same CA; a CA-specific refusal moves on to the next CA at any
//! urgency; validation failures and local failures back off
//! without failover and are never blamed on the CA. A job whose CAs cannot take an order
//! yet (another job's half-open trial, open circuits, rate limits) is deferred, not failed.
//!
//! Rate limits are CA-wide, as DESIGN.md has it: a `429`/`rateLimited` answer blocks the
//! whole CA (for renewd's account there) until its `Retry-After`, for every certificate.
//! The known risk: a limit that is really per name set (a CA's duplicate-certificate
//! limit, say) also moves the other certificates off that CA until it ends: they order at
//! the next CA in their list, and those with no other CA wait (deferred, no failure).
//! Accepted: a CA that says "slow down" gets no request at all before it said it may.

mod account;
mod ari_check;
mod attempt;
mod breaker;
mod ca_runtime;
mod deferral;
mod error;
mod events;
mod failure;
mod health;
mod host;
mod job;
mod lease;
mod ledger;
mod options;
mod pending;
mod pool;
mod rate_limit;
mod selection;
mod setback;
mod success;

pub use error::IssuerError;
pub use events::{EventSender, HookKind, IssuerEvent, event_channel};
pub use host::{Deployment, FailureNotice, HostActions, NoHostActions, ServedCheck};
pub use ledger::log_outcome;
pub use options::{IssuerOptions, OutcomeHook, OutcomeKind};
pub use pool::{Issuer, IssuerParts, JobResult, Solvers};

#[doc(no_inline)]
pub use renewd_core::{Work, WorkDone};
