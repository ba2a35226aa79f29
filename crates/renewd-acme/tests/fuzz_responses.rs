//! Property tests: arbitrary server answers (status, headers, body) fed through the
//! client's [`HttpClient`] seam into every request path — directory, nonce, account,
//! newOrder, order, authorization, challenge, finalize, download with `Link` chains,
//! renewalInfo, problem documents, `Retry-After` — and through a whole issuance. The
//! property: no panic, and every failure classifies and prints.
//!
//! Bodies are random bytes, random JSON, or valid documents with fields replaced by random
//! JSON (which reaches deeper than bytes alone). Cases per property: `PROPTEST_CASES`
//! (default 1,000 here; CI runs the default).
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::test_runner::Config;
use renewd_acme::{
    Account, AccountKey, AcmeClient, BoxError, BoxFuture, CertId, ChallengeAnswer, ChallengeSolver,
    ClientSettings, Error, HttpClient, Identifier, IssueRequest, MemoryPendingOrders, NewAccount,
    NewOrder, PollPolicy, TransportError, TransportErrorKind, parse_links, parse_retry_after,
};
use serde_json::{Value, json};

/// One scripted answer.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Vec<u8>,
}

impl Answer {
    fn ok(body: &Value) -> Answer {
        Answer {
            status: 200,
            headers: vec![("replay-nonce", b"nonce-from-script".to_vec())],
            body: body.to_string().into_bytes(),
        }
    }
}

/// Answers requests from a script; once it runs out, every request fails to connect.
#[derive(Debug, Default)]
struct Scripted {
    answers: Mutex<VecDeque<Answer>>,
}

impl Scripted {
    fn new(answers: Vec<Answer>) -> Arc<Scripted> {
        Arc::new(Scripted {
            answers: Mutex::new(answers.into()),
        })
    }
}

impl HttpClient for Scripted {
    fn request(
        &self,
        _request: http::Request<Bytes>,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, TransportError>> {
        let next = self.answers.lock().unwrap().pop_front();
        Box::pin(async move {
            let Some(a) = next else {
                return Err(TransportError::new(
                    TransportErrorKind::Connect,
                    "script ended",
                ));
            };
            let mut response = http::Response::builder()
                .status(http::StatusCode::from_u16(a.status).unwrap_or(http::StatusCode::OK));
            for (name, value) in a.headers {
                // Bytes a header value cannot hold never reach a client: skip them.
                if let Ok(v) = http::HeaderValue::from_bytes(&value) {
                    response = response.header(name, v);
                }
            }
            Ok(response.body(Bytes::from(a.body)).unwrap())
        })
    }
}

const CA: &str = "https://ca.test";

fn directory() -> Value {
    json!({
        "newNonce": format!("{CA}/nonce"), "newAccount": format!("{CA}/acct"),
        "newOrder": format!("{CA}/order"), "revokeCert": format!("{CA}/revoke"),
        "keyChange": format!("{CA}/kc"), "renewalInfo": format!("{CA}/ari"),
        "meta": {"termsOfService": "tos", "externalAccountRequired": false,
                 "profiles": {"classic": "90 days", "shortlived": "6 days"}}
    })
}

fn order(status: &str) -> Value {
    json!({
        "status": status, "expires": "2030-01-01T00:00:00Z",
        "identifiers": [{"type": "dns", "value": "a.test"}],
        "authorizations": [format!("{CA}/authz/1")],
        "finalize": format!("{CA}/order/1/finalize"),
        "certificate": format!("{CA}/cert/1"), "profile": "classic"
    })
}

fn authorization() -> Value {
    json!({
        "identifier": {"type": "dns", "value": "a.test"}, "status": "pending",
        "expires": "2030-01-01T00:00:00Z",
        "challenges": [challenge()], "wildcard": false
    })
}

fn challenge() -> Value {
    json!({"type": "http-01", "url": format!("{CA}/chall/1"), "status": "pending",
           "token": "tok_en-123"})
}

fn problem() -> Value {
    json!({"type": "urn:ietf:params:acme:error:badNonce", "detail": "d", "status": 400,
           "subproblems": [{"type": "urn:ietf:params:acme:error:caa", "detail": "x",
                            "identifier": {"type": "dns", "value": "a.test"}}]})
}

fn renewal_info() -> Value {
    json!({"suggestedWindow": {"start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z"},
           "explanationURL": "https://ca.test/why"})
}

fn account_resource() -> Value {
    json!({"status": "valid", "contact": ["mailto:a@b.test"], "orders": format!("{CA}/orders")})
}

/// Any JSON value, a few levels deep, with keys ACME objects use among random ones.
fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "status",
            "type",
            "detail",
            "identifiers",
            "identifier",
            "value",
            "authorizations",
            "finalize",
            "certificate",
            "challenges",
            "url",
            "token",
            "error",
            "subproblems",
            "suggestedWindow",
            "start",
            "end",
            "newNonce",
            "newOrder",
            "meta",
            "profiles",
            "wildcard",
            "expires",
            "profile",
            "replaces",
            "explanationURL",
        ])
        .prop_map(str::to_string),
        "[a-zA-Z]{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(vec![
            "valid",
            "pending",
            "ready",
            "processing",
            "invalid",
            "http-01",
            "dns",
            "urn:ietf:params:acme:error:badNonce",
            "2030-01-01T00:00:00Z",
            "https://ca.test/x",
            "",
            "\u{0}",
            "é🙂",
        ])
        .prop_map(Value::from),
        ".{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A valid document with some members replaced by random JSON or removed, members of
