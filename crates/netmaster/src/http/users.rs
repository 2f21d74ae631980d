//! Users on the REST API (`--auth`): Contiv auth_proxy's login (`POST /api/v1/auth_proxy/login/`
//! answering `{"token": ...}`), refresh, the admin calls on local users and signing keys, and the
//! one layer that turns `X-Auth-Token` into [`Claims`] and asks [`authorize_user`] about every
//! `/api/v1` call. A refused call reaches no handler, so it changes nothing.
//!
//! Tenant scoping: a user scoped to tenants sees only their objects; any other tenant's object
//! answers the same "not found" a missing one does, and lists are filtered here after the handler
//! ran, so no handler needs to know about users.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use contiv_model::ObjectKind;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::listen::{Peer, LOCAL_ROOT};
use super::reply::{error_response, ErrorStyle};
use super::AppState;
use crate::error::{ApiError, ErrorKind};
use crate::users::{Claims, Role, User, UserError, Users};

/// The header Contiv's clients send the token in.
pub const TOKEN_HEADER: &str = "x-auth-token";
/// Prefix of the login, refresh and user administration routes.
pub const PREFIX: &str = "/api/v1/auth_proxy/";
const LIST_LIMIT: usize = 64 << 20;
/// Largest group body an `ops` write may send (read here to compare it with the stored group).
const BODY_LIMIT: usize = 1 << 20;

impl From<UserError> for ApiError {
    fn from(e: UserError) -> ApiError {
        let kind = match &e {
            UserError::BadCredentials | UserError::BadToken(_) | UserError::LdapRefused => {
                ErrorKind::Unauthenticated
            }
            UserError::NoRole(_) => ErrorKind::Forbidden,
            UserError::Invalid(_) => ErrorKind::BadRequest,
            UserError::NoUser(_) | UserError::NotFound(_) => ErrorKind::NotFound,
            UserError::Exists(_) | UserError::Conflict(_) => ErrorKind::Conflict,
            UserError::Unavailable(_) => ErrorKind::Unavailable,
            UserError::Store(_) => ErrorKind::Unavailable,
            UserError::NotLeader => ErrorKind::NotLeader,
            UserError::Internal(_) => ErrorKind::Internal,
        };
        ApiError::new(kind, e.to_string())
    }
}

/// What a call may do, decided before any handler runs.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// A list: answer only the objects of tenants the caller sees.
    Filter(ObjectKind),
    /// `policyStatus` for a tenant-scoped user: only hosts serving its tenants' endpoints.
    ScopedStatus,
    /// `policyExplain` for a tenant-scoped user: allowed for its own tenants only (the query names it).
    ScopedExplain,
    Refuse(ApiError),
}

/// The tenant an object of `kind` with `key` belongs to; `None` for cluster-wide objects.
pub(crate) fn tenant_of(kind: ObjectKind, key: &str) -> Option<&str> {
    match kind {
        ObjectKind::Global | ObjectKind::Bgp | ObjectKind::AciGw => None,
        ObjectKind::Tenant => Some(key),
        // Endpoints are keyed by container; their tenant is in the body (lists only).
        ObjectKind::Endpoint => Some(""),
        _ => Some(key.split(':').next().unwrap_or(key)),
    }
}

