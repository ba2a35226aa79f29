//! libFuzzer target: arbitrary server answers through one request path of the client.
#![no_main]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use renewd_acme::{
    AccountKey, AcmeClient, BoxError, BoxFuture, CertId, ChallengeAnswer, ChallengeSolver,
    ClientSettings, Error, HttpClient, Identifier, IssueRequest, MemoryPendingOrders, NewAccount,
    NewOrder, TransportError, TransportErrorKind,
};

#[derive(Debug, Arbitrary)]
enum Header {
    ReplayNonce,
    RetryAfter,
    Link,
    Location,
    ContentType,
}

#[derive(Debug, Arbitrary)]
struct Answer {
    status: u16,
    headers: Vec<(Header, Vec<u8>)>,
    body: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
enum Path {
    Directory,
    Probe,
    NewAccount,
    NewOrder,
    Order,
    Authorization,
    PollAuthorization,
    Challenge,
    Finalize,
    Download,
    RenewalInfo,
    Issue,
}

#[derive(Debug, Arbitrary)]
struct Input {
    path: Path,
    /// Whether a valid directory (with a nonce) comes first.
    with_directory: bool,
    answers: Vec<Answer>,
}

const CA: &str = "https://ca.test";

struct Scripted(Mutex<VecDeque<Answer>>);

impl HttpClient for Scripted {
    fn request(
        &self,
        _: http::Request<Bytes>,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, TransportError>> {
        let next = self.0.lock().map(|mut q| q.pop_front()).ok().flatten();
        Box::pin(async move {
            let Some(a) = next else {
                return Err(TransportError::new(
                    TransportErrorKind::Connect,
                    "script ended",
                ));
            };
            let status = http::StatusCode::from_u16(a.status).unwrap_or(http::StatusCode::OK);
            let mut response = http::Response::builder().status(status);
            for (name, value) in a.headers {
                let name = match name {
                    Header::ReplayNonce => "replay-nonce",
                    Header::RetryAfter => "retry-after",
                    Header::Link => "link",
                    Header::Location => "location",
                    Header::ContentType => "content-type",
                };
                if let Ok(v) = http::HeaderValue::from_bytes(&value) {
                    response = response.header(name, v);
                }
            }
            response
                .body(Bytes::from(a.body))
                .map_err(|e| TransportError::new(TransportErrorKind::Other, e.to_string()))
        })
    }
}

struct Noop;

impl ChallengeSolver for Noop {
    fn present<'a>(&'a self, _: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async { Ok(()) })
    }
    fn cleanup<'a>(&'a self, _: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async { Ok(()) })
    }
}

fn directory() -> Answer {
    let body = serde_json::json!({
        "newNonce": format!("{CA}/nonce"), "newAccount": format!("{CA}/acct"),
        "newOrder": format!("{CA}/order"), "revokeCert": format!("{CA}/revoke"),
        "keyChange": format!("{CA}/kc"), "renewalInfo": format!("{CA}/ari"),
        "meta": {"profiles": {"classic": "90 days"}}
    });
    Answer {
        status: 200,
        headers: vec![(Header::ReplayNonce, b"n".to_vec())],
        body: body.to_string().into_bytes(),
    }
}

fn inspect<T>(result: Result<T, Error>) {
    if let Err(e) = result {
        let _ = (
            e.class(),
            e.step(),
            e.url(),
            e.http_status(),
            e.problem_type(),
        );
        let _ = (e.retry_after(), e.body_snippet(), e.to_string());
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a runtime")
    })
}

fn key() -> AccountKey {
    static KEY: OnceLock<AccountKey> = OnceLock::new();
    KEY.get_or_init(AccountKey::generate).clone()
}

fuzz_target!(|input: Input| {
    let mut script = VecDeque::new();
    if input.with_directory {
        script.push_back(directory());
    }
    script.extend(input.answers);
    let http = Arc::new(Scripted(Mutex::new(script)));
    let client = AcmeClient::with_http_client(format!("{CA}/dir"), http, ClientSettings::default());
    let account = client.account(key(), format!("{CA}/acct/1"));
    let order_url = format!("{CA}/order/1");
    runtime().block_on(async {
        match input.path {
            Path::Directory => inspect(client.directory().await),
            Path::Probe => inspect(client.probe().await),
            Path::NewAccount => {
                let new = NewAccount {
                    contact: vec![],
                    terms_of_service_agreed: true,
                    eab: None,
                };
                inspect(client.new_account(key(), &new).await)
            }
            Path::NewOrder => {
                let new = NewOrder {
                    identifiers: vec![Identifier::dns("a.test")],
                    profile: Some("classic".into()),
                    replaces: Some("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE".into()),
                };
                inspect(account.new_order(&new).await)
            }
            Path::Order => inspect(account.order(&order_url).await),
            Path::Authorization => inspect(account.authorization(&format!("{CA}/authz/1")).await),
            Path::PollAuthorization => {
                inspect(account.poll_authorization(&format!("{CA}/authz/1")).await)
            }
            Path::Challenge => inspect(account.respond_challenge(&format!("{CA}/chall/1")).await),
            Path::Finalize => inspect(
                account
                    .finalize(&order_url, &format!("{order_url}/finalize"), b"csr")
                    .await,
            ),
            Path::Download => {
                if let Ok(chains) = account.download(&format!("{CA}/cert/1")).await {
                    for chain in std::iter::once(&chains.default).chain(&chains.alternates) {
                        let _ = (chain.certificates_der(), chain.top_issuer_common_name());
                    }
                    let _ = chains.choose(Some("Root"));
                }
            }
            Path::RenewalInfo => inspect(
                client
                    .renewal_info(&CertId::from_parts(&[1, 2], &[0, 3]))
                    .await,
            ),
            Path::Issue => {
                let sink = MemoryPendingOrders::default();
                let request = IssueRequest::dns(&["a.test"]);
                inspect(account.issue(&request, &Noop, &sink).await)
            }
        }
    });
});
