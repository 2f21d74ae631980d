//! In-process watch machinery shared by the embedded and memory backends: a [`WatchHub`] keeps a
//! bounded ring of recent committed batches (for watches starting in the past) and broadcasts live
//! ones; a [`WatchStream`] replays the ring, then follows the broadcast, filtering by prefix.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::broadcast;

use crate::error::StoreError;
use crate::types::{Revision, WatchEvent};

/// Default number of events kept for watches that start in the past.
pub(crate) const DEFAULT_HISTORY_EVENTS: usize = 50_000;
/// Live batches buffered per watcher before it lags (then it catches up from the ring).
const BROADCAST_CAPACITY: usize = 4096;

/// All events of one committed revision.
#[derive(Debug)]
pub(crate) struct Batch {
    pub revision: Revision,
    pub events: Vec<WatchEvent>,
}

struct HubState {
    ring: VecDeque<Arc<Batch>>,
    ring_events: usize,
    capacity: usize,
    /// Every batch with revision >= first_rev is in the ring.
    first_rev: Revision,
    tx: Option<broadcast::Sender<Arc<Batch>>>,
}

/// Fan-out point of committed changes. `publish` must be called in revision order, after the change
/// is durable in the backend (backends call it inside their write critical section).
pub(crate) struct WatchHub {
    state: Mutex<HubState>,
}

impl WatchHub {
    /// A hub for a store currently at `current`; history before it is not available.
    pub(crate) fn new(current: Revision, capacity: usize) -> Arc<Self> {
        // A watcher lagging past the broadcast buffer catches up from the ring, so a buffer larger
        // than the ring would only delay the Compacted error.
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY.min(capacity.max(16)));
        Arc::new(WatchHub {
            state: Mutex::new(HubState {
                ring: VecDeque::new(),
                ring_events: 0,
                capacity: capacity.max(1),
                first_rev: current + 1,
                tx: Some(tx),
            }),
        })
    }

    /// Records and broadcasts the events of `revision`.
    pub(crate) fn publish(&self, revision: Revision, events: Vec<WatchEvent>) {
        let batch = Arc::new(Batch { revision, events });
        let mut st = self.state.lock();
        st.ring_events += batch.events.len();
        st.ring.push_back(batch.clone());
        while st.ring_events > st.capacity && st.ring.len() > 1 {
            if let Some(old) = st.ring.pop_front() {
                st.ring_events -= old.events.len();
                st.first_rev = old.revision + 1;
            }
        }
        if let Some(tx) = &st.tx {
            // No receiver is not an error.
            let _ = tx.send(batch);
        }
    }

    /// Ends every stream (after it drained what it already has) and refuses new watches.
    pub(crate) fn close(&self) {
        self.state.lock().tx = None;
    }

    /// Batches after `after` plus a receiver for later ones, taken atomically with respect to publish.
    /// The receiver is `None` once the hub is closed.
    #[allow(clippy::type_complexity)]
    fn catch_up(
        &self,
        after: Revision,
    ) -> Result<
        (
            VecDeque<Arc<Batch>>,
            Option<broadcast::Receiver<Arc<Batch>>>,
        ),
        StoreError,
    > {
        let st = self.state.lock();
        if after + 1 < st.first_rev {
            return Err(StoreError::Compacted {
                requested: after,
                oldest: st.first_rev - 1,
            });
        }
        let backlog = st
            .ring
            .iter()
            .filter(|b| b.revision > after)
            .cloned()
            .collect();
        Ok((backlog, st.tx.as_ref().map(|tx| tx.subscribe())))
    }

    /// Starts a watch of `prefix` delivering every revision > `after`.
    pub(crate) fn watch(
        self: &Arc<Self>,
        prefix: &str,
        after: Revision,
    ) -> Result<WatchStream, StoreError> {
        let (backlog, rx) = self.catch_up(after)?;
        if rx.is_none() {
            return Err(StoreError::Closed);
        }
        Ok(WatchStream {
            hub: self.clone(),
            prefix: prefix.to_string(),
            last: after,
            backlog,
            rx,
        })
    }
}

/// Stream of changes under a prefix, returned by [`crate::StateStore::watch`].
///
/// `next()` yields one `Vec<WatchEvent>` per committed revision touching the prefix, in revision
/// order, never skipping one. It yields `Some(Err(Compacted))` once if the watcher fell so far behind
/// that the history it needs was dropped (then `None`), and `None` when the store is closed.
pub struct WatchStream {
    hub: Arc<WatchHub>,
    prefix: String,
    last: Revision,
    backlog: VecDeque<Arc<Batch>>,
    rx: Option<broadcast::Receiver<Arc<Batch>>>,
}

impl std::fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream")
            .field("prefix", &self.prefix)
            .field("last", &self.last)
            .finish()
    }
}

impl WatchStream {
    /// Revision of the last batch delivered (or the `after` the watch started from).
    pub fn last_revision(&self) -> Revision {
        self.last
    }

    /// Prefix this stream watches.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Events of `batch` under the prefix, or `None` if already delivered or not matching.
    fn take(&mut self, batch: &Batch) -> Option<Vec<WatchEvent>> {
        if batch.revision <= self.last {
            return None;
        }
        self.last = batch.revision;
        let events: Vec<WatchEvent> = batch
            .events
            .iter()
            .filter(|e| e.kv.key.starts_with(&self.prefix))
            .cloned()
            .collect();
        (!events.is_empty()).then_some(events)
    }

    /// Next batch of events (see the type docs).
    pub async fn next(&mut self) -> Option<Result<Vec<WatchEvent>, StoreError>> {
        loop {
            if let Some(batch) = self.backlog.pop_front() {
                if let Some(events) = self.take(&batch) {
                    return Some(Ok(events));
                }
                continue;
            }
            let rx = self.rx.as_mut()?;
            match rx.recv().await {
                Ok(batch) => {
                    if let Some(events) = self.take(&batch) {
                        return Some(Ok(events));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => match self.hub.catch_up(self.last) {
                    Ok((backlog, rx)) => {
                        self.backlog = backlog;
                        self.rx = rx;
                    }
                    Err(e) => {
                        self.rx = None;
                        return Some(Err(e));
                    }
                },
                Err(broadcast::error::RecvError::Closed) => {
                    self.rx = None;
                    return None;
                }
            }
        }
    }
}