/// The one decision of what a user may do with a `/api/v1` call (`path` without a trailing
/// `/`). Objects of tenants the user does not see are not found; a role that may not write is
/// forbidden.
pub fn authorize_user(who: &Claims, method: &Method, path: &str) -> Decision {
    let read = method == Method::GET || method == Method::HEAD;
    let forbidden = || {
        Decision::Refuse(ApiError::new(
            ErrorKind::Forbidden,
            format!(
                "user {:?} ({}) may not {method} {path}",
                who.username,
                role_name(who.role)
            ),
        ))
    };
    if who.role == Role::Admin {
        return Decision::Allow;
    }
    let rest = path.strip_prefix("/api/v1/").unwrap_or("");
    let parts: Vec<&str> = rest.split('/').collect();
    let (plural, key) = match parts.as_slice() {
        ["openapi.json"] => return Decision::Allow,
        ["policyStatus" | "policyExplain"] if read && who.tenants.is_empty() => {
            return Decision::Allow
        }
        ["policyStatus"] if read => return Decision::ScopedStatus,
        ["policyExplain"] if read => return Decision::ScopedExplain,
        ["inspect", plural, key] if read => (*plural, Some(*key)),
        [plural] => (*plural, None),
        [plural, key] => (*plural, Some(*key)),
        _ => return forbidden(),
    };
    let Some(kind) = ObjectKind::from_plural(plural) else {
        return Decision::Allow; // the handler answers "unknown object type"
    };
    let Some(key) = key else {
        return if read {
            Decision::Filter(kind)
        } else {
            forbidden()
        };
    };
    let tenant = tenant_of(kind, key);
    if let Some(t) = tenant {
        if !who.sees(t) {
            let what = if read || method == Method::DELETE {
                kind.type_name()
            } else {
                "tenant"
            };
            return Decision::Refuse(ApiError::not_found(format!("{what} not found")));
        }
    }
    if read {
        return Decision::Allow;
    }
    let may_write = match who.role {
        Role::Admin => true,
        // Inside its tenants, except the tenant objects themselves and cluster-wide ones.
        Role::TenantAdmin => tenant.is_some() && kind != ObjectKind::Tenant,
        // Policy attachment of existing groups only: `guard` compares the body with the group
        // (`http::ops`), since which fields change is not in the path.
        Role::Ops => {
            kind == ObjectKind::EndpointGroup && (method == Method::PUT || method == Method::POST)
        }
        Role::ReadOnly => false,
    };
    if may_write {
        Decision::Allow
    } else {
        forbidden()
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Admin => "admin",
        Role::TenantAdmin => "tenant-admin",
        Role::Ops => "ops",
        Role::ReadOnly => "read-only",
    }
}

fn token(headers: &HeaderMap) -> Option<&str> {
    headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok())
}

/// Whether a request announces a body (which a refusal leaves unread).
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// Middleware in front of every route: with `--auth`, every `/api/v1` call but login carries a
/// valid token and is authorised by [`authorize_user`].
pub async fn guard(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(users) = app.users.clone() else {
        return next.run(req).await;
    };
    let path = req.uri().path().trim_end_matches('/').to_owned();
    if !path.starts_with("/api/v1") || path == "/api/v1/auth_proxy/login" {
        return next.run(req).await;
    }
    let style = ErrorStyle::from_headers(req.headers());
    let unread_body = has_body(req.headers());
    let refuse = |e: ApiError| {
        tracing::info!(path = %path, "api call refused: {e}");
        let mut resp = error_response(style, &e);
        if unread_body {
            // The body is never read: hyper then drops the connection after the answer, and a
            // keep-alive client that reused it got "peer disconnected" on its next call. Saying
            // so lets it open a new one.
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    };
    // A token, when sent, always decides: root on the plain loopback listener acts as admin
    // only when it sends none.
    let claims = match token(req.headers()) {
        Some(tok) => match users.verify(tok).await {
            Ok(c) => c,
            Err(e) => return refuse(e.into()),
        },
        None if is_local_root(&req) => local_root_claims(),
        None => {
            return refuse(ApiError::new(
                ErrorKind::Unauthenticated,
                "this call needs a token in X-Auth-Token (POST /api/v1/auth_proxy/login/)",
            ))
        }
    };
    // Refresh re-reads the user itself (a demoted user refreshes into its new role).
    if path != "/api/v1/auth_proxy/refresh" {
        if let Err(e) = users.still_current(&claims).await {
            return refuse(e.into());
        }
    }
    let decision = if path.starts_with(PREFIX.trim_end_matches('/')) {
        if path == "/api/v1/auth_proxy/refresh" || claims.role == Role::Admin {
            Decision::Allow
        } else {
            Decision::Refuse(ApiError::new(
                ErrorKind::Forbidden,
                "only an admin manages users and keys",
            ))
        }
    } else {
        authorize_user(&claims, req.method(), &path)
    };
    req.extensions_mut().insert(claims.clone());
    let note = req.extensions().get::<Arc<super::audit::Note>>();
    if let Some(note) = note {
        note.set_user(&claims.username);
        if matches!(decision, Decision::Refuse(_)) {
            note.refuse();
        }
    }
    if decision == Decision::Allow && claims.role == Role::Ops && req.method() != Method::GET {
        if let Some(key) = path.strip_prefix("/api/v1/endpointGroups/") {
            let (parts, body) = req.into_parts();
            let Ok(body) = to_bytes(body, BODY_LIMIT).await else {
                return refuse(ApiError::bad_request(
                    "request body unreadable or too large",
                ));
            };
            if let Err(e) = super::ops::check_group_write(&app.engine, key, &body) {
                return refuse(e);
            }
            req = Request::from_parts(parts, Body::from(body));
        }
    }
    match decision {
        Decision::Allow => next.run(req).await,
        Decision::Refuse(e) => refuse(e),
        Decision::Filter(kind) => filter_list(next.run(req).await, &claims, kind).await,
        Decision::ScopedExplain => {
            let tenant =
                axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(
                    req.uri(),
                )
                .ok()
                .and_then(|q| q.0.get("tenant").cloned())
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "default".to_owned());
            if claims.sees(&tenant) {
                next.run(req).await
            } else {
                // The answer a missing tenant gets: no existence leak.
                refuse(ApiError::not_found(format!("Tenant {tenant} not found")))
            }
        }
        Decision::ScopedStatus => {
            let hosts: std::collections::BTreeSet<String> = app.engine.read(|st| {
                st.endpoints
                    .values()
                    .filter(|e| {
                        e.net_id
                            .rsplit_once('.')
                            .is_some_and(|(_, t)| claims.sees(t))
                    })
                    .map(|e| e.homing_host.clone())
                    .collect()
            });
            scope_status(next.run(req).await, &hosts).await
        }
    }
}

