//! The observer seam: every request the client makes reports one [`RequestEvent`], so the
//! issuer can write it to the failure ledger.

use std::time::Duration;

use renewd_core::{OutcomeClass, Step};

use crate::error::Error;

/// One request's outcome. The issuer adds the CA, account, certificate and time and stores
/// it as a `renewd_core::RequestOutcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestEvent {
    /// Which request.
    pub step: Step,
    /// The request URL.
    pub url: String,
    /// The HTTP status, when a response arrived.
    pub http_status: Option<u16>,
    /// The problem document's `type`, when there was one.
    pub problem_type: Option<String>,
    /// `ok`, or the failure's class.
    pub class: OutcomeClass,
    /// How long the request took.
    pub latency: Duration,
    /// A short account of a failure.
    pub detail: Option<String>,
    /// The order the request belongs to, when known.
    pub order_url: Option<String>,
}

impl RequestEvent {
    pub(crate) fn ok(
        step: Step,
        url: &str,
        status: u16,
        latency: Duration,
        order_url: Option<&str>,
    ) -> RequestEvent {
        RequestEvent {
            step,
            url: url.to_string(),
            http_status: Some(status),
            problem_type: None,
            class: OutcomeClass::Ok,
            latency,
            detail: None,
            order_url: order_url.map(str::to_string),
        }
    }

    pub(crate) fn failed(
        step: Step,
        url: &str,
        error: &Error,
        latency: Duration,
        order_url: Option<&str>,
    ) -> RequestEvent {
        RequestEvent {
            step,
            url: url.to_string(),
            http_status: error.http_status(),
            problem_type: error.problem_type().map(str::to_string),
            class: error.class().outcome(),
            latency,
            detail: Some(error.to_string()),
            order_url: order_url.map(str::to_string),
        }
    }
}

/// Receives one event per request. Called inline: keep it quick (queue the event).
pub trait RequestObserver: Send + Sync {
    /// One request finished.
    fn observe(&self, event: RequestEvent);
}

/// The default observer: logs each event at debug level.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogObserver;

impl RequestObserver for LogObserver {
    fn observe(&self, event: RequestEvent) {
        tracing::debug!(
            step = %event.step,
            url = %event.url,
            status = ?event.http_status,
            class = %event.class,
            latency_ms = event.latency.as_millis() as u64,
            detail = event.detail.as_deref().unwrap_or(""),
            "ACME request"
        );
    }
}
