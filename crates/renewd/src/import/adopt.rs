//! Adopting a certbot certificate: verified and installed into renewd's certificate store
//! (`STATE/certs/NAME/live`), and its facts written to the state store so the scheduler
//! renews it on time. The issuing CA is the one the config maps certbot's server to; the
//! account is unknown (renewd uses its own), so no ARI `replaces` is sent for it.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, lchown};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use renewd_core::CaName;
use renewd_store::{
    AriState, CertSpec, CertStore, Expectations, InstalledCert, InstalledState, StateStore,
    StoreError, VerifyError, verify_issued,
};

use super::lineage::Lineage;
use super::plan::CertEntry;

/// How far in the future a notBefore may lie (the CA's clock running ahead of ours).
const SKEW: Duration = Duration::from_secs(24 * 3600);

/// What adopting one lineage did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopted {
    /// Installed as this new version.
    Installed(u32),
    /// The live set already was this certificate (an earlier import).
    AlreadyLive,
}

/// Why a lineage was not adopted.
#[derive(Debug)]
pub enum NotAdopted {
    /// The certificate has expired: nothing worth keeping; renewd issues a new one.
    Expired(String),
    /// Anything else (a key that does not match, a broken chain, the disk).
    Failed(String),
}

/// Installs `lineage`'s certificate as `entry` and records it in `store` (any backend: only
/// the `StateStore` trait is used).
pub fn adopt(
    certs: &CertStore,
    store: &dyn StateStore,
    lineage: &Lineage,
    entry: &CertEntry,
    now: DateTime<Utc>,
) -> Result<Adopted, NotAdopted> {
    let failed = |e: StoreError| NotAdopted::Failed(e.to_string());
    let spec = CertSpec {
        name: &entry.name,
        domains: &entry.domains,
        key_type: entry.key,
    };
    let adopted = match certs.scan_one(&spec) {
        InstalledState::Valid(f) | InstalledState::Mismatch { facts: f, .. }
            if f.serial_hex() == lineage.leaf.serial =>
        {
            Adopted::AlreadyLive
        }
        _ => {
            let expect = Expectations {
                domains: &entry.domains,
                key_type: None,
                now,
                skew: SKEW,
            };
            let set = verify_issued(&lineage.fullchain_pem, &lineage.privkey_pem, &expect)
                .map_err(|e| match e {
                    VerifyError::Expired { .. } => NotAdopted::Expired(e.to_string()),
                    e => NotAdopted::Failed(e.to_string()),
                })?;
            Adopted::Installed(
                certs
                    .install_verified(&entry.name, &set, None)
                    .map_err(failed)?
                    .version,
            )
        }
    };
    record(store, &entry.name, lineage, &entry.ca).map_err(failed)?;
    Ok(adopted)
}

fn record(
    store: &dyn StateStore,
    name: &renewd_core::CertName,
    lineage: &Lineage,
    ca: &CaName,
) -> Result<(), StoreError> {
    let leaf = &lineage.leaf;
    let installed = InstalledCert {
        serial: leaf.serial.clone(),
        not_before: leaf.not_before,
        not_after: leaf.not_after,
        issuer_ca: Some(ca.clone()),
        // renewd orders with its own account: ARI `replaces` must not name this one.
        account_url: None,
        ari_cert_id: None,
    };
    store.update_cert_state(name, &mut |st| {
        if st.installed.as_ref().map(|i| &i.serial) != Some(&installed.serial) {
            // Whatever was known (ARI window, failures) was about another certificate.
            st.ari = AriState::default();
            st.installed = Some(installed.clone());
        }
    })?;
    Ok(())
}

/// When this process runs as root and `state_dir` belongs to another user (the `renewd`
/// user the daemon runs as), hands what the import created under it to that user: a
/// daemon that cannot read its certificates or write its database does not renew them.
pub fn align_owner(state_dir: &Path, created: &[std::path::PathBuf]) -> io::Result<()> {
    let me = fs::metadata("/proc/self")?.uid();
    let dir = fs::metadata(state_dir)?;
    if me != 0 || (dir.uid(), dir.gid()) == (0, 0) {
        return Ok(());
    }
    for path in created {
        chown_tree(path, dir.uid(), dir.gid())?;
    }
    Ok(())
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    lchown(path, Some(uid), Some(gid))?;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}
