//! The tls-alpn-01 responder (`[tls_alpn01] listen`, RFC 8737): a TLS server that only
//! completes handshakes offering ALPN `acme-tls/1` with the SNI of a published challenge,
//! presenting that challenge's certificate. It is not a general HTTPS server: every other
//! handshake fails, and no application data is ever read.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use renewd_acme::{
    ACME_TLS_ALPN_PROTOCOL, BoxError, BoxFuture, ChallengeAnswer, ChallengeProof, ChallengeSolver,
};
use renewd_core::ChallengeType;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::answer::expect_type;
use crate::error::Error;
use crate::listen::{Serving, bind_all};

/// How long a client may take to complete the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The running tls-alpn-01 responder. [`ChallengeSolver::present`] publishes the RFC 8737
/// certificate for the identifier (the SNI validators send), [`ChallengeSolver::cleanup`]
/// withdraws it. Stops when the start token is cancelled or the last clone is dropped.
#[derive(Debug, Clone)]
pub struct TlsAlpn01Responder {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    certs: Arc<CertsBySni>,
    serving: Serving,
}

/// The published challenge certificates, by lower-cased SNI.
#[derive(Debug, Default)]
struct CertsBySni(RwLock<HashMap<String, Arc<CertifiedKey>>>);

impl ResolvesServerCert for CertsBySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let offers_acme = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN_PROTOCOL));
        if !offers_acme {
            return None;
        }
        let name = hello.server_name()?.to_ascii_lowercase();
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&name)
            .cloned()
    }
}

impl TlsAlpn01Responder {
    /// Binds every address in `listen` (all or none: a failure is [`Error::Bind`] naming
    /// the address) and answers until `shutdown` is cancelled.
    pub async fn start(
        listen: &[SocketAddr],
        shutdown: &CancellationToken,
    ) -> Result<TlsAlpn01Responder, Error> {
        let listeners = bind_all(listen, ChallengeType::TlsAlpn01)?;
        let certs = Arc::new(CertsBySni::default());
        let acceptor = TlsAcceptor::from(Arc::new(server_config(certs.clone())?));
        let serve = move |stream, peer, stop| handshake(acceptor.clone(), stream, peer, stop);
        let serving = Serving::spawn(
            listeners,
            listen,
            ChallengeType::TlsAlpn01,
            shutdown,
            HANDSHAKE_TIMEOUT,
            serve,
        )?;
        tracing::info!(addrs = ?serving.local_addrs(), "tls-alpn-01 responder listening");
        Ok(TlsAlpn01Responder {
            inner: Arc::new(Inner { certs, serving }),
        })
    }

    /// The addresses it listens on (port 0 resolved).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        self.inner.serving.local_addrs()
    }

    /// Stops answering (like cancelling the start token).
    pub fn stop(&self) {
        self.inner.serving.stop();
    }

    /// Resolves once it has stopped: listeners closed, connections finished. The future
    /// does not keep the responder alive (dropping every handle stops it too).
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        self.inner.serving.closed()
    }
}

fn server_config(certs: Arc<CertsBySni>) -> Result<rustls::ServerConfig, Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    // RFC 8737 §4: TLS 1.2 or later, which is all rustls speaks.
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::TlsConfig {
        what: "the tls-alpn-01 responder",
        detail: e.to_string(),
    })?
    .with_no_client_auth()
    .with_cert_resolver(certs);
    // A client offering other protocols only is refused with no_application_protocol.
    config.alpn_protocols = vec![ACME_TLS_ALPN_PROTOCOL.to_vec()];
    Ok(config)
}

/// One connection: the handshake is all the validator needs; then close.
async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    stop: CancellationToken,
) {
    tokio::select! {
        _ = stop.cancelled() => {}
        accepted = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => {
            match accepted {
                Ok(Ok(tls)) => {
                    let sni = tls.get_ref().1.server_name().map(str::to_string);
                    tracing::debug!(%peer, sni = sni.as_deref(), "tls-alpn-01 handshake answered");
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "tls-alpn-01 handshake refused"),
                Err(_) => tracing::debug!(%peer, "tls-alpn-01 handshake timed out"),
            }
        }
    }
}

impl ChallengeSolver for TlsAlpn01Responder {
    fn present<'a>(&'a self, answer: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            expect_type(answer, ChallengeType::TlsAlpn01)?;
            let ChallengeProof::TlsAlpn01(cert) = &answer.proof else {
                return Err(Error::WrongChallenge {
                    solver: ChallengeType::TlsAlpn01,
                    given: answer.challenge_type,
                    identifier: answer.identifier.clone(),
                }
                .into());
            };
            let unusable = |detail: String| Error::TlsAlpnCertificate {
                identifier: answer.identifier.clone(),
                detail,
            };
            let key = rustls::crypto::ring::default_provider()
                .key_provider
                .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                    cert.key_pkcs8_der.clone(),
                )))
                .map_err(|e| unusable(e.to_string()))?;
            // (`CertifiedKey::keys_match` cannot check this pair: webpki refuses the critical
            // acmeIdentifier extension. Both come from one generator in renewd-acme.)
            let certified =
                CertifiedKey::new(vec![CertificateDer::from(cert.cert_der.clone())], key);
            self.inner
                .certs
                .0
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(answer.identifier.to_ascii_lowercase(), Arc::new(certified));
            Ok(())
        })
    }

    fn cleanup<'a>(&'a self, answer: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            self.inner
                .certs
                .0
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&answer.identifier.to_ascii_lowercase());
            Ok(())
        })
    }
}
