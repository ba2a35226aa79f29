//! Each configured CA at run time: its ACME client (rate-limited HTTP, the CA's trust roots
//! and timeout), its order semaphore (`max_concurrent_orders`), its single-flight probe
//! cache and its account. A [`Generation`] holds them all with the config they were built
//! from; a reload builds a new generation (reusing the runtimes of unchanged CAs), and jobs
//! in flight finish with the one they started with.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use renewd_acme::{Account, AcmeClient, ClientSettings, HttpClient, HttpSettings, HyperClient};
use renewd_config::{BreakerPolicy, CaConfig, Config};
use renewd_core::{CaName, FailureClass};
use tokio::sync::{Mutex, Semaphore};

use crate::error::IssuerError;
use crate::options::IssuerOptions;
use crate::rate_limit::RateLimitedHttp;

/// The config and the CA runtimes built from it.
#[derive(Debug)]
pub(crate) struct Generation {
    pub(crate) config: Arc<Config>,
    pub(crate) cas: HashMap<CaName, Arc<CaRuntime>>,
}

impl Generation {
    /// Builds the runtimes of `config`'s CAs, reusing those of `previous` whose settings
    /// did not change (they keep their connections, probe cache and account).
    pub(crate) fn build(
        config: Arc<Config>,
        options: &IssuerOptions,
        previous: Option<&Generation>,
    ) -> Result<Generation, IssuerError> {
        let mut cas = HashMap::new();
        for ca in &config.cas {
            let reused = previous
                .and_then(|g| g.cas.get(&ca.name))
                .filter(|rt| rt.built_from(ca, &config.breaker))
                .cloned();
            let rt = match reused {
                Some(rt) => rt,
                None => Arc::new(CaRuntime::build(ca, &config.breaker, options)?),
            };
            cas.insert(ca.name.clone(), rt);
        }
        Ok(Generation { config, cas })
    }
}

/// One CA at run time.
#[derive(Debug)]
pub(crate) struct CaRuntime {
    pub(crate) config: CaConfig,
    pub(crate) client: AcmeClient,
    /// `max_concurrent_orders` permits.
    pub(crate) orders: Arc<Semaphore>,
    pub(crate) probe: ProbeGate,
    /// The account, once set up (with the CA-level observer; jobs re-observe it).
    pub(crate) account: Mutex<Option<Account>>,
    /// The CA said the account does not exist or may not act: the stored record is not
    /// trusted until the key has been looked up (or the account created) again.
    pub(crate) account_doubted: AtomicBool,
    probe_timeout: Duration,
}

impl CaRuntime {
    fn build(
        ca: &CaConfig,
        breaker: &BreakerPolicy,
        options: &IssuerOptions,
    ) -> Result<CaRuntime, IssuerError> {
        let http_settings = HttpSettings {
            connect_timeout: ca.timeout.min(Duration::from_secs(10)),
            request_timeout: ca.timeout,
            trust_roots: ca.trust_roots.iter().map(|r| r.path.clone()).collect(),
        };
        let hyper = HyperClient::new(&http_settings).map_err(|source| IssuerError::CaSetup {
            ca: ca.name.clone(),
            source,
        })?;
        let http: Arc<dyn HttpClient> =
            Arc::new(RateLimitedHttp::new(hyper, ca.requests_per_second));
        let mut settings = ClientSettings {
            http: http_settings,
            poll: options.poll.clone(),
            // The CA's own limit, as configured (default 10 min): the one the docs promise.
            order_timeout: ca.order_timeout,
            probe_timeout: breaker.probe_timeout,
            ..ClientSettings::default()
        };
        if let Some(ua) = &options.user_agent {
            settings.user_agent = ua.clone();
        }
        let client = AcmeClient::with_http_client(ca.directory.to_string(), http, settings);
        Ok(CaRuntime {
            config: ca.clone(),
            client,
            orders: Arc::new(Semaphore::new(ca.max_concurrent_orders.max(1))),
            probe: ProbeGate::default(),
            account: Mutex::new(None),
            account_doubted: AtomicBool::new(false),
            probe_timeout: breaker.probe_timeout,
        })
    }

    fn built_from(&self, ca: &CaConfig, breaker: &BreakerPolicy) -> bool {
        &self.config == ca && self.probe_timeout == breaker.probe_timeout
    }

    pub(crate) fn name(&self) -> &CaName {
        &self.config.name
    }
}

