//! Long-running loops that talk to netmaster: the follower (snapshot, then the change stream,
//! reconnecting with backoff and resuming from the last revision, a new snapshot on resync) and
//! the heartbeat (node registration every `--heartbeat-interval`, default [`HEARTBEAT`]). Both run on their own OS threads and
//! end when the [`Stop`] flag is raised.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use contiv_api::agent::NodeInfo;

use crate::mirror::{Mirror, SharedMirror};
use crate::netmaster::{Netmaster, WatchEnd};

/// How often the agent re-registers (netmaster's node TTL is 30 s).
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// A stop flag threads can sleep on.
#[derive(Default)]
pub struct Stop {
    flag: Mutex<bool>,
    cond: Condvar,
}

impl Stop {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    pub fn raise(&self) {
        *self.flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cond.notify_all();
    }
    pub fn is_raised(&self) -> bool {
        *self.flag.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Sleeps up to `d`; returns true when stopped.
    pub fn sleep(&self, d: Duration) -> bool {
        let g = self.flag.lock().unwrap_or_else(|p| p.into_inner());
        let (g, _) = self
            .cond
            .wait_timeout_while(g, d, |s| !*s)
            .unwrap_or_else(|p| p.into_inner());
        *g
    }
}

/// Exponential backoff from 100 ms to 5 s.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(Duration::from_millis(100))
    }
    fn next(&mut self) -> Duration {
        let d = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
        d
    }
    fn reset(&mut self) {
        self.0 = Duration::from_millis(100);
    }
}

/// Health of the netmaster connection, for STATUS: healthy while the change stream is up or
/// the latest contact succeeded (a failure newer than the last success means unreachable).
#[derive(Default)]
pub struct Link {
    /// Milliseconds since `start` of the last success / failure (0: never).
    last_ok_ms: AtomicU64,
    last_fail_ms: AtomicU64,
    connected: AtomicBool,
    start: Option<Instant>,
}

impl Link {
    pub fn new() -> Arc<Self> {
        Arc::new(Link {
            start: Some(Instant::now()),
            ..Default::default()
        })
    }
    fn now_ms(&self) -> u64 {
        self.start
            .map_or(0, |s| s.elapsed().as_millis() as u64)
            .max(1)
    }
    pub(crate) fn ok(&self) {
        self.last_ok_ms.store(self.now_ms(), Ordering::SeqCst);
    }
    pub(crate) fn fail(&self) {
        self.connected.store(false, Ordering::SeqCst);
        self.last_fail_ms.store(self.now_ms(), Ordering::SeqCst);
    }
    fn set_connected(&self) {
        self.connected.store(true, Ordering::SeqCst);
        self.ok();
    }
    /// Whether the latest contact with netmaster failed (never contacted is not unreachable):
    /// then the mirror may be stale, and the reconciler cleans nothing up.
    pub fn unreachable(&self) -> bool {
        !self.connected.load(Ordering::SeqCst)
            && self.last_fail_ms.load(Ordering::SeqCst) > self.last_ok_ms.load(Ordering::SeqCst)
    }
    /// Whether netmaster is reachable as far as the agent knows.
    pub fn healthy(&self) -> bool {
        if self.connected.load(Ordering::SeqCst) {
            return true;
        }
        let ok = self.last_ok_ms.load(Ordering::SeqCst);
        ok != 0 && ok >= self.last_fail_ms.load(Ordering::SeqCst)
    }
}

/// Follows netmaster until `stop`: calls `changed` after each snapshot and each event that
/// changed the mirror.
pub fn follow(
    nm: &dyn Netmaster,
    mirror: &SharedMirror,
    link: &Link,
    stop: &Stop,
    changed: &dyn Fn(),
) {
    let mut backoff = Backoff::new();
    while !stop.is_raised() {
        let snap = match nm.snapshot() {
            Ok(s) => s,
            Err(e) => {
                link.fail();
                tracing::warn!("snapshot: {e}");
                if stop.sleep(backoff.next()) {
                    return;
                }
                continue;
            }
        };
        link.ok();
        let mut rev = snap.revision;
        mirror.replace(Mirror::from_snapshot(&snap));
        tracing::info!(revision = rev, "mirror loaded from snapshot");
        changed();
        backoff.reset();
        if watch_until_resync(nm, mirror, link, stop, changed, &mut rev, &mut backoff) {
            return;
        }
    }
}

/// Watches from `rev`, reconnecting on breaks; returns true when stopped, false on resync.
fn watch_until_resync(
    nm: &dyn Netmaster,
    mirror: &SharedMirror,
    link: &Link,
    stop: &Stop,
    changed: &dyn Fn(),
    rev: &mut u64,
    backoff: &mut Backoff,
) -> bool {
    loop {
        let mut last = *rev;
        let end = {
            let mut on_event = |ev: contiv_api::agent::AgentEvent| {
                link.set_connected();
                last = last.max(ev.revision);
                if mirror.apply(&ev) {
                    changed();
                }
                if stop.is_raised() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            };
            nm.watch(*rev, &mut on_event)
        };
        *rev = last;
        if end != WatchEnd::Stopped {
            link.fail();
        }
        match end {
            WatchEnd::Stopped => return true,
            WatchEnd::Resync => {
                tracing::info!(revision = *rev, "netmaster asked for a resync");
                return false;
            }
            WatchEnd::Disconnected(why) => {
                tracing::warn!(revision = *rev, "watch: {why}; reconnecting");
                if stop.sleep(backoff.next()) {
                    return true;
                }
            }
        }
    }
}

/// Registers `node` every `every` until `stop` (retrying faster while it fails).
pub fn heartbeat(nm: &dyn Netmaster, node: &NodeInfo, link: &Link, stop: &Stop, every: Duration) {
    let mut backoff = Backoff::new();
    loop {
        let wait = match nm.register_node(node) {
            Ok(()) => {
                link.ok();
                backoff.reset();
                every
            }
            Err(e) => {
                if matches!(e, crate::netmaster::NmError::Unreachable { .. }) {
                    link.fail();
                }
                tracing::warn!("register node: {e}");
                backoff.next().max(Duration::from_secs(1))
            }
        };
        if stop.sleep(wait) {
            return;
        }
    }
}