/// Whether the call came from root on this host over the plain loopback listener with
/// `--plain-loopback-root-admin` (see [`super::listen::Peer::is_local_root`]).
fn is_local_root(req: &Request) -> bool {
    req.extensions()
        .get::<ConnectInfo<Peer>>()
        .is_some_and(|c| c.0.is_local_root())
}

/// What local root acts as: an admin named [`LOCAL_ROOT`], valid for this one call.
fn local_root_claims() -> Claims {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Claims {
        username: LOCAL_ROOT.to_owned(),
        role: Role::Admin,
        tenants: Vec::new(),
        iat: now,
        exp: now,
        kid: String::new(),
        // No stored user behind it: nothing to compare (`Users::still_current`).
        generation: None,
    }
}

/// Keeps only the listed objects of tenants `who` sees.
async fn filter_list(resp: Response, who: &Claims, kind: ObjectKind) -> Response {
    if resp.status() != StatusCode::OK {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = to_bytes(body, LIST_LIMIT).await else {
        return ApiError::internal("reading a list").into_response_contiv();
    };
    let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let kept: Vec<Value> = items
        .into_iter()
        .filter(|o| {
            let key = o["key"].as_str().unwrap_or_default();
            match tenant_of(kind, key) {
                None => true,
                Some("") => o["tenantName"].as_str().is_some_and(|t| who.sees(t)),
                Some(t) => who.sees(t),
            }
        })
        .collect();
    let mut parts = parts;
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(Value::Array(kept).to_string()))
}

/// Keeps the hosts in `hosts` of a `policyStatus` answer, without their rule and element counts
/// (those are summed over every tenant on the host).
async fn scope_status(resp: Response, hosts: &std::collections::BTreeSet<String>) -> Response {
    if resp.status() != StatusCode::OK {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = to_bytes(body, LIST_LIMIT).await else {
        return ApiError::internal("reading the policy status").into_response_contiv();
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return ApiError::internal("decoding the policy status").into_response_contiv();
    };
    if let Some(list) = v.get_mut("hosts").and_then(Value::as_array_mut) {
        list.retain(|h| h["hostname"].as_str().is_some_and(|n| hosts.contains(n)));
        for h in list.iter_mut().filter_map(Value::as_object_mut) {
            h.remove("rules");
            h.remove("elements");
        }
    }
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(v.to_string()))
}

impl ApiError {
    fn into_response_contiv(self) -> Response {
        error_response(ErrorStyle::Contiv, &self)
    }
}

fn users_of(app: &AppState) -> Result<&Arc<Users>, ApiError> {
    app.users
        .as_ref()
        .ok_or_else(|| ApiError::not_found("users are off: start netmaster with --auth"))
}

