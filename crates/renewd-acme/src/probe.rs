//! The health probe before an order: GET the directory and HEAD newNonce within a short
//! overall limit. Each request reports a `probe` event.

use std::time::Duration;

use renewd_core::Step;
use tokio::time::Instant;

use crate::client::AcmeClient;
use crate::error::Error;
use crate::http::TransportErrorKind;

/// A successful probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeReport {
    /// The whole probe.
    pub latency: Duration,
    /// GET directory.
    pub directory_latency: Duration,
    /// HEAD newNonce.
    pub nonce_latency: Duration,
}

impl AcmeClient {
    /// Probes the CA: the directory must answer 200 with valid JSON naming the required
    /// resources, and newNonce must give a nonce, all within `settings.probe_timeout`.
    /// A failure's [`Error::url`] says which part failed; its class says how.
    pub async fn probe(&self) -> Result<ProbeReport, Error> {
        let limit = self.settings().probe_timeout;
        let started = Instant::now();
        let remaining = |url: &str| {
            limit
                .checked_sub(started.elapsed())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| Error::Transport {
                    step: Step::Probe,
                    url: url.to_string(),
                    kind: TransportErrorKind::Timeout,
                    message: format!("the probe took longer than {limit:?}"),
                })
        };
        let directory = self
            .fetch_directory(Step::Probe, Some(remaining(self.directory_url())?))
            .await?;
        let directory_latency = started.elapsed();
        self.set_directory(directory.clone()).await;
        let nonce_started = Instant::now();
        self.head_nonce(
            Step::Probe,
            &directory.new_nonce,
            Some(remaining(&directory.new_nonce)?),
        )
        .await?;
        Ok(ProbeReport {
            latency: started.elapsed(),
            directory_latency,
            nonce_latency: nonce_started.elapsed(),
        })
    }
}
