//! The audit layer and `GET /api/v1/audit/`.
//!
//! The layer is the outermost one: it sees every call, including those the auth layers refuse. It
//! records every write (POST/PUT/PATCH/DELETE on any route) and every refused read (401, 403,
//! 429, or refused by the user guard, which answers 404 for another tenant's objects), and
//! appends the entry before the answer leaves. Agents' heartbeats (`registerNode`) and policy
//! reports that succeed are not recorded: they repeat every few seconds per host and change no
//! desired state.
//!
//! With several netmasters, a follower forwards writes to the leader: the leader records them
//! (it holds the object's before/after exactly) and marks its answer with [`AUDITED`], which the
//! follower strips instead of recording a second entry. The follower passes who called and from
//! where in [`ORIGIN_USER`]/[`ORIGIN_SOURCE`]; the leader believes them only from another
//! netmaster (its certificate, when agents must prove who they are). A request the follower
//! answers itself (refused, or the leader unreachable) is recorded by the follower. Entries are
//! in the store, which etcd shares: a new leader keeps appending to the same log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use contiv_model::ObjectKind;
use parking_lot::Mutex;
use serde_json::Value;

use super::forward::FORWARDED;
use super::listen::Peer;
use super::reply::{error_response, ErrorStyle};
use super::AppState;
use crate::audit::{self, AuditLog, Entry};
use crate::error::{ApiError, ErrorKind};
use crate::users::{Claims, Role};

/// Set on an answer whose call the answering netmaster already recorded.
pub const AUDITED: &str = "x-contiv-audited";
/// Who called a forwarded request (set by the forwarding netmaster).
pub const ORIGIN_USER: &str = "x-contiv-origin-user";
/// The original client's address of a forwarded request.
pub const ORIGIN_SOURCE: &str = "x-contiv-origin-source";
/// Largest request body read for the record (as large as forwarding accepts).
const MAX_BODY: usize = 16 << 20;
/// Largest error answer read for the record's `error`.
const MAX_ERROR: usize = 64 << 10;

/// What the layer knows of a call while it runs; the user guard adds the token's user, the
/// forwarding reads who called.
#[derive(Debug)]
pub struct Note {
    base_user: String,
    source: String,
    token_user: Mutex<Option<String>>,
    refused: AtomicBool,
}

impl Note {
    /// The user of a verified token.
    pub fn set_user(&self, name: &str) {
        *self.token_user.lock() = Some(name.to_owned());
    }
    /// The user guard refused the call (its 404 for another tenant's object is a refusal too).
    pub fn refuse(&self) {
        self.refused.store(true, Ordering::Relaxed);
    }
    pub fn user(&self) -> String {
        self.token_user
            .lock()
            .clone()
            .unwrap_or_else(|| self.base_user.clone())
    }
    pub fn source(&self) -> &str {
        &self.source
    }
}

