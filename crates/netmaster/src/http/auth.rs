//! Agents prove their host: the one layer in front of the `/plugin/*` routes when netmaster
//! verifies client certificates (`--tls-client-ca`). The certificate a connection proved
//! ([`Peer`]) becomes a [`Principal`]; [`authorize`] is the one decision of what that principal may
//! do to the object a call names. A refused call never reaches a handler, so it changes nothing.
//!
//! Without `--tls-client-ca` the layer is absent and agent calls work as before (loopback tests,
//! the quickstart). The REST API (`/api/v1/...`) is not judged here yet (users and roles come
//! later).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;
use contiv_api::agent::NodeInfo;
use contiv_api::policy::PolicyReport;
use contiv_tls::{PeerIdentity, PeerRole};
use parking_lot::RwLock;

use super::forward::FORWARDED;
use super::listen::Peer;
use super::plugin::decode;
use super::reply::{error_response, ErrorStyle};
use super::AppState;
use crate::error::{ApiError, ErrorKind};
use crate::plugin::{
    delete_target, update_target, CreateEndpointRequest, DeleteEndpointRequest,
    UpdateEndpointRequest,
};
use crate::state::State as NetState;

/// Largest agent request body read for the decision: axum's default limit of the `Bytes`
/// extractor the handlers use, so the layer refuses nothing a handler would take.
const MAX_BODY: usize = 2 << 20;
/// How often the deny list's file is checked for a change.
const DENY_POLL: Duration = Duration::from_secs(1);

/// Who a verified certificate says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A host agent: may act only as this host.
    Host(String),
    /// Another netmaster, forwarding a call it already authorised.
    Netmaster,
}

/// An agent call and the object it names.
#[derive(Debug)]
pub enum AgentCall {
    /// registerNode / heartbeat, policyReport, createEndpoint: the host named in the body.
    ActAs(String),
    /// deleteEndpoint / updateEndpoint: the endpoint's record id, when it exists.
    Endpoint(Option<String>),
    /// Reads of the agent state and address allocation: any authenticated host.
    Any,
}

/// Whether `who` may make `call`; `st` resolves the endpoint a call names.
pub fn authorize(who: &Principal, call: &AgentCall, st: &NetState) -> Result<(), ApiError> {
    let Principal::Host(host) = who else {
        return Ok(());
    };
    let forbidden = |what: &str| {
        Err(ApiError::new(
            ErrorKind::Forbidden,
            format!("host certificate {host:?} may not act for {what}: nothing was changed"),
        ))
    };
    match call {
        AgentCall::Any => Ok(()),
        AgentCall::ActAs(named) if named == host => Ok(()),
        AgentCall::ActAs(named) => forbidden(&format!("host {named:?}")),
        AgentCall::Endpoint(None) => Ok(()), // unknown: the handler answers 404
        AgentCall::Endpoint(Some(id)) => match st.endpoints.get(id) {
            Some(ep) if ep.homing_host != *host => {
                forbidden(&format!("endpoint {id} of host {:?}", ep.homing_host))
            }
            _ => Ok(()),
        },
    }
}

/// Reads what an agent call names from its path and body, decoded exactly as its handler decodes
/// it. `None`: the body does not decode (the handler answers 400) or the route is unknown.
fn agent_call(path: &str, body: &[u8], st: &NetState) -> Option<AgentCall> {
    let call = match path.trim_end_matches('/') {
        "/plugin/registerNode" => {
            AgentCall::ActAs(serde_json::from_slice::<NodeInfo>(body).ok()?.hostname)
        }
        "/plugin/policyReport" => {
            AgentCall::ActAs(serde_json::from_slice::<PolicyReport>(body).ok()?.hostname)
        }
        "/plugin/createEndpoint" => {
            AgentCall::ActAs(decode::<CreateEndpointRequest>(body).ok()?.config_ep.host)
        }
        "/plugin/deleteEndpoint" => {
            let id = delete_target(&decode::<DeleteEndpointRequest>(body).ok()?);
            AgentCall::Endpoint(st.endpoints.contains_key(&id).then_some(id))
        }
        "/plugin/updateEndpoint" => {
            let req = decode::<UpdateEndpointRequest>(body).ok()?;
            AgentCall::Endpoint(update_target(st, &req).map(|ep| ep.id.clone()))
        }
        _ => AgentCall::Any,
    };
    Some(call)
}

