//! What the scheduler is told: the policy shared by every certificate and one plan per
//! configured certificate. The binary builds both from the validated config.

use std::sync::Arc;
use std::time::Duration;

use renewd_core::{CaName, CertName};

/// The scheduling policy (`[renewal]` in the config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SchedulePolicy {
    /// Below this share of the lifetime remaining, a certificate is `urgent`.
    pub urgent_remaining: f64,
    /// Below this share (or once expired), it is `critical`.
    pub critical_remaining: f64,
    /// Whether the CA's ARI window decides the due time and ARI checks are scheduled.
    pub ari: bool,
}

impl Default for SchedulePolicy {
    fn default() -> Self {
        Self {
            urgent_remaining: 0.16,
            critical_remaining: 0.07,
            ari: true,
        }
    }
}

/// One configured certificate, as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPlan {
    /// Its name.
    pub name: CertName,
    /// The CAs it may be issued by, in order of preference. Shared: certificates with the
    /// same list may hold the same `Arc` (the scheduler shares equal lists itself).
    pub cas: Arc<[CaName]>,
    /// Renew this long before notAfter, overriding both ARI and the share of the lifetime.
    pub renew_before: Option<Duration>,
}

impl CertPlan {
    /// A plan renewed by the default rules.
    pub fn new(name: CertName, cas: impl Into<Arc<[CaName]>>) -> Self {
        Self {
            name,
            cas: cas.into(),
            renew_before: None,
        }
    }

    /// The same plan with an explicit `renew_before`.
    pub fn renew_before(mut self, before: Duration) -> Self {
        self.renew_before = Some(before);
        self
    }
}
