//! Files the configs under test point at, made fresh in a temp directory for each test.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use renewd_config::LoadEnv;

/// The base64url MAC key written to `good.eab` and to the `zerossl.eab` credential.
pub const MAC_KEY_B64URL: &str = "c2VjcmV0LW1hYy1rZXktZm9yLXRlc3RzLW9ubHk_-w";

/// A temp directory with every fixture file:
///
/// | file | content |
/// |---|---|
/// | `good.eab` (0600) | [`MAC_KEY_B64URL`] |
/// | `open.eab` (0644) | the same key, too open |
/// | `std.eab` (0600) | standard base64 (`+`, `/`) |
/// | `empty.eab` (0600) | nothing |
/// | `root.pem` | a freshly generated self-signed certificate |
/// | `notpem.pem` | text, no PEM |
/// | `broken.pem` | a CERTIFICATE block with invalid base64 |
/// | `adir/` | a directory |
/// | `creds/zerossl.eab` | a valid key (the credentials directory) |
/// | `creds/bad.eab` | an invalid key |
#[derive(Debug)]
pub struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let f = Fixture { dir };
        f.write("good.eab", MAC_KEY_B64URL, 0o600);
        f.write("open.eab", MAC_KEY_B64URL, 0o644);
        f.write("std.eab", "ab+cd/ef", 0o600);
        f.write("empty.eab", "", 0o600);
        f.write("root.pem", &self_signed_pem(), 0o644);
        f.write("notpem.pem", "this is not PEM\n", 0o644);
        f.write(
            "broken.pem",
            "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n",
            0o644,
        );
        fs::create_dir(f.path("adir")).unwrap();
        fs::create_dir(f.path("creds")).unwrap();
        f.write("creds/zerossl.eab", &format!("{MAC_KEY_B64URL}\n"), 0o400);
        f.write("creds/bad.eab", "not*base64url", 0o400);
        f
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, content: &str, mode: u32) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    /// `$CREDENTIALS_DIRECTORY` = `creds/`.
    pub fn env(&self) -> LoadEnv {
        LoadEnv::with_credentials_directory(self.path("creds"))
    }

    /// Replaces `@TMP@` with this directory.
    pub fn subst(&self, text: &str) -> String {
        text.replace("@TMP@", &self.root().display().to_string())
    }
}

/// A PEM certificate, generated now (no key material is committed).
pub fn self_signed_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["test-root.invalid".to_string()]).unwrap();
    params.self_signed(&key).unwrap().pem()
}
