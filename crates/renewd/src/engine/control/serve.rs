//! Serving the control socket: one request per connection, queued through the scheduler,
//! answered line by line as the certificates finish.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;
use std::time::Duration;

use renewd_core::{CertName, WorkDone};
use renewd_issuer::{EventSender, IssuerEvent, JobResult};
use renewd_scheduler::{RenewNowReply, SchedulerCommand};
use renewd_store::{CertState, StateStore};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{ControlRequest, ControlSocket, RenewRequest};
use crate::engine::outcome::{CertOutcome, FinalLine, Finish, RenewResult};

/// The longest request line accepted.
const MAX_REQUEST: u64 = 64 * 1024;

/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a waiting request looks at the store for an outcome that came without a
/// `WorkDone` here (another process renewed the certificate; a queued renewal the
/// scheduler dropped because it was no longer due).
const RECHECK: Duration = Duration::from_secs(5);

/// What the requests are served from.
#[derive(Clone)]
pub struct ControlContext {
    pub scheduler: mpsc::Sender<SchedulerCommand>,
    pub finished: broadcast::Sender<WorkDone>,
    /// The issuer's events: each job's result (`JobEnded`) comes before its `WorkDone`.
    pub events: EventSender,
    pub store: Arc<dyn StateStore>,
}

/// Serves requests until `stop`; then the socket file goes, and requests still waiting get
/// a final "stopping" line.
pub async fn serve(socket: ControlSocket, ctx: ControlContext, stop: CancellationToken) {
    let tracker = TaskTracker::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            accepted = socket.listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tracker.spawn(connection(stream, ctx.clone(), stop.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket: accept failed");
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            },
        }
    }
    drop(socket);
    tracker.close();
    tracker.wait().await;
}

async fn connection(stream: UnixStream, ctx: ControlContext, stop: CancellationToken) {
    let (read, mut write) = stream.into_split();
    let request = match tokio::time::timeout(REQUEST_TIMEOUT, read_request(read)).await {
        Ok(Ok(r)) => r,
        Ok(Err(why)) => {
            let _ = send(
                &mut write,
                &FinalLine {
                    finish: Finish::Error(why),
                },
            )
            .await;
            return;
        }
        Err(_) => return,
    };
    let certs: Vec<&str> = request.renew.certs.iter().map(CertName::as_str).collect();
    tracing::info!(certs = %certs.join(" "), force = request.renew.force,
        only_ca = request.renew.only_ca.as_ref().map(renewd_core::CaName::as_str),
        "renew requested on the control socket");
    let finish = match renew(&ctx, request.renew, &stop, &mut write).await {
        Ok(finish) => finish,
        // The client went away; nothing more to say.
        Err(_) => return,
    };
    let _ = send(&mut write, &FinalLine { finish }).await;
}

async fn read_request(read: impl AsyncRead + Unpin) -> Result<ControlRequest, String> {
    let mut line = String::new();
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST));
    reader
        .read_line(&mut line)
        .await
        .map_err(|e| format!("reading the request: {e}"))?;
    serde_json::from_str(line.trim()).map_err(|e| format!("not a request: {e}"))
}

async fn send<T: Serialize>(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    line: &T,
) -> io::Result<()> {
    let mut text = serde_json::to_string(line).map_err(io::Error::other)?;
    text.push('\n');
    write.write_all(text.as_bytes()).await
}

/// Queues the certificates and answers each as it finishes. `Err`: the client left.
async fn renew(
    ctx: &ControlContext,
    request: RenewRequest,
    stop: &CancellationToken,
    write: &mut tokio::net::unix::OwnedWriteHalf,
) -> io::Result<Finish> {
    // Listen and look before asking, so no answer and no change is missed.
    let mut finished = ctx.finished.subscribe();
    let mut ended = Ended::new(ctx.events.subscribe());
    let before: HashMap<CertName, CertState> = match ctx.store.status_snapshot() {
        Ok(s) => s.certs.into_iter().map(|c| (c.cert.clone(), c)).collect(),
        Err(e) => return Ok(Finish::Error(format!("the state store: {e}"))),
    };
    let Some(reply) = ask(ctx, request.certs.clone(), &request).await else {
        return Ok(Finish::Error("the daemon is stopping".into()));
    };
    let names = |certs: &[CertName]| {
        let names: Vec<&str> = certs.iter().map(CertName::as_str).collect();
        names.join(" ")
    };
    tracing::info!(
        queued = %names(&reply.queued),
        in_flight = %names(&reply.in_flight),
        not_due = reply.not_due.len(),
        unknown = reply.unknown.len(),
        "renew request taken: {} queued, {} already in flight",
        reply.queued.len(),
        reply.in_flight.len()
    );
    let mut waiting = Waiting::default();
    for line in waiting.take(reply) {
        send(write, &line).await?;
    }
    let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
    while !waiting.is_empty() {
        tokio::select! {
            _ = recheck.tick() => {
                for line in settled(ctx, &mut waiting, &before) {
                    send(write, &line).await?;
                }
            }
            () = stop.cancelled() => {
                for cert in waiting.drain() {
                    let reason = "the daemon is stopping; an order in flight resumes at its next start";
                    send(write, &CertOutcome { cert, result: RenewResult::Unfinished { reason: reason.into() } }).await?;
                }
                return Ok(Finish::Error("the daemon is stopping".into()));
            }
            done = finished.recv() => match done {
                Ok(done) if waiting.contains(&done.cert) => {
                    ended.catch_up(&waiting);
                    if !done.was_renewal {
                        // An ARI check was in flight, not a renewal: ask again now.
                        waiting.remove(&done.cert);
                        match ask(ctx, vec![done.cert.clone()], &request).await {
                            Some(reply) => for line in waiting.take(reply) {
                                send(write, &line).await?;
                            },
                            None => return Ok(Finish::Error("the daemon is stopping".into())),
                        }
                        continue;
                    }
                    waiting.remove(&done.cert);
                    let line = match ended.take(&done.cert) {
                        Some(result) => answer_ended(ctx, &done.cert, &before, result),
                        None => answer(ctx, &done.cert, &before),
                    };
                    send(write, &line).await?;
                }
                // Keeps the events from piling up while other certificates finish.
                Ok(_) => ended.catch_up(&waiting),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Missed some: whatever the store shows as changed is finished.
                    for line in settled(ctx, &mut waiting, &before) {
                        send(write, &line).await?;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return Ok(Finish::Error("the daemon is stopping".into()));
                }
            },
        }
    }
    Ok(Finish::Done)
}

