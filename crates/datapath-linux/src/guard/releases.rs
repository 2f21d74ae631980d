//! Element releases off the DEL's critical path, coalesced per namespace.
//!
//! Why: the commit of an nftables element deletion waits ~14 ms in the kernel here (an RCU grace
//! period; an addition costs ~70 µs), and the commits of one namespace are serialized, so one
//! deletion batch per DEL cut concurrent DELs to ~80/s (docs/BENCHMARKS.md, "Source guard").
//! A DEL removes the port first (nothing can send through it any more), then queues its element
//! here and returns; one short-lived thread per namespace sends everything queued as one batch and
//! repeats until the queue is empty, so DELs in flight share one deletion.
//!
//! Ordering: an ADD of a port takes that port's queued deletion back and waits for a batch that
//! is already being sent with it, before it puts its own element in; so a re-ADD is never undone
//! by an earlier DEL. A stale element of a port that no longer exists opens nothing (a port of
//! that name does not exist), and a re-sync drops it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::{release, Entry};

#[derive(Default)]
struct State {
    /// Queued per namespace.
    queued: BTreeMap<PathBuf, BTreeSet<Entry>>,
    /// Being sent per namespace (a namespace listed has a sender thread).
    sending: BTreeMap<PathBuf, BTreeSet<Entry>>,
}

/// The queue of element releases (shared with its sender threads).
#[derive(Default, Clone)]
pub struct Releases(Arc<(Mutex<State>, Condvar)>);

impl Releases {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0 .0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `entry`'s release in `ns`; returns at once.
    pub fn release_later(&self, ns: &Path, entry: Entry) {
        let mut st = self.lock();
        st.queued.entry(ns.to_path_buf()).or_default().insert(entry);
        if st.sending.contains_key(ns) {
            return; // the running sender takes it in its next round
        }
        st.sending.insert(ns.to_path_buf(), BTreeSet::new());
        drop(st);
        let (me, ns) = (self.clone(), ns.to_path_buf());
        let spawned = std::thread::Builder::new()
            .name("guard-release".into())
            .spawn({
                let ns = ns.clone();
                move || me.send_rounds(&ns)
            });
        if spawned.is_err() {
            // No thread: send on the caller's.
            self.send_rounds(&ns);
        }
    }

    /// Sends every queued release of `ns`, a batch per round, until none is left.
    fn send_rounds(&self, ns: &Path) {
        loop {
            let batch = {
                let mut st = self.lock();
                let batch = st.queued.remove(ns).unwrap_or_default();
                if batch.is_empty() {
                    st.sending.remove(ns);
                    self.0 .1.notify_all();
                    return;
                }
                st.sending.insert(ns.to_path_buf(), batch.clone());
                batch
            };
            let entries: Vec<Entry> = batch.into_iter().collect();
            if let Err(e) = release(ns, &entries) {
                tracing::warn!(ns = %ns.display(), error = %e, "source guard release (stale elements stay until a re-sync)");
            }
            let mut st = self.lock();
            st.sending.insert(ns.to_path_buf(), BTreeSet::new());
            self.0 .1.notify_all();
        }
    }

    /// Before an element of `port` goes in: its queued release is dropped, and a batch being
    /// sent with it is waited for.
    pub fn forget_port(&self, ns: &Path, port: &str) {
        let mut st = self.lock();
        if let Some(q) = st.queued.get_mut(ns) {
            q.retain(|e| e.port != port);
        }
        while st
            .sending
            .get(ns)
            .is_some_and(|s| s.iter().any(|e| e.port == port))
        {
            st = self.0 .1.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Waits until nothing is queued or being sent for `ns` (a re-sync replaces the sets after).
    pub fn settle(&self, ns: &Path) {
        let mut st = self.lock();
        while st.sending.contains_key(ns) || st.queued.contains_key(ns) {
            st = self.0 .1.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contiv_datapath::MacAddr;

    fn entry(i: u8) -> Entry {
        Entry {
            port: format!("ctve00000000{i:02x}"),
            mac: MacAddr([2, 0, 0, 0, 0, i]),
            ip: std::net::Ipv4Addr::new(10, 0, 0, i),
        }
    }

    /// The queue drains (one sender, rounds until empty) even when every send fails, and a
    /// port taken back or settled never blocks for good.
    #[test]
    fn queued_releases_drain_even_when_sending_fails() {
        let r = Releases::default();
        let ns = Path::new("/nonexistent/contiv-guard-test");
        for i in 0..20 {
            r.release_later(ns, entry(i));
        }
        r.forget_port(ns, &entry(3).port);
        r.settle(ns);
        let st = r.lock();
        assert!(st.queued.is_empty() && st.sending.is_empty());
    }
}
