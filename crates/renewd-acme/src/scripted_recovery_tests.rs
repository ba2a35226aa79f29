//! Finalize recovery against CAs that misbehave for a long time, over an HTTP client that
//! answers by URL (no network, paused time): how many requests reach the CA, and that the
//! attempt ends with the order left to be resumed.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use renewd_core::FailureClass;

use crate::saved_order_tests::{self, saved_order};
use crate::{
    AcmeClient, BoxFuture, ClientSettings, Error, HttpClient, TransportError, TransportErrorKind,
};

/// How the CA answers a request: (status, body) from the method and URL.
type Route = dyn Fn(&str) -> (u16, &'static str) + Send + Sync;

/// Answers by URL; after `limit` requests it stops answering (connection refused), so a
/// client in a hot loop ends instead of spinning for ever.
struct Routed {
    route: Box<Route>,
    limit: usize,
    seen: Mutex<Vec<String>>,
}

impl Routed {
    fn new(route: impl Fn(&str) -> (u16, &'static str) + Send + Sync + 'static) -> Arc<Routed> {
        Arc::new(Routed {
            route: Box::new(route),
            limit: 1000,
            seen: Mutex::default(),
        })
    }

    fn count(&self, part: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|u| u.contains(part))
            .count()
    }
}

impl HttpClient for Routed {
    fn request(
        &self,
        request: http::Request<Bytes>,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, TransportError>> {
        Box::pin(async move {
            let url = request.uri().to_string();
            let n = {
                let mut seen = self.seen.lock().unwrap();
                seen.push(url.clone());
                seen.len()
            };
            if n > self.limit {
                return Err(TransportError::new(
                    TransportErrorKind::Connect,
                    "the test CA stopped answering",
                ));
            }
            let (status, body) = (self.route)(&url);
            let content_type = if body.starts_with('<') {
                "text/html"
            } else {
                "application/json"
            };
            let mut response = http::Response::builder()
                .status(status)
                .header("content-type", content_type);
            // Gateway pages carry no nonce; the CA's own answers do.
            if !body.starts_with('<') {
                response = response.header("replay-nonce", format!("n{n}"));
            }
            Ok(response.body(Bytes::from_static(body.as_bytes())).unwrap())
        })
    }
}

const DIRECTORY: &str = r#"{"newNonce":"https://ca/nonce","newAccount":"https://ca/acct",
    "newOrder":"https://ca/new-order","revokeCert":"https://ca/revoke","keyChange":"https://ca/kc"}"#;
const READY: &str = r#"{"status":"ready","finalize":"https://ca/finalize/1","authorizations":[]}"#;
const PENDING: &str =
    r#"{"status":"pending","finalize":"https://ca/finalize/1","authorizations":[]}"#;
const GATEWAY_504: &str = "<html><head><title>504 Gateway Time-out</title></head></html>";
const GATEWAY_502: &str = "<html><head><title>502 Bad Gateway</title></head></html>";

/// Resumes the saved order `https://ca/order/1` through `http`; returns the error and the
/// (virtual) time it took.
async fn resume(http: Arc<Routed>) -> (Error, Duration) {
    let client = AcmeClient::with_http_client("https://ca/dir", http, ClientSettings::default());
    let record = saved_order();
    let started = tokio::time::Instant::now();
    let err = saved_order_tests::resume(&client, &record)
        .await
        .unwrap_err();
    (err, started.elapsed())
}

#[tokio::test(start_paused = true)]
async fn finalize_answered_pending_while_the_order_says_ready_is_not_a_hot_loop() {
    // The CA answers finalize with a `pending` order, then shows the order `ready` again:
    // finalize is re-sent only after a wait, at most five times.
    let http = Routed::new(|url| match url {
        u if u.ends_with("/dir") => (200, DIRECTORY),
        u if u.ends_with("/nonce") => (200, ""),
        u if u.contains("/finalize/") => (200, PENDING),
        _ => (200, READY),
    });
    let (err, took) = resume(http.clone()).await;
    assert!(
        matches!(err, Error::FinalizeUnanswered { sent: 5, .. }),
        "{err}"
    );
    assert_eq!(err.class(), FailureClass::CaUnavailable);
    assert_eq!(http.count("/finalize/"), 5);
    assert!(
        http.count("/order/1") <= 6,
        "{} order fetches",
        http.count("/order/1")
    );
    assert!(took > Duration::ZERO, "the finalizes were spaced out");
}

#[tokio::test(start_paused = true)]
async fn a_finalize_that_keeps_failing_is_sent_five_times_then_left_for_later() {
    // Finalize answers a gateway's 504 again and again while the order stays `ready`.
    let http = Routed::new(|url| match url {
        u if u.ends_with("/dir") => (200, DIRECTORY),
        u if u.ends_with("/nonce") => (200, ""),
        u if u.contains("/finalize/") => (504, GATEWAY_504),
        _ => (200, READY),
    });
    let (err, took) = resume(http.clone()).await;
    assert_eq!(err.http_status(), Some(504), "{err}");
    assert_eq!(err.class(), FailureClass::CaUnavailable);
    assert!(!err.order_is_dead());
    assert_eq!(http.count("/finalize/"), 5);
    // After each failed finalize, a wait and a look at the order (the CA may have acted
    // on the last one): 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s, the back-off doubling.
    assert_eq!(http.count("/order/1"), 6);
    assert_eq!(took, Duration::from_millis(3100));
}

#[tokio::test(start_paused = true)]
async fn an_outage_of_every_request_is_asked_at_most_once_a_minute() {
    // After one `ready` answer, finalize gets 504 and every order fetch 502 for the whole
    // order timeout (600 s): the fetches back off to one a minute.
    let first = Mutex::new(true);
    let http = Routed::new(move |url| match url {
        u if u.ends_with("/dir") => (200, DIRECTORY),
        u if u.ends_with("/nonce") => (200, ""),
        u if u.contains("/finalize/") => (504, GATEWAY_504),
        _ if std::mem::take(&mut *first.lock().unwrap()) => (200, READY),
        _ => (502, GATEWAY_502),
    });
    let (err, took) = resume(http.clone()).await;
    assert_eq!(took, Duration::from_secs(600));
    assert_eq!(err.class(), FailureClass::CaUnavailable, "{err}");
    assert_eq!(http.count("/finalize/"), 1);
    let fetches = http.count("/order/1");
    // The first fetch, ten after the doubling waits (0.1 s to 51.2 s, 102.3 s in all),
    // eight a minute apart, and a last one at the deadline.
    assert_eq!(fetches, 20, "{fetches} order fetches in 600 s");
}
