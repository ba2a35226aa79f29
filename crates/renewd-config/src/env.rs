//! What the loader reads from the process environment, passed in explicitly.

use std::path::PathBuf;

/// The parts of the process environment that affect loading, so tests can supply their own
/// without touching the real environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadEnv {
    /// `$CREDENTIALS_DIRECTORY`, set by systemd for a unit with `LoadCredential=`; where
    /// `eab_hmac_key_credential` names are looked up.
    pub credentials_directory: Option<PathBuf>,
}

impl LoadEnv {
    /// Reads `$CREDENTIALS_DIRECTORY` from the process environment (unset or empty: none).
    pub fn from_process() -> Self {
        Self {
            credentials_directory: std::env::var_os("CREDENTIALS_DIRECTORY")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        }
    }

    /// An environment with the given credentials directory.
    pub fn with_credentials_directory(dir: impl Into<PathBuf>) -> Self {
        Self {
            credentials_directory: Some(dir.into()),
        }
    }
}
