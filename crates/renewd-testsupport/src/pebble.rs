//! Pebble and pebble-challtestsrv on free loopback ports, one pair per test.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::watch;

use crate::child::{ChildGuard, free_port};
use crate::https;
use crate::tls::ThrowawayTls;

/// How long a peer may take to say it is ready before the test fails.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const START_ATTEMPTS: usize = 3;

/// What to configure in pebble. The default is the PEERS.md recipe: no EAB, 90-day
/// certificates, no nonce rejection, real validation, no authorization reuse.
#[derive(Debug, Clone, Default)]
pub struct PebbleOptions {
    /// `externalAccountBindingRequired`.
    pub eab_required: bool,
    /// `externalAccountMACKeys`: key id → base64url MAC key.
    pub eab_keys: Vec<(String, String)>,
    /// `certificateValidityPeriod` in seconds (pebble's default when `None`: 90 days here).
    pub validity_seconds: Option<u64>,
    /// `PEBBLE_WFE_NONCEREJECT`: percentage of good nonces rejected.
    pub nonce_reject_percent: u8,
    /// `PEBBLE_ALTERNATE_ROOTS`: number of alternate chains.
    pub alternate_roots: u32,
    /// `PEBBLE_CHAIN_LENGTH`.
    pub chain_length: Option<u32>,
    /// `domainBlocklist`.
    pub domain_blocklist: Vec<String>,
    /// `PEBBLE_VA_ALWAYS_VALID=1`: no validation requests at all.
    pub va_always_valid: bool,
    /// The port pebble's validator connects to for http-01; a free one when `None`. Tests
    /// that serve http-01 bind their listener first (port 0) and pass its port here.
    pub http_port: Option<u16>,
    /// The port pebble's validator connects to for tls-alpn-01; a free one when `None`.
    pub tls_port: Option<u16>,
}

/// A running pebble with its DNS server (pebble-challtestsrv). Both are killed on drop.
#[derive(Debug)]
pub struct Pebble {
    _dir: tempfile::TempDir,
    tls: ThrowawayTls,
    listen_port: u16,
    management_port: u16,
    challtestsrv_management_port: u16,
    http_port: u16,
    tls_port: u16,
    log: Arc<Mutex<Vec<String>>>,
    // Declared last: dropped (killed) after the fields above are no longer needed.
    pebble: ChildGuard,
    _challtestsrv: ChildGuard,
}

impl Pebble {
    /// Starts pebble-challtestsrv and pebble on free loopback ports and waits until pebble
    /// logs that its directory is available. Panics with a clear message if pebble is not
    /// installed.
    pub async fn start(options: PebbleOptions) -> Pebble {
        for bin in ["pebble", "pebble-challtestsrv"] {
            if find_in_path(bin).is_none() {
                panic!("`{bin}` is not installed: run scripts/test, it installs pebble");
            }
        }
        // Free ports are found by bind-and-release, so another process may take one before
        // pebble binds it; such a start fails fast and is retried on new ports.
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(&options).await {
                Ok(pebble) => return pebble,
                Err(e) => failures.push(e),
            }
        }
        panic!(
            "pebble did not start in {START_ATTEMPTS} attempts:\n{}",
            failures.join("\n----\n")
        );
    }

    async fn try_start(options: &PebbleOptions) -> Result<Pebble, String> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let tls = ThrowawayTls::generate(dir.path());
        let log = Arc::new(Mutex::new(Vec::new()));

        let dns_port = free_port();
        let challtestsrv_management_port = free_port();
        let mut cmd = Command::new("pebble-challtestsrv");
        cmd.arg("-dns01")
            .arg(format!("127.0.0.1:{dns_port}"))
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .arg("-management")
            .arg(format!("127.0.0.1:{challtestsrv_management_port}"))
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""]);
        let mut challtestsrv = ChildGuard::spawn("pebble-challtestsrv", cmd);
        wait_for_line(
            &mut challtestsrv,
            "Starting management server",
            &log,
            "challtestsrv",
        )
        .await?;
        wait_for_port(&mut challtestsrv, challtestsrv_management_port, &log).await?;

        let listen_port = free_port();
        let management_port = free_port();
        let http_port = options.http_port.unwrap_or_else(free_port);
        let tls_port = options.tls_port.unwrap_or_else(free_port);
        let eab_keys: serde_json::Map<String, serde_json::Value> = options
            .eab_keys
            .iter()
            .map(|(kid, key)| (kid.clone(), json!(key)))
            .collect();
        let config = json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{listen_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": tls.cert_pem,
            "privateKey": tls.key_pem,
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": options.eab_required,
            "externalAccountMACKeys": eab_keys,
            "domainBlocklist": options.domain_blocklist,
            "certificateValidityPeriod": options.validity_seconds.unwrap_or(7_776_000),
        }});
        let config_path = dir.path().join("pebble.json");
        std::fs::write(&config_path, config.to_string()).expect("write pebble.json");

        let mut cmd = Command::new("pebble");
        cmd.arg("-config")
            .arg(&config_path)
            .arg("-dnsserver")
            .arg(format!("127.0.0.1:{dns_port}"))
            .current_dir(dir.path())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env(
                "PEBBLE_WFE_NONCEREJECT",
                options.nonce_reject_percent.to_string(),
            )
            .env("PEBBLE_AUTHZREUSE", "0");
        if options.alternate_roots > 0 {
            cmd.env(
                "PEBBLE_ALTERNATE_ROOTS",
                options.alternate_roots.to_string(),
            );
        }
        if let Some(n) = options.chain_length {
            cmd.env("PEBBLE_CHAIN_LENGTH", n.to_string());
        }
        if options.va_always_valid {
            cmd.env("PEBBLE_VA_ALWAYS_VALID", "1");
        }
        let mut pebble = ChildGuard::spawn("pebble", cmd);
        wait_for_line(&mut pebble, "ACME directory available", &log, "pebble").await?;
        // pebble logs the line just before it binds: wait for the sockets themselves.
        wait_for_port(&mut pebble, listen_port, &log).await?;
        wait_for_port(&mut pebble, management_port, &log).await?;

        Ok(Pebble {
            _dir: dir,
            tls,
            listen_port,
            management_port,
            challtestsrv_management_port,
            http_port,
            tls_port,
            log,
            pebble,
            _challtestsrv: challtestsrv,
        })
    }

    /// The ACME directory URL.
    pub fn directory_url(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.listen_port)
    }

    /// The PEM file of the root that signed pebble's HTTPS certificate: give it to the
    /// client as an extra trust root.
    pub fn tls_root_pem(&self) -> &Path {
        &self.tls.root_pem
    }

    /// pebble's management API base URL (HTTPS, same TLS root).
    pub fn management_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.management_port)
    }

    /// The port pebble's validator connects to for http-01.
    pub fn http01_port(&self) -> u16 {
        self.http_port
    }

    /// The port pebble's validator connects to for tls-alpn-01.
    pub fn tls_alpn01_port(&self) -> u16 {
        self.tls_port
    }

    /// The issuing root number `index` (0 is the default chain's root) as PEM. pebble makes
    /// new roots on every start.
    pub async fn issuing_root_pem(&self, index: usize) -> String {
        let url = format!("{}/roots/{index}", self.management_url());
        let (status, body) = https::request("GET", &url, None, &self.tls.root_pem).await;
        assert_eq!(status, 200, "GET {url}");
        String::from_utf8(body.to_vec()).expect("PEM is ASCII")
    }

    /// pebble-challtestsrv's management API base URL (plain HTTP): `POST /set-txt`
    /// `{"host": "NAME.", "value": "..."}` and `POST /clear-txt` `{"host": "NAME."}`, for
    /// tests whose own hook programs act as the DNS provider.
    pub fn challtestsrv_management_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.challtestsrv_management_port)
    }

    /// Makes the DNS server answer TXT queries for `host` (e.g. `_acme-challenge.a.test`)
    /// with `value`.
    pub async fn set_txt(&self, host: &str, value: &str) {
        let body = json!({"host": fqdn(host), "value": value}).to_string();
        self.challtestsrv("set-txt", body).await;
    }

    /// Removes the TXT records of `host`.
    pub async fn clear_txt(&self, host: &str) {
        let body = json!({"host": fqdn(host)}).to_string();
        self.challtestsrv("clear-txt", body).await;
    }

    async fn challtestsrv(&self, path: &str, body: String) {
        let url = format!(
            "http://127.0.0.1:{}/{path}",
            self.challtestsrv_management_port
        );
        let (status, answer) = https::request("POST", &url, Some(body), &self.tls.root_pem).await;
        assert_eq!(status, 200, "POST {url}: {answer:?}");
    }

    /// Everything both processes logged so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Kills pebble now (an outage); its DNS server stays up.
    pub async fn kill(&mut self) {
        self.pebble.kill().await;
    }
}

