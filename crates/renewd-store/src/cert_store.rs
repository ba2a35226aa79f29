//! The certificate file store:
//!
//! ```text
//! STATE/certs/NAME/archive/N/{cert,chain,fullchain,privkey}.pem     (archive/ is 0700)
//! STATE/certs/NAME/live -> archive/N                                 (relative symlink)
//! ```
//!
//! A new version is written into a temp directory inside `archive/` (each file created
//! with its final mode — the key 0600 from the first byte — written and fsynced), the temp
//! directory is fsynced and renamed to `archive/N`, and `live` is swapped by creating a new
//! symlink under a temp name and renaming it over `live`, then fsyncing the directory. A
//! reader of `live/` therefore always sees one complete version, old or new, and so does a
//! restart after a crash at any point. [`CertStore::recover`] removes what an interrupted
//! install left behind.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, symlink};
use std::path::{Path, PathBuf};

use renewd_core::CertName;

use crate::copy_out::{CopyOut, SetContents};
use crate::error::StoreError;
use crate::facts::CertFacts;
use crate::fsio::{self, TMP_MARK};
use crate::verify::{Expectations, VerifiedSet, verify_issued};

/// The files of every version, as in `live/`.
pub const SET_FILES: [&str; 4] = ["cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"];

/// The default number of archive versions kept per certificate.
pub const DEFAULT_KEEP_VERSIONS: usize = 5;

/// What an install did.
#[derive(Debug)]
pub struct Installed {
    /// The new version number (`archive/N`, now live).
    pub version: u32,
    /// The installed leaf's facts.
    pub facts: CertFacts,
    /// Old versions removed.
    pub pruned: Vec<u32>,
    /// When copy-out paths are configured and renaming them into place failed after the
    /// live set was swapped: the live set is new, some copies may be old. (A failure before
    /// the swap fails the whole install instead.) Retry with [`CertStore::copy_out_live`].
    pub copy_out_error: Option<StoreError>,
}

/// The certificate file store under `STATE/certs`.
#[derive(Debug, Clone)]
pub struct CertStore {
    root: PathBuf,
    keep: usize,
}

