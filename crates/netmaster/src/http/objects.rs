//! Contiv's object routes, generic over the object type: the URL's plural picks the type.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use contiv_model::*;
use serde::de::DeserializeOwned;

use super::reply::{ErrorStyle, Reply};
use super::AppState;
use crate::engine::Engine;
use crate::error::{ApiError, ApiResult};
use crate::rules::Managed;

/// Runs `$body` with `$T` bound to the object type of `$kind`; `$endpoint` for the inspect-only
/// endpoint kind.
macro_rules! with_type {
    ($kind:expr, $T:ident => $body:expr, endpoint => $endpoint:expr) => {
        match $kind {
            ObjectKind::Tenant => {
                type $T = Tenant;
                $body
            }
            ObjectKind::Network => {
                type $T = Network;
                $body
            }
            ObjectKind::EndpointGroup => {
                type $T = EndpointGroup;
                $body
            }
            ObjectKind::Policy => {
                type $T = Policy;
                $body
            }
            ObjectKind::Rule => {
                type $T = Rule;
                $body
            }
            ObjectKind::AppProfile => {
                type $T = AppProfile;
                $body
            }
            ObjectKind::ServiceLb => {
                type $T = ServiceLb;
                $body
            }
            ObjectKind::NetProfile => {
                type $T = NetProfile;
                $body
            }
            ObjectKind::Global => {
                type $T = Global;
                $body
            }
            ObjectKind::Bgp => {
                type $T = Bgp;
                $body
            }
            ObjectKind::AciGw => {
                type $T = AciGw;
                $body
            }
            ObjectKind::ExtContractsGroup => {
                type $T = ExtContractsGroup;
                $body
            }
            ObjectKind::Endpoint => $endpoint,
        }
    };
}

fn kind_of(plural: &str) -> ApiResult<ObjectKind> {
    ObjectKind::from_plural(plural)
        .ok_or_else(|| ApiError::not_found(format!("unknown object type {plural}")))
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("empty request body"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

fn endpoint_only(op: &str) -> ApiError {
    ApiError::new(
        crate::error::ErrorKind::NotFound,
        format!("endpoints are inspect-only: no {op}"),
    )
}

/// The object as a GET answers it (with its links), for the audit log's before/after; `None`
/// when it does not exist.
pub(super) fn object_json(
    engine: &Engine,
    kind: ObjectKind,
    key: &str,
) -> Option<serde_json::Value> {
    with_type!(kind, T => engine.get::<T>(key).ok().and_then(|o| serde_json::to_value(o).ok()), endpoint => None)
}

pub async fn list(
    State(app): State<AppState>,
    Path(plural): Path<String>,
    headers: HeaderMap,
) -> Reply {
    let style = ErrorStyle::from_headers(&headers);
    let result = kind_of(&plural).and_then(|kind| {
        with_type!(kind, T => app.engine.list_json::<T>(), endpoint => Err(endpoint_only("list")))
    });
    Reply::raw(style, result)
}

pub async fn get_one(
    State(app): State<AppState>,
    Path((plural, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let style = ErrorStyle::from_headers(&headers);
    let result = kind_of(&plural).and_then(|kind| {
        with_type!(kind, T => to_bytes(app.engine.get::<T>(&key)), endpoint => Err(endpoint_only("get")))
    });
    Reply::raw(style, result)
}

pub async fn inspect(
    State(app): State<AppState>,
    Path((plural, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let style = ErrorStyle::from_headers(&headers);
    let result = kind_of(&plural).and_then(|kind| match kind {
        // Oper from what agents report: policy violations, rule counters.
        ObjectKind::Policy => to_bytes(app.engine.inspect_policy(&key)),
        ObjectKind::Rule => to_bytes(app.engine.inspect_rule(&key)),
        _ => with_type!(kind, T => to_bytes(app.engine.inspect::<T>(&key)), endpoint => to_bytes(inspect_endpoint(&app.engine, &key))),
    });
    Reply::raw(style, result)
}

pub async fn upsert(
    State(app): State<AppState>,
    Path((plural, key)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let style = ErrorStyle::from_headers(&headers);
    let result = match kind_of(&plural) {
        Ok(kind) => with_type!(kind, T => upsert_typed::<T>(&app.engine, &key, &body).await,
            endpoint => Err(endpoint_only("create"))),
        Err(e) => Err(e),
    };
    Reply::raw(style, result)
}

async fn upsert_typed<T: Managed>(engine: &Engine, key: &str, body: &[u8]) -> ApiResult<Bytes> {
    let obj: T = decode(body)?;
    T::check_sent(&obj, body)?;
    to_bytes(engine.upsert(key, obj).await)
}

pub async fn delete(
    State(app): State<AppState>,
    Path((plural, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let style = ErrorStyle::from_headers(&headers);
    let result = match kind_of(&plural) {
        Ok(kind) => with_type!(kind, T => app.engine.delete::<T>(&key).await,
            endpoint => Err(endpoint_only("delete"))),
        Err(e) => Err(e),
    };
    Reply::json(style, result.map(|()| key))
}

/// Contiv's endpoint inspect: the first endpoint whose id contains `key`.
fn inspect_endpoint(engine: &Engine, key: &str) -> ApiResult<Inspect<Endpoint>> {
    engine.read(|st| {
        st.endpoints
            .values()
            .find(|ep| ep.id.contains(key))
            .map(|ep| {
                let cfg = Endpoint {
                    key: key.to_owned(),
                    endpoint_id: key.to_owned(),
                };
                Inspect::new(cfg, ep.to_oper())
            })
            .ok_or_else(|| ApiError::not_found("endpoint not found"))
    })
}

fn to_bytes<T: serde::Serialize>(r: ApiResult<T>) -> ApiResult<Bytes> {
    r.and_then(|v| {
        serde_json::to_vec(&v)
            .map(Bytes::from)
            .map_err(|e| ApiError::internal(format!("encode: {e}")))
    })
}

pub async fn openapi(State(app): State<AppState>) -> Response {
    let doc = crate::openapi::document(app.info.version);
    let mut r = (StatusCode::OK, doc.to_string()).into_response();
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    r
}

pub async fn no_route(uri: Uri, headers: HeaderMap) -> Response {
    let e = ApiError::not_found(format!("no route for {}", uri.path()));
    match ErrorStyle::from_headers(&headers) {
        ErrorStyle::Problem => super::reply::error_response(ErrorStyle::Problem, &e),
        ErrorStyle::Contiv => (StatusCode::NOT_FOUND, "404 page not found\n").into_response(),
    }
}
