//! A minimal raw ACME client for tests: one HTTPS connection per request (HTTP/1.1, so a
//! dropped connection is seen as such), JWS signing, and the few flows the tests need.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rcgen::{CertificateParams, DistinguishedName, KeyPair};
use renewd_testca::TestCaHandle;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::signer::Signer;

/// How long any one test request may take before the test fails instead of hanging.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}), status {}: {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The problem type of a problem document, without the ACME prefix.
    pub fn problem(&self) -> String {
        let v = self.json();
        let t = v["type"].as_str().unwrap_or_default();
        t.trim_start_matches("urn:ietf:params:acme:error:")
            .to_owned()
    }
}

/// HTTPS to the test CA, trusting its HTTPS root.
#[derive(Clone)]
pub struct Https {
    addr: SocketAddr,
    connector: TlsConnector,
    h2: bool,
}

impl Https {
    pub fn new(ca: &TestCaHandle) -> Https {
        Https::with_root(ca.acme_addr(), &ca.root_pem())
    }

    /// HTTPS to `addr`, trusting `root_pem`.
    pub fn with_root(addr: SocketAddr, root_pem: &str) -> Https {
        let mut roots = rustls::RootCertStore::empty();
        let root = CertificateDer::from_pem_slice(root_pem.as_bytes()).expect("root PEM");
        roots.add(root).expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Https {
            addr,
            connector: TlsConnector::from(Arc::new(config)),
            h2: false,
        }
    }

    /// The same, speaking HTTP/2 (ALPN `h2`).
    pub fn http2(ca: &TestCaHandle) -> Https {
        let mut https = Https::new(ca);
        let mut roots = rustls::RootCertStore::empty();
        let root = CertificateDer::from_pem_slice(ca.root_pem().as_bytes()).expect("root PEM");
        roots.add(root).expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        https.connector = TlsConnector::from(Arc::new(config));
        https.h2 = true;
        https
    }

    /// One request on a fresh connection; `Err` is a transport failure (its text).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Answer, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("{e}"))?;
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let name = ServerName::IpAddress(self.addr.ip().into());
        let tls = self
            .connector
            .connect(name, stream)
            .await
            .map_err(|e| format!("tls: {e}"))?;
        let mut req = http::Request::builder().method(method);
        // HTTP/2 takes the scheme and authority from the URI; HTTP/1.1 wants the path and
        // a Host header.
        req = if self.h2 {
            req.uri(uri.clone())
        } else {
            req.uri(uri.path_and_query().map_or("/", |p| p.as_str()))
                .header(
                    http::header::HOST,
                    uri.authority().map_or("", |a| a.as_str()),
                )
        };
        req = req.header(http::header::USER_AGENT, "renewd-testca-tests");
        if let Some(ct) = content_type {
            req = req.header(http::header::CONTENT_TYPE, ct);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("{e}"))?;
        let response = if self.h2 {
            let (mut sender, conn) = hyper::client::conn::http2::handshake(
                hyper_util::rt::TokioExecutor::new(),
                TokioIo::new(tls),
            )
            .await
            .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            sender.send_request(req).await
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            sender.send_request(req).await
        }
        .map_err(|e| format!("request: {e}"))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    pub async fn get(&self, url: &str) -> Result<Answer, String> {
        tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.send(Method::GET, url, None, Vec::new()),
        )
        .await
        .map_err(|_| "timed out".to_owned())?
    }
}

/// A certificate obtained through [`Acme::issue`].
pub struct Obtained {
    pub order_url: String,
    pub cert_url: String,
    pub chain: Answer,
    pub key: Signer,
}

/// An ACME account speaking to the test CA.
pub struct Acme {
    pub http: Https,
    pub dir: Value,
    pub signer: Signer,
    pub kid: Option<String>,
    nonce: Option<String>,
}

impl Acme {
    pub async fn connect(ca: &TestCaHandle) -> Acme {
        let http = Https::new(ca);
        let dir = http
            .get(&ca.directory_url())
            .await
            .expect("directory")
            .json();
        Acme {
            http,
            dir,
            signer: Signer::generate(),
            kid: None,
            nonce: None,
        }
    }

    pub fn url(&self, name: &str) -> String {
        self.dir[name]
            .as_str()
            .unwrap_or_else(|| panic!("directory has no {name}"))
            .to_owned()
    }

