//! The http-01 standalone responder over real sockets.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use renewd_acme::ChallengeSolver;
use renewd_core::{ChallengeType, FailureClass};
use renewd_local::{Error, Http01Responder};
use tokio_util::sync::CancellationToken;

use crate::support::{KEY_AUTH, dns01_answer, http, http01_answer, local_error};

fn loopback0() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[tokio::test]
async fn answers_fifty_concurrent_fetches_and_404s_the_rest() {
    let shutdown = CancellationToken::new();
    // Two listeners, as `listen = [...]` with two addresses.
    let responder = Http01Responder::start(&[loopback0(), loopback0()], &shutdown)
        .await
        .unwrap();
    let addrs = responder.local_addrs().to_vec();
    assert_eq!(addrs.len(), 2);
    assert!(addrs.iter().all(|a| a.port() != 0));

    responder
        .present(&http01_answer("tok-1", KEY_AUTH))
        .await
        .unwrap();
    assert_eq!(responder.published(), 1);
    let path = "/.well-known/acme-challenge/tok-1";
    let fetches: Vec<_> = (0..50)
        .map(|i| {
            tokio::spawn(http(
                addrs[i % 2],
                if i % 5 == 0 { "HEAD" } else { "GET" },
                path,
            ))
        })
        .collect();
    for (i, fetch) in fetches.into_iter().enumerate() {
        let answer = fetch.await.unwrap();
        assert_eq!(answer.status, 200, "fetch {i}");
        assert_eq!(answer.header("content-type"), Some("text/plain"));
        assert_eq!(
            answer.header("content-length"),
            Some(KEY_AUTH.len().to_string().as_str())
        );
        if i % 5 == 0 {
            assert!(answer.body.is_empty(), "HEAD has no body");
        } else {
            assert_eq!(
                answer.body,
                KEY_AUTH.as_bytes(),
                "exactly the key authorization"
            );
        }
    }

    for other in [
        "/.well-known/acme-challenge/unknown",
        "/.well-known/acme-challenge/",
        "/",
        "/index.html",
        "/.well-known/acme-challenge/tok-1/extra",
    ] {
        assert_eq!(http(addrs[0], "GET", other).await.status, 404, "{other}");
    }
    assert_eq!(http(addrs[0], "POST", path).await.status, 405);

    responder
        .cleanup(&http01_answer("tok-1", KEY_AUTH))
        .await
        .unwrap();
    assert_eq!(http(addrs[1], "GET", path).await.status, 404, "withdrawn");
    assert_eq!(responder.published(), 0);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), responder.closed())
        .await
        .expect("stops promptly");
    for addr in addrs {
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "{addr} closed"
        );
    }
}

#[tokio::test]
async fn bind_failure_names_the_address_and_binds_nothing() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap();
    // A free address first: it must be released again when the second fails.
    let free_addr = free_addr();

    let err = Http01Responder::start(&[free_addr, taken_addr], &CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(err.class(), FailureClass::Local);
    match &err {
        Error::Bind {
            challenge, addr, ..
        } => {
            assert_eq!(*challenge, ChallengeType::Http01);
            assert_eq!(*addr, taken_addr);
        }
        other => panic!("{other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&taken_addr.to_string()), "{message}");
    assert!(message.contains("webroot"), "a hint: {message}");
    TcpListener::bind(free_addr).expect("the first address was released");
}

#[tokio::test]
async fn refuses_other_challenge_types_and_unsafe_tokens() {
    let responder = Http01Responder::start(&[loopback0()], &CancellationToken::new())
        .await
        .unwrap();
    let err = responder
        .present(&dns01_answer("a.test", false, "tok"))
        .await
        .unwrap_err();
    assert!(
        matches!(local_error(&err), Error::WrongChallenge { .. }),
        "{err}"
    );
    let err = responder
        .present(&http01_answer("../../etc/passwd", KEY_AUTH))
        .await
        .unwrap_err();
    assert!(matches!(local_error(&err), Error::BadToken { .. }), "{err}");
    assert_eq!(responder.published(), 0);
}

#[tokio::test]
async fn dropping_the_last_handle_stops_it() {
    let responder = Http01Responder::start(&[loopback0()], &CancellationToken::new())
        .await
        .unwrap();
    let addr = responder.local_addrs()[0];
    let closed = responder.closed();
    let clone = responder.clone();
    drop(responder);
    assert_eq!(
        http(addr, "GET", "/").await.status,
        404,
        "a clone keeps it serving"
    );
    drop(clone);
    tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .expect("the last handle's drop stops it");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

fn config(sections: &str) -> renewd_config::Config {
    let toml = format!(
        r#"
state_dir = "/var/lib/renewd"

[[ca]]
name = "ca"
directory = "https://127.0.0.1:1/dir"

{sections}

[[cert]]
name = "www"
domains = ["www.example.test"]
cas = ["ca"]
challenge = "tls-alpn-01"
"#
    );
    renewd_config::Config::from_str(
        &toml,
        std::path::Path::new("test.toml"),
        &renewd_config::LoadEnv::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn challenge_solvers_from_every_section() {
    let webroot = tempfile::tempdir().unwrap();
    let config = config(&format!(
        r#"
[http01]
webroot = "{}"

[tls_alpn01]
listen = ["127.0.0.1:0"]

[dns01]
add_hook = ["/bin/true"]
"#,
        webroot.path().display()
    ));
    let shutdown = CancellationToken::new();
    let solvers = renewd_local::ChallengeSolvers::start(&config, &shutdown)
        .await
        .unwrap();
    for challenge in [
        ChallengeType::Http01,
        ChallengeType::Dns01,
        ChallengeType::TlsAlpn01,
    ] {
        assert!(solvers.solver(challenge).is_some(), "{challenge}");
    }
    let listening = solvers.listening();
    assert_eq!(listening.len(), 1, "webroot and dns-01 listen on nothing");
    assert_eq!(listening[0].0, ChallengeType::TlsAlpn01);
    // The webroot solver is the one handed out for http-01.
    let http01 = solvers.solver(ChallengeType::Http01).unwrap();
    http01
        .present(&http01_answer("tok-9", KEY_AUTH))
        .await
        .unwrap();
    assert!(
        webroot
            .path()
            .join(".well-known/acme-challenge/tok-9")
            .exists()
    );
    http01
        .cleanup(&http01_answer("tok-9", KEY_AUTH))
        .await
        .unwrap();

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), solvers.closed())
        .await
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(listening[0].1)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn challenge_solvers_fail_at_start_when_an_address_is_taken() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = config(&format!(
        "[http01]\nlisten = [\"127.0.0.1:0\"]\n\n[tls_alpn01]\nlisten = [\"{addr}\"]\n"
    ));
    let err = renewd_local::ChallengeSolvers::start(&config, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Bind { challenge: ChallengeType::TlsAlpn01, addr: a, .. } if a == addr),
        "{err:?}"
    );
}

/// A loopback address nothing listens on.
fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], renewd_testsupport::free_port()))
}