fn is_write(m: &Method) -> bool {
    matches!(
        *m,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// Who called and from where, before any auth layer ran: an agent's host from its certificate,
/// a forwarding netmaster's word for its client, or anonymous.
fn origin(app: &AppState, req: &Request) -> (String, String) {
    let peer = req.extensions().get::<ConnectInfo<Peer>>().map(|c| &c.0);
    let addr = peer.map_or_else(String::new, |p| p.addr.to_string());
    let identity = peer.and_then(|p| p.identity.as_ref());
    let from_netmaster = match (&app.agent_auth, identity) {
        (None, _) => true,
        (Some(_), Some(id)) => id.role == contiv_tls::PeerRole::Netmaster,
        (Some(_), None) => false,
    };
    let h = req.headers();
    if from_netmaster && h.contains_key(FORWARDED) {
        let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if let (Some(u), Some(s)) = (get(ORIGIN_USER), get(ORIGIN_SOURCE)) {
            return (u, s);
        }
    }
    let user = match identity {
        Some(id) if id.role == contiv_tls::PeerRole::Host => format!("host:{}", id.name),
        Some(id) => format!("netmaster:{}", id.name),
        None => "anonymous".into(),
    };
    (user, addr)
}

/// The layer: see the module docs.
pub async fn record(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(log) = app.audit.clone() else {
        return next.run(req).await;
    };
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let style = ErrorStyle::from_headers(req.headers());
    let forwarded = req.headers().contains_key(FORWARDED);
    let (base_user, source) = origin(&app, &req);
    let note = Arc::new(Note {
        base_user,
        source,
        token_user: Mutex::new(None),
        refused: AtomicBool::new(false),
    });
    req.extensions_mut().insert(note.clone());
    let write = is_write(&method);
    let mut body = None;
    if write {
        let (parts, b) = req.into_parts();
        match to_bytes(b, MAX_BODY).await {
            Ok(bytes) => {
                body = Some(bytes.clone());
                req = Request::from_parts(parts, Body::from(bytes));
            }
            Err(e) => {
                let e = ApiError::bad_request(format!("reading the request body: {e}"));
                let resp = error_response(style, &e);
                let target = Target::of(&path, None);
                let entry = entry_of(&note, &method, &path, target, None, resp.status());
                return finish(&log, entry, e.message, resp, style, forwarded).await;
            }
        }
    }
    let target = Target::of(&path, body.as_deref());
    // The diff is taken where the write happens: a follower only forwards.
    let diff = write && app.engine.leadership().is_leader();
    let before = match target.object {
        Some((kind, ref key)) if diff => super::objects::object_json(&app.engine, kind, key),
        _ => None,
    };
    let mut resp = next.run(req).await;
    if resp.headers_mut().remove(AUDITED).is_some() {
        return resp;
    }
    let status = resp.status();
    let refused =
        note.refused.load(Ordering::Relaxed) || matches!(status.as_u16(), 401 | 403 | 429);
    if !(write || refused) || (write && status.is_success() && target.heartbeat) {
        return resp;
    }
    let after = match target.object {
        Some((kind, ref key)) if diff => super::objects::object_json(&app.engine, kind, key),
        _ => None,
    };
    let object_diff = target.object.is_some() && diff;
    let mut entry = entry_of(&note, &method, &path, target, body.as_deref(), status);
    if object_diff {
        entry.before = Some(before.unwrap_or(Value::Null));
        entry.after = Some(after.unwrap_or(Value::Null));
        if status.is_success() {
            entry.request = None;
        }
    }
    let mut error = String::new();
    if status.as_u16() >= 400 {
        let (msg, back) = error_message(resp).await;
        error = msg;
        resp = back;
    }
    finish(&log, entry, error, resp, style, forwarded).await
}

/// Appends the entry, then answers `resp` (marked as recorded for a forwarding netmaster), or a
/// 503 when the entry could not be written: no call is answered as done without its record.
async fn finish(
    log: &AuditLog,
    mut entry: Entry,
    error: String,
    mut resp: Response,
    style: ErrorStyle,
    forwarded: bool,
) -> Response {
    entry.error = error;
    let status = entry.status;
    if let Err(e) = log.append(log.now_nanos(), entry).await {
        tracing::error!("audit entry lost, answering 503: {e}");
        return error_response(
            style,
            &ApiError::new(
                ErrorKind::Unavailable,
                format!(
                    "{e}: the call was answered {status} but is not in the audit log; check \
                     before retrying"
                ),
            ),
        );
    }
    if forwarded {
        resp.headers_mut()
            .insert(AUDITED, HeaderValue::from_static("1"));
    }
    resp
}

fn entry_of(
    note: &Note,
    method: &Method,
    path: &str,
    t: Target,
    body: Option<&[u8]>,
    status: StatusCode,
) -> Entry {
    let mut user = note.user();
    // A login is made by the user it names (once it succeeded).
    if t.kind == "login" && status.is_success() && !t.key.is_empty() {
        user = t.key.clone();
    }
    Entry {
        user,
        source: note.source().to_owned(),
        method: method.to_string(),
        path: path.to_owned(),
        kind: t.kind,
        key: t.key,
        tenant: t.tenant,
        request: body.filter(|b| !b.is_empty()).map(|b| {
            serde_json::from_slice::<Value>(b)
                .map(scrub)
                .unwrap_or_else(|_| Value::String(format!("({} bytes, not JSON)", b.len())))
        }),
        status: status.as_u16(),
        ..Entry::default()
    }
}

/// What a call is about: object kind and key, tenant, and whether it is a Contiv object whose
/// before/after the engine can show.
struct Target {
    kind: String,
    key: String,
    tenant: String,
    object: Option<(ObjectKind, String)>,
    heartbeat: bool,
}

impl Target {
    fn of(path: &str, body: Option<&[u8]>) -> Target {
        let json: Value = body
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let field = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| json[*n].as_str().filter(|s| !s.is_empty()))
                .unwrap_or_default()
                .to_owned()
        };
        let mut t = Target {
            kind: String::new(),
            key: String::new(),
            tenant: String::new(),
            object: None,
            heartbeat: false,
        };
        let trimmed = path.trim_end_matches('/');
        if let Some(call) = trimmed.strip_prefix("/plugin/") {
            t.kind = call.to_owned();
            t.heartbeat = matches!(call, "registerNode" | "policyReport");
            t.key = field(&["EndpointID", "NetworkID", "ContainerID", "Host", "host"]);
            t.tenant = field(&["TenantName", "Tenant", "tenantName"]);
            if t.tenant.is_empty() {
                // Contiv's network ids are `network.tenant`.
                let net = field(&["NetworkID"]);
                t.tenant = net
                    .rsplit_once('.')
                    .map(|(_, t)| t.to_owned())
                    .unwrap_or_default();
            }
            return t;
        }
        if let Some(rest) = trimmed.strip_prefix(super::users::PREFIX) {
            let mut parts = rest.splitn(2, '/');
            match (parts.next(), parts.next()) {
                (Some("local_users"), Some(name)) => (t.kind, t.key) = ("user".into(), name.into()),
                (Some("local_users"), None) => {
                    (t.kind, t.key) = ("user".into(), field(&["username"]))
                }
                (Some("login"), _) => (t.kind, t.key) = ("login".into(), field(&["username"])),
                (Some("refresh"), _) => t.kind = "token".into(),
                (Some("keys"), _) => t.kind = "signingKey".into(),
                _ => {}
            }
            return t;
        }
        let Some(rest) = trimmed.strip_prefix("/api/v1/") else {
            return t;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let (plural, key) = match parts.as_slice() {
            ["inspect", p, k] | [p, k] => (*p, Some(*k)),
            [p] => (*p, None),
            _ => return t,
        };
        let Some(kind) = ObjectKind::from_plural(plural) else {
            return t;
        };
        t.kind = kind.type_name().to_owned();
        if let Some(key) = key {
            t.key = key.to_owned();
            t.tenant = super::users::tenant_of(kind, key)
                .unwrap_or_default()
                .to_owned();
            if parts.len() == 2 && kind != ObjectKind::Endpoint {
                t.object = Some((kind, key.to_owned()));
            }
        }
        t
    }
}

/// Secrets never reach the log: any member whose name says password, secret or token is
/// replaced by a marker (which still shows that one was given).
fn scrub(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let l = k.to_ascii_lowercase();
                    if ["password", "secret", "token"]
                        .iter()
                        .any(|s| l.contains(s))
                    {
                        (k, Value::String("(redacted)".into()))
                    } else {
                        (k, scrub(v))
                    }
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(scrub).collect()),
        v => v,
    }
}

