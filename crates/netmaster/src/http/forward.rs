//! Writes reaching a follower are forwarded to the leader (as Contiv's netmaster proxied them), so
//! clients and agents may talk to any netmaster. Reads are served from the follower's memory,
//! which follows the store; the few reads that show what only the leader holds in memory (policy
//! reports of the agents) are forwarded too.
//!
//! A forwarded request carries `X-Contiv-Forwarded`; a netmaster that receives one while not
//! leading refuses it (503) instead of forwarding again, so a request never loops between
//! netmasters that disagree about the leader for a moment.

use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::reply::{ErrorStyle, Reply};
use super::AppState;
use crate::error::{ApiError, ErrorKind};

/// Marks a request one netmaster forwarded to another.
pub const FORWARDED: &str = "x-contiv-forwarded";
/// Largest body forwarded (the API's objects are small; this bounds memory per request).
const MAX_BODY: usize = 16 << 20;
const TIMEOUT: Duration = Duration::from_secs(30);

/// Whether this request must be handled by the leader.
fn leader_only(method: &Method, path: &str) -> bool {
    if method != Method::GET && method != Method::HEAD {
        return true;
    }
    path.starts_with("/api/v1/policyStatus")
        || path.starts_with("/api/v1/inspect/policys/")
        || path.starts_with("/api/v1/inspect/rules/")
}

/// Middleware: forwards leader-only requests when this netmaster is not the leader.
pub async fn to_leader(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let leadership = app.engine.leadership();
    if leadership.is_leader() || !leader_only(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let style = ErrorStyle::from_headers(req.headers());
    let refuse =
        |msg: String| Reply::json::<()>(style, Err(ApiError::new(ErrorKind::NotLeader, msg)));
    if req.headers().contains_key(FORWARDED) {
        return refuse(
            "this netmaster is not the leader (the request was already forwarded once): nothing \
             was written, retry"
                .into(),
        )
        .into_response();
    }
    let Some(leader) = leadership.leader_elsewhere() else {
        return refuse(
            "no netmaster is the leader yet (election under way): nothing was written, retry shortly"
                .into(),
        )
        .into_response();
    };
    match forward(&leader.url, req).await {
        Ok(resp) => resp,
        Err(e) => refuse(format!(
            "the leader {} could not be reached ({e}): nothing was written here, retry",
            leader.url
        ))
        .into_response(),
    }
}

static AGENT: std::sync::OnceLock<ureq::Agent> = std::sync::OnceLock::new();

fn new_agent(tls: Option<ureq::tls::TlsConfig>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT));
    if let Some(tls) = tls {
        config = config.tls_config(tls);
    }
    config.build().into()
}

/// Sets the TLS side of forwarding (netmaster's own certificate as client certificate, the CA of
/// the other netmasters); called once at start, before serving.
pub fn configure(files: &contiv_tls::ClientFiles) -> Result<(), contiv_tls::TlsError> {
    if files.is_empty() {
        return Ok(());
    }
    let agent = new_agent(Some(contiv_tls::client_config(files)?));
    let _ = AGENT.set(agent);
    Ok(())
}

/// The one HTTP client of the forwarding (its keep-alive connections to the leader are reused
/// across requests instead of one connection per forwarded write).
fn client() -> &'static ureq::Agent {
    AGENT.get_or_init(|| new_agent(None))
}

/// Sends `req` to `base` and returns its answer as-is (status, content type, body).
async fn forward(base: &str, req: Request) -> Result<Response, String> {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, MAX_BODY)
        .await
        .map_err(|e| format!("reading the request body: {e}"))?;
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let method = parts.method.clone();
    let content_type = parts.headers.get("content-type").cloned();
    let accept = parts.headers.get("accept").cloned();
    // The leader judges the user again (it verifies the same signing keys from the store).
    let token = parts.headers.get(super::users::TOKEN_HEADER).cloned();
    tokio::task::spawn_blocking(move || {
        let agent = client();
        let mut builder = ureq::http::Request::builder()
            .method(method.as_str())
            .uri(&url)
            .header(FORWARDED, "1");
        if let Some(v) = content_type {
            builder = builder.header("content-type", v.as_bytes());
        }
        if let Some(v) = accept {
            builder = builder.header("accept", v.as_bytes());
        }
        if let Some(v) = token {
            builder = builder.header(super::users::TOKEN_HEADER, v.as_bytes());
        }
        let request = builder
            .body(body.to_vec())
            .map_err(|e| format!("building the request: {e}"))?;
        let mut resp = agent.run(request).map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY as u64)
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        let mut out = Response::new(Body::from(bytes));
        *out.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        if let Some(c) = ctype {
            out.headers_mut().insert("content-type", c);
        }
        Ok(out)
    })
    .await
    .map_err(|e| format!("forwarding task failed: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_leader_memory_reads_go_to_the_leader() {
        assert!(leader_only(&Method::POST, "/api/v1/networks/t:n/"));
        assert!(leader_only(&Method::DELETE, "/api/v1/networks/t:n/"));
        assert!(leader_only(&Method::POST, "/plugin/createEndpoint"));
        assert!(leader_only(&Method::GET, "/api/v1/policyStatus/"));
        assert!(leader_only(&Method::GET, "/api/v1/inspect/rules/t:p-1/"));
        assert!(!leader_only(&Method::GET, "/api/v1/networks/"));
        assert!(!leader_only(&Method::GET, "/plugin/agentWatch"));
        assert!(!leader_only(&Method::GET, "/info"));
    }
}
