//! A CA that answers every finalize with `504 Gateway Time-out` after having issued the
//! certificate (renewd-testca's fault plan, real http-01): how many certificates each
//! client obtains, and how many the CA issued that the client never downloaded (wasted).

use std::path::Path;
use std::time::Duration;

use renewd_testca::{ChallengeMode, Endpoint, Fault, FaultPlan, TestCa, TestCaHandle, Validators};

use crate::lab::{CaSpec, Lab, RenewdConfig};
use crate::peers::{self, Client, Server};
use crate::process;

/// One client's attempt at one certificate.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub client: Client,
    pub wall: Duration,
    pub exit_ok: bool,
    /// The client has the certificate on disk.
    pub obtained: bool,
    /// Orders the CA created for it.
    pub orders: u64,
    /// Certificates the CA issued for it.
    pub issued: u64,
    /// Finalize requests (each answered 504).
    pub finalize_504: u64,
    /// Certificate downloads.
    pub downloads: u64,
    /// The client's own words about the failure (the first line of its stderr naming 504,
    /// else its last line), if it failed.
    pub error: Option<String>,
}

impl Attempt {
    /// Issued by the CA but not in the client's hands.
    pub fn wasted(&self) -> u64 {
        self.issued.saturating_sub(u64::from(self.obtained))
    }
}

fn plan() -> FaultPlan {
    FaultPlan::new().rule(
        Endpoint::Finalize,
        Fault::status(504).after_processing().html(),
    )
}

/// `rounds` rounds, each client once per round (rotating), one certificate each.
pub fn run(lab: &Lab, rounds: usize) -> Result<Vec<Attempt>, String> {
    let ca: TestCaHandle = lab
        .runtime
        .block_on(
            TestCa::builder()
                .challenge_mode(ChallengeMode::Validate(Validators {
                    http01_port: Some(lab.http_port),
                    ..Validators::default()
                }))
                .fault_plan(plan())
                .start(),
        )
        .map_err(|e| format!("test CA: {e}"))?;
    let root_dir = lab.dir("testca")?;
    let root = root_dir.join("https-root.pem");
    std::fs::write(&root, ca.root_pem()).map_err(|e| e.to_string())?;
    let mut attempts = Vec::new();
    for round in 0..rounds {
        for client in Client::rotation(round) {
            let dir = lab.dir(&format!("gateway-{client}"))?;
            let domain = lab.domain(&format!("gw-{client}-{round}"));
            ca.reset_counts();
            let (wall, exit_ok, obtained, output) = match client {
                Client::Renewd => renewd(lab, &ca, &root, &dir, &domain)?,
                _ => {
                    let server = Server {
                        directory: &ca.directory_url(),
                        root: &root,
                    };
                    let runs = peers::obtain(lab, client, server, &dir, &[domain])?;
                    let (done, got) = runs.first().ok_or("no run")?;
                    (done.wall, done.exit.success(), *got, done.stderr.clone())
                }
            };
            let counts = ca.counts();
            let attempt = Attempt {
                client,
                wall,
                exit_ok,
                obtained,
                orders: counts.orders_created,
                issued: counts.certificates_issued,
                finalize_504: counts.faulted(Endpoint::Finalize),
                downloads: counts.requests_to(Endpoint::Certificate),
                error: (!exit_ok).then(|| {
                    output
                        .lines()
                        .find(|l| l.contains("504"))
                        .or_else(|| output.lines().rev().find(|l| !l.trim().is_empty()))
                        .unwrap_or("")
                        .trim()
                        .chars()
                        .take(160)
                        .collect()
                }),
            };
            eprintln!(
                "  round {round}: {client}: obtained {}, issued {}, wasted {}, {:.2} s",
                attempt.obtained,
                attempt.issued,
                attempt.wasted(),
                wall.as_secs_f64()
            );
            attempts.push(attempt);
        }
    }
    lab.runtime.block_on(ca.shutdown());
    Ok(attempts)
}

fn renewd(
    lab: &Lab,
    ca: &TestCaHandle,
    root: &Path,
    dir: &Path,
    domain: &str,
) -> Result<(Duration, bool, bool, String), String> {
    let config = lab.write_config(
        dir,
        &RenewdConfig {
            state_dir: dir.join("state"),
            workers: 1,
            ari: true,
            cas: vec![CaSpec {
                name: "a".into(),
                directory: ca.directory_url(),
                root: root.to_path_buf(),
            }],
            certs: vec![("one".into(), domain.into())],
        },
    )?;
    let done = process::run(
        lab.renewd(&config, &["renew"]),
        dir,
        "renew",
        Duration::from_secs(300),
    )?;
    let obtained = dir.join("state/certs/one/live/fullchain.pem").is_file();
    Ok((
        done.wall,
        done.exit.success(),
        obtained,
        done.stderr.clone(),
    ))
}
