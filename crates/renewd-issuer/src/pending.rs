//! Pending orders in the store: [`StoreSink`] persists the record the ACME flow hands over
//! before any challenge and before finalize (key file first, mode 0600, then the row), and
//! [`resume_record`] rebuilds the ACME client's record from the row, the key file and the
//! config; [`names_changed`] says when the config's names no longer match the order's CSR. The row is cleared by the job — after the certificate is installed, or when the
//! order can no longer complete — never by the flow's `finished` callback, so a crash
//! between download and install resumes (and re-downloads) the same order.

use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use renewd_acme::{BoxError, BoxFuture, Identifier, PendingOrder as AcmeRecord, PendingOrderSink};
use renewd_config::{CaConfig, CertConfig};
use renewd_core::{CaName, CertName, Clock, Step};
use renewd_store::{PendingKeys, PendingOrder, StateStore};
use tokio::sync::watch;

use crate::setback::Setback;

/// Persists one job's pending order at one CA.
pub(crate) struct StoreSink {
    store: Arc<dyn StateStore>,
    keys: PendingKeys,
    clock: Arc<dyn Clock>,
    cert: CertName,
    ca: CaName,
    saved: watch::Sender<bool>,
    order_url: Mutex<Option<String>>,
}

impl StoreSink {
    /// A sink; `already_saved` when the order being driven is already in the store (resume).
    pub(crate) fn new(
        store: Arc<dyn StateStore>,
        keys: PendingKeys,
        clock: Arc<dyn Clock>,
        cert: CertName,
        ca: CaName,
        already_saved: Option<&str>,
    ) -> StoreSink {
        StoreSink {
            store,
            keys,
            clock,
            cert,
            ca,
            saved: watch::Sender::new(already_saved.is_some()),
            order_url: Mutex::new(already_saved.map(str::to_string)),
        }
    }

    /// Resolves once the order is durably in the store (at once when it already was).
    pub(crate) async fn wait_saved(&self) {
        let mut rx = self.saved.subscribe();
        // The sender lives as long as `self`, so the wait ends only by a save.
        let _ = rx.wait_for(|saved| *saved).await;
    }

    /// The order URL, once saved.
    pub(crate) fn order_url(&self) -> Option<String> {
        self.order_url
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn save_blocking(&self, order: &AcmeRecord) -> Result<(), Setback> {
        let csr_der = URL_SAFE_NO_PAD
            .decode(order.csr.trim())
            .map_err(|e| Setback::local(Step::Finalize, format!("the pending order's CSR: {e}")))?;
        let key_path = self
            .keys
            .write(&self.cert, &order.key_pem)
            .map_err(|e| Setback::local(Step::Finalize, format!("saving the order key: {e}")))?;
        let record = PendingOrder {
            ca: self.ca.clone(),
            account_url: order.account_url.clone(),
            order_url: order.order_url.clone(),
            key_path: key_path.clone(),
            csr_der,
            created_at: self.clock.now(),
        };
        let previous = self
            .store
            .cert_state(&self.cert)
            .ok()
            .flatten()
            .and_then(|s| s.pending);
        if let Err(e) = self.store.set_pending_order(&self.cert, &record) {
            let _ = self.keys.remove(&key_path);
            return Err(Setback::local(
                Step::Finalize,
                format!("recording the pending order: {e}"),
            ));
        }
        // A record this one replaced (the job abandons orders before creating new ones, so
        // this is only a leftover): its key goes too.
        if let Some(old) = previous.filter(|p| p.key_path != key_path)
            && let Err(e) = self.keys.remove(&old.key_path)
        {
            tracing::warn!(cert_name = %self.cert, error = %e, "could not remove an old order key");
        }
        Ok(())
    }
}

impl PendingOrderSink for StoreSink {
    fn save<'a>(&'a self, order: &'a AcmeRecord) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            self.save_blocking(order)
                .map_err(|s| -> BoxError { s.message.into() })?;
            tracing::info!(cert_name = %self.cert, ca = %self.ca, order_url = %order.order_url,
                "pending order saved before finalize");
            *self
                .order_url
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(order.order_url.clone());
            self.saved.send_replace(true);
            Ok(())
        })
    }

    fn finished<'a>(&'a self, order_url: &'a str) -> BoxFuture<'a, Result<(), BoxError>> {
        // The job clears the record once the outcome is safe (installed, or dead).
        Box::pin(async move {
            tracing::debug!(cert_name = %self.cert, order_url, "order finished");
            Ok(())
        })
    }
}

/// Why a stored pending order no longer fits the certificate's config, if it does not: the
/// names its CSR asks for differ from the configured domains (the config changed since the
/// order was made). Finishing it would only bring a certificate that fails the name check.
pub(crate) fn names_changed(pending: &PendingOrder, cert: &CertConfig) -> Option<String> {
    let ordered = match renewd_acme::csr_dns_names(&pending.csr_der) {
        Ok(names) => names,
        Err(e) => return Some(format!("its CSR cannot be read: {e}")),
    };
    let mut configured: Vec<String> = cert
        .domains
        .iter()
        .map(|d| d.as_str().to_ascii_lowercase())
        .collect();
    configured.sort();
    configured.dedup();
    (ordered != configured).then(|| {
        format!(
            "the certificate's names changed since it was ordered (ordered {}; configured {})",
            ordered.join(", "),
            configured.join(", ")
        )
    })
}

/// The ACME client's record of a stored pending order: the key from its file, the CSR from
/// the row, the rest from the config as it is now.
pub(crate) fn resume_record(
    pending: &PendingOrder,
    keys: &PendingKeys,
    directory_url: &str,
    cert: &CertConfig,
    ca: &CaConfig,
) -> Result<AcmeRecord, Setback> {
    let key_pem = keys
        .read(pending)
        .map_err(|e| Setback::local(Step::PollOrder, format!("the pending order's key: {e}")))?;
    Ok(AcmeRecord {
        directory_url: directory_url.to_string(),
        account_url: pending.account_url.clone(),
        order_url: pending.order_url.clone(),
        identifiers: cert
            .domains
            .iter()
            .map(|d| Identifier::dns(d.as_str()))
            .collect(),
        key_type: cert.key,
        key_pem,
        csr: URL_SAFE_NO_PAD.encode(&pending.csr_der),
        challenge: cert.challenge,
        profile: cert.profile_at(ca).map(str::to_string),
        preferred_chain: cert.preferred_chain_at(ca).map(str::to_string),
        created: pending.created_at,
    })
}
