//! The inventory scan: what is installed for each configured certificate, read from its
//! `live/` files. Every way a set can be wrong (missing, unreadable, corrupt, no longer
//! matching the config) is a state and a reason to issue, never an error.
//!
//! The scan is parallel over the machine's cores (scoped threads taking chunks of
//! certificates), reuses its read buffers, and keeps only the compact [`CertFacts`], so
//! 100,000 certificates scan in seconds within tens of megabytes. The key check compares
//! the key file's public half with the certificate's (no cryptography; installation proved
//! the private half).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::thread;

use renewd_core::{CertName, DomainName, KeyType, RenewalReason};

use crate::cert_store::CertStore;
use crate::der::{PublicKeyBits, first_block_into};
use crate::facts::{CertFacts, Interner, parse_leaf};

/// One configured certificate, as the scan needs it (borrowed from the config).
#[derive(Debug, Clone, Copy)]
pub struct CertSpec<'a> {
    /// Its name.
    pub name: &'a CertName,
    /// The names it must cover.
    pub domains: &'a [DomainName],
    /// The key type it must have.
    pub key_type: KeyType,
}

/// What is installed for a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstalledState {
    /// A complete set that matches the config.
    Valid(CertFacts),
    /// Nothing installed (no `live`, or it points nowhere).
    Missing,
    /// A file exists but cannot be read.
    Unreadable {
        /// Which file of the set.
        file: &'static str,
        /// Why.
        kind: io::ErrorKind,
    },
    /// A file is missing from the set or does not parse.
    Corrupt {
        /// Which file of the set.
        file: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A sound set that no longer fits the config (or whose key is not its certificate's).
    Mismatch {
        /// The certificate's facts.
        facts: CertFacts,
        /// What does not fit.
        kind: Mismatch,
    },
}

/// How an installed set fails to fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// Configured names the certificate does not cover (a name added to the config).
    NamesChanged {
        /// The names not covered.
        missing: Vec<DomainName>,
    },
    /// The configured key type changed.
    KeyTypeChanged {
        /// Configured.
        expected: KeyType,
        /// Installed (`None`: a type renewd does not issue).
        found: Option<KeyType>,
    },
    /// `privkey.pem` is not the certificate's key.
    KeyDoesNotMatch,
}

impl InstalledState {
    /// A one-word label for `renewd status`.
    pub fn label(&self) -> &'static str {
        match self {
            InstalledState::Valid(_) => "valid",
            InstalledState::Missing => "missing",
            InstalledState::Unreadable { .. } => "unreadable",
            InstalledState::Corrupt { .. } => "corrupt",
            InstalledState::Mismatch { .. } => "mismatch",
        }
    }

    /// The certificate's facts, when it parsed.
    pub fn facts(&self) -> Option<&CertFacts> {
        match self {
            InstalledState::Valid(f) | InstalledState::Mismatch { facts: f, .. } => Some(f),
            _ => None,
        }
    }

    /// Why this state calls for a new certificate now; `None` for a valid set (whose
    /// renewal the scheduler times).
    pub fn renewal_reason(&self) -> Option<RenewalReason> {
        match self {
            InstalledState::Valid(_) => None,
            InstalledState::Missing => Some(RenewalReason::Missing),
            InstalledState::Unreadable { .. } | InstalledState::Corrupt { .. } => {
                Some(RenewalReason::Corrupt)
            }
            InstalledState::Mismatch { .. } => Some(RenewalReason::Mismatch),
        }
    }
}

/// Certificates per unit of work handed to a scan thread.
const CHUNK: usize = 256;

impl CertStore {
    /// Scans the live set of every certificate in `certs`, in parallel. The result has one
    /// state per certificate, in the same order.
    pub fn scan(&self, certs: &[CertSpec<'_>]) -> Vec<InstalledState> {
        let mut out: Vec<InstalledState> = vec![InstalledState::Missing; certs.len()];
        let threads = thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(certs.len().div_ceil(CHUNK))
            .max(1);
        let work = Mutex::new(certs.chunks(CHUNK).zip(out.chunks_mut(CHUNK)));
        thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    let mut scanner = Scanner::new(self.root());
                    loop {
                        let next = work.lock().unwrap_or_else(PoisonError::into_inner).next();
                        let Some((specs, slots)) = next else { break };
                        for (spec, slot) in specs.iter().zip(slots) {
                            *slot = scanner.scan_one(spec);
                        }
                    }
                });
            }
        });
        out
    }

    /// Scans one certificate.
    pub fn scan_one(&self, cert: &CertSpec<'_>) -> InstalledState {
        Scanner::new(self.root()).scan_one(cert)
    }
}

