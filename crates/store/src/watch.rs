//! In-process watch machinery shared by the embedded and memory backends: a [`WatchHub`] keeps a
//! bounded ring of recent committed batches (for watches starting in the past) and broadcasts live
//! ones; a [`WatchStream`] replays the ring, then follows the broadcast, filtering by prefix.
//! The etcd backend feeds a [`WatchStream`] from a channel instead (its history is etcd's).

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc};

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
            prefix: prefix.to_string(),
            last: after,
            source: Source::Hub {
                hub: self.clone(),
                backlog,
                rx,
            },
        })
    }
}

/// Where a [`WatchStream`] takes its batches from.
enum Source {
    /// The in-process hub (memory and SQLite backends): ring replay, then the live broadcast.
    Hub {
        hub: Arc<WatchHub>,
        backlog: VecDeque<Arc<Batch>>,
        rx: Option<broadcast::Receiver<Arc<Batch>>>,
    },
    /// A producer task (etcd backend) that sends already filtered, revision-ordered batches; an
    /// error is the last item it sends. `None` once it ended.
    Channel(Option<mpsc::Receiver<Result<Vec<WatchEvent>, StoreError>>>),
}

/// Stream of changes under a prefix, returned by [`crate::StateStore::watch`].
///
/// `next()` yields one `Vec<WatchEvent>` per committed revision touching the prefix, in revision
/// order, never skipping one. It yields `Some(Err(Compacted))` once if the watcher fell so far behind
/// that the history it needs was dropped (then `None`), and `None` when the store is closed.
pub struct WatchStream {
    prefix: String,
    last: Revision,
    source: Source,
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
    /// A stream fed by a producer task: each `Ok` item is the non-empty batch of one revision under
    /// `prefix` (revisions increasing, all > `after`); an `Err` item ends the stream; so does
    /// closing the channel.
    pub(crate) fn from_channel(
        prefix: &str,
        after: Revision,
        rx: mpsc::Receiver<Result<Vec<WatchEvent>, StoreError>>,
    ) -> Self {
        WatchStream {
            prefix: prefix.to_string(),
            last: after,
            source: Source::Channel(Some(rx)),
        }
    }

    /// Revision of the last batch delivered (or the `after` the watch started from).
    pub fn last_revision(&self) -> Revision {
        self.last
    }

    /// Prefix this stream watches.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Next batch of events (see the type docs).
    pub async fn next(&mut self) -> Option<Result<Vec<WatchEvent>, StoreError>> {
        match &mut self.source {
            Source::Hub { .. } => self.next_from_hub().await,
            Source::Channel(slot) => {
                let item = slot.as_mut()?.recv().await;
                match item {
                    Some(Ok(events)) => {
                        if let Some(e) = events.first() {
                            self.last = e.revision;
                        }
                        Some(Ok(events))
                    }
                    Some(Err(e)) => {
                        *slot = None;
                        Some(Err(e))
                    }
                    None => {
                        *slot = None;
                        None
                    }
                }
            }
        }
    }

    async fn next_from_hub(&mut self) -> Option<Result<Vec<WatchEvent>, StoreError>> {
        let Source::Hub { hub, backlog, rx } = &mut self.source else {
            return None;
        };
        loop {
            if let Some(batch) = backlog.pop_front() {
                if let Some(events) = take(&self.prefix, &mut self.last, &batch) {
                    return Some(Ok(events));
                }
                continue;
            }
            let receiver = rx.as_mut()?;
            match receiver.recv().await {
                Ok(batch) => {
                    if let Some(events) = take(&self.prefix, &mut self.last, &batch) {
                        return Some(Ok(events));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => match hub.catch_up(self.last) {
                    Ok((new_backlog, new_rx)) => {
                        *backlog = new_backlog;
                        *rx = new_rx;
                    }
                    Err(e) => {
                        *rx = None;
                        return Some(Err(e));
                    }
                },
                Err(broadcast::error::RecvError::Closed) => {
                    *rx = None;
                    return None;
                }
            }
        }
    }
}

/// Events of `batch` under `prefix`, or `None` if already delivered (revision <= `last`) or not
/// matching; advances `last`.
fn take(prefix: &str, last: &mut Revision, batch: &Batch) -> Option<Vec<WatchEvent>> {
    if batch.revision <= *last {
        return None;
    }
    *last = batch.revision;
    let events: Vec<WatchEvent> = batch
        .events
        .iter()
        .filter(|e| e.kv.key.starts_with(prefix))
        .cloned()
        .collect();
    (!events.is_empty()).then_some(events)
}
