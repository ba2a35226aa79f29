//! http-01 in webroot mode (`[http01] webroot`): a web server the operator runs serves the
//! document root, and renewd writes `ROOT/.well-known/acme-challenge/TOKEN` into it.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use renewd_acme::{BoxError, BoxFuture, ChallengeAnswer, ChallengeSolver};
use renewd_core::ChallengeType;

use crate::answer::{check_token, expect_type};
use crate::error::Error;

/// Directory mode: the web server (another user) must traverse it. Set explicitly, since
/// the service's umask (0077) would make it private.
const DIR_MODE: u32 = 0o755;
/// File mode: the web server must read it.
const FILE_MODE: u32 = 0o644;

/// Writes challenge files under a document root. Each file is written atomically (a
/// temporary file in the same directory, fsync, rename, fsync of the directory), mode
/// 0644; the directories `.well-known` and `acme-challenge` are created if missing, mode
/// 0755. Cleanup removes the file, and the directories too if renewd created them and they
/// are empty. Present and cleanup are serialized, so one job's cleanup never removes a
/// directory another job is writing into.
#[derive(Debug, Clone)]
pub struct WebrootSolver {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    /// Directories renewd created and has not removed yet, outermost first. The mutex also
    /// serializes every file operation.
    created: Mutex<Vec<PathBuf>>,
}

impl WebrootSolver {
    /// A solver writing under the document root `root` (which must exist).
    pub fn new(root: impl Into<PathBuf>) -> WebrootSolver {
        WebrootSolver {
            inner: Arc::new(Inner {
                root: root.into(),
                created: Mutex::new(Vec::new()),
            }),
        }
    }

    /// `ROOT/.well-known/acme-challenge`.
    pub fn challenge_dir(&self) -> PathBuf {
        self.inner.root.join(".well-known").join("acme-challenge")
    }

    async fn blocking(
        &self,
        op: impl FnOnce(&Inner) -> Result<(), Error> + Send + 'static,
    ) -> Result<(), BoxError> {
        let inner = self.inner.clone();
        match tokio::task::spawn_blocking(move || op(&inner)).await {
            Ok(result) => result.map_err(BoxError::from),
            Err(e) => Err(Box::new(e)),
        }
    }
}

impl ChallengeSolver for WebrootSolver {
    fn present<'a>(&'a self, answer: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            expect_type(answer, ChallengeType::Http01)?;
            check_token(&answer.token)?;
            let token = answer.token.clone();
            let body = answer.key_authorization.clone();
            self.blocking(move |inner| inner.write(&token, body.as_bytes()))
                .await
        })
    }

    fn cleanup<'a>(&'a self, answer: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            check_token(&answer.token)?;
            let token = answer.token.clone();
            self.blocking(move |inner| inner.remove(&token)).await
        })
    }
}

impl Inner {
    fn write(&self, token: &str, body: &[u8]) -> Result<(), Error> {
        let mut created = self.created.lock().unwrap_or_else(PoisonError::into_inner);
        let failed = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Webroot { what, path, source }
        };
        let meta =
            fs::metadata(&self.root).map_err(failed("reading the document root", &self.root))?;
        if !meta.is_dir() {
            return Err(Error::Webroot {
                what: "using the document root",
                path: self.root.clone(),
                source: std::io::Error::new(ErrorKind::NotADirectory, "not a directory"),
            });
        }
        let well_known = self.root.join(".well-known");
        let dir = well_known.join("acme-challenge");
        for d in [&well_known, &dir] {
            match fs::create_dir(d) {
                Ok(()) => {
                    created.push(d.clone());
                    fs::set_permissions(d, Permissions::from_mode(DIR_MODE))
                        .map_err(failed("setting the mode of", d))?;
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(failed("creating the directory", d)(e)),
            }
        }
        let target = dir.join(token);
        let temp = dir.join(format!(".{token}.renewd-{}", unique()));
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(&temp)?;
            file.set_permissions(Permissions::from_mode(FILE_MODE))?;
            file.write_all(body)?;
            file.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(failed("writing", &temp)(e));
        }
        if let Err(e) = fs::rename(&temp, &target) {
            let _ = fs::remove_file(&temp);
            return Err(failed("renaming into place", &target)(e));
        }
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(failed("syncing the directory", &dir))?;
        Ok(())
    }

    fn remove(&self, token: &str) -> Result<(), Error> {
        let mut created = self.created.lock().unwrap_or_else(PoisonError::into_inner);
        let target = self
            .root
            .join(".well-known")
            .join("acme-challenge")
            .join(token);
        match fs::remove_file(&target) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::Webroot {
                    what: "removing",
                    path: target,
                    source,
                });
            }
        }
        // Innermost first; a directory that is not empty (another job's file, or the
        // operator's) stays, and stays on the list for a later cleanup.
        while let Some(dir) = created.last() {
            match fs::remove_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(_) => break,
            }
            created.pop();
        }
        Ok(())
    }
}

/// A suffix no other temporary file of this process has.
fn unique() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
