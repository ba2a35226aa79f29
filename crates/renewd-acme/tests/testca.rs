//! renewd-acme against renewd-testca, our own ACME server with a fault plan: every failure
//! the client exists to survive, asserted on the CA's own books (`counts()`: orders
//! created, certificates issued, finalize requests, requests per endpoint), not only on
//! the client's result. Each test starts its own CA on a free loopback port.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "testca/accounts_profiles.rs"]
mod accounts_profiles;
#[path = "testca/ari.rs"]
mod ari;
#[path = "testca/classes.rs"]
mod classes;
#[path = "testca/common.rs"]
mod common;
#[path = "testca/finalize.rs"]
mod finalize;
#[path = "testca/lifecycle.rs"]
mod lifecycle;
#[path = "testca/nonces.rs"]
mod nonces;
#[path = "testca/polling.rs"]
mod polling;
#[path = "testca/rejections.rs"]
mod rejections;
