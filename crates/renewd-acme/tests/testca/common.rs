//! What the testca tests share: a running test CA with a client of ours pointed at it,
//! requests recorded on the way out, events recorded per request, and small helpers.

use std::sync::Arc;
use std::time::Duration;

use renewd_acme::{
    Account, AccountKey, AcmeClient, ClientSettings, Error, Fetched, HttpSettings, HyperClient,
    Identifier, IssueRequest, Issued, MemoryPendingOrders, NewAccount, NewOrder, Order,
    OrderStatus, PollPolicy,
};
use renewd_core::FailureClass;
use renewd_testca::{Counts, Endpoint, FaultPlan, TestCa, TestCaBuilder, TestCaHandle};
use tempfile::TempDir;
use x509_parser::prelude::*;

use crate::support::Recorder;
use crate::support::faults::{FaultyHttp, Sent};
use crate::support::solvers::NoopSolver;

/// Client settings for a local CA: short polls and an order deadline a test can afford.
pub fn settings(root_file: std::path::PathBuf) -> ClientSettings {
    ClientSettings {
        http: HttpSettings {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            trust_roots: vec![root_file],
        },
        poll: PollPolicy {
            first_interval: Duration::from_millis(50),
            max_interval: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_failure_interval: Duration::from_secs(1),
            ..PollPolicy::default()
        },
        order_timeout: Duration::from_secs(30),
        probe_timeout: Duration::from_secs(5),
        ..ClientSettings::default()
    }
}

/// A test CA and our client for it. Every request the client sends is recorded (method,
/// URL, JWS payload) by a pass-through [`FaultyHttp`] without rules; every event by a
/// [`Recorder`].
pub struct Env {
    pub ca: TestCaHandle,
    pub client: AcmeClient,
    pub recorder: Arc<Recorder>,
    pub wire: Arc<FaultyHttp>,
    pub sink: MemoryPendingOrders,
    root: std::path::PathBuf,
    _dir: TempDir,
}

impl Env {
    /// A CA with the defaults (auto-valid challenges, profiles, ARI, no faults).
    pub async fn start() -> Env {
        Env::start_with(TestCa::builder(), |_| {}).await
    }

    /// A CA from `builder`, and a client whose settings `adjust` may change.
    pub async fn start_with(
        builder: TestCaBuilder,
        adjust: impl FnOnce(&mut ClientSettings),
    ) -> Env {
        let ca = builder.start().await.expect("the test CA starts");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("testca-https-root.pem");
        std::fs::write(&root, ca.root_pem()).unwrap();
        let mut settings = settings(root.clone());
        adjust(&mut settings);
        let wire = FaultyHttp::new(HyperClient::new(&settings.http).unwrap());
        let recorder = Arc::new(Recorder::default());
        let client = AcmeClient::with_http_client(ca.directory_url(), wire.clone(), settings)
            .with_observer(recorder.clone());
        Env {
            ca,
            client,
            recorder,
            wire,
            sink: MemoryPendingOrders::default(),
            root,
            _dir: dir,
        }
    }

    /// Another client for the same CA (as after a restart): its own connections, directory
    /// and nonces, the default test settings changed by `adjust`. Not recorded.
    pub fn second_client(&self, adjust: impl FnOnce(&mut ClientSettings)) -> AcmeClient {
        let mut settings = settings(self.root.clone());
        adjust(&mut settings);
        AcmeClient::new(self.ca.directory_url(), settings).unwrap()
    }

    /// A new account. A `badNonce` that outlived the client's own retries is transient
    /// (the issuer treats it so): ask again, a bounded number of times.
    pub async fn account(&self) -> Account {
        let key = AccountKey::generate();
        let new = NewAccount {
            contact: vec!["mailto:ops@example.com".to_string()],
            terms_of_service_agreed: true,
            eab: None,
        };
        for _ in 0..20 {
            match self.client.new_account(key.clone(), &new).await {
                Err(e) if e.class() == FailureClass::BadNonce => continue,
                other => return other.unwrap(),
            }
        }
        panic!("badNonce twenty times in a row, each after the client's own retries")
    }

    /// Issues for `names` with the defaults, answering challenges with nothing (the CA
    /// validates them on its own).
    pub async fn issue(&self, account: &Account, names: &[&str]) -> Result<Issued, Error> {
        self.issue_request(account, &IssueRequest::dns(names)).await
    }

