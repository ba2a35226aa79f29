//! renewd-store's integration tests: what must hold across processes, crashes and a file
//! system that fails. Child processes are this same test binary re-executed with
//! `RENEWD_STORE_CHILD` set (see `child.rs`); every child is killed on drop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod child;
mod crash;
mod full_fs;
mod lease_race;
mod migrations;

#[path = "../support/pki.rs"]
mod pki;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// A child process of this test binary playing `role`, killed and reaped on drop.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl ChildGuard {
    pub fn spawn(role: &str, dir: &Path, extra: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child::entry", "--nocapture", "--test-threads=1"])
            .env(child::ROLE, role)
            .env(child::DIR, dir)
            .env(child::ARG, extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
        }
    }

    /// Reads lines until one holds a `@@WORD@@` token, and returns the word. (The test
    /// harness writes its own text to the same stdout; the tokens stand out from it.)
    pub fn next_token(&mut self) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "the child exited before saying anything more");
            if let Some(start) = line.find("@@") {
                let rest = &line[start + 2..];
                if let Some(end) = rest.find("@@") {
                    return rest[..end].to_string();
                }
            }
        }
    }

    pub fn expect_token(&mut self, word: &str) {
        let got = self.next_token();
        assert_eq!(got, word, "unexpected word from the child");
    }

    pub fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Closes stdin (the child's signal to finish) and waits for a clean exit.
    pub fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the child failed: {status}");
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}
