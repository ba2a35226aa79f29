//! The bench's surroundings: one pebble every scenario shares (real http-01 on one port
//! that each client binds in turn), a work directory, the binaries, unique names, and
//! renewd's config files and JSON outputs.

use std::cell::Cell;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use renewd_testsupport::{Pebble, PebbleOptions, free_port};
use serde_json::Value;

use crate::process;

/// Where the programs are.
#[derive(Debug, Clone)]
pub struct Programs {
    pub renewd: PathBuf,
    pub lego: PathBuf,
    pub certbot: PathBuf,
    /// `renewd-store`'s `scan_bench` example.
    pub scan_bench: PathBuf,
}

/// One `[[ca]]` of a renewd config.
#[derive(Debug, Clone)]
pub struct CaSpec {
    pub name: String,
    pub directory: String,
    /// PEM file of the root of its HTTPS certificate.
    pub root: PathBuf,
}

/// A renewd config to write.
#[derive(Debug, Clone)]
pub struct RenewdConfig {
    pub state_dir: PathBuf,
    pub workers: u32,
    pub ari: bool,
    pub cas: Vec<CaSpec>,
    /// `(name, domain)`; every certificate lists every CA, in order.
    pub certs: Vec<(String, String)>,
}

/// The shared surroundings of all scenarios.
#[derive(Debug)]
pub struct Lab {
    /// Runs pebble's log readers (and in-process test CAs) while the bench's own thread
    /// blocks on children.
    pub runtime: tokio::runtime::Runtime,
    pub pebble: Pebble,
    /// The port every client answers http-01 on (pebble validates there).
    pub http_port: u16,
    pub programs: Programs,
    work: tempfile::TempDir,
    next: Cell<u32>,
    /// A tag in every domain name, different for each bench run.
    tag: String,
}

impl Lab {
    /// Starts pebble (PEERS.md recipe: no validation sleep, no nonce rejection, no
    /// authorization reuse, real http-01 on a free port) and makes the work directory
    /// under `work_parent`.
    pub fn start(programs: Programs, work_parent: &Path) -> Result<Lab, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let http_port = free_port();
        let pebble = runtime.block_on(Pebble::start(PebbleOptions {
            http_port: Some(http_port),
            ..PebbleOptions::default()
        }));
        let work = tempfile::Builder::new()
            .prefix("renewd-bench-")
            .tempdir_in(work_parent)
            .map_err(|e| format!("work directory in {}: {e}", work_parent.display()))?;
        let tag = format!("b{}", std::process::id());
        Ok(Lab {
            runtime,
            pebble,
            http_port,
            programs,
            work,
            next: Cell::new(0),
            tag,
        })
    }

    /// A new, empty directory for one run.
    pub fn dir(&self, label: &str) -> Result<PathBuf, String> {
        let n = self.next.get();
        self.next.set(n + 1);
        let dir = self.work.path().join(format!("{n:03}-{label}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(dir)
    }

    /// Keeps the work directory when the lab is dropped; returns its path.
    pub fn keep(&mut self) -> PathBuf {
        self.work.disable_cleanup(true);
        self.work.path().to_path_buf()
    }

    /// The work directory (scenarios with large fixtures put them here and remove them).
    pub fn work(&self) -> &Path {
        self.work.path()
    }

    /// A domain name no earlier run used: `LABEL.TAG.example.test`.
    pub fn domain(&self, label: &str) -> String {
        format!("{label}.{}.example.test", self.tag)
    }

    /// pebble as a renewd `[[ca]]`.
    pub fn pebble_ca(&self, name: &str) -> CaSpec {
        CaSpec {
            name: name.to_string(),
            directory: self.pebble.directory_url(),
            root: self.pebble.tls_root_pem().to_path_buf(),
        }
    }

    /// Writes `config` to `dir/renewd.toml`: the standalone http-01 responder on the
    /// shared port, each CA with `requests_per_second = 1000` and
    /// `max_concurrent_orders` = workers (so the pool, not the CA limits, sets the pace).
    pub fn write_config(&self, dir: &Path, config: &RenewdConfig) -> Result<PathBuf, String> {
        let mut t = String::new();
        let _ = writeln!(t, "state_dir = \"{}\"", config.state_dir.display());
        let _ = writeln!(t, "\n[daemon]\nworkers = {}", config.workers);
        let _ = writeln!(t, "\n[renewal]\nari = {}", config.ari);
        let _ = writeln!(t, "\n[http01]\nlisten = [\"127.0.0.1:{}\"]", self.http_port);
        for ca in &config.cas {
            let _ = writeln!(
                t,
                "\n[[ca]]\nname = \"{}\"\ndirectory = \"{}\"\ntrust_roots = [\"{}\"]\n\
                 requests_per_second = 1000\nmax_concurrent_orders = {}",
                ca.name,
                ca.directory,
                ca.root.display(),
                config.workers.clamp(1, 64)
            );
        }
        let cas: Vec<String> = config
            .cas
            .iter()
            .map(|c| format!("\"{}\"", c.name))
            .collect();
        let cas = cas.join(", ");
        for (name, domain) in &config.certs {
            let _ = writeln!(
                t,
                "\n[[cert]]\nname = \"{name}\"\ndomains = [\"{domain}\"]\ncas = [{cas}]"
            );
        }
        let path = dir.join("renewd.toml");
        std::fs::write(&path, t).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    /// `renewd --config CONFIG ARGS…` ready to spawn.
    pub fn renewd(&self, config: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.programs.renewd);
        cmd.arg("--config").arg(config).args(args);
        cmd
    }

    /// `renewd ARGS --json` parsed (ledger, status, ca).
    pub fn renewd_json(&self, config: &Path, args: &[&str]) -> Result<Vec<Value>, String> {
        let dir = config.parent().unwrap_or(Path::new("."));
        let mut all = args.to_vec();
        all.push("--json");
        let done = process::run(
            self.renewd(config, &all),
            dir,
            "renewd-json",
            Duration::from_secs(60),
        )?;
        if !done.exit.success() {
            return Err(format!("renewd {args:?}: {}", done.tail(5)));
        }
        serde_json::from_str(&done.stdout).map_err(|e| format!("renewd {args:?} output: {e}"))
    }

    /// Every ledger row, the local steps (install, hooks) included.
    pub fn ledger(&self, config: &Path) -> Result<Vec<Value>, String> {
        self.renewd_json(config, &["ledger", "--all-steps", "--limit", "0"])
    }
}
