//! The [`StateStore`] trait: the etcd-shaped contract every backend implements.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::types::{KeyValue, LeaseId, Revision, Snapshot, StoreInfo, Txn, TxnOutcome};
use crate::watch::WatchStream;

/// A revisioned key/value store with compare-and-swap transactions, prefix watches and leases.
///
/// Semantics common to all backends:
/// - **Concurrency**: every method may be called concurrently from any task. Transactions are
///   serialized: each sees the state left by the previous one (linearizable within one store).
/// - **Revisions**: the store revision increases by exactly one per committed transaction that
///   changed at least one key (a put, or a delete of an existing key); lease expiry/revocation that
///   deletes keys is also one revision. Keys carry `create_revision`/`mod_revision`.
/// - **Durability**: a transaction is visible to `get`/`range`/`watch` exactly when `commit` returns
///   `Committed`; for the embedded backend see the crate docs ([`crate::SyncMode`]).
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    /// Current value of `key`, if present.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Every key starting with `prefix` (empty = all), sorted by key, all as of the returned
    /// revision (a consistent snapshot: no transaction is seen half-applied).
    async fn range(&self, prefix: &str) -> Result<Snapshot, StoreError>;

    /// Atomic transaction: if every compare holds against the current state, all ops are applied in
    /// order as ONE new revision (or none if they change nothing); otherwise nothing is written and
    /// the index of the first failing compare is returned. Errors (invalid key, unknown lease
    /// `LeaseNotFound`, i/o) also leave the store unchanged.
    async fn commit(&self, txn: Txn) -> Result<TxnOutcome, StoreError>;

    /// Stream of every change under `prefix` with revision > `after`, one batch per revision in
    /// revision order: first the retained history, then live changes. `after` equal to the revision of
    /// a `range` snapshot continues exactly where the snapshot ends. Fails with
    /// `StoreError::Compacted` if the history since `after` is no longer kept (resync with `range`);
    /// a stream that falls behind the retained history yields that error once and ends.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError>;

    /// Creates a lease that expires `ttl` after its last keep-alive. Keys put with it are deleted
    /// (one revision, with delete events) when it expires or is revoked. Leases survive a restart of
    /// the embedded store with their TTL restarted. etcd raises a TTL to whole seconds and to its
    /// minimum (see the crate docs).
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError>;

    /// Restarts the lease's TTL; `StoreError::LeaseNotFound` if it expired or was revoked.
    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError>;

    /// Ends the lease now and deletes its keys in one revision; `LeaseNotFound` if already gone.
    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError>;

    /// Backend name and location, for logs and `/info`.
    fn info(&self) -> StoreInfo;
}
