//! Writing the failure ledger: every ACME request's [`RequestEvent`] becomes a
//! [`RequestOutcome`] with the CA, account and certificate added ([`LedgerObserver`]), and
//! local steps (install, deploy hook, challenge setup, abandoned orders) are noted the same
//! way ([`Ledger::note`]). A refused nonce the client sends again at once
//! ([`RequestEvent::retried`]) is no ledger row: a `badNonce` reaches the ledger only when
//! it persists. Every outcome, rows and retried ones alike, is then handed to the
//! [`OutcomeHook`] of the [`IssuerOptions`](crate::IssuerOptions) with its [`OutcomeKind`]
//! — by default [`log_outcome`], one structured log event with the fields the daemon maps
//! to journald (`cert_name`, `ca`, `step`, `order_url`, `http_status`, `problem_type`,
//! `class`); the daemon's hook also counts it in its metrics.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use renewd_acme::{RequestEvent, RequestObserver};
use renewd_core::{CaName, CertName, Clock, OutcomeClass, RequestOutcome, Step};
use renewd_store::StateStore;

use crate::options::{OutcomeHook, OutcomeKind};
use crate::pool::Inner;

/// Appends ledger rows for one CA (and one certificate, or none for probes and accounts).
#[derive(Clone)]
pub(crate) struct Ledger {
    store: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    hook: OutcomeHook,
    ca: CaName,
    cert: Option<CertName>,
    account: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("ca", &self.ca)
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

/// One local (non-request) ledger row.
#[derive(Debug, Clone)]
pub(crate) struct Note<'a> {
    pub(crate) step: Step,
    pub(crate) class: OutcomeClass,
    pub(crate) detail: Option<&'a str>,
    pub(crate) order_url: Option<&'a str>,
    pub(crate) latency: Duration,
}

impl Ledger {
    pub(crate) fn new(inner: &Inner, ca: CaName, cert: Option<CertName>) -> Ledger {
        Ledger {
            store: inner.store.clone(),
            clock: inner.clock.clone(),
            hook: inner.options.on_outcome.clone(),
            ca,
            cert,
            account: Arc::default(),
        }
    }

    /// Rows from now on name this account.
    pub(crate) fn set_account(&self, url: &str) {
        *self.account.lock().unwrap_or_else(PoisonError::into_inner) = Some(url.to_string());
    }

    /// The observer to give the ACME client.
    pub(crate) fn observer(&self) -> Arc<dyn RequestObserver> {
        Arc::new(LedgerObserver(self.clone()))
    }

    /// Appends a local row.
    pub(crate) fn note(&self, note: Note<'_>) {
        self.append(RequestOutcome {
            time: self.clock.now(),
            ca: self.ca.clone(),
            account: self.account(),
            cert: self.cert.clone(),
            step: note.step,
            http_status: None,
            problem_type: None,
            class: note.class,
            latency: note.latency,
            order_url: note.order_url.map(str::to_string),
            detail: note.detail.map(str::to_string),
        });
    }

    fn account(&self) -> Option<String> {
        self.account
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn append(&self, row: RequestOutcome) {
        if let Err(e) = self.store.append_outcome(&row) {
            tracing::error!(ca = %row.ca, step = %row.step, error = %e,
                "could not append to the failure ledger");
        }
        (self.hook)(&row, OutcomeKind::Recorded);
    }
}

/// The default [`OutcomeHook`]: one log event per outcome, with every field the row has —
/// `DEBUG` when it succeeded or is retried at once, `WARN` when it failed.
pub fn log_outcome(row: &RequestOutcome, kind: OutcomeKind) {
    let cert_name = row.cert.as_ref().map(CertName::as_str);
    let latency_ms = u64::try_from(row.latency.as_millis()).unwrap_or(u64::MAX);
    let detail = row.detail.as_deref().unwrap_or("");
    macro_rules! row_event {
        ($level:expr, $msg:literal) => {
            tracing::event!($level,
                cert_name, ca = %row.ca, step = %row.step,
                order_url = row.order_url.as_deref(), http_status = row.http_status,
                problem_type = row.problem_type.as_deref(), class = %row.class,
                latency_ms, detail, $msg)
        };
    }
    match row.class {
        _ if kind == OutcomeKind::Retried => row_event!(
            tracing::Level::DEBUG,
            "ACME request refused; retried at once"
        ),
        OutcomeClass::Ok => row_event!(tracing::Level::DEBUG, "ACME request"),
        OutcomeClass::Local => row_event!(tracing::Level::WARN, "local step failed"),
        _ => row_event!(tracing::Level::WARN, "ACME request failed"),
    }
}

/// The [`RequestObserver`] of one job at one CA.
struct LedgerObserver(Ledger);

impl RequestObserver for LedgerObserver {
    fn observe(&self, event: RequestEvent) {
        let ledger = &self.0;
        let row = RequestOutcome {
            time: ledger.clock.now(),
            ca: ledger.ca.clone(),
            account: ledger.account(),
            cert: ledger.cert.clone(),
            step: event.step,
            http_status: event.http_status,
            problem_type: event.problem_type,
            class: event.class,
            latency: event.latency,
            order_url: event.order_url,
            detail: event.detail,
        };
        if event.retried {
            (ledger.hook)(&row, OutcomeKind::Retried);
        } else {
            ledger.append(row);
        }
    }
}
