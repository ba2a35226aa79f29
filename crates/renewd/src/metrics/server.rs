//! The `[metrics] listen` endpoint: `GET /metrics` (Prometheus text format) and
//! `GET /healthz` (200 `ok` while the main loop beats, 503 otherwise), over HTTP/1.1.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{CONTENT_TYPE, Metrics};
use crate::heartbeat::Liveness;

/// How long a client may take to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish once the server stops.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// A bound, not yet serving, metrics socket: binding first lets a reload refuse an address
/// it cannot have before it changes anything.
#[derive(Debug)]
pub struct MetricsListener {
    listener: TcpListener,
    addr: SocketAddr,
}

impl MetricsListener {
    /// Binds `addr`.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        Ok(Self { listener, addr })
    }

    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Serves `metrics` and `liveness` on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: MetricsListener,
    metrics: Metrics,
    liveness: Liveness,
    stop: CancellationToken,
) {
    let MetricsListener { listener, addr } = listener;
    tracing::info!("metrics endpoint listening on http://{addr}/metrics");
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!("metrics endpoint: accept failed: {e}");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let metrics = metrics.clone();
        let liveness = liveness.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            let service = service_fn(move |req| {
                let response = respond(&req, &metrics, &liveness);
                async move { Ok::<_, Infallible>(response) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!("metrics endpoint: connection ended: {e}");
            }
        });
    }
    // Refuse new connections at once; open ones get a moment to finish.
    drop(listener);
    if tokio::time::timeout(CLOSE_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        connections.abort_all();
    }
    tracing::info!("metrics endpoint on {addr} stopped");
}

fn respond<B>(req: &Request<B>, metrics: &Metrics, liveness: &Liveness) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => text(StatusCode::OK, CONTENT_TYPE, metrics.encode()),
        "/healthz" if liveness.is_alive() => text(StatusCode::OK, "text/plain", "ok\n".into()),
        "/healthz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "the main loop has stopped beating\n".into(),
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "try /metrics or /healthz\n".into(),
        ),
    }
}

fn text(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;
    use crate::heartbeat::Heartbeat;

    async fn get(path: &str, method: Method, m: &Metrics, l: &Liveness) -> (StatusCode, String) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap();
        let response = respond(&req, m, l);
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn healthz_follows_the_heartbeat() {
        let heart = Heartbeat::new(Duration::from_secs(1));
        let liveness = heart.liveness();
        let m = Metrics::new();
        assert_eq!(
            get("/healthz", Method::GET, &m, &liveness).await,
            (StatusCode::OK, "ok\n".into())
        );
        tokio::time::advance(Duration::from_secs(4)).await;
        let (status, _) = get("/healthz", Method::GET, &m, &liveness).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        heart.beat();
        let (status, _) = get("/healthz", Method::GET, &m, &liveness).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn routes() {
        let heart = Heartbeat::new(Duration::from_secs(1));
        let liveness = heart.liveness();
        let m = Metrics::new();
        let (status, body) = get("/metrics", Method::GET, &m, &liveness).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("renewd_up 1"), "{body}");
        assert_eq!(
            get("/", Method::GET, &m, &liveness).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get("/metrics", Method::POST, &m, &liveness).await.0,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
