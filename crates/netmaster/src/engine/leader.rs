//! Leadership among several netmasters on one shared store (etcd).
//!
//! Exactly one netmaster writes. It holds the leader key, attached to its store lease, and every
//! transaction it commits carries a fence: "the leader key still has the mod revision it had when
//! I won". A leader that was paused or cut off past its lease lost the key (the store deleted it
//! with the lease, someone else may hold it now), so its fenced transactions fail and it can never
//! commit, whatever it believes. Before a new leader accepts a write it waits until its memory
//! reflects the revision at which it won (see `follow`), so it plans on everything its predecessor
//! committed.
//!
//! With the embedded store there is one netmaster by construction (the store directory is locked
//! by one process): it is [`Leadership::standalone`], always the leader, without a fence.
//!
//! Keys: `/contiv-cluster/leader` (the leader's [`Member`], with its lease) and
//! `/contiv-cluster/netmasters/<id>` (every running netmaster, with its lease). They live outside
//! `/contiv/` on purpose: they are not part of the state agents mirror or a migration copies.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use contiv_store::{Compare, LeaseId, StateStore, StoreError, Txn, TxnOutcome};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{info, warn};

/// Prefix of the cluster membership keys.
pub const CLUSTER_PREFIX: &str = "/contiv-cluster/";
/// The leader key.
pub const LEADER_KEY: &str = "/contiv-cluster/leader";

fn member_key(id: &str) -> String {
    format!("{CLUSTER_PREFIX}netmasters/{id}")
}

/// One netmaster, as the cluster keys describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Stable identity: the URL other netmasters and agents reach it at.
    pub id: String,
    /// Base URL writes are forwarded to (`http://host:port`).
    pub url: String,
    /// Unix seconds when this process started.
    pub started: u64,
    pub version: String,
}

impl Member {
    pub fn new(url: &str, version: &str) -> Member {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Member {
            id: url.to_string(),
            url: url.to_string(),
            started,
            version: version.to_string(),
        }
    }
}

/// What this netmaster currently is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Always the leader, no fence (embedded store: one netmaster by construction).
    Standalone,
    /// Elected: writes carry `Compare::ModRevision(LEADER_KEY, fence)`.
    Leader { fence: u64 },
    /// Another netmaster leads (`None`: nobody yet, an election is under way).
    Follower { leader: Option<Member> },
}

/// Shared view of the role; the election task changes it, writers and the HTTP layer read it.
pub struct Leadership {
    me: Option<Member>,
    role: RwLock<Role>,
    changed: watch::Sender<u64>,
    /// Wakes the election loop at once (a fenced write found the key moved on).
    recheck: tokio::sync::Notify,
    /// An elected leader serves only once it wrote the cluster defaults (a brand-new cluster's
    /// `default` tenant): until then it answers as if no leader were known, so the first request a
    /// client sends after seeing "leader" never misses them.
    ready: std::sync::atomic::AtomicBool,
}

