//! Every challenge type end to end against a real pebble with real validation, through
//! `renewd_acme::Account::issue` with this crate's solvers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use renewd_acme::{ChallengeSolver, IssueRequest, MemoryPendingOrders};
use renewd_config::{Config, Dns01Config, LoadEnv};
use renewd_core::{ChallengeType, KeyType};
use renewd_local::{ChallengeSolvers, Dns01Hooks, HookRunner, TlsAlpn01Responder, WebrootSolver};
use renewd_testsupport::{Pebble, PebbleOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::support::{account, pebble_client, script, verify_chain};

fn request(names: &[&str], key_type: KeyType, challenge: ChallengeType) -> IssueRequest {
    IssueRequest {
        key_type,
        challenge,
        ..IssueRequest::dns(names)
    }
}

/// Issues `names` at `pebble` with `solver` and verifies the chain against pebble's root.
async fn issue_and_verify(
    pebble: &Pebble,
    names: &[&str],
    key_type: KeyType,
    challenge: ChallengeType,
    solver: &dyn ChallengeSolver,
) {
    let client = pebble_client(pebble);
    let acct = account(&client).await;
    let issued = acct
        .issue(
            &request(names, key_type, challenge),
            solver,
            &MemoryPendingOrders::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\npebble log:\n{}", pebble.log()));
    let root = pebble.issuing_root_pem(0).await;
    verify_chain(&issued.chain_pem, &root, names, &issued.key_pem);
}

#[tokio::test]
async fn http01_standalone_from_the_config() {
    let state = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
state_dir = "{}"

[[ca]]
name = "pebble"
directory = "https://127.0.0.1:1/dir"

[http01]
listen = ["127.0.0.1:0"]

[[cert]]
name = "www"
domains = ["www.standalone.test", "standalone.test"]
cas = ["pebble"]
"#,
        state.path().display()
    );
    let config = Config::from_str(&toml, Path::new("test.toml"), &LoadEnv::default()).unwrap();
    let shutdown = CancellationToken::new();
    let solvers = ChallengeSolvers::start(&config, &shutdown).await.unwrap();
    let listening = solvers.listening();
    assert_eq!(listening.len(), 1);
    assert_eq!(listening[0].0, ChallengeType::Http01);
    assert!(solvers.solver(ChallengeType::Dns01).is_none(), "no [dns01]");
    assert!(solvers.solver(ChallengeType::TlsAlpn01).is_none());

    let pebble = Pebble::start(PebbleOptions {
        http_port: Some(listening[0].1.port()),
        ..PebbleOptions::default()
    })
    .await;
    let solver = solvers.solver(ChallengeType::Http01).unwrap();
    issue_and_verify(
        &pebble,
        &["www.standalone.test", "standalone.test"],
        KeyType::EcdsaP256,
        ChallengeType::Http01,
        &*solver,
    )
    .await;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), solvers.closed())
        .await
        .expect("the responders stop on the daemon's token");
}