/// Sends `RenewNow` for `certs`; `None` when the scheduler is gone.
async fn ask(
    ctx: &ControlContext,
    certs: Vec<CertName>,
    request: &RenewRequest,
) -> Option<RenewNowReply> {
    let (reply, answer) = oneshot::channel();
    ctx.scheduler
        .send(SchedulerCommand::RenewNow {
            certs,
            force: request.force,
            only_ca: request.only_ca.clone(),
            reply,
        })
        .await
        .ok()?;
    answer.await.ok()
}

/// The waiting certificates whose outcome the store already shows, taken off the list.
fn settled(
    ctx: &ControlContext,
    waiting: &mut Waiting,
    before: &HashMap<CertName, CertState>,
) -> Vec<CertOutcome> {
    let mut lines = Vec::new();
    for cert in waiting.snapshot() {
        let line = answer(ctx, &cert, before);
        if !matches!(line.result, RenewResult::Unfinished { .. }) {
            waiting.remove(&cert);
            lines.push(line);
        }
    }
    lines
}

fn answer(
    ctx: &ControlContext,
    cert: &CertName,
    before: &HashMap<CertName, CertState>,
) -> CertOutcome {
    let result = match ctx.store.cert_state(cert) {
        Ok(after) => RenewResult::from_store(before.get(cert), after.as_ref()),
        Err(e) => RenewResult::Unfinished {
            reason: format!("the state store: {e}"),
        },
    };
    CertOutcome {
        cert: cert.clone(),
        result,
    }
}

/// A finished job's answer: what the job reported when the store cannot tell it — a
/// deferral, a certificate another process renewed meanwhile, a lease another process holds
/// (the daemon goes on at the stored next attempt) — else read from the store.
fn answer_ended(
    ctx: &ControlContext,
    cert: &CertName,
    before: &HashMap<CertName, CertState>,
    result: JobResult,
) -> CertOutcome {
    let result = match result {
        r @ (JobResult::Deferred { .. } | JobResult::AlreadyRenewed { .. }) => {
            RenewResult::of_job(r)
        }
        JobResult::Busy => {
            match ctx
                .store
                .cert_state(cert)
                .ok()
                .flatten()
                .and_then(|s| s.next_attempt)
            {
                // The lease held elsewhere stores a retry time ahead; a job of this daemon
                // already running for the certificate stores none (a past one is stale).
                Some(until) if until > chrono::Utc::now() => RenewResult::Deferred {
                    until,
                    reason: "another renewd process holds the certificate's lease".into(),
                },
                _ => RenewResult::of_job(JobResult::Busy),
            }
        }
        _ => return answer(ctx, cert, before),
    };
    CertOutcome {
        cert: cert.clone(),
        result,
    }
}

/// Each job's result as the issuer reported it, kept until its `WorkDone` is answered.
struct Ended {
    events: broadcast::Receiver<IssuerEvent>,
    results: HashMap<CertName, JobResult>,
}

impl Ended {
    fn new(events: broadcast::Receiver<IssuerEvent>) -> Self {
        Self {
            events,
            results: HashMap::new(),
        }
    }

    /// Takes in the results queued so far for the certificates still waited for. A result
    /// lost to lag is read from the store instead.
    fn catch_up(&mut self, waiting: &Waiting) {
        loop {
            match self.events.try_recv() {
                Ok(IssuerEvent::JobEnded { cert, result }) if waiting.contains(&cert) => {
                    self.results.insert(cert, result);
                }
                Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
    }

    fn take(&mut self, cert: &CertName) -> Option<JobResult> {
        self.results.remove(cert)
    }
}

/// The certificates whose answer is still to come.
#[derive(Default)]
struct Waiting(HashSet<CertName>);

impl Waiting {
    /// Takes in the scheduler's reply: queued and in-flight certificates are waited for;
    /// the others are answered at once (returned).
    fn take(&mut self, reply: RenewNowReply) -> Vec<CertOutcome> {
        self.0.extend(reply.queued);
        self.0.extend(reply.in_flight);
        let not_due = reply
            .not_due
            .into_iter()
            .map(|(cert, next_renewal)| CertOutcome {
                cert,
                result: RenewResult::NotDue { next_renewal },
            });
        let unknown = reply.unknown.into_iter().map(|cert| CertOutcome {
            cert,
            result: RenewResult::Unknown,
        });
        not_due.chain(unknown).collect()
    }

    fn contains(&self, cert: &CertName) -> bool {
        self.0.contains(cert)
    }

    fn remove(&mut self, cert: &CertName) {
        self.0.remove(cert);
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn snapshot(&self) -> Vec<CertName> {
        self.0.iter().cloned().collect()
    }

    fn drain(&mut self) -> Vec<CertName> {
        self.0.drain().collect()
    }
}

#[cfg(test)]
#[path = "serve_tests.rs"]
mod tests;
