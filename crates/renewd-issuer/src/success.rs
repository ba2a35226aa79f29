//! After the CA issued: verify and install (the old set stays live when anything fails
//! before the swap), record the new certificate in the store, then deploy and check what
//! the servers present. A certificate that fails verification is never installed: the
//! ledger says so (step `install`), the order is dropped and the job goes on as after a
//! failed attempt. A new order's bad certificate counts against the CA's circuit; a resumed
//! order's does not (it may predate a config change: a `local` failure, never blamed on the
//! CA). A local install failure keeps the pending order, so the next attempt downloads it again instead
//! of ordering a new one; so does a certificate that is not valid yet (or expired) by our
//! clock — the clock is the suspect, and the next attempt comes soon.

use std::time::Instant;

use renewd_config::CopyOut as ConfigCopyOut;
use renewd_core::{FailureClass, OutcomeClass, Step};
use renewd_store::{AriState, CopyOut, Expectations, InstalledCert, StoreError};

use crate::attempt::IssuedHere;
use crate::breaker::Verdict;
use crate::ca_runtime::CaRuntime;
use crate::events::{HookKind, IssuerEvent};
use crate::host::{Deployment, ServedCheck};
use crate::job::Run;
use crate::ledger::Note;
use crate::pool::JobResult;
use crate::setback::{Setback, one_line};

/// Installs `done`, records it and deploys it. `Err` when nothing was installed.
pub(crate) async fn finish(
    run: &Run<'_>,
    rt: &CaRuntime,
    done: IssuedHere,
) -> Result<JobResult, Setback> {
    let ca = &done.ca;
    let ledger = run.ledger(ca);
    ledger.set_account(&done.account_url);
    let order_url = done.issued.order_url.clone();
    let started = Instant::now();
    let installed = install(run, &done).await;
    let latency = started.elapsed();
    let installed = match installed {
        Ok(installed) => installed,
        Err(StoreError::Verify(v)) if v.blames_our_clock() => {
            return Err(clock_looks_wrong(run, &done, &v, latency));
        }
        Err(e) => {
            let (class, message) = match &e {
                // A bad certificate from the CA (an unusable answer), unless it comes from an
                // order made before the config changed.
                StoreError::Verify(v) if !done.resumed => (
                    FailureClass::CaUnavailable,
                    format!("the certificate from {ca} failed verification: {v}"),
                ),
                StoreError::Verify(v) => (
                    FailureClass::Local,
                    format!("the resumed order's certificate does not fit the config: {v}"),
                ),
                other => (FailureClass::Local, format!("installing: {other}")),
            };
            ledger.note(Note {
                step: Step::Install,
                class: class.outcome(),
                detail: Some(&message),
                order_url: Some(&order_url),
                latency,
            });
            if matches!(e, StoreError::Verify(_)) {
                // Only the CA's own bad answer counts against it; a resumed order's
                // certificate that no longer fits is local, never blamed on the CA.
                if class == FailureClass::CaUnavailable {
                    run.book().record(ca, Verdict::Failure);
                }
                if let Ok(Some(p)) = run.stored_pending()
                    && p.order_url == order_url
                {
                    run.abandon(&p, "its certificate was refused");
                }
            }
            tracing::error!(cert_name = %run.cert.name, ca = %ca, step = "install",
                order_url = %order_url, class = %class, "{message}");
            return Err(Setback {
                class,
                step: Step::Install,
                message,
                retry_after: None,
                retry_within: None,
            });
        }
    };
    ledger.note(Note {
        step: Step::Install,
        class: OutcomeClass::Ok,
        detail: None,
        order_url: Some(&order_url),
        latency,
    });
    let mut warnings = Vec::new();
    if let Some(e) = &installed.copy_out_error {
        let message = one_line(&format!("copy-out: {e}"));
        ledger.note(Note {
            step: Step::Install,
            class: OutcomeClass::Local,
            detail: Some(&message),
            order_url: Some(&order_url),
            latency: std::time::Duration::ZERO,
        });
        tracing::error!(cert_name = %run.cert.name, step = "install", class = "local",
            "{message}");
        warnings.push(message);
    }

    let facts = &installed.facts;
    let serial = facts.serial_hex();
    let not_after = facts.not_after();
    let now = run.inner.clock.now();
    // ARI: check the new certificate at once where the CA offers it; else mark it, so no
    // check is planned that can only come back empty.
    let ari_offered = match rt.client.directory().await {
        Ok(d) => run.config.renewal.ari && d.renewal_info.is_some(),
        Err(_) => run.config.renewal.ari,
    };
    let mut old_key = None;
    let record = InstalledCert {
        serial: serial.clone(),
        not_before: facts.not_before(),
        not_after,
        issuer_ca: Some(ca.clone()),
        account_url: Some(done.account_url.clone()),
        ari_cert_id: facts.ari_cert_id(),
    };
    let stored = run.inner.store.update_cert_state(&run.cert.name, &mut |s| {
        s.installed = Some(record.clone());
        s.ari = if ari_offered {
            AriState {
                next_check: Some(now),
                ..AriState::default()
            }
        } else {
            AriState {
                not_offered_at: Some(now),
                ..AriState::default()
            }
        };
        s.next_attempt = None;
        s.backoff_step = 0;
        s.failure_streak = 0;
        s.failing_since = None;
        s.last_error = None;
        s.urgency_alerted = None;
        s.last_success = Some(now);
        old_key = s.pending.take().map(|p| p.key_path);
    });
    match stored {
        Ok(_) => {
            if let Some(path) = old_key
                && let Err(e) = run.keys.remove(&path)
            {
                tracing::warn!(cert_name = %run.cert.name, error = %e,
                    "could not remove the finished order's key");
            }
        }
        Err(e) => {
            // The certificate is live; the store will learn it from the next scan.
            let message = format!("recording the new certificate: {e}");
            tracing::error!(cert_name = %run.cert.name, class = "local", "{message}");
            warnings.push(message);
        }
    }
    tracing::info!(cert_name = %run.cert.name, ca = %ca, order_url = %order_url,
        serial = %serial, not_after = %not_after.to_rfc3339(), version = installed.version,
        "certificate renewed and installed");
    let _ = run.inner.events.send(IssuerEvent::Renewed {
        cert: run.cert.name.clone(),
        ca: ca.clone(),
        serial: serial.clone(),
        not_after,
    });

    deploy(run, ca, &serial, not_after, &mut warnings).await;
    Ok(JobResult::Renewed {
        ca: ca.clone(),
        serial,
        not_after,
        warnings,
    })
}

