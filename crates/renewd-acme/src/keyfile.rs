//! Writing secret files: mode 0600 from the first byte, atomically (temp file in the same
//! directory, fsync, rename over the target — or hard link when the target must not be
//! replaced — fsync of the directory).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Writes `contents` to `path` so that the file is never readable by others and a crash
/// leaves either the old or the new file, never a torn one.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let (dir, tmp_path) = synced_temp(path, "tmp", contents)?;
    if let Err(e) = std::fs::rename(&tmp_path, path) {
        let _ = std::fs::remove_file(&tmp_path);
        return Err(e);
    }
    File::open(dir)?.sync_all()
}

/// Creates `path` with `contents`, mode 0600, only if it does not exist yet (`O_EXCL`
/// semantics, and the file appears complete or not at all: a temp file is written and
/// synced, then hard-linked to `path`, which fails if `path` exists). `Ok(false)` when the
/// file already existed: it is left as it is.
pub(crate) fn create_private(path: &Path, contents: &[u8]) -> std::io::Result<bool> {
    let (dir, tmp_path) = synced_temp(path, "new", contents)?;
    let linked = std::fs::hard_link(&tmp_path, path);
    let _ = std::fs::remove_file(&tmp_path);
    match linked {
        Ok(()) => {
            File::open(dir)?.sync_all()?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// The first half of both writes: a new temp file next to `path` (`.NAME.TAG-PID-RANDOM`,
/// mode 0600 from creation, never an existing file), holding `contents`, synced to disk.
/// Returns the directory and the temp file's path; on failure no temp file is left.
fn synced_temp<'p>(
    path: &'p Path,
    tag: &str,
    contents: &[u8],
) -> std::io::Result<(&'p Path, PathBuf)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path names no file"))?
        .to_string_lossy();
    let mut attempt = 0u32;
    let (tmp_path, mut file) = loop {
        let tmp = dir.join(format!(
            ".{name}.{tag}-{}-{:08x}",
            std::process::id(),
            random_u32()
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    };
    if let Err(e) = file.write_all(contents).and_then(|()| file.sync_all()) {
        let _ = std::fs::remove_file(&tmp_path);
        return Err(e);
    }
    Ok((dir, tmp_path))
}

fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    // A failed RNG only makes a name collision (handled by create_new) more likely.
    let _ = getrandom::fill(&mut bytes);
    u32::from_le_bytes(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_0600_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("account.key");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // No temp files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("account.key")]);
        assert!(write_private(&dir.path().join("missing/dir/key"), b"x").is_err());
    }

    #[test]
    fn create_never_replaces_an_existing_file_even_in_a_race() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("account.key");
        let barrier = std::sync::Barrier::new(8);
        let created: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8u8)
                .map(|i| {
                    let (path, barrier) = (&path, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        create_private(path, &[b'0' + i; 64]).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(created.iter().filter(|c| **c).count(), 1, "{created:?}");
        let winner = created.iter().position(|c| *c).unwrap() as u8;
        assert_eq!(std::fs::read(&path).unwrap(), [b'0' + winner; 64]);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!create_private(&path, b"late").unwrap());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temp files left behind");
    }
}
