//! The crate's one error type. Failures of a renewal itself are not errors of the issuer:
//! they are classified outcomes ([`crate::JobResult`]) written to the store.

use renewd_core::CaName;
use renewd_store::StoreError;

/// What can stop the issuer from starting or reloading.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// A CA's client could not be built (a trust-root file unreadable or holding no
    /// certificate). Retrying cannot help until the config or the file is fixed.
    #[error("CA {ca}: {source}")]
    CaSetup {
        /// The CA.
        ca: CaName,
        /// What failed.
        #[source]
        source: renewd_acme::Error,
    },
    /// The state store failed. Retrying may help once the disk or lock is fine again.
    #[error(transparent)]
    Store(#[from] StoreError),
}
