//! Files the config names and that are read at load time: EAB MAC keys (from a file or a
//! systemd credential) and trust roots. A message never contains a secret's bytes.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use toml::Spanned;

use super::{Check, Checked};
use crate::env::SecretsMode;
use crate::model::{SecretSource, TrustRoot};
use crate::secret::Secret;

impl Check<'_> {
    /// `eab_hmac_key_file`: absolute, a regular file, no group/other permissions, one line
    /// of base64url. Under [`SecretsMode::Ignore`] only the path is checked.
    pub(crate) fn secret_file(
        &mut self,
        v: &Spanned<String>,
    ) -> Checked<(Option<Secret>, SecretSource)> {
        let path = self.abs_path(v, "eab_hmac_key_file")?;
        if self.env.secrets == SecretsMode::Ignore {
            return Ok((None, SecretSource::File(path)));
        }
        let shown = path.display();
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                return self.report(
                    v.span(),
                    format!("cannot read the EAB MAC key file {shown}: {e}"),
                );
            }
        };
        if !meta.is_file() {
            return self.report(
                v.span(),
                format!("the EAB MAC key file {shown} is not a regular file"),
            );
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return self.report(
                v.span(),
                format!("the EAB MAC key file {shown} is accessible by group or others (mode {mode:04o}); make it private: chmod 600 {shown}"),
            );
        }
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) => {
                return self.report(
                    v.span(),
                    format!("cannot read the EAB MAC key file {shown}: {e}"),
                );
            }
        };
        match decode_mac_key(&text) {
            Ok(key) => Ok((Some(Secret::new(key)), SecretSource::File(path))),
            Err(why) => self.report(v.span(), format!("the EAB MAC key in {shown} {why}")),
        }
    }

    /// `eab_hmac_key_credential`: a file name in `$CREDENTIALS_DIRECTORY`. With the
    /// variable unset, an error under [`SecretsMode::Required`], a warning under
    /// [`SecretsMode::DeferCredentials`]; under [`SecretsMode::Ignore`] only the name is
    /// checked.
    pub(crate) fn secret_credential(
        &mut self,
        v: &Spanned<String>,
    ) -> Checked<(Option<Secret>, SecretSource)> {
        let name = v.get_ref();
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
            return self.report(
                v.span(),
                format!("eab_hmac_key_credential {name:?} must be a credential name (a file name, no '/'), as in \"zerossl.eab\""),
            );
        }
        let dir = self.env.credentials_directory.clone();
        let unread = SecretSource::Credential {
            name: name.clone(),
            path: dir.as_ref().map(|d| d.join(name)),
        };
        let unit_hint = format!("LoadCredential={name}:/etc/renewd/credentials/{name}");
        let dir = match (dir, self.env.secrets) {
            (_, SecretsMode::Ignore) => return Ok((None, unread)),
            (Some(dir), _) => dir,
            (None, SecretsMode::DeferCredentials) => {
                self.problems.warn(
                    v.span(),
                    format!("eab_hmac_key_credential {name:?} not checked: $CREDENTIALS_DIRECTORY is unset (the credential is provided by systemd's LoadCredential= inside renewd.service)"),
                );
                return Ok((None, unread));
            }
            (None, _) => {
                return self.report(
                    v.span(),
                    format!("eab_hmac_key_credential = {name:?} needs $CREDENTIALS_DIRECTORY, which is not set; run renewd from its systemd unit with {unit_hint}, or use eab_hmac_key_file instead"),
                );
            }
        };
        let path = dir.join(name);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return self.report(
                    v.span(),
                    format!("credential {name:?} is not in $CREDENTIALS_DIRECTORY ({}); add {unit_hint} to the unit", dir.display()),
                );
            }
            Err(e) => {
                return self.report(
                    v.span(),
                    format!("cannot read credential {name:?} at {}: {e}", path.display()),
                );
            }
        };
        match decode_mac_key(&text) {
            Ok(key) => Ok((
                Some(Secret::new(key)),
                SecretSource::Credential {
                    name: name.clone(),
                    path: Some(path),
                },
            )),
            Err(why) => self.report(
                v.span(),
                format!("the EAB MAC key in credential {name:?} {why}"),
            ),
        }
    }

    /// One `trust_roots` entry: an absolute path to a readable PEM file with ≥ 1 certificate.
    pub(crate) fn trust_root(&mut self, v: &Spanned<String>) -> Checked<TrustRoot> {
        let path = self.abs_path(v, "trust_roots")?;
        let shown = path.display();
        let bytes = match read_regular(&path) {
            Ok(b) => b,
            Err(e) => return self.report(v.span(), format!("cannot read trust root {shown}: {e}")),
        };
        let certs: Result<Vec<CertificateDer<'static>>, _> =
            CertificateDer::pem_slice_iter(&bytes).collect();
        match certs {
            Ok(certs) if !certs.is_empty() => Ok(TrustRoot { path, certs }),
            Ok(_) => self.report(
                v.span(),
                format!("trust root {shown} holds no certificate; it must be PEM with at least one -----BEGIN CERTIFICATE----- block"),
            ),
            Err(e) => self.report(v.span(), format!("trust root {shown} is not valid PEM: {e}")),
        }
    }
}

fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    if fs::metadata(path)?.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "it is a directory",
        ));
    }
    fs::read(path)
}

/// Decodes a one-line base64url MAC key (padding tolerated). The error completes a sentence
/// starting "the EAB MAC key in PATH …" and never quotes the key.
fn decode_mac_key(text: &[u8]) -> Result<Vec<u8>, String> {
    let Ok(text) = std::str::from_utf8(text) else {
        return Err("is not text; it must be one line of base64url".into());
    };
    let line = text.trim();
    if line.is_empty() {
        return Err("is empty; put the base64url MAC key the CA gave on one line".into());
    }
    if line.lines().count() > 1 {
        return Err(
            "spans several lines; it must be the base64url MAC key alone, on one line".into(),
        );
    }
    if line.contains(['+', '/']) {
        return Err("looks like standard base64 (it has '+' or '/'); the MAC key must be base64url, which uses '-' and '_' instead".into());
    }
    let unpadded = line.trim_end_matches('=');
    if let Some(pos) = unpadded.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    {
        return Err(format!(
            "is not valid base64url: character {} is not one of A-Z, a-z, 0-9, '-', '_'",
            pos + 1
        ));
    }
    URL_SAFE_NO_PAD
        .decode(unpadded)
        .map_err(|_| "is not valid base64url: its length is impossible for base64 (a character missing or extra?)".to_string())
}

#[cfg(test)]
mod tests {
    use super::decode_mac_key;

    #[test]
    fn mac_keys() {
        assert_eq!(decode_mac_key(b"aGVsbG8\n").unwrap(), b"hello");
        assert_eq!(decode_mac_key(b"aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_mac_key(b"_-8").unwrap(), [0xff, 0xef]);
        for (bad, why) in [
            (&b""[..], "is empty"),
            (b"  \n", "is empty"),
            (b"aGVs\nbG8\n", "several lines"),
            (b"ab+/", "standard base64"),
            (b"ab c", "character 3"),
            (b"a", "length is impossible"),
            (b"\xff\xfe", "not text"),
        ] {
            let err = decode_mac_key(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }
}
