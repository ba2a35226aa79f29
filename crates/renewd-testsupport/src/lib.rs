//! Dev-only support for renewd's tests: real peers on loopback, started per test.
//!
//! - [`Pebble`]: Let's Encrypt's test ACME server (Debian's `pebble` package) together with
//!   `pebble-challtestsrv` as its DNS server, each on free loopback ports, with a throwaway
//!   TLS root generated at run time. Ready when pebble's log says so; killed on drop.
//! - [`ChildGuard`]: a child process that is killed when the guard drops (and, on Linux,
//!   when the thread that started it dies — `PR_SET_PDEATHSIG` — so a killed test run
//!   leaves no orphans; start peers from the test's own thread or a runtime worker, not
//!   from `spawn_blocking`, whose threads exit when idle).
//! - [`free_port`]: a free loopback TCP port.
//! - [`verify_chain`]: an issued chain checked as a TLS client would (path to the root,
//!   names, exact SANs) and against the certificate key; [`leaf_der`] for its leaf.
//! - [`Tmpfs`] and [`fill_until_full`]: a small file system to fill up or remount
//!   read-only (root only).
//!
//! Every helper panics with a clear message on failure: this crate only runs inside tests.
#![allow(clippy::unwrap_used)]

mod chain;
mod child;
mod https;
mod pebble;
mod tls;
mod tmpfs;

pub use chain::{leaf_der, verify_chain};
pub use child::{ChildGuard, free_port};
pub use pebble::{Pebble, PebbleOptions};
pub use tls::ThrowawayTls;
pub use tmpfs::{Tmpfs, fill_until_full};
