//! A running test CA: [`TestCa`] to build one, [`TestCaHandle`] to drive and stop it.

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::ari::AriOverride;
use crate::ca::Ca;
use crate::config::{TestCaBuilder, TestCaConfig};
use crate::counts::Counts;
use crate::error::TestCaError;
use crate::faults::FaultPlan;
use crate::issuance::Authority;

/// The test ACME server. Start one with `TestCa::builder()…start().await`.
#[derive(Debug)]
pub struct TestCa;

impl TestCa {
    /// A builder with the defaults: loopback listeners on free ports, 90-day certificates,
    /// profiles `classic` and `shortlived`, auto-valid challenges, no faults.
    pub fn builder() -> TestCaBuilder {
        TestCaBuilder::default()
    }
}

/// One issued certificate, as tests see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IssuedCertificate {
    /// Serial number, lower-case hex without leading zeros.
    pub serial: String,
    /// ARI CertID (RFC 9773 §4.1).
    pub cert_id: String,
    /// The DNS names, in order order.
    pub names: Vec<String>,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
    /// Whether it was revoked.
    pub revoked: bool,
    /// The URL of the order that names this certificate in `replaces` (ARI), if any.
    #[serde(default)]
    pub replaced_by: Option<String>,
    /// The default chain (leaf, intermediate) as PEM.
    pub chain_pem: String,
}

pub(crate) fn certificates(ca: &Ca) -> Vec<IssuedCertificate> {
    ca.state()
        .certs
        .values()
        .map(|c| IssuedCertificate {
            serial: c.issued.serial_hex.clone(),
            cert_id: c.issued.cert_id.clone(),
            names: c.names.clone(),
            not_before: c.issued.not_before,
            not_after: c.issued.not_after,
            revoked: c.revoked.is_some(),
            replaced_by: c
                .replaced_by
                .map(|order| format!("https://{}/acme/order/{order}", ca.acme_addr)),
            chain_pem: c.issued.chains.first().cloned().unwrap_or_default(),
        })
        .collect()
}

/// A running test CA. Dropping it stops the CA (connections are cut, tasks end); use
/// [`TestCaHandle::shutdown`] to also wait for that.
#[derive(Debug)]
pub struct TestCaHandle {
    ca: Arc<Ca>,
    management_addr: Option<SocketAddr>,
}

pub(crate) async fn start(config: TestCaConfig) -> Result<TestCaHandle, TestCaError> {
    let authority = Authority::generate()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(TestCaError::bind(config.listen))?;
    let acme_addr = listener
        .local_addr()
        .map_err(TestCaError::bind(config.listen))?;
    let management = match config.management {
        Some(addr) => {
            let l = TcpListener::bind(addr)
                .await
                .map_err(TestCaError::bind(addr))?;
            let bound = l.local_addr().map_err(TestCaError::bind(addr))?;
            Some((l, bound))
        }
        None => None,
    };
    let ca = Arc::new(Ca::new(config, authority, acme_addr));
    let tls = crate::server::tls_config(&ca)?;
    ca.spawn(crate::server::run(Arc::clone(&ca), listener, tls));
    let management_addr = management.map(|(listener, addr)| {
        ca.spawn(crate::management::run(Arc::clone(&ca), listener));
        addr
    });
    Ok(TestCaHandle {
        ca,
        management_addr,
    })
}

impl TestCaHandle {
    /// `https://ADDR` of the ACME listener.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.ca.acme_addr)
    }

    /// The directory URL, `https://ADDR/dir`.
    pub fn directory_url(&self) -> String {
        format!("{}/dir", self.base_url())
    }

    /// The ACME listener's address.
    pub fn acme_addr(&self) -> SocketAddr {
        self.ca.acme_addr
    }

    /// `http://ADDR` of the management endpoint, if one runs.
    pub fn management_url(&self) -> Option<String> {
        self.management_addr.map(|a| format!("http://{a}"))
    }

    /// The HTTPS trust root (PEM): what a client adds as an extra trust root to talk to
    /// this CA. It signs only the server certificate, not issued certificates.
    pub fn root_pem(&self) -> String {
        self.ca.authority.tls_root_pem.clone()
    }

    /// The issuing roots (PEM): `[primary, alternate]`; issued chains end below them.
    pub fn issuing_roots_pem(&self) -> Vec<String> {
        self.ca
            .authority
            .hierarchies
            .iter()
            .map(|h| h.root_pem.clone())
            .collect()
    }

    /// What the CA has done so far.
    pub fn counts(&self) -> Counts {
        self.ca.counts().clone()
    }

    /// Zeroes the counts.
    pub fn reset_counts(&self) {
        *self.ca.counts() = Counts::default();
    }

    /// Replaces the fault plan (remaining counts reset, random source reseeded).
    pub fn set_fault_plan(&self, plan: FaultPlan) -> Result<(), TestCaError> {
        plan.validate()?;
        self.ca.set_fault_plan(plan);
        Ok(())
    }

    /// The fault plan in force.
    pub fn fault_plan(&self) -> FaultPlan {
        self.ca.faults().plan().clone()
    }

    /// Adds an ARI override; later ones win over earlier ones for the same certificates.
    pub fn set_ari_window(&self, window: AriOverride) {
        self.ca.ari_overrides().push(window);
    }

    /// Drops every ARI override: default windows again.
    pub fn clear_ari_overrides(&self) {
        self.ca.ari_overrides().clear();
    }

    /// Ends the hold of every order kept `processing` (a plan's `processing_for`): each is
    /// issued now and returns `valid` to the next poll (`invalid` if issuing fails). Tests
    /// that must act while an order is processing hold it for an hour and release it here,
    /// instead of racing a short hold. Returns how many orders were released.
    pub fn release_processing(&self) -> usize {
        crate::orders::release_processing(&self.ca)
    }

    /// The certificates issued so far.
    pub fn certificates(&self) -> Vec<IssuedCertificate> {
        certificates(&self.ca)
    }

    /// Stops serving and waits until every connection and background task has ended.
    pub async fn shutdown(self) {
        self.ca.shutdown.cancel();
        self.ca.tasks.close();
        self.ca.tasks.wait().await;
    }
}

impl Drop for TestCaHandle {
    fn drop(&mut self) {
        self.ca.shutdown.cancel();
    }
}
