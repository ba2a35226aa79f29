//! Unit tests of the request machinery over a scripted HTTP client: nonces, `badNonce`
//! retries, unusable answers, Retry-After, renewalInfo, newOrder's payload, and one event
//! per request. No network.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use chrono::{TimeDelta, Utc};
use renewd_core::{FailureClass, OutcomeClass, Step};
use serde_json::{Value, json};

use crate::saved_order_tests::{resume, saved_order};
use crate::{
    AccountKey, AcmeClient, BoxFuture, CertId, ClientSettings, Error, HttpClient, Identifier,
    NewOrder, RequestEvent, RequestObserver, TransportError, TransportErrorKind,
};

type Answer = (u16, Vec<(&'static str, String)>, String);

#[derive(Default)]
struct Scripted {
    answers: Mutex<VecDeque<Answer>>,
    seen: Mutex<Vec<(String, String, Bytes)>>,
}

impl Scripted {
    fn push(&self, status: u16, headers: &[(&'static str, &str)], body: &str) {
        self.answers.lock().unwrap().push_back((
            status,
            headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            body.to_string(),
        ));
    }

    fn seen(&self) -> Vec<(String, String, Bytes)> {
        self.seen.lock().unwrap().clone()
    }
}

impl HttpClient for Scripted {
    fn request(
        &self,
        request: http::Request<Bytes>,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, TransportError>> {
        Box::pin(async move {
            self.seen.lock().unwrap().push((
                request.method().to_string(),
                request.uri().to_string(),
                request.body().clone(),
            ));
            let Some((status, headers, body)) = self.answers.lock().unwrap().pop_front() else {
                return Err(TransportError::new(
                    TransportErrorKind::Connect,
                    "script ended",
                ));
            };
            let mut resp = http::Response::builder().status(status);
            for (k, v) in headers {
                resp = resp.header(k, v);
            }
            Ok(resp.body(Bytes::from(body)).unwrap())
        })
    }
}

#[derive(Default)]
struct Events(Mutex<Vec<RequestEvent>>);

impl Events {
    /// The step and outcome of every request so far, in order.
    fn steps(&self) -> Vec<(Step, OutcomeClass)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|e| (e.step, e.class))
            .collect()
    }
}

impl RequestObserver for Events {
    fn observe(&self, event: RequestEvent) {
        self.0.lock().unwrap().push(event);
    }
}

const DIRECTORY: &str = r#"{"newNonce":"https://ca/nonce","newAccount":"https://ca/acct",
    "newOrder":"https://ca/order","revokeCert":"https://ca/revoke","keyChange":"https://ca/kc",
    "renewalInfo":"https://ca/ari/","meta":{"profiles":{"shortlived":"6 days"}}}"#;

fn setup() -> (Arc<Scripted>, Arc<Events>, AcmeClient) {
    let http = Arc::new(Scripted::default());
    let events = Arc::new(Events::default());
    let client =
        AcmeClient::with_http_client("https://ca/dir", http.clone(), ClientSettings::default())
            .with_observer(events.clone());
    (http, events, client)
}

fn protected_of(body: &Bytes) -> Value {
    let jws: Value = serde_json::from_slice(body).unwrap();
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jws["protected"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap()
}

fn payload_of(body: &Bytes) -> Value {
    let jws: Value = serde_json::from_slice(body).unwrap();
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jws["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap()
}

const BAD_NONCE: &str = r#"{"type":"urn:ietf:params:acme:error:badNonce","detail":"stale"}"#;
const ORDER: &str = r#"{"status":"pending","identifiers":[{"type":"dns","value":"a.test"}],
    "authorizations":["https://ca/authz/1"],"finalize":"https://ca/finalize/1","profile":"shortlived"}"#;

#[tokio::test]
async fn bad_nonce_is_retried_five_times_with_each_fresh_nonce() {
    let (http, events, client) = setup();
    http.push(200, &[("replay-nonce", "n0")], DIRECTORY);
    for i in 1..=6 {
        http.push(400, &[("replay-nonce", &format!("n{i}"))], BAD_NONCE);
    }
    let account = client.account(AccountKey::generate(), "https://ca/acct/1");
    let new = NewOrder {
        identifiers: vec![Identifier::dns("a.test")],
        ..NewOrder::default()
    };
    let err = account.new_order(&new).await.unwrap_err();
    assert_eq!(err.class(), FailureClass::BadNonce);
    let nonces: Vec<_> = http.seen()[1..]
        .iter()
        .map(|(_, _, body)| protected_of(body)["nonce"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(nonces, ["n0", "n1", "n2", "n3", "n4", "n5"]);
    let events = events.0.lock().unwrap().clone();
    assert_eq!(events.len(), 7, "directory + six attempts, one event each");
    assert!(events[1..].iter().all(|e| e.class == OutcomeClass::BadNonce
        && e.step == Step::NewOrder
        && e.http_status == Some(400)));
    // The five sent again are marked; the sixth, which persisted, is the outcome.
    let retried: Vec<bool> = events.iter().map(|e| e.retried).collect();
    assert_eq!(retried, [false, true, true, true, true, true, false]);
}

#[tokio::test]
async fn new_order_sends_profile_and_replaces_and_reads_the_echo() {
    let (http, events, client) = setup();
    http.push(200, &[], DIRECTORY);
    // No nonce in the pool: HEAD newNonce first.
    http.push(200, &[("replay-nonce", "h1")], "");
    http.push(400, &[("replay-nonce", "n1")], BAD_NONCE);
    http.push(
        201,
        &[
            ("location", "/order/1"),
            ("replay-nonce", "n2"),
            ("retry-after", "3"),
        ],
        ORDER,
    );
    let account = client.account(AccountKey::generate(), "https://ca/acct/1");
    let order = account
        .new_order(&NewOrder {
            identifiers: vec![Identifier::dns("a.test")],
            profile: Some("shortlived".into()),
            replaces: Some("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        order.url, "https://ca/order/1",
        "Location resolved against the request"
    );
    assert_eq!(order.body.profile.as_deref(), Some("shortlived"));
    let retry_after = order.retry_after.unwrap();
    assert!(
        (retry_after - Utc::now() - TimeDelta::seconds(3))
            .num_seconds()
            .abs()
            <= 1
    );
    let seen = http.seen();
    assert_eq!(seen[1].0, "HEAD");
    let (method, url, body) = &seen[3];
    assert_eq!(
        (method.as_str(), url.as_str()),
        ("POST", "https://ca/order")
    );
    let payload = payload_of(body);
    assert_eq!(payload["profile"], "shortlived");
    assert_eq!(payload["replaces"], "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    assert_eq!(protected_of(body)["kid"], "https://ca/acct/1");
    let steps: Vec<_> = events
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.step, e.class, e.retried))
        .collect();
    assert_eq!(
        steps,
        [
            (Step::Directory, OutcomeClass::Ok, false),
            (Step::Nonce, OutcomeClass::Ok, false),
            (Step::NewOrder, OutcomeClass::BadNonce, true),
            (Step::NewOrder, OutcomeClass::Ok, false),
        ]
    );
}

#[tokio::test]
async fn unusable_success_and_gateway_pages_are_ca_unavailable() {
    let (http, events, client) = setup();
    http.push(200, &[("replay-nonce", "n0")], DIRECTORY);
    http.push(201, &[("replay-nonce", "n1")], "<html>maintenance</html>");
    http.push(
        503,
        &[
            ("retry-after", "Wed, 21 Oct 2065 07:28:00 GMT"),
            ("replay-nonce", "n2"),
        ],
        "<html><body><h1>503 Service Unavailable</h1></body></html>",
    );
    let account = client.account(AccountKey::generate(), "https://ca/acct/1");
    let new = NewOrder {
        identifiers: vec![Identifier::dns("a.test")],
        ..NewOrder::default()
    };
    let err = account.new_order(&new).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidResponse { status: 201, .. }),
        "{err}"
    );
    assert_eq!(err.class(), FailureClass::CaUnavailable);
    assert_eq!(err.body_snippet(), Some("<html>maintenance</html>"));

    let err = account.new_order(&new).await.unwrap_err();
    assert_eq!(err.class(), FailureClass::CaUnavailable);
    assert_eq!(err.http_status(), Some(503));
    assert_eq!(
        err.retry_after().unwrap().to_rfc3339(),
        "2065-10-21T07:28:00+00:00"
    );
    assert!(err.problem().is_none());
    assert!(err.to_string().contains("503 Service Unavailable"), "{err}");
    let classes: Vec<_> = events.0.lock().unwrap().iter().map(|e| e.class).collect();
    assert_eq!(
        classes,
        [
            OutcomeClass::Ok,
            OutcomeClass::CaUnavailable,
            OutcomeClass::CaUnavailable
        ]
    );
}

#[tokio::test]
async fn rate_limits_carry_retry_after() {
    let (http, _, client) = setup();
    http.push(200, &[("replay-nonce", "n0")], DIRECTORY);
    http.push(
        429,
        &[("retry-after", "120"), ("replay-nonce", "n1")],
        r#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many"}"#,
    );
    let account = client.account(AccountKey::generate(), "https://ca/acct/1");
    let err = account.resource().await.unwrap_err();
    let FailureClass::RateLimited {
        retry_after: Some(at),
    } = err.class()
    else {
        panic!("{err:?}");
    };
    assert!(
        (at - Utc::now() - TimeDelta::seconds(120))
            .num_seconds()
            .abs()
            <= 1
    );
}

#[tokio::test]
async fn renewal_info_window_explanation_and_retry_after() {
    let (http, events, client) = setup();
    http.push(200, &[], DIRECTORY);
    http.push(
        200,
        &[("retry-after", "21600")],
        r#"{"suggestedWindow":{"start":"2026-01-02T00:00:00Z","end":"2026-01-03T00:00:00Z"},
            "explanationURL":"https://ca/why"}"#,
    );
    http.push(
        200,
        &[],
        r#"{"suggestedWindow":{"start":"2026-01-03T00:00:00Z","end":"2026-01-02T00:00:00Z"}}"#,
    );
    let id = CertId::from_parts(&[1, 2, 3], &[0, 0x87]);
    let info = client.renewal_info(&id).await.unwrap();
    assert_eq!(info.window_start.to_rfc3339(), "2026-01-02T00:00:00+00:00");
    assert_eq!(info.window_end.to_rfc3339(), "2026-01-03T00:00:00+00:00");
    assert_eq!(info.explanation_url.as_deref(), Some("https://ca/why"));
    assert!(info.retry_after.unwrap() > Utc::now() + TimeDelta::hours(5));
    let seen = http.seen();
    assert_eq!(seen[1].0, "GET");
    assert_eq!(seen[1].1, format!("https://ca/ari/{id}"));

    let backwards = client.renewal_info(&id).await.unwrap_err();
    assert_eq!(backwards.class(), FailureClass::CaUnavailable);
    let steps: Vec<_> = events.0.lock().unwrap().iter().map(|e| e.step).collect();
    assert_eq!(
        steps,
        [Step::Directory, Step::RenewalInfo, Step::RenewalInfo]
    );
}

#[tokio::test]
async fn garbage_directory_is_ca_unavailable_and_not_cached() {
    let (http, _, client) = setup();
    http.push(200, &[], "{\"newNonce\": 5}");
    http.push(200, &[], &json!({"not": "a directory"}).to_string());
    http.push(200, &[], DIRECTORY);
    for _ in 0..2 {
        let err = client.directory().await.unwrap_err();
        assert_eq!(err.class(), FailureClass::CaUnavailable, "{err}");
        assert_eq!(err.step(), Step::Directory);
    }
    let d = client.directory().await.unwrap();
    assert_eq!(d.meta.profiles["shortlived"], "6 days");
    // Cached: no further request.
    client.directory().await.unwrap();
    assert_eq!(http.seen().len(), 3);
}

#[tokio::test]
async fn user_agent_and_content_type_are_sent() {
    let http = Arc::new(Scripted::default());
    http.push(200, &[("replay-nonce", "n0")], DIRECTORY);
    http.push(
        200,
        &[("replay-nonce", "n1")],
        r#"{"status":"valid","contact":[]}"#,
    );
    let probe = Arc::new(HeaderProbe(http.clone(), Mutex::default()));
    let client =
        AcmeClient::with_http_client("https://ca/dir", probe.clone(), ClientSettings::default());
    client
        .account(AccountKey::generate(), "https://ca/acct/1")
        .resource()
        .await
        .unwrap();
    let headers = probe.1.lock().unwrap().clone();
    assert!(
        headers
            .iter()
            .all(|h| h.get("user-agent").unwrap().to_str().unwrap()
                == format!("renewd/{}", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(
        headers[1].get("content-type").unwrap(),
        "application/jose+json"
    );
}

#[tokio::test]
async fn certificate_downloads_accept_only_a_pem_chain() {
    let http = Arc::new(Scripted::default());
    http.push(200, &[("replay-nonce", "n0")], DIRECTORY);
    http.push(
        200,
        &[("replay-nonce", "n1")],
        r#"{"status":"valid","contact":[]}"#,
    );
    let chain = leaf_chain_pem();
    http.push(
        200,
        &[
            ("replay-nonce", "n2"),
            ("content-type", "application/pem-certificate-chain"),
            ("link", r#"<https://ca/cert/1/alt/1>;rel="alternate""#),
        ],
        &chain,
    );
    http.push(
        200,
        &[
            ("replay-nonce", "n3"),
            ("content-type", "application/pem-certificate-chain"),
        ],
        &chain,
    );
    let probe = Arc::new(HeaderProbe(http.clone(), Mutex::default()));
    let client =
        AcmeClient::with_http_client("https://ca/dir", probe.clone(), ClientSettings::default());
    let account = client.account(AccountKey::generate(), "https://ca/acct/1");
    account.resource().await.unwrap();
    let chains = account.download("https://ca/cert/1").await.unwrap();
    assert_eq!(chains.alternates.len(), 1);
    let seen: Vec<String> = http.seen().into_iter().map(|(_, url, _)| url).collect();
    assert_eq!(
        seen,
        [
            "https://ca/dir",
            "https://ca/acct/1",
            "https://ca/cert/1",
            "https://ca/cert/1/alt/1"
        ]
    );
    let accept = |h: &http::HeaderMap| {
        h.get_all(http::header::ACCEPT)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let headers = probe.1.lock().unwrap().clone();
    for (url, h) in seen.iter().zip(&headers).skip(2) {
        assert_eq!(
            accept(h),
            ["application/pem-certificate-chain"],
            "{url}: RFC 8555 §7.4.2"
        );
        assert_eq!(h.get("content-type").unwrap(), "application/jose+json");
    }
    assert!(
        accept(&headers[1])
            .iter()
            .all(|a| a != "application/pem-certificate-chain"),
        "only downloads ask for a PEM chain"
    );
}

struct HeaderProbe(Arc<Scripted>, Mutex<Vec<http::HeaderMap>>);

impl HttpClient for HeaderProbe {
    fn request(
        &self,
        request: http::Request<Bytes>,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, TransportError>> {
        self.1.lock().unwrap().push(request.headers().clone());
        self.0.request(request)
    }
}

fn leaf_chain_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["a.test".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    cert.pem()
}

const READY: &str = r#"{"status":"ready","finalize":"https://ca/finalize/1","authorizations":[]}"#;
const PROCESSING: &str =
    r#"{"status":"processing","finalize":"https://ca/finalize/1","authorizations":[]}"#;
const VALID: &str = r#"{"status":"valid","finalize":"https://ca/finalize/1","authorizations":[],
    "certificate":"https://ca/cert/1"}"#;

/// A client with a 120 s order deadline, over a script that serves the directory and then
/// answers every request with `order` for as long as any test can run.
fn client_always_answering(order: &str) -> (Arc<Scripted>, AcmeClient) {
    let http = Arc::new(Scripted::default());
    http.push(200, &[("replay-nonce", "n0")], DIRECTORY);
    for i in 1..1000 {
        http.push(200, &[("replay-nonce", &format!("n{i}"))], order);
    }
    let settings = ClientSettings {
        order_timeout: std::time::Duration::from_secs(120),
        ..ClientSettings::default()
    };
    let client = AcmeClient::with_http_client("https://ca/dir", http.clone(), settings);
    (http, client)
}

#[tokio::test(start_paused = true)]
async fn recovery_honours_retry_after_clamped() {
    let (http, events, client) = setup();
    http.push(200, &[("replay-nonce", "n0")], DIRECTORY);
    http.push(200, &[("replay-nonce", "n1")], READY);
    http.push(
        503,
        &[("replay-nonce", "n2"), ("retry-after", "30")],
        "<html>503</html>",
    );
    // The CA had acted: the order is processing, and asks for a very long wait.
    http.push(
        200,
        &[("replay-nonce", "n3"), ("retry-after", "100000")],
        PROCESSING,
    );
    http.push(200, &[("replay-nonce", "n4")], VALID);
    http.push(200, &[("replay-nonce", "n5")], &leaf_chain_pem());
    let record = saved_order();
    let started = tokio::time::Instant::now();
    let issued = resume(&client, &record).await.unwrap();
    let waited = started.elapsed();
    // 30 s as asked after the 503, then 60 s (the clamp) instead of 100000 s.
    assert!(
        waited >= std::time::Duration::from_secs(89)
            && waited <= std::time::Duration::from_secs(91),
        "{waited:?}"
    );
    assert_eq!(issued.order_url, "https://ca/order/1");
    assert_eq!(issued.key_pem, record.key_pem);
    let steps = events.steps();
    assert_eq!(
        steps,
        [
            (Step::Directory, OutcomeClass::Ok),
            (Step::PollOrder, OutcomeClass::Ok),
            (Step::Finalize, OutcomeClass::CaUnavailable),
            (Step::PollOrder, OutcomeClass::Ok),
            (Step::PollOrder, OutcomeClass::Ok),
            (Step::Download, OutcomeClass::Ok),
        ]
    );
    // The same CSR was sent.
    let finalize = &http.seen()[2];
    assert_eq!(payload_of(&finalize.2)["csr"], record.csr);
}

#[tokio::test(start_paused = true)]
async fn order_not_ready_means_fetch_the_order_and_an_invalid_order_keeps_its_error() {
    let (http, _, client) = setup();
    http.push(200, &[("replay-nonce", "n0")], DIRECTORY);
    http.push(200, &[("replay-nonce", "n1")], READY);
    http.push(
        403,
        &[("replay-nonce", "n2")],
        r#"{"type":"urn:ietf:params:acme:error:orderNotReady","detail":"not ready"}"#,
    );
    http.push(
        200,
        &[("replay-nonce", "n3")],
        r#"{"status":"invalid","finalize":"https://ca/finalize/1","authorizations":[],
            "error":{"type":"urn:ietf:params:acme:error:caa","detail":"CAA forbids"}}"#,
    );
    let record = saved_order();
    let err = resume(&client, &record).await.unwrap_err();
    assert!(matches!(err, Error::OrderInvalid { .. }), "{err}");
    assert!(err.is_problem("caa"));
    assert_eq!(err.class(), FailureClass::Rejected { ca_specific: true });
}

#[tokio::test(start_paused = true)]
async fn a_stuck_order_ends_at_the_overall_deadline() {
    let (http, client) = client_always_answering(PROCESSING);
    let record = saved_order();
    let started = tokio::time::Instant::now();
    let err = resume(&client, &record).await.unwrap_err();
    assert!(matches!(err, Error::Deadline { .. }), "{err}");
    assert_eq!(err.class(), FailureClass::CaUnavailable);
    assert_eq!(started.elapsed(), std::time::Duration::from_secs(120));
    let polls = http.seen().len() - 1;
    assert!(
        (20..80).contains(&polls),
        "backed off: {polls} polls in 120 s"
    );
}

#[tokio::test(start_paused = true)]
async fn finalize_answered_with_a_still_ready_order_is_not_resent_in_a_hot_loop() {
    // A CA that answers finalize 200 but never acts: the order stays `ready`. Finalize is
    // sent again only after a wait, like any poll, and at most `max_finalizes` times; then
    // the attempt ends (the order may still complete later).
    let (http, client) = client_always_answering(READY);
    let record = saved_order();
    let started = tokio::time::Instant::now();
    let err = resume(&client, &record).await.unwrap_err();
    assert!(
        matches!(err, Error::FinalizeUnanswered { sent: 5, .. }),
        "{err}"
    );
    assert_eq!(err.class(), FailureClass::CaUnavailable);
    assert!(!err.order_is_dead());
    let waited = started.elapsed();
    assert!(
        waited > std::time::Duration::ZERO && waited < std::time::Duration::from_secs(120),
        "{waited:?}"
    );
    let finalizes = http
        .seen()
        .iter()
        .filter(|(_, url, _)| url.contains("/finalize/"))
        .count();
    assert_eq!(finalizes, 5, "finalize sent {finalizes} times");
}

#[tokio::test(start_paused = true)]
async fn retry_after_zero_on_a_processing_order_is_not_polled_in_a_hot_loop() {
    // A CA that keeps saying "Retry-After: 0" (or a past date) while processing: polls are
    // still spaced by at least the first poll interval.
    let (http, _, client) = setup();
    http.push(200, &[("replay-nonce", "n0")], DIRECTORY);
    const POLLS: usize = 200;
    for i in 0..POLLS {
        let retry_after = if i % 2 == 0 {
            "0"
        } else {
            "Wed, 21 Oct 2015 07:28:00 GMT"
        };
        http.push(
            200,
            &[
                ("replay-nonce", &format!("p{i}")),
                ("retry-after", retry_after),
            ],
            PROCESSING,
        );
    }
    http.push(200, &[("replay-nonce", "v")], VALID);
    http.push(200, &[("replay-nonce", "c")], &leaf_chain_pem());
    let record = saved_order();
    let started = tokio::time::Instant::now();
    resume(&client, &record).await.unwrap();
    let floor = client.settings().poll.failure_interval;
    assert!(
        started.elapsed() >= floor * POLLS as u32,
        "{POLLS} polls in {:?}",
        started.elapsed()
    );
}
