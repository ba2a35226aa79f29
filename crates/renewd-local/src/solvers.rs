//! The challenge solvers the configuration declares, started once by the daemon and
//! shared by every renewal job.

use std::net::SocketAddr;
use std::sync::Arc;

use renewd_acme::ChallengeSolver;
use renewd_config::{Config, Http01Config};
use renewd_core::ChallengeType;
use tokio_util::sync::CancellationToken;

use crate::dns01::Dns01Hooks;
use crate::error::Error;
use crate::http01::Http01Responder;
use crate::process::HookRunner;
use crate::tls_alpn::TlsAlpn01Responder;
use crate::webroot::WebrootSolver;

/// One solver per configured challenge type: `[http01]` (standalone responder or webroot),
/// `[dns01]` (hooks), `[tls_alpn01]` (responder). Responders bind in
/// [`ChallengeSolvers::start`], so an address in use shows at daemon start, not at the
/// first renewal; they stop when the token given there is cancelled. (`renewd check`
/// validates the config without starting anything.)
#[derive(Debug, Clone, Default)]
pub struct ChallengeSolvers {
    http01: Option<Http01>,
    dns01: Option<Arc<Dns01Hooks>>,
    tls_alpn01: Option<Arc<TlsAlpn01Responder>>,
}

#[derive(Debug, Clone)]
enum Http01 {
    Standalone(Arc<Http01Responder>),
    Webroot(Arc<WebrootSolver>),
}

impl ChallengeSolvers {
    /// Starts the solvers `config` declares. Hook commands (dns-01) run with
    /// `[hooks] timeout` and this process's inherited environment. All or nothing: if one
    /// responder cannot bind, those already started are stopped and the error is returned.
    pub async fn start(
        config: &Config,
        shutdown: &CancellationToken,
    ) -> Result<ChallengeSolvers, Error> {
        let runner = HookRunner::new(config.hooks.timeout);
        // A child token: dropping the half-built set on error stops what it started.
        let stop = shutdown.child_token();
        let guard = stop.clone().drop_guard();
        let http01 = match &config.http01 {
            Some(Http01Config::Standalone { listen }) => Some(Http01::Standalone(Arc::new(
                Http01Responder::start(listen, &stop).await?,
            ))),
            Some(Http01Config::Webroot { path }) => {
                Some(Http01::Webroot(Arc::new(WebrootSolver::new(path.clone()))))
            }
            None => None,
        };
        let tls_alpn01 = match &config.tls_alpn01 {
            Some(c) => Some(Arc::new(TlsAlpn01Responder::start(&c.listen, &stop).await?)),
            None => None,
        };
        let dns01 = config
            .dns01
            .as_ref()
            .map(|c| Arc::new(Dns01Hooks::new(c.clone(), runner)));
        guard.disarm();
        Ok(ChallengeSolvers {
            http01,
            dns01,
            tls_alpn01,
        })
    }

    /// The solver for `challenge`, or `None` if the config has no section for it.
    pub fn solver(&self, challenge: ChallengeType) -> Option<Arc<dyn ChallengeSolver>> {
        match challenge {
            ChallengeType::Http01 => match self.http01.as_ref()? {
                Http01::Standalone(r) => Some(r.clone() as Arc<dyn ChallengeSolver>),
                Http01::Webroot(w) => Some(w.clone() as Arc<dyn ChallengeSolver>),
            },
            ChallengeType::Dns01 => self.dns01.clone().map(|d| d as Arc<dyn ChallengeSolver>),
            ChallengeType::TlsAlpn01 => self
                .tls_alpn01
                .clone()
                .map(|t| t as Arc<dyn ChallengeSolver>),
            _ => None,
        }
    }

    /// Every address a responder listens on, with its challenge type.
    pub fn listening(&self) -> Vec<(ChallengeType, SocketAddr)> {
        let http = match &self.http01 {
            Some(Http01::Standalone(r)) => r.local_addrs().to_vec(),
            _ => Vec::new(),
        };
        let tls = self
            .tls_alpn01
            .as_ref()
            .map(|t| t.local_addrs().to_vec())
            .unwrap_or_default();
        http.into_iter()
            .map(|a| (ChallengeType::Http01, a))
            .chain(tls.into_iter().map(|a| (ChallengeType::TlsAlpn01, a)))
            .collect()
    }

    /// Waits until the responders have stopped (after the start token was cancelled).
    pub async fn closed(&self) {
        if let Some(Http01::Standalone(r)) = &self.http01 {
            r.closed().await;
        }
        if let Some(t) = &self.tls_alpn01 {
            t.closed().await;
        }
    }
}