/// The message of an error answer (problem+json's `detail`, or Contiv's text), and the answer
/// rebuilt with the same body.
async fn error_message(resp: Response) -> (String, Response) {
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_ERROR).await else {
        return (
            "(error answer too large to record)".into(),
            Response::from_parts(parts, Body::empty()),
        );
    };
    let msg = match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) => ["detail", "error", "message"]
            .iter()
            .find_map(|k| v[*k].as_str().map(str::to_owned))
            .unwrap_or_else(|| v.to_string()),
        Err(_) => String::from_utf8_lossy(&bytes).trim().to_owned(),
    };
    let mut msg = msg;
    if msg.len() > 1000 {
        let cut = (0..=1000)
            .rev()
            .find(|i| msg.is_char_boundary(*i))
            .unwrap_or(0);
        msg.truncate(cut);
    }
    (msg, Response::from_parts(parts, Body::from(bytes)))
}

/// Query of `GET /api/v1/audit/`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Params {
    since: Option<String>,
    user: Option<String>,
    tenant: Option<String>,
    limit: Option<String>,
}

/// `GET /api/v1/audit/?since=&user=&tenant=&limit=`: entries oldest first. With `--auth`, an
/// admin reads every entry, a tenant-admin those of its tenants, nobody else any.
pub async fn list(
    State(app): State<AppState>,
    headers: HeaderMap,
    claims: Option<Extension<Claims>>,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let style = ErrorStyle::from_headers(&headers);
    let result = async {
        let log = app.audit.as_ref().ok_or_else(|| {
            ApiError::not_found("the audit log is off (netmaster --audit-max-size 0)")
        })?;
        let Query(p) = params.map_err(|e| ApiError::bad_request(format!("query: {e}")))?;
        let visible_tenants = match claims.as_ref().map(|c| &c.0) {
            None => None,
            Some(c) if c.role == Role::Admin => None,
            Some(c) if c.role == Role::TenantAdmin && !c.tenants.is_empty() => {
                Some(c.tenants.clone())
            }
            Some(_) => {
                return Err(ApiError::new(
                    ErrorKind::Forbidden,
                    "only an admin, or a tenant-admin for its tenants, reads the audit log",
                ))
            }
        };
        let since_nanos = match &p.since {
            Some(s) if !s.is_empty() => {
                Some(audit::parse_since(s, log.now_nanos()).map_err(ApiError::bad_request)?)
            }
            _ => None,
        };
        let limit = match p.limit.as_deref() {
            None | Some("") => audit::DEFAULT_LIMIT,
            Some(l) => l.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                ApiError::bad_request(format!("limit {l:?}: expected a positive number"))
            })?,
        };
        let q = audit::Query {
            since_nanos,
            user: p.user.filter(|s| !s.is_empty()),
            tenant: p.tenant.filter(|s| !s.is_empty()),
            visible_tenants,
            limit,
        };
        log.query(&q)
            .await
            .map_err(|e| ApiError::new(ErrorKind::Unavailable, e.to_string()))
    }
    .await;
    match result {
        Ok(entries) => (StatusCode::OK, axum::Json(entries)).into_response(),
        Err(e) => error_response(style, &e),
    }
}

