use std::os::unix::fs::{MetadataExt, PermissionsExt};

use chrono::Utc;
use renewd_core::{DomainName, KeyType};

use super::*;
use crate::error::VerifyError;

use crate::test_pki as pki;

struct Fixture {
    dir: tempfile::TempDir,
    store: CertStore,
    ca: pki::TestCa,
    name: CertName,
    domains: Vec<DomainName>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            store: CertStore::new(dir.path()),
            dir,
            ca: pki::TestCa::new("Store"),
            name: CertName::new("www").unwrap(),
            domains: vec![DomainName::new("www.example.com").unwrap()],
        }
    }

    fn expect(&self) -> Expectations<'_> {
        Expectations {
            domains: &self.domains,
            key_type: Some(KeyType::EcdsaP256),
            now: Utc::now(),
            skew: std::time::Duration::from_secs(60),
        }
    }

    fn install(
        &self,
        copy_out: Option<&CopyOut>,
    ) -> Result<(Installed, String, String), StoreError> {
        let (chain, key) = self.ca.issue(&["www.example.com"]);
        let done = self
            .store
            .install(&self.name, &chain, &key, &self.expect(), copy_out)?;
        Ok((done, chain, key))
    }

    fn live(&self, file: &str) -> String {
        fs::read_to_string(self.store.live_dir(&self.name).join(file)).unwrap()
    }

    /// Every path under the store, relative, sorted.
    fn tree(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![self.store.root().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in fs::read_dir(&dir).unwrap() {
                let e = e.unwrap();
                let p = e.path();
                out.push(
                    p.strip_prefix(self.store.root())
                        .unwrap()
                        .display()
                        .to_string(),
                );
                if e.file_type().unwrap().is_dir() {
                    stack.push(p);
                }
            }
        }
        out.sort();
        out
    }
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn installs_a_version_and_points_live_at_it() {
    let f = Fixture::new();
    let (done, chain, key) = f.install(None).unwrap();
    assert_eq!(done.version, 1);
    assert!(done.copy_out_error.is_none());
    assert_eq!(f.store.live_version(&f.name).unwrap(), Some(1));
    let live = f.store.live_dir(&f.name);
    assert_eq!(fs::read_link(&live).unwrap(), Path::new("archive/1"));
    assert_eq!(f.live("privkey.pem").trim(), key.trim());
    assert_eq!(f.live("fullchain.pem"), chain);
    assert_eq!(
        f.live("fullchain.pem"),
        format!("{}{}", f.live("cert.pem"), f.live("chain.pem"))
    );
    let cert_dir = f.store.cert_dir(&f.name);
    assert_eq!(mode(&cert_dir.join("archive")), 0o700);
    assert_eq!(mode(&cert_dir.join("archive/1/privkey.pem")), 0o600);
    assert_eq!(mode(&cert_dir.join("archive/1/cert.pem")) & 0o600, 0o600);
    assert_eq!(done.facts.sans().collect::<Vec<_>>(), ["www.example.com"]);
    assert_eq!(
        f.tree(),
        [
            "www",
            "www/archive",
            "www/archive/1",
            "www/archive/1/cert.pem",
            "www/archive/1/chain.pem",
            "www/archive/1/fullchain.pem",
            "www/archive/1/privkey.pem",
            "www/live",
        ]
    );
}

#[test]
fn new_versions_replace_live_and_old_ones_are_pruned() {
    let mut f = Fixture::new();
    f.store = f.store.clone().keep_versions(2);
    for expected in 1..=4 {
        let (done, _, key) = f.install(None).unwrap();
        assert_eq!(done.version, expected);
        assert_eq!(f.live("privkey.pem").trim(), key.trim());
    }
    assert_eq!(f.store.versions(&f.name).unwrap(), [3, 4]);
    assert_eq!(f.store.live_version(&f.name).unwrap(), Some(4));
}

#[test]
fn a_rejected_certificate_leaves_the_old_set_live() {
    let f = Fixture::new();
    let (_, chain1, _) = f.install(None).unwrap();
    let before = f.tree();
    let (chain, _) = f.ca.issue(&["www.example.com"]);
    let wrong_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let err = f
        .store
        .install(&f.name, &chain, &wrong_key, &f.expect(), None)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Verify(VerifyError::KeyMismatch)),
        "{err}"
    );
    assert_eq!(
        err.failure_class(),
        renewd_core::FailureClass::CaUnavailable
    );
    let (chain, key) = f.ca.issue(&["other.example.com"]);
    assert!(matches!(
        f.store.install(&f.name, &chain, &key, &f.expect(), None),
        Err(StoreError::Verify(VerifyError::MissingName(_)))
    ));
    assert_eq!(f.tree(), before);
    assert_eq!(f.live("fullchain.pem"), chain1);
}

