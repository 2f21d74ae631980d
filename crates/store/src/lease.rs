//! Lease bookkeeping shared by both backends: TTLs and deadlines in memory, and one reaper thread per
//! store that hands expired leases back to the backend for revocation. Which keys a lease holds is
//! not tracked here: the backend's table knows (`kv.lease`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::StoreError;
use crate::types::LeaseId;

struct Lease {
    ttl: Duration,
    deadline: Instant,
}

struct LeaseState {
    map: HashMap<LeaseId, Lease>,
    next_id: LeaseId,
    stopped: bool,
    reaper_started: bool,
}

/// Live leases of one store. Thread-safe; all methods are short critical sections.
pub(crate) struct Leases {
    state: Mutex<LeaseState>,
    cv: Condvar,
}

/// Refuses TTLs the store cannot represent.
pub(crate) fn check_ttl(ttl: Duration) -> Result<(), StoreError> {
    if ttl < Duration::from_millis(1) || ttl > Duration::from_secs(10 * 365 * 24 * 3600) {
        return Err(StoreError::Invalid(format!(
            "lease ttl {ttl:?} out of range (1 ms to 10 years)"
        )));
    }
    Ok(())
}

impl Leases {
    /// Empty set; ids handed out start at `next_id`.
    pub(crate) fn new(next_id: LeaseId) -> Arc<Self> {
        Arc::new(Leases {
            state: Mutex::new(LeaseState {
                map: HashMap::new(),
                next_id: next_id.max(1),
                stopped: false,
                reaper_started: false,
            }),
            cv: Condvar::new(),
        })
    }

    /// Reserves a fresh id (never reused by this store while `next_id` is persisted).
    pub(crate) fn alloc_id(&self) -> LeaseId {
        let mut st = self.state.lock();
        let id = st.next_id;
        st.next_id += 1;
        id
    }

    /// Starts (or restarts) lease `id` with `ttl` from now.
    pub(crate) fn insert(&self, id: LeaseId, ttl: Duration) {
        let mut st = self.state.lock();
        st.next_id = st.next_id.max(id + 1);
        st.map.insert(
            id,
            Lease {
                ttl,
                deadline: Instant::now() + ttl,
            },
        );
        self.cv.notify_all();
    }

    /// Restarts the TTL of a live lease.
    pub(crate) fn keep_alive(&self, id: LeaseId) -> Result<(), StoreError> {
        let mut st = self.state.lock();
        let now = Instant::now();
        match st.map.get_mut(&id) {
            Some(l) if l.deadline > now => {
                l.deadline = now + l.ttl;
                Ok(())
            }
            _ => Err(StoreError::LeaseNotFound(id)),
        }
    }

    /// True if the lease exists and has not expired.
    pub(crate) fn is_live(&self, id: LeaseId) -> bool {
        self.state
            .lock()
            .map
            .get(&id)
            .is_some_and(|l| l.deadline > Instant::now())
    }

    /// Forgets the lease; false if it was unknown (already revoked or reaped).
    pub(crate) fn remove(&self, id: LeaseId) -> bool {
        self.state.lock().map.remove(&id).is_some()
    }

    /// Stops the reaper thread (store shutdown).
    pub(crate) fn stop(&self) {
        self.state.lock().stopped = true;
        self.cv.notify_all();
    }

    /// Starts the reaper thread once. `revoke(id)` is called (without any lock held) for each expired
    /// lease, already removed from this set; it returns false when the store is gone.
    pub(crate) fn ensure_reaper<F>(self: &Arc<Self>, revoke: F)
    where
        F: Fn(LeaseId) -> bool + Send + 'static,
    {
        {
            let mut st = self.state.lock();
            if st.reaper_started || st.stopped {
                return;
            }
            st.reaper_started = true;
        }
        let leases = self.clone();
        let spawned = std::thread::Builder::new()
            .name("store-lease-reaper".into())
            .spawn(move || {
                while let Some(expired) = leases.wait_expired() {
                    for id in expired {
                        if !revoke(id) {
                            return;
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the lease reaper thread: leases will not expire");
            self.state.lock().reaper_started = false;
        }
    }

    /// Blocks until some leases expired (removes and returns them) or the set is stopped (`None`).
    fn wait_expired(&self) -> Option<Vec<LeaseId>> {
        let mut st = self.state.lock();
        loop {
            if st.stopped {
                return None;
            }
            let now = Instant::now();
            let expired: Vec<LeaseId> = st
                .map
                .iter()
                .filter(|(_, l)| l.deadline <= now)
                .map(|(id, _)| *id)
                .collect();
            if !expired.is_empty() {
                for id in &expired {
                    st.map.remove(id);
                }
                return Some(expired);
            }
            match st.map.values().map(|l| l.deadline).min() {
                Some(deadline) => {
                    self.cv.wait_until(&mut st, deadline);
                }
                None => self.cv.wait(&mut st),
            }
        }
    }
}
