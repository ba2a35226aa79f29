//! `renewd ca`: each CA's health and circuit — the circuit in effect now
//! ([`CaHealth::effective_circuit`]: an open circuit whose cool-down has ended reads
//! `half_open`, as the metrics and `STATUS=` have it, though the store keeps `open` until a
//! job next considers the CA) — and the end of a rate-limit block still in effect
//! (`blocked_until`, from the CA's `Retry-After`; a block that has ended reads as none).

use std::io::{self, Write};

use chrono::{DateTime, Utc};
use renewd_store::CaHealth;
use serde::Serialize;

use super::Format;
use super::table::Table;
use super::time::{human_opt, rfc3339_opt};

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
    /// Beyond the contract's keys: the end of a rate-limit block in effect.
    blocked_until: Option<String>,
}

/// The end of `h`'s rate-limit block, while it lasts.
fn blocked_until(h: &CaHealth, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    h.blocked_until.filter(|t| *t > now)
}

impl<'r> CaJson<'r> {
    fn new(h: &'r CaHealth, now: DateTime<Utc>) -> Self {
        Self {
            name: h.ca.as_str(),
            circuit: h.effective_circuit(now).as_str(),
            consecutive_failures: h.consecutive_failures,
            open_until: rfc3339_opt(h.effective_open_until(now)),
            last_probe: rfc3339_opt(h.last_probe),
            last_probe_ok: h.last_probe_ok,
            last_probe_latency_ms: h.last_probe_latency.map(millis),
            blocked_until: rfc3339_opt(blocked_until(h, now)),
        }
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Prints each CA's health (a CA never seen: [`CaHealth::new`]) to `out`; `now` anchors
/// the table's relative times.
pub fn write_cas(
    out: &mut dyn Write,
    rows: &[CaHealth],
    format: Format,
    now: DateTime<Utc>,
) -> io::Result<()> {
    match format {
        Format::Json => {
            let json: Vec<CaJson<'_>> = rows.iter().map(|h| CaJson::new(h, now)).collect();
            serde_json::to_writer_pretty(&mut *out, &json)?;
            writeln!(out)
        }
        Format::Table => {
            let mut t = Table::new(&[
                "CA",
                "CIRCUIT",
                "FAILURES",
                "OPEN UNTIL",
                "BLOCKED UNTIL",
                "LAST PROBE",
            ]);
            for r in rows {
                let probe = match (r.last_probe_ok, r.last_probe_latency.map(millis)) {
                    (None, _) => String::new(),
                    (Some(ok), latency) => format!(
                        " {}{}",
                        if ok { "ok" } else { "failed" },
                        latency.map_or(String::new(), |ms| format!(" in {ms}ms"))
                    ),
                };
                t.row(vec![
                    r.ca.to_string(),
                    r.effective_circuit(now).to_string(),
                    r.consecutive_failures.to_string(),
                    human_opt(r.effective_open_until(now), now),
                    human_opt(blocked_until(r, now), now),
                    format!("{}{probe}", human_opt(r.last_probe, now)),
                ]);
            }
            out.write_all(t.render().as_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeDelta;
    use renewd_core::CaName;
    use renewd_store::CircuitState;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn rows() -> Vec<CaHealth> {
        vec![
            CaHealth {
                circuit: CircuitState::Open,
                consecutive_failures: 4,
                open_until: Some(now() + TimeDelta::minutes(8)),
                cooldown: Some(Duration::from_secs(600)),
                last_probe: Some(now() - TimeDelta::minutes(1)),
                last_probe_ok: Some(false),
                last_probe_latency: Some(Duration::from_millis(5000)),
                blocked_until: Some(now() + TimeDelta::hours(2)),
                ..CaHealth::new(CaName::new("zerossl").unwrap())
            },
            CaHealth {
                circuit: CircuitState::HalfOpen,
                // A block that has ended.
                blocked_until: Some(now() - TimeDelta::seconds(1)),
                ..CaHealth::new(CaName::new("letsencrypt").unwrap())
            },
            CaHealth {
                circuit: CircuitState::Open,
                open_until: Some(now() - TimeDelta::minutes(1)),
                ..CaHealth::new(CaName::new("buypass").unwrap())
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
            "blocked_until",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(v[0]["circuit"], "open");
        assert_eq!(v[0]["open_until"], "2023-11-14T22:21:20Z");
        assert_eq!(v[0]["last_probe_ok"], false);
        assert_eq!(v[0]["last_probe_latency_ms"], 5000);
        assert_eq!(v[0]["blocked_until"], "2023-11-15T00:13:20Z");
        assert_eq!(v[1]["blocked_until"], serde_json::Value::Null, "ended");
        assert_eq!(v[2]["blocked_until"], serde_json::Value::Null, "never");
        assert_eq!(v[1]["circuit"], "half_open");
        assert_eq!(v[1]["last_probe"], serde_json::Value::Null);
        assert_eq!(v[1]["last_probe_ok"], serde_json::Value::Null);
        // Past its cool-down: half-open in effect, as the metrics and STATUS= say.
        assert_eq!(v[2]["circuit"], "half_open");
        assert_eq!(v[2]["open_until"], serde_json::Value::Null);
    }

    #[test]
    fn table_reads_well() {
        let mut out = Vec::new();
        write_cas(&mut out, &rows(), Format::Table, now()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "CA           CIRCUIT    FAILURES  OPEN UNTIL                BLOCKED UNTIL             LAST PROBE\n\
             zerossl      open       4         2023-11-14 22:21 (in 8m)  2023-11-15 00:13 (in 2h)  2023-11-14 22:12 (1m ago) failed in 5000ms\n\
             letsencrypt  half_open  0         -                         -                         -\n\
             buypass      half_open  0         -                         -                         -\n",
            "an open circuit past its cool-down reads half_open"
        );
    }
}
