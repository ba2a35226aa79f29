//! The crate's one error type, with the verification failures as a nested category.

use std::io;
use std::path::PathBuf;

use renewd_core::{DomainName, FailureClass, KeyType};

/// Everything that can go wrong in the store: the database, the file system, or a
/// certificate that fails verification.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file-system operation failed. The message names the operation and the path; the
    /// source says why (no space, read-only file system, permission denied, ...). Retrying
    /// can help once the cause is fixed (space freed, file system remounted).
    #[error("{op} {path}: {source}{hint}", hint = io_hint(source))]
    Io {
        /// What was being done ("writing", "renaming", "syncing the directory", ...).
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The database refused or failed an operation. Retrying can help when the database was
    /// busy (another process held the write lock past the busy timeout); otherwise the
    /// database file needs attention.
    #[error("state database: {op}: {source}")]
    Database {
        /// What was being done.
        op: &'static str,
        /// The backend's error, kept opaque so callers stay backend-neutral.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The database file could not be opened (missing directory, permissions, not a
    /// database). Retrying cannot help until the path is fixed.
    #[error("cannot open the state database {path}: {source}")]
    OpenDatabase {
        /// The database file.
        path: PathBuf,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The database was written by a newer renewd with a schema this build does not know.
    /// Retrying cannot help: upgrade renewd (or restore a backup of the state directory).
    #[error(
        "state database {path} has schema version {found}, but this renewd supports at most \
         version {supported}; it was written by a newer renewd — upgrade renewd, or restore a \
         backup of the state directory"
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },

    /// A read-only open found a schema older than this build's; a writer (the daemon or any
    /// read-write open) must migrate it first. Retrying after the daemon has started helps.
    #[error(
        "state database {path} has schema version {found} and needs migrating to version \
         {supported}; open it read-write once (start the daemon) to migrate it"
    )]
    SchemaOutdated {
        /// The database file.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The version this build expects.
        supported: u32,
    },

    /// A stored value could not be read back (a label no variant knows, a bad name, an
    /// out-of-range number). Retrying cannot help; the row was written by something else or
    /// the file was damaged.
    #[error(
        "state database: column {table}.{column} holds {value:?}, which is not valid: {reason}"
    )]
    CorruptValue {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// The value as stored.
        value: String,
        /// Why it was refused.
        reason: String,
    },

    /// A lease being renewed or released is no longer held by its holder (it expired and
    /// another process took it over). Retrying cannot help: stop working on the certificate.
    #[error("the lease on certificate {cert} is no longer held by this process")]
    LeaseLost {
        /// The certificate.
        cert: String,
    },

    /// An issued certificate failed verification and was not installed; the old set stays
    /// live. Retrying the download cannot help; a new order (possibly at another CA) can.
    #[error("the issued certificate was rejected: {0}")]
    Verify(#[from] VerifyError),

    /// A copy-out owner or group name does not exist on this system. Retrying cannot help
    /// until the user or group is created or the config is fixed.
    #[error("no {kind} named {name:?} on this system (looked in {source_file})")]
    UnknownOwner {
        /// "user" or "group".
        kind: &'static str,
        /// The name as configured.
        name: String,
        /// The file searched.
        source_file: &'static str,
    },

    /// A path that must be valid UTF-8 (stored in the database) is not. Retrying cannot help.
    #[error("path {0:?} is not valid UTF-8")]
    NonUtf8Path(PathBuf),
}

impl StoreError {
    /// The failure class the ledger records for this error. Verification failures are the
    /// CA's doing (it answered with an unusable certificate, like an unparseable success), so
    /// they count as [`FailureClass::CaUnavailable`] and allow failover — except a freshly
    /// issued certificate that is not valid yet or already expired by our clock, which
    /// points at our clock ([`VerifyError::blames_our_clock`]). Everything else is
    /// [`FailureClass::Local`].
    pub fn failure_class(&self) -> FailureClass {
        match self {
            StoreError::Verify(v) if !v.blames_our_clock() => FailureClass::CaUnavailable,
            _ => FailureClass::Local,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn db(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |e| StoreError::Database {
            op,
            source: Box::new(e),
        }
    }
}

/// A hint for the errors an operator can act on.
fn io_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::StorageFull => " (free space on that file system; the old files stay live)",
        io::ErrorKind::ReadOnlyFilesystem => {
            " (the file system is read-only; remount it read-write)"
        }
        io::ErrorKind::PermissionDenied => {
            " (check the owner and mode of the path and its parents)"
        }
        _ => "",
    }
}

impl VerifyError {
    /// Whether the rejection is about dates only: a certificate the CA has just issued that
    /// is not valid yet, or already expired, by our clock. The local clock is then the
    /// likely culprit (a CA issues certificates valid from about now), so the certificate
    /// is worth installing once the clock is right, and ordering another cannot help.
    pub fn blames_our_clock(&self) -> bool {
        matches!(
            self,
            VerifyError::NotYetValid { .. } | VerifyError::Expired { .. }
        )
    }
}

/// Why an issued certificate was rejected before installation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The chain holds no PEM `CERTIFICATE` block at all (empty, HTML, garbage).
    #[error("no PEM certificate found in the chain")]
    NoCertificate,
    /// A PEM block is malformed.
    #[error("the chain's PEM is malformed: {0}")]
    BadPem(String),
    /// A certificate in the chain does not parse as X.509.
    #[error("certificate {index} of the chain does not parse: {reason}")]
    BadCertificate {
        /// Position in the chain, 0 = leaf.
        index: usize,
        /// The parser's complaint.
        reason: String,
    },
    /// The private key does not parse (or is not PKCS#8 ECDSA P-256/P-384 or RSA).
    #[error("the private key does not parse: {0}")]
    BadKey(String),
    /// The leaf's public key is not the private key's.
    #[error("the certificate's public key does not match the private key")]
    KeyMismatch,
    /// The leaf's key type is not the configured one.
    #[error("the certificate's key is {found}, but {expected} is configured")]
    WrongKeyType {
        /// The configured key type.
        expected: KeyType,
        /// What the certificate holds ("unknown" when not one renewd issues).
        found: String,
    },
    /// A configured domain is not among the leaf's SANs.
    #[error("the certificate does not cover {0} (not among its subjectAltNames)")]
    MissingName(DomainName),
    /// The leaf is not valid yet, even allowing for clock skew.
    #[error("the certificate is not valid before {not_before} (now is {now})")]
    NotYetValid {
        /// Its notBefore.
        not_before: String,
        /// Our clock.
        now: String,
    },
    /// The leaf has expired already.
    #[error("the certificate expired at {not_after} (now is {now})")]
    Expired {
        /// Its notAfter.
        not_after: String,
        /// Our clock.
        now: String,
    },
    /// notAfter is not after notBefore.
    #[error("the certificate's validity is empty or inverted ({not_before} .. {not_after})")]
    InvertedValidity {
        /// Its notBefore.
        not_before: String,
        /// Its notAfter.
        not_after: String,
    },
    /// Certificate `index` was not issued by certificate `index + 1` (subject/issuer names
    /// differ or the signature does not verify): the chain is out of order or broken.
    #[error("chain certificate {} does not issue certificate {index}: {reason}", index + 1)]
    BrokenChain {
        /// The certificate whose issuer is wrong.
        index: usize,
        /// What did not match.
        reason: &'static str,
    },
}
