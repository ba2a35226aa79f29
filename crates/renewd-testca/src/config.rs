//! How a test CA is set up: [`TestCaBuilder`] and the option types it takes.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::error::TestCaError;
use crate::faults::FaultPlan;
use crate::handle::TestCaHandle;

/// A certificate profile (draft-ietf-acme-profiles): announced in `meta.profiles`, chosen
/// by newOrder's `profile`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The description shown in the directory.
    pub description: String,
    /// Lifetime of certificates issued under it.
    pub validity: Duration,
}

/// The answer of an embedding test to "does `name` have a TXT record `value`?" (dns-01).
type Dns01Fn = dyn Fn(String, String) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync;

/// dns-01 validation through the embedding test: called with the record name
/// (`_acme-challenge.DOMAIN`) and the expected TXT value
/// (base64url(SHA-256(keyAuthorization))); `true` means the record is there.
#[derive(Clone)]
pub struct Dns01Callback(Arc<Dns01Fn>);

impl Dns01Callback {
    /// An asynchronous check.
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn(String, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        Dns01Callback(Arc::new(move |name, value| Box::pin(f(name, value))))
    }

    /// A synchronous check.
    pub fn sync<F>(f: F) -> Self
    where
        F: Fn(&str, &str) -> bool + Send + Sync + 'static,
    {
        Dns01Callback(Arc::new(move |name, value| {
            let answer = f(&name, &value);
            Box::pin(async move { answer })
        }))
    }

    pub(crate) async fn check(&self, name: String, value: String) -> bool {
        (self.0)(name, value).await
    }
}

impl fmt::Debug for Dns01Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dns01Callback(..)")
    }
}

/// Where real validation connects: every validation goes to loopback, with the domain only
/// in `Host` (http-01) or SNI (tls-alpn-01).
#[derive(Debug, Clone, Default)]
pub struct Validators {
    /// http-01: `GET http://127.0.0.1:PORT/.well-known/acme-challenge/TOKEN`, `Host: domain`.
    pub http01_port: Option<u16>,
    /// tls-alpn-01: TLS to `127.0.0.1:PORT`, SNI = domain, ALPN `acme-tls/1`.
    pub tls_alpn01_port: Option<u16>,
    /// dns-01: asked through this callback.
    pub dns01: Option<Dns01Callback>,
}

/// How challenges are decided.
#[derive(Debug, Clone)]
pub enum ChallengeMode {
    /// Every challenge the client responds to is valid at once (all three types offered).
    AutoValid,
    /// Real validation; only the types with a validator are offered (wildcards: dns-01 only).
    Validate(Validators),
}

/// Everything [`TestCaBuilder`] collects.
#[derive(Debug, Clone)]
pub(crate) struct TestCaConfig {
    pub listen: SocketAddr,
    pub management: Option<SocketAddr>,
    pub validity: Duration,
    pub profiles: BTreeMap<String, Profile>,
    pub eab_keys: BTreeMap<String, Vec<u8>>,
    pub eab_required: bool,
    pub challenge_mode: ChallengeMode,
    pub ari_retry_after: Duration,
    pub ari_explanation_url: Option<String>,
    pub processing_time: Duration,
    pub poll_retry_after: Duration,
    pub fault_plan: FaultPlan,
    pub require_terms_agreement: bool,
}

/// Sets up a test CA; [`TestCaBuilder::start`] runs it.
#[derive(Debug, Clone)]
pub struct TestCaBuilder {
    pub(crate) config: TestCaConfig,
}

const DAY: u64 = 24 * 60 * 60;