/// One thread's reusable buffers.
struct Scanner<'r> {
    root: &'r Path,
    path: PathBuf,
    file: Vec<u8>,
    b64: Vec<u8>,
    der: Vec<u8>,
    interner: Interner,
}

impl<'r> Scanner<'r> {
    fn new(root: &'r Path) -> Self {
        Self {
            root,
            path: PathBuf::new(),
            file: Vec::with_capacity(8192),
            b64: Vec::with_capacity(8192),
            der: Vec::with_capacity(4096),
            interner: Interner::default(),
        }
    }

    fn set_path(&mut self, name: &CertName, file: &str) {
        self.path.as_mut_os_string().clear();
        self.path.push(self.root);
        self.path.push(name.as_str());
        self.path.push("live");
        self.path.push(file);
    }

    /// Reads a live file into `self.file`.
    fn read(&mut self, name: &CertName, file: &'static str) -> Result<(), InstalledState> {
        self.set_path(name, file);
        self.file.clear();
        let result = File::open(&self.path).and_then(|mut f| f.read_to_end(&mut self.file));
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(self.missing(name, file)),
            Err(e) => Err(InstalledState::Unreadable {
                file,
                kind: e.kind(),
            }),
        }
    }

    /// A file not found: the whole set is missing when `live` is, else the set is broken.
    fn missing(&mut self, name: &CertName, file: &'static str) -> InstalledState {
        self.set_path(name, "");
        if self.path.is_dir() {
            InstalledState::Corrupt {
                file,
                reason: "missing from the live set".to_string(),
            }
        } else {
            InstalledState::Missing
        }
    }

    fn exists(&mut self, name: &CertName, file: &'static str) -> Result<(), InstalledState> {
        self.set_path(name, file);
        match self.path.metadata() {
            Ok(m) if m.is_file() => Ok(()),
            Ok(_) => Err(InstalledState::Corrupt {
                file,
                reason: "not a regular file".to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(self.missing(name, file)),
            Err(e) => Err(InstalledState::Unreadable {
                file,
                kind: e.kind(),
            }),
        }
    }

    fn scan_one(&mut self, spec: &CertSpec<'_>) -> InstalledState {
        match self.try_scan(spec) {
            Ok(state) | Err(state) => state,
        }
    }

    fn try_scan(&mut self, spec: &CertSpec<'_>) -> Result<InstalledState, InstalledState> {
        let corrupt = |file, reason: String| InstalledState::Corrupt { file, reason };
        let name = spec.name;

        self.read(name, "cert.pem")?;
        match first_block_into(&self.file, "CERTIFICATE", &mut self.b64, &mut self.der) {
            Ok(true) => {}
            Ok(false) => return Err(corrupt("cert.pem", "holds no PEM certificate".into())),
            Err(e) => return Err(corrupt("cert.pem", e)),
        }
        let leaf = parse_leaf(&self.der, &mut self.interner)
            .map_err(|e| corrupt("cert.pem", format!("does not parse: {e}")))?;

        self.read(name, "privkey.pem")?;
        let key = ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"]
            .into_iter()
            .find_map(|label| {
                match first_block_into(&self.file, label, &mut self.b64, &mut self.der) {
                    Ok(true) => Some(PublicKeyBits::from_private_der(label, &self.der)),
                    _ => None,
                }
            })
            .flatten()
            .ok_or_else(|| corrupt("privkey.pem", "holds no readable private key".into()))?;

        self.exists(name, "chain.pem")?;
        self.exists(name, "fullchain.pem")?;

        let facts = leaf.facts;
        let kind = if leaf.public_key.as_ref() != Some(&key) {
            Some(Mismatch::KeyDoesNotMatch)
        } else if facts.key_type() != Some(spec.key_type) {
            Some(Mismatch::KeyTypeChanged {
                expected: spec.key_type,
                found: facts.key_type(),
            })
        } else {
            let missing: Vec<DomainName> = spec
                .domains
                .iter()
                .filter(|d| !facts.covers(d.as_str()))
                .cloned()
                .collect();
            (!missing.is_empty()).then_some(Mismatch::NamesChanged { missing })
        };
        Ok(match kind {
            Some(kind) => InstalledState::Mismatch { facts, kind },
            None => InstalledState::Valid(facts),
        })
    }
}

#[cfg(test)]
#[path = "inventory_tests.rs"]
mod tests;