/// How soon a certificate refused by our clock is tried again (from its kept order).
const CLOCK_RETRY: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// The CA issued a certificate that is not valid yet (or already expired) by our clock: the
/// clock is the suspect, not the CA. Nothing is installed; the order and its key stay
/// saved, so the next attempt (soon) downloads the same certificate again and installs it
/// once the clock is right — no new order, no mark against the CA.
fn clock_looks_wrong(
    run: &Run<'_>,
    done: &IssuedHere,
    v: &renewd_store::VerifyError,
    latency: std::time::Duration,
) -> Setback {
    let ca = &done.ca;
    let local_time = run.inner.clock.now().to_rfc3339();
    let what = match v {
        renewd_store::VerifyError::NotYetValid { not_before, .. } => {
            format!("certificate not valid before {not_before}")
        }
        renewd_store::VerifyError::Expired { not_after, .. } => {
            format!("certificate expired at {not_after}")
        }
        other => other.to_string(),
    };
    let message = format!(
        "the system clock looks wrong: {what}, local time {local_time} (from {ca}; the order \
         is kept and its certificate installed once the clock is right)"
    );
    run.ledger(ca).note(Note {
        step: Step::Install,
        class: OutcomeClass::Local,
        detail: Some(&message),
        order_url: Some(&done.issued.order_url),
        latency,
    });
    tracing::error!(cert_name = %run.cert.name, ca = %ca, step = "install", class = "local",
        order_url = %done.issued.order_url, "{message}");
    Setback {
        class: FailureClass::Local,
        step: Step::Install,
        message,
        retry_after: None,
        retry_within: Some(CLOCK_RETRY),
    }
}