impl Default for TestCaBuilder {
    fn default() -> Self {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let profiles = BTreeMap::from([
            (
                "classic".to_owned(),
                Profile {
                    description: "90 days".to_owned(),
                    validity: Duration::from_secs(90 * DAY),
                },
            ),
            (
                "shortlived".to_owned(),
                Profile {
                    description: "about 6 days".to_owned(),
                    validity: Duration::from_secs(160 * 60 * 60),
                },
            ),
        ]);
        TestCaBuilder {
            config: TestCaConfig {
                listen: loopback,
                management: Some(loopback),
                validity: Duration::from_secs(90 * DAY),
                profiles,
                eab_keys: BTreeMap::new(),
                eab_required: false,
                challenge_mode: ChallengeMode::AutoValid,
                ari_retry_after: Duration::from_secs(6 * 60 * 60),
                ari_explanation_url: None,
                processing_time: Duration::ZERO,
                poll_retry_after: Duration::from_secs(1),
                fault_plan: FaultPlan::new(),
                require_terms_agreement: true,
            },
        }
    }
}

impl TestCaBuilder {
    /// The ACME listener's address (default `127.0.0.1:0`).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.config.listen = addr;
        self
    }

    /// The management listener's address (default `127.0.0.1:0`; `None`: no management
    /// endpoint).
    pub fn management(mut self, addr: Option<SocketAddr>) -> Self {
        self.config.management = addr;
        self
    }

    /// Lifetime of certificates ordered without a profile (default 90 days).
    pub fn validity(mut self, validity: Duration) -> Self {
        self.config.validity = validity;
        self
    }

    /// Adds or replaces a profile.
    pub fn profile(mut self, name: &str, description: &str, validity: Duration) -> Self {
        self.config.profiles.insert(
            name.to_owned(),
            Profile {
                description: description.to_owned(),
                validity,
            },
        );
        self
    }

    /// Removes every profile, the default `classic` and `shortlived` included.
    pub fn no_profiles(mut self) -> Self {
        self.config.profiles.clear();
        self
    }

    /// Accepts external account bindings made with `mac_key` under `kid`.
    pub fn eab_key(mut self, kid: &str, mac_key: &[u8]) -> Self {
        self.config
            .eab_keys
            .insert(kid.to_owned(), mac_key.to_vec());
        self
    }

    /// Refuses newAccount without a valid binding (`meta.externalAccountRequired`).
    pub fn eab_required(mut self, required: bool) -> Self {
        self.config.eab_required = required;
        self
    }

    /// How challenges are decided (default [`ChallengeMode::AutoValid`]).
    pub fn challenge_mode(mut self, mode: ChallengeMode) -> Self {
        self.config.challenge_mode = mode;
        self
    }

    /// `Retry-After` on ARI answers (default 6 hours).
    pub fn ari_retry_after(mut self, delay: Duration) -> Self {
        self.config.ari_retry_after = delay;
        self
    }

    /// `explanationURL` on ARI answers (default none).
    pub fn ari_explanation_url(mut self, url: &str) -> Self {
        self.config.ari_explanation_url = Some(url.to_owned());
        self
    }

    /// How long every finalized order stays `processing` (default zero: issued at once).
    pub fn processing_time(mut self, delay: Duration) -> Self {
        self.config.processing_time = delay;
        self
    }

    /// `Retry-After` on pending authorizations and processing orders (default 1 s).
    pub fn poll_retry_after(mut self, delay: Duration) -> Self {
        self.config.poll_retry_after = delay;
        self
    }

    /// The seed of the fault plan's random source (overrides the plan's own).
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.fault_plan.seed = seed;
        self
    }

    /// The fault plan to start with (its seed replaces any set before).
    pub fn fault_plan(mut self, plan: FaultPlan) -> Self {
        self.config.fault_plan = plan;
        self
    }

    /// Whether newAccount must agree to the terms of service (default true).
    pub fn require_terms_agreement(mut self, required: bool) -> Self {
        self.config.require_terms_agreement = required;
        self
    }

    /// Generates the keys and certificates, binds the listeners and starts serving on the
    /// current tokio runtime.
    pub async fn start(self) -> Result<TestCaHandle, TestCaError> {
        if self.config.eab_required && self.config.eab_keys.is_empty() {
            return Err(TestCaError::Config("eab_required without any EAB key"));
        }
        self.config.fault_plan.validate()?;
        crate::handle::start(self.config).await
    }
}
