//! What the CA did, counted for tests: [`Counts`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::faults::Endpoint;

/// Requests to one endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointCounts {
    /// Every request routed to the endpoint, faulted or not.
    pub total: u64,
    /// Those a fault rule fired for.
    pub faulted: u64,
}

/// A snapshot of everything the CA counted since it started (or since
/// [`TestCaHandle::reset_counts`](crate::TestCaHandle::reset_counts)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Counts {
    /// Accounts created by newAccount (not lookups of existing ones).
    pub accounts_created: u64,
    /// Orders created by newOrder.
    pub orders_created: u64,
    /// Of those, orders created with ARI `replaces` (RFC 9773 §5): renewals.
    #[serde(default)]
    pub orders_replacing: u64,
    /// Finalize requests whose signature checked out (including those refused as
    /// `orderNotReady` or `badCSR`, and those whose answer a fault replaced).
    pub finalize_requests: u64,
    /// Certificates issued.
    pub certificates_issued: u64,
    /// Certificates revoked.
    pub certificates_revoked: u64,
    /// Challenge validations that succeeded (auto-valid ones included).
    pub validations_passed: u64,
    /// Challenge validations that failed.
    pub validations_failed: u64,
    /// Nonces handed out.
    pub nonces_issued: u64,
    /// `badNonce` answers: unknown or reused nonces, plus those a fault rejected.
    pub nonces_rejected: u64,
    /// Fault rules that fired.
    pub faults_injected: u64,
    /// Requests per endpoint.
    pub requests: BTreeMap<Endpoint, EndpointCounts>,
}

impl Counts {
    /// Requests routed to `endpoint`.
    pub fn requests_to(&self, endpoint: Endpoint) -> u64 {
        self.requests.get(&endpoint).map_or(0, |c| c.total)
    }

    /// Requests to `endpoint` a fault fired for.
    pub fn faulted(&self, endpoint: Endpoint) -> u64 {
        self.requests.get(&endpoint).map_or(0, |c| c.faulted)
    }

    pub(crate) fn request(&mut self, endpoint: Endpoint, faulted: bool) {
        let c = self.requests.entry(endpoint).or_default();
        c.total += 1;
        if faulted {
            c.faulted += 1;
            self.faults_injected += 1;
        }
    }
}
