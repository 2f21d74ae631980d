//! Where and how netmaster listens: the plain-HTTP policy (loopback, or `--insecure-http` with a
//! loud warning) and the TLS listener, which hands axum finished TLS connections with the
//! identity the client certificate proved ([`Peer`], read by the auth layer through
//! `ConnectInfo`).
//!
//! Handshakes run on their own tasks (bounded in number and time), so a client that opens a
//! connection and stalls never holds up the accept loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use contiv_tls::PeerIdentity;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HANDSHAKES: usize = 256;

/// The far end of a connection: its address and, on TLS with a verified client certificate,
/// who the certificate names.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    pub identity: Option<PeerIdentity>,
}

impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        Peer {
            addr: *stream.remote_addr(),
            identity: None,
        }
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// How plain HTTP on `addr` is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainHttp {
    /// Loopback: only this host reaches it.
    Loopback,
    /// Not loopback, allowed by `--insecure-http`: warn loudly.
    Insecure,
}

/// Whether netmaster may serve plain HTTP on `addr`.
pub fn plain_http_allowed(addr: SocketAddr, insecure_http: bool) -> Result<PlainHttp, String> {
    if addr.ip().is_loopback() {
        Ok(PlainHttp::Loopback)
    } else if insecure_http {
        Ok(PlainHttp::Insecure)
    } else {
        Err(format!(
            "refusing to serve plain HTTP on {addr}, which is not a loopback address: give \
             --tls-cert and --tls-key (netmaster certs init DIR makes them), listen on 127.0.0.1, \
             or pass --insecure-http to accept that anyone on the network can change everything"
        ))
    }
}

/// A TCP listener whose connections come out TLS-terminated.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, Peer)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp`; handshakes run in the background.
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx));
        Ok(TlsListener { ready, local })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, Peer)>,
) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
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
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%addr, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%addr, "TLS handshake timed out");
                    return;
                }
            };
            let identity = client_identity(&tls, addr);
            let _ = tx.send((tls, Peer { addr, identity })).await;
        });
    }
}

/// The identity of the verified client certificate, if one was offered. A verified certificate
/// whose subject does not say who it is counts as none (the call is then refused where a host
/// is required).
fn client_identity(tls: &TlsStream<TcpStream>, addr: SocketAddr) -> Option<PeerIdentity> {
    let cert = tls.get_ref().1.peer_certificates()?.first()?;
    match contiv_tls::identity_of(cert.as_ref()) {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::warn!(%addr, "client certificate names no Contiv identity: {e}");
            None
        }
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop only ends with the runtime.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(Peer {
            addr: self.local,
            identity: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback_unless_told() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            plain_http_allowed(at("127.0.0.1:9999"), false),
            Ok(PlainHttp::Loopback)
        );
        assert_eq!(
            plain_http_allowed(at("[::1]:9999"), false),
            Ok(PlainHttp::Loopback)
        );
        let err = plain_http_allowed(at("0.0.0.0:9999"), false).unwrap_err();
        assert!(err.contains("--insecure-http"), "{err}");
        assert_eq!(
            plain_http_allowed(at("0.0.0.0:9999"), true),
            Ok(PlainHttp::Insecure)
        );
    }
}
