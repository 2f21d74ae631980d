//! Plain data of the store API: key/values, transactions (compares + ops, with a builder), outcomes,
//! snapshots, watch events, configuration and backend info. No I/O here.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Store revision: a counter bumped once per committed transaction that changed something (etcd
/// semantics). Revision 0 is the empty embedded or memory store; an empty etcd is at revision 1.
pub type Revision = u64;
/// Lease identifier, as returned by [`crate::StateStore::grant_lease`].
pub type LeaseId = i64;

/// One key as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the transaction that created the key (kept across updates).
    pub create_revision: Revision,
    /// Revision of the last transaction that wrote (or, in a delete event, deleted) the key.
    pub mod_revision: Revision,
    /// Lease the key is attached to: the key is deleted when the lease expires or is revoked.
    pub lease: Option<LeaseId>,
}

/// A condition of a transaction, evaluated against the state before the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key does not exist.
    Absent(String),
    /// The key exists.
    Exists(String),
    /// The key's `mod_revision` equals the revision (an absent key has mod revision 0, so
    /// `ModRevision(k, 0)` is the same as `Absent(k)`).
    ModRevision(String, Revision),
    /// The key exists and holds exactly this value.
    Value(String, Vec<u8>),
}

impl Compare {
    /// The key this compare reads.
    pub fn key(&self) -> &str {
        match self {
            Compare::Absent(k)
            | Compare::Exists(k)
            | Compare::ModRevision(k, _)
            | Compare::Value(k, _) => k,
        }
    }
}

/// A write of a transaction. Ops run in order; a later op sees the effect of an earlier one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create or replace the key. `lease: None` detaches it from any lease it had.
    Put {
        key: String,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    },
    /// Delete the key (no effect if absent).
    Delete { key: String },
    /// Delete every key starting with `prefix` (an empty prefix deletes everything).
    DeletePrefix { prefix: String },
}

/// An atomic transaction: if every compare holds, every op is applied as one revision; otherwise
/// nothing is written. Build with [`Txn::new`] and the chaining helpers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub ops: Vec<Op>,
}

impl Txn {
    pub fn new() -> Self {
        Txn::default()
    }
    /// Adds a compare.
    pub fn when(mut self, compare: Compare) -> Self {
        self.compares.push(compare);
        self
    }
    /// Adds `Compare::Absent(key)`.
    pub fn when_absent(self, key: impl Into<String>) -> Self {
        self.when(Compare::Absent(key.into()))
    }
    /// Adds `Compare::ModRevision(key, rev)`.
    pub fn when_mod_revision(self, key: impl Into<String>, rev: Revision) -> Self {
        self.when(Compare::ModRevision(key.into(), rev))
    }
    /// Adds a put without lease.
    pub fn put(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.ops.push(Op::Put {
            key: key.into(),
            value: value.into(),
            lease: None,
        });
        self
    }
    /// Adds a put attached to a lease.
    pub fn put_with_lease(
        mut self,
        key: impl Into<String>,
        value: impl Into<Vec<u8>>,
        lease: LeaseId,
    ) -> Self {
        self.ops.push(Op::Put {
            key: key.into(),
            value: value.into(),
            lease: Some(lease),
        });
        self
    }
    /// Adds a delete of one key.
    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.ops.push(Op::Delete { key: key.into() });
        self
    }
    /// Adds a delete of every key under a prefix.
    pub fn delete_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.ops.push(Op::DeletePrefix {
            prefix: prefix.into(),
        });
        self
    }
    /// Adds an op.
    pub fn op(mut self, op: Op) -> Self {
        self.ops.push(op);
        self
    }
}

/// Result of [`crate::StateStore::commit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnOutcome {
    /// All compares held and the ops were applied. `revision` is the new revision, or the current one
    /// when the ops changed nothing (no ops, or deletes of absent keys): no revision is spent then.
    Committed { revision: Revision },
    /// Compare number `index` (0-based, the first one that failed) did not hold; nothing was written.
    CompareFailed { index: usize },
}

impl TxnOutcome {
    pub fn is_committed(&self) -> bool {
        matches!(self, TxnOutcome::Committed { .. })
    }
}

/// Result of [`crate::StateStore::range`]: keys sorted by key, all as of `revision`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub kvs: Vec<KeyValue>,
    pub revision: Revision,
}

/// Kind of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change seen by a watch. For `Delete`, `kv.value` is empty, `kv.lease` is `None` and
/// `kv.mod_revision` is the deleting revision; `kv.create_revision` is the deleted key's on the
/// embedded and memory stores, 0 on etcd (its delete events do not carry it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    pub kv: KeyValue,
    pub revision: Revision,
}

/// fsync policy of the embedded backend (see the crate docs for the trade-off).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// Commits survive a process crash at once; a background thread syncs the log every ~20 ms, so
    /// a power loss can lose the last ~20 ms of commits (never corrupts).
    #[default]
    Normal,
    /// Every commit is fsynced before it is acknowledged.
    Full,
}

/// Which backend to open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreConfig {
    /// Embedded SQLite store in `dir` (created if missing), file `dir/contiv.db`.
    Embedded { dir: PathBuf, sync: SyncMode },
    /// Volatile in-memory store (tests).
    Memory,
    /// etcd v3 cluster: client URLs (`http://host:port`, `https://host:port`, `host:port` or
    /// `etcd://host:port`), with TLS for `https` endpoints.
    Etcd {
        endpoints: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tls: Option<EtcdTls>,
    },
}

/// TLS to etcd: the CA that signed the members' certificates and this client's certificate
/// (etcd's `--client-cert-auth`), as PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdTls {
    pub ca: PathBuf,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// What [`crate::StateStore::info`] reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreInfo {
    /// `"sqlite"`, `"memory"` or `"etcd"`.
    pub backend: String,
    /// File path, endpoints, or `"memory"`.
    pub location: String,
}
