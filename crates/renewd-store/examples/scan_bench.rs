//! The inventory scan's speed and memory at 10,000 and 100,000 certificates.
//!
//! ```text
//! cargo run --release -p renewd-store --example scan_bench [-- --fixture DIR] [--runs N]
//! ```
//!
//! The first run generates the fixture (one CA, one leaf per certificate signed with
//! rcgen, laid out as `STATE/certs/NAME/{archive/1/*.pem, live}`) under
//! `target/scan-bench-fixture` in a child process, so the generation's memory does not
//! count; later runs reuse it. Each size is scanned N times (3 unless `--runs`); the
//! figures are wall time and peak RSS (`VmHWM` from `/proc/self/status`, reset before each
//! scan through `/proc/self/clear_refs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/pki.rs"]
mod pki;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Instant;

use renewd_core::{CertName, DomainName, KeyType};
use renewd_store::{CertSpec, CertStore, InstalledState};

const SIZES: [usize; 2] = [10_000, 100_000];
/// Certificates sharing one hard-linked key and chain file (ext4 allows 65,000 links).
const LINK_GROUP: usize = 10_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--generate") {
        generate(Path::new(&args[2]), args[3].parse().unwrap());
        return;
    }
    let fixture = match args.iter().position(|a| a == "--fixture") {
        Some(i) => PathBuf::from(&args[i + 1]),
        None => default_fixture(),
    };
    let runs: usize = match args.iter().position(|a| a == "--runs") {
        Some(i) => args[i + 1].parse().expect("--runs N"),
        None => 3,
    };
    let largest = SIZES[SIZES.len() - 1];
    if !fixture.join(format!(".complete-{largest}")).exists() {
        eprintln!(
            "generating {largest} certificates in {} (once) ...",
            fixture.display()
        );
        let t = Instant::now();
        let status = Command::new(std::env::current_exe().unwrap())
            .arg("--generate")
            .arg(&fixture)
            .arg(largest.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "generating the fixture failed");
        eprintln!("generated in {:.1} s", t.elapsed().as_secs_f64());
    }

    let names: Vec<CertName> = (0..largest)
        .map(|i| CertName::new(format!("c{i}")).unwrap())
        .collect();
    let domains: Vec<[DomainName; 1]> = (0..largest)
        .map(|i| [DomainName::new(format!("c{i}.bench.example")).unwrap()])
        .collect();
    let specs: Vec<CertSpec<'_>> = names
        .iter()
        .zip(&domains)
        .map(|(name, d)| CertSpec {
            name,
            domains: d,
            key_type: KeyType::EcdsaP256,
        })
        .collect();
    let store = CertStore::new(&fixture);
    println!(
        "scan_bench: {} cores, fixture {}",
        thread::available_parallelism().map_or(1, |n| n.get()),
        fixture.display()
    );
    println!(
        "{:>8} {:>5} {:>10} {:>10} {:>12} {:>12}",
        "certs", "run", "wall ms", "µs/cert", "VmHWM MiB", "before MiB"
    );
    for &n in &SIZES {
        for run in 1..=runs {
            reset_peak();
            let before = status_kib("VmRSS");
            let t = Instant::now();
            let states = store.scan(&specs[..n]);
            let wall = t.elapsed();
            let peak = status_kib("VmHWM");
            let valid = states
                .iter()
                .filter(|s| matches!(s, InstalledState::Valid(_)))
                .count();
            assert_eq!(valid, n, "every fixture certificate scans as valid");
            println!(
                "{n:>8} {run:>5} {:>10.1} {:>10.2} {:>12.1} {:>12.1}",
                wall.as_secs_f64() * 1e3,
                wall.as_secs_f64() * 1e6 / n as f64,
                peak as f64 / 1024.0,
                before as f64 / 1024.0,
            );
            drop(states);
        }
    }
}

fn default_fixture() -> PathBuf {
    // target/<profile>/examples/scan_bench → target/scan-bench-fixture
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap();
    target.join("scan-bench-fixture")
}

/// Resets VmHWM to the current RSS.
fn reset_peak() {
    fs::write("/proc/self/clear_refs", "5").expect("resetting the peak RSS");
}

fn status_kib(field: &str) -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// Writes `n` certificates' live sets under `dir/certs`.
fn generate(dir: &Path, n: usize) {
    let _ = fs::remove_dir_all(dir);
    let certs = dir.join("certs");
    let shared = dir.join("shared");
    fs::create_dir_all(&certs).unwrap();
    fs::create_dir_all(&shared).unwrap();
    let ca = pki::TestCa::new("Bench");
    let key = rcgen::KeyPair::generate().unwrap();
    let key_pem = key.serialize_pem();
    for g in 0..n.div_ceil(LINK_GROUP) {
        fs::write(shared.join(format!("key-{g}.pem")), &key_pem).unwrap();
        fs::write(shared.join(format!("chain-{g}.pem")), &ca.intermediate_pem).unwrap();
    }
    let next = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..thread::available_parallelism().map_or(1, |n| n.get()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let leaf = ca.leaf_pem(&[&format!("c{i}.bench.example")], &key);
                    let cert_dir = certs.join(format!("c{i}"));
                    let v = cert_dir.join("archive/1");
                    fs::create_dir_all(&v).unwrap();
                    fs::write(v.join("cert.pem"), &leaf).unwrap();
                    fs::write(
                        v.join("fullchain.pem"),
                        format!("{leaf}{}", ca.intermediate_pem),
                    )
                    .unwrap();
                    let g = i / LINK_GROUP;
                    fs::hard_link(shared.join(format!("key-{g}.pem")), v.join("privkey.pem"))
                        .unwrap();
                    fs::hard_link(shared.join(format!("chain-{g}.pem")), v.join("chain.pem"))
                        .unwrap();
                    std::os::unix::fs::symlink("archive/1", cert_dir.join("live")).unwrap();
                    if i.is_multiple_of(10_000) {
                        eprintln!("  {i}");
                    }
                }
            });
        }
    });
    fs::write(dir.join(format!(".complete-{n}")), "").unwrap();
}