impl CertStore {
    /// The store of `state_dir` (`STATE/certs`), keeping the last 5 versions.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            root: state_dir.join("certs"),
            keep: DEFAULT_KEEP_VERSIONS,
        }
    }

    /// Keeps the last `n` versions (at least 1) instead.
    pub fn keep_versions(mut self, n: usize) -> Self {
        self.keep = n.max(1);
        self
    }

    /// `STATE/certs`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `STATE/certs/NAME`.
    pub fn cert_dir(&self, name: &CertName) -> PathBuf {
        self.root.join(name.as_str())
    }

    /// `STATE/certs/NAME/live`.
    pub fn live_dir(&self, name: &CertName) -> PathBuf {
        self.cert_dir(name).join("live")
    }

    /// The version `live` points to; `None` when there is no `live` (or it points elsewhere
    /// than `archive/N`).
    pub fn live_version(&self, name: &CertName) -> Result<Option<u32>, StoreError> {
        live_version_in(&self.cert_dir(name))
    }

    /// The complete versions in the archive, oldest first.
    pub fn versions(&self, name: &CertName) -> Result<Vec<u32>, StoreError> {
        let archive = self.cert_dir(name).join("archive");
        Ok(numbered_dirs(&archive)?
            .into_iter()
            .filter(|n| is_complete(&archive.join(n.to_string())))
            .collect())
    }

    /// Verifies an issued chain against its key and `expect`, then installs it (see
    /// [`CertStore::install_verified`]). A certificate that fails verification is refused
    /// with [`StoreError::Verify`] and nothing changes on disk.
    pub fn install(
        &self,
        name: &CertName,
        chain_pem: &str,
        key_pem: &str,
        expect: &Expectations<'_>,
        copy_out: Option<&CopyOut>,
    ) -> Result<Installed, StoreError> {
        let set = verify_issued(chain_pem, key_pem, expect)?;
        self.install_verified(name, &set, copy_out)
    }

    /// Writes `set` as a new archive version, makes it live, writes the copy-out files, and
    /// prunes old versions. On an error before the swap, the old set stays live and nothing
    /// new is left behind.
    pub fn install_verified(
        &self,
        name: &CertName,
        set: &VerifiedSet,
        copy_out: Option<&CopyOut>,
    ) -> Result<Installed, StoreError> {
        let cert_dir = self.cert_dir(name);
        let archive = cert_dir.join("archive");
        fsio::ensure_dir(fsio::parent_of(&self.root), 0o700)?;
        fsio::ensure_dir(&self.root, 0o755)?;
        fsio::ensure_dir(&cert_dir, 0o755)?;
        fsio::ensure_dir(&archive, 0o700)?;

        let version = next_version(&archive, live_version_in(&cert_dir)?)?;
        let tmp = TempDir::create(&archive, version)?;
        let contents = SetContents {
            cert: set.cert_pem.as_bytes(),
            chain: set.chain_pem.as_bytes(),
            fullchain: set.fullchain_pem.as_bytes(),
            key: set.key_pem.as_bytes(),
        };
        fsio::write_new(&tmp.0.join("privkey.pem"), contents.key, 0o600)?;
        fsio::write_new(&tmp.0.join("cert.pem"), contents.cert, 0o644)?;
        fsio::write_new(&tmp.0.join("chain.pem"), contents.chain, 0o644)?;
        fsio::write_new(&tmp.0.join("fullchain.pem"), contents.fullchain, 0o644)?;
        fsio::sync_dir(&tmp.0)?;

        // Copies are staged before anything becomes visible, so that their failure (an
        // unknown owner, a full disk) leaves everything as it was.
        let staged = copy_out
            .filter(|c| !c.is_empty())
            .map(|c| c.stage(&contents))
            .transpose()?;

        let final_dir = archive.join(version.to_string());
        fs::rename(&tmp.0, &final_dir)
            .map_err(|e| StoreError::io("renaming the new version into place at", &final_dir, e))?;
        tmp.disarm();
        let swapped = fsio::sync_dir(&archive).and_then(|()| swap_live(&cert_dir, version));
        if let Err(e) = swapped {
            // When `live` still names the old version, the new one must not linger; when
            // the rename happened and only the directory sync failed, it is live now.
            if live_version_in(&cert_dir).ok().flatten() != Some(version) {
                let _ = fs::remove_dir_all(&final_dir);
            }
            return Err(e);
        }

        let copy_out_error = staged.and_then(|s| s.commit().err());
        let pruned = self.prune(&cert_dir, version);
        Ok(Installed {
            version,
            facts: set.facts.clone(),
            pruned,
            copy_out_error,
        })
    }

    /// Writes the copy-out files from the live set (after an interrupted install, or when
    /// copy-out paths were added to the config).
    pub fn copy_out_live(&self, name: &CertName, copy_out: &CopyOut) -> Result<(), StoreError> {
        let live = self.live_dir(name);
        let read = |f: &str| {
            let p = live.join(f);
            fs::read(&p).map_err(|e| StoreError::io("reading", &p, e))
        };
        let (cert, chain, fullchain, key) = (
            read("cert.pem")?,
            read("chain.pem")?,
            read("fullchain.pem")?,
            read("privkey.pem")?,
        );
        copy_out
            .stage(&SetContents {
                cert: &cert,
                chain: &chain,
                fullchain: &fullchain,
                key: &key,
            })?
            .commit()
    }

    /// Removes what interrupted installs left in every certificate's directory: temp
    /// symlinks, temp version directories, and incomplete versions `live` does not use.
    /// Returns the removed paths. Meant for the daemon's start, before it takes work: an
    /// install running meanwhile in another process (`renewd renew`) would lose its temp
    /// directory and fail (its live set stays intact).
    pub fn recover(&self) -> Result<Vec<PathBuf>, StoreError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("listing", &self.root, e)),
        };
        let mut removed = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("listing", &self.root, e))?;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                removed.extend(recover_cert_dir(&entry.path())?);
            }
        }
        Ok(removed)
    }

    /// Removes versions beyond the newest `keep` (never the live one). Failures are logged,
    /// not returned: the install they follow has succeeded.
    fn prune(&self, cert_dir: &Path, live: u32) -> Vec<u32> {
        let archive = cert_dir.join("archive");
        let versions = match numbered_dirs(&archive) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "could not list old certificate versions");
                return Vec::new();
            }
        };
        let cut = versions.len().saturating_sub(self.keep);
        let mut pruned = Vec::new();
        for &v in versions[..cut].iter().filter(|v| **v != live) {
            let dir = archive.join(v.to_string());
            match fs::remove_dir_all(&dir) {
                Ok(()) => pruned.push(v),
                Err(e) => tracing::warn!(path = %dir.display(), error = %e,
                    "could not remove an old certificate version"),
            }
        }
        if !pruned.is_empty()
            && let Err(e) = fsio::sync_dir(&archive)
        {
            tracing::warn!(error = %e, "could not sync the archive directory");
        }
        pruned
    }
}

