//! Generators for the property tests: the scripted HTTP client, valid ACME documents,
//! random and mutated JSON, PEM chains good and broken, header values, whole scripts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use proptest::prelude::*;
use renewd_acme::{BoxFuture, HttpClient, TransportError, TransportErrorKind};
use serde_json::{Value, json};

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn ok(body: &Value) -> Answer {
        Answer {
            status: 200,
            headers: vec![("replay-nonce", b"nonce-from-script".to_vec())],
            body: body.to_string().into_bytes(),
        }
    }
}

/// Answers requests from a script; once it runs out, the `cycle` over and over (if any),
/// else every request fails to connect. Counts requests, and the longest burst of them
/// sent without (paused) time moving: a client in a hot loop shows there.
#[derive(Debug, Default)]
pub struct Scripted {
    answers: Mutex<VecDeque<Answer>>,
    cycle: Vec<Answer>,
    cap: usize,
    stats: Mutex<Stats>,
}

/// What a [`Scripted`] client saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub requests: usize,
    pub longest_burst: usize,
    burst: usize,
    last: Option<tokio::time::Instant>,
}

impl Scripted {
    pub fn new(answers: Vec<Answer>) -> Arc<Scripted> {
        Scripted::cycling(answers, Vec::new(), usize::MAX)
    }

    /// `first`, then `cycle` again and again, for at most `cap` requests in all.
    pub fn cycling(first: Vec<Answer>, cycle: Vec<Answer>, cap: usize) -> Arc<Scripted> {
        Arc::new(Scripted {
            answers: Mutex::new(first.into()),
            cycle,
            cap,
            stats: Mutex::default(),
        })
    }

    pub fn stats(&self) -> Stats {
        *self.stats.lock().unwrap()
    }

    fn next(&self) -> Option<Answer> {
        let now = tokio::time::Instant::now();
        let mut stats = self.stats.lock().unwrap();
        stats.burst = if stats.last == Some(now) {
            stats.burst + 1
        } else {
            1
        };
        stats.last = Some(now);
        stats.longest_burst = stats.longest_burst.max(stats.burst);
        stats.requests += 1;
        if stats.requests > self.cap {
            return None;
        }
        let first = self.answers.lock().unwrap().pop_front();
        first.or_else(|| {
            (!self.cycle.is_empty()).then(|| self.cycle[stats.requests % self.cycle.len()].clone())
        })
    }
}

