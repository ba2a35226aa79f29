//! Real challenge validation: http-01 and tls-alpn-01 against responders on loopback,
//! dns-01 through the callback.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{CertificateParams, CustomExtension, KeyPair};
use renewd_testca::{Dns01Callback, TestCaHandle, Validators};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use crate::support::client::Acme;
use crate::support::start_validating;

type Tokens = Arc<Mutex<HashMap<String, String>>>;

/// An http-01 responder: serves `tokens` and records each request's Host.
async fn http01_responder(tokens: Tokens, hosts: Arc<Mutex<Vec<String>>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (tokens, hosts) = (tokens.clone(), hosts.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let (tokens, hosts) = (tokens.clone(), hosts.clone());
                    async move {
                        let host = req.headers().get("host").and_then(|h| h.to_str().ok());
                        hosts
                            .lock()
                            .expect("lock")
                            .push(host.unwrap_or("").to_owned());
                        let token = req.uri().path().rsplit('/').next().unwrap_or("");
                        let found = tokens.lock().expect("lock").get(token).cloned();
                        let mut r = http::Response::new(Full::new(Bytes::from(
                            found.clone().unwrap_or_default(),
                        )));
                        if found.is_none() {
                            *r.status_mut() = StatusCode::NOT_FOUND;
                        }
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    port
}

/// Polls an authorization until it leaves `pending`.
async fn settle(acme: &mut Acme, authz_url: &str) -> Value {
    for _ in 0..20 {
        let a = acme.post(authz_url, None).await.json();
        if a["status"] != "pending" {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("authorization still pending");
}

/// Starts an order for `name` and responds to its `kind` challenge: (authz URL, token).
async fn respond(
    acme: &mut Acme,
    name: &str,
    kind: &str,
    before: impl FnOnce(&str),
) -> (String, Value) {
    let order = acme.new_order(&[name], json!({})).await.json();
    let authz_url = order["authorizations"][0]
        .as_str()
        .expect("authz")
        .to_owned();
    let authz = acme.post(&authz_url, None).await.json();
    let ch = authz["challenges"]
        .as_array()
        .expect("challenges")
        .iter()
        .find(|c| c["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {authz}"))
        .clone();
    before(ch["token"].as_str().expect("token"));
    let a = acme
        .post(ch["url"].as_str().expect("url"), Some(&json!({})))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.header("link").expect("Link up").contains(&authz_url));
    let settled = settle(acme, &authz_url).await;
    (authz_url, settled)
}

/// A client with a new account at `ca`, and its key's thumbprint (for key authorizations).
async fn registered(ca: &TestCaHandle) -> (Acme, String) {
    let mut acme = Acme::connect(ca).await;
    acme.register().await;
    let thumb = acme.signer.thumbprint();
    (acme, thumb)
}

#[tokio::test]
async fn http01_is_fetched_from_loopback_with_the_domain_as_host() {
    let tokens: Tokens = Arc::default();
    let hosts = Arc::new(Mutex::new(Vec::new()));
    let port = http01_responder(tokens.clone(), hosts.clone()).await;
    let ca = start_validating(Validators {
        http01_port: Some(port),
        ..Validators::default()
    })
    .await;
    let (mut acme, thumb) = registered(&ca).await;
    let (_, authz) = respond(&mut acme, "h.example", "http-01", |token| {
        tokens
            .lock()
            .expect("lock")
            .insert(token.to_owned(), format!("{token}.{thumb}"));
    })
    .await;
    assert_eq!(authz["status"], "valid", "{authz}");
    assert_eq!(hosts.lock().expect("lock").as_slice(), ["h.example"]);

    // A wrong key authorization fails the challenge, the authorization and the order.
    let (_, authz) = respond(&mut acme, "h2.example", "http-01", |token| {
        tokens
            .lock()
            .expect("lock")
            .insert(token.to_owned(), format!("{token}.wrong"));
    })
    .await;
    assert_eq!(authz["status"], "invalid");
    let ch = &authz["challenges"][0];
    assert_eq!(ch["status"], "invalid");
    assert_eq!(
        ch["error"]["type"],
        "urn:ietf:params:acme:error:incorrectResponse"
    );
    let counts = ca.counts();
    assert_eq!(
        (counts.validations_passed, counts.validations_failed),
        (1, 1)
    );
    assert_eq!(ca.certificates().len(), 0);
}

#[derive(Debug)]
struct OneCertificate(Arc<CertifiedKey>);

impl ResolvesServerCert for OneCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

fn alpn_server_config(domain: &str, key_authorization: &str) -> Arc<rustls::ServerConfig> {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec![domain.to_owned()]).expect("params");
    params
        .custom_extensions
        .push(CustomExtension::new_acme_identifier(&Sha256::digest(
            key_authorization.as_bytes(),
        )));
    let cert = params.self_signed(&key).expect("cert");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signing_key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        )))
        .expect("signing key");
    // Not `with_single_cert`: rustls refuses the critical acmeIdentifier extension there.
    let certified = Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing_key));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(OneCertificate(certified)));
    config.alpn_protocols = vec![b"acme-tls/1".to_vec()];
    Arc::new(config)
}

#[tokio::test]
async fn tls_alpn01_checks_the_acme_identifier_certificate() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let ca = start_validating(Validators {
        tls_alpn01_port: Some(port),
        ..Validators::default()
    })
    .await;
    let (mut acme, thumb) = registered(&ca).await;
    let sni = Arc::new(Mutex::new(None));
    let (_, authz) = respond(&mut acme, "t.example", "tls-alpn-01", |token| {
        let config = alpn_server_config("t.example", &format!("{token}.{thumb}"));
        let sni = sni.clone();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            let tls = tokio_rustls::TlsAcceptor::from(config)
                .accept(stream)
                .await
                .expect("handshake");
            *sni.lock().expect("lock") = tls.get_ref().1.server_name().map(str::to_owned);
        });
    })
    .await;
    assert_eq!(authz["status"], "valid", "{authz}");
    assert_eq!(sni.lock().expect("lock").as_deref(), Some("t.example"));
}

#[tokio::test]
async fn dns01_asks_the_callback_also_for_wildcards() {
    let records: Tokens = Arc::default();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let callback = {
        let (records, asked) = (records.clone(), asked.clone());
        Dns01Callback::sync(move |name, value| {
            asked.lock().expect("lock").push(name.to_owned());
            records.lock().expect("lock").get(name).map(String::as_str) == Some(value)
        })
    };
    let ca = start_validating(Validators {
        dns01: Some(callback),
        ..Validators::default()
    })
    .await;
    let (mut acme, thumb) = registered(&ca).await;
    let (_, authz) = respond(&mut acme, "*.dns.example", "dns-01", |token| {
        let value = URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{token}.{thumb}").as_bytes()));
        records
            .lock()
            .expect("lock")
            .insert("_acme-challenge.dns.example".to_owned(), value);
    })
    .await;
    assert_eq!(authz["status"], "valid", "{authz}");
    assert_eq!(authz["wildcard"], true);
    let (_, authz) = respond(&mut acme, "nodns.example", "dns-01", |_| {}).await;
    assert_eq!(authz["status"], "invalid");
    assert_eq!(
        asked.lock().expect("lock").as_slice(),
        [
            "_acme-challenge.dns.example",
            "_acme-challenge.nodns.example"
        ]
    );
}
