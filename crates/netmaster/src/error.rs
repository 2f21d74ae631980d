//! The one error type of the API: every refusal carries a kind (what HTTP status it deserves) and
//! Contiv's message. The HTTP layer renders it either the Contiv way (500, text/plain) or as
//! RFC 9457 problem+json, depending on what the client asked for.

use contiv_model::ValidationError;
use contiv_store::StoreError;

/// What went wrong, coarsely: decides the HTTP status in problem+json mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed or schema-invalid input (400).
    BadRequest,
    /// The object or one it refers to does not exist (404).
    NotFound,
    /// The request contradicts current state: immutable field, dependants exist, overlap (409).
    Conflict,
    /// A resource pool has nothing left (409 as well, but worth telling apart in logs).
    Exhausted,
    /// The store failed or is unreachable (503).
    Unavailable,
    /// This netmaster does not lead and could not hand the write to the leader (503).
    NotLeader,
    /// A bug on our side (500).
    Internal,
    /// The call needs credentials it did not bring (401): an agent call without a host
    /// certificate where netmaster verifies them.
    Unauthenticated,
    /// The caller is known but may not do this (403): a revoked certificate, an agent acting as
    /// another host.
    Forbidden,
}

impl ErrorKind {
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict | ErrorKind::Exhausted => 409,
            ErrorKind::Unavailable | ErrorKind::NotLeader => 503,
            ErrorKind::Internal => 500,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "invalid request",
            ErrorKind::NotFound => "not found",
            ErrorKind::Conflict => "conflict with current state",
            ErrorKind::Exhausted => "resource exhausted",
            ErrorKind::Unavailable => "state store unavailable",
            ErrorKind::NotLeader => "not the leader",
            ErrorKind::Internal => "internal error",
            ErrorKind::Unauthenticated => "authentication required",
            ErrorKind::Forbidden => "forbidden",
        }
    }
}

/// An API refusal: kind + the message a Contiv client expects to see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    pub fn exhausted(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Exhausted, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::new(ErrorKind::Unavailable, format!("state store error: {e}"))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
