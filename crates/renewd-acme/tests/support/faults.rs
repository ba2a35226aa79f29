//! A fault-injecting HTTP client: wraps the real one and, for requests whose path matches,
//! answers differently — the "504 but issued anyway" case is a real pebble finalize whose
//! answer is replaced.

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use renewd_acme::{BoxFuture, HttpClient, HyperClient, TransportError, TransportErrorKind};
use tokio::sync::Notify;

/// What to do with a matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Send it to pebble, then answer `status` with `body` instead of pebble's answer.
    ReplaceAnswer { status: u16, body: &'static str },
    /// Do not send it; answer `status` with `body` (and a fresh nonce from pebble).
    AnswerWithoutSending { status: u16, body: &'static str },
    /// Send it to pebble, then fail as a timeout.
    TimeoutAfterSending,
    /// Send it to pebble, then notify and never answer (the client "dies" here).
    HangAfterSending(Arc<Notify>),
    /// Add JSON members to a JSON answer (e.g. `renewalInfo` in the directory).
    AddJson(serde_json::Value),
}

#[derive(Debug)]
struct Rule {
    path_contains: &'static str,
    fault: Fault,
    remaining: usize,
}

/// One request as sent: method, URL and the decoded JWS payload (if any).
#[derive(Debug, Clone)]
pub struct Sent {
    pub method: String,
    pub url: String,
    pub payload: Option<serde_json::Value>,
}

#[derive(Debug)]
pub struct FaultyHttp {
    inner: HyperClient,
    rules: Mutex<Vec<Rule>>,
    sent: Mutex<Vec<Sent>>,
}

impl FaultyHttp {
    pub fn new(inner: HyperClient) -> Arc<FaultyHttp> {
        Arc::new(FaultyHttp {
            inner,
            rules: Mutex::default(),
            sent: Mutex::default(),
        })
    }

    /// Applies `fault` to the next `times` requests whose path contains `path_contains`.
    pub fn add(&self, path_contains: &'static str, times: usize, fault: Fault) {
        self.rules.lock().unwrap().push(Rule {
            path_contains,
            fault,
            remaining: times,
        });
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    fn take_fault(&self, path: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap();
        let rule = rules
            .iter_mut()
            .find(|r| r.remaining > 0 && path.contains(r.path_contains))?;
        rule.remaining -= 1;
        Some(rule.fault.clone())
    }

    async fn fresh_nonce(&self, uri: &http::Uri) -> Option<http::HeaderValue> {
        let url = format!(
            "{}://{}/nonce-plz",
            uri.scheme_str().unwrap_or("https"),
            uri.authority()?
        );
        let req = http::Request::head(url).body(Bytes::new()).ok()?;
        let resp = self.inner.request(req).await.ok()?;
        resp.headers().get("replay-nonce").cloned()
    }
}

fn payload_of(body: &[u8]) -> Option<serde_json::Value> {
    let jws: serde_json::Value = serde_json::from_slice(body).ok()?;
    let payload = URL_SAFE_NO_PAD.decode(jws["payload"].as_str()?).ok()?;
    serde_json::from_slice(&payload).ok()
}

fn answer(
    status: u16,
    body: &'static str,
    nonce: Option<http::HeaderValue>,
) -> http::Response<Bytes> {
    let mut resp = http::Response::builder().status(status);
    if body.starts_with('{') {
        resp = resp.header("content-type", "application/problem+json");
    } else {
        resp = resp.header("content-type", "text/html");
    }
    if let Some(nonce) = nonce {
        resp = resp.header("replay-nonce", nonce);
    }
    resp.body(Bytes::from_static(body.as_bytes())).unwrap()
}

impl HttpClient for FaultyHttp {
    fn request(
        &self,
        request: http::Request<Bytes>,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, TransportError>> {
        Box::pin(async move {
            let uri = request.uri().clone();
            self.sent.lock().unwrap().push(Sent {
                method: request.method().to_string(),
                url: uri.to_string(),
                payload: payload_of(request.body()),
            });
            let fault = self.take_fault(uri.path());
            match fault {
                None => self.inner.request(request).await,
                Some(Fault::ReplaceAnswer { status, body }) => {
                    let real = self.inner.request(request).await?;
                    Ok(answer(
                        status,
                        body,
                        real.headers().get("replay-nonce").cloned(),
                    ))
                }
                Some(Fault::AnswerWithoutSending { status, body }) => {
                    Ok(answer(status, body, self.fresh_nonce(&uri).await))
                }
                Some(Fault::TimeoutAfterSending) => {
                    let _ = self.inner.request(request).await;
                    Err(TransportError::new(
                        TransportErrorKind::Timeout,
                        "injected timeout",
                    ))
                }
                Some(Fault::HangAfterSending(notify)) => {
                    let _ = self.inner.request(request).await;
                    notify.notify_one();
                    std::future::pending().await
                }
                Some(Fault::AddJson(extra)) => {
                    let real = self.inner.request(request).await?;
                    let (parts, body) = real.into_parts();
                    let mut json: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    for (k, v) in extra.as_object().unwrap() {
                        json[k] = v.clone();
                    }
                    Ok(http::Response::from_parts(
                        parts,
                        Bytes::from(json.to_string()),
                    ))
                }
            }
        })
    }
}
