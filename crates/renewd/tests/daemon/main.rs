//! The `renewd` binary, driven as systemd and an operator would drive it — against test CAs
//! and pebble for the renewal engine end to end — plus the daemon's lifecycle in-process
//! behind a test engine (the seam).

// Tests may unwrap: a panic there is a failed test, which is the point.
#![allow(clippy::unwrap_used)]

mod check;
mod credentials;
mod engine_ari;
mod engine_failover;
mod engine_hooks;
mod engine_ledger;
mod engine_pebble;
mod engine_reload;
mod engine_renew;
mod engine_restart;
mod engine_run;
mod engine_served;
mod harness;
mod import;
mod inspect;
mod lab;
mod lifecycle;
mod logs;
mod metrics;
mod seam;

#[path = "../support/pki.rs"]
mod pki;
