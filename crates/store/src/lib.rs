//! State store of Contiv-rs: the etcd-shaped [`StateStore`] trait (revisions, compare-and-swap
//! transactions, prefix watches, leases) and its backends:
//!
//! - [`SqliteStore`] (`StoreConfig::Embedded`): the default, one SQLite file `dir/contiv.db`, zero
//!   setup. The directory is locked (`dir/LOCK`) so two processes cannot share it.
//! - [`MemoryStore`] (`StoreConfig::Memory`): volatile, same semantics, for unit tests.
//! - [`EtcdStore`] (`StoreConfig::Etcd`): an etcd v3 cluster (3.4 or later) through etcd-client.
//!   The trait is shaped after etcd v3 (revision per transaction, `mod_revision` compares, watch
//!   from a revision, leases), so this backend is a translation. Differences callers may see:
//!   - an empty etcd is at revision 1, not 0 (revisions are etcd's);
//!   - lease TTLs are whole seconds and at least etcd's minimum (1.5 × election timeout: 2 s with
//!     etcd's defaults), a shorter TTL is raised; expiry is noticed up to ~0.5 s late;
//!   - ops on the same key in one transaction are collapsed before sending (etcd refuses them): the
//!     final keys are the same, but a delete-then-put of an existing key keeps its create revision
//!     and emits only the put event;
//!   - delete events carry `create_revision` 0;
//!   - no quorum, no leader, no endpoint answering, or no answer within
//!     [`EtcdOptions::request_timeout`] (5 s) is [`StoreError::Unavailable`]; a commit that timed out
//!     may have been applied. Requests go to one member and fail over to the next when it does not
//!     answer; watches re-create themselves from their last revision;
//!   - watch history lasts until etcd compacts it ([`EtcdStore::compact`], or etcd's
//!     auto-compaction), and transactions are bounded by etcd's `--max-txn-ops` (default 128).
//!
//! With the `testing` feature, `testing::EtcdCluster` starts real etcd members as child processes
//! for tests (of this crate and others).
//!
//! # Durability of the embedded store
//!
//! netmaster wants ≤ 0.2 ms per allocation while one fsync costs ~0.3 ms on the target disks, so
//! the store does not fsync per commit by default:
//!
//! - [`SyncMode::Normal`] (default): SQLite WAL mode with `synchronous=NORMAL`. When `commit`
//!   returns, the transaction is in the WAL file in the kernel page cache: it **survives a crash or
//!   `kill -9` of the process** (tested), but not necessarily a power loss or kernel crash. A
//!   background thread `fdatasync`s the WAL every [`SYNC_INTERVAL`] (20 ms) when there were commits,
//!   so a power loss loses at most the last ~20 ms of acknowledged commits (plus the fsync time).
//!   The database is never corrupted by a power loss: SQLite's WAL recovery drops incomplete
//!   transactions, so what remains is a prefix of the committed history. The same thread runs passive
//!   WAL checkpoints every 250 ms, off the commit path.
//! - [`SyncMode::Full`]: `synchronous=FULL`, every commit is fsynced before it is acknowledged (no
//!   loss window, ~1 fsync of latency per commit).
//!
//! On an etcd-backed deployment, durability is etcd's (quorum fsync).
//!
//! # Performance of the embedded store
//!
//! Measured with `cargo run --release -p contiv-store --example bench_commit` (txn = 1 `Absent`
//! compare + 3 puts of 300 bytes, ext4 on a 2-core VM shared with parallel builds): `Normal`
//! median 33-45 µs, `Full` median ~250-300 µs, `MemoryStore` ~2 µs; `range` of 10.5k keys ~7-8 ms,
//! `get` ~1-2 µs. What makes it fast:
//! - one connection in `locking_mode=EXCLUSIVE` (no `-shm` file, no file locks per transaction; the
//!   data directory lock already makes the process the only user);
//! - in `Normal` mode the async methods run inline on the caller's task (no thread hop); in `Full`
//!   mode they run on the blocking pool (fsync);
//! - a put-only transaction does not rewrite the stored revision (it is recovered at open as
//!   `max(meta.revision, max(mod_rev))`), so a commit writes only the pages of its keys;
//! - checkpoints run in the background thread (the writer only checkpoints itself past 4000 WAL
//!   pages); `get`/`range` share the connection with commits, so a large `range` delays commits
//!   for its duration (netmaster only ranges at start-up).
//!
//! # Watches and history
//!
//! Watches are served in-process from a ring of the last 50,000 events plus a live broadcast, and
//! only see transactions committed by this process (netmaster is the only writer). History does not
//! survive a restart: after reopening at revision R, `watch(prefix, after)` accepts `after >= R`;
//! older starts, or a watcher lagging behind the ring, get [`StoreError::Compacted`] and must resync
//! with `range` (like an etcd compaction).

mod error;
mod etcd;
mod lease;
mod memory;
mod sqlite;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod txn;
mod types;
mod watch;

use std::sync::Arc;

pub use error::StoreError;
pub use etcd::{EtcdOptions, EtcdStore, RANGE_PAGE};
pub use memory::MemoryStore;
pub use sqlite::{SqliteStore, DB_FILE, SYNC_INTERVAL};
pub use store::StateStore;
pub use types::{
    Compare, EtcdTls, EventKind, KeyValue, LeaseId, Op, Revision, Snapshot, StoreConfig, StoreInfo,
    SyncMode, Txn, TxnOutcome, WatchEvent,
};
pub use watch::WatchStream;

/// Opens the configured backend. The embedded store is opened on the blocking thread pool (it may
/// run an integrity check of the file).
pub async fn open_store(cfg: &StoreConfig) -> Result<Arc<dyn StateStore>, StoreError> {
    match cfg {
        StoreConfig::Memory => Ok(Arc::new(MemoryStore::new())),
        StoreConfig::Embedded { dir, sync } => {
            let (dir, sync) = (dir.clone(), *sync);
            let opened = tokio::task::spawn_blocking(move || SqliteStore::open(&dir, sync)).await;
            match opened {
                Ok(store) => Ok(Arc::new(store?)),
                Err(e) => Err(StoreError::Backend {
                    path: cfg_dir(cfg),
                    context: "open".into(),
                    message: e.to_string(),
                }),
            }
        }
        StoreConfig::Etcd { endpoints, tls } => {
            let options = EtcdOptions {
                tls: tls.clone(),
                ..EtcdOptions::default()
            };
            Ok(Arc::new(EtcdStore::connect_with(endpoints, options).await?))
        }
    }
}

fn cfg_dir(cfg: &StoreConfig) -> std::path::PathBuf {
    match cfg {
        StoreConfig::Embedded { dir, .. } => dir.clone(),
        _ => std::path::PathBuf::new(),
    }
}
