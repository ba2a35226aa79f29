//! The account at each CA: its key is `STATE/accounts/CA/account.key` (mode 0600, generated
//! once), its URL and contact are an [`AccountRecord`] in the store. On first use in a
//! process the account is found by its key or created (with the config's EAB and terms
//! agreement), and its contact updated when the config's changed. When the CA later says
//! the account does not exist or may not act, it is forgotten ([`forget`]) and the next
//! attempt finds or creates it again. Every request is a ledger row (step `account`);
//! local failures are noted with that step too.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use renewd_acme::{Account, AccountKey, ExternalAccountKey, NewAccount};
use renewd_config::SecretSource;
use renewd_core::{Clock, OutcomeClass, Step};
use renewd_store::{AccountRecord, StateStore};

use crate::ca_runtime::CaRuntime;
use crate::ledger::{Ledger, Note};
use crate::setback::Setback;

/// `STATE/accounts/CA/account.key`.
pub(crate) fn key_path(state_dir: &Path, rt: &CaRuntime) -> PathBuf {
    state_dir
        .join("accounts")
        .join(rt.name().as_str())
        .join("account.key")
}

/// The account at `rt`'s CA, set up on first use. `ledger` is the CA-level ledger (no
/// certificate).
pub(crate) async fn account(
    rt: &CaRuntime,
    store: &dyn StateStore,
    clock: &dyn Clock,
    state_dir: &Path,
    ledger: &Ledger,
) -> Result<Account, Setback> {
    let mut cached = rt.account.lock().await;
    if let Some(account) = cached.as_ref() {
        return Ok(account.clone());
    }
    let result = set_up(rt, store, clock, state_dir, ledger).await;
    match &result {
        Ok(account) => {
            tracing::info!(ca = %rt.name(), account_url = account.url(), "account ready");
            *cached = Some(account.clone());
            rt.account_doubted.store(false, Ordering::SeqCst);
        }
        Err(setback) if setback.class == renewd_core::FailureClass::Local => ledger.note(Note {
            step: Step::Account,
            class: OutcomeClass::Local,
            detail: Some(&setback.message),
            order_url: None,
            latency: std::time::Duration::ZERO,
        }),
        Err(_) => {}
    }
    result
}

/// Forgets the account of `rt`'s CA after the CA said it does not exist or may not act
/// ([`renewd_acme::Error::account_unusable`]): the next attempt looks its key up again, or
/// creates the account, instead of reusing the stored URL — no restart needed.
pub(crate) async fn forget(rt: &CaRuntime, why: &str) {
    rt.account_doubted.store(true, Ordering::SeqCst);
    let mut cached = rt.account.lock().await;
    if let Some(account) = cached.take() {
        tracing::warn!(ca = %rt.name(), account_url = account.url(),
            "the CA refused the account ({why}); it is looked up again before the next order");
    }
}

