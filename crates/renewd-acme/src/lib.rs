//! renewd's ACME client (RFC 8555), with ARI (RFC 9773) and profiles.
//!
//! # Place in the flow
//!
//! The issuer (`renewd-issuer`) owns one [`AcmeClient`] per configured CA and, per renewal
//! job, an [`Account`] reporting to a job-specific [`RequestObserver`] (the failure ledger).
//! It calls [`AcmeClient::probe`] before an order, then [`Account::issue`] (or
//! [`Account::resume`] for a persisted [`PendingOrder`]). Every failure arrives as one
//! [`Error`] whose [`Error::class`] is the `renewd_core::FailureClass` everything
//! downstream reads.
//!
//! # Parts
//!
//! - `http`: the [`HttpClient`] seam and [`HyperClient`] (hyper 1, hyper-rustls with ring,
//!   system roots plus extra PEM roots, connect and whole-request timeouts).
//! - `client`: [`AcmeClient`] — the cached [`Directory`], the nonce pool fed by every
//!   response, `badNonce` retries, one [`RequestEvent`] per request.
//! - `jws`: [`AccountKey`] (ES256, PKCS#8 PEM files mode 0600), flattened JWS, RFC 7638
//!   thumbprints, [`ExternalAccountKey`] (EAB, HS256).
//! - `account`: [`AcmeClient::new_account`], [`AcmeClient::find_account`],
//!   [`Account::update_contact`], [`Account::key_rollover`], [`Account::deactivate`].
//! - `order`: [`Account::new_order`] (identifiers, `profile`, `replaces`), authorizations,
//!   challenges, [`Account::finalize`], polling that honours `Retry-After` (clamped) and
//!   otherwise starts short and backs off ([`PollPolicy`]).
//! - `challenge`: key authorizations and the http-01 / dns-01 / tls-alpn-01 answers
//!   ([`ChallengeAnswer`]).
//! - `keys`: [`CertificateKey`] (P-256, P-384, RSA 2048/3072/4096) and CSRs.
//! - `certificate`: download with alternate chains, preferred-chain choice, revocation.
//! - `ari`: [`CertId`] and [`AcmeClient::renewal_info`].
//! - `flow` and `finalize`: [`Account::issue`] / [`Account::resume`] — one order at one CA,
//!   with the pending-order record handed to a [`PendingOrderSink`] before finalize, and
//!   finalize recovery driven by the order's state under one deadline.
//! - `probe`: [`AcmeClient::probe`].
//! - `error`: [`Error`] and its classification.

mod account;
mod ari;
mod certificate;
mod challenge;
mod client;
mod error;
mod finalize;
mod flow;
mod headers;
mod http;
mod jws;
mod keyfile;
mod keys;
mod nonce;
mod observer;
mod order;
mod poll;
mod probe;
#[cfg(test)]
mod saved_order_tests;
#[cfg(test)]
mod scripted_recovery_tests;
#[cfg(test)]
mod scripted_tests;
mod types;

pub use account::{Account, NewAccount};
pub use ari::{CertId, RenewalInfo};
pub use certificate::{CertificateChain, DownloadedChains};
pub use challenge::{
    ACME_TLS_ALPN_PROTOCOL, ChallengeAnswer, ChallengeProof, TlsAlpnCertificate, dns01_record_name,
    dns01_txt_value, http01_path, key_authorization, tls_alpn01_certificate,
};
pub use client::{AcmeClient, ClientSettings, Fetched};
pub use error::{BoxError, Error};
pub use flow::{
    ChallengeSolver, IssueRequest, Issued, MemoryPendingOrders, PendingOrder, PendingOrderSink,
};
pub use headers::{body_snippet, parse_links, parse_retry_after};
pub use http::{
    BoxFuture, HttpClient, HttpSettings, HyperClient, TransportError, TransportErrorKind,
};
pub use jws::{AccountKey, ExternalAccountKey};
pub use keys::{CertificateKey, csr_dns_names};
pub use observer::{LogObserver, RequestEvent, RequestObserver};
pub use order::NewOrder;
pub use poll::PollPolicy;
pub use probe::ProbeReport;
pub use types::{
    ACME_ERROR_PREFIX, AccountResource, Authorization, AuthorizationStatus, Challenge,
    ChallengeStatus, Directory, DirectoryMeta, Identifier, Order, OrderStatus, Problem, Subproblem,
};
