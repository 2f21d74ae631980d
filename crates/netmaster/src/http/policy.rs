//! Policy state routes (not Contiv's): `POST /plugin/policyReport` from agents,
//! `GET /api/v1/policyStatus/` and `GET /api/v1/policyExplain/`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use bytes::Bytes;
use contiv_api::policy::PolicyReport;

use super::reply::{ErrorStyle, Reply};
use super::AppState;
use crate::engine::ExplainQuery;
use crate::error::ApiError;

pub async fn report(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Reply {
    let style = ErrorStyle::from_headers(&headers);
    let result = serde_json::from_slice::<PolicyReport>(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
        .and_then(|r| app.engine.record_policy_report(r));
    Reply::json(style, result)
}

pub async fn status(State(app): State<AppState>) -> Reply {
    Reply::json(ErrorStyle::Contiv, Ok(app.engine.policy_status()))
}

pub async fn explain(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ExplainQuery>, QueryRejection>,
) -> Reply {
    let style = ErrorStyle::from_headers(&headers);
    let result = query
        .map_err(|e| ApiError::bad_request(format!("invalid query: {}", e.body_text())))
        .and_then(|Query(q)| app.engine.policy_explain(&q));
    Reply::json(style, result)
}