fn fqdn(host: &str) -> String {
    if host.ends_with('.') {
        host.to_string()
    } else {
        format!("{host}.")
    }
}

fn find_in_path(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(bin))
        .find(|p| p.is_file())
}

/// Copies the child's stdout and stderr into `log` (prefixed) and returns once a line
/// containing `needle` appears. An error, with the log, if the child stays silent past the
/// timeout.
async fn wait_for_line(
    child: &mut ChildGuard,
    needle: &'static str,
    log: &Arc<Mutex<Vec<String>>>,
    prefix: &'static str,
) -> Result<(), String> {
    let (seen_tx, mut seen_rx) = watch::channel(false);
    let stdout = child.child_mut().stdout.take().expect("stdout is piped");
    let stderr = child.child_mut().stderr.take().expect("stderr is piped");
    drain(stdout, needle, seen_tx.clone(), log.clone(), prefix);
    drain(stderr, needle, seen_tx, log.clone(), prefix);
    let waited = tokio::time::timeout(READY_TIMEOUT, seen_rx.wait_for(|seen| *seen)).await;
    match waited {
        Ok(Ok(_)) => Ok(()),
        _ => Err(format!(
            "{} did not log {needle:?} within {READY_TIMEOUT:?}; log:\n{}",
            child.name(),
            log_text(log)
        )),
    }
}

fn log_text(log: &Arc<Mutex<Vec<String>>>) -> String {
    log.lock().map(|l| l.join("\n")).unwrap_or_default()
}

fn drain(
    pipe: impl AsyncRead + Unpin + Send + 'static,
    needle: &'static str,
    seen: watch::Sender<bool>,
    log: Arc<Mutex<Vec<String>>>,
    prefix: &'static str,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(needle) {
                seen.send_replace(true);
            }
            if let Ok(mut log) = log.lock() {
                log.push(format!("[{prefix}] {line}"));
            }
        }
    });
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`. The log line that
/// announced readiness comes just before the bind, so this is a short wait on the socket.
/// Fails at once if the child exits meanwhile (a port taken by someone else).
async fn wait_for_port(
    child: &mut ChildGuard,
    port: u16,
    log: &Arc<Mutex<Vec<String>>>,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if let Ok(Some(status)) = child.child_mut().try_wait() {
            return Err(format!(
                "{} exited ({status}) before listening on 127.0.0.1:{port}; log:\n{}",
                child.name(),
                log_text(log)
            ));
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "nothing listens on 127.0.0.1:{port}; log:\n{}",
                log_text(log)
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
