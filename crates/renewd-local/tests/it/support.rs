//! Helpers: challenge answers, a raw HTTP/1.1 client, hook scripts, pebble accounts and
//! chain verification.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use renewd_acme::{
    AccountKey, AcmeClient, ChallengeAnswer, ChallengeProof, ClientSettings, HttpSettings,
    NewAccount, dns01_record_name, dns01_txt_value, http01_path, tls_alpn01_certificate,
};
use renewd_config::Command;
use renewd_core::{ChallengeType, FailureClass};
use renewd_testsupport::Pebble;
pub use renewd_testsupport::verify_chain;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const KEY_AUTH: &str = "tok-1.thumbprint-abc";

pub fn http01_answer(token: &str, key_authorization: &str) -> ChallengeAnswer {
    ChallengeAnswer {
        identifier: "a.test".into(),
        wildcard: false,
        challenge_type: ChallengeType::Http01,
        token: token.into(),
        key_authorization: key_authorization.into(),
        proof: ChallengeProof::Http01 {
            path: http01_path(token),
            body: key_authorization.into(),
        },
        url: "https://ca.test/chall/1".into(),
    }
}

pub fn dns01_answer(identifier: &str, wildcard: bool, token: &str) -> ChallengeAnswer {
    let key_authorization = format!("{token}.thumb");
    ChallengeAnswer {
        identifier: identifier.into(),
        wildcard,
        challenge_type: ChallengeType::Dns01,
        token: token.into(),
        proof: ChallengeProof::Dns01 {
            name: dns01_record_name(identifier),
            value: dns01_txt_value(&key_authorization),
        },
        key_authorization,
        url: "https://ca.test/chall/2".into(),
    }
}

pub fn tls_alpn01_answer(identifier: &str, key_authorization: &str) -> ChallengeAnswer {
    ChallengeAnswer {
        identifier: identifier.into(),
        wildcard: false,
        challenge_type: ChallengeType::TlsAlpn01,
        token: "tok-3".into(),
        key_authorization: key_authorization.into(),
        proof: ChallengeProof::TlsAlpn01(
            tls_alpn01_certificate(identifier, key_authorization).unwrap(),
        ),
        url: "https://ca.test/chall/3".into(),
    }
}

/// A solver error as renewd-local's error.
pub fn local_error(e: &renewd_acme::BoxError) -> &renewd_local::Error {
    let err = e
        .downcast_ref::<renewd_local::Error>()
        .unwrap_or_else(|| panic!("not a renewd_local::Error: {e}"));
    assert_eq!(err.class(), FailureClass::Local);
    err
}

/// One HTTP/1.1 answer.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request over a fresh connection (`Connection: close`) and reads the answer.
pub async fn http(addr: SocketAddr, method: &str, path: &str) -> HttpAnswer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("the responder answers and closes")
        .unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete header");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    HttpAnswer {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

pub fn cmd(argv: &[&str]) -> Command {
    Command::new(argv.iter().map(|s| s.to_string()).collect()).unwrap()
}

/// Writes an executable `/bin/sh` script (a test fixture standing in for the operator's
/// hook) and returns the command running it.
pub fn script(dir: &Path, name: &str, body: &str) -> Command {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    cmd(&[path.to_str().unwrap()])
}

/// Client settings for a local pebble: its TLS root trusted, short timeouts.
pub fn pebble_client(pebble: &Pebble) -> AcmeClient {
    let settings = ClientSettings {
        http: HttpSettings {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            trust_roots: vec![pebble.tls_root_pem().to_path_buf()],
        },
        order_timeout: Duration::from_secs(60),
        ..ClientSettings::default()
    };
    AcmeClient::new(pebble.directory_url(), settings).unwrap()
}

/// A new account; a `badNonce` that outlived the client's retries is asked again.
pub async fn account(client: &AcmeClient) -> renewd_acme::Account {
    let key = AccountKey::generate();
    let new = NewAccount {
        contact: vec!["mailto:ops@example.com".into()],
        terms_of_service_agreed: true,
        eab: None,
    };
    for _ in 0..5 {
        match client.new_account(key.clone(), &new).await {
            Err(e) if e.class() == FailureClass::BadNonce => continue,
            other => return other.unwrap(),
        }
    }
    panic!("badNonce five times in a row")
}

/// Whether process `pid` is gone (or a zombie nobody reaped yet: dead all the same).
pub fn process_is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // "PID (comm) STATE ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// Waits (bounded) until `pid` is dead: a SIGKILL is delivered at once, but the process
/// needs a moment to be torn down.
pub async fn wait_dead(pid: u32) -> bool {
    for _ in 0..200 {
        if process_is_dead(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    process_is_dead(pid)
}
