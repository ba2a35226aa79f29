//! `renewd ledger`: the failure ledger, newest first. A row is the core's
//! [`RequestOutcome`], exactly as the ledger stores it.

use std::io::{self, Write};

use chrono::{DateTime, Utc};
use renewd_core::RequestOutcome;
use serde::Serialize;

use super::Format;
use super::status::one_line;
use super::table::Table;
use super::time::{human, rfc3339};

/// The `ledger --json` object, keys in the contract's order.
#[derive(Serialize)]
struct LedgerJson<'r> {
    time: String,
    ca: &'r str,
    cert: Option<&'r str>,
    step: &'static str,
    http_status: Option<u16>,
    problem_type: Option<&'r str>,
    class: &'static str,
    latency_ms: u64,
    order_url: Option<&'r str>,
}

impl<'r> From<&'r RequestOutcome> for LedgerJson<'r> {
    fn from(o: &'r RequestOutcome) -> Self {
        Self {
            time: rfc3339(o.time),
            ca: o.ca.as_str(),
            cert: o.cert.as_ref().map(|c| c.as_str()),
            step: o.step.as_str(),
            http_status: o.http_status,
            problem_type: o.problem_type.as_deref(),
            class: o.class.as_str(),
            latency_ms: u64::try_from(o.latency.as_millis()).unwrap_or(u64::MAX),
            order_url: o.order_url.as_deref(),
        }
    }
}

/// Prints `rows` (already filtered, newest first) to `out`.
pub fn write_ledger(
    out: &mut dyn Write,
    rows: &[RequestOutcome],
    format: Format,
    now: DateTime<Utc>,
) -> io::Result<()> {
    match format {
        Format::Json => {
            let json: Vec<LedgerJson<'_>> = rows.iter().map(LedgerJson::from).collect();
            serde_json::to_writer_pretty(&mut *out, &json)?;
            writeln!(out)
        }
        Format::Table => {
            let mut t = Table::new(&[
                "TIME", "CA", "CERT", "STEP", "HTTP", "CLASS", "LATENCY", "PROBLEM", "DETAIL",
            ]);
            for o in rows {
                t.row(vec![
                    human(o.time, now),
                    o.ca.to_string(),
                    o.cert.as_ref().map_or("-".into(), ToString::to_string),
                    o.step.to_string(),
                    o.http_status.map_or("-".into(), |s| s.to_string()),
                    o.class.to_string(),
                    format!("{}ms", o.latency.as_millis()),
                    o.problem_type.as_deref().map_or("-".into(), short_problem),
                    o.detail.as_deref().map_or(String::new(), one_line),
                ]);
            }
            out.write_all(t.render().as_bytes())
        }
    }
}

/// `urn:ietf:params:acme:error:rateLimited` → `rateLimited`; other types unchanged.
fn short_problem(t: &str) -> String {
    t.strip_prefix("urn:ietf:params:acme:error:")
        .unwrap_or(t)
        .to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeDelta;
    use renewd_core::{CaName, CertName, OutcomeClass, Step};

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn rows() -> Vec<RequestOutcome> {
        vec![
            RequestOutcome {
                time: now() - TimeDelta::minutes(2),
                ca: CaName::new("zerossl").unwrap(),
                account: Some("https://ca/acct/1".into()),
                cert: Some(CertName::new("www").unwrap()),
                step: Step::Finalize,
                http_status: Some(504),
                problem_type: None,
                class: OutcomeClass::CaUnavailable,
                latency: Duration::from_millis(30_012),
                order_url: Some("https://ca/order/7".into()),
                detail: Some("504 Gateway Time-out".into()),
            },
            RequestOutcome {
                time: now() - TimeDelta::hours(3),
                ca: CaName::new("letsencrypt").unwrap(),
                account: None,
                cert: None,
                step: Step::Probe,
                http_status: Some(429),
                problem_type: Some("urn:ietf:params:acme:error:rateLimited".into()),
                class: OutcomeClass::RateLimited,
                latency: Duration::from_millis(87),
                order_url: None,
                detail: None,
            },
        ]
    }

    #[test]
    fn json_has_the_contract_keys_and_spellings() {
        let mut out = Vec::new();
        write_ledger(&mut out, &rows(), Format::Json, now()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let mut keys: Vec<&str> = v[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut expected = [
            "time",
            "ca",
            "cert",
            "step",
            "http_status",
            "problem_type",
            "class",
            "latency_ms",
            "order_url",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(v[0]["time"], "2023-11-14T22:11:20Z");
        assert_eq!(v[0]["step"], "finalize");
        assert_eq!(v[0]["class"], "ca_unavailable");
        assert_eq!(v[0]["http_status"], 504);
        assert_eq!(v[0]["latency_ms"], 30_012);
        assert_eq!(v[0]["order_url"], "https://ca/order/7");
        assert_eq!(v[1]["cert"], serde_json::Value::Null);
        assert_eq!(
            v[1]["problem_type"],
            "urn:ietf:params:acme:error:rateLimited"
        );
        assert_eq!(v[1]["class"], "rate_limited");
    }

    #[test]
    fn table_reads_well() {
        let mut out = Vec::new();
        write_ledger(&mut out, &rows(), Format::Table, now()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "TIME                       CA           CERT  STEP      HTTP  CLASS           LATENCY  PROBLEM      DETAIL\n\
             2023-11-14 22:11 (2m ago)  zerossl      www   finalize  504   ca_unavailable  30012ms  -            504 Gateway Time-out\n\
             2023-11-14 19:13 (3h ago)  letsencrypt  -     probe     429   rate_limited    87ms     rateLimited\n"
        );
    }
}
