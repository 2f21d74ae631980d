//! The HTTP surface of netmaster: Contiv's REST routes (`/api/v1/...`), the agent-facing
//! `/plugin/*` routes, `/version`, `/info` and the OpenAPI document.
//!
//! Bodies are taken as bytes and decoded here (Docker's plugin client and some Contiv clients send
//! no Content-Type), so a bad body is a clear 400/500 message instead of a framework rejection.

mod agent;
pub mod audit;
pub mod auth;
pub mod forward;
pub mod limits;
pub mod listen;
mod objects;
mod ops;
pub mod peer_uid;
mod plugin;
mod policy;
mod reply;
pub mod serve;
pub mod users;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::engine::Engine;

pub use reply::Reply;

/// Shared handler state.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub info: Arc<ServerInfo>,
    /// Present when agents must prove their host with a client certificate.
    pub agent_auth: Option<Arc<auth::AgentAuth>>,
    /// Present with `--auth`: users, roles and tokens on `/api/v1`.
    pub users: Option<Arc<crate::users::Users>>,
    /// The audit log (absent with `--audit-max-size 0`).
    pub audit: Option<Arc<crate::audit::AuditLog>>,
}

/// Facts `/info` and `/version` report.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub listen: String,
    pub version: &'static str,
    pub git_commit: &'static str,
    pub build_time: &'static str,
}

/// The whole router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(auth_proxy_routes())
        .route("/api/v1/openapi.json", get(objects::openapi))
        .route("/api/v1/audit/", get(audit::list))
        .route("/api/v1/audit", get(audit::list))
        .route("/api/v1/policyStatus/", get(policy::status))
        .route("/api/v1/policyStatus", get(policy::status))
        .route("/api/v1/policyExplain/", get(policy::explain))
        .route("/api/v1/policyExplain", get(policy::explain))
        .route("/api/v1/inspect/{plural}/{key}/", get(objects::inspect))
        .route("/api/v1/inspect/{plural}/{key}", get(objects::inspect))
        .route("/api/v1/{plural}/", get(objects::list))
        .route("/api/v1/{plural}", get(objects::list))
        .route(
            "/api/v1/{plural}/{key}/",
            get(objects::get_one)
                .post(objects::upsert)
                .put(objects::upsert)
                .delete(objects::delete),
        )
        .route(
            "/api/v1/{plural}/{key}",
            get(objects::get_one)
                .post(objects::upsert)
                .put(objects::upsert)
                .delete(objects::delete),
        )
        .route("/plugin/allocAddress", post(plugin::alloc_address))
        .route("/plugin/releaseAddress", post(plugin::release_address))
        .route("/plugin/createEndpoint", post(plugin::create_endpoint))
        .route("/plugin/deleteEndpoint", post(plugin::delete_endpoint))
        .route("/plugin/updateEndpoint", post(plugin::update_endpoint))
        .route("/plugin/registerNode", post(agent::register_node))
        .route("/plugin/policyReport", post(policy::report))
        .route("/plugin/agentState", get(agent::agent_state))
        .route("/plugin/agentWatch", get(agent::agent_watch))
        .route("/version", get(plugin::version))
        .route("/info", get(plugin::info))
        .fallback(objects::no_route)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            forward::to_leader,
        ))
        // Outermost: a call is judged before it is forwarded to the leader.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            users::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::agents,
        ))
        // Outside every layer that may refuse a call, so refusals are recorded too.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::record,
        ))
        .with_state(state)
}

/// Login, refresh and the admin calls on users and keys, each with and without the trailing `/`.
fn auth_proxy_routes() -> Router<AppState> {
    let mut r = Router::new();
    for slash in ["", "/"] {
        let at = |p: &str| format!("/api/v1/auth_proxy/{p}{slash}");
        r = r
            .route(&at("login"), post(users::login))
            .route(&at("refresh"), post(users::refresh))
            .route(&at("keys/rotate"), post(users::rotate))
            .route(
                &at("local_users"),
                get(users::list_users).post(users::create_user),
            )
            .route(
                &at("authorizations"),
                get(users::list_authz).post(users::create_authz),
            )
            .route(
                &at("authorizations/{id}"),
                get(users::get_authz).delete(users::delete_authz),
            )
            .route(
                &at("local_users/{name}"),
                get(users::get_user)
                    .patch(users::update_user)
                    .delete(users::delete_user),
            );
    }
    r
}
