//! One ACME request's outcome, as the failure ledger records it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::failure::{OutcomeClass, Step};
use crate::names::{CaName, CertName};

/// The outcome of one request (or local step) that matters to the ledger. The ACME client
/// reports these as it goes; the issuer adds the CA, account and certificate and stores them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestOutcome {
    /// When the request finished.
    pub time: DateTime<Utc>,
    /// The CA asked.
    pub ca: CaName,
    /// The account URL, once known.
    pub account: Option<String>,
    /// The certificate the request was made for; `None` for probes and account setup.
    pub cert: Option<CertName>,
    /// Which request.
    pub step: Step,
    /// The HTTP status, when a response arrived.
    pub http_status: Option<u16>,
    /// The problem document's `type`, when there was one.
    pub problem_type: Option<String>,
    /// `ok`, or the failure's class.
    pub class: OutcomeClass,
    /// How long the request took.
    #[serde(with = "duration_ms")]
    pub latency: Duration,
    /// The order the request belonged to, if any.
    pub order_url: Option<String>,
    /// A short, human-readable account of a failure (problem detail, error text).
    pub detail: Option<String>,
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_latency_as_millis() {
        let o = RequestOutcome {
            time: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            ca: CaName::new("a").unwrap(),
            account: None,
            cert: Some(CertName::new("www").unwrap()),
            step: Step::Finalize,
            http_status: Some(504),
            problem_type: None,
            class: OutcomeClass::CaUnavailable,
            latency: Duration::from_millis(1234),
            order_url: Some("https://ca/order/1".into()),
            detail: Some("504 Gateway Time-out".into()),
        };
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["latency"], 1234);
        assert_eq!(v["class"], "ca_unavailable");
        assert_eq!(v["step"], "finalize");
        let back: RequestOutcome = serde_json::from_value(v).unwrap();
        assert_eq!(back, o);
    }
}
