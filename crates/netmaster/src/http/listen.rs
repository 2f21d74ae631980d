//! Where netmaster listens and what each listener may serve: the plain-HTTP policy (loopback, or
//! `--insecure-http` with a loud warning), the plain loopback listener beside TLS
//! (`--plain-loopback`, for clients on this host that cannot speak TLS) and the identity a TLS
//! client certificate proved ([`Peer`], read by the auth layers through `ConnectInfo`), and with
//! `--plain-loopback-root-admin` the local user owning the client socket there.
//! Serving itself, with its limits, is [`super::serve`].

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use contiv_tls::PeerIdentity;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The main listener (`--external-address`), TLS or plain.
    Main,
    /// The plain loopback listener beside TLS (`--plain-loopback`).
    PlainLoopback,
}

/// The far end of a connection: its address, which listener it reached and, on TLS with a
/// verified client certificate, who the certificate names.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    pub identity: Option<PeerIdentity>,
    pub via: Via,
    /// The uid owning the client's socket, looked up at accept time only on the plain loopback
    /// listener with `--plain-loopback-root-admin` (`None` elsewhere or when not found).
    pub local_uid: Option<u32>,
}

/// The name a token-less call of root on the plain loopback listener acts under (audit log).
pub const LOCAL_ROOT: &str = "local-root";

impl Peer {
    /// Whether this connection is root on this host, trusted as `admin` without a token
    /// (`--plain-loopback-root-admin`): root here can read the store anyway, the same trust a
    /// root-only unix socket gives.
    pub fn is_local_root(&self) -> bool {
        self.via == Via::PlainLoopback && self.local_uid == Some(0)
    }
}

/// Checks `--plain-loopback`: it must name a loopback address, since it serves without TLS.
pub fn plain_loopback_addr(addr: &str) -> Result<SocketAddr, String> {
    let parsed: SocketAddr = addr.parse().map_err(|_| {
        format!("--plain-loopback {addr:?}: give an address and port such as 127.0.0.1:9999")
    })?;
    if parsed.ip().is_loopback() {
        Ok(parsed)
    } else {
        Err(format!(
            "--plain-loopback {addr}: refusing to serve plain HTTP beside TLS on an address that \
             is not loopback (127.0.0.0/8 or ::1): anyone on the network could read tokens"
        ))
    }
}

/// Layer: the plain loopback listener never serves the agent API. Agents prove their host with
/// a client certificate, which a plain connection cannot carry; without this, any local process
/// could act as any host there when client certificates are not verified.
pub async fn agents_need_tls(req: Request, next: Next) -> Response {
    let plain = req
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .is_some_and(|c| c.0.via == Via::PlainLoopback);
    if plain && req.uri().path().starts_with("/plugin/") {
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "agent calls (/plugin/*) are served only over TLS, not on the plain loopback \
             listener: point the agent at netmaster's https address",
        )
            .into_response();
    }
    next.run(req).await
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

/// The identity of the verified client certificate, if one was offered. A verified certificate
/// whose subject does not say who it is counts as none (the call is then refused where a host
/// is required).
pub(crate) fn client_identity(
    tls: &TlsStream<TcpStream>,
    addr: SocketAddr,
) -> Option<PeerIdentity> {
    let cert = tls.get_ref().1.peer_certificates()?.first()?;
    match contiv_tls::identity_of(cert.as_ref()) {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::warn!(%addr, "client certificate names no Contiv identity: {e}");
            None
        }
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

    #[test]
    fn plain_loopback_only_on_loopback() {
        assert!(plain_loopback_addr("127.0.0.1:9999").is_ok());
        assert!(plain_loopback_addr("127.3.4.5:1").is_ok());
        assert!(plain_loopback_addr("[::1]:9999").is_ok());
        let err = plain_loopback_addr("0.0.0.0:9999").unwrap_err();
        assert!(err.contains("not loopback"), "{err}");
        assert!(plain_loopback_addr("10.0.0.1:9999").is_err());
        assert!(plain_loopback_addr("localhost").is_err());
    }
}