/// Agent authentication state: the revoked certificates.
pub struct AgentAuth {
    deny: DenyList,
}

impl AgentAuth {
    /// Loads the deny list (if any) and starts following its file.
    pub fn start(deny_list: Option<PathBuf>) -> Result<Arc<AgentAuth>, String> {
        let deny = DenyList::load(deny_list)?;
        let auth = Arc::new(AgentAuth { deny });
        if auth.deny.path.is_some() {
            tokio::spawn(follow_deny_list(Arc::downgrade(&auth)));
        }
        Ok(auth)
    }

    /// The principal `id` proves, unless its certificate is revoked.
    pub fn principal(&self, id: &PeerIdentity) -> Result<Principal, ApiError> {
        if self.deny.refuses(id) {
            return Err(ApiError::new(
                ErrorKind::Forbidden,
                format!(
                    "certificate {} of {:?} is revoked (deny list)",
                    id.serial, id.name
                ),
            ));
        }
        Ok(match id.role {
            PeerRole::Host => Principal::Host(id.name.clone()),
            PeerRole::Netmaster => Principal::Netmaster,
        })
    }
}

/// Revoked certificates: serials (normalised hex) and host names, re-read when the file changes.
struct DenyList {
    path: Option<PathBuf>,
    entries: RwLock<HashSet<String>>,
    stamp: RwLock<Option<(SystemTime, u64)>>,
}

impl DenyList {
    fn load(path: Option<PathBuf>) -> Result<DenyList, String> {
        let list = DenyList {
            path,
            entries: RwLock::default(),
            stamp: RwLock::default(),
        };
        if let Some(p) = &list.path {
            let (entries, stamp) = read_deny_list(p)
                .map_err(|e| format!("reading the deny list {}: {e}", p.display()))?;
            *list.entries.write() = entries;
            *list.stamp.write() = Some(stamp);
        }
        Ok(list)
    }

    fn refuses(&self, id: &PeerIdentity) -> bool {
        let entries = self.entries.read();
        entries.contains(&id.serial) || entries.contains(&format!("host:{}", id.name))
    }

    /// Re-reads the file when its modification time or size moved; a file that cannot be read
    /// keeps the last list (a half-written edit must not lift every revocation).
    fn refresh(&self) {
        let Some(p) = &self.path else { return };
        let Ok(meta) = std::fs::metadata(p) else {
            return;
        };
        let now = meta.modified().ok().map(|m| (m, meta.len()));
        if now.is_some() && now == *self.stamp.read() {
            return;
        }
        match read_deny_list(p) {
            Ok((entries, stamp)) => {
                tracing::info!(path = %p.display(), entries = entries.len(), "deny list reloaded");
                *self.entries.write() = entries;
                *self.stamp.write() = Some(stamp);
            }
            Err(e) => tracing::warn!(path = %p.display(), "reading the deny list: {e}"),
        }
    }
}

/// Entries of a deny list file: a line is a serial (hex, `:` allowed) or a host name; `#` starts a
/// comment. Host names are kept as `host:<name>`, serials normalised; a line that is valid hex is
/// taken as both (a host named `beef` is as revoked as serial `beef`).
fn read_deny_list(path: &Path) -> std::io::Result<(HashSet<String>, (SystemTime, u64))> {
    let meta = std::fs::metadata(path)?;
    let text = std::fs::read_to_string(path)?;
    let mut entries = HashSet::new();
    for line in text.lines() {
        let item = line.split('#').next().unwrap_or("").trim();
        if item.is_empty() {
            continue;
        }
        if item.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            entries.insert(contiv_tls::normal_serial(item));
        }
        entries.insert(format!("host:{item}"));
    }
    Ok((entries, (meta.modified()?, meta.len())))
}

async fn follow_deny_list(auth: std::sync::Weak<AgentAuth>) {
    let mut tick = tokio::time::interval(DENY_POLL);
    loop {
        tick.tick().await;
        let Some(auth) = auth.upgrade() else { return };
        auth.deny.refresh();
    }
}

