//! The scheduler loop against the real SQLite store in a temporary directory, under
//! tokio's paused clock: virtual days pass in milliseconds and every deadline is checked
//! to the millisecond.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod commands;
mod dispatch;
mod idle;
mod inventory;
mod support;
