//! The agent fan-out: every change to agent-visible keys, as the follower applied it from the
//! store's watch (numbered by store revision), broadcast live to every agent stream and kept for a
//! while so a reconnecting agent resumes where it stopped. It is not a log of its own: it is fed
//! only by the follower, so it can never disagree with memory or the store.

use std::collections::VecDeque;
use std::sync::Arc;

use contiv_api::agent::{is_agent_key, AgentEvent, KvChange};
use parking_lot::Mutex;
use tokio::sync::broadcast;

/// How many change events are kept for resuming agents.
const HISTORY: usize = 20_000;

pub struct EventLog {
    inner: Mutex<Inner>,
    live: broadcast::Sender<Arc<AgentEvent>>,
}

struct Inner {
    history: VecDeque<Arc<AgentEvent>>,
    /// Events at or below this revision are not held (evicted, or before this process started).
    floor: u64,
    /// Revision of the last change published (the loaded revision until the first one).
    latest: u64,
}

/// What a subscriber gets: the events it missed, then the live feed.
pub struct Subscription {
    pub backlog: Vec<Arc<AgentEvent>>,
    pub live: broadcast::Receiver<Arc<AgentEvent>>,
}

impl EventLog {
    /// A log that starts at `revision` (the revision the loaded state reflects).
    pub fn starting_at(revision: u64) -> Self {
        let (live, _) = broadcast::channel(4096);
        EventLog {
            inner: Mutex::new(Inner {
                history: VecDeque::new(),
                floor: revision,
                latest: revision,
            }),
            live,
        }
    }

    /// Records one committed change set (only its agent-visible writes).
    pub fn publish(&self, revision: u64, writes: &[(String, Option<Vec<u8>>)]) {
        let changes: Vec<KvChange> = writes
            .iter()
            .filter(|(k, _)| is_agent_key(k))
            .map(|(k, v)| KvChange {
                key: k.clone(),
                value: v.as_deref().and_then(|b| serde_json::from_slice(b).ok()),
            })
            .collect();
        if changes.is_empty() {
            return;
        }
        let ev = Arc::new(AgentEvent {
            revision,
            changes,
            resync: false,
        });
        let mut inner = self.inner.lock();
        if inner.history.len() == HISTORY {
            if let Some(old) = inner.history.pop_front() {
                inner.floor = old.revision;
            }
        }
        inner.history.push_back(ev.clone());
        inner.latest = revision;
        // No receivers is fine: nobody is watching.
        let _ = self.live.send(ev);
    }

    /// Memory was rebuilt from a full range at `revision`: history before it is gone, and every
    /// live stream is told to resync (take a new snapshot).
    pub fn resync(&self, revision: u64) {
        let mut inner = self.inner.lock();
        inner.history.clear();
        inner.floor = revision;
        inner.latest = revision;
        let _ = self.live.send(Arc::new(AgentEvent {
            revision,
            changes: Vec::new(),
            resync: true,
        }));
    }

    /// Revision of the last change published to agents: an agent that applied every change up
    /// to it holds netmaster's current state (at start, the revision of the loaded state; agents
    /// resuming from before it take a new snapshot).
    pub fn latest(&self) -> u64 {
        self.inner.lock().latest
    }

    /// Every event after `after`, then the live feed; `None` when events after `after` may have
    /// been dropped (the caller must take a new snapshot).
    pub fn subscribe(&self, after: u64) -> Option<Subscription> {
        let inner = self.inner.lock();
        if after < inner.floor {
            return None;
        }
        let live = self.live.subscribe();
        let backlog = inner
            .history
            .iter()
            .filter(|e| e.revision > after)
            .cloned()
            .collect();
        Some(Subscription { backlog, live })
    }
}
