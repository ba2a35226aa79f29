//! Running third-party ACME clients (Debian's certbot and lego) against the test CA.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use renewd_testca::TestCaHandle;

/// Asserts that the client at `program` is installed, and writes `ca`'s HTTPS root to
/// `dir/https-root.pem` for it to trust; returns that file.
pub fn trust_file(program: &str, ca: &TestCaHandle, dir: &Path) -> PathBuf {
    let name = Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert!(
        Path::new(program).exists(),
        "{name} is not installed (apt-get install {name})"
    );
    let root = dir.join("https-root.pem");
    std::fs::write(&root, ca.root_pem()).expect("write root");
    root
}

/// Runs `command` (the client `name`) to its end, at most two minutes; it is killed if the
/// test ends first.
pub async fn run_peer(name: &str, mut command: tokio::process::Command) -> Output {
    let run = command.kill_on_drop(true).output();
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .unwrap_or_else(|_| panic!("{name} finishes within 2 minutes"))
        .unwrap_or_else(|e| panic!("{name} runs: {e}"))
}

/// A client's stdout and stderr, for failure messages.
pub fn log_of(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
