//! dns-01 through the operator's hook commands (`[dns01]`): `add_hook` publishes the TXT
//! record, renewd waits for it to propagate, `remove_hook` withdraws it.

use std::future::Future;
use std::time::Duration;

use renewd_acme::{
    BoxError, BoxFuture, ChallengeAnswer, ChallengeProof, ChallengeSolver, dns01_record_name,
};
use renewd_config::{Command, Dns01Config};
use renewd_core::ChallengeType;
use tokio::time::Instant;

use crate::answer::{domain_of, expect_type};
use crate::error::Error;
use crate::process::HookRunner;

/// The pauses between `propagation_check` runs: `first`, doubling up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckInterval {
    /// The pause after the first failed check.
    pub first: Duration,
    /// The longest pause.
    pub max: Duration,
}

impl Default for CheckInterval {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(2),
            max: Duration::from_secs(20),
        }
    }
}

/// The dns-01 solver: runs the `[dns01]` hooks.
///
/// Every hook gets `RENEWD_DNS_NAME` (`_acme-challenge.` + the base domain, no trailing
/// dot), `RENEWD_DNS_VALUE` (the TXT value), `RENEWD_DOMAIN` (the identifier; a wildcard
/// keeps its `*.`) and `RENEWD_TOKEN` (the challenge token). `present` runs `add_hook`,
/// waits `propagation_delay`, then — if `propagation_check` is set — runs it until it
/// exits 0, pausing per [`CheckInterval`], for at most `propagation_timeout` (counted from
/// the first check). If the wait fails, `remove_hook` runs before the error is returned.
/// `cleanup` runs `remove_hook`.
///
/// A certificate for `example.com` and `*.example.com` publishes two values at the same
/// name at the same time: `add_hook` must add a value, not replace the record's values, and
/// `remove_hook` must remove only the value it is given.
#[derive(Debug, Clone)]
pub struct Dns01Hooks {
    config: Dns01Config,
    runner: HookRunner,
    interval: CheckInterval,
}

impl Dns01Hooks {
    /// The solver for `config`, running hooks with `runner`.
    pub fn new(config: Dns01Config, runner: HookRunner) -> Dns01Hooks {
        Dns01Hooks {
            config,
            runner,
            interval: CheckInterval::default(),
        }
    }

    /// Sets the pauses between propagation checks.
    pub fn with_check_interval(mut self, interval: CheckInterval) -> Dns01Hooks {
        self.interval = interval;
        self
    }

    fn env(answer: &ChallengeAnswer) -> Result<Vec<(&'static str, String)>, Error> {
        expect_type(answer, ChallengeType::Dns01)?;
        let ChallengeProof::Dns01 { name, value } = &answer.proof else {
            return Err(Error::WrongChallenge {
                solver: ChallengeType::Dns01,
                given: answer.challenge_type,
                identifier: answer.identifier.clone(),
            });
        };
        Ok(vec![
            ("RENEWD_DNS_NAME", name.clone()),
            ("RENEWD_DNS_VALUE", value.clone()),
            ("RENEWD_DOMAIN", domain_of(answer)),
            ("RENEWD_TOKEN", answer.token.clone()),
        ])
    }

    async fn run_checked(&self, command: &Command, env: &[(&str, String)]) -> Result<(), Error> {
        self.runner.run(command, env).await?.into_result().map(drop)
    }

    async fn propagate(&self, name: &str, env: &[(&str, String)]) -> Result<(), Error> {
        let started = Instant::now();
        tokio::time::sleep(self.config.propagation_delay).await;
        let Some(check) = &self.config.propagation_check else {
            return Ok(());
        };
        let polled = poll_until(
            self.config.propagation_timeout,
            self.interval,
            |remaining| async move {
                let outcome = self.runner.run_within(check, env, remaining).await?;
                let cut_off = outcome.timed_out && remaining < self.runner.timeout();
                if outcome.success() {
                    Ok(Poll::Done)
                } else {
                    let why = outcome.into_result().err().map(|e| e.to_string());
                    Ok(if cut_off {
                        Poll::CutOff(why)
                    } else {
                        Poll::NotYet(why)
                    })
                }
            },
        )
        .await?;
        match polled {
            Polled::Done { attempts } => {
                tracing::debug!(attempts, "the TXT record propagated");
                Ok(())
            }
            Polled::TimedOut { attempts, last } => Err(Error::PropagationTimeout {
                name: name.to_string(),
                waited: started.elapsed(),
                attempts,
                last,
            }),
        }
    }
}

