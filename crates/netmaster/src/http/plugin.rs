//! `/plugin/*` (agent-facing), `/version` and `/info`.

use axum::extract::State;
use axum::http::HeaderMap;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::reply::{ErrorStyle, Reply};
use super::AppState;
use crate::error::{ApiError, ApiResult};

fn decode<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

macro_rules! plugin_handler {
    ($name:ident, $method:ident) => {
        pub async fn $name(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Reply {
            let style = ErrorStyle::from_headers(&headers);
            let result = match decode(&body) {
                Ok(req) => app.engine.$method(req).await,
                Err(e) => Err(e),
            };
            Reply::json(style, result)
        }
    };
}

plugin_handler!(alloc_address, alloc_address);
plugin_handler!(release_address, release_address);
plugin_handler!(create_endpoint, create_endpoint);
plugin_handler!(delete_endpoint, delete_endpoint);
plugin_handler!(update_endpoint, update_endpoint);

/// Contiv's version.Info.
pub async fn version(State(app): State<AppState>) -> Reply {
    let v = json!({
        "GitCommit": app.info.git_commit,
        "Version": app.info.version,
        "BuildTime": app.info.build_time,
    });
    Reply::json(ErrorStyle::Contiv, Ok(v))
}

/// Contiv's cluster info map (single netmaster: it is the leader).
pub async fn info(State(app): State<AppState>) -> Reply {
    let store = app.engine.store_info();
    let nodes: Vec<String> = app.engine.read(|st| {
        st.nodes
            .values()
            .map(|n| {
                if n.vtep_ip.is_empty() {
                    n.hostname.clone()
                } else {
                    n.vtep_ip.clone()
                }
            })
            .collect()
    });
    let v = json!({
        "local-ip": app.info.listen,
        "leader-ip": app.info.listen,
        "current-state": "leader",
        "netplugin-nodes": nodes,
        "netmaster-nodes": [app.info.listen],
        "cluster-mode": app.engine.options().cluster_mode,
        "state-store": { "backend": store.backend, "location": store.location },
    });
    Reply::json(ErrorStyle::Contiv, Ok(v))
}