/// A finished health probe.
#[derive(Debug, Clone)]
pub(crate) struct ProbeResult {
    /// The failure's class, or `None` for a good probe.
    pub(crate) failure: Option<FailureClass>,
    /// One line (empty when good).
    pub(crate) message: String,
    pub(crate) at: DateTime<Utc>,
    pub(crate) latency: Duration,
}

impl ProbeResult {
    pub(crate) fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// Single-flight probing with a cache: jobs that ask while a probe runs wait for it and
/// share its result; a good result is reused for `probe_cache`.
#[derive(Debug, Default)]
pub(crate) struct ProbeGate {
    last: Mutex<Option<(u64, ProbeResult)>>,
    finished: AtomicU64,
}

impl ProbeGate {
    /// The probe result to act on: a probe that finished while we waited, a good cached one
    /// younger than `ttl` (unless `fresh`), or the result of running `probe` now (`true` in
    /// the second field: this caller ran it and records it).
    pub(crate) async fn check<F, Fut>(
        &self,
        fresh: bool,
        ttl: Duration,
        now: DateTime<Utc>,
        probe: F,
    ) -> (ProbeResult, bool)
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ProbeResult>,
    {
        let seen = self.finished.load(Ordering::SeqCst);
        let mut last = self.last.lock().await;
        if let Some((seq, result)) = last.as_ref() {
            if *seq > seen {
                // It ran while we queued behind it: its answer is ours too.
                return (result.clone(), false);
            }
            let age = now - result.at;
            if !fresh
                && result.ok()
                && age >= TimeDelta::zero()
                && age < TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX)
            {
                return (result.clone(), false);
            }
        }
        let result = probe().await;
        let seq = self.finished.load(Ordering::SeqCst) + 1;
        *last = Some((seq, result.clone()));
        self.finished.store(seq, Ordering::SeqCst);
        (result, true)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000, 0).unwrap()
    }

    fn result(ok: bool, at: DateTime<Utc>) -> ProbeResult {
        ProbeResult {
            failure: (!ok).then_some(FailureClass::CaUnavailable),
            message: String::new(),
            at,
            latency: Duration::from_millis(3),
        }
    }

    #[test]
    fn each_ca_s_order_timeout_is_its_limit_above_ten_minutes_too() {
        let text = "state_dir = \"/var/lib/renewd-test\"\n\
            [[ca]]\nname = \"slow\"\ndirectory = \"http://127.0.0.1:9/dir\"\n\
            order_timeout = \"45m\"\n\
            [[ca]]\nname = \"plain\"\ndirectory = \"http://127.0.0.1:9/dir\"\n";
        let config = Config::from_str(
            text,
            std::path::Path::new("/etc/renewd/renewd.toml"),
            &renewd_config::LoadEnv::default(),
        )
        .unwrap();
        let generation =
            Generation::build(Arc::new(config), &IssuerOptions::default(), None).unwrap();
        let limit = |ca: &str| {
            generation.cas[&CaName::new(ca).unwrap()]
                .client
                .settings()
                .order_timeout
        };
        assert_eq!(limit("slow"), Duration::from_secs(45 * 60));
        assert_eq!(limit("plain"), Duration::from_secs(10 * 60), "the default");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_probe_and_good_results_are_cached() {
        let gate = Arc::new(ProbeGate::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let (gate, runs) = (gate.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                gate.check(false, Duration::from_secs(30), t0(), || async {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    result(false, t0())
                })
                .await
            }));
        }
        let mut ran = 0;
        for t in tasks {
            let (r, mine) = t.await.unwrap();
            assert!(!r.ok(), "the waiters share the failure");
            ran += usize::from(mine);
        }
        assert_eq!((runs.load(Ordering::SeqCst), ran), (1, 1));

        // A failure is not cached for later callers; a success is, for the TTL.
        let probe_ok = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            result(true, t0())
        };
        assert!(
            gate.check(false, Duration::from_secs(30), t0(), probe_ok)
                .await
                .1
        );
        let later = t0() + TimeDelta::seconds(29);
        assert!(
            !gate
                .check(false, Duration::from_secs(30), later, probe_ok)
                .await
                .1
        );
        // Fresh is fresh; and the TTL ends.
        assert!(
            gate.check(true, Duration::from_secs(30), later, probe_ok)
                .await
                .1
        );
        let expired = t0() + TimeDelta::seconds(31);
        assert!(
            gate.check(false, Duration::from_secs(30), expired, probe_ok)
                .await
                .1
        );
        assert_eq!(runs.load(Ordering::SeqCst), 4);
    }
}