impl HttpClient for Scripted {
    fn request(
        &self,
        _request: http::Request<Bytes>,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, TransportError>> {
        let next = self.next();
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

pub const CA: &str = "https://ca.test";

pub fn directory() -> Value {
    json!({
        "newNonce": format!("{CA}/nonce"), "newAccount": format!("{CA}/acct"),
        "newOrder": format!("{CA}/order"), "revokeCert": format!("{CA}/revoke"),
        "keyChange": format!("{CA}/kc"), "renewalInfo": format!("{CA}/ari"),
        "meta": {"termsOfService": "tos", "externalAccountRequired": false,
                 "profiles": {"classic": "90 days", "shortlived": "6 days"}}
    })
}

pub fn order(status: &str) -> Value {
    json!({
        "status": status, "expires": "2030-01-01T00:00:00Z",
        "identifiers": [{"type": "dns", "value": "a.test"}],
        "authorizations": [format!("{CA}/authz/1")],
        "finalize": format!("{CA}/order/1/finalize"),
        "certificate": format!("{CA}/cert/1"), "profile": "classic"
    })
}

pub fn authorization() -> Value {
    json!({
        "identifier": {"type": "dns", "value": "a.test"}, "status": "pending",
        "expires": "2030-01-01T00:00:00Z",
        "challenges": [challenge()], "wildcard": false
    })
}

pub fn challenge() -> Value {
    json!({"type": "http-01", "url": format!("{CA}/chall/1"), "status": "pending",
           "token": "tok_en-123"})
}

pub fn problem() -> Value {
    json!({"type": "urn:ietf:params:acme:error:badNonce", "detail": "d", "status": 400,
           "subproblems": [{"type": "urn:ietf:params:acme:error:caa", "detail": "x",
                            "identifier": {"type": "dns", "value": "a.test"}}]})
}

pub fn renewal_info() -> Value {
    json!({"suggestedWindow": {"start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z"},
           "explanationURL": "https://ca.test/why"})
}

pub fn account_resource() -> Value {
    json!({"status": "valid", "contact": ["mailto:a@b.test"], "orders": format!("{CA}/orders")})
}

/// Any JSON value, a few levels deep, with keys ACME objects use among random ones.
pub fn arb_json() -> impl Strategy<Value = Value> {
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
pub fn mutated(doc: Value) -> impl Strategy<Value = Value> {
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
pub fn arb_pem() -> impl Strategy<Value = Vec<u8>> {
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
pub fn valid_chain_pem() -> impl Strategy<Value = String> {
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
pub fn arb_header_value() -> impl Strategy<Value = Vec<u8>> {
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

pub fn arb_headers() -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    let name = prop::sample::select(vec![
        "replay-nonce",
        "retry-after",
        "link",
        "location",
        "content-type",
    ]);
    prop::collection::vec((name, arb_header_value()), 0..5)
}

pub fn arb_status() -> impl Strategy<Value = u16> {
    prop_oneof![
        3 => prop::sample::select(vec![200u16, 201, 204, 301, 400, 403, 404, 409, 429, 500, 502, 503, 504]),
        1 => 100u16..=599,
    ]
}

/// An answer whose body is random bytes, random JSON, or `doc` mutated.
pub fn arb_answer(doc: Value) -> impl Strategy<Value = Answer> {
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
pub fn arb_answers(doc: Value) -> impl Strategy<Value = Vec<Answer>> {
    prop::collection::vec(arb_answer(doc), 1..4)
}

/// The answers to a whole issuance that works: newOrder, authorization, challenge,
/// authorization polled, order `ready`, finalize `valid`, the chain (the directory comes
/// first from [`client`]).
pub fn valid_script() -> Vec<Answer> {
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

/// The valid script with a few answers replaced or inserted: an odd answer at any point
/// of an otherwise sound issuance.
pub fn arb_flow_script() -> impl Strategy<Value = Vec<Answer>> {
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

pub fn valid_chain_pem_now() -> String {
    use proptest::strategy::ValueTree;
    valid_chain_pem()
        .new_tree(&mut proptest::test_runner::TestRunner::default())
        .unwrap()
        .current()
}

/// Scripts for a whole issuance: each answer a valid object of the flow, mutated or not,
/// or random.
pub fn arb_flow_answer() -> impl Strategy<Value = Answer> {
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

/// An answer a stalling CA gives again and again: an order in any state, an authorization,
/// a gateway error, a rate limit or a rejected nonce, with a Retry-After of any kind.
pub fn arb_stall_answer() -> impl Strategy<Value = Answer> {
    let body = prop::sample::select(vec![
        order("pending"),
        order("ready"),
        order("processing"),
        order("valid"),
        authorization(),
        challenge(),
        problem(),
        json!({"type": "urn:ietf:params:acme:error:rateLimited", "detail": "slow down"}),
        json!({"type": "urn:ietf:params:acme:error:orderNotReady", "detail": "not yet"}),
    ]);
    let status = prop::sample::select(vec![200u16, 200, 200, 400, 403, 429, 500, 503]);
    let retry_after = prop::option::of(prop::sample::select(vec![
        "0",
        "1",
        "30",
        "86400",
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "soon",
        "",
    ]));
    (status, body, retry_after, any::<bool>()).prop_map(|(status, body, retry_after, nonce)| {
        let mut headers = vec![("location", format!("{CA}/order/1").into_bytes())];
        if nonce {
            headers.push(("replay-nonce", b"n".to_vec()));
        }
        if let Some(r) = retry_after {
            headers.push(("retry-after", r.as_bytes().to_vec()));
        }
        Answer {
            status,
            headers,
            body: body.to_string().into_bytes(),
        }
    })
}

/// The start of a sound issuance, then a CA that stalls: one to three answers forever.
pub fn arb_stalling_ca() -> impl Strategy<Value = (Vec<Answer>, Vec<Answer>)> {
    (
        any::<prop::sample::Index>(),
        prop::collection::vec(arb_stall_answer(), 1..4),
    )
        .prop_map(|(cut, cycle)| {
            let mut first = vec![Answer::ok(&directory())];
            let valid = valid_script();
            first.extend(valid.into_iter().take(cut.index(8)));
            (first, cycle)
        })
}
