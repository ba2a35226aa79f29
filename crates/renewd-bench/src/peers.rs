//! The clients renewd is compared with, run the way their documentation says: lego
//! (`--http`, its own standalone server) and certbot (`certonly --standalone`), each with
//! the CA's HTTPS root as its only extra trust and all its files in one directory.

use std::fmt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::lab::Lab;
use crate::process::{self, Finished};

/// How long one peer run may take before it is killed.
const PEER_LIMIT: Duration = Duration::from_secs(300);

/// The three clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Renewd,
    Lego,
    Certbot,
}

impl Client {
    pub const ALL: [Client; 3] = [Client::Renewd, Client::Lego, Client::Certbot];

    /// The order of round `round`: rotated by one each round, so that no client always
    /// runs first (or right after another's load).
    pub fn rotation(round: usize) -> [Client; 3] {
        let mut order = Client::ALL;
        order.rotate_left(round % 3);
        order
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Client::Renewd => "renewd",
            Client::Lego => "lego",
            Client::Certbot => "certbot",
        })
    }
}

/// A CA as the peers see it.
#[derive(Debug, Clone, Copy)]
pub struct Server<'a> {
    pub directory: &'a str,
    /// PEM file of its HTTPS root.
    pub root: &'a Path,
}

/// One peer run for `domains` (one certificate each, in sequence when several: lego and
/// certbot take one order per invocation) with all state under `dir`; the first creates
/// the account, the others reuse it. Returns each invocation and whether its certificate
/// file exists afterwards.
pub fn obtain(
    lab: &Lab,
    client: Client,
    server: Server<'_>,
    dir: &Path,
    domains: &[String],
) -> Result<Vec<(Finished, bool)>, String> {
    let mut runs = Vec::new();
    for (i, domain) in domains.iter().enumerate() {
        let (cmd, cert_file) = match client {
            Client::Lego => lego(lab, server, dir, domain),
            Client::Certbot => certbot(lab, server, dir, domain),
            Client::Renewd => return Err("renewd is not a peer".into()),
        };
        let done = process::run(cmd, dir, &format!("{client}-{i}"), PEER_LIMIT)?;
        let got = Path::new(&cert_file).is_file();
        runs.push((done, got));
    }
    Ok(runs)
}

fn lego(lab: &Lab, server: Server<'_>, dir: &Path, domain: &str) -> (Command, String) {
    let mut cmd = Command::new(&lab.programs.lego);
    cmd.env("LEGO_CA_CERTIFICATES", server.root)
        .args(["--server", server.directory])
        .args(["--email", "bench@example.test", "--accept-tos"])
        .args(["--domains", domain])
        .args(["--http", "--http.port"])
        .arg(format!("127.0.0.1:{}", lab.http_port))
        .arg("--path")
        .arg(dir.join("lego"))
        .arg("run");
    let cert = dir.join(format!("lego/certificates/{domain}.crt"));
    (cmd, cert.display().to_string())
}

fn certbot(lab: &Lab, server: Server<'_>, dir: &Path, domain: &str) -> (Command, String) {
    let mut cmd = Command::new(&lab.programs.certbot);
    cmd.env("REQUESTS_CA_BUNDLE", server.root)
        .args(["certonly", "--standalone", "--non-interactive"])
        .args(["--server", server.directory])
        .args(["--agree-tos", "-m", "bench@example.test", "--no-eff-email"])
        .args(["--http-01-address", "127.0.0.1", "--http-01-port"])
        .arg(lab.http_port.to_string())
        .arg("--config-dir")
        .arg(dir.join("config"))
        .arg("--work-dir")
        .arg(dir.join("work"))
        .arg("--logs-dir")
        .arg(dir.join("logs"))
        .args(["-d", domain]);
    let cert = dir.join(format!("config/live/{domain}/fullchain.pem"));
    (cmd, cert.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_leads_one_round_in_three() {
        let firsts: Vec<Client> = (0..3).map(|r| Client::rotation(r)[0]).collect();
        assert_eq!(firsts, Client::ALL.to_vec());
        assert_eq!(Client::rotation(3), Client::rotation(0));
    }
}