/// A minimal static file server for the webroot test, standing in for the operator's web
/// server: it serves files under `root` only when "others" may read them and traverse
/// their directories (a web server runs as another user), and counts what it served.
struct StaticServer {
    port: u16,
    served: Arc<Mutex<HashMap<String, usize>>>,
    task: JoinHandle<()>,
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn readable_by_others(root: &Path, rel: &Path) -> Option<PathBuf> {
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let mut path = root.to_path_buf();
    let mut components = rel.components().peekable();
    while let Some(c) = components.next() {
        path.push(c);
        let mode = std::fs::metadata(&path).ok()?.permissions().mode();
        let needed = if components.peek().is_some() {
            0o001
        } else {
            0o004
        };
        if mode & needed == 0 {
            return None;
        }
    }
    Some(path)
}

async fn static_server(root: PathBuf) -> StaticServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let counts = served.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (root, counts) = (root.clone(), counts.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let path = req.uri().path().trim_start_matches('/').to_string();
                    let file = readable_by_others(&root, Path::new(&path))
                        .and_then(|p| std::fs::read(p).ok());
                    let response = match file {
                        Some(body) => {
                            *counts.lock().unwrap().entry(path).or_default() += 1;
                            hyper::Response::new(Full::new(Bytes::from(body)))
                        }
                        None => hyper::Response::builder()
                            .status(404)
                            .body(Full::new(Bytes::new()))
                            .unwrap(),
                    };
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    StaticServer { port, served, task }
}

#[tokio::test]
async fn http01_webroot_served_by_another_web_server() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir(&root).unwrap();
    let server = static_server(root.clone()).await;
    let pebble = Pebble::start(PebbleOptions {
        http_port: Some(server.port),
        ..PebbleOptions::default()
    })
    .await;
    let solver = WebrootSolver::new(&root);
    issue_and_verify(
        &pebble,
        &["webroot.test", "www.webroot.test"],
        KeyType::EcdsaP384,
        ChallengeType::Http01,
        &solver,
    )
    .await;
    let served = server.served.lock().unwrap().clone();
    assert_eq!(served.len(), 2, "one token per name: {served:?}");
    assert!(
        served
            .keys()
            .all(|p| p.starts_with(".well-known/acme-challenge/")),
        "{served:?}"
    );
    assert!(
        !root.join(".well-known").exists(),
        "cleaned up, directories included"
    );
}

#[tokio::test]
async fn dns01_hooks_publish_through_challtestsrv_wildcard_included() {
    let dir = tempfile::tempdir().unwrap();
    let pebble = Pebble::start(PebbleOptions::default()).await;
    let mgmt = pebble.challtestsrv_management_url();
    let log = dir.path().join("hooks.log");
    // The operator's DNS provider API is challtestsrv's management API here.
    let add = script(
        dir.path(),
        "add",
        &format!(
            "echo \"add $RENEWD_DOMAIN $RENEWD_DNS_NAME\" >> {log}\n\
             exec curl -sS -f -X POST -d \"{{\\\"host\\\":\\\"$RENEWD_DNS_NAME.\\\",\\\"value\\\":\\\"$RENEWD_DNS_VALUE\\\"}}\" {mgmt}/set-txt",
            log = log.display()
        ),
    );
    let remove = script(
        dir.path(),
        "remove",
        &format!(
            "echo \"remove $RENEWD_DOMAIN $RENEWD_DNS_NAME\" >> {log}\n\
             exec curl -sS -f -X POST -d \"{{\\\"host\\\":\\\"$RENEWD_DNS_NAME.\\\"}}\" {mgmt}/clear-txt",
            log = log.display()
        ),
    );
    let solver = Dns01Hooks::new(
        Dns01Config {
            add_hook: add,
            remove_hook: Some(remove),
            propagation_delay: Duration::ZERO,
            propagation_check: None,
            propagation_timeout: Duration::from_secs(10),
        },
        HookRunner::new(Duration::from_secs(30)),
    );
    issue_and_verify(
        &pebble,
        &["dns.test", "*.dns.test"],
        KeyType::EcdsaP256,
        ChallengeType::Dns01,
        &solver,
    )
    .await;
    let mut lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "add *.dns.test _acme-challenge.dns.test",
            "add dns.test _acme-challenge.dns.test",
            "remove *.dns.test _acme-challenge.dns.test",
            "remove dns.test _acme-challenge.dns.test",
        ]
    );
}

#[tokio::test]
async fn tls_alpn01_responder() {
    let shutdown = CancellationToken::new();
    let responder = TlsAlpn01Responder::start(&["127.0.0.1:0".parse().unwrap()], &shutdown)
        .await
        .unwrap();
    let pebble = Pebble::start(PebbleOptions {
        tls_port: Some(responder.local_addrs()[0].port()),
        ..PebbleOptions::default()
    })
    .await;
    issue_and_verify(
        &pebble,
        &["alpn.test", "www.alpn.test"],
        KeyType::Rsa2048,
        ChallengeType::TlsAlpn01,
        &responder,
    )
    .await;
    shutdown.cancel();
}
