//! What the figures were measured on: the machine and the versions of every program.

use std::path::Path;
use std::process::Command;

/// The machine.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub ram_gib: f64,
    pub kernel: String,
    pub os: String,
    /// UTC, when the bench started.
    pub date: String,
}

/// The programs.
#[derive(Debug, Clone)]
pub struct Versions {
    /// `git describe`-like: the short commit, `+dirty` with uncommitted changes.
    pub renewd: String,
    pub lego: String,
    pub certbot: String,
    pub pebble: String,
    pub rustc: String,
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Machine {
    /// Reads `/proc` and `/etc/os-release`.
    pub fn now() -> Machine {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
            .map_or_else(|| "unknown".into(), |(_, v)| v.trim().to_string());
        let mem_kib: f64 = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map_or_else(|| "unknown".into(), |v| v.trim_matches('"').to_string());
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            ram_gib: mem_kib / 1024.0 / 1024.0,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            os,
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }
}

/// A Debian package's version, with what the program says of itself when it says more.
fn package(name: &str, own: Option<String>) -> String {
    let deb = output("dpkg-query", &["-W", "-f=${Version}", name]);
    match (deb, own) {
        (Some(deb), Some(own)) if !own.is_empty() => format!("{deb} (Debian package; `{own}`)"),
        (Some(deb), _) => format!("{deb} (Debian package)"),
        (None, Some(own)) => own,
        (None, None) => "unknown".into(),
    }
}

impl Versions {
    /// Asks git (in `repo`), dpkg and the programs.
    pub fn now(repo: &Path) -> Versions {
        let repo = repo.display().to_string();
        let rev = output("git", &["-C", &repo, "rev-parse", "--short=12", "HEAD"])
            .unwrap_or_else(|| "unknown".into());
        let dirty =
            output("git", &["-C", &repo, "status", "--porcelain"]).is_some_and(|s| !s.is_empty());
        Versions {
            renewd: if dirty { format!("{rev}+dirty") } else { rev },
            lego: package("lego", output("lego", &["--version"])),
            certbot: package("certbot", output("certbot", &["--version"])),
            pebble: package("pebble", None),
            rustc: output("rustc", &["--version"]).unwrap_or_else(|| "unknown".into()),
        }
    }
}
