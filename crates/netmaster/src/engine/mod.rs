//! The engine: owns the in-memory [`State`], serializes writers, turns every API write into one
//! store transaction, and serves reads (with cached list bodies) from memory.

pub mod agent;
mod bootstrap;
mod cache;
pub mod events;
mod explain;
mod policy;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::Bytes;
use contiv_model::{Inspect, ModelObject};
use contiv_store::{StateStore, TxnOutcome};
use parking_lot::RwLock;
use tracing::debug;

use crate::changeset::ChangeSet;
use crate::error::{ApiError, ApiResult};
use crate::rules::Managed;
use crate::state::State;
use contiv_api::keys;

pub use bootstrap::{EngineOptions, DEFAULT_PVT_SUBNET, DEFAULT_TENANT};
pub use explain::ExplainQuery;
pub use policy::{RuleCounters, RuleInspect};

/// netmaster's core. Cheap to share (`Arc<Engine>`).
pub struct Engine {
    store: Arc<dyn StateStore>,
    state: RwLock<State>,
    /// One writer at a time: planning reads a state no other write can change underneath.
    writer: tokio::sync::Mutex<()>,
    lists: cache::ListCache,
    events: events::EventLog,
    /// Last heartbeat of each registered node (in memory: a restarted netmaster gives every
    /// node a fresh grace period).
    node_seen: parking_lot::Mutex<std::collections::HashMap<String, std::time::Instant>>,
    /// Latest policy report of each host agent, by hostname (in memory: agents report again
    /// with every heartbeat; dropped when the node expires).
    policy_reports: policy::Reports,
    options: EngineOptions,
}

impl Engine {
    /// Loads the whole store into memory and makes sure the `global` object and the `default`
    /// tenant exist.
    pub async fn open(
        store: Arc<dyn StateStore>,
        options: EngineOptions,
    ) -> ApiResult<Arc<Engine>> {
        let snapshot = store.range(keys::ROOT).await?;
        let mut state = State::default();
        state.load(
            snapshot
                .kvs
                .iter()
                .map(|kv| (kv.key.as_str(), kv.value.as_slice())),
        );
        state.revision = snapshot.revision;
        state.cluster_mode.clone_from(&options.cluster_mode);
        let now = std::time::Instant::now();
        let node_seen = state.nodes.keys().map(|n| (n.clone(), now)).collect();
        debug!(
            keys = snapshot.kvs.len(),
            revision = snapshot.revision,
            "state loaded"
        );
        let engine = Arc::new(Engine {
            store,
            state: RwLock::new(state),
            writer: tokio::sync::Mutex::new(()),
            lists: cache::ListCache::default(),
            events: events::EventLog::starting_at(snapshot.revision),
            node_seen: parking_lot::Mutex::new(node_seen),
            policy_reports: policy::Reports::default(),
            options,
        });
        bootstrap::ensure_defaults(&engine).await?;
        Ok(engine)
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    pub fn store_info(&self) -> contiv_store::StoreInfo {
        self.store.info()
    }

    /// Runs `f` on the current state (reads never touch the store).
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.state.read())
    }

    /// The one write path: plan against current state, commit the change set as one transaction,
    /// then apply it to memory. A refused plan or a failed commit changes nothing.
    pub async fn write<R>(
        &self,
        plan: impl FnOnce(&State, &mut ChangeSet) -> ApiResult<R>,
    ) -> ApiResult<R> {
        let _writer = self.writer.lock().await;
        let mut cs = ChangeSet::default();
        let result = plan(&self.state.read(), &mut cs)?;
        if cs.is_empty() {
            return Ok(result);
        }
        let revision = match self.store.commit(cs.to_txn()).await? {
            TxnOutcome::Committed { revision } => revision,
            TxnOutcome::CompareFailed { index } => {
                return Err(ApiError::conflict(format!(
                    "state changed concurrently (guard {index} failed), retry the request"
                )));
            }
        };
        let mut st = self.state.write();
        let mut writes: Vec<_> = cs.writes().iter().collect();
        writes.sort_by_key(|(k, _)| keys::parse(k).map_or(9, |p| p.phase()));
        for (k, v) in writes {
            st.apply(k, v.as_deref());
        }
        st.revision = revision;
        self.events.publish(revision, cs.writes());
        // Served objects (with their derived links) depend only on object keys: allocations and
        // endpoint records leave the cached list bodies valid.
        if cs
            .writes()
            .iter()
            .any(|(k, _)| k.starts_with(keys::OBJECT_PREFIX))
        {
            self.lists.clear();
        }
        Ok(result)
    }

    /// `GET /api/v1/<plural>/`: the JSON array, served from a cache rebuilt after each write.
    pub fn list_json<T: Managed>(&self) -> ApiResult<Bytes> {
        if let Some(b) = self.lists.get(T::KIND) {
            return Ok(b);
        }
        let st = self.state.read();
        let items: Vec<T> = T::table(&st)
            .values()
            .map(|o| T::with_links(&st, o))
            .collect();
        let body = Bytes::from(
            serde_json::to_vec(&items).map_err(|e| ApiError::internal(format!("encode: {e}")))?,
        );
        self.lists.put(T::KIND, body.clone());
        Ok(body)
    }

    pub fn get<T: Managed>(&self, key: &str) -> ApiResult<T> {
        let st = self.state.read();
        let obj = st.get::<T>(key).ok_or_else(|| not_found::<T>())?;
        Ok(T::with_links(&st, obj))
    }

    pub fn inspect<T: Managed>(&self, key: &str) -> ApiResult<Inspect<T>> {
        let st = self.state.read();
        let obj = st.get::<T>(key).ok_or_else(|| not_found::<T>())?;
        Ok(Inspect::new(T::with_links(&st, obj), T::oper(&st, obj)))
    }

    /// `POST`/`PUT`: create, or update where Contiv allows it. Re-sending an identical object is a
    /// no-op success (the original refused it for immutable objects).
    pub async fn upsert<T: Managed>(&self, url_key: &str, mut obj: T) -> ApiResult<T> {
        obj.set_key(url_key.to_owned());
        if let Some(old) = self.read(|st| st.get::<T>(url_key).cloned()) {
            T::merge_update(&old, &mut obj);
        }
        obj.validate()?;
        T::clear_links(&mut obj);
        let stored = self
            .write(move |st, cs| {
                match st.get::<T>(url_key) {
                    None => T::plan_create(st, &obj, cs)?,
                    Some(old) => {
                        T::merge_update(old, &mut obj);
                        if *old == obj {
                            return Ok(obj);
                        }
                        T::plan_update(st, old, &obj, cs)?;
                    }
                }
                cs.put_json(keys::object(T::KIND, url_key), &obj)?;
                Ok(obj)
            })
            .await?;
        let st = self.state.read();
        Ok(T::with_links(&st, &stored))
    }

    pub async fn delete<T: Managed>(&self, key: &str) -> ApiResult<()> {
        self.write(|st, cs| {
            let old = st.get::<T>(key).ok_or_else(|| not_found::<T>())?;
            T::plan_delete(st, old, cs)?;
            cs.delete(keys::object(T::KIND, key));
            Ok(())
        })
        .await
    }
}

/// Contiv's message for a missing object: "<type> not found".
pub fn not_found<T: ModelObject>() -> ApiError {
    ApiError::not_found(format!("{} not found", T::KIND.type_name()))
}
