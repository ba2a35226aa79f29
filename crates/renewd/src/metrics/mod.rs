//! Prometheus metrics: the families renewd exports and the calls that update them.
//!
//! | family | labels | meaning |
//! |---|---|---|
//! | `renewd_up` | | 1 while the daemon runs |
//! | `renewd_config_last_reload_successful` | | 1 unless the last SIGHUP's config was refused |
//! | `renewd_certificate_not_after_seconds` | `cert` | the installed certificate's notAfter, Unix time |
//! | `renewd_certificate_next_attempt_seconds` | `cert` | when the next renewal attempt is due, Unix time |
//! | `renewd_certificate_last_success_seconds` | `cert` | when the certificate was last renewed, Unix time |
//! | `renewd_certificate_expiry_danger` | `cert` | 1 while the certificate is at critical urgency (not renewed yet), else 0 |
//! | `renewd_certificate_failure_streak` | `cert` | failed attempts in a row, 0 after a success |
//! | `renewd_acme_requests_total` | `ca`, `step`, `class` | ACME requests by outcome class (the ledger's labels) |
//! | `renewd_ca_circuit_state` | `ca`, `state` | 1 for the CA's circuit state in effect at the scrape (`closed`, `open`, `half_open`: an open circuit past its cool-down reads `half_open`), 0 for the others |
//! | `renewd_ca_probe_latency_seconds` | `ca` | histogram of health probe latencies |
//!
//! The engine updates them through [`Metrics`]; [`serve`] exposes them in the Prometheus
//! text format at `/metrics`, next to `/healthz`.

mod server;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use renewd_core::{CaName, CertName, RequestOutcome, Step};
use renewd_store::CircuitState;

