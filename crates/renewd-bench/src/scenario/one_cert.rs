//! One certificate with real http-01 at pebble, each client one process from an empty
//! state directory (account registration included), rounds alternating the clients; and
//! renewd's forced renewal of that certificate (account known), with where its time went.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::lab::{Lab, RenewdConfig};
use crate::peers::{self, Client, Server};
use crate::process::{self, Finished};

/// How long one `renewd renew` may take.
const RENEW_LIMIT: Duration = Duration::from_secs(120);

/// One process that obtained one certificate.
#[derive(Debug, Clone, Copy)]
pub struct ClientRun {
    pub wall: Duration,
    pub cpu: Duration,
    pub max_rss_kib: u64,
}

impl ClientRun {
    fn of(done: &Finished) -> ClientRun {
        ClientRun {
            wall: done.wall,
            cpu: done.exit.usage.cpu(),
            max_rss_kib: done.exit.usage.max_rss_kib,
        }
    }
}

/// Ledger rows of one run, by step: (rows, summed latency in ms).
pub type Steps = BTreeMap<String, (u64, f64)>;

/// One renewd process and its ledger rows.
#[derive(Debug, Clone)]
pub struct RenewdRun {
    pub run: ClientRun,
    pub steps: Steps,
}

/// Every run of the scenario.
#[derive(Debug, Clone, Default)]
pub struct OneCert {
    /// `renewd renew` of a missing certificate, empty state directory.
    pub renewd: Vec<RenewdRun>,
    /// `renewd renew --force --cert one` right after, same state (account known).
    pub renewd_forced: Vec<RenewdRun>,
    pub lego: Vec<ClientRun>,
    pub certbot: Vec<ClientRun>,
}

/// `rounds` rounds, each client once per round in a rotating order.
pub fn run(lab: &Lab, rounds: usize) -> Result<OneCert, String> {
    let mut result = OneCert::default();
    let server = Server {
        directory: &lab.pebble.directory_url(),
        root: lab.pebble.tls_root_pem(),
    };
    for round in 0..rounds {
        for client in Client::rotation(round) {
            let dir = lab.dir(&format!("one-{client}"))?;
            let domain = lab.domain(&format!("one-{client}-{round}"));
            match client {
                Client::Renewd => {
                    let (first, forced) = renewd_once(lab, &dir, &domain)?;
                    eprintln!(
                        "  round {round}: renewd {:.3} s (forced renewal {:.3} s)",
                        first.run.wall.as_secs_f64(),
                        forced.run.wall.as_secs_f64()
                    );
                    result.renewd.push(first);
                    result.renewd_forced.push(forced);
                }
                Client::Lego | Client::Certbot => {
                    let runs = peers::obtain(lab, client, server, &dir, &[domain])?;
                    let run = checked_peer(client, &runs)?;
                    eprintln!("  round {round}: {client} {:.3} s", run.wall.as_secs_f64());
                    match client {
                        Client::Lego => result.lego.push(run),
                        _ => result.certbot.push(run),
                    }
                }
            }
        }
    }
    Ok(result)
}

/// The single run of a peer, which must have succeeded.
pub fn checked_peer(client: Client, runs: &[(Finished, bool)]) -> Result<ClientRun, String> {
    match runs {
        [(done, true)] if done.exit.success() => Ok(ClientRun::of(done)),
        [(done, _)] => Err(format!("{client} failed:\n{}", done.tail(15))),
        _ => Err(format!("{client}: expected one run, got {}", runs.len())),
    }
}

fn renewd_once(lab: &Lab, dir: &Path, domain: &str) -> Result<(RenewdRun, RenewdRun), String> {
    let config = lab.write_config(
        dir,
        &RenewdConfig {
            state_dir: dir.join("state"),
            workers: 1,
            ari: true,
            cas: vec![lab.pebble_ca("pebble")],
            certs: vec![("one".into(), domain.into())],
        },
    )?;
    let first = renew(lab, &config, dir, &["renew"], "renew")?;
    let rows_first = lab.ledger(&config)?;
    let forced = renew(
        lab,
        &config,
        dir,
        &["renew", "--force", "--cert", "one"],
        "renew-forced",
    )?;
    let rows_all = lab.ledger(&config)?;
    // Newest first: the forced renewal's rows lead.
    let new_rows = rows_all.len().saturating_sub(rows_first.len());
    Ok((
        RenewdRun {
            run: first,
            steps: steps(&rows_first),
        },
        RenewdRun {
            run: forced,
            steps: steps(&rows_all[..new_rows]),
        },
    ))
}

fn renew(
    lab: &Lab,
    config: &Path,
    dir: &Path,
    args: &[&str],
    name: &str,
) -> Result<ClientRun, String> {
    let done = process::run(lab.renewd(config, args), dir, name, RENEW_LIMIT)?;
    if !done.exit.success() || !done.stdout.contains("renewed by") {
        return Err(format!("renewd {args:?} failed:\n{}", done.tail(15)));
    }
    Ok(ClientRun::of(&done))
}

/// Ledger rows grouped by step.
pub fn steps(rows: &[Value]) -> Steps {
    let mut steps = Steps::new();
    for row in rows {
        let step = row["step"].as_str().unwrap_or("?").to_string();
        let ms = row["latency_ms"].as_f64().unwrap_or(0.0);
        let entry = steps.entry(step).or_default();
        entry.0 += 1;
        entry.1 += ms;
    }
    steps
}
