//! What the loader reads from the process environment, and how much of the secrets the
//! caller needs, passed in explicitly.

use std::path::PathBuf;

/// The parts of the process environment that affect loading, so tests can supply their own
/// without touching the real environment, and which secrets the caller needs read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadEnv {
    /// `$CREDENTIALS_DIRECTORY`, set by systemd for a unit with `LoadCredential=`; where
    /// `eab_hmac_key_credential` names are looked up.
    pub credentials_directory: Option<PathBuf>,
    /// Which EAB MAC keys are read; [`SecretsMode::Required`] unless the caller says.
    pub secrets: SecretsMode,
}

/// How the loader treats EAB MAC keys (`eab_hmac_key_file`, `eab_hmac_key_credential`).
///
/// Only the daemon needs them, to create an account. Commands an operator runs outside
/// `renewd.service` have no `$CREDENTIALS_DIRECTORY` — systemd sets it only inside the unit
/// (`LoadCredential=`) — and must still work with a config that names a credential.
/// Whatever the mode, names and paths are validated; a key that was not read leaves
/// [`Eab::hmac_key`](crate::Eab::hmac_key) `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretsMode {
    /// Read every key; a credential without `$CREDENTIALS_DIRECTORY` is an error.
    /// `renewd run` (start and reload).
    #[default]
    Required,
    /// Read every key that can be read here. A credential while `$CREDENTIALS_DIRECTORY` is
    /// unset is not read and becomes a warning
    /// ([`LoadedConfig::warnings`](crate::LoadedConfig::warnings)); with the variable set, a
    /// missing or bad credential is still an error. `renewd check`, and `renewd renew` run
    /// in its own process (which needs the key only to create an account).
    DeferCredentials,
    /// Read no key at all. `renewd status`, `ledger` and `ca`, which never talk to a CA.
    Ignore,
}

impl LoadEnv {
    /// Reads `$CREDENTIALS_DIRECTORY` from the process environment (unset or empty: none);
    /// secrets [`SecretsMode::Required`].
    pub fn from_process() -> Self {
        Self {
            credentials_directory: std::env::var_os("CREDENTIALS_DIRECTORY")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            secrets: SecretsMode::Required,
        }
    }

    /// An environment with the given credentials directory; secrets
    /// [`SecretsMode::Required`].
    pub fn with_credentials_directory(dir: impl Into<PathBuf>) -> Self {
        Self {
            credentials_directory: Some(dir.into()),
            secrets: SecretsMode::Required,
        }
    }

    /// The same environment with `mode` for the secrets.
    pub fn with_secrets(self, mode: SecretsMode) -> Self {
        Self {
            secrets: mode,
            ..self
        }
    }
}
