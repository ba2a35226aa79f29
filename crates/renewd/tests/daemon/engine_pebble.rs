//! The daemon against Let's Encrypt's test server (Debian's pebble) with real validation of
//! every challenge type: http-01 on the daemon's standalone responder, http-01 through a
//! webroot some other web server serves, dns-01 through hooks that publish TXT records in
//! pebble's DNS server, tls-alpn-01 on the daemon's responder — and a hundred certificates
//! at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use renewd_testsupport::{Pebble, PebbleOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::harness::{Scene, free_port};
use crate::lab::{Ca, FLOW, Lab, numbered, script};

/// pebble on the scene's http-01 port and a free tls-alpn-01 port, as CA `pebble`.
async fn pebble(scene: &Scene, extra: &str) -> (Pebble, Ca) {
    let pebble = Pebble::start(PebbleOptions {
        http_port: Some(scene.http01_port),
        tls_port: Some(free_port()),
        ..PebbleOptions::default()
    })
    .await;
    let root = std::fs::read_to_string(pebble.tls_root_pem()).unwrap();
    let ca = Ca::at("pebble", &pebble.directory_url(), &root, extra);
    (pebble, ca)
}

/// Every certificate valid, issued by pebble, with its challenge validated.
fn assert_issued_by_pebble(lab: &Lab, certs: &[&str]) {
    let rows = lab.wait_all_valid(FLOW);
    for cert in certs {
        let row = rows.iter().find(|r| r["name"] == *cert).unwrap();
        assert_eq!(row["issuer_ca"], "pebble", "{row}");
        let ledger = lab.ledger(&["--cert", cert]);
        assert!(
            ledger
                .iter()
                .any(|r| r["step"] == "challenge" && r["class"] == "ok"),
            "{cert}: {ledger:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_dns01_and_tls_alpn01_validated_by_pebble() {
    let scene = Scene::new();
    let (pebble, ca) = pebble(&scene, "").await;
    let mut lab = Lab::new(scene, vec![ca]);
    // The operator's DNS provider is pebble-challtestsrv's management API here.
    let dir = lab.scene.dir.path().to_path_buf();
    let mgmt = pebble.challtestsrv_management_url();
    let add = script(
        &dir,
        "dns-add",
        &format!(
            "exec curl -sS -f -X POST -d \"{{\\\"host\\\":\\\"$RENEWD_DNS_NAME.\\\",\\\"value\\\":\\\"$RENEWD_DNS_VALUE\\\"}}\" {mgmt}/set-txt"
        ),
    );
    let remove = script(
        &dir,
        "dns-remove",
        &format!(
            "exec curl -sS -f -X POST -d \"{{\\\"host\\\":\\\"$RENEWD_DNS_NAME.\\\"}}\" {mgmt}/clear-txt"
        ),
    );
    lab.write_config(
        "",
        &format!(
            "[tls_alpn01]\nlisten = [\"127.0.0.1:{}\"]\n\n\
             [dns01]\nadd_hook = [\"{}\"]\nremove_hook = [\"{}\"]\n",
            pebble.tls_alpn01_port(),
            add.display(),
            remove.display()
        ),
        &[
            ("http", &["pebble"], ""),
            (
                "dns",
                &["pebble"],
                "challenge = \"dns-01\"\ndomains = [\"dns.example.test\", \"*.dns.example.test\"]",
            ),
            ("tls", &["pebble"], "challenge = \"tls-alpn-01\""),
        ],
    );
    lab.start(&[]);
    assert_issued_by_pebble(&lab, &["http", "dns", "tls"]);
    lab.stop();
}

/// A minimal static web server: `GET /PATH` answers the file `ROOT/PATH`, or 404.
async fn serve_webroot(listener: TcpListener, root: PathBuf) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let root = root.clone();
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request);
            let path = text.split_whitespace().nth(1).unwrap_or("/");
            let file = (!path.contains(".."))
                .then(|| std::fs::read(root.join(path.trim_start_matches('/'))).ok())
                .flatten();
            let reply = match file {
                Some(body) => {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(&body);
                    r
                }
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = stream.write_all(&reply).await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_through_a_webroot_served_by_another_server() {
    let scene = Scene::new();
    let (pebble, ca) = pebble(&scene, "").await;
    let mut lab = Lab::new(scene, vec![ca]);
    let webroot = lab.scene.path("www");
    std::fs::create_dir_all(&webroot).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", pebble.http01_port())
        .parse()
        .unwrap();
    let server = tokio::spawn(serve_webroot(
        TcpListener::bind(addr).await.unwrap(),
        webroot.clone(),
    ));
    lab.write_config(
        "",
        &format!("[http01]\nwebroot = \"{}\"\n", webroot.display()),
        &[("site", &["pebble"], "")],
    );
    lab.start(&[]);
    assert_issued_by_pebble(&lab, &["site"]);
    let challenges = webroot.join(".well-known/acme-challenge");
    assert!(
        !challenges.exists() || std::fs::read_dir(&challenges).unwrap().next().is_none(),
        "the challenge files are cleaned up"
    );
    lab.stop();
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_certificates_with_eight_workers() {
    let scene = Scene::new();
    let (_pebble, ca) = pebble(&scene, "max_concurrent_orders = 8\n").await;
    let mut lab = Lab::new(scene, vec![ca]);
    let names = numbered(100);
    let certs: Vec<(&str, &[&str], &str)> = names
        .iter()
        .map(|n| (n.as_str(), &["pebble"][..], ""))
        .collect();
    lab.write_config("workers = 8", "", &certs);
    let started = Instant::now();
    lab.start(&[]);
    let ready = started.elapsed();
    assert_issued_by_pebble(&lab, &["c0", "c99"]);
    let all_valid = started.elapsed();
    println!(
        "100 certificates, 8 workers, real http-01 at pebble: READY after {ready:?}, all valid after {all_valid:?}"
    );
    lab.stop();
}
