//! The plugin socket: every path `/<Call>` is a POST whose body is taken as bytes and decoded
//! by [`Cnm::call`] (dockerd sends no Content-Type); each call runs on tokio's blocking pool.
//! Answers carry Docker's plugin media type; errors are `{"Err": "..."}`.

use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

use super::{Cnm, CnmError};

/// The media type dockerd expects of plugin answers.
pub const CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

/// Default socket: dockerd finds plugin `netplugin` there.
pub const DEFAULT_SOCKET: &str = "/run/docker/plugins/netplugin.sock";

fn answer(status: u16, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], bytes).into_response()
}

fn render(r: Result<Value, CnmError>, call: &str) -> Response {
    match r {
        Ok(v) => answer(200, &v),
        Err(e) => {
            if !matches!(e, CnmError::UnknownCall(_)) {
                tracing::warn!(call, "docker plugin call failed: {e}");
            }
            answer(e.status(), &json!({"Err": e.to_string()}))
        }
    }
}

async fn handle(State(cnm): State<Arc<Cnm>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let call = uri.path().trim_start_matches('/').to_string();
    if method != Method::POST {
        return render(
            Err(CnmError::UnknownCall(format!("{method} {call}"))),
            &call,
        );
    }
    let c = call.clone();
    let joined = tokio::task::spawn_blocking(move || cnm.call(&c, &body)).await;
    let r = joined.unwrap_or_else(|e| {
        Err(CnmError::Agent {
            msg: format!("plugin task failed: {e}"),
            details: None,
        })
    });
    render(r, &call)
}

/// Every call on one handler.
pub fn router(cnm: Arc<Cnm>) -> Router {
    Router::new().fallback(handle).with_state(cnm)
}

/// Binds the Docker plugin socket: mode 0600 (only root's dockerd talks to it) in a directory
/// made 0700 when missing ([`crate::socket::bind_root_only`]).
pub fn bind(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    crate::socket::bind_root_only(path, "Docker plugin")
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::UnixListener,
    cnm: Arc<Cnm>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(cnm))
        .with_graceful_shutdown(shutdown)
        .await
}