/// A temp version directory that removes itself unless disarmed.
struct TempDir(PathBuf);

impl TempDir {
    fn create(archive: &Path, version: u32) -> Result<Self, StoreError> {
        let path = archive.join(format!(".{version}{TMP_MARK}{:016x}", fastrand::u64(..)));
        DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .map_err(|e| StoreError::io("creating the directory", &path, e))?;
        Ok(Self(path))
    }

    fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Points `cert_dir/live` at `archive/version` atomically.
fn swap_live(cert_dir: &Path, version: u32) -> Result<(), StoreError> {
    let live = cert_dir.join("live");
    let tmp = fsio::temp_path(&live);
    let target = format!("archive/{version}");
    symlink(&target, &tmp).map_err(|e| StoreError::io("creating the symlink", &tmp, e))?;
    if let Err(e) = fs::rename(&tmp, &live) {
        let _ = fs::remove_file(&tmp);
        return Err(StoreError::io("swapping the symlink", &live, e));
    }
    fsio::sync_dir(cert_dir)
}

fn live_version_in(cert_dir: &Path) -> Result<Option<u32>, StoreError> {
    let live = cert_dir.join("live");
    match fs::read_link(&live) {
        Ok(target) => Ok(target
            .to_str()
            .and_then(|t| t.strip_prefix("archive/"))
            .and_then(|n| n.parse().ok())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // Not a symlink (a directory someone put there): not ours to read.
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(None),
        Err(e) => Err(StoreError::io("reading the symlink", &live, e)),
    }
}

/// The numbered entries of `archive`, ascending.
fn numbered_dirs(archive: &Path) -> Result<Vec<u32>, StoreError> {
    let entries = match fs::read_dir(archive) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io("listing", archive, e)),
    };
    let mut out: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    out.sort_unstable();
    Ok(out)
}

fn next_version(archive: &Path, live: Option<u32>) -> Result<u32, StoreError> {
    let newest = numbered_dirs(archive)?.last().copied().unwrap_or(0);
    Ok(newest.max(live.unwrap_or(0)).saturating_add(1))
}

fn is_complete(dir: &Path) -> bool {
    SET_FILES.iter().all(|f| dir.join(f).is_file())
}

fn recover_cert_dir(cert_dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut removed = Vec::new();
    remove_temps(cert_dir, &mut removed)?;
    let archive = cert_dir.join("archive");
    remove_temps(&archive, &mut removed)?;
    let live = live_version_in(cert_dir)?;
    for v in numbered_dirs(&archive)? {
        let dir = archive.join(v.to_string());
        if Some(v) != live && dir.is_dir() && !is_complete(&dir) {
            fs::remove_dir_all(&dir).map_err(|e| StoreError::io("removing", &dir, e))?;
            removed.push(dir);
        }
    }
    if !removed.is_empty() {
        fsio::sync_dir(cert_dir)?;
        if archive.is_dir() {
            fsio::sync_dir(&archive)?;
        }
    }
    Ok(removed)
}

fn remove_temps(dir: &Path, removed: &mut Vec<PathBuf>) -> Result<(), StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io("listing", dir, e)),
    };
    for entry in entries.flatten() {
        if !fsio::is_temp_name(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let result = if is_dir {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        result.map_err(|e| StoreError::io("removing", &path, e))?;
        removed.push(path);
    }
    Ok(())
}

#[cfg(test)]
#[path = "cert_store_tests.rs"]
mod tests;
