//! The HTTP seam: [`HttpClient`] is what the ACME client sends requests through;
//! [`HyperClient`] is the real one (hyper 1 + hyper-rustls, ring only), tests may wrap it
//! to inject faults.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use renewd_core::Step;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::error::Error;

/// A boxed, sendable future: the return type of the object-safe traits in this crate.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The largest response body read (certificate chains are a few KiB).
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Sends one HTTP request and returns the whole response. Implementations must not retry.
pub trait HttpClient: Send + Sync + 'static {
    /// Sends `request` (absolute URI) and returns the response with its body collected.
    fn request(
        &self,
        request: http::Request<Bytes>,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, TransportError>>;
}

/// What went wrong below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// Connecting or the whole request took too long.
    Timeout,
    /// The connection could not be made (refused, unreachable, DNS).
    Connect,
    /// The connection was reset or closed mid-request.
    Reset,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// The request could not be sent as built (bad URL).
    InvalidRequest,
    /// Anything else below HTTP.
    Other,
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportErrorKind::Timeout => "timeout",
            TransportErrorKind::Connect => "connection failed",
            TransportErrorKind::Reset => "connection reset",
            TransportErrorKind::Tls => "TLS failure",
            TransportErrorKind::InvalidRequest => "invalid request",
            TransportErrorKind::Other => "transport error",
        })
    }
}

/// A failed HTTP exchange: no usable response arrived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct TransportError {
    /// What failed.
    pub kind: TransportErrorKind,
    /// The underlying error, as text.
    pub message: String,
}

impl TransportError {
    /// A transport error of `kind`.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> TransportError {
        TransportError {
            kind,
            message: message.into(),
        }
    }
}

/// How the real HTTP client connects.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Limit on establishing the TCP connection.
    pub connect_timeout: Duration,
    /// Limit on one whole request: connect, TLS, send, and reading the whole body.
    pub request_timeout: Duration,
    /// Extra trust roots (PEM files) on top of the system's.
    pub trust_roots: Vec<PathBuf>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            trust_roots: Vec::new(),
        }
    }
}

/// The real HTTP client: hyper-util's pooled client over hyper-rustls (ring provider),
/// trusting the system roots (bundled webpki roots when the system has none) plus extra
/// PEM roots.
#[derive(Clone)]
pub struct HyperClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    request_timeout: Duration,
}

impl fmt::Debug for HyperClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperClient")
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// The system's roots, read once per process (reading them takes milliseconds).
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

fn load_pem_roots(path: &Path, store: &mut rustls::RootCertStore) -> Result<(), Error> {
    let invalid = |detail: String| Error::InvalidRequest {
        step: Step::Directory,
        detail: format!("trust root {}: {detail}", path.display()),
    };
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| match e {
        rustls_pki_types::pem::Error::Io(source) => Error::File {
            step: Step::Directory,
            path: path.to_path_buf(),
            source,
        },
        other => invalid(other.to_string()),
    })?;
    let mut added = 0;
    for cert in iter {
        let cert = cert.map_err(|e| invalid(e.to_string()))?;
        store.add(cert).map_err(|e| invalid(e.to_string()))?;
        added += 1;
    }
    if added == 0 {
        return Err(invalid("no certificate in the file".to_string()));
    }
    Ok(())
}

impl HyperClient {
    /// Builds the client. Fails (`Local`) when a trust-root file cannot be read or holds no
    /// certificate.
    pub fn new(settings: &HttpSettings) -> Result<HyperClient, Error> {
        let mut roots = rustls::RootCertStore::empty();
        let (_, ignored) = roots.add_parsable_certificates(system_roots().iter().cloned());
        if roots.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if ignored > 0 {
            tracing::debug!(ignored, "some system trust roots could not be parsed");
        }
        for path in &settings.trust_roots {
            load_pem_roots(path, &mut roots)?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InvalidRequest {
            step: Step::Directory,
            detail: format!("TLS configuration: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
        // alpn_protocols stays empty: hyper-rustls sets it from the enabled HTTP versions.
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.connect_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(HyperClient {
            client,
            request_timeout: settings.request_timeout,
        })
    }
}

impl HttpClient for HyperClient {
    fn request(
        &self,
        request: http::Request<Bytes>,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, TransportError>> {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let request = http::Request::from_parts(parts, Full::new(body));
            // hyper has no request timeout: one timeout covers the request and the body.
            let exchange = async {
                let response = self.client.request(request).await.map_err(classify_hyper)?;
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, MAX_BODY_BYTES)
                    .collect()
                    .await
                    .map_err(|e| classify_dyn(e.as_ref()))?
                    .to_bytes();
                Ok(http::Response::from_parts(parts, body))
            };
            match tokio::time::timeout(self.request_timeout, exchange).await {
                Ok(result) => result,
                Err(_) => Err(TransportError::new(
                    TransportErrorKind::Timeout,
                    format!("no complete answer within {:?}", self.request_timeout),
                )),
            }
        })
    }
}

fn classify_hyper(e: hyper_util::client::legacy::Error) -> TransportError {
    let mut t = classify_dyn(&e);
    if t.kind == TransportErrorKind::Other && e.is_connect() {
        t.kind = TransportErrorKind::Connect;
    }
    t
}

/// Walks an error's source chain: the first telling cause decides the kind, the whole
/// chain makes the message.
fn classify_dyn(e: &(dyn std::error::Error + 'static)) -> TransportError {
    let mut kind = TransportErrorKind::Other;
    let mut parts: Vec<String> = Vec::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cause {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        if kind == TransportErrorKind::Other {
            kind = kind_of(err);
        }
        cause = err.source();
    }
    TransportError::new(kind, parts.join(": "))
}

fn kind_of(err: &(dyn std::error::Error + 'static)) -> TransportErrorKind {
    use std::io::ErrorKind as K;
    if err.is::<rustls::Error>() {
        return TransportErrorKind::Tls;
    }
    if let Some(io) = err.downcast_ref::<std::io::Error>() {
        // Connectors wrap errors in io::Error, sometimes twice (hyper-rustls around
        // tokio-rustls): look inside first, since `source()` skips the wrapped error.
        if let Some(inner) = io.get_ref() {
            let inner_kind = kind_of(inner);
            if inner_kind != TransportErrorKind::Other {
                return inner_kind;
            }
        }
        return match io.kind() {
            K::TimedOut => TransportErrorKind::Timeout,
            K::ConnectionRefused
            | K::AddrNotAvailable
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::NotFound => TransportErrorKind::Connect,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                TransportErrorKind::Reset
            }
            _ => TransportErrorKind::Other,
        };
    }
    if let Some(h) = err.downcast_ref::<hyper::Error>() {
        if h.is_timeout() {
            return TransportErrorKind::Timeout;
        }
        if h.is_incomplete_message() || h.is_canceled() || h.is_closed() {
            return TransportErrorKind::Reset;
        }
    }
    TransportErrorKind::Other
}
