//! `renewd renew` alongside a running daemon: the request goes over its control socket and
//! the daemon's answers are printed as they arrive.

use std::io;
use std::path::Path;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio_util::sync::CancellationToken;

use super::Report;
use crate::engine::control::{ControlRequest, RenewRequest, socket_path};
use crate::engine::outcome::{CertOutcome, FinalLine, Finish};
use crate::selection::RenewSelection;

/// Whether a daemon took the pass.
#[derive(Debug, PartialEq, Eq)]
pub enum Forwarded {
    /// It did, and answered every certificate (or said why not).
    Done,
    /// No daemon listens: run the pass here.
    NoDaemon,
}

/// Forwards `selection` to the daemon of `state_dir`, if one listens.
pub async fn forward(
    state_dir: &Path,
    selection: &RenewSelection,
    cancel: &CancellationToken,
    report: &mut Report,
) -> anyhow::Result<Forwarded> {
    let path = socket_path(state_dir);
    let stream = match UnixStream::connect(&path).await {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(Forwarded::NoDaemon);
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "cannot reach the daemon's control socket {}",
                    path.display()
                )
            });
        }
    };
    tracing::info!(path = %path.display(), "a daemon is running: it renews, this process reports");
    let request = ControlRequest {
        renew: RenewRequest {
            certs: selection.certs.clone(),
            force: selection.force,
            only_ca: selection.only_ca.clone(),
        },
    };
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_string(&request).context("encoding the request")?;
    line.push('\n');
    write
        .write_all(line.as_bytes())
        .await
        .context("sending the request to the daemon")?;
    let mut lines = BufReader::new(read).lines();
    loop {
        let next = tokio::select! {
            () = cancel.cancelled() => {
                report.error("interrupted; the daemon goes on with the renewals it queued");
                return Ok(Forwarded::Done);
            }
            next = lines.next_line() => next.context("reading the daemon's answer")?,
        };
        let Some(line) = next else {
            anyhow::bail!("the daemon closed the connection before answering every certificate");
        };
        if let Ok(last) = serde_json::from_str::<FinalLine>(&line) {
            if let Finish::Error(why) = last.finish {
                report.error(&format!("the daemon: {why}"));
            }
            return Ok(Forwarded::Done);
        }
        let outcome: CertOutcome = serde_json::from_str(&line)
            .with_context(|| format!("the daemon's answer is not understood: {line}"))?;
        report.outcome(&outcome);
    }
}
