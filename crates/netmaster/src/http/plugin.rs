//! `/plugin/*` (agent-facing), `/version` and `/info`.

use axum::extract::State;
use axum::http::HeaderMap;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::reply::{ErrorStyle, Reply};
use super::AppState;
use crate::error::{ApiError, ApiResult};

/// Decodes a plugin request the way Go's encoding/json did for Contiv's netplugin and Docker's
/// clients: field names match without regard to case (`labels` is `Labels`). The canonical names
/// come from the request type itself (its default value serialized); keys of maps (labels) are
/// left as they are.
pub(super) fn decode<T: DeserializeOwned + serde::Serialize + Default + 'static>(
    body: &[u8],
) -> ApiResult<T> {
    let bad = |e: String| ApiError::bad_request(format!("invalid request body: {e}"));
    // Strict: a member given twice or a control character anywhere is refused, naming it.
    let mut value = contiv_model::parse_strict(body).map_err(bad)?;
    if let Some(template) = template_of::<T>() {
        canonical_names(&mut value, &template);
    }
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}

/// The field names of request type `T` (its default value as JSON), made once per type: the
/// plugin calls are the agents' hot path.
fn template_of<T: serde::Serialize + Default + 'static>(
) -> Option<std::sync::Arc<serde_json::Value>> {
    use std::any::TypeId;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static TEMPLATES: OnceLock<Mutex<HashMap<TypeId, Arc<serde_json::Value>>>> = OnceLock::new();
    let mut cache = TEMPLATES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(t) = cache.get(&TypeId::of::<T>()) {
        return Some(t.clone());
    }
    let t = Arc::new(serde_json::to_value(T::default()).ok()?);
    cache.insert(TypeId::of::<T>(), t.clone());
    Some(t)
}

/// Renames the keys of `value` to the spelling `template` uses where they differ only in case,
/// recursively into the fields `template` knows.
fn canonical_names(value: &mut serde_json::Value, template: &serde_json::Value) {
    let (serde_json::Value::Object(obj), serde_json::Value::Object(known)) = (value, template)
    else {
        return;
    };
    if known.is_empty() {
        return; // a map (labels): its keys are data, not field names
    }
    let keys: Vec<String> = obj.keys().cloned().collect();
    for key in keys {
        let canon = known.keys().find(|k| k.eq_ignore_ascii_case(&key)).cloned();
        let Some(canon) = canon else { continue };
        if let Some(mut v) = obj.remove(&key) {
            if let Some(t) = known.get(&canon) {
                canonical_names(&mut v, t);
            }
            // An exact spelling wins over a case variant sent alongside it.
            if canon == key || !obj.contains_key(&canon) {
                obj.insert(canon, v);
            }
        }
    }
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

/// Contiv's cluster info map: this netmaster, the leader, every netmaster and agent.
/// The store as `/info` shows it: etcd's endpoints (clients need them to debug a cluster), but
/// never the embedded store's file path (it told any caller where netmaster keeps its state).
fn store_view(store: &contiv_store::StoreInfo) -> Value {
    if store.backend == "etcd" {
        json!({ "backend": store.backend, "location": store.location })
    } else {
        json!({ "backend": store.backend })
    }
}

pub async fn info(State(app): State<AppState>) -> Reply {
    use crate::engine::leader::Role;
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
    let leadership = app.engine.leadership();
    let me = leadership
        .me()
        .map_or_else(|| app.info.listen.clone(), |m| m.url.clone());
    let (state, leader) = match leadership.role() {
        Role::Standalone | Role::Leader { .. } => ("leader", me.clone()),
        Role::Follower { leader } => ("follower", leader.map(|m| m.url).unwrap_or_default()),
    };
    let netmasters = match leadership.me() {
        None => vec![me.clone()],
        Some(_) => match app.engine.netmasters().await {
            Ok(ms) => ms.into_iter().map(|m| m.url).collect(),
            Err(_) => vec![me.clone()],
        },
    };
    let v = json!({
        "local-ip": me,
        "leader-ip": leader,
        "current-state": state,
        "netplugin-nodes": nodes,
        "netmaster-nodes": netmasters,
        "cluster-mode": app.engine.options().cluster_mode,
        "state-store": store_view(&store),
        "store-revision": app.engine.read(|st| st.revision),
    });
    Reply::json(ErrorStyle::Contiv, Ok(v))
}

#[cfg(test)]
mod tests {
    use contiv_api::plugin::{CreateEndpointRequest, UpdateEndpointRequest};

    use super::decode;

    #[test]
    fn field_names_match_without_regard_to_case_as_in_go() {
        let r: UpdateEndpointRequest = decode(
            br#"{"ipaddress":"10.0.0.2","labels":{"App":"web"},"tenant":"t","EVENT":"start"}"#,
        )
        .expect("decode");
        assert_eq!(r.ip_address, "10.0.0.2");
        assert_eq!(
            r.labels.get("App").map(String::as_str),
            Some("web"),
            "label keys untouched"
        );
        assert_eq!((r.tenant.as_str(), r.event.as_str()), ("t", "start"));
        let c: CreateEndpointRequest = decode(
            br#"{"tenantName":"t","networkName":"n","configEP":{"container":"c1","host":"h1"}}"#,
        )
        .expect("decode nested");
        assert_eq!(
            (
                c.tenant_name.as_str(),
                c.config_ep.container.as_str(),
                c.config_ep.host.as_str()
            ),
            ("t", "c1", "h1")
        );
        assert!(decode::<UpdateEndpointRequest>(b"{not json").is_err());
    }
}
