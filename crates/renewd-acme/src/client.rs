//! [`AcmeClient`]: one per CA. Holds the HTTP client, the cached directory and the nonce
//! pool; every request goes through [`AcmeClient::get`] or [`AcmeClient::post`] here, which
//! harvest nonces, retry `badNonce`, turn answers into typed errors and report exactly one
//! [`RequestEvent`] per request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, Method};
use renewd_core::Step;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::error::Error;
use crate::headers;
use crate::http::{HttpClient, HttpSettings, HyperClient, TransportError, TransportErrorKind};
use crate::jws::{self, JwsKey, KeyRef};
use crate::nonce::NoncePool;
use crate::observer::{LogObserver, RequestEvent, RequestObserver};
use crate::poll::PollPolicy;
use crate::types::{Directory, Problem};

/// How many times a `badNonce` answer is retried with the fresh nonce it carried.
pub(crate) const BAD_NONCE_RETRIES: usize = 5;

/// Everything about talking to one CA that is not the CA's URL.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Connection, timeouts and extra trust roots.
    pub http: HttpSettings,
    /// Polling of authorizations and orders.
    pub poll: PollPolicy,
    /// The overall limit on finishing one order once it exists (authorizations, finalize
    /// with recovery, download).
    pub order_timeout: Duration,
    /// The limit on a whole health probe (directory + newNonce).
    pub probe_timeout: Duration,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            http: HttpSettings::default(),
            poll: PollPolicy::default(),
            order_timeout: Duration::from_secs(600),
            probe_timeout: Duration::from_secs(10),
            user_agent: format!("renewd/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

struct Shared {
    http: Arc<dyn HttpClient>,
    directory_url: String,
    directory: tokio::sync::Mutex<Option<Arc<Directory>>>,
    nonces: NoncePool,
    settings: ClientSettings,
}

/// An ACME client for one CA. Cheap to clone: clones share the HTTP connections, the
/// directory and the nonce pool.
#[derive(Clone)]
pub struct AcmeClient {
    shared: Arc<Shared>,
    observer: Arc<dyn RequestObserver>,
}

impl fmt::Debug for AcmeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcmeClient")
            .field("directory_url", &self.shared.directory_url)
            .finish_non_exhaustive()
    }
}

/// A response that arrived with a success status.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) step: Step,
    pub(crate) url: String,
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn invalid(&self, reason: impl Into<String>) -> Error {
        Error::InvalidResponse {
            step: self.step,
            url: self.url.clone(),
            status: self.status,
            reason: reason.into(),
            body_snippet: headers::body_snippet(&self.body),
        }
    }

    /// The body as JSON of type `T`; an unusable body is `CaUnavailable`.
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| self.invalid(format!("unexpected JSON: {e}")))
    }

    /// The `Location` header, required.
    pub(crate) fn location(&self) -> Result<String, Error> {
        headers::location(&self.headers, &self.url)
            .ok_or_else(|| self.invalid("no Location header"))
    }

    pub(crate) fn retry_after(&self) -> Option<DateTime<Utc>> {
        headers::retry_after(&self.headers, Utc::now())
    }
}

/// A resource as fetched: its URL, its body and the `Retry-After` that came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched<T> {
    /// The resource's URL.
    pub url: String,
    /// The resource.
    pub body: T,
    /// `Retry-After`, as an absolute time, when sent.
    pub retry_after: Option<DateTime<Utc>>,
}

/// A signed POST's parts.
pub(crate) struct Post<'a> {
    pub(crate) step: Step,
    pub(crate) url: &'a str,
    pub(crate) key: &'a dyn JwsKey,
    pub(crate) key_ref: KeyRef<'a>,
    /// `None` is POST-as-GET.
    pub(crate) payload: Option<&'a [u8]>,
    pub(crate) accept: Option<&'static str>,
    pub(crate) order_url: Option<&'a str>,
}

impl AcmeClient {
    /// A client for the CA at `directory_url` over the real HTTP stack. Fails (`Local`)
    /// when a trust-root file cannot be used.
    pub fn new(
        directory_url: impl Into<String>,
        settings: ClientSettings,
    ) -> Result<AcmeClient, Error> {
        let http = HyperClient::new(&settings.http)?;
        Ok(AcmeClient::with_http_client(
            directory_url,
            Arc::new(http),
            settings,
        ))
    }

