//! http-01 webroot mode on a real file system.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use renewd_acme::ChallengeSolver;
use renewd_local::{Error, WebrootSolver};

use crate::support::{KEY_AUTH, http01_answer, local_error};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[tokio::test]
async fn writes_readable_files_and_removes_only_what_it_created() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir(&root).unwrap();
    let solver = WebrootSolver::new(&root);
    let challenge_dir = solver.challenge_dir();
    assert_eq!(challenge_dir, root.join(".well-known/acme-challenge"));

    let one = http01_answer("tok-1", KEY_AUTH);
    let two = http01_answer("tok-2", "tok-2.thumbprint-abc");
    solver.present(&one).await.unwrap();
    solver.present(&two).await.unwrap();
    let file = challenge_dir.join("tok-1");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), KEY_AUTH);
    // Readable by a web server running as another user, whatever the umask.
    assert_eq!(mode(&file), 0o644);
    assert_eq!(mode(&challenge_dir), 0o755);
    assert_eq!(mode(&root.join(".well-known")), 0o755);
    // Nothing but the two challenge files: no temporary files left behind.
    let mut names: Vec<_> = std::fs::read_dir(&challenge_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["tok-1", "tok-2"]);

    solver.cleanup(&one).await.unwrap();
    assert!(!file.exists());
    assert!(challenge_dir.exists(), "tok-2 is still there");
    solver.cleanup(&two).await.unwrap();
    assert!(
        !root.join(".well-known").exists(),
        "renewd created both directories and they are empty: removed"
    );
    // A cleanup of something already gone is fine.
    solver.cleanup(&two).await.unwrap();
}

#[tokio::test]
async fn keeps_directories_it_did_not_create() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join(".well-known")).unwrap();
    std::fs::write(root.join(".well-known/security.txt"), "Contact: x").unwrap();
    let solver = WebrootSolver::new(root);
    let answer = http01_answer("tok-1", KEY_AUTH);
    solver.present(&answer).await.unwrap();
    solver.cleanup(&answer).await.unwrap();
    assert!(
        !root.join(".well-known/acme-challenge").exists(),
        "created by renewd: removed"
    );
    assert!(
        root.join(".well-known/security.txt").exists(),
        "the operator's .well-known stays"
    );
}

#[tokio::test]
async fn a_missing_root_or_a_bad_token_is_a_local_error() {
    let dir = tempfile::tempdir().unwrap();
    let solver = WebrootSolver::new(dir.path().join("missing"));
    let err = solver
        .present(&http01_answer("tok-1", KEY_AUTH))
        .await
        .unwrap_err();
    match local_error(&err) {
        Error::Webroot { path, .. } => assert_eq!(path, &dir.path().join("missing")),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("missing"), "{err}");

    let solver = WebrootSolver::new(dir.path());
    let err = solver
        .present(&http01_answer("../escape", KEY_AUTH))
        .await
        .unwrap_err();
    assert!(matches!(local_error(&err), Error::BadToken { .. }));
    assert!(!dir.path().join("escape").exists());
    assert!(!dir.path().join(".well-known").exists());
}
