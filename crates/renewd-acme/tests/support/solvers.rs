//! Challenge solvers that answer pebble's real validator on loopback.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use renewd_acme::{BoxError, BoxFuture, ChallengeAnswer, ChallengeProof, ChallengeSolver};
use renewd_testsupport::Pebble;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Aborts a server task on drop.
#[derive(Debug)]
struct TaskGuard(JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An http-01 responder: a tiny hyper server on a loopback port, serving tokens.
#[derive(Debug)]
pub struct Http01Solver {
    tokens: Arc<Mutex<HashMap<String, String>>>,
    port: u16,
    _task: TaskGuard,
}

impl Http01Solver {
    /// Binds 127.0.0.1:0 and serves; give [`Http01Solver::port`] to pebble as httpPort.
    pub async fn start() -> Http01Solver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tokens: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let served = tokens.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let tokens = served.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let tokens = tokens.clone();
                        async move {
                            let token = req
                                .uri()
                                .path()
                                .strip_prefix("/.well-known/acme-challenge/")
                                .map(str::to_string);
                            let body = token.and_then(|t| tokens.lock().unwrap().get(&t).cloned());
                            let response = match body {
                                Some(body) => hyper::Response::new(Full::new(Bytes::from(body))),
                                None => hyper::Response::builder()
                                    .status(404)
                                    .body(Full::new(Bytes::new()))
                                    .unwrap(),
                            };
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Http01Solver {
            tokens,
            port,
            _task: TaskGuard(task),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl ChallengeSolver for Http01Solver {
    fn present<'a>(&'a self, answer: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let ChallengeProof::Http01 { body, .. } = &answer.proof else {
                return Err("not an http-01 challenge".into());
            };
            self.tokens
                .lock()
                .unwrap()
                .insert(answer.token.clone(), body.clone());
            Ok(())
        })
    }

    fn cleanup<'a>(&'a self, answer: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            self.tokens.lock().unwrap().remove(&answer.token);
            Ok(())
        })
    }
}

/// A dns-01 solver: TXT records through pebble-challtestsrv's management API.
#[derive(Debug)]
pub struct Dns01Solver<'a> {
    pub pebble: &'a Pebble,
}

impl ChallengeSolver for Dns01Solver<'_> {
    fn present<'a>(&'a self, answer: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let ChallengeProof::Dns01 { name, value } = &answer.proof else {
                return Err("not a dns-01 challenge".into());
            };
            self.pebble.set_txt(name, value).await;
            Ok(())
        })
    }

    fn cleanup<'a>(&'a self, answer: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            if let ChallengeProof::Dns01 { name, .. } = &answer.proof {
                self.pebble.clear_txt(name).await;
            }
            Ok(())
        })
    }
}

/// A tls-alpn-01 responder: rustls on a loopback port, ALPN `acme-tls/1`, the RFC 8737
/// certificate chosen by SNI.
#[derive(Debug)]
pub struct TlsAlpn01Solver {
    certs: Arc<CertsBySni>,
    port: u16,
    _task: TaskGuard,
}

#[derive(Debug, Default)]
struct CertsBySni(Mutex<HashMap<String, Arc<CertifiedKey>>>);

impl ResolvesServerCert for CertsBySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?;
        self.0.lock().unwrap().get(name).cloned()
    }
}

impl TlsAlpn01Solver {
    pub async fn start() -> TlsAlpn01Solver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let certs = Arc::new(CertsBySni::default());
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(certs.clone());
        config.alpn_protocols = vec![renewd_acme::ACME_TLS_ALPN_PROTOCOL.to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // The validator only needs the handshake; then the connection closes.
                    let _ = acceptor.accept(stream).await;
                });
            }
        });
        TlsAlpn01Solver {
            certs,
            port,
            _task: TaskGuard(task),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl ChallengeSolver for TlsAlpn01Solver {
    fn present<'a>(&'a self, answer: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let ChallengeProof::TlsAlpn01(cert) = &answer.proof else {
                return Err("not a tls-alpn-01 challenge".into());
            };
            let provider = rustls::crypto::ring::default_provider();
            let key = provider
                .key_provider
                .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                    cert.key_pkcs8_der.clone(),
                )))?;
            let certified =
                CertifiedKey::new(vec![CertificateDer::from(cert.cert_der.clone())], key);
            self.certs
                .0
                .lock()
                .unwrap()
                .insert(answer.identifier.clone(), Arc::new(certified));
            Ok(())
        })
    }

    fn cleanup<'a>(&'a self, answer: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            self.certs.0.lock().unwrap().remove(&answer.identifier);
            Ok(())
        })
    }
}

/// A solver for `PEBBLE_VA_ALWAYS_VALID`: nothing to publish.
#[derive(Debug, Default)]
pub struct NoopSolver;

impl ChallengeSolver for NoopSolver {
    fn present<'a>(&'a self, _: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async { Ok(()) })
    }

    fn cleanup<'a>(&'a self, _: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async { Ok(()) })
    }
}