/// nested objects and arrays included.
fn mutated(doc: Value) -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (any::<prop::sample::Index>(), prop::option::of(arb_json())),
        0..4,
    )
    .prop_map(move |edits| {
        let mut doc = doc.clone();
        for (index, replacement) in edits {
            mutate(&mut doc, index, replacement);
        }
        doc
    })
}

fn mutate(doc: &mut Value, index: prop::sample::Index, replacement: Option<Value>) {
    let mut paths = Vec::new();
    collect_paths(doc, &mut Vec::new(), &mut paths);
    if paths.is_empty() {
        return;
    }
    let path = index.get(&paths).clone();
    let Some((last, parents)) = path.split_last() else {
        if let Some(r) = replacement {
            *doc = r;
        }
        return;
    };
    let mut node = &mut *doc;
    for step in parents {
        node = match step {
            Step::Key(k) => &mut node[k.as_str()],
            Step::Index(i) => &mut node[*i],
        };
    }
    match (last, replacement, node) {
        (Step::Key(k), Some(r), Value::Object(m)) => {
            m.insert(k.clone(), r);
        }
        (Step::Key(k), None, Value::Object(m)) => {
            m.remove(k);
        }
        (Step::Index(i), Some(r), Value::Array(a)) => a[*i] = r,
        (Step::Index(i), None, Value::Array(a)) => {
            a.remove(*i);
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn collect_paths(v: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                here.push(Step::Key(k.clone()));
                collect_paths(child, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                here.push(Step::Index(i));
                collect_paths(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

/// A PEM chain that may or may not be one: real-looking armour around random bytes, cut or
/// doubled, or a real chain with some lines broken.
fn arb_pem() -> impl Strategy<Value = Vec<u8>> {
    let armour =
        |b64: String| format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
    prop_oneof![
        "[A-Za-z0-9+/=\n]{0,400}".prop_map(move |b| armour(b).into_bytes()),
        (valid_chain_pem(), any::<prop::sample::Index>(), any::<u8>()).prop_map(
            |(pem, at, byte)| {
                let mut bytes = pem.into_bytes();
                let i = at.index(bytes.len());
                bytes[i] = byte;
                bytes
            }
        ),
        (valid_chain_pem(), any::<prop::sample::Index>())
            .prop_map(|(pem, at)| pem.as_bytes()[..at.index(pem.len())].to_vec()),
        valid_chain_pem().prop_map(String::into_bytes),
    ]
}

/// One real two-certificate chain, made once.
fn valid_chain_pem() -> impl Strategy<Value = String> {
    static CHAIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    Just(
        CHAIN
            .get_or_init(|| {
                use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
                let ca_key = KeyPair::generate().unwrap();
                let mut ca = CertificateParams::default();
                ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                let ca_cert = ca.self_signed(&ca_key).unwrap();
                let issuer = Issuer::new(ca, ca_key);
                let leaf_key = KeyPair::generate().unwrap();
                let mut leaf = CertificateParams::new(vec!["a.test".to_string()]).unwrap();
                leaf.use_authority_key_identifier_extension = true;
                let leaf = leaf.signed_by(&leaf_key, &issuer).unwrap();
                format!("{}{}", leaf.pem(), ca_cert.pem())
            })
            .clone(),
    )
}

/// Header values as servers and proxies send them, and as they should not.
fn arb_header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        "[0-9]{0,25}".prop_map(String::into_bytes),
        "-?[0-9]{1,4}(\\.[0-9])?".prop_map(String::into_bytes),
        "(Mon|Tue|Sun|Xyz), [0-9]{1,2} (Jan|Oct|Foo) [0-9]{1,5} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
            .prop_map(String::into_bytes),
        "(<[ -~]{0,30}>)?( ?;[ -~]{0,20})*(, ?<[ -~]{0,30}>;rel=\"?alternate\"?)*"
            .prop_map(String::into_bytes),
        "[ -~]{0,80}".prop_map(String::into_bytes),
    ]
}

fn arb_headers() -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    let name = prop::sample::select(vec![
        "replay-nonce",
        "retry-after",
        "link",
        "location",
        "content-type",
    ]);
    prop::collection::vec((name, arb_header_value()), 0..5)
}

fn arb_status() -> impl Strategy<Value = u16> {
    prop_oneof![
        3 => prop::sample::select(vec![200u16, 201, 204, 301, 400, 403, 404, 409, 429, 500, 502, 503, 504]),
        1 => 100u16..=599,
    ]
}

/// An answer whose body is random bytes, random JSON, or `doc` mutated.
fn arb_answer(doc: Value) -> impl Strategy<Value = Answer> {
    let body = prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..256),
        1 => arb_json().prop_map(|v| v.to_string().into_bytes()),
        1 => mutated(problem()).prop_map(|v| v.to_string().into_bytes()),
        3 => mutated(doc).prop_map(|v| v.to_string().into_bytes()),
    ];
    (arb_status(), arb_headers(), body).prop_map(|(status, headers, body)| Answer {
        status,
        headers,
        body,
    })
}

/// A few answers: the fuzzed one, and more for badNonce retries and follow-up requests.
fn arb_answers(doc: Value) -> impl Strategy<Value = Vec<Answer>> {
    prop::collection::vec(arb_answer(doc), 1..4)
}

fn settings() -> ClientSettings {
    ClientSettings {
        poll: PollPolicy {
            timeout: std::time::Duration::from_secs(30),
            ..PollPolicy::default()
        },
        order_timeout: std::time::Duration::from_secs(60),
        ..ClientSettings::default()
    }
}

/// A client over `answers`, preceded by a valid directory (which brings a nonce) unless
/// `with_directory` is false.
fn client(with_directory: bool, answers: Vec<Answer>) -> AcmeClient {
    let mut script = Vec::new();
    if with_directory {
        script.push(Answer::ok(&directory()));
    }
    script.extend(answers);
    AcmeClient::with_http_client(format!("{CA}/dir"), Scripted::new(script), settings())
}

fn account(client: &AcmeClient) -> Account {
    static KEY: std::sync::OnceLock<AccountKey> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(AccountKey::generate).clone();
    client.account(key, format!("{CA}/acct/1"))
}

/// Every accessor of a failure, exercised: none may panic.
fn inspect<T>(result: Result<T, Error>) {
    if let Err(e) = result {
        let _ = (
            e.class(),
            e.step(),
            e.url(),
            e.http_status(),
            e.problem_type(),
        );
        let _ = (e.retry_after(), e.body_snippet(), e.is_problem("badNonce"));
        let text = e.to_string();
        assert!(!text.is_empty());
    }
}

/// Runs `f` on a fresh current-thread runtime with paused time, so back-offs and polls
/// cost no wall-clock time.
fn run<F: std::future::Future<Output = ()>>(f: F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(f);
}

fn config() -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(2000),
        failure_persistence: None,
        ..Config::default()
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

fn new_order() -> NewOrder {
    NewOrder {
        identifiers: vec![Identifier::dns("a.test")],
        profile: Some("classic".to_string()),
        replaces: Some("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE".to_string()),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_answer_to_directory_and_probe(dir in arb_answer(directory()), nonce in arb_answer(json!({}))) {
        run(async {
            let c = client(false, vec![dir.clone()]);
            inspect(c.directory().await);
            let c = client(false, vec![dir, nonce]);
            inspect(c.probe().await);
        });
    }

    #[test]
    fn any_answer_to_account(answers in arb_answers(account_resource())) {
        run(async {
            let c = client(true, answers);
            let new = NewAccount { contact: vec![], terms_of_service_agreed: true, eab: None };
            inspect(c.new_account(AccountKey::generate(), &new).await);
        });
    }

    #[test]
    fn any_answer_to_new_order_and_problem_documents(answers in arb_answers(order("pending"))) {
        run(async {
            let c = client(true, answers);
            inspect(account(&c).new_order(&new_order()).await);
        });
    }

    #[test]
    fn any_answer_to_order(answers in arb_answers(order("processing"))) {
        run(async {
            let c = client(true, answers);
            inspect(account(&c).order(&format!("{CA}/order/1")).await);
        });
    }

    #[test]
    fn any_answer_to_authorization_and_its_polling(answers in arb_answers(authorization())) {
        run(async {
            let c = client(true, answers.clone());
            inspect(account(&c).authorization(&format!("{CA}/authz/1")).await);
            let c = client(true, answers);
            inspect(account(&c).poll_authorization(&format!("{CA}/authz/1")).await);
        });
    }

    #[test]
    fn any_answer_to_challenge(answers in arb_answers(challenge())) {
        run(async {
            let c = client(true, answers);
            inspect(account(&c).respond_challenge(&format!("{CA}/chall/1")).await);
        });
    }

    #[test]
    fn any_answer_to_finalize(answers in arb_answers(order("valid"))) {
        run(async {
            let c = client(true, answers);
            let url = format!("{CA}/order/1");
            inspect(account(&c).finalize(&url, &format!("{url}/finalize"), b"csr").await);
        });
    }

    #[test]
    fn any_answer_to_certificate_chains_and_links(
        status in arb_status(),
        headers in arb_headers(),
        body in arb_pem(),
        alternates in prop::collection::vec((arb_status(), arb_headers(), arb_pem()), 0..3),
    ) {
        let answers: Vec<Answer> = std::iter::once((status, headers, body))
            .chain(alternates)
            .map(|(status, headers, body)| Answer { status, headers, body })
            .collect();
        run(async {
            let c = client(true, answers);
            if let Ok(chains) = account(&c).download(&format!("{CA}/cert/1")).await {
                for chain in std::iter::once(&chains.default).chain(&chains.alternates) {
                    let _ = chain.certificates_der();
                    let _ = chain.top_issuer_common_name();
                }
                let _ = chains.choose(Some("Root"));
            }
        });
    }

    #[test]
    fn any_answer_to_renewal_info(answers in arb_answers(renewal_info())) {
        run(async {
            let c = client(true, answers);
            inspect(c.renewal_info(&CertId::from_parts(&[1, 2, 3], &[0, 4])).await);
        });
    }

    #[test]
    fn any_answer_to_retry_after_and_link_parsers(value in arb_header_value(), base in "[ -~]{0,40}") {
        let now = Utc::now();
        if let Ok(text) = std::str::from_utf8(&value) {
            let at: Option<DateTime<Utc>> = parse_retry_after(text, now);
            let digits = !text.trim().is_empty() && text.trim().bytes().all(|b| b.is_ascii_digit());
            if digits {
                // delay-seconds: always understood, never past a year from now.
                let at = at.unwrap();
                prop_assert!(at >= now && at <= now + chrono::TimeDelta::days(366));
            }
        }
        let mut headers = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_bytes(&value) {
            headers.append(http::header::LINK, v);
        }
        for rel in ["alternate", "index", "up", ""] {
            let _ = parse_links(&headers, rel, &base);
        }
    }
}

/// The answers to a whole issuance that works: newOrder, authorization, challenge,
/// authorization polled, order `ready`, finalize `valid`, the chain (the directory comes
/// first from [`client`]).
fn valid_script() -> Vec<Answer> {
    let with = |doc: Value, location: bool| {
        let mut a = Answer::ok(&doc);
        if location {
            a.headers
                .push(("location", format!("{CA}/order/1").into_bytes()));
        }
        a
    };
    let mut valid_authz = authorization();
    valid_authz["status"] = json!("valid");
    let chain = Answer {
        status: 200,
        headers: vec![("replay-nonce", b"n".to_vec())],
        body: valid_chain_pem_now().into_bytes(),
    };
    vec![
        with(order("pending"), true),
        with(authorization(), false),
        with(challenge(), false),
        with(valid_authz, false),
        with(order("ready"), false),
        with(order("valid"), false),
        chain,
    ]
}

/// The harness reaches the end of the flow when the answers are right (so the fuzzed
/// scripts, edits of this one, start from a path that works).
#[test]
fn valid_answers_issue_a_certificate() {
    run(async {
        let c = client(true, valid_script());
        let sink = MemoryPendingOrders::default();
        let issued = account(&c)
            .issue(&IssueRequest::dns(&["a.test"]), &Noop, &sink)
            .await
            .unwrap();
        assert_eq!(issued.order_url, format!("{CA}/order/1"));
        assert_eq!(issued.profile.as_deref(), Some("classic"));
    });
}

/// The valid script with a few answers replaced or inserted: an odd answer at any point
/// of an otherwise sound issuance.
fn arb_flow_script() -> impl Strategy<Value = Vec<Answer>> {
    let edit = (
        any::<prop::sample::Index>(),
        any::<bool>(),
        arb_flow_answer(),
    );
    prop::collection::vec(edit, 1..5).prop_map(|edits| {
        let mut script = valid_script();
        for (at, insert, answer) in edits {
            let i = at.index(script.len() + 1);
            if insert || i == script.len() {
                script.insert(i, answer);
            } else {
                script[i] = answer;
            }
        }
        script
    })
}

fn valid_chain_pem_now() -> String {
    use proptest::strategy::ValueTree;
    valid_chain_pem()
        .new_tree(&mut proptest::test_runner::TestRunner::default())
        .unwrap()
        .current()
}

/// Scripts for a whole issuance: each answer a valid object of the flow, mutated or not,
/// or random.
fn arb_flow_answer() -> impl Strategy<Value = Answer> {
    let doc = prop::sample::select(vec![
        order("pending"),
        order("ready"),
        order("processing"),
        order("valid"),
        order("invalid"),
        authorization(),
        challenge(),
        problem(),
    ]);
    prop_oneof![
        4 => doc.prop_flat_map(|d| (Just(d.clone()), mutated(d))).prop_map(|(_, d)| Answer {
            status: 200,
            headers: vec![
                ("replay-nonce", b"n".to_vec()),
                ("location", format!("{CA}/order/1").into_bytes()),
            ],
            body: d.to_string().into_bytes(),
        }),
        1 => (Just(()), arb_pem()).prop_map(|(_, body)| Answer {
            status: 200,
            headers: vec![],
            body,
        }),
        2 => arb_answer(order("valid")),
    ]
}

proptest! {
    #![proptest_config(Config { cases: config().cases / 4, ..config() })]

    #[test]
    fn any_answer_to_whole_issuance(answers in arb_flow_script()) {
        run(async {
            let c = client(true, answers);
            let sink = MemoryPendingOrders::default();
            let request = IssueRequest::dns(&["a.test"]);
            inspect(account(&c).issue(&request, &Noop, &sink).await);
        });
    }
}
