//! A test ACME server of our own, with a fault plan: the CA failures renewd exists for,
//! reproducible on demand.
//!
//! Debian's pebble cannot fail, delay, send `Retry-After`, or speak ARI and profiles. This
//! crate can. It implements enough of RFC 8555 to issue real certificates — directory,
//! nonces, accounts (ES256 or RS256 JWS, EAB, key change), orders with profiles and ARI `replaces`,
//! authorizations and challenges (auto-valid, or real http-01 / tls-alpn-01 against loopback
//! ports and dns-01 through a callback), finalize, download with an alternate chain,
//! revocation — plus ARI (RFC 9773) renewal windows, and a [`FaultPlan`] that makes any
//! endpoint answer an error status (before *or after* really processing the request), an
//! HTML gateway page, garbage, a delay, a hang, a dropped connection, a 429 with
//! `Retry-After`, a `processing` order, a rejected nonce, or a certificate that does not fit
//! its order.
//!
//! It depends on no other renewd crate: it is the independent peer renewd is tested against.
//!
//! # Use in tests
//!
//! ```no_run
//! # async fn demo() -> Result<(), renewd_testca::TestCaError> {
//! use renewd_testca::{Endpoint, Fault, FaultPlan, TestCa};
//! let ca = TestCa::builder().start().await?;
//! ca.set_fault_plan(
//!     FaultPlan::new().rule(Endpoint::Finalize, Fault::status(504).after_processing().times(1)),
//! )?;
//! // point a client at ca.directory_url(), trusting ca.root_pem() …
//! assert_eq!(ca.counts().certificates_issued, 0);
//! # Ok(()) }
//! ```
//!
//! # Design overview
//!
//! - [`TestCa`] / [`TestCaBuilder`] (`config`) set it up; [`TestCaHandle`] (`handle`) drives
//!   it: URLs, trust roots, [`Counts`], fault plan, ARI overrides, shutdown.
//! - `server`: the HTTPS listener (rustls with ring, hyper 1 auto HTTP/1.1 + HTTP/2) and the
//!   fault plan applied around each request; `router`: URL layout and the directory.
//! - `jws`, `jwk`, `nonce`, `eab`: request authentication. `accounts`, `orders`, `authz`,
//!   `validation`, `csr`, `certs`: the ACME objects. `issuance`: the generated
//!   hierarchies and leaf signing. `ari`: CertIDs and renewal windows.
//! - `faults` / `fault_toml`: the plan as data (TOML, JSON, builders); `fault_engine`: which
//!   rule fires, with a seeded random source, and the answers faults give.
//! - `management`: a small plain-HTTP JSON endpoint for scripts and the binary.
//! - `src/bin/renewd-testca.rs`: the binary (`--fault-plan FILE`, reloaded on SIGHUP).
//!
//! Two trust roots, on purpose: [`TestCaHandle::root_pem`] is the HTTPS trust root (a
//! client adds it to reach the CA), [`TestCaHandle::issuing_roots_pem`] are the roots issued
//! chains lead to.

mod accounts;
mod ari;
mod authz;
mod ca;
mod certs;
mod config;
mod counts;
mod csr;
mod eab;
mod error;
mod fault_engine;
mod fault_toml;
mod faults;
mod handle;
mod issuance;
mod jwk;
mod jws;
mod management;
mod nonce;
mod orders;
mod random;
mod response;
mod router;
mod server;
mod state;
mod validation;

pub use ari::{AriOverride, AriTarget, SuggestedWindow, cert_id, cert_id_of};
pub use config::{ChallengeMode, Dns01Callback, Profile, TestCaBuilder, Validators};
pub use counts::{Counts, EndpointCounts};
pub use error::{RuleError, TestCaError};
pub use faults::{
    Action, Endpoint, EndpointMatch, Fault, FaultBody, FaultPlan, HANG_LIMIT, Mismatch, Rule, When,
};
pub use handle::{IssuedCertificate, TestCa, TestCaHandle};
