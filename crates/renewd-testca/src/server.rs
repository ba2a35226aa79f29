//! The HTTPS listener: TLS, HTTP/1.1 and HTTP/2 through hyper, and the fault plan applied
//! around each request.
//!
//! Each request is routed to an [`Endpoint`]; the fault engine decides whether a rule fires;
//! then, for a `before` fault, the fault answers instead of the handler, and for an `after`
//! fault the handler runs (state changes stick) and the fault replaces its answer. Dropping
//! a connection is done by the connection task, which stops serving when the request's
//! service signals it: the socket closes with no response on the wire.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, HOST};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming as Body;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::ca::{Ca, Incoming};
use crate::fault_engine::{rate_limited_reply, status_reply};
use crate::faults::{Action, Fault, HANG_LIMIT, When};
use crate::response::{Problem, Reply};
use crate::router::{self, Route};

/// The largest request body read.
const MAX_BODY: usize = 1 << 20;
/// How long a client may take to send its TLS handshake or its body.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The rustls server configuration of the ACME endpoint (ring provider, h2 + http/1.1).
pub(crate) fn tls_config(ca: &Ca) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(ca.authority.tls_chain.clone(), ca.authority.tls_key())?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Runs HTTP/2 stream tasks on the CA's tracker, so a shutdown waits for them too.
#[derive(Debug, Clone)]
struct Tracked(TaskTracker);

impl<F> hyper::rt::Executor<F> for Tracked
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        self.0.spawn(fut);
    }
}

/// Accepts connections until the CA stops.
pub(crate) async fn run(ca: Arc<Ca>, listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let accepted = tokio::select! {
            () = ca.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                let (ca2, acceptor) = (Arc::clone(&ca), acceptor.clone());
                ca.spawn(serve_connection(ca2, acceptor, stream));
            }
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning.
                warn!(error = %e, "accept failed");
                ca.sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection(ca: Arc<Ca>, acceptor: TlsAcceptor, stream: TcpStream) {
    let tls = match tokio::time::timeout(READ_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            debug!(error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    let close = CancellationToken::new();
    let service = {
        let (ca, close) = (Arc::clone(&ca), close.clone());
        service_fn(move |req| answer(Arc::clone(&ca), close.clone(), req))
    };
    let builder = auto::Builder::new(Tracked(ca.tasks.clone()));
    let conn = builder.serve_connection(TokioIo::new(tls), service);
    tokio::select! {
        result = conn => {
            if let Err(e) = result {
                debug!(error = %e, "connection ended with an error");
            }
        }
        // Dropping `conn` here closes the socket with nothing more written.
        () = close.cancelled() => debug!("connection dropped by the fault plan"),
        () = ca.shutdown.cancelled() => {}
    }
}

/// `https://HOST` from the request's Host (HTTP/1.1) or authority (HTTP/2), if it is a
/// plain host[:port]; otherwise the listener's own address.
fn base_url(ca: &Ca, req: &http::request::Parts) -> String {
    let host = req
        .uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        });
    match host {
        Some(h)
            if !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)) =>
        {
            format!("https://{h}")
        }
        _ => format!("https://{}", ca.acme_addr),
    }
}

/// Adds what every answer of the CA carries, and makes it a hyper response.
fn finish(ca: &Ca, reply: Reply, base: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(reply.body));
    *response.status_mut() = reply.status;
    *response.headers_mut() = reply.headers;
    if reply.from_ca {
        let headers = response.headers_mut();
        if let Ok(nonce) = HeaderValue::from_str(&ca.issue_nonce()) {
            headers.insert("replay-nonce", nonce);
        }
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(link) = HeaderValue::from_str(&format!("<{base}/dir>;rel=\"index\"")) {
            headers.append(http::header::LINK, link);
        }
    }
    response
}

/// What a fault turns an answer into.
enum Faulted {
    Reply(Reply),
    /// Close the connection without answering.
    Close,
}

