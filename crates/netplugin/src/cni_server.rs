//! The CNI socket: `contiv_cni::agent_api` (HTTP/1.1, JSON, one request per connection) served
//! with axum on a unix socket. Each request runs on tokio's blocking pool, so ADDs proceed in
//! parallel (the agent orders them per network).

use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use contiv_cni::agent_api::{self as api, AgentAck, AgentError};
use contiv_cni::error::codes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::agent::Agent;

fn json_response<T: Serialize>(status: u16, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

fn reply<T: Serialize>(r: Result<T, AgentError>) -> Response {
    match r {
        Ok(v) => json_response(200, &v),
        Err(e) => json_response(e.http_status(), &e),
    }
}

/// Decodes the body and runs `op` on the blocking pool.
async fn run<Req, Resp>(
    agent: Arc<Agent>,
    body: Bytes,
    op: fn(&Agent, &Req) -> Result<Resp, AgentError>,
) -> Response
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
{
    let req: Req = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let err = AgentError::new(codes::DECODE_FAILURE, format!("invalid request: {e}"));
            return reply::<()>(Err(err));
        }
    };
    let joined = tokio::task::spawn_blocking(move || op(&agent, &req)).await;
    match joined {
        Ok(r) => reply(r),
        Err(e) => reply::<()>(Err(AgentError::new(
            codes::INTERNAL,
            format!("agent task failed: {e}"),
        ))),
    }
}

fn ack(r: Result<(), AgentError>) -> Result<AgentAck, AgentError> {
    r.map(|()| AgentAck {})
}

async fn add(State(a): State<Arc<Agent>>, body: Bytes) -> Response {
    run::<api::AgentAddRequest, _>(a, body, |a, r| a.add(r)).await
}
async fn del(State(a): State<Arc<Agent>>, body: Bytes) -> Response {
    run::<api::AgentDelRequest, _>(a, body, |a, r| ack(a.del(r))).await
}
async fn check(State(a): State<Arc<Agent>>, body: Bytes) -> Response {
    run::<api::AgentCheckRequest, _>(a, body, |a, r| a.check(r)).await
}
async fn status(State(a): State<Arc<Agent>>, body: Bytes) -> Response {
    run::<api::AgentStatusRequest, _>(a, body, |a, r| ack(a.status(r))).await
}
async fn gc(State(a): State<Arc<Agent>>, body: Bytes) -> Response {
    run::<api::AgentGcRequest, _>(a, body, |a, r| ack(a.gc(r))).await
}

/// The routes of the agent protocol.
pub fn router(agent: Arc<Agent>) -> Router {
    Router::new()
        .route(api::PATH_ADD, post(add))
        .route(api::PATH_DEL, post(del))
        .route(api::PATH_CHECK, post(check))
        .route(api::PATH_STATUS, post(status))
        .route(api::PATH_GC, post(gc))
        .with_state(agent)
}

/// Binds the CNI socket: mode 0600 in a directory made 0700 when missing
/// ([`crate::socket::bind_root_only`]).
pub fn bind(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    crate::socket::bind_root_only(path, "CNI")
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::UnixListener,
    agent: Arc<Agent>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(agent))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn the_socket_is_0600_in_a_0700_directory() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("run/contiv/netplugin.sock");
        let _l = super::bind(&path).expect("bind");
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("dir")), 0o700);
        // A stale socket of a killed agent is replaced, with the same mode.
        drop(_l);
        let _l = super::bind(&path).expect("rebind");
        assert_eq!(mode(&path), 0o600);
    }
}
