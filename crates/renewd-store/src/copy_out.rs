//! Optional copies of a certificate's files at fixed paths, for software that wants its own
//! file names, owner and mode. All files are staged first (temp file beside each
//! destination, written, owned, moded and synced), and renamed into place only when every
//! one was staged, so a failure (disk full, unknown user) leaves the old copies untouched.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::StoreError;
use crate::fsio::{self, FileSpec, Staged};
use crate::owners;

/// Where to copy a certificate's files, and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOut {
    /// The leaf alone.
    pub cert_path: Option<PathBuf>,
    /// The intermediates.
    pub chain_path: Option<PathBuf>,
    /// Leaf and intermediates.
    pub fullchain_path: Option<PathBuf>,
    /// The private key.
    pub key_path: Option<PathBuf>,
    /// Owner (name or numeric uid); unchanged when `None`.
    pub owner: Option<String>,
    /// Group (name or numeric gid); unchanged when `None`.
    pub group: Option<String>,
    /// Mode of the certificate files (default 0644).
    pub cert_mode: u32,
    /// Mode of the key file (default 0600; e.g. 0640 with a group such as `ssl-cert`).
    pub key_mode: u32,
}

impl Default for CopyOut {
    fn default() -> Self {
        Self {
            cert_path: None,
            chain_path: None,
            fullchain_path: None,
            key_path: None,
            owner: None,
            group: None,
            cert_mode: 0o644,
            key_mode: 0o600,
        }
    }
}

/// The four files' contents.
pub(crate) struct SetContents<'a> {
    pub cert: &'a [u8],
    pub chain: &'a [u8],
    pub fullchain: &'a [u8],
    pub key: &'a [u8],
}

/// Copy-out files staged and waiting for their renames.
#[derive(Debug)]
pub(crate) struct StagedCopies(Vec<Staged>);

impl StagedCopies {
    /// Renames every staged file into place.
    pub(crate) fn commit(self) -> Result<(), StoreError> {
        for staged in self.0 {
            staged.commit()?;
        }
        Ok(())
    }
}

impl CopyOut {
    /// Whether any path is configured.
    pub fn is_empty(&self) -> bool {
        self.targets().next().is_none()
    }

    fn targets(&self) -> impl Iterator<Item = (&Path, Which)> {
        [
            (self.cert_path.as_deref(), Which::Cert),
            (self.chain_path.as_deref(), Which::Chain),
            (self.fullchain_path.as_deref(), Which::Fullchain),
            (self.key_path.as_deref(), Which::Key),
        ]
        .into_iter()
        .filter_map(|(p, w)| p.map(|p| (p, w)))
    }

    /// Stages every configured file; nothing is visible until [`StagedCopies::commit`].
    pub(crate) fn stage(&self, files: &SetContents<'_>) -> Result<StagedCopies, StoreError> {
        let uid = self
            .owner
            .as_deref()
            .map(owners::resolve_user)
            .transpose()?;
        let gid = self
            .group
            .as_deref()
            .map(owners::resolve_group)
            .transpose()?;
        let mut staged = Vec::new();
        for (path, which) in self.targets() {
            let (contents, mode) = match which {
                Which::Cert => (files.cert, self.cert_mode),
                Which::Chain => (files.chain, self.cert_mode),
                Which::Fullchain => (files.fullchain, self.cert_mode),
                Which::Key => (files.key, self.key_mode),
            };
            let spec = FileSpec { mode, uid, gid };
            // On error, the files staged so far are dropped, which removes them.
            staged.push(fsio::stage(path, contents, &spec)?);
        }
        Ok(StagedCopies(staged))
    }

    /// Removes temp files an interrupted copy left beside the configured paths.
    pub fn clean_temp_files(&self) -> Result<Vec<PathBuf>, StoreError> {
        let mut removed = Vec::new();
        for (path, _) in self.targets() {
            let Some(base) = path.file_name() else {
                continue;
            };
            let prefix = format!(".{}{}", base.to_string_lossy(), fsio::TMP_MARK);
            let dir = fsio::parent_of(path);
            let entries = match fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io("listing", dir, e)),
            };
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(&prefix) {
                    let p = entry.path();
                    fs::remove_file(&p).map_err(|e| StoreError::io("removing", &p, e))?;
                    removed.push(p);
                }
            }
        }
        Ok(removed)
    }
}

#[derive(Debug, Clone, Copy)]
enum Which {
    Cert,
    Chain,
    Fullchain,
    Key,
}
