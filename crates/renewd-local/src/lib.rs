//! What renewd does on the local host during a renewal: answering challenges, running the
//! operator's hooks, and checking what the reloaded server really serves. Every failure
//! here is [`FailureClass::Local`](renewd_core::FailureClass::Local) — never blamed on a CA.
//!
//! # Place in the flow
//!
//! The daemon builds [`ChallengeSolvers`] from the config at start (responders bind then,
//! so an address in use is a start-up error) and [`Hooks`] from `[hooks]`. For each order
//! the issuer takes the solver of the certificate's challenge type
//! ([`ChallengeSolvers::solver`], an `Arc<dyn renewd_acme::ChallengeSolver>`) and hands it
//! to `renewd_acme::Account::issue`; a solver's error reaches the issuer inside
//! `renewd_acme::Error::Caller` and can be downcast to [`Error`]. After installing a
//! certificate the issuer calls [`Hooks::deploy`] with a [`Deployed`], then
//! [`verify_served`] when the certificate has `verify_served` addresses; after a failed
//! renewal it calls [`Hooks::failure`] with a [`FailureNotice`] (when to do that is the
//! issuer's policy).
//!
//! # Parts
//!
//! - `http01`: [`Http01Responder`] — the standalone http-01 server (hyper, HTTP/1.1) on
//!   every `[http01] listen` address, one token table shared by all jobs.
//! - `webroot`: [`WebrootSolver`] — `ROOT/.well-known/acme-challenge/TOKEN`, written
//!   atomically with modes a web server can read.
//! - `dns01`: [`Dns01Hooks`] — `add_hook`, the propagation wait (`propagation_delay`, then
//!   `propagation_check` retried per [`CheckInterval`] within `propagation_timeout`),
//!   `remove_hook`.
//! - `tls_alpn`: [`TlsAlpn01Responder`] — rustls (ring) answering only `acme-tls/1`
//!   handshakes for published identifiers with the RFC 8737 certificate.
//! - `solvers`: [`ChallengeSolvers`] — the above, built from the config; on reload
//!   [`ChallengeSolvers::reconfigure`] keeps responders whose addresses did not change and
//!   replaces the others (orders under way keep the solver they took).
//! - `process`, `group`, `output`, `env`: [`HookRunner`] — argv without a shell, a
//!   cleared environment plus [`INHERITED`] variables and the event's `RENEWD_*`, stdin
//!   null, stdout/stderr tails ([`OutputTail`]), a time limit enforced on the hook's whole
//!   process group (SIGTERM, then SIGKILL after a grace); [`HookOutcome`].
//! - `hooks`: [`Hooks`] — the certificate's and the global deploy and failure hooks with
//!   their environments ([`Deployed::hook_env`], [`FailureNotice::hook_env`]).
//! - `served`: [`verify_served`] — connect to each address with the certificate's name as
//!   SNI and compare the served serial ([`Served`], [`ServedCheck`]).
//! - `error`: [`Error`].
//!
//! # Hook environments
//!
//! | hook | variables |
//! |---|---|
//! | deploy | `RENEWD_CERT_NAME`, `RENEWD_DOMAINS` (space-separated), `RENEWD_CA`, `RENEWD_SERIAL` (lower-case hex), `RENEWD_NOT_AFTER` (RFC 3339 UTC), `RENEWD_LIVE_DIR`, `RENEWD_CERT_PATH`, `RENEWD_KEY_PATH`, `RENEWD_FULLCHAIN_PATH`, `RENEWD_CHAIN_PATH` |
//! | failure | `RENEWD_CERT_NAME`, `RENEWD_DOMAINS`, `RENEWD_URGENCY`, `RENEWD_ERROR` (one line), `RENEWD_ERROR_CLASS`, `RENEWD_NOT_AFTER` (empty if none installed), `RENEWD_FAILURES` |
//! | dns-01 | `RENEWD_DNS_NAME`, `RENEWD_DNS_VALUE`, `RENEWD_DOMAIN` (`*.` kept), `RENEWD_TOKEN` |
//!
//! plus the [`INHERITED`] variables renewd itself has (`PATH` defaults to [`DEFAULT_PATH`]).

// Tests may unwrap: a panic is how they fail.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod answer;
mod dns01;
mod env;
mod error;
mod group;
mod hooks;
mod http01;
mod listen;
mod output;
mod process;
mod served;
mod solvers;
mod tls_alpn;
mod webroot;

pub use dns01::{CheckInterval, Dns01Hooks};
pub use env::{DEFAULT_PATH, INHERITED};
pub use error::Error;
pub use hooks::{Deployed, FailureNotice, Hooks};
pub use http01::Http01Responder;
pub use output::{OUTPUT_TAIL_BYTES, OutputTail};
pub use process::{DEFAULT_KILL_GRACE, HookOutcome, HookRunner};
pub use served::{Served, ServedCheck, verify_served};
pub use solvers::ChallengeSolvers;
pub use tls_alpn::TlsAlpn01Responder;
pub use webroot::WebrootSolver;
