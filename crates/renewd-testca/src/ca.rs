//! The shared context every handler sees: [`Ca`], and one request as handlers read it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ari::AriOverride;
use crate::config::TestCaConfig;
use crate::counts::Counts;
use crate::fault_engine::FaultEngine;
use crate::issuance::Authority;
use crate::jws::{self, KeyRule, Verified};
use crate::nonce::NoncePool;
use crate::response::Problem;
use crate::state::{AccountStatus, State, account_id_of_kid};

/// The running CA.
#[derive(Debug)]
pub(crate) struct Ca {
    pub config: TestCaConfig,
    /// Where the ACME listener is bound.
    pub acme_addr: std::net::SocketAddr,
    pub authority: Authority,
    pub nonces: NoncePool,
    state: Mutex<State>,
    faults: Mutex<FaultEngine>,
    counts: Mutex<Counts>,
    ari: Mutex<Vec<AriOverride>>,
    /// Cancelled when the CA stops; every task watches it.
    pub shutdown: CancellationToken,
    /// Background work (validations, delayed issuance, connections).
    pub tasks: TaskTracker,
}

/// Locks `m`, also after a panic elsewhere: each critical section leaves the data
/// consistent before anything in it can panic, so the data is still good.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Ca {
    pub fn new(config: TestCaConfig, authority: Authority, acme_addr: std::net::SocketAddr) -> Ca {
        let faults = FaultEngine::new(config.fault_plan.clone());
        Ca {
            config,
            acme_addr,
            authority,
            nonces: NoncePool::default(),
            state: Mutex::default(),
            faults: Mutex::new(faults),
            counts: Mutex::default(),
            ari: Mutex::default(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
    pub fn faults(&self) -> MutexGuard<'_, FaultEngine> {
        lock(&self.faults)
    }
    pub fn counts(&self) -> MutexGuard<'_, Counts> {
        lock(&self.counts)
    }
    /// Replaces the fault plan: counts restart, the random source is reseeded.
    pub fn set_fault_plan(&self, plan: crate::faults::FaultPlan) {
        *self.faults() = FaultEngine::new(plan);
    }
    pub fn ari_overrides(&self) -> MutexGuard<'_, Vec<AriOverride>> {
        lock(&self.ari)
    }

    /// A new nonce, counted.
    pub fn issue_nonce(&self) -> String {
        self.counts().nonces_issued += 1;
        self.nonces.issue()
    }

    /// Runs `fut` in the background until it ends or the CA stops.
    pub fn spawn(self: &Arc<Self>, fut: impl Future<Output = ()> + Send + 'static) {
        let token = self.shutdown.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = fut => {}
                () = token.cancelled() => {}
            }
        });
    }

    /// Sleeps `delay`, or less when the CA stops first.
    pub async fn sleep(&self, delay: Duration) {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = self.shutdown.cancelled() => {}
        }
    }

    /// Verifies a signed request (see [`jws::verify_request`]); `kid`s are looked up among
    /// the accounts, and a deactivated account is `unauthorized`.
    pub fn verify(&self, req: &Incoming, rule: KeyRule) -> Result<Verified, Problem> {
        let content_type = req
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type.starts_with("application/jose+json") {
            return Err(Problem::new(
                http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "malformed",
                "Content-Type must be application/jose+json",
            ));
        }
        let result = jws::verify_request(&req.body, &req.url(), rule, &self.nonces, |kid| {
            let id = account_id_of_kid(kid)
                .ok_or_else(|| Problem::account_does_not_exist(format!("no account {kid}")))?;
            let state = self.state();
            let account = state
                .accounts
                .get(&id)
                .ok_or_else(|| Problem::account_does_not_exist(format!("no account {kid}")))?;
            if account.status != AccountStatus::Valid {
                return Err(Problem::unauthorized("account is deactivated"));
            }
            Ok((id, account.key.clone()))
        });
        if let Err(p) = &result
            && p.kind == "badNonce"
        {
            self.counts().nonces_rejected += 1;
        }
        result
    }
}

/// One request, read in full, as handlers see it.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub method: Method,
    pub path: String,
    /// `https://HOST[:PORT]` as the client addressed us.
    pub base: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// A `processing` fault for this finalize: (duration, Retry-After).
    pub hold: Option<(Duration, Duration)>,
    /// A `wrong_certificate` fault for this download.
    pub mismatch: Option<crate::faults::Mismatch>,
}

impl Incoming {
    /// The full URL the request was sent to (what the JWS `url` must say).
    pub fn url(&self) -> String {
        format!("{}{}", self.base, self.path)
    }

    /// The URL of `path` on this CA.
    pub fn url_of(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}
