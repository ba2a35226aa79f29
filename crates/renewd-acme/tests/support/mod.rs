//! Helpers for the pebble tests: challenge solvers that really answer pebble's validator,
//! a fault-injecting HTTP client, an event recorder; chain verification comes from
//! renewd-testsupport.
#![allow(dead_code, clippy::unwrap_used)]

pub mod faults;
pub mod solvers;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use renewd_acme::{
    AccountKey, AcmeClient, ClientSettings, HttpClient, HttpSettings, NewAccount, RequestEvent,
    RequestObserver,
};
use renewd_core::{OutcomeClass, Step};
use renewd_testsupport::Pebble;
pub use renewd_testsupport::{leaf_der, verify_chain};

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
