//! Binding `STATE/control.sock`: a stale file (a daemon that crashed) is replaced, a live
//! daemon answering on it refuses the start; mode 0600; removed when dropped.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tokio::net::UnixListener;

use super::socket_path;

/// The bound socket; its file is removed when it is dropped (if it is still ours).
#[derive(Debug)]
pub struct ControlSocket {
    pub(super) listener: UnixListener,
    path: PathBuf,
    ino: u64,
}

impl ControlSocket {
    /// Binds `STATE/control.sock`, replacing a stale file; fails when another daemon
    /// answers on it.
    pub fn bind(state_dir: &Path) -> anyhow::Result<ControlSocket> {
        let path = socket_path(state_dir);
        let listener = match UnixListener::bind(&path) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                match std::os::unix::net::UnixStream::connect(&path) {
                    Ok(_) => anyhow::bail!(
                        "another renewd daemon is running on {} (it answers on {})",
                        state_dir.display(),
                        path.display()
                    ),
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                        ) =>
                    {
                        tracing::info!(path = %path.display(),
                            "replacing the control socket a previous daemon left behind");
                        match std::fs::remove_file(&path) {
                            Ok(()) => {}
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                            Err(e) => {
                                return Err(e).with_context(|| {
                                    format!("removing the stale {}", path.display())
                                });
                            }
                        }
                        UnixListener::bind(&path)
                            .with_context(|| format!("cannot listen on {}", path.display()))?
                    }
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot check {}", path.display()));
                    }
                }
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot listen on {}", path.display()));
            }
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {} to mode 0600", path.display()))?;
        let ino = std::fs::metadata(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .ino();
        Ok(ControlSocket {
            listener,
            path,
            ino,
        })
    }

    /// Where it listens.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        // Only our own socket: a later daemon may have replaced the file.
        if std::fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.ino)
            && let Err(e) = std::fs::remove_file(&self.path)
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the control socket");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_live_one_refuses_a_second_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let path = socket_path(dir.path());
        // What a crashed daemon leaves: the file, with nothing listening on it.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let live = ControlSocket::bind(dir.path()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let err = ControlSocket::bind(dir.path()).unwrap_err();
        assert!(
            format!("{err:#}").contains("another renewd daemon is running"),
            "{err:#}"
        );
        assert!(
            path.exists(),
            "the refused one leaves the live socket alone"
        );
        drop(live);
        assert!(!path.exists(), "removed when the daemon's socket goes");
    }
}
