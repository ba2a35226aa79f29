//! The challenge solvers the configuration declares, started once by the daemon and
//! shared by every renewal job; reconfigured on reload without dropping a responder whose
//! addresses did not change.

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
/// first renewal; they stop when the token given there is cancelled, or when the last
/// handle to them is dropped. (`renewd check` validates the config without starting
/// anything.)
#[derive(Debug, Clone, Default)]
pub struct ChallengeSolvers {
    http01: Option<Http01>,
    dns01: Option<Arc<Dns01Hooks>>,
    tls_alpn01: Option<Listening<TlsAlpn01Responder>>,
}

#[derive(Debug, Clone)]
enum Http01 {
    Standalone(Listening<Http01Responder>),
    Webroot(Arc<WebrootSolver>),
}

/// A running responder and the addresses it was configured with (port 0 unresolved).
#[derive(Debug, Clone)]
struct Listening<R> {
    listen: Vec<SocketAddr>,
    responder: Arc<R>,
}

/// What a responder does to become running: binding and stopping.
trait Responder: Sized {
    async fn bind(listen: &[SocketAddr], shutdown: &CancellationToken) -> Result<Self, Error>;
    fn stop(&self);
    fn closed(&self) -> impl Future<Output = ()> + Send + 'static;
}

impl Responder for Http01Responder {
    async fn bind(listen: &[SocketAddr], shutdown: &CancellationToken) -> Result<Self, Error> {
        Http01Responder::start(listen, shutdown).await
    }
    fn stop(&self) {
        Http01Responder::stop(self);
    }
    fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        Http01Responder::closed(self)
    }
}

impl Responder for TlsAlpn01Responder {
    async fn bind(listen: &[SocketAddr], shutdown: &CancellationToken) -> Result<Self, Error> {
        TlsAlpn01Responder::start(listen, shutdown).await
    }
    fn stop(&self) {
        TlsAlpn01Responder::stop(self);
    }
    fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        TlsAlpn01Responder::closed(self)
    }
}

impl<R: Responder> Listening<R> {
    async fn start(listen: &[SocketAddr], shutdown: &CancellationToken) -> Result<Self, Error> {
        Ok(Listening {
            listen: listen.to_vec(),
            responder: Arc::new(R::bind(listen, shutdown).await?),
        })
    }

    /// Whether the new addresses need the old responder out of the way first.
    fn overlaps(&self, listen: &[SocketAddr]) -> bool {
        listen.iter().any(|a| self.listen.contains(a))
    }

    async fn stop_and_wait(&self) {
        self.responder.stop();
        self.responder.closed().await;
    }
}

/// The responder a reload asks for, next to the one running.
enum Change {
    Keep,
    Start(Vec<SocketAddr>),
    Remove,
}

impl Change {
    fn between<R>(old: Option<&Listening<R>>, new: Option<&[SocketAddr]>) -> Self {
        match (old, new) {
            (Some(old), Some(new)) if old.listen == new => Change::Keep,
            (_, Some(new)) => Change::Start(new.to_vec()),
            (Some(_), None) => Change::Remove,
            (None, None) => Change::Keep,
        }
    }
}

impl ChallengeSolvers {
    /// Starts the solvers `config` declares. Hook commands (dns-01) run with
    /// `[hooks] timeout` and this process's inherited environment. All or nothing: if one
    /// responder cannot bind, those already started are stopped and the error is returned.
    pub async fn start(
        config: &Config,
        shutdown: &CancellationToken,
    ) -> Result<ChallengeSolvers, Error> {
        let mut solvers = ChallengeSolvers::default();
        solvers.reconfigure(config, shutdown).await?;
        Ok(solvers)
    }

