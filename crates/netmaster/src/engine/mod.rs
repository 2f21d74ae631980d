//! The engine: owns the in-memory [`State`], serializes writers, turns every API write into one
//! store transaction, and serves reads (with cached list bodies) from memory.

pub mod agent;
mod bootstrap;
mod cache;
pub mod events;
mod explain;
mod follow;
pub mod leader;
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
    /// Fan-out of the followed changes to agents (fed only by the follower, see `follow`).
    events: events::EventLog,
    /// Store revision memory reflects, as the follower applied it (writers wait on it).
    applied: tokio::sync::watch::Sender<u64>,
    /// Dropped with the engine: stops the follower and election tasks.
    stop: tokio::sync::watch::Sender<()>,
    /// Whether this netmaster may write (and the fence its writes carry).
    leadership: Arc<leader::Leadership>,
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
        Self::open_with(store, options, leader::Leadership::standalone()).await
    }

    /// Like [`Engine::open`], for one of several netmasters: writes wait for the election
    /// ([`Engine::start_election`]); the defaults are ensured by whoever leads first.
    pub async fn open_with(
        store: Arc<dyn StateStore>,
        options: EngineOptions,
        leadership: Arc<leader::Leadership>,
    ) -> ApiResult<Arc<Engine>> {
        let snapshot = store.range(keys::ROOT).await?;
        let state = State::from_snapshot(&snapshot, &options.cluster_mode);
        let now = std::time::Instant::now();
        let node_seen = state.nodes.keys().map(|n| (n.clone(), now)).collect();
        debug!(
            keys = snapshot.kvs.len(),
            revision = snapshot.revision,
            "state loaded"
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
        let engine = Arc::new(Engine {
            store: store.clone(),
            state: RwLock::new(state),
            writer: tokio::sync::Mutex::new(()),
            lists: cache::ListCache::default(),
            events: events::EventLog::starting_at(snapshot.revision),
            applied: tokio::sync::watch::Sender::new(snapshot.revision),
            stop: stop_tx,
            leadership,
            node_seen: parking_lot::Mutex::new(node_seen),
            policy_reports: policy::Reports::default(),
            options,
        });
        tokio::spawn(follow::follow(
            store,
            Arc::downgrade(&engine),
            snapshot.revision,
            stop_rx,
        ));
        if engine.leadership.is_leader() {
            bootstrap::ensure_defaults(&engine).await?;
        }
        Ok(engine)
    }

    /// Campaigns for leadership (several netmasters on etcd) with a lease of `ttl`.
    pub fn start_election(self: &Arc<Self>, ttl: std::time::Duration) {
        tokio::spawn(leader::run_election(
            self.store.clone(),
            self.leadership.clone(),
            Arc::downgrade(self),
            ttl,
            self.stop.subscribe(),
        ));
    }

    pub fn leadership(&self) -> &leader::Leadership {
        &self.leadership
    }

    /// Every netmaster registered on the store (empty for a standalone one).
    pub async fn netmasters(&self) -> ApiResult<Vec<leader::Member>> {
        Ok(leader::members(&*self.store).await?)
    }

    /// About to lead: every node gets a fresh heartbeat grace period (this netmaster did not see
    /// their heartbeats so far: followers forward them).
    fn reset_heartbeats(&self) {
        let now = std::time::Instant::now();
        let nodes: Vec<String> = self.read(|st| st.nodes.keys().cloned().collect());
        let mut seen = self.node_seen.lock();
        seen.clear();
        seen.extend(nodes.into_iter().map(|n| (n, now)));
    }

    /// The `global` object and the `default` tenant (written by the first leader of a cluster).
    async fn ensure_defaults(&self) -> ApiResult<()> {
        bootstrap::ensure_defaults(self).await
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// The store, for state kept beside the objects (users, signing keys).
    pub fn store(&self) -> Arc<dyn StateStore> {
        self.store.clone()
    }

    pub fn store_info(&self) -> contiv_store::StoreInfo {
        self.store.info()
    }

    /// Runs `f` on the current state (reads never touch the store).
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.state.read())
    }

    /// The one write path: plan against current state, commit the change set as one transaction,
    /// then answer once memory reflects that revision (see `follow`: applied by this writer when
    /// it is the next revision, else by the follower from the store's watch). A refused plan or a
    /// failed commit changes nothing.
    pub async fn write<R>(
        &self,
        plan: impl FnOnce(&State, &mut ChangeSet) -> ApiResult<R>,
    ) -> ApiResult<R> {
        let _writer = self.writer.lock().await;
        let mut cs = ChangeSet::default();
        let fence = self.leadership.fence().map_err(not_leader)?;
        let result = plan(&self.state.read(), &mut cs)?;
        if cs.is_empty() {
            return Ok(result);
        }
        let mut txn = cs.to_txn();
        let guards = usize::from(fence.is_some());
        if let Some(f) = &fence {
            txn.compares.insert(0, f.clone());
        }
        let revision = match self.store.commit(txn).await? {
            TxnOutcome::Committed { revision } => revision,
            TxnOutcome::CompareFailed { index } if index < guards => {
                if let Some(contiv_store::Compare::ModRevision(_, rev)) = fence {
                    self.leadership.lost(rev);
                }
                return Err(not_leader(None));
            }
            TxnOutcome::CompareFailed { index } => {
                let index = index - guards;
                return Err(ApiError::conflict(format!(
                    "state changed concurrently (guard {index} failed), retry the request"
                )));
            }
        };
        self.apply_revision(revision, cs.writes().to_vec(), true);
        self.await_applied(revision).await?;
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

/// Refusal of a write on a netmaster that does not lead (nothing was written).
fn not_leader(leader: Option<leader::Member>) -> ApiError {
    let msg = match leader {
        Some(m) => format!(
            "this netmaster is not the leader (the leader is {}): nothing was written, retry there",
            m.url
        ),
        None => {
            "this netmaster is not the leader and no leader is known yet (election under way): \
                 nothing was written, retry shortly"
                .to_string()
        }
    };
    ApiError::new(crate::error::ErrorKind::NotLeader, msg)
}

/// Contiv's message for a missing object: "<type> not found".
pub fn not_found<T: ModelObject>() -> ApiError {
    ApiError::not_found(format!("{} not found", T::KIND.type_name()))
}