/// Middleware in front of every route: judges `/plugin/*` calls when agents must prove their host.
pub async fn agents(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let Some(auth) = app.agent_auth.clone() else {
        return next.run(req).await;
    };
    if !req.uri().path().starts_with("/plugin/") {
        return next.run(req).await;
    }
    let style = ErrorStyle::from_headers(req.headers());
    match judge(&app, &auth, req).await {
        Ok((req, None)) => next.run(req).await,
        Ok((req, Some(watcher))) => next
            .run(req)
            .await
            .map(|body| cut_when_revoked(body, auth, watcher)),
        Err(e) => {
            tracing::warn!("agent call refused: {e}");
            // The refused request's body may be unread: the connection cannot be reused, and a
            // client must not put it back in its pool.
            let mut resp = error_response(style, &e);
            resp.headers_mut().insert(
                header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            resp
        }
    }
}

/// The request, if `auth` lets it through, and the identity to keep checking while an agent's
/// watch stream stays open.
async fn judge(
    app: &AppState,
    auth: &AgentAuth,
    req: Request,
) -> Result<(Request, Option<PeerIdentity>), ApiError> {
    let identity = req
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .and_then(|c| c.0.identity.clone())
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::Unauthenticated,
                "agent calls need a host client certificate signed by the cluster CA",
            )
        })?;
    let who = auth.principal(&identity)?;
    if who == Principal::Netmaster {
        // Another netmaster forwards only what it authorised; it never calls on its own.
        return if req.headers().contains_key(FORWARDED) {
            Ok((req, None))
        } else {
            Err(ApiError::new(
                ErrorKind::Forbidden,
                "a netmaster certificate is accepted only on forwarded calls",
            ))
        };
    }
    if req.method() == Method::GET || req.method() == Method::HEAD {
        let watch = req.uri().path().starts_with("/plugin/agentWatch");
        return Ok((req, watch.then_some(identity)));
    }
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, MAX_BODY)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
    app.engine
        .read(|st| match agent_call(parts.uri.path(), &body, st) {
            Some(call) => authorize(&who, &call, st),
            None => Ok(()),
        })?;
    Ok((Request::from_parts(parts, Body::from(body)), None))
}

/// Ends an agent's watch stream once its certificate is revoked (checked every [`DENY_POLL`]), so
/// a revoked agent stops receiving state without a restart of anything.
fn cut_when_revoked(body: Body, auth: Arc<AgentAuth>, id: PeerIdentity) -> Body {
    use futures::StreamExt;
    let data = body.into_data_stream();
    let tick = tokio::time::interval(DENY_POLL);
    Body::from_stream(futures::stream::unfold(
        (data, tick, auth, id),
        |(mut data, mut tick, auth, id)| async move {
            loop {
                tokio::select! {
                    item = data.next() => return item.map(|i| (i, (data, tick, auth, id))),
                    _ = tick.tick() => {
                        if auth.deny.refuses(&id) {
                            tracing::warn!(host = %id.name, serial = %id.serial, "watch of a revoked agent ended");
                            return None;
                        }
                    }
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str, serial: &str) -> PeerIdentity {
        PeerIdentity {
            role: PeerRole::Host,
            name: name.into(),
            serial: serial.into(),
        }
    }

    #[test]
    fn a_host_acts_only_as_itself() {
        let st = NetState::default();
        let h1 = Principal::Host("h1".into());
        assert!(authorize(&h1, &AgentCall::ActAs("h1".into()), &st).is_ok());
        let err = authorize(&h1, &AgentCall::ActAs("h2".into()), &st).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Forbidden);
        assert!(authorize(&h1, &AgentCall::Any, &st).is_ok());
        assert!(authorize(&Principal::Netmaster, &AgentCall::ActAs("h2".into()), &st).is_ok());
    }

    #[test]
    fn the_deny_list_names_serials_and_hosts_and_follows_its_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("deny");
        std::fs::write(&path, "# revoked\n0A:BC  # old h9\nh3\n").unwrap();
        let list = DenyList::load(Some(path.clone())).unwrap();
        assert!(list.refuses(&id("h1", "abc")));
        assert!(list.refuses(&id("h3", "1")));
        assert!(!list.refuses(&id("h1", "1")));
        std::fs::write(&path, "h1\n").unwrap();
        list.refresh();
        assert!(list.refuses(&id("h1", "1")));
        assert!(!list.refuses(&id("h3", "1")));
    }
}
