//! The http-01 standalone responder (`[http01] listen`): one small HTTP/1.1 server on
//! every configured address, shared by all renewal jobs, answering
//! `GET /.well-known/acme-challenge/TOKEN` with the key authorization and nothing else.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use renewd_acme::{BoxError, BoxFuture, ChallengeAnswer, ChallengeSolver};
use renewd_core::ChallengeType;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::answer::{check_token, expect_type};
use crate::error::Error;
use crate::listen::{Serving, bind_all};

const PREFIX: &str = "/.well-known/acme-challenge/";

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long connections in progress may take to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(5);

type Tokens = RwLock<HashMap<String, Bytes>>;

/// The running http-01 responder. [`ChallengeSolver::present`] publishes a token,
/// [`ChallengeSolver::cleanup`] withdraws it; a published token is answered with
/// `200 text/plain` and exactly the key authorization, to every GET or HEAD, as often and
/// as concurrently as validators ask. Unknown tokens and every other path get 404.
///
/// It stops when the token given to [`Http01Responder::start`] is cancelled, or when the
/// last clone of the handle is dropped.
#[derive(Debug, Clone)]
pub struct Http01Responder {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tokens: Arc<Tokens>,
    serving: Serving,
}

impl Http01Responder {
    /// Binds every address in `listen` (all or none: a failure is [`Error::Bind`] naming
    /// the address) and serves until `shutdown` is cancelled.
    pub async fn start(
        listen: &[SocketAddr],
        shutdown: &CancellationToken,
    ) -> Result<Http01Responder, Error> {
        let listeners = bind_all(listen, ChallengeType::Http01)?;
        let tokens: Arc<Tokens> = Arc::default();
        let serve = {
            let tokens = tokens.clone();
            move |stream, _, stop| serve_connection(stream, tokens.clone(), stop)
        };
        let serving = Serving::spawn(
            listeners,
            listen,
            ChallengeType::Http01,
            shutdown,
            DRAIN,
            serve,
        )?;
        tracing::info!(addrs = ?serving.local_addrs(), "http-01 responder listening");
        Ok(Http01Responder {
            inner: Arc::new(Inner { tokens, serving }),
        })
    }

    /// The addresses it listens on (the configured ones, with port 0 resolved).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        self.inner.serving.local_addrs()
    }

    /// Stops serving (like cancelling the start token).
    pub fn stop(&self) {
        self.inner.serving.stop();
    }

    /// Resolves once it has stopped: listeners closed, connections finished. The future
    /// does not keep the responder alive (dropping every handle stops it too).
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        self.inner.serving.closed()
    }

    /// How many tokens are published now.
    pub fn published(&self) -> usize {
        self.inner
            .tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl ChallengeSolver for Http01Responder {
    fn present<'a>(&'a self, answer: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            expect_type(answer, ChallengeType::Http01)?;
            check_token(&answer.token)?;
            // The body is exactly the key authorization (RFC 8555 §8.3).
            let body = answer.key_authorization.clone();
            self.inner
                .tokens
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(answer.token.clone(), Bytes::from(body));
            tracing::debug!(identifier = %answer.identifier, token = %answer.token, "http-01 token published");
            Ok(())
        })
    }

    fn cleanup<'a>(&'a self, answer: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            self.inner
                .tokens
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&answer.token);
            Ok(())
        })
    }
}

async fn serve_connection(stream: TcpStream, tokens: Arc<Tokens>, stop: CancellationToken) {
    let service = service_fn(move |request: hyper::Request<Incoming>| {
        let response = respond(request.method(), request.uri().path(), &tokens);
        async move { Ok::<_, Infallible>(response) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// The whole of what the responder serves.
fn respond(method: &Method, path: &str, tokens: &Tokens) -> Response<Full<Bytes>> {
    let body = path.strip_prefix(PREFIX).and_then(|token| {
        tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .cloned()
    });
    let builder = Response::builder().header(header::SERVER, "renewd");
    let response = match body {
        // For HEAD, hyper sends the headers (Content-Length included) without the body.
        Some(body) if method == Method::GET || method == Method::HEAD => builder
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Full::new(body)),
        Some(_) => builder
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(header::ALLOW, "GET, HEAD")
            .body(Full::new(Bytes::new())),
        None => builder
            .status(StatusCode::NOT_FOUND)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Full::new(Bytes::from_static(b"not found\n"))),
    };
    // The builder's inputs are constants: it cannot fail.
    response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_only_published_tokens() {
        let tokens = Tokens::default();
        tokens
            .write()
            .unwrap()
            .insert("tok".into(), Bytes::from_static(b"tok.thumb"));
        let ok = respond(&Method::GET, "/.well-known/acme-challenge/tok", &tokens);
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.headers()[header::CONTENT_TYPE], "text/plain");
        assert_eq!(
            respond(&Method::HEAD, "/.well-known/acme-challenge/tok", &tokens).status(),
            200
        );
        assert_eq!(
            respond(&Method::POST, "/.well-known/acme-challenge/tok", &tokens).status(),
            405
        );
        for path in [
            "/.well-known/acme-challenge/other",
            "/.well-known/acme-challenge/",
            "/tok",
            "/",
            "/.well-known/acme-challenge/tok/x",
        ] {
            assert_eq!(respond(&Method::GET, path, &tokens).status(), 404, "{path}");
        }
    }
}
