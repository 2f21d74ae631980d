//! Serving the router on TCP, plain or TLS, with the limits a hostile client meets at the
//! connection level: a cap on open connections, a deadline for the request head (which also
//! closes idle keep-alive connections), a bound on the head's size, and the TLS handshake's own
//! deadline.
//!
//! Why hyper's `http1` connection builder and not `axum::serve`: `axum::serve` exposes none of
//! hyper's connection settings, so a client could hold a connection forever by sending nothing
//! or one byte a second, and each such connection kept a file descriptor until the process ran
//! out and stopped accepting anyone. Here each connection is its own task, holding one slot of
//! the cap; at the cap, new connections are closed at once so the accept loop never stalls the
//! connections already served.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::listen::{client_identity, Peer, Via};

/// How long a TLS client has to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish their requests once netmaster stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Connection-level limits, shared by every listener of the process.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Time to send a request head, from the moment the connection waits for one.
    pub head_timeout: Duration,
    /// Largest request head in bytes (hyper answers 431 beyond it).
    pub max_head_bytes: usize,
}

/// One listening socket and how its connections are served.
pub struct Endpoint {
    pub tcp: TcpListener,
    /// `None`: plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub via: Via,
    /// Look up the local owner of each client socket (`--plain-loopback-root-admin`).
    pub owner_lookup: bool,
}

/// Serves `router` on every endpoint until `stop` resolves, then lets open connections finish
/// for a few seconds. `slots` is the connection cap, shared by all endpoints.
pub async fn serve(
    endpoints: Vec<Endpoint>,
    router: Router,
    limits: ConnLimits,
    slots: Arc<Semaphore>,
    stop: impl std::future::Future<Output = ()>,
) {
    let (stopping, stopped) = watch::channel(false);
    let total = slots.available_permits();
    let loops: Vec<_> = endpoints
        .into_iter()
        .map(|ep| {
            let conn = Conn {
                router: router.clone(),
                limits: limits.clone(),
                tls: ep.tls.map(TlsAcceptor::from),
                via: ep.via,
                owner_lookup: ep.owner_lookup,
                stopped: stopped.clone(),
            };
            tokio::spawn(accept_loop(ep.tcp, conn, slots.clone()))
        })
        .collect();
    stop.await;
    let _ = stopping.send(true);
    for l in &loops {
        l.abort();
    }
    // Every connection returns its slot when it ends.
    let drained = u32::try_from(total).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, slots.acquire_many(drained)).await;
}

/// What each connection task needs.
#[derive(Clone)]
struct Conn {
    router: Router,
    limits: ConnLimits,
    tls: Option<TlsAcceptor>,
    via: Via,
    owner_lookup: bool,
    stopped: watch::Receiver<bool>,
}

async fn accept_loop(tcp: TcpListener, conn: Conn, slots: Arc<Semaphore>) {
    let mut refused: u64 = 0;
    let mut last_warning: Option<tokio::time::Instant> = None;
    loop {
        let (stream, addr) = match tcp.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // At the cap: close at once (the client sees the connection end) rather than let
            // it wait in the backlog behind connections that may never finish.
            drop(stream);
            refused += 1;
            if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                tracing::warn!(
                    refused,
                    "connection cap reached (--max-connections): closing new connections"
                );
                last_warning = Some(tokio::time::Instant::now());
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let peer = Peer {
            addr,
            identity: None,
            via: conn.via,
            local_uid: None,
        };
        tokio::spawn(conn.clone().run(stream, peer, slot));
    }
}

impl Conn {
    /// One connection, from the TLS handshake (if any) to its end; holds its slot throughout.
    async fn run(self, stream: tokio::net::TcpStream, mut peer: Peer, _slot: OwnedSemaphorePermit) {
        let Some(acceptor) = self.tls.clone() else {
            if self.owner_lookup {
                peer.local_uid = socket_owner(&stream, peer.addr).await;
            }
            return self.http(stream, peer).await;
        };
        let addr = peer.addr;
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => {
                peer.identity = client_identity(&tls, addr);
                self.http(tls, peer).await
            }
            Ok(Err(e)) => tracing::debug!(%addr, "TLS handshake failed: {e}"),
            Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
        }
    }

    /// Serves HTTP/1.1 requests on `io` until the client leaves, breaks a limit or netmaster
    /// stops.
    async fn http<I>(mut self, io: I, peer: Peer)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let addr = peer.addr;
        let router = self.router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            // What `into_make_service_with_connect_info` did: the auth layers read the peer.
            req.extensions_mut().insert(ConnectInfo(peer.clone()));
            router.clone().oneshot(req)
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            // hyper starts this clock whenever the connection waits for a request head, so it
            // bounds a trickled head and an idle keep-alive connection alike.
            .header_read_timeout(self.limits.head_timeout)
            .max_header_size(self.limits.max_head_bytes);
        let conn = builder.serve_connection(TokioIo::new(io), service);
        let mut conn = std::pin::pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            _ = async { drop(self.stopped.wait_for(|s| *s).await) } => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%addr, "connection ended: {e}");
        }
    }
}

/// The local uid owning the client end of `stream`, read from /proc off the async threads (the
/// tables grow with every open socket on the host).
async fn socket_owner(stream: &tokio::net::TcpStream, client: std::net::SocketAddr) -> Option<u32> {
    let server = stream.local_addr().ok()?;
    let uid = tokio::task::spawn_blocking(move || super::peer_uid::owner_of(client, server))
        .await
        .ok()
        .flatten();
    if uid.is_none() {
        tracing::debug!(%client, "owner of the client socket not found: not trusted as root");
    }
    uid
}

/// Raises the soft limit of open files to the hard one (allowed without privileges) and returns
/// the limit now in force; `None` when it cannot be read.
pub fn raise_file_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard {
        if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            tracing::warn!("raising the open-file limit from {soft} to {hard}: {e}");
            return Some(soft);
        }
    }
    Some(hard.max(soft))
}

/// File descriptors kept back from the connection cap for the store, etcd, logs and the like.
const FD_RESERVE: u64 = 256;

/// The connection cap: `flag` when given, else the file limit less [`FD_RESERVE`] (at least 64).
pub fn connection_cap(flag: usize, file_limit: Option<u64>) -> usize {
    if flag > 0 {
        return flag;
    }
    let limit = file_limit.unwrap_or(1024);
    usize::try_from(limit.saturating_sub(FD_RESERVE).max(64)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_follows_the_file_limit_unless_given() {
        assert_eq!(connection_cap(500, Some(20_000)), 500);
        assert_eq!(connection_cap(0, Some(20_000)), 19_744);
        assert_eq!(connection_cap(0, Some(1024)), 768);
        assert_eq!(connection_cap(0, Some(100)), 64);
        assert_eq!(connection_cap(0, None), 768);
    }
}
