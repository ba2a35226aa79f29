//! Starts pebble (via renewd-testsupport), then times one issuance with real http-01
//! validation: account creation excluded, newOrder → download included.
//!
//! ```sh
//! cargo run --release -p renewd-acme --example issue_once
//! ```
//!
//! Reference on the development machine (PEERS.md): lego 5.6 s, certbot 3.3 s.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use renewd_acme::{
    AccountKey, AcmeClient, BoxError, BoxFuture, ChallengeAnswer, ChallengeProof, ChallengeSolver,
    ClientSettings, HttpSettings, IssueRequest, MemoryPendingOrders, NewAccount,
};
use renewd_testsupport::{Pebble, PebbleOptions};
use tokio::net::TcpListener;

type Tokens = Arc<Mutex<HashMap<String, String>>>;

struct Http01(Tokens);

impl ChallengeSolver for Http01 {
    fn present<'a>(&'a self, answer: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            if let ChallengeProof::Http01 { body, .. } = &answer.proof {
                self.0
                    .lock()
                    .unwrap()
                    .insert(answer.token.clone(), body.clone());
            }
            Ok(())
        })
    }

    fn cleanup<'a>(&'a self, answer: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            self.0.lock().unwrap().remove(&answer.token);
            Ok(())
        })
    }
}

async fn serve(listener: TcpListener, tokens: Tokens) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let tokens = tokens.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let body = req
                    .uri()
                    .path()
                    .strip_prefix("/.well-known/acme-challenge/")
                    .and_then(|t| tokens.lock().unwrap().get(t).cloned())
                    .unwrap_or_default();
                async move { Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body)))) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[tokio::main]
async fn main() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tokens = Tokens::default();
    tokio::spawn(serve(listener, tokens.clone()));
    let pebble = Pebble::start(PebbleOptions {
        http_port: Some(port),
        ..PebbleOptions::default()
    })
    .await;
    let settings = ClientSettings {
        http: HttpSettings {
            trust_roots: vec![pebble.tls_root_pem().to_path_buf()],
            ..HttpSettings::default()
        },
        ..ClientSettings::default()
    };
    let client = AcmeClient::new(pebble.directory_url(), settings).unwrap();
    let account = client
        .new_account(
            AccountKey::generate(),
            &NewAccount {
                terms_of_service_agreed: true,
                ..NewAccount::default()
            },
        )
        .await
        .unwrap();
    let solver = Http01(tokens);
    let mut times = Vec::new();
    for i in 0..5 {
        let name = format!("www{i}.example.test");
        let started = Instant::now();
        let issued = account
            .issue(
                &IssueRequest::dns(&[name.as_str()]),
                &solver,
                &MemoryPendingOrders::default(),
            )
            .await
            .unwrap();
        let took = started.elapsed();
        assert!(issued.chain_pem.contains("BEGIN CERTIFICATE"));
        println!("issuance {i} ({name}): {:.3} s", took.as_secs_f64());
        times.push(took);
    }
    times.sort();
    let median: Duration = times[times.len() / 2];
    println!(
        "median of {}: {:.3} s (real http-01)",
        times.len(),
        median.as_secs_f64()
    );
}