/// `GET /api/v1/audit/` in the OpenAPI document.
pub fn openapi_path() -> Value {
    let s = |t: &str| serde_json::json!({ "type": t });
    let any = |d: &str| serde_json::json!({ "description": d });
    let entry = serde_json::json!({ "type": "object", "required": ["time", "user", "source", "method", "path", "status"],
        "properties": { "time": { "type": "string", "format": "date-time" }, "user": s("string"),
            "source": s("string"), "method": s("string"), "path": s("string"), "kind": s("string"),
            "key": s("string"), "tenant": s("string"),
            // The object before and after (null when absent), and the body as the caller sent
            // it (any JSON value, secrets redacted): no type to promise.
            "before": any("the object before the call (null: none)"),
            "after": any("the object after the call (null: none)"),
            "request": any("the request body as sent (any JSON value), secrets redacted"),
            "status": s("integer"), "error": s("string") } });
    let param = |name: &str, d: &str| serde_json::json!({ "name": name, "in": "query", "schema": { "type": "string" }, "description": d });
    serde_json::json!({ "get": { "operationId": "listAudit",
        "description": "the audit log, oldest first: every write and every refused call (admin; a tenant-admin sees its tenants' entries)",
        "parameters": [
            param("since", "an RFC 3339 time, or a duration back from now (30s, 10m, 2h, 7d)"),
            param("user", "only this user (`anonymous`, `host:<name>` for agents)"),
            param("tenant", "only this tenant"),
            param("limit", "the newest N matching entries (default 1000)") ],
        "responses": {
            "200": { "description": "OK", "content": { "application/json": { "schema": { "type": "array", "items": entry } } } },
            "400": { "description": "invalid query" },
            "403": { "description": "not an admin or tenant-admin" },
            "404": { "description": "the audit log is off" } } } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let v = serde_json::json!({"username": "a", "password": "p",
            "nested": [{"clientSecret": "s", "key": "t:n"}], "X-Auth-Token": "x"});
        let s = scrub(v).to_string();
        assert!(
            !s.contains("\"p\"") && !s.contains("\"s\"") && !s.contains("\"x\""),
            "{s}"
        );
        assert!(s.contains("t:n") && s.contains("(redacted)"), "{s}");
    }

    #[test]
    fn targets_name_object_tenant_and_key() {
        let t = Target::of("/api/v1/networks/t1:n1/", None);
        assert_eq!(
            (t.kind.as_str(), t.key.as_str(), t.tenant.as_str()),
            ("network", "t1:n1", "t1")
        );
        assert!(t.object.is_some());
        let body = br#"{"TenantName":"t2","EndpointID":"e1"}"#;
        let t = Target::of("/plugin/createEndpoint", Some(body));
        assert_eq!(
            (t.kind.as_str(), t.key.as_str(), t.tenant.as_str()),
            ("createEndpoint", "e1", "t2")
        );
        let t = Target::of("/plugin/allocAddress", Some(br#"{"NetworkID":"n.t3"}"#));
        assert_eq!(t.tenant, "t3");
        let t = Target::of("/api/v1/auth_proxy/local_users/bob/", None);
        assert_eq!((t.kind.as_str(), t.key.as_str()), ("user", "bob"));
        assert!(Target::of("/plugin/registerNode", None).heartbeat);
    }
}
