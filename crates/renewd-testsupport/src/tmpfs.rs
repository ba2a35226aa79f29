//! A small tmpfs for tests of a full or read-only file system (needs root: CI runs as
//! root, so a refused mount fails the test loudly instead of skipping it).

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for the test, unmounted (lazily) on drop.
#[derive(Debug)]
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=…`, e.g. `"256k"`) at `at`, creating it.
    pub fn mount(at: &Path, size: &str) -> Self {
        fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs at {} failed — this test must run as root (CI does): {}",
            at.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Self(at.to_path_buf())
    }

    /// Remounts with `opts` (`"ro"`, `"rw"`).
    pub fn remount(&self, opts: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes to `dir/filler` until the file system says it is full.
pub fn fill_until_full(dir: &Path) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("filler"))
        .unwrap();
    let block = vec![0u8; 4096];
    loop {
        match f.write_all(&block).and_then(|()| f.sync_all()) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::StorageFull => return,
            Err(e) => panic!("filling: {e}"),
        }
    }
}
