//! In-memory backend ([`MemoryStore`]): a `BTreeMap` behind a mutex, with the same transaction,
//! watch and lease semantics as the embedded store (shared code in `txn`, `watch`, `lease`). Volatile;
//! meant for unit tests of netmaster logic.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::error::StoreError;
use crate::lease::{check_ttl, Leases};
use crate::store::StateStore;
use crate::txn::{apply_txn, revoke_keys, Applied, Table};
use crate::types::{KeyValue, LeaseId, Revision, Snapshot, StoreInfo, Txn, TxnOutcome};
use crate::watch::{WatchHub, WatchStream, DEFAULT_HISTORY_EVENTS};

type Map = BTreeMap<String, KeyValue>;

impl Table for Map {
    fn get(&mut self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        Ok(BTreeMap::get(self, key).cloned())
    }
    fn put(&mut self, kv: &KeyValue) -> Result<Revision, StoreError> {
        let create =
            BTreeMap::get(self, &kv.key).map_or(kv.create_revision, |old| old.create_revision);
        let mut stored = kv.clone();
        stored.create_revision = create;
        self.insert(kv.key.clone(), stored);
        Ok(create)
    }
    fn delete(&mut self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        Ok(self.remove(key))
    }
    fn delete_prefix(&mut self, prefix: &str) -> Result<Vec<KeyValue>, StoreError> {
        let keys: Vec<String> = self
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        Ok(keys.iter().filter_map(|k| self.remove(k)).collect())
    }
    fn keys_with_lease(&mut self, lease: LeaseId) -> Result<Vec<String>, StoreError> {
        Ok(self
            .values()
            .filter(|kv| kv.lease == Some(lease))
            .map(|kv| kv.key.clone())
            .collect())
    }
}

struct MemState {
    map: Map,
    revision: Revision,
}

struct Inner {
    state: Mutex<MemState>,
    hub: Arc<WatchHub>,
    leases: Arc<Leases>,
}

impl Inner {
    /// Deletes the keys of `lease` (already removed from `leases`) as one revision.
    fn revoke_keys(&self, lease: LeaseId) {
        let mut st = self.state.lock();
        let rev = st.revision;
        if let Ok(events) = revoke_keys(&mut st.map, lease, rev) {
            if !events.is_empty() {
                st.revision = rev + 1;
                self.hub.publish(rev + 1, events);
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.leases.stop();
        self.hub.close();
    }
}

/// Volatile store with the full [`StateStore`] semantics. Cloning shares the same store.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store at revision 0 keeping the default watch history (50,000 events).
    pub fn new() -> Self {
        MemoryStore::with_history(DEFAULT_HISTORY_EVENTS)
    }

    /// An empty store keeping `events` events of watch history (tests of `Compacted` use a small one).
    pub fn with_history(events: usize) -> Self {
        MemoryStore {
            inner: Arc::new(Inner {
                state: Mutex::new(MemState {
                    map: Map::new(),
                    revision: 0,
                }),
                hub: WatchHub::new(0, events),
                leases: Leases::new(1),
            }),
        }
    }

    /// Synchronous commit (the async trait method calls this; it never blocks on I/O).
    pub fn commit_sync(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        let inner = &self.inner;
        let mut st = inner.state.lock();
        let rev = st.revision;
        match apply_txn(&mut st.map, txn, rev, &|l| inner.leases.is_live(l))? {
            Applied::CompareFailed(index) => Ok(TxnOutcome::CompareFailed { index }),
            Applied::Done(events) if events.is_empty() => {
                Ok(TxnOutcome::Committed { revision: rev })
            }
            Applied::Done(events) => {
                st.revision = rev + 1;
                inner.hub.publish(rev + 1, events);
                Ok(TxnOutcome::Committed { revision: rev + 1 })
            }
        }
    }

    /// Current revision.
    pub fn revision(&self) -> Revision {
        self.inner.state.lock().revision
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        Ok(self.inner.state.lock().map.get(key).cloned())
    }

    async fn range(&self, prefix: &str) -> Result<Snapshot, StoreError> {
        let st = self.inner.state.lock();
        let kvs = st
            .map
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect();
        Ok(Snapshot {
            kvs,
            revision: st.revision,
        })
    }

    async fn commit(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        self.commit_sync(txn)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        self.inner.hub.watch(prefix, after)
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        check_ttl(ttl)?;
        let id = self.inner.leases.alloc_id();
        self.inner.leases.insert(id, ttl);
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        self.inner
            .leases
            .ensure_reaper(move |lease| match weak.upgrade() {
                Some(inner) => {
                    inner.revoke_keys(lease);
                    true
                }
                None => false,
            });
        Ok(id)
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.inner.leases.keep_alive(lease)
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        if !self.inner.leases.remove(lease) {
            return Err(StoreError::LeaseNotFound(lease));
        }
        self.inner.revoke_keys(lease);
        Ok(())
    }

    fn info(&self) -> StoreInfo {
        StoreInfo {
            backend: "memory".into(),
            location: "memory".into(),
        }
    }
}
