//! Turning results into HTTP responses: JSON bodies on success; on error either Contiv's
//! convention (HTTP 500, text/plain message) or, when the client sends
//! `Accept: application/problem+json`, the proper status with an RFC 9457 body.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

use crate::error::{ApiError, ErrorKind};

const PROBLEM_JSON: &str = "application/problem+json";

/// How the client wants errors rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStyle {
    /// Contiv: HTTP 500, text/plain.
    Contiv,
    /// RFC 9457 with real status codes.
    Problem,
}

impl ErrorStyle {
    pub fn from_headers(h: &HeaderMap) -> ErrorStyle {
        let wants = h
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains(PROBLEM_JSON));
        if wants {
            ErrorStyle::Problem
        } else {
            ErrorStyle::Contiv
        }
    }
}

/// A handler result paired with how to render its error.
pub struct Reply {
    pub style: ErrorStyle,
    pub result: Result<Bytes, ApiError>,
}

impl Reply {
    pub fn json<T: Serialize>(style: ErrorStyle, result: Result<T, ApiError>) -> Reply {
        let result = result.and_then(|v| {
            serde_json::to_vec(&v)
                .map(Bytes::from)
                .map_err(|e| ApiError::internal(format!("encode: {e}")))
        });
        Reply { style, result }
    }
    pub fn raw(style: ErrorStyle, result: Result<Bytes, ApiError>) -> Reply {
        Reply { style, result }
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: &'a str,
}

pub fn error_response(style: ErrorStyle, e: &ApiError) -> Response {
    match style {
        ErrorStyle::Contiv => {
            // Contiv answers every refusal with 500; a refusal of the caller's credentials keeps
            // its own status (Contiv had no such refusal to stay compatible with).
            let status = match e.kind {
                ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
                ErrorKind::Forbidden => StatusCode::FORBIDDEN,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let mut r = (status, format!("{}\n", e.message)).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        }
        ErrorStyle::Problem => {
            let status = e.kind.status();
            let body = Problem {
                kind: "about:blank",
                title: e.kind.title(),
                status,
                detail: &e.message,
            };
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut r = (code, bytes).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
            r
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self.result {
            Ok(body) => {
                let mut r = (StatusCode::OK, body).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                r
            }
            Err(e) => {
                tracing::debug!(error = %e.message, "request refused");
                error_response(self.style, &e)
            }
        }
    }
}