pub use server::{MetricsListener, serve};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertLabels {
    cert: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CaLabels {
    ca: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    ca: String,
    step: String,
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CircuitLabels {
    ca: String,
    state: String,
}

/// Every circuit state: `renewd_ca_circuit_state` exports one series per state.
const CIRCUIT_STATES: [CircuitState; 3] = [
    CircuitState::Closed,
    CircuitState::Open,
    CircuitState::HalfOpen,
];

/// Each CA's circuit as stored, with the end of an open circuit's cool-down.
type StoredCircuits = BTreeMap<CaName, (CircuitState, Option<DateTime<Utc>>)>;

type ProbeHistogram = Family<CaLabels, Histogram, fn() -> Histogram>;

fn probe_histogram() -> Histogram {
    // 25 ms … ~51 s, doubling.
    Histogram::new(exponential_buckets(0.025, 2.0, 12))
}

/// A certificate's times, as the engine knows them; `None` removes the series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CertTimes {
    /// The installed certificate's notAfter.
    pub not_after: Option<DateTime<Utc>>,
    /// When the next attempt is due.
    pub next_attempt: Option<DateTime<Utc>>,
    /// When the certificate was last renewed.
    pub last_success: Option<DateTime<Utc>>,
}

struct Families {
    registry: Registry,
    last_reload_ok: Gauge,
    not_after: Family<CertLabels, Gauge>,
    next_attempt: Family<CertLabels, Gauge>,
    last_success: Family<CertLabels, Gauge>,
    expiry_danger: Family<CertLabels, Gauge>,
    failure_streak: Family<CertLabels, Gauge>,
    requests: Family<RequestLabels, Counter>,
    circuit: Family<CircuitLabels, Gauge>,
    /// Each CA's stored circuit and cool-down end: the gauge is the state in effect at
    /// each scrape (a cool-down ends without any event).
    circuits: Mutex<StoredCircuits>,
    probe_latency: ProbeHistogram,
}

/// renewd's metrics. Cheap to clone; clones share the series.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Families>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every family registered, `renewd_up` at 1 and the last reload successful.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let up: Gauge = Gauge::default();
        let last_reload_ok = Gauge::default();
        let not_after = Family::default();
        let next_attempt = Family::default();
        let last_success = Family::default();
        let expiry_danger = Family::default();
        let failure_streak = Family::default();
        let requests = Family::default();
        let circuit = Family::default();
        let probe_latency: ProbeHistogram = Family::new_with_constructor(probe_histogram);
        registry.register("renewd_up", "1 while renewd runs", up.clone());
        registry.register(
            "renewd_config_last_reload_successful",
            "1 unless the last reload's config was refused",
            last_reload_ok.clone(),
        );
        registry.register(
            "renewd_certificate_not_after_seconds",
            "The installed certificate's notAfter, in Unix seconds",
            not_after.clone(),
        );
        registry.register(
            "renewd_certificate_next_attempt_seconds",
            "When the next renewal attempt is due, in Unix seconds",
            next_attempt.clone(),
        );
        registry.register(
            "renewd_certificate_last_success_seconds",
            "When the certificate was last renewed, in Unix seconds",
            last_success.clone(),
        );
        registry.register(
            "renewd_certificate_expiry_danger",
            "1 while the certificate is at critical urgency and not renewed yet",
            expiry_danger.clone(),
        );
        registry.register(
            "renewd_certificate_failure_streak",
            "Failed renewal attempts in a row, 0 after a success",
            failure_streak.clone(),
        );
        // The text encoder appends `_total` to counters.
        registry.register(
            "renewd_acme_requests",
            "ACME requests by CA, step and outcome class",
            requests.clone(),
        );
        registry.register(
            "renewd_ca_circuit_state",
            "1 for the CA's current circuit breaker state",
            circuit.clone(),
        );
        registry.register(
            "renewd_ca_probe_latency_seconds",
            "Latency of health probes (directory and newNonce)",
            probe_latency.clone(),
        );
        up.set(1);
        last_reload_ok.set(1);
        Self {
            inner: Arc::new(Families {
                registry,
                last_reload_ok,
                not_after,
                next_attempt,
                last_success,
                expiry_danger,
                failure_streak,
                requests,
                circuit,
                circuits: Mutex::default(),
                probe_latency,
            }),
        }
    }

    /// Counts one ACME request; a probe's latency also goes to the probe histogram.
    pub fn record_request(&self, o: &RequestOutcome) {
        self.inner
            .requests
            .get_or_create(&RequestLabels {
                ca: o.ca.to_string(),
                step: o.step.as_str().to_string(),
                class: o.class.as_str().to_string(),
            })
            .inc();
        if o.step == Step::Probe {
            self.inner
                .probe_latency
                .get_or_create(&CaLabels {
                    ca: o.ca.to_string(),
                })
                .observe(o.latency.as_secs_f64());
        }
    }

    /// Sets a certificate's times; a `None` removes that series.
    pub fn set_cert(&self, cert: &CertName, times: CertTimes) {
        let labels = CertLabels {
            cert: cert.to_string(),
        };
        for (family, time) in [
            (&self.inner.not_after, times.not_after),
            (&self.inner.next_attempt, times.next_attempt),
            (&self.inner.last_success, times.last_success),
        ] {
            match time {
                Some(t) => {
                    family.get_or_create(&labels).set(t.timestamp());
                }
                None => {
                    family.remove(&labels);
                }
            }
        }
    }

    /// Marks a certificate as in danger of expiring (or not).
    pub fn set_expiry_danger(&self, cert: &CertName, danger: bool) {
        self.inner
            .expiry_danger
            .get_or_create(&CertLabels {
                cert: cert.to_string(),
            })
            .set(i64::from(danger));
    }

    /// Sets a certificate's failed attempts in a row (0 after a success).
    pub fn set_failure_streak(&self, cert: &CertName, streak: u32) {
        self.inner
            .failure_streak
            .get_or_create(&CertLabels {
                cert: cert.to_string(),
            })
            .set(i64::from(streak));
    }

    /// Removes every series of a certificate that left the config.
    pub fn remove_cert(&self, cert: &CertName) {
        self.set_cert(cert, CertTimes::default());
        let labels = CertLabels {
            cert: cert.to_string(),
        };
        self.inner.expiry_danger.remove(&labels);
        self.inner.failure_streak.remove(&labels);
    }

    /// Records a CA's circuit as stored (`open_until`: the end of an open circuit's
    /// cool-down). The series say 1 for the state in effect
    /// ([`CircuitState::effective`]), now and at every scrape, 0 for the others.
    pub fn set_circuit(&self, ca: &CaName, state: CircuitState, open_until: Option<DateTime<Utc>>) {
        self.circuits().insert(ca.clone(), (state, open_until));
        self.write_circuit(ca, state.effective(open_until, Utc::now()));
    }

    fn circuits(&self) -> std::sync::MutexGuard<'_, StoredCircuits> {
        self.inner
            .circuits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_circuit(&self, ca: &CaName, state: CircuitState) {
        for s in CIRCUIT_STATES {
            self.inner
                .circuit
                .get_or_create(&CircuitLabels {
                    ca: ca.to_string(),
                    state: s.as_str().to_string(),
                })
                .set(i64::from(s == state));
        }
    }

    /// Removes the circuit series of a CA that left the config.
    pub fn remove_ca(&self, ca: &CaName) {
        self.circuits().remove(ca);
        for s in CIRCUIT_STATES {
            self.inner.circuit.remove(&CircuitLabels {
                ca: ca.to_string(),
                state: s.as_str().to_string(),
            });
        }
    }

    /// Records whether the last reload's config was accepted.
    pub fn set_last_reload_successful(&self, ok: bool) {
        self.inner.last_reload_ok.set(i64::from(ok));
    }

    /// Every series in the Prometheus text format (version 0.0.4), as of now.
    pub fn encode(&self) -> String {
        self.encode_at(Utc::now())
    }

    /// Every series as of `now`: the circuits read as in effect then.
    pub fn encode_at(&self, now: DateTime<Utc>) -> String {
        let circuits: Vec<_> = self
            .circuits()
            .iter()
            .map(|(ca, (state, until))| (ca.clone(), state.effective(*until, now)))
            .collect();
        for (ca, state) in circuits {
            self.write_circuit(&ca, state);
        }
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug in a metric.
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry)
        {
            tracing::error!("encoding metrics failed: {e}");
        }
        out
    }
}

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use renewd_core::OutcomeClass;

    use super::*;

    fn outcome(step: Step, class: OutcomeClass, ms: u64) -> RequestOutcome {
        RequestOutcome {
            time: Utc::now(),
            ca: CaName::new("zerossl").unwrap(),
            account: None,
            cert: None,
            step,
            http_status: Some(504),
            problem_type: None,
            class,
            latency: Duration::from_millis(ms),
            order_url: None,
            detail: None,
        }
    }

    /// The value of the series `name{labels}` (labels as printed), if present.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.parse().unwrap())
    }

    #[test]
    fn families_are_exported_with_their_names() {
        let m = Metrics::new();
        let www = CertName::new("www").unwrap();
        let ca = CaName::new("zerossl").unwrap();
        m.record_request(&outcome(
            Step::Finalize,
            OutcomeClass::CaUnavailable,
            30_000,
        ));
        m.record_request(&outcome(
            Step::Finalize,
            OutcomeClass::CaUnavailable,
            30_000,
        ));
        m.record_request(&outcome(Step::Probe, OutcomeClass::Ok, 40));
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        m.set_cert(
            &www,
            CertTimes {
                not_after: Some(t),
                next_attempt: Some(t),
                last_success: None,
            },
        );
        m.set_circuit(
            &ca,
            CircuitState::Open,
            Some(t + chrono::TimeDelta::minutes(5)),
        );
        m.set_expiry_danger(&www, true);
        m.set_failure_streak(&www, 3);
        m.set_last_reload_successful(false);
        let text = m.encode_at(t);
        assert_eq!(sample(&text, "renewd_up"), Some(1.0));
        assert_eq!(
            sample(&text, "renewd_config_last_reload_successful"),
            Some(0.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"renewd_acme_requests_total{ca="zerossl",step="finalize",class="ca_unavailable"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, r#"renewd_certificate_not_after_seconds{cert="www"}"#),
            Some(1_700_000_000.0)
        );
        assert!(
            sample(
                &text,
                r#"renewd_certificate_last_success_seconds{cert="www"}"#
            )
            .is_none()
        );
        assert_eq!(
            sample(
                &text,
                r#"renewd_ca_circuit_state{ca="zerossl",state="open"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"renewd_ca_circuit_state{ca="zerossl",state="closed"}"#
            ),
            Some(0.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"renewd_ca_probe_latency_seconds_count{ca="zerossl"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"renewd_ca_probe_latency_seconds_bucket{ca="zerossl",le="0.05"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"renewd_ca_probe_latency_seconds_bucket{ca="zerossl",le="0.025"}"#
            ),
            Some(0.0)
        );
        assert_eq!(
            sample(&text, r#"renewd_certificate_expiry_danger{cert="www"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, r#"renewd_certificate_failure_streak{cert="www"}"#),
            Some(3.0)
        );
        assert!(text.contains("# TYPE renewd_acme_requests_total counter"));
        assert!(text.contains("# TYPE renewd_ca_probe_latency_seconds histogram"));

        // The cool-down ends without an event: the next scrape reads half-open.
        let text = m.encode_at(t + chrono::TimeDelta::minutes(5));
        assert_eq!(
            sample(
                &text,
                r#"renewd_ca_circuit_state{ca="zerossl",state="half_open"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"renewd_ca_circuit_state{ca="zerossl",state="open"}"#
            ),
            Some(0.0)
        );

        m.set_circuit(&ca, CircuitState::Closed, None);
        m.remove_cert(&www);
        let text = m.encode();
        assert_eq!(
            sample(
                &text,
                r#"renewd_ca_circuit_state{ca="zerossl",state="closed"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"renewd_ca_circuit_state{ca="zerossl",state="open"}"#
            ),
            Some(0.0)
        );
        assert!(sample(&text, r#"renewd_certificate_not_after_seconds{cert="www"}"#).is_none());
        assert!(sample(&text, r#"renewd_certificate_expiry_danger{cert="www"}"#).is_none());
        assert!(sample(&text, r#"renewd_certificate_failure_streak{cert="www"}"#).is_none());
        m.remove_ca(&ca);
        assert!(!m.encode().contains("renewd_ca_circuit_state{"));
    }
}
