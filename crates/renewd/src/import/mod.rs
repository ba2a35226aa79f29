//! `renewd import certbot [DIR]`: moving from certbot to renewd.
//!
//! Reads certbot's `DIR/renewal/*.conf` and the `live/` certificates they name
//! ([`lineage`]), decides the equivalent renewd config ([`plan`]: a CA per ACME server,
//! `[http01]`/`[dns01]`, one `[[cert]]` per lineage with its key type, challenge and
//! converted hooks), checks that config with renewd's own validation, adopts each current
//! certificate into `STATE/certs/NAME` and the state store ([`adopt`]), and writes the
//! config ([`render`]) to stdout or `--output FILE`. `--dry-run` changes nothing and says
//! on stderr what it would do.
//!
//! A lineage that cannot be read or adopted is reported on stderr and does not stop the
//! others; the exit status is then 1. An expired certificate is not adopted (renewd issues
//! a new one at its first start) and is only noted.

mod adopt;
mod hooks;
mod lineage;
mod plan;
mod render;
mod renewal_conf;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::Utc;
use renewd_config::{Config, LoadEnv};
use renewd_store::{CertStore, FileSpec, SqliteOptions, SqliteStore, write_file_atomic};

use crate::cli::CertbotImportArgs;
use crate::exit;

use adopt::{Adopted, NotAdopted, adopt, align_owner};
use hooks::HookDirs;
use lineage::{Lineage, read_lineage};
use plan::plan;
use render::render;

/// Runs `renewd import certbot`, writing the config to `out` (unless `--output`) and
/// progress and problems to `err`; returns the exit status.
pub fn import_certbot(args: &CertbotImportArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match run(args, out, err) {
        Ok(true) => exit::OK,
        Ok(false) => exit::FAILURE,
        Err(message) => {
            let _ = writeln!(err, "renewd import certbot: {message}");
            exit::FAILURE
        }
    }
}

/// `Ok(true)`: every lineage imported; `Ok(false)`: some failed (reported); `Err`: nothing
/// was imported.
fn run(args: &CertbotImportArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<bool, String> {
    let state_dir = std::path::absolute(&args.state_dir)
        .map_err(|e| format!("--state-dir {}: {e}", args.state_dir.display()))?;
    if let Some(path) = &args.output
        && path.exists()
    {
        return Err(format!(
            "{} exists; renewd import does not overwrite a config — remove it or choose another --output",
            path.display()
        ));
    }
    let (mut lineages, mut all_ok) = read_lineages(&args.dir, err)?;
    dedupe_names(&mut lineages);
    let hook_dirs = HookDirs::read(&args.dir);
    let mut plan = plan(&lineages, &state_dir, &hook_dirs);

    // renewd's own validation first: nothing is adopted for a config it would refuse.
    let config_path = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("<imported config>"));
    if let Err(errors) = Config::from_str(
        &render(&plan, &state_dir, &args.dir),
        &config_path,
        &LoadEnv::default(),
    ) {
        return Err(format!(
            "the imported config does not validate (please report this):\n{errors}"
        ));
    }

    let now = Utc::now();
    if args.dry_run {
        for (l, entry) in lineages.iter().zip(&plan.certs) {
            let _ = writeln!(
                err,
                "would adopt {}: serial {}, expires {}, into {}",
                l.lineage,
                l.leaf.serial,
                l.leaf.not_after.format("%Y-%m-%d %H:%M UTC"),
                state_dir
                    .join("certs")
                    .join(entry.name.as_str())
                    .join("live")
                    .display()
            );
        }
    } else {
        let existed = state_dir.exists();
        let certs = CertStore::new(&state_dir);
        let store = SqliteStore::open_in(&state_dir, SqliteOptions::default())
            .map_err(|e| e.to_string())?;
        for (l, entry) in lineages.iter().zip(plan.certs.iter_mut()) {
            match adopt(&certs, &store, l, entry, now) {
                Ok(how) => {
                    let what = match how {
                        Adopted::Installed(v) => format!("installed as version {v}"),
                        Adopted::AlreadyLive => "already live".to_string(),
                    };
                    let _ = writeln!(
                        err,
                        "adopted {} as {}: serial {}, expires {}, {what}",
                        l.lineage,
                        entry.name,
                        l.leaf.serial,
                        l.leaf.not_after.format("%Y-%m-%d %H:%M UTC")
                    );
                }
                Err(NotAdopted::Expired(why)) => {
                    let _ = writeln!(
                        err,
                        "not adopting {}: {why}; renewd issues a new certificate at its first start",
                        l.lineage
                    );
                    entry.notes.push(format!("NOTE: not adopted: {why}; renewd issues a new certificate at its first start"));
                }
                Err(NotAdopted::Failed(why)) => {
                    all_ok = false;
                    let _ = writeln!(
                        err,
                        "renewd import certbot: {}: not adopted: {why}",
                        l.lineage
                    );
                    entry.notes.push(format!("NOTE: not adopted: {why}; renewd issues a new certificate at its first start"));
                }
            }
        }
        drop(store);
        if existed {
            let mut created: Vec<PathBuf> =
                plan.certs.iter().map(|c| certs.cert_dir(&c.name)).collect();
            created.push(certs.root().to_path_buf());
            for suffix in ["", "-wal", "-shm"] {
                created.push(state_dir.join(format!("{}{suffix}", SqliteStore::FILE_NAME)));
            }
            align_owner(&state_dir, &created)
                .map_err(|e| format!("handing {} to its owner: {e}", state_dir.display()))?;
        }
    }

    let text = render(&plan, &state_dir, &args.dir);
    match (&args.output, args.dry_run) {
        (Some(path), false) => {
            write_file_atomic(path, text.as_bytes(), &FileSpec::PUBLIC)
                .map_err(|e| e.to_string())?;
            let _ = writeln!(
                err,
                "wrote {}; check it with: renewd --config {} check",
                path.display(),
                path.display()
            );
        }
        _ => out
            .write_all(text.as_bytes())
            .map_err(|e| format!("writing the config: {e}"))?,
    }
    Ok(all_ok)
}

/// Every lineage under `dir/renewal`, in name order; the ones that fail are reported.
fn read_lineages(dir: &Path, err: &mut dyn Write) -> Result<(Vec<Lineage>, bool), String> {
    let renewal = dir.join("renewal");
    let mut confs: Vec<PathBuf> = fs::read_dir(&renewal)
        .map_err(|e| {
            format!(
                "{}: {e} (is {} certbot's configuration directory?)",
                renewal.display(),
                dir.display()
            )
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    confs.sort();
    let mut lineages = Vec::new();
    let mut all_ok = true;
    for conf in confs {
        match read_lineage(&conf) {
            Ok(l) => lineages.push(l),
            Err(e) => {
                all_ok = false;
                let _ = writeln!(err, "renewd import certbot: {}: {e}", conf.display());
            }
        }
    }
    if lineages.is_empty() {
        return Err(format!("no lineage to import in {}", renewal.display()));
    }
    Ok((lineages, all_ok))
}

/// Two lineage names that became the same certificate name get `-2`, `-3`, … appended.
fn dedupe_names(lineages: &mut [Lineage]) {
    for i in 1..lineages.len() {
        let mut n = 2;
        while lineages[..i].iter().any(|l| l.name == lineages[i].name) {
            let base = lineage::cert_name(&lineages[i].lineage);
            let suffix = format!("-{n}");
            let mut s = base.as_str().to_string();
            s.truncate(64 - suffix.len());
            lineages[i].name = lineage::cert_name(&format!("{s}{suffix}"));
            n += 1;
        }
    }
}