impl ChallengeSolver for Dns01Hooks {
    fn present<'a>(&'a self, answer: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let env = Dns01Hooks::env(answer)?;
            self.run_checked(&self.config.add_hook, &env).await?;
            let name = dns01_record_name(&answer.identifier);
            if let Err(e) = self.propagate(&name, &env).await {
                if let Some(remove) = &self.config.remove_hook
                    && let Err(r) = self.run_checked(remove, &env).await
                {
                    tracing::warn!(error = %r, "remove_hook failed after a failed propagation wait");
                }
                return Err(e.into());
            }
            Ok(())
        })
    }

    fn cleanup<'a>(&'a self, answer: &'a ChallengeAnswer) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let env = Dns01Hooks::env(answer)?;
            if let Some(remove) = &self.config.remove_hook {
                self.run_checked(remove, &env).await?;
            }
            Ok(())
        })
    }
}

/// One check's verdict.
#[derive(Debug)]
pub(crate) enum Poll {
    /// It succeeded.
    Done,
    /// Not yet; why, if known.
    NotYet(Option<String>),
    /// The check was cut off at the deadline; why, if known. An earlier check's reason
    /// says more about the record than "killed at the deadline" does.
    CutOff(Option<String>),
}

/// How polling ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Polled {
    Done { attempts: u32 },
    TimedOut { attempts: u32, last: Option<String> },
}

/// Runs `check` (given the time left) until it says [`Poll::Done`] or `timeout` passes,
/// pausing per `interval` between runs. An `Err` from `check` (the program cannot even
/// start) ends the polling at once.
pub(crate) async fn poll_until<F, Fut>(
    timeout: Duration,
    interval: CheckInterval,
    mut check: F,
) -> Result<Polled, Error>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<Poll, Error>>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = interval.first;
    let mut attempts = 0;
    let mut last = None;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(Polled::TimedOut { attempts, last });
        }
        attempts += 1;
        match check(remaining).await? {
            Poll::Done => return Ok(Polled::Done { attempts }),
            Poll::NotYet(why) => last = why.or(last),
            Poll::CutOff(why) => last = last.or(why),
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(pause.min(remaining)).await;
        pause = pause.saturating_mul(2).min(interval.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval() -> CheckInterval {
        CheckInterval {
            first: Duration::from_secs(1),
            max: Duration::from_secs(8),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_with_back_off_until_the_check_succeeds() {
        let start = Instant::now();
        let mut times = Vec::new();
        let polled = poll_until(Duration::from_secs(60), interval(), |_| {
            times.push(start.elapsed().as_secs());
            let n = times.len();
            async move {
                Ok(if n < 4 {
                    Poll::NotYet(Some(format!("try {n}")))
                } else {
                    Poll::Done
                })
            }
        })
        .await
        .unwrap();
        assert_eq!(polled, Polled::Done { attempts: 4 });
        assert_eq!(times, [0, 1, 3, 7]);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_timeout_with_the_last_reason() {
        let start = Instant::now();
        let mut times = Vec::new();
        let polled = poll_until(Duration::from_secs(30), interval(), |remaining| {
            times.push((start.elapsed().as_secs(), remaining.as_secs()));
            let n = times.len();
            async move { Ok(Poll::NotYet(Some(format!("try {n}")))) }
        })
        .await
        .unwrap();
        // Pauses 1, 2, 4, 8, 8, then the 7 s left.
        assert_eq!(
            times,
            [(0, 30), (1, 29), (3, 27), (7, 23), (15, 15), (23, 7)]
        );
        assert_eq!(
            polled,
            Polled::TimedOut {
                attempts: 6,
                last: Some("try 6".into())
            }
        );
        assert_eq!(start.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_cut_off_at_the_deadline_keeps_the_reason_before_it() {
        let mut n = 0;
        let polled = poll_until(Duration::from_secs(5), interval(), |remaining| {
            n += 1;
            let n = n;
            async move {
                // The third check hangs until the deadline kills it.
                Ok(if n < 3 {
                    Poll::NotYet(Some(format!("NXDOMAIN {n}")))
                } else {
                    tokio::time::sleep(remaining).await;
                    Poll::CutOff(Some("timed out".into()))
                })
            }
        })
        .await
        .unwrap();
        assert_eq!(
            polled,
            Polled::TimedOut {
                attempts: 3,
                last: Some("NXDOMAIN 2".into())
            }
        );
        // Cut off first: that is the only reason there is.
        let polled = poll_until(Duration::from_secs(5), interval(), |remaining| async move {
            tokio::time::sleep(remaining).await;
            Ok(Poll::CutOff(Some("timed out".into())))
        })
        .await
        .unwrap();
        assert_eq!(
            polled,
            Polled::TimedOut {
                attempts: 1,
                last: Some("timed out".into())
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_that_cannot_start_ends_the_wait() {
        let err = poll_until(Duration::from_secs(30), interval(), |_| async {
            Err(Error::HookSpawn {
                argv: "/nonexistent".into(),
                source: std::io::ErrorKind::NotFound.into(),
            })
        })
        .await
        .unwrap_err();
        assert!(matches!(err, Error::HookSpawn { .. }));
    }
}