async fn install(run: &Run<'_>, done: &IssuedHere) -> Result<renewd_store::Installed, StoreError> {
    let cert_store = run.inner.cert_store.clone();
    let name = run.cert.name.clone();
    let chain = done.issued.chain_pem.clone();
    let key = done.issued.key_pem.clone();
    let domains = run.cert.domains.clone();
    // A resumed order's key predates any change of the configured key type.
    let key_type = (!done.resumed).then_some(run.cert.key);
    let now = run.inner.clock.now();
    let skew = run.inner.options.clock_skew;
    let copy_out = copy_out(&run.cert.copy_out);
    tokio::task::spawn_blocking(move || {
        let expect = Expectations {
            domains: &domains,
            key_type,
            now,
            skew,
        };
        cert_store.install(&name, &chain, &key, &expect, copy_out.as_ref())
    })
    .await
    .unwrap_or_else(|e| {
        Err(StoreError::Io {
            op: "installing",
            path: run.inner.cert_store.cert_dir(&run.cert.name),
            source: std::io::Error::other(e.to_string()),
        })
    })
}

fn copy_out(c: &ConfigCopyOut) -> Option<CopyOut> {
    if c.is_empty() {
        return None;
    }
    let defaults = CopyOut::default();
    Some(CopyOut {
        cert_path: c.cert_path.clone(),
        chain_path: c.chain_path.clone(),
        fullchain_path: c.fullchain_path.clone(),
        key_path: c.key_path.clone(),
        owner: c.owner.clone(),
        group: c.group.clone(),
        cert_mode: c.mode.unwrap_or(defaults.cert_mode),
        key_mode: c.mode.unwrap_or(defaults.key_mode),
    })
}

/// Deploy hooks, then the served-certificate check. Failures are reported (ledger, log,
/// event, the job's warnings) and never undo the install.
async fn deploy(
    run: &Run<'_>,
    ca: &renewd_core::CaName,
    serial: &str,
    not_after: chrono::DateTime<chrono::Utc>,
    warnings: &mut Vec<String>,
) {
    let ledger = run.ledger(ca);
    let hooks: Vec<_> = run
        .cert
        .deploy_hook
        .iter()
        .chain(run.config.hooks.deploy.iter())
        .cloned()
        .collect();
    let deployment = Deployment {
        cert: run.cert.name.clone(),
        domains: run.cert.domains.clone(),
        ca: ca.clone(),
        serial: serial.to_string(),
        not_after,
        live_dir: run.inner.cert_store.live_dir(&run.cert.name),
        config: run.cert.clone(),
        hooks,
        timeout: run.config.hooks.timeout,
    };
    let started = Instant::now();
    let result = run.inner.host.deploy(&deployment).await;
    let latency = started.elapsed();
    match result {
        Ok(()) if !deployment.hooks.is_empty() => ledger.note(Note {
            step: Step::DeployHook,
            class: OutcomeClass::Ok,
            detail: None,
            order_url: None,
            latency,
        }),
        Ok(()) => {}
        Err(e) => {
            let message = one_line(&format!("deploy hook: {e}"));
            report(run, &ledger, HookKind::Deploy, &message, latency, warnings);
        }
    }
    if run.cert.verify_served.is_empty() {
        return;
    }
    let Some(server_name) = run.cert.domains.first().cloned() else {
        return;
    };
    let check = ServedCheck {
        cert: run.cert.name.clone(),
        server_name,
        addrs: run.cert.verify_served.clone(),
        serial: serial.to_string(),
    };
    let started = Instant::now();
    if let Err(e) = run.inner.host.verify_served(&check).await {
        let message = one_line(&format!("verify_served: {e}"));
        report(
            run,
            &ledger,
            HookKind::VerifyServed,
            &message,
            started.elapsed(),
            warnings,
        );
    }
}

fn report(
    run: &Run<'_>,
    ledger: &crate::ledger::Ledger,
    hook: HookKind,
    message: &str,
    latency: std::time::Duration,
    warnings: &mut Vec<String>,
) {
    ledger.note(Note {
        step: Step::DeployHook,
        class: OutcomeClass::Local,
        detail: Some(message),
        order_url: None,
        latency,
    });
    tracing::error!(cert_name = %run.cert.name, step = "deploy_hook", class = "local",
        hook = hook.as_str(), "{message}");
    let _ = run.inner.events.send(IssuerEvent::HookFailed {
        cert: run.cert.name.clone(),
        hook,
        message: message.to_string(),
    });
    warnings.push(message.to_string());
}
