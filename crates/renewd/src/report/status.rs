//! `renewd status`: one row per certificate.

use std::fmt;
use std::io::{self, Write};

use chrono::{DateTime, Utc};
use renewd_core::{CaName, CertName, DomainName};
use serde::Serialize;

use super::Format;
use super::table::Table;
use super::time::{human_opt, rfc3339_opt};

/// Where a certificate stands (`state` in `status --json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertStatus {
    /// Installed and not yet due.
    Valid,
    /// Due for renewal (or the installed set is unusable); no attempt is running.
    Due,
    /// An order is in flight: a pending order is stored, or a live process holds the
    /// certificate's lease.
    Renewing,
    /// The last attempts failed; a retry is scheduled.
    Failing,
    /// Nothing is installed.
    Missing,
}

impl CertStatus {
    /// The contract's label.
    pub fn as_str(self) -> &'static str {
        match self {
            CertStatus::Valid => "valid",
            CertStatus::Due => "due",
            CertStatus::Renewing => "renewing",
            CertStatus::Failing => "failing",
            CertStatus::Missing => "missing",
        }
    }
}

impl fmt::Display for CertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One certificate as `renewd status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRow {
    /// The certificate.
    pub name: CertName,
    /// Its configured names.
    pub domains: Vec<DomainName>,
    /// Where it stands.
    pub state: CertStatus,
    /// The installed certificate's notAfter.
    pub not_after: Option<DateTime<Utc>>,
    /// The installed certificate's serial number in hex (printed lower-case).
    pub serial: Option<String>,
    /// The CA that issued the installed certificate.
    pub issuer_ca: Option<CaName>,
    /// When the next attempt is scheduled.
    pub next_attempt: Option<DateTime<Utc>>,
    /// The last attempt's error, if it failed.
    pub last_error: Option<String>,
    /// Why the certificate stands where it does, for people ("due: 1/3 of lifetime left",
    /// "backing off after 3 failures until 14:10"). Not part of the JSON.
    pub why: String,
}

/// The `status --json` object, keys in the contract's order.
#[derive(Serialize)]
struct StatusJson<'r> {
    name: &'r str,
    domains: Vec<&'r str>,
    state: &'static str,
    not_after: Option<String>,
    serial: Option<String>,
    issuer_ca: Option<&'r str>,
    next_attempt: Option<String>,
    last_error: Option<&'r str>,
}

impl<'r> From<&'r StatusRow> for StatusJson<'r> {
    fn from(r: &'r StatusRow) -> Self {
        Self {
            name: r.name.as_str(),
            domains: r.domains.iter().map(DomainName::as_str).collect(),
            state: r.state.as_str(),
            not_after: rfc3339_opt(r.not_after),
            serial: r.serial.as_deref().map(str::to_ascii_lowercase),
            issuer_ca: r.issuer_ca.as_ref().map(CaName::as_str),
            next_attempt: rfc3339_opt(r.next_attempt),
            last_error: r.last_error.as_deref(),
        }
    }
}

/// Prints `rows` to `out`; `now` anchors the table's relative times.
pub fn write_status(
    out: &mut dyn Write,
    rows: &[StatusRow],
    format: Format,
    now: DateTime<Utc>,
) -> io::Result<()> {
    match format {
        Format::Json => {
            let json: Vec<StatusJson<'_>> = rows.iter().map(StatusJson::from).collect();
            serde_json::to_writer_pretty(&mut *out, &json)?;
            writeln!(out)
        }
        Format::Table => {
            let mut t = Table::new(&[
                "CERT",
                "STATE",
                "EXPIRES",
                "ISSUER",
                "NEXT ATTEMPT",
                "DOMAINS",
                "WHY",
            ]);
            for r in rows {
                t.row(vec![
                    r.name.to_string(),
                    r.state.to_string(),
                    human_opt(r.not_after, now),
                    r.issuer_ca.as_ref().map_or("-".into(), ToString::to_string),
                    human_opt(r.next_attempt, now),
                    r.domains
                        .iter()
                        .map(DomainName::as_str)
                        .collect::<Vec<_>>()
                        .join(" "),
                    one_line(&r.why),
                ]);
            }
            out.write_all(t.render().as_bytes())?;
            for r in rows {
                if let Some(e) = &r.last_error {
                    writeln!(out, "{}: last error: {}", r.name, one_line(e))?;
                }
            }
            Ok(())
        }
    }
}

/// Error texts may hold newlines (problem details); a table row may not.
pub(super) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn rows() -> Vec<StatusRow> {
        vec![
            StatusRow {
                name: CertName::new("www").unwrap(),
                domains: vec![
                    DomainName::new("www.example.com").unwrap(),
                    DomainName::new("example.com").unwrap(),
                ],
                state: CertStatus::Valid,
                not_after: Some(now() + TimeDelta::days(60)),
                serial: Some("03AB0F".into()),
                issuer_ca: Some(CaName::new("zerossl").unwrap()),
                next_attempt: Some(now() + TimeDelta::days(30)),
                last_error: None,
                why: "renews 2023-12-14 (1/3 of lifetime left)".into(),
            },
            StatusRow {
                name: CertName::new("api").unwrap(),
                domains: vec![DomainName::new("api.example.com").unwrap()],
                state: CertStatus::Missing,
                not_after: None,
                serial: None,
                issuer_ca: None,
                next_attempt: Some(now() + TimeDelta::minutes(5)),
                last_error: Some("finalize: 504 Gateway Time-out\nat zerossl".into()),
                why: "no certificate installed".into(),
            },
        ]
    }

    fn render(format: Format) -> String {
        let mut out = Vec::new();
        write_status(&mut out, &rows(), format, now()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_has_the_contract_keys_and_spellings() {
        let v: serde_json::Value = serde_json::from_str(&render(Format::Json)).unwrap();
        let keys: Vec<&str> = v[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = [
            "name",
            "domains",
            "state",
            "not_after",
            "serial",
            "issuer_ca",
            "next_attempt",
            "last_error",
        ];
        expected.sort_unstable();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, expected);
        assert_eq!(v[0]["state"], "valid");
        assert_eq!(v[0]["not_after"], "2024-01-13T22:13:20Z");
        assert_eq!(v[0]["serial"], "03ab0f");
        assert_eq!(v[0]["issuer_ca"], "zerossl");
        assert_eq!(v[0]["domains"][1], "example.com");
        assert_eq!(v[0]["last_error"], serde_json::Value::Null);
        assert_eq!(v[1]["state"], "missing");
        assert_eq!(v[1]["not_after"], serde_json::Value::Null);
        assert_eq!(v[1]["serial"], serde_json::Value::Null);
        assert_eq!(v[1]["next_attempt"], "2023-11-14T22:18:20Z");
    }

    #[test]
    fn empty_json_is_an_empty_array() {
        let mut out = Vec::new();
        write_status(&mut out, &[], Format::Json, now()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "[]\n");
    }

    #[test]
    fn table_reads_well() {
        assert_eq!(
            render(Format::Table),
            "CERT  STATE    EXPIRES                    ISSUER   NEXT ATTEMPT               DOMAINS                      WHY\n\
             www   valid    2024-01-13 22:13 (in 60d)  zerossl  2023-12-14 22:13 (in 30d)  www.example.com example.com  renews 2023-12-14 (1/3 of lifetime left)\n\
             api   missing  -                          -        2023-11-14 22:18 (in 5m)   api.example.com              no certificate installed\n\
             api: last error: finalize: 504 Gateway Time-out at zerossl\n"
        );
    }
}
