//! The issuer's host actions, done by renewd-local: the issuer's [`Deployment`] and
//! [`FailureNotice`] become renewd-local's [`Deployed`] and
//! [`renewd_local::FailureNotice`] (their `RENEWD_*` environments), run by a
//! [`HookRunner`] with the job's hook time limit; the served-certificate check is
//! [`verify_served`].

use std::fmt::Write as _;

use renewd_acme::{BoxError, BoxFuture};
use renewd_config::Command;
use renewd_issuer::{Deployment, FailureNotice, HostActions, ServedCheck};
use renewd_local::{Deployed, HookRunner, Served, verify_served};

/// [`HostActions`] on this host.
#[derive(Debug, Clone, Default)]
pub struct LocalHost {
    /// How patiently `verify_served` checks.
    pub served: renewd_local::ServedCheck,
}

impl HostActions for LocalHost {
    fn deploy<'a>(&'a self, d: &'a Deployment) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let deployed = Deployed {
                cert: d.cert.clone(),
                domains: d.domains.clone(),
                ca: d.ca.clone(),
                serial: d.serial.clone(),
                not_after: d.not_after,
                live_dir: d.live_dir.clone(),
            };
            run_all(&d.hooks, d.timeout, &deployed.hook_env()).await
        })
    }

    fn failure<'a>(&'a self, n: &'a FailureNotice) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let notice = renewd_local::FailureNotice {
                cert: n.cert.clone(),
                domains: n.domains.clone(),
                urgency: n.urgency,
                error: n.message.clone(),
                class: n.class,
                not_after: n.not_after,
                failures: n.failure_streak,
            };
            run_all(&n.hooks, n.timeout, &notice.hook_env()).await
        })
    }

    fn verify_served<'a>(&'a self, c: &'a ServedCheck) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let reports = verify_served(&c.addrs, &c.server_name, &c.serial, &self.served).await?;
            let wrong: Vec<String> = reports
                .iter()
                .filter(|r| !r.is_served())
                .map(Served::to_string)
                .collect();
            if wrong.is_empty() {
                Ok(())
            } else {
                Err(wrong.join("; ").into())
            }
        })
    }
}

/// Runs every hook in order, each whether or not the previous one failed; the error names
/// every failure.
async fn run_all(
    hooks: &[Command],
    timeout: std::time::Duration,
    env: &[(&'static str, String)],
) -> Result<(), BoxError> {
    let runner = HookRunner::new(timeout);
    let mut failed = String::new();
    for hook in hooks {
        let result = match runner.run(hook, env).await {
            Ok(outcome) => outcome.into_result().map(|o| o.duration),
            Err(e) => Err(e),
        };
        match result {
            Ok(duration) => tracing::info!(hook = %hook, ?duration, "hook succeeded"),
            Err(e) => {
                if !failed.is_empty() {
                    failed.push_str("; ");
                }
                let _ = write!(failed, "{e}");
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.into())
    }
}
