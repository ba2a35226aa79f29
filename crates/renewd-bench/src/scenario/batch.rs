//! Many certificates through the daemon (`renewd run`, 8 workers, every certificate
//! missing at start) timed from the spawn to the `STATUS=` that says all are valid, with
//! the daemon's peak RSS and CPU; and the peers obtaining a few certificates one after the
//! other (one process each, one account), for the per-certificate figure the daemon's is
//! compared with.

use std::path::PathBuf;
use std::time::Duration;

use crate::lab::{CaSpec, Lab, RenewdConfig};
use crate::peers::{self, Client, Server};
use crate::process::Daemon;

/// How long a whole batch may take.
const BATCH_LIMIT: Duration = Duration::from_secs(900);

/// One daemon run over a batch.
#[derive(Debug, Clone)]
pub struct DaemonBatch {
    /// Spawn to READY=1.
    pub ready: Duration,
    /// Spawn to the STATUS= saying every certificate is valid.
    pub all_valid: Duration,
    /// VmHWM when all were valid.
    pub peak_rss_kib: u64,
    /// utime + stime over the whole run, start to exit.
    pub cpu: Duration,
    /// The daemon after resting (see [`daemon_batch`]'s `rest`), when asked for.
    pub after_rest: Option<crate::procfs::Snapshot>,
    /// How long it rested after all were valid.
    pub rested: Duration,
    /// The config and state, for scenarios that continue from here.
    pub config: PathBuf,
}

/// How long the daemon stays up after all certificates are valid.
#[derive(Debug, Clone, Copy)]
pub enum RestUntil {
    /// This long after they are.
    AfterValid(Duration),
    /// Until this long after the spawn (at once if that has passed).
    SinceStart(Duration),
}

/// The daemon with `workers` workers issues `certs` missing certificates from `cas` (the
/// first is preferred); stopped with SIGTERM once all are valid — or, with `rest`, later,
/// having looked at it then.
pub fn daemon_batch(
    lab: &Lab,
    label: &str,
    certs: usize,
    workers: u32,
    cas: Vec<CaSpec>,
    rest: Option<RestUntil>,
) -> Result<DaemonBatch, String> {
    let dir = lab.dir(label)?;
    let names = (0..certs)
        .map(|i| (format!("c{i}"), lab.domain(&format!("{label}-{i}"))))
        .collect();
    let config = lab.write_config(
        &dir,
        &RenewdConfig {
            state_dir: dir.join("state"),
            workers,
            ari: false,
            cas,
            certs: names,
        },
    )?;
    let daemon = Daemon::start(lab.renewd(&config, &["run"]), &dir, "renewd")?;
    let all = format!("{certs} certificates: {certs} valid");
    let (ready, all_valid) = daemon.wait_ready_and(&all, BATCH_LIMIT)?;
    let look =
        || crate::procfs::snapshot(daemon.pid()).map_err(|e| format!("/proc of the daemon: {e}"));
    let peak = look()?.hwm_kib;
    let rested = match rest {
        Some(RestUntil::AfterValid(d)) => d,
        Some(RestUntil::SinceStart(d)) => d.saturating_sub(all_valid),
        None => Duration::ZERO,
    };
    let after_rest = match rest {
        Some(_) => {
            std::thread::sleep(rested);
            Some(look()?)
        }
        None => None,
    };
    let exit = daemon.stop()?;
    if !exit.success() {
        return Err(format!("renewd run ended with {exit}"));
    }
    Ok(DaemonBatch {
        ready,
        all_valid,
        peak_rss_kib: peak,
        cpu: exit.usage.cpu(),
        after_rest,
        rested,
        config,
    })
}

/// A peer obtaining `count` certificates one after the other.
#[derive(Debug, Clone, Copy)]
pub struct PeerSequence {
    pub count: usize,
    /// All of them, first start to last exit.
    pub total: Duration,
}

impl PeerSequence {
    /// Wall time per certificate.
    pub fn per_cert(&self) -> Duration {
        self.total / u32::try_from(self.count.max(1)).unwrap_or(1)
    }
}

/// The rounds of the batch scenario.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub renewd: Vec<DaemonBatch>,
    pub lego: Vec<PeerSequence>,
    pub certbot: Vec<PeerSequence>,
    /// Certificates per peer sequence.
    pub peer_certs: usize,
}

/// `rounds` rounds alternating: the daemon with `certs` certificates, lego and certbot
/// with `peer_certs` each.
pub fn run(lab: &Lab, rounds: usize, certs: usize, peer_certs: usize) -> Result<Batch, String> {
    let mut result = Batch {
        peer_certs,
        ..Batch::default()
    };
    let server = Server {
        directory: &lab.pebble.directory_url(),
        root: lab.pebble.tls_root_pem(),
    };
    for round in 0..rounds {
        for client in Client::rotation(round) {
            match client {
                Client::Renewd => {
                    let b = daemon_batch(
                        lab,
                        &format!("batch{round}"),
                        certs,
                        8,
                        vec![lab.pebble_ca("pebble")],
                        None,
                    )?;
                    eprintln!(
                        "  round {round}: renewd {certs} certificates in {:.2} s (READY {:.3} s), peak {} KiB",
                        b.all_valid.as_secs_f64(),
                        b.ready.as_secs_f64(),
                        b.peak_rss_kib
                    );
                    result.renewd.push(b);
                }
                Client::Lego | Client::Certbot => {
                    let dir = lab.dir(&format!("seq-{client}"))?;
                    let domains: Vec<String> = (0..peer_certs)
                        .map(|i| lab.domain(&format!("seq-{client}-{round}-{i}")))
                        .collect();
                    let runs = peers::obtain(lab, client, server, &dir, &domains)?;
                    let mut total = Duration::ZERO;
                    for (done, got) in &runs {
                        if !done.exit.success() || !got {
                            return Err(format!("{client} failed:\n{}", done.tail(15)));
                        }
                        total += done.wall;
                    }
                    let seq = PeerSequence {
                        count: runs.len(),
                        total,
                    };
                    eprintln!(
                        "  round {round}: {client} {peer_certs} certificates in {:.2} s",
                        total.as_secs_f64()
                    );
                    match client {
                        Client::Lego => result.lego.push(seq),
                        _ => result.certbot.push(seq),
                    }
                }
            }
        }
    }
    Ok(result)
}
