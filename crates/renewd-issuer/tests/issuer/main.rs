//! Integration tests of the issuer against test CAs (`renewd-testca`, two instances are two
//! CAs) and a real SQLite store; time-driven behaviour (cool-downs, rate limits, back-off)
//! runs on a `ManualClock`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod accounts;
mod ari;
mod bad_certificate;
mod breaker;
mod concurrency;
mod dead_orders;
mod failover;
mod hooks;
mod install_fs;
mod ledger;
mod pending;
mod rate_limits;
mod reload;
