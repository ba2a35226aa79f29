//! The `renewd` binary, driven as systemd and an operator would drive it, plus the daemon's
//! lifecycle in-process behind a test engine (the seam the real engine will use).

// Tests may unwrap: a panic there is a failed test, which is the point.
#![allow(clippy::unwrap_used)]

mod check;
mod harness;
mod import;
mod inspect;
mod lifecycle;
mod logs;
mod metrics;
mod seam;

#[path = "../support/pki.rs"]
mod pki;
