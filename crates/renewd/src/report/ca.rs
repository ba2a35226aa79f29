//! `renewd ca`: each CA's health and circuit.

use std::fmt;
use std::io::{self, Write};

use chrono::{DateTime, Utc};
use renewd_core::CaName;
use serde::Serialize;

use super::Format;
use super::table::Table;
use super::time::{human_opt, rfc3339_opt};

/// A CA's circuit breaker state (`circuit` in `ca --json`, `state` in metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Circuit {
    /// Orders go to this CA.
    Closed,
    /// The CA failed repeatedly; nothing goes to it until the cool-down ends.
    Open,
    /// The cool-down ended: one probe, then one order, decide.
    HalfOpen,
}

impl Circuit {
    /// Every state, for metrics that export one series per state.
    pub const ALL: [Circuit; 3] = [Circuit::Closed, Circuit::Open, Circuit::HalfOpen];

    /// The contract's label.
    pub fn as_str(self) -> &'static str {
        match self {
            Circuit::Closed => "closed",
            Circuit::Open => "open",
            Circuit::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for Circuit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One CA as `renewd ca` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaRow {
    /// The CA.
    pub name: CaName,
    /// Its circuit.
    pub circuit: Circuit,
    /// `ca_unavailable` outcomes in a row.
    pub consecutive_failures: u32,
    /// When an open circuit goes half-open.
    pub open_until: Option<DateTime<Utc>>,
    /// When the last health probe finished.
    pub last_probe: Option<DateTime<Utc>>,
    /// Whether it succeeded.
    pub last_probe_ok: Option<bool>,
    /// How long it took.
    pub last_probe_latency_ms: Option<u64>,
}

/// The `ca --json` object, keys in the contract's order.
#[derive(Serialize)]
struct CaJson<'r> {
    name: &'r str,
    circuit: &'static str,
    consecutive_failures: u32,
    open_until: Option<String>,
    last_probe: Option<String>,
    last_probe_ok: Option<bool>,
    last_probe_latency_ms: Option<u64>,
}

impl<'r> From<&'r CaRow> for CaJson<'r> {
    fn from(r: &'r CaRow) -> Self {
        Self {
            name: r.name.as_str(),
            circuit: r.circuit.as_str(),
            consecutive_failures: r.consecutive_failures,
            open_until: rfc3339_opt(r.open_until),
            last_probe: rfc3339_opt(r.last_probe),
            last_probe_ok: r.last_probe_ok,
            last_probe_latency_ms: r.last_probe_latency_ms,
        }
    }
}

/// Prints `rows` to `out`; `now` anchors the table's relative times.
pub fn write_cas(
    out: &mut dyn Write,
    rows: &[CaRow],
    format: Format,
    now: DateTime<Utc>,
) -> io::Result<()> {
    match format {
        Format::Json => {
            let json: Vec<CaJson<'_>> = rows.iter().map(CaJson::from).collect();
            serde_json::to_writer_pretty(&mut *out, &json)?;
            writeln!(out)
        }
        Format::Table => {
            let mut t = Table::new(&["CA", "CIRCUIT", "FAILURES", "OPEN UNTIL", "LAST PROBE"]);
            for r in rows {
                let probe = match (r.last_probe_ok, r.last_probe_latency_ms) {
                    (None, _) => String::new(),
                    (Some(ok), latency) => format!(
                        " {}{}",
                        if ok { "ok" } else { "failed" },
                        latency.map_or(String::new(), |ms| format!(" in {ms}ms"))
                    ),
                };
                t.row(vec![
                    r.name.to_string(),
                    r.circuit.to_string(),
                    r.consecutive_failures.to_string(),
                    human_opt(r.open_until, now),
                    format!("{}{probe}", human_opt(r.last_probe, now)),
                ]);
            }
            out.write_all(t.render().as_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn rows() -> Vec<CaRow> {
        vec![
            CaRow {
                name: CaName::new("zerossl").unwrap(),
                circuit: Circuit::Open,
                consecutive_failures: 4,
                open_until: Some(now() + TimeDelta::minutes(8)),
                last_probe: Some(now() - TimeDelta::minutes(1)),
                last_probe_ok: Some(false),
                last_probe_latency_ms: Some(5000),
            },
            CaRow {
                name: CaName::new("letsencrypt").unwrap(),
                circuit: Circuit::HalfOpen,
                consecutive_failures: 0,
                open_until: None,
                last_probe: None,
                last_probe_ok: None,
                last_probe_latency_ms: None,
            },
        ]
    }

    #[test]
    fn json_has_the_contract_keys_and_spellings() {
        let mut out = Vec::new();
        write_cas(&mut out, &rows(), Format::Json, now()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let mut keys: Vec<&str> = v[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut expected = [
            "name",
            "circuit",
            "consecutive_failures",
            "open_until",
            "last_probe",
            "last_probe_ok",
            "last_probe_latency_ms",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(v[0]["circuit"], "open");
        assert_eq!(v[0]["open_until"], "2023-11-14T22:21:20Z");
        assert_eq!(v[0]["last_probe_ok"], false);
        assert_eq!(v[0]["last_probe_latency_ms"], 5000);
        assert_eq!(v[1]["circuit"], "half_open");
        assert_eq!(v[1]["last_probe"], serde_json::Value::Null);
        assert_eq!(v[1]["last_probe_ok"], serde_json::Value::Null);
    }

    #[test]
    fn table_reads_well() {
        let mut out = Vec::new();
        write_cas(&mut out, &rows(), Format::Table, now()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "CA           CIRCUIT    FAILURES  OPEN UNTIL                LAST PROBE\n\
             zerossl      open       4         2023-11-14 22:21 (in 8m)  2023-11-14 22:12 (1m ago) failed in 5000ms\n\
             letsencrypt  half_open  0         -                         -\n"
        );
    }
}
