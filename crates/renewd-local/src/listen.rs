//! Binding the responders' listening sockets, and the accept loop they share.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use renewd_core::ChallengeType;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

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

/// Accepts connections on `listener` until `shutdown`, handing each to `serve` (which gets
/// its own child token to finish gracefully). On shutdown, stops accepting and waits for
/// the connections in progress, at most `drain`.
pub(crate) async fn accept_loop<F, Fut>(
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