    /// A client over any [`HttpClient`] (tests inject faults this way).
    pub fn with_http_client(
        directory_url: impl Into<String>,
        http: Arc<dyn HttpClient>,
        settings: ClientSettings,
    ) -> AcmeClient {
        AcmeClient {
            shared: Arc::new(Shared {
                http,
                directory_url: directory_url.into(),
                directory: tokio::sync::Mutex::new(None),
                nonces: NoncePool::default(),
                settings,
            }),
            observer: Arc::new(LogObserver),
        }
    }

    /// A clone that shares connections, directory and nonces but reports its requests to
    /// `observer` (one per job, so events carry the job's context).
    pub fn with_observer(&self, observer: Arc<dyn RequestObserver>) -> AcmeClient {
        AcmeClient {
            shared: self.shared.clone(),
            observer,
        }
    }

    /// The directory URL.
    pub fn directory_url(&self) -> &str {
        &self.shared.directory_url
    }

    /// The settings.
    pub fn settings(&self) -> &ClientSettings {
        &self.shared.settings
    }

    /// The directory, fetched on first use and cached.
    pub async fn directory(&self) -> Result<Arc<Directory>, Error> {
        let mut cached = self.shared.directory.lock().await;
        if let Some(d) = cached.as_ref() {
            return Ok(d.clone());
        }
        let d = self.fetch_directory(Step::Directory, None).await?;
        *cached = Some(d.clone());
        Ok(d)
    }

    /// Fetches the directory again (the CA may have changed it) and forgets old nonces.
    pub async fn refresh_directory(&self) -> Result<Arc<Directory>, Error> {
        let mut cached = self.shared.directory.lock().await;
        let d = self.fetch_directory(Step::Directory, None).await?;
        *cached = Some(d.clone());
        self.shared.nonces.clear();
        Ok(d)
    }

    pub(crate) async fn fetch_directory(
        &self,
        step: Step,
        limit: Option<Duration>,
    ) -> Result<Arc<Directory>, Error> {
        let url = self.shared.directory_url.clone();
        let (d, _) = self
            .get(step, &url, None, limit, |r| r.json::<Directory>())
            .await?;
        Ok(Arc::new(d))
    }

    pub(crate) async fn set_directory(&self, d: Arc<Directory>) {
        *self.shared.directory.lock().await = Some(d);
    }

    /// A fresh nonce: from the pool, or HEAD newNonce.
    pub(crate) async fn nonce(&self, step: Step, limit: Option<Duration>) -> Result<String, Error> {
        for _ in 0..3 {
            if let Some(n) = self.shared.nonces.take() {
                return Ok(n);
            }
            let url = self.directory().await?.new_nonce.clone();
            // Fetching the directory may have brought a nonce.
            if let Some(n) = self.shared.nonces.take() {
                return Ok(n);
            }
            self.head_nonce(step, &url, limit).await?;
        }
        // Other tasks took every nonce we fetched; one more HEAD, kept for ourselves.
        let url = self.directory().await?.new_nonce.clone();
        self.head_nonce(step, &url, limit).await?;
        self.shared
            .nonces
            .take()
            .ok_or_else(|| Error::InvalidResponse {
                step,
                url,
                status: 200,
                reason: "no Replay-Nonce".to_string(),
                body_snippet: String::new(),
            })
    }

    pub(crate) async fn head_nonce(
        &self,
        step: Step,
        url: &str,
        limit: Option<Duration>,
    ) -> Result<(), Error> {
        let request = self.request(Method::HEAD, url, None, None);
        let started = Instant::now();
        let result = self
            .exchange(step, url, request, limit)
            .await
            .and_then(|r| {
                if r.headers.contains_key("replay-nonce") {
                    Ok(r)
                } else {
                    Err(r.invalid("no Replay-Nonce header"))
                }
            });
        self.report(step, url, None, started, result.as_ref().map(|r| r.status));
        result.map(|_| ())
    }

