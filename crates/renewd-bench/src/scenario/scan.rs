//! The inventory scan at 10,000 and 100,000 certificates: renewd-store's `scan_bench`
//! example on a fixture generated in the work directory (about 2 GB at 100,000) and
//! removed afterwards.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use crate::lab::Lab;
use crate::process;

/// One scan.
#[derive(Debug, Clone, Copy)]
pub struct ScanRun {
    pub wall_ms: f64,
    pub peak_mib: f64,
}

/// The scans by certificate count.
pub type Scans = BTreeMap<usize, Vec<ScanRun>>;

/// Generates the fixture, scans each size `runs` times, removes the fixture.
pub fn run(lab: &Lab, runs: usize) -> Result<Scans, String> {
    let fixture = lab.work().join("scan-fixture");
    let dir = lab.dir("scan")?;
    let mut cmd = Command::new(&lab.programs.scan_bench);
    cmd.arg("--fixture")
        .arg(&fixture)
        .args(["--runs", &runs.to_string()]);
    let done = process::run(cmd, &dir, "scan_bench", Duration::from_secs(3600));
    // The fixture goes whatever happened: it is large.
    let _ = std::fs::remove_dir_all(&fixture);
    let done = done?;
    if !done.exit.success() {
        return Err(format!("scan_bench failed:\n{}", done.tail(15)));
    }
    let scans = parse(&done.stdout);
    if scans.is_empty() {
        return Err(format!("scan_bench printed no figures:\n{}", done.tail(15)));
    }
    for (n, runs) in &scans {
        eprintln!("  {n} certificates: {runs:?}");
    }
    Ok(scans)
}

/// The table rows of scan_bench: `certs run wall_ms µs/cert VmHWM_MiB before_MiB`.
pub fn parse(stdout: &str) -> Scans {
    let mut scans = Scans::new();
    for line in stdout.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let [n, _run, wall, _per, peak, _before] = cols[..] else {
            continue;
        };
        let (Ok(n), Ok(wall_ms), Ok(peak_mib)) =
            (n.parse::<usize>(), wall.parse::<f64>(), peak.parse::<f64>())
        else {
            continue;
        };
        scans
            .entry(n)
            .or_default()
            .push(ScanRun { wall_ms, peak_mib });
    }
    scans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_table_and_skips_the_rest() {
        let out = "\
scan_bench: 2 cores, fixture /tmp/x
   certs   run    wall ms    µs/cert    VmHWM MiB   before MiB
   10000     1      180.5      18.05         12.1          3.0
   10000     2      170.0      17.00         12.0          3.0
  100000     1     1900.2      19.00         40.5          3.1
";
        let scans = parse(out);
        assert_eq!(scans[&10_000].len(), 2);
        assert!((scans[&100_000][0].peak_mib - 40.5).abs() < 1e-9);
    }
}