impl Leadership {
    /// The only netmaster: always leads.
    pub fn standalone() -> Arc<Leadership> {
        Arc::new(Leadership {
            me: None,
            role: RwLock::new(Role::Standalone),
            changed: watch::Sender::new(0),
            recheck: tokio::sync::Notify::new(),
            ready: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// One of several: follows until elected by [`run_election`].
    pub fn elected(me: Member) -> Arc<Leadership> {
        Arc::new(Leadership {
            me: Some(me),
            role: RwLock::new(Role::Follower { leader: None }),
            changed: watch::Sender::new(0),
            recheck: tokio::sync::Notify::new(),
            ready: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn role(&self) -> Role {
        self.role.read().clone()
    }

    pub fn me(&self) -> Option<&Member> {
        self.me.as_ref()
    }

    /// Leads and serves (standalone, or elected and ready).
    pub fn is_leader(&self) -> bool {
        match *self.role.read() {
            Role::Standalone => true,
            Role::Leader { .. } => self.ready.load(std::sync::atomic::Ordering::Acquire),
            Role::Follower { .. } => false,
        }
    }

    /// Elected (holds the fence), whether or not it serves yet.
    fn is_elected(&self) -> bool {
        matches!(*self.role.read(), Role::Leader { .. })
    }

    fn mark_ready(&self) {
        self.ready.store(true, std::sync::atomic::Ordering::Release);
        self.changed.send_modify(|n| *n += 1);
    }

    /// The compare every write must carry (`None`: standalone, unfenced). `Err`: not the leader.
    pub fn fence(&self) -> Result<Option<Compare>, Option<Member>> {
        match &*self.role.read() {
            Role::Standalone => Ok(None),
            Role::Leader { fence } => Ok(Some(Compare::ModRevision(LEADER_KEY.into(), *fence))),
            Role::Follower { leader } => Err(leader.clone()),
        }
    }

    /// The leader other netmasters should forward to, when it is not this one.
    pub fn leader_elsewhere(&self) -> Option<Member> {
        match &*self.role.read() {
            Role::Follower { leader } => leader.clone(),
            _ => None,
        }
    }

    pub(crate) fn set(&self, role: Role) {
        let mut cur = self.role.write();
        if *cur != role {
            info!(from = ?*cur, to = ?role, "netmaster role changed");
            self.ready
                .store(false, std::sync::atomic::Ordering::Release);
            *cur = role;
            drop(cur);
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// A fenced write failed on the fence: the leader key moved on without us.
    pub fn lost(&self, fence: u64) {
        let mut cur = self.role.write();
        if *cur == (Role::Leader { fence }) {
            warn!("leadership lost (fenced write refused): following");
            self.ready
                .store(false, std::sync::atomic::Ordering::Release);
            *cur = Role::Follower { leader: None };
            drop(cur);
            self.changed.send_modify(|n| *n += 1);
            // Learn who leads now, so the next writes are forwarded there.
            self.recheck.notify_one();
        }
    }

    /// Changes whenever the role changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// Campaigns for the leader key forever (until `stop` closes): holds a lease, registers this
/// netmaster, takes the key when it is free, follows whoever holds it otherwise.
pub async fn run_election(
    store: Arc<dyn StateStore>,
    leadership: Arc<Leadership>,
    engine: Weak<super::Engine>,
    ttl: Duration,
    mut stop: watch::Receiver<()>,
) {
    let Some(me) = leadership.me().cloned() else {
        return;
    };
    let me_json = serde_json::to_vec(&me).unwrap_or_default();
    let tick = (ttl / 3).max(Duration::from_millis(100));
    loop {
        let lease = match store.grant_lease(ttl).await {
            Ok(l) => l,
            Err(e) => {
                warn!("election: cannot get a lease: {e}");
                leadership.set(Role::Follower { leader: None });
                if sleep_or_stop(&mut stop, tick).await {
                    return;
                }
                continue;
            }
        };
        let _ = store
            .commit(Txn::new().put_with_lease(member_key(&me.id), me_json.clone(), lease))
            .await;
        // Watch the leader key so a vacancy is taken at once (polling every tick as a fallback).
        let mut stream = match store.range(LEADER_KEY).await {
            Ok(snap) => store.watch(LEADER_KEY, snap.revision).await.ok(),
            Err(_) => None,
        };
        let mut last_alive = tokio::time::Instant::now();
        loop {
            match campaign(&*store, &leadership, &engine, &me, &me_json, lease).await {
                Ok(()) => {}
                Err(e) => warn!("election: {e}"),
            }
            // Wait for a change of the leader key or the next tick, keeping the lease alive.
            let wake = async {
                match stream.as_mut() {
                    Some(s) => {
                        if !matches!(s.next().await, Some(Ok(_))) {
                            std::future::pending::<()>().await;
                        }
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = wake => {}
                _ = leadership.recheck.notified() => {}
                _ = tokio::time::sleep(tick) => {}
                _ = stop.changed() => {
                    let _ = store.revoke_lease(lease).await;
                    return;
                }
            }
            match store.keep_alive(lease).await {
                Ok(()) => last_alive = tokio::time::Instant::now(),
                Err(StoreError::LeaseNotFound(_)) => {
                    warn!("election: our lease expired: stepping down and starting over");
                    leadership.set(Role::Follower { leader: None });
                    break;
                }
                Err(e) => {
                    warn!("election: lease keep-alive failed: {e}");
                    // Past the TTL the store has dropped our key: do not act as the leader.
                    if last_alive.elapsed() >= ttl {
                        leadership.set(Role::Follower { leader: None });
                        break;
                    }
                }
            }
        }
    }
}

async fn sleep_or_stop(stop: &mut watch::Receiver<()>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.changed() => true,
    }
}

/// One look at the leader key: take it if free (or if it is ours from a previous life), else
/// follow its holder.
async fn campaign(
    store: &dyn StateStore,
    leadership: &Leadership,
    engine: &Weak<super::Engine>,
    me: &Member,
    me_json: &[u8],
    lease: LeaseId,
) -> Result<(), StoreError> {
    let current = store.get(LEADER_KEY).await?;
    let won = match current {
        Some(kv) if kv.lease == Some(lease) => {
            // Still ours: nothing to do (the fence is the key's mod revision, unchanged).
            if !leadership.is_elected() {
                // We hold the key but stepped down (a fenced write failed on an old fence):
                // lead again with the current fence once caught up.
                Some(kv.mod_revision)
            } else {
                return Ok(());
            }
        }
        Some(kv) => {
            let holder: Option<Member> = serde_json::from_slice(&kv.value).ok();
            match holder {
                // Our own key from before a restart: take it over with our new lease at once
                // instead of waiting out the old lease.
                Some(h) if h.id == me.id => {
                    let txn = Txn::new()
                        .when(Compare::ModRevision(LEADER_KEY.into(), kv.mod_revision))
                        .put_with_lease(LEADER_KEY, me_json.to_vec(), lease);
                    match store.commit(txn).await? {
                        TxnOutcome::Committed { revision } => Some(revision),
                        TxnOutcome::CompareFailed { .. } => None,
                    }
                }
                other => {
                    leadership.set(Role::Follower { leader: other });
                    None
                }
            }
        }
        None => {
            let txn = Txn::new().when_absent(LEADER_KEY).put_with_lease(
                LEADER_KEY,
                me_json.to_vec(),
                lease,
            );
            match store.commit(txn).await? {
                TxnOutcome::Committed { revision } => Some(revision),
                TxnOutcome::CompareFailed { .. } => None,
            }
        }
    };
    if let Some(fence) = won {
        // Plan on everything the previous leader committed before accepting a write.
        let head = store.range(LEADER_KEY).await?.revision.max(fence);
        let Some(engine) = engine.upgrade() else {
            return Ok(());
        };
        match engine.await_applied(head).await {
            Ok(()) => {
                info!(
                    fence,
                    revision = head,
                    "elected leader, caught up with the store"
                );
                engine.reset_heartbeats();
                leadership.set(Role::Leader { fence });
            }
            Err(e) => warn!("elected but not caught up, not leading yet: {e}"),
        }
    }
    if leadership.is_elected() && !leadership.is_leader() {
        let Some(engine) = engine.upgrade() else {
            return Ok(());
        };
        match engine.ensure_defaults().await {
            Ok(()) => leadership.mark_ready(),
            Err(e) => warn!("elected, writing the cluster defaults failed (retrying): {e}"),
        }
    }
    Ok(())
}

/// Every netmaster registered in the store (running ones: their keys live with their leases).
pub async fn members(store: &dyn StateStore) -> Result<Vec<Member>, StoreError> {
    let snap = store.range(&format!("{CLUSTER_PREFIX}netmasters/")).await?;
    Ok(snap
        .kvs
        .iter()
        .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
        .collect())
}
