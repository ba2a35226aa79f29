//! certbot's hooks are shell strings (and executables in `renewal-hooks/{pre,deploy,post}/`);
//! renewd's are argv lists run without a shell. A converted hook is
//! `["/bin/sh", "-c", SCRIPT]`, where SCRIPT sets the variables certbot's deploy hooks read
//! (`RENEWED_LINEAGE`, now renewd's live directory, and `RENEWED_DOMAINS`) and then runs
//! certbot's hooks in certbot's order: the directory's deploy hooks, the lineage's deploy
//! hook, the directory's post hooks, the lineage's post hook.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use renewd_core::DomainName;

use super::lineage::Hooks;

/// The executables in certbot's `renewal-hooks/` directories, sorted by name (certbot's
/// order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookDirs {
    /// `renewal-hooks/pre/*`.
    pub pre: Vec<PathBuf>,
    /// `renewal-hooks/deploy/*`.
    pub deploy: Vec<PathBuf>,
    /// `renewal-hooks/post/*`.
    pub post: Vec<PathBuf>,
}

impl HookDirs {
    /// Lists `dir/renewal-hooks/{pre,deploy,post}`; missing directories are empty.
    pub fn read(dir: &Path) -> Self {
        let list = |kind: &str| {
            let mut found: Vec<PathBuf> = fs::read_dir(dir.join("renewal-hooks").join(kind))
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    fs::metadata(p)
                        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                })
                .collect();
            found.sort();
            found
        };
        Self {
            pre: list("pre"),
            deploy: list("deploy"),
            post: list("post"),
        }
    }
}

/// A converted deploy hook and what to tell the operator about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Converted {
    /// The argv, when there is anything to run.
    pub argv: Option<Vec<String>>,
    /// Notes for the config.
    pub notes: Vec<String>,
}

/// The deploy hook for a lineage whose certificate renewd installs in `live` (for
/// `domains`).
pub fn deploy_hook(
    hooks: &Hooks,
    dirs: &HookDirs,
    live: &Path,
    domains: &[DomainName],
) -> Converted {
    let mut notes = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    lines.extend(
        dirs.deploy
            .iter()
            .map(|p| shell_quote(&p.to_string_lossy())),
    );
    lines.extend(hooks.deploy.iter().cloned());
    lines.extend(dirs.post.iter().map(|p| shell_quote(&p.to_string_lossy())));
    lines.extend(hooks.post.iter().cloned());
    let pre: Vec<String> = dirs
        .pre
        .iter()
        .map(|p| p.display().to_string())
        .chain(hooks.pre.iter().cloned())
        .collect();
    if !pre.is_empty() {
        notes.push(format!(
            "NOTE: not carried over: certbot ran {} before renewing; renewd runs nothing \
             before an order (a web server stopped for certbot's standalone server is not \
             needed with a webroot)",
            pre.iter()
                .map(|p| format!("{p:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if lines.is_empty() {
        return Converted { argv: None, notes };
    }
    notes.push(
        "certbot's hooks were shell strings: renewd runs them with /bin/sh -c, as user \
         renewd inside its sandbox (not root); RENEWED_LINEAGE is renewd's live directory"
            .to_string(),
    );
    if hooks.post.is_some() || !dirs.post.is_empty() {
        notes.push(
            "certbot's post hooks ran after every renewal attempt; here they run after each \
             successful installation"
                .to_string(),
        );
    }
    let domains: Vec<&str> = domains.iter().map(DomainName::as_str).collect();
    let script = format!(
        "export RENEWED_LINEAGE={} RENEWED_DOMAINS={}\n{}",
        shell_quote(&live.to_string_lossy()),
        shell_quote(&domains.join(" ")),
        lines.join("\n")
    );
    Converted {
        argv: Some(sh(script)),
        notes,
    }
}

/// certbot's `manual_auth_hook`/`manual_cleanup_hook` for dns-01, with the variables it
/// reads set from renewd's.
pub fn dns_hook(hook: &str) -> Vec<String> {
    sh(format!(
        "export CERTBOT_DOMAIN=\"$RENEWD_DOMAIN\" CERTBOT_VALIDATION=\"$RENEWD_DNS_VALUE\"\n{hook}"
    ))
}

fn sh(script: String) -> Vec<String> {
    vec!["/bin/sh".to_string(), "-c".to_string(), script]
}

/// `s` as one single-quoted shell word.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn run(argv: &[String], env: &[(&str, &str)]) -> String {
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn deploy_hooks_run_in_certbot_order_with_certbot_variables() {
        let dir = tempfile::tempdir().unwrap();
        let hooks_dir = dir.path().join("renewal-hooks/deploy");
        fs::create_dir_all(&hooks_dir).unwrap();
        let script = hooks_dir.join("10 it's.sh");
        fs::write(&script, "#!/bin/sh\necho \"dir hook $RENEWED_DOMAINS\"\n").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        // Not executable: certbot skips it, and so do we.
        fs::write(hooks_dir.join("README"), "x").unwrap();
        let dirs = HookDirs::read(dir.path());
        assert_eq!(dirs.deploy, std::slice::from_ref(&script));

        let hooks = Hooks {
            pre: Some("systemctl stop nginx".into()),
            deploy: Some("echo \"deploy $RENEWED_LINEAGE\" | tr a-z A-Z".into()),
            post: Some("echo post".into()),
        };
        let domains = [
            DomainName::new("a.example").unwrap(),
            DomainName::new("b.example").unwrap(),
        ];
        let live = Path::new("/var/lib/renewd/certs/a's/live");
        let c = deploy_hook(&hooks, &dirs, live, &domains);
        let argv = c.argv.unwrap();
        assert_eq!(argv[..2], ["/bin/sh", "-c"]);
        assert_eq!(
            run(&argv, &[]),
            "dir hook a.example b.example\nDEPLOY /VAR/LIB/RENEWD/CERTS/A'S/LIVE\npost\n"
        );
        assert!(
            c.notes
                .iter()
                .any(|n| n.contains("\"systemctl stop nginx\"")),
            "{:?}",
            c.notes
        );
        assert!(c.notes.iter().any(|n| n.contains("post hooks")));

        assert_eq!(
            deploy_hook(&Hooks::default(), &HookDirs::default(), live, &domains),
            Converted::default()
        );
    }

    #[test]
    fn dns_hooks_see_certbot_variables() {
        let argv = dns_hook("echo \"$CERTBOT_DOMAIN=$CERTBOT_VALIDATION\"");
        assert_eq!(
            run(
                &argv,
                &[("RENEWD_DOMAIN", "a.example"), ("RENEWD_DNS_VALUE", "v'1")]
            ),
            "a.example=v'1\n"
        );
    }
}
