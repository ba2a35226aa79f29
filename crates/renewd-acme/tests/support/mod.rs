//! Helpers for the pebble tests: challenge solvers that really answer pebble's validator,
//! a fault-injecting HTTP client, an event recorder and chain verification.
#![allow(dead_code, clippy::unwrap_used)]

pub mod faults;
pub mod solvers;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use renewd_acme::{
    AccountKey, AcmeClient, CertificateKey, ClientSettings, HttpClient, HttpSettings, NewAccount,
    RequestEvent, RequestObserver,
};
use renewd_core::{OutcomeClass, Step};
use renewd_testsupport::Pebble;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::prelude::*;

/// Client settings for a local CA: trusts pebble's TLS root, short timeouts.
pub fn settings(pebble: &Pebble) -> ClientSettings {
    ClientSettings {
        http: HttpSettings {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            trust_roots: vec![pebble.tls_root_pem().to_path_buf()],
        },
        order_timeout: Duration::from_secs(60),
        ..ClientSettings::default()
    }
}

/// A client for `pebble` over the real HTTP stack, recording events.
pub fn client(pebble: &Pebble) -> (AcmeClient, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let client = AcmeClient::new(pebble.directory_url(), settings(pebble))
        .unwrap()
        .with_observer(recorder.clone());
    (client, recorder)
}

/// A client for `pebble` over `http` (a fault injector), recording events.
pub fn client_over(pebble: &Pebble, http: Arc<dyn HttpClient>) -> (AcmeClient, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let client = AcmeClient::with_http_client(pebble.directory_url(), http, settings(pebble))
        .with_observer(recorder.clone());
    (client, recorder)
}

/// A new account with a new key. A `badNonce` that outlived the client's own retries is
/// transient (as the issuer treats it): ask again, a bounded number of times.
pub async fn account(client: &AcmeClient) -> renewd_acme::Account {
    let key = AccountKey::generate();
    let new = NewAccount {
        contact: vec!["mailto:ops@example.com".to_string()],
        terms_of_service_agreed: true,
        eab: None,
    };
    for _ in 0..5 {
        match client.new_account(key.clone(), &new).await {
            Err(e) if e.class() == renewd_core::FailureClass::BadNonce => continue,
            other => return other.unwrap(),
        }
    }
    panic!("badNonce five times in a row, each after the client's own retries")
}

/// Records every request event.
#[derive(Debug, Default)]
pub struct Recorder {
    events: Mutex<Vec<RequestEvent>>,
}

impl Recorder {
    pub fn events(&self) -> Vec<RequestEvent> {
        self.events.lock().unwrap().clone()
    }

    pub fn count(&self, step: Step) -> usize {
        self.events().iter().filter(|e| e.step == step).count()
    }

    pub fn count_class(&self, class: OutcomeClass) -> usize {
        self.events().iter().filter(|e| e.class == class).count()
    }
}

impl RequestObserver for Recorder {
    fn observe(&self, event: RequestEvent) {
        self.events.lock().unwrap().push(event);
    }
}

fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.unwrap())
        .collect()
}

/// Checks an issued chain: it verifies up to `root_pem` (rustls-webpki, server auth, now),
/// the leaf is valid for each name and holds exactly those SANs, and its public key is the
/// one of `key_pem`.
pub fn verify_chain(chain_pem: &str, root_pem: &str, names: &[&str], key_pem: &str) {
    let chain = certs(chain_pem);
    assert!(chain.len() >= 2, "leaf and at least one intermediate");
    let roots = certs(root_pem);
    let anchors: Vec<_> = roots
        .iter()
        .map(|r| webpki::anchor_from_trusted_cert(r).unwrap().to_owned())
        .collect();
    let leaf = webpki::EndEntityCert::try_from(&chain[0]).unwrap();
    let algs = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;
    leaf.verify_for_usage(
        algs,
        &anchors,
        &chain[1..],
        UnixTime::now(),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .expect("the chain verifies against pebble's root");
    for name in names {
        // A wildcard covers any single label: check one.
        let concrete = match name.strip_prefix("*.") {
            Some(base) => format!("any.{base}"),
            None => name.to_string(),
        };
        leaf.verify_is_valid_for_subject_name(&ServerName::try_from(concrete).unwrap())
            .unwrap_or_else(|e| panic!("not valid for {name}: {e:?}"));
    }
    let (_, x509) = X509Certificate::from_der(&chain[0]).unwrap();
    let mut sans: Vec<String> = x509
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => d.to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    sans.sort();
    let mut want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    want.sort();
    assert_eq!(sans, want, "SANs are exactly the ordered names");
    let key = CertificateKey::from_pem(key_pem).unwrap();
    assert_eq!(
        x509.public_key().raw,
        key.public_key_der().unwrap().as_slice(),
        "the leaf holds the certificate key"
    );
}

/// The DER of the leaf of a PEM chain.
pub fn leaf_der(chain_pem: &str) -> Vec<u8> {
    certs(chain_pem)[0].to_vec()
}
