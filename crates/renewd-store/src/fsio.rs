//! Crash-safe file writing: temp file in the same directory → write → fsync → rename →
//! fsync the directory. Every file starts life with mode 0600, so no private key is ever
//! readable by others, even for a moment; public files are widened (fchmod) and handed to
//! their owner (fchown) before the rename makes them visible.

use std::ffi::OsString;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt, fchown};
use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// What marks a file or directory as a leftover of an interrupted write: every temp name
/// holds it, and clean-up removes whatever does.
pub(crate) const TMP_MARK: &str = ".renewd-tmp-";

/// Mode and ownership of a file written by [`write_file_atomic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSpec {
    /// Permission bits.
    pub mode: u32,
    /// Numeric owner, when it should change.
    pub uid: Option<u32>,
    /// Numeric group, when it should change.
    pub gid: Option<u32>,
}

impl FileSpec {
    /// A private key or other secret: 0600, owned by the writer.
    pub const SECRET: FileSpec = FileSpec {
        mode: 0o600,
        uid: None,
        gid: None,
    };
    /// A certificate: 0644, owned by the writer.
    pub const PUBLIC: FileSpec = FileSpec {
        mode: 0o644,
        uid: None,
        gid: None,
    };
}

/// Writes `contents` to `path` atomically and durably: readers see the old file or the
/// new one, never a part, also across a crash or power loss.
pub fn write_file_atomic(path: &Path, contents: &[u8], spec: &FileSpec) -> Result<(), StoreError> {
    stage(path, contents, spec)?.commit()
}

/// A file written and synced under a temp name beside its destination, not yet renamed
/// into place. Dropping it uncommitted removes the temp file.
#[derive(Debug)]
pub(crate) struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl Staged {
    /// Renames the temp file over the destination and syncs the directory.
    pub(crate) fn commit(mut self) -> Result<(), StoreError> {
        fs::rename(&self.tmp, &self.dest)
            .map_err(|e| StoreError::io("renaming a new file into place at", &self.dest, e))?;
        self.committed = true;
        sync_dir(parent_of(&self.dest))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes a complete, synced temp file beside `dest` with `spec`'s mode and owner.
pub(crate) fn stage(dest: &Path, contents: &[u8], spec: &FileSpec) -> Result<Staged, StoreError> {
    let tmp = temp_path(dest);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| StoreError::io("creating a temp file for", dest, e))?;
    let staged = Staged {
        tmp,
        dest: dest.to_path_buf(),
        committed: false,
    };
    file.write_all(contents)
        .map_err(|e| StoreError::io("writing", dest, e))?;
    if spec.uid.is_some() || spec.gid.is_some() {
        fchown(&file, spec.uid, spec.gid)
            .map_err(|e| StoreError::io("changing the owner of", dest, e))?;
    }
    if spec.mode != 0o600 {
        file.set_permissions(fs::Permissions::from_mode(spec.mode))
            .map_err(|e| StoreError::io("setting the mode of", dest, e))?;
    }
    file.sync_all()
        .map_err(|e| StoreError::io("syncing", dest, e))?;
    Ok(staged)
}

/// Writes a new file that must not exist yet (inside a private temp directory), synced.
pub(crate) fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| StoreError::io("creating", path, e))?;
    file.write_all(contents)
        .map_err(|e| StoreError::io("writing", path, e))?;
    file.sync_all()
        .map_err(|e| StoreError::io("syncing", path, e))
}

/// A unique temp name beside `dest`.
pub(crate) fn temp_path(dest: &Path) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(dest.file_name().unwrap_or_default());
    name.push(format!("{TMP_MARK}{:016x}", fastrand::u64(..)));
    parent_of(dest).join(name)
}

/// Whether a directory entry is a leftover temp file or directory.
pub(crate) fn is_temp_name(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().contains(TMP_MARK)
}

/// The directory holding `path` (`.` for a bare name).
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// fsyncs a directory, making renames and creations in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("syncing the directory", dir, e))
}

/// Creates `dir` (and missing parents) with `mode` when it does not exist.
pub(crate) fn ensure_dir(dir: &Path, mode: u32) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|e| StoreError::io("creating the directory", dir, e))?;
    sync_dir(parent_of(dir))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn writes_atomically_with_modes() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.pem");
        write_file_atomic(&key, b"secret", &FileSpec::SECRET).unwrap();
        assert_eq!(fs::read(&key).unwrap(), b"secret");
        assert_eq!(fs::metadata(&key).unwrap().mode() & 0o7777, 0o600);
        let cert = dir.path().join("c.pem");
        write_file_atomic(&cert, b"one", &FileSpec::PUBLIC).unwrap();
        write_file_atomic(&cert, b"two", &FileSpec::PUBLIC).unwrap();
        assert_eq!(fs::read(&cert).unwrap(), b"two");
        assert_eq!(fs::metadata(&cert).unwrap().mode() & 0o7777, 0o644);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temp files left: {names:?}");
    }

    #[test]
    fn an_uncommitted_stage_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x");
        let staged = stage(&dest, b"x", &FileSpec::PUBLIC).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        drop(staged);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(is_temp_name(temp_path(&dest).file_name().unwrap()));
        assert!(!is_temp_name(dest.file_name().unwrap()));
    }

    #[test]
    fn errors_name_the_destination() {
        let err = write_file_atomic(
            Path::new("/nonexistent-dir/for/sure/x.pem"),
            b"x",
            &FileSpec::SECRET,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-dir/for/sure/x.pem"),
            "{err}"
        );
    }
}