    fn request(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
        accept: Option<&str>,
    ) -> Result<http::Request<Bytes>, Error> {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(url)
            .header(http::header::USER_AGENT, &self.shared.settings.user_agent);
        if body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/jose+json");
        }
        if let Some(accept) = accept {
            builder = builder.header(http::header::ACCEPT, accept);
        }
        builder
            .body(Bytes::from(body.unwrap_or_default()))
            .map_err(|e| Error::InvalidRequest {
                step: Step::Directory,
                detail: format!("request to {url:?}: {e}"),
            })
    }

    /// Sends one request; keeps its nonce; turns error statuses into [`Error::Status`].
    /// Does not report: callers report once they know whether the answer is usable.
    async fn exchange(
        &self,
        step: Step,
        url: &str,
        request: Result<http::Request<Bytes>, Error>,
        limit: Option<Duration>,
    ) -> Result<Reply, Error> {
        let request = request.map_err(|e| match e {
            // A URL the CA gave us that cannot be requested is the CA's fault.
            Error::InvalidRequest { detail, .. } => Error::Transport {
                step,
                url: url.to_string(),
                kind: TransportErrorKind::InvalidRequest,
                message: detail,
            },
            other => other,
        })?;
        let sent = self.shared.http.request(request);
        let answer = match limit {
            Some(limit) => match tokio::time::timeout(limit, sent).await {
                Ok(a) => a,
                Err(_) => Err(TransportError::new(
                    TransportErrorKind::Timeout,
                    format!("no complete answer within {limit:?}"),
                )),
            },
            None => sent.await,
        };
        let response = answer.map_err(|e| Error::Transport {
            step,
            url: url.to_string(),
            kind: e.kind,
            message: e.message,
        })?;
        let (parts, body) = response.into_parts();
        if let Some(nonce) = parts
            .headers
            .get("replay-nonce")
            .and_then(|v| v.to_str().ok())
        {
            self.shared.nonces.put(nonce.trim().to_string());
        }
        let status = parts.status.as_u16();
        if !(200..400).contains(&status) {
            return Err(Error::Status {
                step,
                url: url.to_string(),
                status,
                problem: Problem::from_json(&body).map(Box::new),
                retry_after: headers::retry_after(&parts.headers, Utc::now()),
                body_snippet: headers::body_snippet(&body),
            });
        }
        Ok(Reply {
            step,
            url: url.to_string(),
            status,
            headers: parts.headers,
            body,
        })
    }

    fn report(
        &self,
        step: Step,
        url: &str,
        order_url: Option<&str>,
        started: Instant,
        outcome: Result<u16, &Error>,
    ) {
        self.report_retried(step, url, order_url, started, outcome, false);
    }

    /// [`report`](Self::report), saying whether the request is sent again at once.
    fn report_retried(
        &self,
        step: Step,
        url: &str,
        order_url: Option<&str>,
        started: Instant,
        outcome: Result<u16, &Error>,
        retried: bool,
    ) {
        let latency = started.elapsed();
        let mut event = match outcome {
            Ok(status) => RequestEvent::ok(step, url, status, latency, order_url),
            Err(e) => RequestEvent::failed(step, url, e, latency, order_url),
        };
        event.retried = retried;
        self.observer.observe(event);
    }

    /// An unsigned GET (directory, renewalInfo), parsed by `parse`, reported once.
    pub(crate) async fn get<T>(
        &self,
        step: Step,
        url: &str,
        order_url: Option<&str>,
        limit: Option<Duration>,
        parse: impl FnOnce(&Reply) -> Result<T, Error>,
    ) -> Result<(T, Reply), Error> {
        let request = self.request(Method::GET, url, None, None);
        let started = Instant::now();
        let result = self
            .exchange(step, url, request, limit)
            .await
            .and_then(|r| parse(&r).map(|v| (v, r)));
        self.report(
            step,
            url,
            order_url,
            started,
            result.as_ref().map(|(_, r)| r.status),
        );
        result
    }

    /// A signed POST, retried with the fresh nonce on `badNonce` (up to
    /// [`BAD_NONCE_RETRIES`] times), parsed by `parse`; each attempt reported once, the
    /// ones sent again marked [`RequestEvent::retried`].
    pub(crate) async fn post<T>(
        &self,
        post: Post<'_>,
        parse: impl Fn(&Reply) -> Result<T, Error>,
    ) -> Result<(T, Reply), Error> {
        let mut attempt = 0;
        loop {
            let nonce = self.nonce(Step::Nonce, None).await?;
            let body = jws::sign(post.key, post.key_ref, Some(&nonce), post.url, post.payload)?;
            let request = self.request(
                Method::POST,
                post.url,
                Some(body.to_string().into_bytes()),
                post.accept,
            );
            let started = Instant::now();
            let result = self
                .exchange(post.step, post.url, request, None)
                .await
                .and_then(|r| parse(&r).map(|v| (v, r)));
            let retry = matches!(&result, Err(e) if e.is_problem("badNonce"))
                && attempt < BAD_NONCE_RETRIES;
            self.report_retried(
                post.step,
                post.url,
                post.order_url,
                started,
                result.as_ref().map(|(_, r)| r.status),
                retry,
            );
            match result {
                Err(_) if retry => {
                    attempt += 1;
                    tracing::debug!(
                        url = post.url,
                        attempt,
                        "badNonce; retrying with the fresh nonce"
                    );
                }
                other => return other,
            }
        }
    }
}