    pub async fn fresh_nonce(&self) -> String {
        let a = tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.http
                .send(Method::HEAD, &self.url("newNonce"), None, Vec::new()),
        )
        .await
        .expect("nonce in time")
        .expect("nonce");
        a.header("replay-nonce").expect("Replay-Nonce").to_owned()
    }

    async fn nonce(&mut self) -> String {
        match self.nonce.take() {
            Some(n) => n,
            None => self.fresh_nonce().await,
        }
    }

    /// The protected header for `url` with `nonce`, by kid when registered, else by jwk.
    pub fn header(&self, url: &str, nonce: &str) -> Value {
        match &self.kid {
            Some(kid) => json!({"alg": "ES256", "nonce": nonce, "url": url, "kid": kid}),
            None => json!({"alg": "ES256", "nonce": nonce, "url": url, "jwk": self.signer.jwk()}),
        }
    }

    /// POSTs a JWS body as is; keeps the answer's nonce.
    pub async fn post_jws(&mut self, url: &str, jws: &Value) -> Result<Answer, String> {
        let sent = self.http.send(
            Method::POST,
            url,
            Some("application/jose+json"),
            jws.to_string().into_bytes(),
        );
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, sent)
            .await
            .map_err(|_| "timed out".to_owned())??;
        self.nonce = answer.header("replay-nonce").map(str::to_owned);
        Ok(answer)
    }

    /// POSTs `payload` (`None`: POST-as-GET) signed by the account.
    pub async fn try_post(&mut self, url: &str, payload: Option<&Value>) -> Result<Answer, String> {
        let nonce = self.nonce().await;
        let jws = self.signer.sign(&self.header(url, &nonce), payload);
        self.post_jws(url, &jws).await
    }

    pub async fn post(&mut self, url: &str, payload: Option<&Value>) -> Answer {
        self.try_post(url, payload).await.expect("transport")
    }

    pub async fn register(&mut self) -> Answer {
        let a = self
            .post(
                &self.url("newAccount"),
                Some(&json!({"termsOfServiceAgreed": true, "contact": ["mailto:t@example.com"]})),
            )
            .await;
        assert!(
            a.status.is_success(),
            "newAccount: {} {}",
            a.status,
            a.text()
        );
        self.kid = a.header("location").map(str::to_owned);
        a
    }

    pub async fn new_order(&mut self, names: &[&str], extra: Value) -> Answer {
        let mut payload = json!({
            "identifiers": names.iter().map(|n| json!({"type": "dns", "value": n})).collect::<Vec<_>>(),
        });
        if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        self.post(&self.url("newOrder"), Some(&payload)).await
    }

    /// Responds to the first challenge of `kind` of every authorization (auto-valid CA).
    pub async fn authorize(&mut self, order: &Value, kind: &str) {
        for authz in order["authorizations"].as_array().expect("authorizations") {
            let authz = self.post(authz.as_str().expect("url"), None).await.json();
            let ch = authz["challenges"]
                .as_array()
                .expect("challenges")
                .iter()
                .find(|c| c["type"] == kind)
                .unwrap_or_else(|| panic!("no {kind} challenge"))
                .clone();
            let a = self
                .post(ch["url"].as_str().expect("url"), Some(&json!({})))
                .await;
            assert_eq!(a.status, StatusCode::OK, "challenge: {}", a.text());
        }
    }

    /// Polls `order_url` until its status is not `processing`/`pending`, honouring
    /// Retry-After, at most `tries` times.
    pub async fn poll_order(&mut self, order_url: &str, tries: usize) -> Value {
        for _ in 0..tries {
            let a = self.post(order_url, None).await;
            let order = a.json();
            if !matches!(order["status"].as_str(), Some("processing" | "pending")) {
                return order;
            }
            let wait: u64 = a
                .header("retry-after")
                .and_then(|s| s.parse().ok())
                .unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(wait)).await;
        }
        panic!("order {order_url} still not done after {tries} polls");
    }

    /// The whole flow on an auto-valid CA: order, authorize, finalize, download.
    pub async fn issue(&mut self, names: &[&str], extra: Value) -> Obtained {
        let a = self.new_order(names, extra).await;
        assert_eq!(a.status, StatusCode::CREATED, "newOrder: {}", a.text());
        let order_url = a.header("location").expect("order Location").to_owned();
        let order = a.json();
        self.authorize(&order, "http-01").await;
        let order = self.poll_order(&order_url, 10).await;
        assert_eq!(order["status"], "ready");
        let key = Signer::generate();
        let fin = self
            .post(
                order["finalize"].as_str().expect("finalize"),
                Some(&csr_payload(&key, names)),
            )
            .await;
        assert_eq!(fin.status, StatusCode::OK, "finalize: {}", fin.text());
        let order = self.poll_order(&order_url, 30).await;
        assert_eq!(order["status"], "valid", "{order}");
        let cert_url = order["certificate"]
            .as_str()
            .expect("certificate")
            .to_owned();
        let chain = self.post(&cert_url, None).await;
        assert_eq!(chain.status, StatusCode::OK);
        Obtained {
            order_url,
            cert_url,
            chain,
            key,
        }
    }
}

/// `{"csr": …}` for `names`, with the key of `key` and an empty subject.
pub fn csr_payload(key: &Signer, names: &[&str]) -> Value {
    let pkcs8 = key.pkcs8_der();
    let pair = KeyPair::from_pkcs8_der_and_sign_algo(
        &pkcs8.as_slice().into(),
        &rcgen::PKCS_ECDSA_P256_SHA256,
    )
    .expect("key pair");
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.distinguished_name = DistinguishedName::new();
    let csr = params.serialize_request(&pair).expect("csr");
    json!({"csr": URL_SAFE_NO_PAD.encode(csr.der())})
}

/// The first certificate of a PEM chain, as DER.
pub fn leaf_der(chain_pem: &str) -> Vec<u8> {
    CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()
        .expect("a certificate")
        .expect("PEM")
        .to_vec()
}

/// A plain-HTTP request (the management endpoint): status and body text.
pub async fn plain(method: Method, url: &str, body: &str) -> (StatusCode, String) {
    let uri: http::Uri = url.parse().expect("URL");
    let authority = uri.authority().expect("authority").as_str().to_owned();
    let stream = TcpStream::connect(&authority).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::builder()
        .method(method)
        .uri(uri.path())
        .header(http::header::HOST, authority)
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    let response = tokio::time::timeout(REQUEST_TIMEOUT, sender.send_request(req))
        .await
        .expect("in time")
        .expect("response");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A plain-HTTP GET; the body as text.
pub async fn plain_get(url: &str) -> String {
    plain(Method::GET, url, "").await.1
}
