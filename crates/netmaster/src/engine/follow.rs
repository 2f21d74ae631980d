//! The one change stream: netmaster's memory follows the store's watch.
//!
//! Every committed change reaches memory the same way, whoever wrote it (this netmaster, another
//! one on a shared store, a lease that expired): the follower task reads the store's watch from the
//! revision memory reflects and applies each revision with [`State::apply`], the function a full
//! load uses too. A writer answers only once memory reflects its revision, so a client reads its
//! writes; when its commit is exactly the next revision it applies it itself through the same
//! function (the follower then skips it), otherwise it waits for the follower. The agent fan-out ([`super::events::EventLog`]) is fed
//! here, from the same batches, so agents see exactly what memory saw, in the same order.
//!
//! When the watch cannot continue (history compacted past memory's revision), memory is rebuilt
//! from a full range and agents are told to resync.

use std::sync::{Arc, Weak};
use std::time::Duration;

use contiv_api::keys;
use contiv_store::{EventKind, StateStore, StoreError, WatchEvent};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::Engine;
use crate::state::State;

/// The follower watches the whole key space, not only `/contiv/`: "memory reflects revision R"
/// must be decidable for every R (a new leader waits for the revision at which it won, which is a
/// write of the leader key outside `/contiv/`). Keys netmaster does not know are ignored by
/// [`State::apply`].
const FOLLOW_PREFIX: &str = "";

/// Longest pause between attempts to re-establish a broken watch.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Runs until the engine is dropped (its stop sender closes) or the store is closed.
pub(super) async fn follow(
    store: Arc<dyn StateStore>,
    engine: Weak<Engine>,
    mut from: u64,
    mut stop: watch::Receiver<()>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let mut stream = match store.watch(FOLLOW_PREFIX, from).await {
            Ok(s) => s,
            Err(StoreError::Closed) => return,
            Err(e) if e.is_compacted() => {
                match resync(&*store, &engine).await {
                    Some(rev) => from = rev,
                    None => return,
                }
                continue;
            }
            Err(e) => {
                warn!(revision = from, "cannot watch the store, retrying: {e}");
                if pause(&mut stop, &mut backoff).await {
                    return;
                }
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        loop {
            let batch = tokio::select! {
                b = stream.next() => b,
                _ = stop.changed() => return,
            };
            match batch {
                Some(Ok(events)) => {
                    let Some(engine) = engine.upgrade() else {
                        return;
                    };
                    if let Some(rev) = engine.apply_batch(events) {
                        from = rev;
                    }
                }
                Some(Err(e)) if e.is_compacted() => {
                    match resync(&*store, &engine).await {
                        Some(rev) => from = rev,
                        None => return,
                    }
                    break;
                }
                Some(Err(e)) => {
                    warn!(revision = from, "store watch broke, re-watching: {e}");
                    break;
                }
                None => {
                    debug!(revision = from, "store watch ended, re-watching");
                    break;
                }
            }
        }
        if pause(&mut stop, &mut backoff).await {
            return;
        }
    }
}

/// Sleeps `backoff` (doubling it up to the maximum); true when the engine is gone meanwhile.
async fn pause(stop: &mut watch::Receiver<()>, backoff: &mut Duration) -> bool {
    let stopped = tokio::select! {
        _ = tokio::time::sleep(*backoff) => false,
        _ = stop.changed() => true,
    };
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    stopped
}

/// Rebuilds memory from a full range; returns the revision to watch from (`None`: engine gone).
async fn resync(store: &dyn StateStore, engine: &Weak<Engine>) -> Option<u64> {
    loop {
        match store.range(keys::ROOT).await {
            Ok(snapshot) => {
                let engine = engine.upgrade()?;
                info!(
                    revision = snapshot.revision,
                    "store history no longer covers memory: reloading the whole state"
                );
                engine.replace_state(&snapshot);
                return Some(snapshot.revision);
            }
            Err(e) => {
                engine.upgrade()?;
                warn!("reloading state from the store: {e}");
                tokio::time::sleep(MAX_BACKOFF).await;
            }
        }
    }
}

impl Engine {
    /// Applies one revision from the watch (unless the writer already did); returns it.
    fn apply_batch(&self, events: Vec<WatchEvent>) -> Option<u64> {
        let revision = events.first()?.revision;
        let writes = events
            .into_iter()
            .map(|e| {
                let value = (e.kind == EventKind::Put).then_some(e.kv.value);
                (e.kv.key, value)
            })
            .collect();
        self.apply_revision(revision, writes, false);
        Some(revision)
    }

    /// The one apply path of memory: applies the writes of store revision `revision` with
    /// [`State::apply`], publishes them to agents and wakes writers waiting for it. Each revision
    /// is applied once, in order: the follower applies every revision it watches unless memory is
    /// already there; a writer applies its own commit directly only when it is exactly the next
    /// revision (`next_only`: nothing anyone else committed can be skipped), which spares it the
    /// wake-up of the follower task (~45 µs per write measured on the embedded store).
    pub(super) fn apply_revision(
        &self,
        revision: u64,
        mut writes: Vec<(String, Option<Vec<u8>>)>,
        next_only: bool,
    ) -> bool {
        // Objects before what refers to them (the order a full load uses), stable otherwise.
        writes.sort_by_key(|(k, _)| keys::parse(k).map_or(9, |p| p.phase()));
        {
            let mut st = self.state.write();
            if revision <= st.revision || (next_only && revision != st.revision + 1) {
                return false;
            }
            for (k, v) in &writes {
                st.apply(k, v.as_deref());
            }
            st.revision = revision;
            // Under the state lock, so agents get revisions in the order memory applied them.
            self.events.publish(revision, &writes);
        }
        // Served objects (with their derived links) depend only on object keys: allocations and
        // endpoint records leave the cached list bodies valid.
        if writes
            .iter()
            .any(|(k, _)| k.starts_with(keys::OBJECT_PREFIX))
        {
            self.lists.clear();
        }
        self.applied.send_modify(|a| *a = (*a).max(revision));
        true
    }

    /// Replaces memory with a full snapshot (after the watch lost history) and resyncs agents.
    fn replace_state(&self, snapshot: &contiv_store::Snapshot) {
        let fresh = State::from_snapshot(snapshot, &self.options.cluster_mode);
        *self.state.write() = fresh;
        self.events.resync(snapshot.revision);
        self.lists.clear();
        self.applied.send_replace(snapshot.revision);
    }

    /// Waits until memory reflects `revision` (a write's own commit, seen back through the watch).
    pub async fn await_applied(&self, revision: u64) -> crate::error::ApiResult<()> {
        let mut rx = self.applied.subscribe();
        let seen = tokio::time::timeout(FOLLOW_TIMEOUT, async {
            rx.wait_for(|r| *r >= revision).await.is_ok()
        })
        .await;
        match seen {
            Ok(true) => Ok(()),
            Ok(false) => Err(crate::error::ApiError::new(
                crate::error::ErrorKind::Unavailable,
                "netmaster stopped following the state store",
            )),
            Err(_) => Err(crate::error::ApiError::new(
                crate::error::ErrorKind::Unavailable,
                format!(
                    "the change was committed (store revision {revision}) but has not come back \
                     through the store's watch within {FOLLOW_TIMEOUT:?}: reads may not show it yet"
                ),
            )),
        }
    }
}

/// How long a writer waits for its commit to come back through the watch.
const FOLLOW_TIMEOUT: Duration = Duration::from_secs(10);
