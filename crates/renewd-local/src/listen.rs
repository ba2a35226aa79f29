//! Binding the responders' listening sockets, the accept loop they share, and [`Serving`]:
//! those loops running under one stop token, as a responder holds them.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use renewd_core::ChallengeType;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

use crate::error::Error;

/// Binds every address or none: on the first failure the sockets already bound are closed
/// and the error names the address. IPv6 sockets are IPv6-only, so `0.0.0.0:80` and
/// `[::]:80` can both be listed.
pub(crate) fn bind_all(
    addrs: &[SocketAddr],
    challenge: ChallengeType,
) -> Result<Vec<TcpListener>, Error> {
    addrs
        .iter()
        .map(|&addr| {
            bind(addr).map_err(|source| Error::Bind {
                challenge,
                addr,
                source,
            })
        })
        .collect()
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Rebinding right after a restart must not fail on connections in TIME_WAIT. (On Linux
    // this does not let two listeners share a port.)
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// A responder's listeners at work: one [`accept_loop`] per listener, all stopped by one
/// token, which is cancelled by [`Serving::stop`], by the responder's start token, or when
/// this is dropped.
#[derive(Debug)]
pub(crate) struct Serving {
    local_addrs: Vec<SocketAddr>,
    tracker: TaskTracker,
    stop: CancellationToken,
    _stop_on_drop: DropGuard,
}

impl Serving {
    /// Runs an accept loop on each of `listeners` (bound from `configured`, in the same
    /// order) until `shutdown` is cancelled, handing every connection to a clone of `serve`
    /// and allowing `drain` for the connections in progress at the end. Fails with
    /// [`Error::Bind`] if a listener's address cannot be read back.
    pub(crate) fn spawn<F, Fut>(
        listeners: Vec<TcpListener>,
        configured: &[SocketAddr],
        challenge: ChallengeType,
        shutdown: &CancellationToken,
        drain: Duration,
        serve: F,
    ) -> Result<Serving, Error>
    where
        F: Fn(TcpStream, SocketAddr, CancellationToken) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stop = shutdown.child_token();
        let tracker = TaskTracker::new();
        let mut local_addrs = Vec::with_capacity(listeners.len());
        for (listener, &addr) in listeners.into_iter().zip(configured) {
            let local = listener.local_addr().map_err(|source| Error::Bind {
                challenge,
                addr,
                source,
            })?;
            local_addrs.push(local);
            tracker.spawn(accept_loop(listener, stop.clone(), drain, serve.clone()));
        }
        tracker.close();
        Ok(Serving {
            local_addrs,
            tracker,
            stop: stop.clone(),
            _stop_on_drop: stop.drop_guard(),
        })
    }

    /// The addresses it listens on (the configured ones, with port 0 resolved).
    pub(crate) fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Stops accepting; connections in progress get their drain time.
    pub(crate) fn stop(&self) {
        self.stop.cancel();
    }

    /// Resolves once every loop has ended: listeners closed, connections finished. The
    /// future does not keep the listeners alive.
    pub(crate) fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let tracker = self.tracker.clone();
        async move { tracker.wait().await }
    }
}

/// Accepts connections on `listener` until `shutdown`, handing each to `serve` (which gets
/// its own child token to finish gracefully). On shutdown, stops accepting and waits for
/// the connections in progress, at most `drain`.
async fn accept_loop<F, Fut>(
    listener: TcpListener,
    shutdown: CancellationToken,
    drain: Duration,
    serve: F,
) where
    F: Fn(TcpStream, SocketAddr, CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    let local = listener.local_addr().ok();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve(stream, peer, shutdown.child_token()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(?local, error = %e, "accept failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            },
            // Reap finished connections as they go, so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
}
