//! verify_served against a local rustls server serving certificates the test chooses.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{CertificateParams, KeyPair, SerialNumber};
use renewd_core::DomainName;
use renewd_local::{Served, ServedCheck, verify_served};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::task::JoinHandle;

fn certified(serial: &[u8]) -> Arc<CertifiedKey> {
    let mut params = CertificateParams::new(vec!["www.example.test".into()]).unwrap();
    params.serial_number = Some(SerialNumber::from_slice(serial));
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let signing = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        )))
        .unwrap();
    Arc::new(CertifiedKey::new(
        vec![CertificateDer::from(cert.der().to_vec())],
        signing,
    ))
}

/// Serves `before` for the first `switch_after` handshakes, then `after` (a reload).
#[derive(Debug)]
struct Reloading {
    before: Arc<CertifiedKey>,
    after: Arc<CertifiedKey>,
    switch_after: usize,
    handshakes: AtomicUsize,
    snis: Mutex<Vec<String>>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.snis
            .lock()
            .unwrap()
            .push(hello.server_name().unwrap_or_default().to_string());
        let n = self.handshakes.fetch_add(1, Ordering::SeqCst);
        Some(if n < self.switch_after {
            self.before.clone()
        } else {
            self.after.clone()
        })
    }
}

struct Server {
    addr: SocketAddr,
    certs: Arc<Reloading>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(before: &[u8], after: &[u8], switch_after: usize) -> Server {
    let certs = Arc::new(Reloading {
        before: certified(before),
        after: certified(after),
        switch_after,
        handshakes: AtomicUsize::new(0),
        snis: Mutex::new(Vec::new()),
    });
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_cert_resolver(certs.clone());
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(stream).await;
            });
        }
    });
    Server { addr, certs, task }
}

fn quick(attempts: u32) -> ServedCheck {
    ServedCheck {
        timeout: Duration::from_secs(5),
        attempts,
        first_pause: Duration::from_millis(20),
    }
}

fn name(s: &str) -> DomainName {
    DomainName::new(s).unwrap()
}

#[tokio::test]
async fn reports_served_mismatch_and_unreachable() {
    let new = [0x00, 0xba, 0xdc, 0x0d, 0xe0];
    let good = serve(&new, &new, 0).await;
    let stale = serve(&[0x42], &[0x42], 0).await;
    let nobody = SocketAddr::from(([127, 0, 0, 1], renewd_testsupport::free_port()));
    let reports = verify_served(
        &[good.addr, stale.addr, nobody],
        &name("www.example.test"),
        // The store's spelling: lower-case, no leading zeros. Any case is accepted.
        "BADC0DE0",
        &quick(2),
    )
    .await
    .unwrap();
    assert_eq!(
        reports[0],
        Served::Served {
            addr: good.addr,
            serial: "badc0de0".into()
        }
    );
    assert_eq!(
        reports[1],
        Served::Mismatch {
            addr: stale.addr,
            expected: "badc0de0".into(),
            got: "42".into()
        }
    );
    assert_eq!(
        stale.certs.handshakes.load(Ordering::SeqCst),
        2,
        "retried once"
    );
    match &reports[2] {
        Served::Unreachable { addr, error } => {
            assert_eq!(*addr, nobody);
            assert!(error.to_lowercase().contains("refused"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        good.certs.snis.lock().unwrap().as_slice(),
        ["www.example.test"],
        "SNI is the certificate's name"
    );
}

#[tokio::test]
async fn waits_for_a_reload_that_takes_a_moment() {
    let server = serve(&[0x01], &[0x02], 2).await;
    let reports = verify_served(&[server.addr], &name("*.example.test"), "2", &quick(4))
        .await
        .unwrap();
    assert!(reports[0].is_served(), "{}", reports[0]);
    assert_eq!(server.certs.handshakes.load(Ordering::SeqCst), 3);
    assert_eq!(
        server.certs.snis.lock().unwrap()[0],
        "example.test",
        "a wildcard is asked for by its base name"
    );
}
