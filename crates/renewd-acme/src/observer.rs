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
    /// The client sends this request again at once: a `badNonce` answer, retried with the
    /// fresh nonce it carried (up to five times). `false` for every final outcome — a
    /// success, any other failure, and the refused nonce that ended the retries (the one
    /// that persisted). DESIGN: a `badNonce` reaches the ledger only when it persists, so
    /// the issuer records only events with `retried == false`.
    pub retried: bool,
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
            retried: false,
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
            retried: false,
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
            http_status = event.http_status,
            class = %event.class,
            latency_ms = event.latency.as_millis() as u64,
            retried = event.retried,
            detail = event.detail.as_deref().unwrap_or(""),
            "ACME request"
        );
    }
}