#[test]
fn recovery_removes_leftovers_but_not_the_live_set() {
    let f = Fixture::new();
    f.install(None).unwrap();
    let before = f.tree();
    let cert_dir = f.store.cert_dir(&f.name);
    let tmp_version = cert_dir.join(format!("archive/.2{TMP_MARK}0123456789abcdef"));
    fs::create_dir(&tmp_version).unwrap();
    fs::write(tmp_version.join("privkey.pem"), "half").unwrap();
    symlink(
        "archive/2",
        cert_dir.join(format!(".live{TMP_MARK}feedfacefeedface")),
    )
    .unwrap();
    let incomplete = cert_dir.join("archive/3");
    fs::create_dir(&incomplete).unwrap();
    fs::write(incomplete.join("cert.pem"), "x").unwrap();
    // Another certificate directory with only leftovers.
    let other = f.store.root().join("api/archive");
    fs::create_dir_all(other.join(format!(".1{TMP_MARK}00"))).unwrap();

    let removed = f.store.recover().unwrap();
    assert_eq!(removed.len(), 4, "{removed:?}");
    let mut expected = before;
    expected.extend(["api".to_string(), "api/archive".to_string()]);
    expected.sort();
    assert_eq!(f.tree(), expected);
    // Nothing left to do.
    assert!(f.store.recover().unwrap().is_empty());
    // Numbering continues after the live version.
    assert_eq!(f.install(None).unwrap().0.version, 2);
}

#[test]
fn copies_out_with_owner_group_and_mode() {
    let f = Fixture::new();
    let out = f.dir.path().join("nginx");
    fs::create_dir(&out).unwrap();
    let copy = CopyOut {
        cert_path: Some(out.join("www.crt")),
        fullchain_path: Some(out.join("www.fullchain.crt")),
        chain_path: None,
        key_path: Some(out.join("www.key")),
        owner: Some("root".into()),
        group: Some("0".into()),
        cert_mode: 0o644,
        key_mode: 0o640,
    };
    let (done, chain, key) = f.install(Some(&copy)).unwrap();
    assert!(done.copy_out_error.is_none());
    assert_eq!(
        fs::read_to_string(out.join("www.fullchain.crt")).unwrap(),
        chain
    );
    assert_eq!(
        fs::read_to_string(out.join("www.key")).unwrap().trim(),
        key.trim()
    );
    let meta = fs::metadata(out.join("www.key")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    assert_eq!(mode(&out.join("www.crt")), 0o644);
    assert_eq!(fs::read_dir(&out).unwrap().count(), 3, "no temp files");

    // A second install replaces the copies.
    let (_, chain2, _) = f.install(Some(&copy)).unwrap();
    assert_eq!(
        fs::read_to_string(out.join("www.fullchain.crt")).unwrap(),
        chain2
    );

    // Copying from live rewrites them (e.g. after a crash between the swap and the copy).
    fs::write(out.join("www.fullchain.crt"), "stale").unwrap();
    f.store.copy_out_live(&f.name, &copy).unwrap();
    assert_eq!(
        fs::read_to_string(out.join("www.fullchain.crt")).unwrap(),
        chain2
    );

    fs::write(out.join(format!(".www.key{TMP_MARK}abc")), "x").unwrap();
    assert_eq!(copy.clean_temp_files().unwrap().len(), 1);
    assert_eq!(fs::read_dir(&out).unwrap().count(), 3);
}

#[test]
fn a_failing_copy_out_fails_the_install_before_anything_changes() {
    let f = Fixture::new();
    let (_, chain1, _) = f.install(None).unwrap();
    let before = f.tree();
    let out = f.dir.path().join("out");
    fs::create_dir(&out).unwrap();
    let copy = CopyOut {
        cert_path: Some(out.join("a.crt")),
        key_path: Some(out.join("a.key")),
        owner: Some("no-such-user-renewd".into()),
        ..CopyOut::default()
    };
    let err = f.install(Some(&copy)).unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownOwner { kind: "user", .. }),
        "{err}"
    );
    // A destination directory that does not exist, after one file staged fine.
    let copy = CopyOut {
        cert_path: Some(out.join("a.crt")),
        key_path: Some(out.join("missing-dir/a.key")),
        ..CopyOut::default()
    };
    let err = f.install(Some(&copy)).unwrap_err();
    assert!(err.to_string().contains("missing-dir/a.key"), "{err}");
    assert_eq!(f.tree(), before);
    assert_eq!(f.live("fullchain.pem"), chain1);
    assert_eq!(
        fs::read_dir(&out).unwrap().count(),
        0,
        "nothing copied, no temp files"
    );
}