async fn apply(ca: &Ca, fault: &Fault) -> Option<Faulted> {
    match &fault.action {
        Action::Status {
            status,
            body,
            retry_after,
        } => Some(Faulted::Reply(status_reply(
            *status,
            body,
            *retry_after,
            || ca.faults().garbage(),
        ))),
        Action::RateLimited { retry_after } => {
            Some(Faulted::Reply(rate_limited_reply(*retry_after)))
        }
        Action::BadNonce => {
            ca.counts().nonces_rejected += 1;
            Some(Faulted::Reply(
                Problem::bad_nonce("nonce rejected (fault plan)").into_reply(),
            ))
        }
        Action::Hang => {
            ca.sleep(HANG_LIMIT).await;
            Some(Faulted::Close)
        }
        Action::Drop => Some(Faulted::Close),
        Action::Delay
        | Action::Processing { .. }
        | Action::InvalidOrder { .. }
        | Action::WrongCertificate { .. } => None,
    }
}

/// Answers one request. A HEAD answer keeps its status and headers but never a body:
/// hyper drops it on HTTP/1.1, but over HTTP/2 it would be sent, and clients rightly
/// refuse DATA on a HEAD stream (an HTML fault page on HEAD newNonce did exactly that).
async fn answer(
    ca: Arc<Ca>,
    close: CancellationToken,
    req: Request<Body>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let head = req.method() == Method::HEAD;
    let mut response = answer_body(ca, close, req).await?;
    if head {
        *response.body_mut() = Full::new(Bytes::new());
    }
    Ok(response)
}

async fn answer_body(
    ca: Arc<Ca>,
    close: CancellationToken,
    req: Request<Body>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let base = base_url(&ca, &parts);
    let body =
        match tokio::time::timeout(READ_TIMEOUT, Limited::new(body, MAX_BODY).collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            _ => {
                let p = Problem::malformed("request body unreadable or larger than 1 MiB");
                return Ok(finish(&ca, p.into_reply(), &base));
            }
        };
    let route = Route::parse(parts.uri.path());
    let endpoint = route.endpoint();
    let fault = endpoint.and_then(|e| ca.faults().decide(e));
    if let Some(e) = endpoint {
        ca.counts().request(e, fault.is_some());
    }
    let mut incoming = Incoming {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        base: base.clone(),
        headers: parts.headers,
        body,
        hold: None,
        mismatch: None,
    };
    let Some(fault) = fault else {
        return Ok(finish(&ca, router::handle(&ca, &route, &incoming), &base));
    };
    debug!(path = %incoming.path, ?fault, "fault fires");
    if let Action::Processing {
        duration,
        retry_after,
    } = &fault.action
    {
        incoming.hold = Some((*duration, retry_after.unwrap_or(ca.config.poll_retry_after)));
    }
    if let Action::WrongCertificate { mismatch } = &fault.action {
        incoming.mismatch = Some(*mismatch);
    }
    if let (
        Action::InvalidOrder {
            problem_type,
            detail,
        },
        Route::Order(id),
    ) = (&fault.action, &route)
    {
        crate::orders::invalidate(&ca, *id, problem_type, detail);
    }
    if fault.when == When::Before {
        if let Some(d) = fault.delay {
            ca.sleep(d).await;
        }
        if let Some(outcome) = apply(&ca, &fault).await {
            return Ok(deliver(&ca, outcome, &close, &base).await);
        }
    }
    let reply = router::handle(&ca, &route, &incoming);
    if fault.when == When::After {
        if let Some(d) = fault.delay {
            ca.sleep(d).await;
        }
        if let Some(outcome) = apply(&ca, &fault).await {
            return Ok(deliver(&ca, outcome, &close, &base).await);
        }
    }
    Ok(finish(&ca, reply, &base))
}

async fn deliver(
    ca: &Ca,
    outcome: Faulted,
    close: &CancellationToken,
    base: &str,
) -> Response<Full<Bytes>> {
    match outcome {
        Faulted::Reply(reply) => finish(ca, reply, base),
        Faulted::Close => {
            close.cancel();
            // The connection task drops the connection at once. Over HTTP/1.1 that drops
            // this future too; over HTTP/2 each stream is a task of its own, which ends
            // here after a moment, its answer going nowhere.
            ca.sleep(Duration::from_secs(1)).await;
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    }
}
