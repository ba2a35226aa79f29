//! CA A refuses connections (a closed port on loopback), B (pebble) is healthy, and many
//! certificates listing A first are due: how long until all are issued by B, and how often
//! renewd went to A meanwhile (its ledger rows for A, by step). The first run keeps the
//! daemon up for the whole outage (10 minutes unless told otherwise), so its count covers
//! that time, not only the burst of issuance.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::lab::{CaSpec, Lab};
use crate::scenario::batch::{RestUntil, daemon_batch};

/// One run.
#[derive(Debug, Clone)]
pub struct OutageRun {
    pub certs: usize,
    /// Spawn to all valid.
    pub all_valid: Duration,
    /// How long the daemon ran on after all were valid, A still refusing.
    pub kept_up: Duration,
    /// Ledger rows for A by `step/class`.
    pub a_rows: BTreeMap<String, u64>,
    /// Certificates whose issuer is B.
    pub issued_by_b: usize,
    /// A's circuit at the end (`ca --json`).
    pub a_circuit: String,
    pub peak_rss_kib: u64,
}

impl OutageRun {
    /// Every ledger row for A: each is one attempt to reach it.
    pub fn a_attempts(&self) -> u64 {
        self.a_rows.values().sum()
    }
}

/// A port nothing listens on.
fn closed_port() -> Result<u16, String> {
    Ok(renewd_testsupport::free_port())
}

/// `runs` runs of `certs` certificates; the first keeps the daemon up until `outage` has
/// passed since its start.
pub fn run(
    lab: &Lab,
    runs: usize,
    certs: usize,
    outage: Duration,
) -> Result<Vec<OutageRun>, String> {
    let mut result = Vec::new();
    for round in 0..runs {
        let a = CaSpec {
            name: "a".into(),
            directory: format!("https://127.0.0.1:{}/dir", closed_port()?),
            root: lab.pebble.tls_root_pem().to_path_buf(),
        };
        let b = lab.pebble_ca("b");
        let batch = daemon_batch(
            lab,
            &format!("outage{round}"),
            certs,
            8,
            vec![a, b],
            (round == 0).then_some(RestUntil::SinceStart(outage)),
        )?;
        let mut a_rows = BTreeMap::new();
        for row in lab.renewd_json(&batch.config, &["ledger", "--ca", "a", "--limit", "0"])? {
            let key = format!(
                "{}/{}",
                row["step"].as_str().unwrap_or("?"),
                row["class"].as_str().unwrap_or("?")
            );
            *a_rows.entry(key).or_default() += 1;
        }
        let issued_by_b = lab
            .renewd_json(&batch.config, &["status"])?
            .iter()
            .filter(|c| c["state"] == "valid" && c["issuer_ca"] == "b")
            .count();
        let a_circuit = lab
            .renewd_json(&batch.config, &["ca"])?
            .iter()
            .find(|c| c["name"] == "a")
            .and_then(|c| c["circuit"].as_str())
            .unwrap_or("?")
            .to_string();
        let run = OutageRun {
            certs,
            all_valid: batch.all_valid,
            kept_up: batch.rested,
            a_rows,
            issued_by_b,
            a_circuit,
            peak_rss_kib: batch.peak_rss_kib,
        };
        eprintln!(
            "  run {round}: {certs} certificates valid after {:.2} s (up {:.0} s more), {} by B; A: {:?}, circuit {}",
            run.all_valid.as_secs_f64(),
            run.kept_up.as_secs_f64(),
            run.issued_by_b,
            run.a_rows,
            run.a_circuit
        );
        result.push(run);
    }
    Ok(result)
}