/// The answer of a users/keys/authorizations call: the value as JSON, or the error in the
/// caller's style (the same [`Reply`](super::Reply) the object routes answer with).
fn reply<T: Serialize>(style: ErrorStyle, r: Result<T, ApiError>) -> Response {
    super::Reply::json(style, r).into_response()
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("request body: {e}")))
}

#[derive(Deserialize)]
struct LoginReq {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// `POST /api/v1/auth_proxy/login/`: Contiv's login; 400 without both fields, 401 for bad
/// credentials, 403 for a directory user without a role, 503 while the directory is down.
pub async fn login(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let style = ErrorStyle::from_headers(&headers);
    login_reply(
        style,
        async {
            let users = users_of(&app)?;
            let req: LoginReq = decode(&body)?;
            if req.username.is_empty() || req.password.is_empty() {
                return Err(ApiError::bad_request(
                    "Username and password must be provided",
                ));
            }
            let token = users
                .login(&req.username, &req.password)
                .await
                .inspect_err(|_| {
                    tracing::info!(user = %req.username, "login refused");
                })?;
            Ok(json!({ "token": token }))
        }
        .await,
    )
}

/// `POST /api/v1/auth_proxy/refresh/`: a fresh token for a valid one.
pub async fn refresh(
    State(app): State<AppState>,
    headers: HeaderMap,
    claims: Option<Extension<Claims>>,
) -> Response {
    let style = ErrorStyle::from_headers(&headers);
    reply(
        style,
        async {
            let users = users_of(&app)?;
            let Some(Extension(claims)) = claims else {
                return Err(ApiError::new(ErrorKind::Unauthenticated, "no token"));
            };
            Ok(json!({ "token": users.refresh(&claims).await? }))
        }
        .await,
    )
}

/// `POST /api/v1/auth_proxy/keys/rotate/`: a new signing key; older tokens stay valid.
pub async fn rotate(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let style = ErrorStyle::from_headers(&headers);
    reply(
        style,
        async { Ok(json!({ "kid": users_of(&app)?.rotate().await? })) }.await,
    )
}

/// Like [`reply`], but a login the directory could not answer is 503 in Contiv's style too (it
/// renders every other error as 500): a client must tell "try again" from "broken".
fn login_reply(style: ErrorStyle, r: Result<Value, ApiError>) -> Response {
    match r {
        Err(e) if style == ErrorStyle::Contiv && e.kind == ErrorKind::Unavailable => {
            let mut resp =
                (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", e.message)).into_response();
            resp.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            resp
        }
        r => reply(style, r),
    }
}

/// `GET /api/v1/auth_proxy/authorizations/`: which role each LDAP group gives.
pub async fn list_authz(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let style = ErrorStyle::from_headers(&headers);
    reply(
        style,
        async {
            let all = users_of(&app)?.authz.list().await?;
            Ok(all)
        }
        .await,
    )
}

/// `POST /api/v1/auth_proxy/authorizations/`: `{"principalName": <group DN>, "role",
/// "tenantName"}` (Contiv's fields); answers the authorization with its `authzUUID`.
pub async fn create_authz(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let style = ErrorStyle::from_headers(&headers);
    reply(
        style,
        async {
            let req: crate::authz::NewAuthorization = decode(&body)?;
            let a = users_of(&app)?.authz.create(req).await?;
            Ok(a)
        }
        .await,
    )
}

/// `GET /api/v1/auth_proxy/authorizations/{id}/`.
pub async fn get_authz(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let style = ErrorStyle::from_headers(&headers);
    reply(
        style,
        async {
            let a = users_of(&app)?.authz.get(&id).await?;
            Ok(a)
        }
        .await,
    )
}

/// `DELETE /api/v1/auth_proxy/authorizations/{id}/`.
pub async fn delete_authz(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let style = ErrorStyle::from_headers(&headers);
    reply(
        style,
        async {
            users_of(&app)?.authz.delete(&id).await?;
            Ok(json!({}))
        }
        .await,
    )
}

fn user_json(u: &User) -> Value {
    json!({ "username": u.name, "role": u.role, "tenants": u.tenants })
}

/// `GET /api/v1/auth_proxy/local_users/`.
pub async fn list_users(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let style = ErrorStyle::from_headers(&headers);
    reply(
        style,
        async {
            let users = users_of(&app)?.list().await?;
            Ok(Value::Array(users.iter().map(user_json).collect()))
        }
        .await,
    )
}

#[derive(Deserialize)]
struct UserReq {
    #[serde(default)]
    username: String,
    password: Option<String>,
    role: Option<Role>,
    #[serde(default)]
    tenants: Vec<String>,
}

/// `POST /api/v1/auth_proxy/local_users/`: `{"username","password","role","tenants"}`.
pub async fn create_user(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let style = ErrorStyle::from_headers(&headers);
    reply(
        style,
        async {
            let users = users_of(&app)?;
            let req: UserReq = decode(&body)?;
            let pw = req.password.unwrap_or_default();
            let role = req.role.unwrap_or(Role::ReadOnly);
            let name = req.username.clone();
            let user =
                tokio::task::spawn_blocking(move || User::new(&name, &pw, role, req.tenants))
                    .await
                    .map_err(|e| ApiError::internal(e.to_string()))??;
            users.create(user.clone()).await?;
            Ok(user_json(&user))
        }
        .await,
    )
}

/// `PATCH /api/v1/auth_proxy/local_users/{name}/`: a new password and/or role with tenants.
pub async fn update_user(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let style = ErrorStyle::from_headers(&headers);
    reply(
        style,
        async {
            let users = users_of(&app)?;
            let req: UserReq = decode(&body)?;
            let role = req.role.map(|r| (r, req.tenants));
            let u = users.update(&name, req.password.as_deref(), role).await?;
            Ok(user_json(&u))
        }
        .await,
    )
}

/// `GET /api/v1/auth_proxy/local_users/{name}/`.
pub async fn get_user(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let style = ErrorStyle::from_headers(&headers);
    reply(
        style,
        async {
            let u = users_of(&app)?.get(&name).await?;
            u.map(|u| user_json(&u))
                .ok_or_else(|| UserError::NoUser(name).into())
        }
        .await,
    )
}

/// `DELETE /api/v1/auth_proxy/local_users/{name}/`.
pub async fn delete_user(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let style = ErrorStyle::from_headers(&headers);
    reply(
        style,
        async {
            users_of(&app)?.delete(&name).await?;
            Ok(json!({}))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(role: Role, tenants: &[&str]) -> Claims {
        Claims {
            username: "u".into(),
            role,
            tenants: tenants.iter().map(|s| s.to_string()).collect(),
            iat: 0,
            exp: 0,
            kid: String::new(),
            generation: None,
        }
    }

    fn status(d: Decision) -> u16 {
        match d {
            Decision::Allow
            | Decision::Filter(_)
            | Decision::ScopedStatus
            | Decision::ScopedExplain => 200,
            Decision::Refuse(e) => e.kind.status(),
        }
    }

    #[test]
    fn roles_and_tenants_decide() {
        let ta = claims(Role::TenantAdmin, &["t1"]);
        let get = Method::GET;
        let put = Method::PUT;
        assert_eq!(
            status(authorize_user(&ta, &put, "/api/v1/networks/t1:n")),
            200
        );
        assert_eq!(
            status(authorize_user(&ta, &put, "/api/v1/networks/t2:n")),
            404
        );
        assert_eq!(
            status(authorize_user(&ta, &get, "/api/v1/inspect/networks/t2:n")),
            404
        );
        assert_eq!(status(authorize_user(&ta, &put, "/api/v1/tenants/t1")), 403);
        assert_eq!(
            status(authorize_user(&ta, &put, "/api/v1/globals/global")),
            403
        );
        assert_eq!(
            authorize_user(&ta, &get, "/api/v1/networks"),
            Decision::Filter(ObjectKind::Network)
        );
        let ro = claims(Role::ReadOnly, &[]);
        assert_eq!(
            status(authorize_user(&ro, &get, "/api/v1/networks/t2:n")),
            200
        );
        assert_eq!(
            status(authorize_user(
                &ro,
                &Method::DELETE,
                "/api/v1/networks/t2:n"
            )),
            403
        );
        let ops = claims(Role::Ops, &["t1"]);
        assert_eq!(
            status(authorize_user(&ops, &put, "/api/v1/endpointGroups/t1:g")),
            200
        );
        assert_eq!(
            status(authorize_user(&ops, &put, "/api/v1/networks/t1:n")),
            403
        );
        assert_eq!(
            status(authorize_user(&ops, &put, "/api/v1/endpointGroups/t2:g")),
            404
        );
    }
}