fn http01_config(listen: &[SocketAddr]) -> renewd_config::Config {
    let list: Vec<String> = listen.iter().map(|a| format!("\"{a}\"")).collect();
    config(&format!(
        "[http01]\nlisten = [{}]\n\n[tls_alpn01]\nlisten = [\"127.0.0.1:0\"]\n",
        list.join(", ")
    ))
}

async fn serves(addr: SocketAddr) -> bool {
    tokio::net::TcpStream::connect(addr).await.is_ok()
}

async fn wait_closed(addr: SocketAddr) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while serves(addr).await {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{addr} still listening"));
}

#[tokio::test]
async fn reconfiguring_keeps_unchanged_responders_and_replaces_moved_ones() {
    let shutdown = CancellationToken::new();
    let (a, b) = (free_addr(), free_addr());
    let mut solvers = renewd_local::ChallengeSolvers::start(&http01_config(&[a]), &shutdown)
        .await
        .unwrap();
    let tls_before = solvers.listening()[1];
    // An order under way holds the http-01 solver it took.
    let held = solvers.solver(ChallengeType::Http01).unwrap();

    // Unchanged addresses: the very same responders.
    solvers
        .reconfigure(&http01_config(&[a]), &shutdown)
        .await
        .unwrap();
    assert!(Arc::ptr_eq(
        &held,
        &solvers.solver(ChallengeType::Http01).unwrap()
    ));
    assert_eq!(solvers.listening()[1], tls_before, "tls-alpn-01 untouched");

    // Moved to b: a new responder there; the old one serves the held order until it lets go.
    solvers
        .reconfigure(&http01_config(&[b]), &shutdown)
        .await
        .unwrap();
    assert_eq!(solvers.listening()[0], (ChallengeType::Http01, b));
    assert_eq!(solvers.listening()[1], tls_before);
    held.present(&http01_answer("tok-old", KEY_AUTH))
        .await
        .unwrap();
    let old = http(a, "GET", "/.well-known/acme-challenge/tok-old").await;
    assert_eq!(old.status, 200, "the held responder still answers");
    assert!(serves(b).await);
    drop(held);
    wait_closed(a).await;

    // Sharing an address with the running one (b → b + a): stopped first, then bound.
    solvers
        .reconfigure(&http01_config(&[b, a]), &shutdown)
        .await
        .unwrap();
    let http01: Vec<SocketAddr> = solvers
        .listening()
        .into_iter()
        .filter(|(t, _)| *t == ChallengeType::Http01)
        .map(|(_, addr)| addr)
        .collect();
    assert_eq!(http01, [b, a]);
    assert!(serves(a).await && serves(b).await);
}

#[tokio::test]
async fn a_failed_reconfiguration_keeps_the_previous_responders_serving() {
    let shutdown = CancellationToken::new();
    let (a, b) = (free_addr(), free_addr());
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap();
    let mut solvers = renewd_local::ChallengeSolvers::start(&http01_config(&[a]), &shutdown)
        .await
        .unwrap();

    // Disjoint: the old one never stopped.
    let err = solvers
        .reconfigure(&http01_config(&[b, taken_addr]), &shutdown)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Bind { addr, .. } if addr == taken_addr),
        "{err:?}"
    );
    assert_eq!(solvers.listening()[0], (ChallengeType::Http01, a));
    wait_closed(b).await;

    // Overlapping: stopped to make room, then started again on its old address.
    let err = solvers
        .reconfigure(&http01_config(&[a, taken_addr]), &shutdown)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Bind { .. }), "{err:?}");
    assert_eq!(solvers.listening()[0], (ChallengeType::Http01, a));
    let solver = solvers.solver(ChallengeType::Http01).unwrap();
    solver
        .present(&http01_answer("tok-2", KEY_AUTH))
        .await
        .unwrap();
    let answer = http(a, "GET", "/.well-known/acme-challenge/tok-2").await;
    assert_eq!(answer.status, 200);
}