async fn set_up(
    rt: &CaRuntime,
    store: &dyn StateStore,
    clock: &dyn Clock,
    state_dir: &Path,
    ledger: &Ledger,
) -> Result<Account, Setback> {
    let ca = rt.name();
    let config = &rt.config;
    let client = rt.client.with_observer(ledger.observer());
    let path = key_path(state_dir, rt);
    let (key, new_key) = load_or_create_key(&path)?;
    let record = store
        .account(ca)
        .map_err(|e| Setback::local(Step::Account, format!("reading the account record: {e}")))?
        .filter(|r| r.key_path == path && !r.url.is_empty() && !new_key)
        .filter(|_| !rt.account_doubted.load(Ordering::SeqCst));
    if let Some(record) = record {
        ledger.set_account(&record.url);
        let account = client.account(key.clone(), record.url.clone());
        if record.contact == config.contact {
            return Ok(account);
        }
        match account.update_contact(&config.contact).await {
            Ok(_) => {
                let updated = AccountRecord {
                    contact: config.contact.clone(),
                    ..record
                };
                if let Err(e) = store.put_account(&updated) {
                    tracing::warn!(ca = %ca, error = %e, "could not store the new contact");
                }
                return Ok(account);
            }
            // The CA does not know the account any more: look the key up below.
            Err(e) if e.account_unusable() => tracing::warn!(ca = %ca, step = "account",
                error = %e, "the stored account is refused; looking its key up again"),
            // The account still works; the next start tries again.
            Err(e) => {
                tracing::warn!(ca = %ca, step = "account", class = %e.class(),
                    error = %e, "could not update the account's contact");
                return Ok(account);
            }
        }
    }
    // A key the CA may know (the record was lost): look it up before creating.
    let found = if new_key {
        None
    } else {
        match client.find_account(key.clone()).await {
            Ok(account) => Some(account),
            Err(e) if e.is_problem("accountDoesNotExist") => None,
            Err(e) => return Err(e.into()),
        }
    };
    let account = match found {
        Some(account) => account,
        None => {
            let eab = match &config.eab {
                Some(eab) => {
                    let Some(mac_key) = &eab.hmac_key else {
                        return Err(Setback::local(
                            Step::Account,
                            unread_eab_key(ca, &eab.source),
                        ));
                    };
                    Some(
                        ExternalAccountKey::new(
                            eab.kid.clone(),
                            &URL_SAFE_NO_PAD.encode(mac_key.expose()),
                        )
                        .map_err(Setback::from)?,
                    )
                }
                None => None,
            };
            let new = NewAccount {
                contact: config.contact.clone(),
                terms_of_service_agreed: config.terms_agreed,
                eab,
            };
            client.new_account(key, &new).await?
        }
    };
    ledger.set_account(account.url());
    let record = AccountRecord {
        ca: ca.clone(),
        url: account.url().to_string(),
        key_path: path,
        eab_kid: config.eab.as_ref().map(|e| e.kid.clone()),
        contact: config.contact.clone(),
        created: clock.now(),
    };
    store
        .put_account(&record)
        .map_err(|e| Setback::local(Step::Account, format!("storing the account record: {e}")))?;
    Ok(account)
}

/// Why an account cannot be created with an EAB MAC key the config load did not read:
/// `renewd renew` in its own process outside `renewd.service` has no
/// `$CREDENTIALS_DIRECTORY`.
fn unread_eab_key(ca: &renewd_core::CaName, source: &SecretSource) -> String {
    match source {
        SecretSource::Credential { name, .. } => format!(
            "creating the account at CA {ca} needs the EAB MAC key from credential {name:?}, \
             which only renewd.service can read ($CREDENTIALS_DIRECTORY is unset here); start \
             the daemon (systemctl start renewd): it creates the account, and renew then \
             goes through it"
        ),
        SecretSource::File(path) => format!(
            "creating the account at CA {ca} needs the EAB MAC key from {}, which was not loaded",
            path.display()
        ),
    }
}

/// The key at `path`, or a new one saved there (directory 0700, file 0600). `true` when
/// new. A file that exists but does not load is an error, never overwritten; and of two
/// processes creating the key at once only one saves it, the other loads that one (a key
/// overwritten after its account was made would lose the account).
fn load_or_create_key(path: &Path) -> Result<(AccountKey, bool), Setback> {
    if path.exists() {
        return AccountKey::load(path)
            .map(|k| (k, false))
            .map_err(Setback::from);
    }
    if let Some(dir) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                Setback::local(Step::Account, format!("creating {}: {e}", dir.display()))
            })?;
    }
    let key = AccountKey::generate();
    if key.save_new(path).map_err(Setback::from)? {
        Ok((key, true))
    } else {
        // Another process created it meanwhile: theirs is the key.
        AccountKey::load(path)
            .map(|k| (k, false))
            .map_err(Setback::from)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn processes_creating_the_account_key_at_once_end_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts/a/account.key");
        let barrier = std::sync::Barrier::new(6);
        let keys: Vec<(String, bool)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|_| {
                    let (path, barrier) = (&path, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        let (key, new) = load_or_create_key(path).unwrap();
                        (key.thumbprint(), new)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let on_disk = AccountKey::load(&path).unwrap().thumbprint();
        assert!(keys.iter().all(|(k, _)| *k == on_disk), "{keys:?}");
        assert!(keys.iter().filter(|(_, new)| *new).count() <= 1, "{keys:?}");
    }
}