    /// Switches to the solvers `config` declares (a reload). A responder whose `listen`
    /// addresses did not change keeps running untouched; one whose addresses changed is
    /// replaced — the new one binds while the old one goes on serving the orders that
    /// already hold it (it stops when they let go), except where the old and new address
    /// lists share an address: then the old responder is stopped first, and orders
    /// validating on it at that moment fail and are retried later. The webroot and dns-01
    /// solvers are rebuilt from the new config; orders under way keep the ones they took.
    ///
    /// All or nothing: when a new responder cannot bind, `self` keeps serving the previous
    /// config (a responder that had to be stopped is started again on its old addresses)
    /// and the error is returned.
    pub async fn reconfigure(
        &mut self,
        config: &Config,
        shutdown: &CancellationToken,
    ) -> Result<(), Error> {
        let http_listen = match &config.http01 {
            Some(Http01Config::Standalone { listen }) => Some(listen.as_slice()),
            _ => None,
        };
        let old_http = match &self.http01 {
            Some(Http01::Standalone(l)) => Some(l),
            _ => None,
        };
        let http_change = Change::between(old_http, http_listen);
        let tls_listen = config.tls_alpn01.as_ref().map(|c| c.listen.as_slice());
        let tls_change = Change::between(self.tls_alpn01.as_ref(), tls_listen);

        // A child token: dropping what was bound on error stops it.
        let stop = shutdown.child_token();
        let guard = stop.clone().drop_guard();
        let mut stopped_http = None;
        let mut stopped_tls = None;
        if let (Change::Start(new), Some(old)) = (&http_change, old_http)
            && old.overlaps(new)
        {
            old.stop_and_wait().await;
            stopped_http = Some(old.clone());
        }
        if let (Change::Start(new), Some(old)) = (&tls_change, &self.tls_alpn01)
            && old.overlaps(new)
        {
            old.stop_and_wait().await;
            stopped_tls = Some(old.clone());
        }
        let bound = async {
            let http = match &http_change {
                Change::Start(listen) => Some(Listening::start(listen, &stop).await?),
                _ => None,
            };
            let tls = match &tls_change {
                Change::Start(listen) => Some(Listening::start(listen, &stop).await?),
                _ => None,
            };
            Ok::<_, Error>((http, tls))
        }
        .await;
        let (new_http, new_tls) = match bound {
            Ok(bound) => bound,
            Err(e) => {
                drop(guard);
                self.restore(stopped_http, stopped_tls, shutdown).await;
                return Err(e);
            }
        };
        guard.disarm();

        self.http01 = match &config.http01 {
            Some(Http01Config::Standalone { .. }) => match (http_change, new_http) {
                (_, Some(new)) => Some(Http01::Standalone(new)),
                // Keep: the same addresses, so the running responder is the standalone one.
                _ => self.http01.take(),
            },
            Some(Http01Config::Webroot { path }) => {
                Some(Http01::Webroot(Arc::new(WebrootSolver::new(path.clone()))))
            }
            None => None,
        };
        self.tls_alpn01 = match (tls_change, new_tls) {
            (_, Some(new)) => Some(new),
            (Change::Remove, _) => None,
            _ => self.tls_alpn01.take(),
        };
        let runner = HookRunner::new(config.hooks.timeout);
        self.dns01 = config
            .dns01
            .as_ref()
            .map(|c| Arc::new(Dns01Hooks::new(c.clone(), runner)));
        Ok(())
    }

    /// After a failed reconfiguration: starts the responders that were stopped to make room
    /// again on their old addresses.
    async fn restore(
        &mut self,
        http: Option<Listening<Http01Responder>>,
        tls: Option<Listening<TlsAlpn01Responder>>,
        shutdown: &CancellationToken,
    ) {
        if let Some(old) = http {
            match Listening::start(&old.listen, shutdown).await {
                Ok(again) => self.http01 = Some(Http01::Standalone(again)),
                Err(e) => {
                    tracing::error!(error = %e, "the http-01 responder could not be restarted")
                }
            }
        }
        if let Some(old) = tls {
            match Listening::start(&old.listen, shutdown).await {
                Ok(again) => self.tls_alpn01 = Some(again),
                Err(e) => {
                    tracing::error!(error = %e, "the tls-alpn-01 responder could not be restarted")
                }
            }
        }
    }

    /// The solver for `challenge`, or `None` if the config has no section for it.
    pub fn solver(&self, challenge: ChallengeType) -> Option<Arc<dyn ChallengeSolver>> {
        match challenge {
            ChallengeType::Http01 => match self.http01.as_ref()? {
                Http01::Standalone(l) => Some(l.responder.clone() as Arc<dyn ChallengeSolver>),
                Http01::Webroot(w) => Some(w.clone() as Arc<dyn ChallengeSolver>),
            },
            ChallengeType::Dns01 => self.dns01.clone().map(|d| d as Arc<dyn ChallengeSolver>),
            ChallengeType::TlsAlpn01 => self
                .tls_alpn01
                .as_ref()
                .map(|t| t.responder.clone() as Arc<dyn ChallengeSolver>),
            _ => None,
        }
    }

    /// Every configured solver, by challenge type.
    pub fn all(&self) -> Vec<(ChallengeType, Arc<dyn ChallengeSolver>)> {
        [
            ChallengeType::Http01,
            ChallengeType::Dns01,
            ChallengeType::TlsAlpn01,
        ]
        .into_iter()
        .filter_map(|t| Some((t, self.solver(t)?)))
        .collect()
    }

    /// Every address a responder listens on, with its challenge type.
    pub fn listening(&self) -> Vec<(ChallengeType, SocketAddr)> {
        let http = match &self.http01 {
            Some(Http01::Standalone(l)) => l.responder.local_addrs().to_vec(),
            _ => Vec::new(),
        };
        let tls = self
            .tls_alpn01
            .as_ref()
            .map(|t| t.responder.local_addrs().to_vec())
            .unwrap_or_default();
        http.into_iter()
            .map(|a| (ChallengeType::Http01, a))
            .chain(tls.into_iter().map(|a| (ChallengeType::TlsAlpn01, a)))
            .collect()
    }

    /// Waits until the responders have stopped (after the start token was cancelled).
    pub async fn closed(&self) {
        if let Some(Http01::Standalone(l)) = &self.http01 {
            l.responder.closed().await;
        }
        if let Some(t) = &self.tls_alpn01 {
            t.responder.closed().await;
        }
    }
}