    pub async fn issue_request(
        &self,
        account: &Account,
        request: &IssueRequest,
    ) -> Result<Issued, Error> {
        account.issue(request, &NoopSolver, &self.sink).await
    }

    /// Sets the fault plan and zeroes the counts: what follows is what the test asserts.
    pub fn plan(&self, plan: FaultPlan) {
        self.ca.set_fault_plan(plan).unwrap();
        self.ca.reset_counts();
    }

    pub fn counts(&self) -> Counts {
        self.ca.counts()
    }

    /// The requests sent whose path ends with `/finalize`.
    pub fn finalizes_sent(&self) -> Vec<Sent> {
        self.wire
            .sent()
            .into_iter()
            .filter(|s| s.url.ends_with("/finalize"))
            .collect()
    }

    /// The newOrder requests sent.
    pub fn new_orders_sent(&self) -> Vec<Sent> {
        self.wire
            .sent()
            .into_iter()
            .filter(|s| s.url.ends_with("/acme/new-order"))
            .collect()
    }

    /// Checks an issued chain against the CA's primary issuing root, the names and the key.
    pub fn verify(&self, issued: &Issued, names: &[&str]) {
        let root = &self.ca.issuing_roots_pem()[0];
        crate::support::verify_chain(&issued.chain_pem, root, names, &issued.key_pem);
    }
}

/// The one-order, one-certificate outcome every finalize recovery must reach: exactly one
/// order created and one certificate issued, and the certificate the client holds is the
/// one the CA issued.
pub fn assert_one_order_one_certificate(env: &Env, issued: &Issued) {
    let counts = env.counts();
    assert_eq!(counts.orders_created, 1, "exactly one order: {counts:?}");
    assert_eq!(
        counts.certificates_issued, 1,
        "exactly one issuance: {counts:?}"
    );
    assert_eq!(counts.requests_to(Endpoint::NewOrder), 1, "{counts:?}");
    let certs = env.ca.certificates();
    assert_eq!(certs.len(), 1);
    assert_eq!(
        leaf_serial_hex(&issued.chain_pem),
        certs[0].serial,
        "the client holds the certificate the CA issued"
    );
    assert!(
        env.sink.records().is_empty(),
        "the pending record is dropped"
    );
}

/// The CSRs of every finalize sent.
pub fn csrs_sent(sent: &[Sent]) -> Vec<String> {
    sent.iter()
        .map(|s| {
            s.payload.as_ref().expect("finalize carries a payload")["csr"]
                .as_str()
                .expect("csr is a string")
                .to_string()
        })
        .collect()
}

/// The leaf's (notBefore, notAfter), as Unix seconds.
pub fn leaf_validity(chain_pem: &str) -> (i64, i64) {
    let der = crate::support::leaf_der(chain_pem);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    (
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    )
}

/// The leaf's serial as the test CA prints it (lower-case hex, no leading zeros).
pub fn leaf_serial_hex(chain_pem: &str) -> String {
    let der = crate::support::leaf_der(chain_pem);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let raw = cert.tbs_certificate.raw_serial();
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    raw[start..].iter().map(|b| format!("{b:02x}")).collect()
}

/// `(now + secs) ± slack` contains `at`.
pub fn about_now_plus(at: chrono::DateTime<chrono::Utc>, secs: i64, slack: i64) {
    let want = chrono::Utc::now() + chrono::TimeDelta::seconds(secs);
    let off = (at - want).num_seconds().abs();
    assert!(off <= slack, "{at} is {off} s away from now + {secs} s");
}

/// A new order for `name`, its authorizations answered (the CA validates on its own), now
/// `ready`, built from the low-level requests.
pub async fn ready_order(account: &Account, name: &str) -> Fetched<Order> {
    let new = NewOrder {
        identifiers: vec![Identifier::dns(name)],
        ..NewOrder::default()
    };
    let order = account.new_order(&new).await.unwrap();
    for authz_url in &order.body.authorizations {
        let authz = account.authorization(authz_url).await.unwrap().body;
        let challenge = authz
            .challenges
            .iter()
            .find(|c| c.kind == "http-01")
            .unwrap();
        account.respond_challenge(&challenge.url).await.unwrap();
        account.poll_authorization(authz_url).await.unwrap();
    }
    let order = account.order(&order.url).await.unwrap();
    assert_eq!(order.body.status, OrderStatus::Ready);
    order
}
