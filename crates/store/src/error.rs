//! `StoreError`: every failure a store operation can report. Messages are lower-case and name the
//! path, key, lease or revision involved so they can be logged as-is.

use std::path::PathBuf;

use crate::types::{LeaseId, Revision};

/// Failure of a [`crate::StateStore`] operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A filesystem operation on the data directory failed.
    #[error("store i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The database engine reported an error (disk full, i/o error inside SQLite, ...).
    #[error("store backend error on {path} ({context}): {message}")]
    Backend {
        path: PathBuf,
        context: String,
        message: String,
    },
    /// The store file is damaged, or is not a contiv store (foreign file or database).
    #[error("store file {path} is corrupt or not a contiv store: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// Another process (or another store instance in this process) holds the data directory.
    #[error("store at {path} is already in use by another process")]
    Locked { path: PathBuf },
    /// A watch asked for history the store no longer keeps. `oldest` is the smallest `after` value a
    /// watch can currently start from; resync with `range` and watch from its revision.
    #[error("watch after revision {requested} is no longer available (oldest possible start is {oldest}): resync with range")]
    Compacted {
        requested: Revision,
        oldest: Revision,
    },
    /// The lease does not exist, was revoked, or expired.
    #[error("lease {0} not found (expired or revoked)")]
    LeaseNotFound(LeaseId),
    /// An argument was refused (empty key, zero TTL, ...).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The store cannot be reached or cannot serve the request now (etcd: no endpoint answers, no
    /// quorum or no leader, request timed out). Retrying later may succeed; for a `commit` the
    /// outcome is unknown (it may have been applied): re-read before retrying a non-idempotent
    /// transaction, or make it conditional.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store has been shut down.
    #[error("store is closed")]
    Closed,
    /// The configured backend is not available in this build.
    #[error("store backend {0} is not built yet")]
    Unsupported(String),
}

impl StoreError {
    /// True when the caller should resync with `range` and watch again (see [`StoreError::Compacted`]).
    pub fn is_compacted(&self) -> bool {
        matches!(self, StoreError::Compacted { .. })
    }

    /// True when the store could not be reached or had no quorum ([`StoreError::Unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}
