//! [`Agent`]: the state every part of the host agent shares (settings, datapath, netmaster
//! client, mirror, attachment records) and the locks that order its operations.
//!
//! Concurrency: CNI operations run in parallel on the server's blocking pool; two operations on
//! the same attachment (container id + interface) are ordered by a per-attachment lock, while
//! operations on different attachments of one network proceed in parallel (the datapath converges
//! the network idempotently under its own lock, and a per-network lock made concurrent ADDs of one
//! network wait for each other's netmaster round trip and netlink work). A full reconcile pass
//! (start-up, every `--reconcile-interval`, or when a change needs a removal) takes the `gate`
//! for writing, so it never sees an attachment half made (netmaster endpoint created, record
//! not yet written); CNI operations take it for reading, so they do not wait for each other.
//! The pass kicked by a change (an ADD, a DEL, a mirror event) takes it for reading too: it
//! only ensures networks and remote endpoints whose desired state changed, and takes the gate
//! for writing only to let an ADD finish before deciding that netmaster holds an endpoint without
//! a record (then a full pass accounts for it before anything is released). Who reads the mirror
//! and then programs a network's remotes holds `converged` meanwhile, so the last writer
//! applied the newest mirror.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use contiv_cni::agent_api::{AgentAddResponse, AgentError, AgentRoute};
use contiv_cni::error::codes;
use contiv_datapath::{
    Datapath, FwdMode, Ipv4Net, LocalEndpoint, MacAddr, NetworkSpec, PolicyDriver, QosDriver,
    RemoteEndpoint,
};

use crate::follow::Link;
use crate::mirror::SharedMirror;
use crate::netmaster::Netmaster;
use crate::policy::PolicyState;
use crate::reconcile::Desired;
use crate::records::{Attachment, RecordStore};

/// Tells whether a workload network namespace still exists.
pub type NetnsProbe = Arc<dyn Fn(&Path) -> bool + Send + Sync>;

/// What the agent is, as the rest of the cluster knows it.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This host's name (endpoints' `homingHost`).
    pub host: String,
    pub vtep_ip: Ipv4Addr,
    /// Forwarding mode when netmaster's global object does not say.
    pub fwd_mode: FwdMode,
    /// The CNI plugin's pending-delete spool.
    pub pending_dir: PathBuf,
    /// How long ADD waits for the mirror to learn a network it does not know yet.
    pub mirror_wait: Duration,
    /// How long an ADD in a group with rules waits for them to be in force before it fails.
    pub policy_wait: Duration,
    /// The datapath driver's name, as reported to netmaster.
    pub datapath: &'static str,
    /// Whether DNS is served (CNI results then name the gateway as nameserver).
    pub dns: bool,
}

/// A flag the reconciler sleeps on; anyone may raise it.
#[derive(Default)]
pub struct Kick {
    dirty: Mutex<bool>,
    cond: Condvar,
}

impl Kick {
    pub fn kick(&self) {
        *self.dirty.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cond.notify_all();
    }
    /// Waits up to `timeout` for a kick; returns whether one came (and clears it).
    pub fn wait(&self, timeout: Duration) -> bool {
        let g = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
        let (mut g, _) = self
            .cond
            .wait_timeout_while(g, timeout, |d| !*d)
            .unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *g, false)
    }
}

/// The host agent's shared state.
pub struct Agent {
    pub settings: Settings,
    pub dp: Arc<dyn Datapath>,
    /// Enforces the compiled policy (beside `dp`).
    pub pol: Arc<dyn PolicyDriver>,
    /// The policy loop's kick, enforced revision and last pass.
    pub policy: PolicyState,
    /// Enforces netprofiles (bandwidth, DSCP) of local endpoints; see `qos`.
    pub qos: Arc<dyn QosDriver>,
    pub(crate) qos_state: crate::qos::QosState,
    pub nm: Arc<dyn Netmaster>,
    pub mirror: Arc<SharedMirror>,
    pub link: Arc<Link>,
    pub records: RecordStore,
    pub netns_alive: NetnsProbe,
    pub kick: Kick,
    gate: RwLock<()>,
    net_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Networks known converged in the datapath (spec + remote endpoints last applied), so an
    /// ADD on a converged network skips `ensure_network` and the remote-endpoint diff (both read
    /// back the network's devices, FDB and neighbours: O(pods)). Its mutex also orders every
    /// "read the mirror, then program the network" sequence (ADD on a miss, reconcile passes),
    /// so the last one to program a network applied the newest mirror. Cleared by full reconcile
    /// passes; an ADD that fails on a cached network drops the entry and converges again.
    pub(crate) converged: Mutex<HashMap<String, (NetworkSpec, Vec<RemoteEndpoint>)>>,
    /// What the last reconcile pass converged to without error (`None`: unknown, so the next
    /// kicked pass is a full one). Kicked passes diff the desired state against it and only
    /// program what changed (see `reconcile`).
    pub(crate) last_desired: Mutex<Option<Desired>>,
    /// Endpoints the last full pass kept although it could not account for them (see
    /// `rebuild`: interfaces without a record that are alive but not adoptable, records whose
    /// namespace path is gone while the workload lives unnamed); they do not send kicked passes
    /// to a full one.
    pub(crate) unaccounted: Mutex<BTreeSet<String>>,
}

/// Parts an [`Agent`] is built from.
pub struct Parts {
    pub settings: Settings,
    pub dp: Arc<dyn Datapath>,
    pub pol: Arc<dyn PolicyDriver>,
    pub qos: Arc<dyn QosDriver>,
    pub nm: Arc<dyn Netmaster>,
    pub records: RecordStore,
    pub netns_alive: NetnsProbe,
}

impl Agent {
    pub fn new(p: Parts) -> Arc<Agent> {
        Arc::new(Agent {
            settings: p.settings,
            dp: p.dp,
            pol: p.pol,
            qos: p.qos,
            qos_state: Default::default(),
            policy: PolicyState::default(),
            nm: p.nm,
            mirror: Arc::new(SharedMirror::new()),
            link: Link::new(),
            records: p.records,
            netns_alive: p.netns_alive,
            kick: Kick::default(),
            gate: RwLock::new(()),
            net_locks: Mutex::new(HashMap::new()),
            converged: Mutex::new(HashMap::new()),
            last_desired: Mutex::new(None),
            unaccounted: Mutex::new(BTreeSet::new()),
        })
    }

    pub(crate) fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.gate.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The lock ordering operations on one attachment (`container_id`, `ifname`). Entries are
    /// dropped again once no operation holds them.
    pub(crate) fn attachment_lock(&self, container_id: &str, ifname: &str) -> AttachmentLock<'_> {
        let key = format!("{container_id}\u{0}{ifname}");
        let lock = {
            let mut m = self.net_locks.lock().unwrap_or_else(|p| p.into_inner());
            m.entry(key.clone()).or_default().clone()
        };
        AttachmentLock {
            agent: self,
            key,
            lock,
        }
    }

    /// The forwarding mode in force (netmaster's global object, else the flag).
    pub fn fwd_mode(&self) -> FwdMode {
        self.mirror
            .read()
            .as_ref()
            .map_or(self.settings.fwd_mode, |m| {
                m.fwd_mode(self.settings.fwd_mode)
            })
    }
}

/// A handle on one attachment's mutex; removes the map entry when the last handle goes.
pub(crate) struct AttachmentLock<'a> {
    agent: &'a Agent,
    key: String,
    pub(crate) lock: Arc<Mutex<()>>,
}

impl Drop for AttachmentLock<'_> {
    fn drop(&mut self) {
        let mut m = self
            .agent
            .net_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Ours plus the map's: nobody else waits on it.
        if Arc::strong_count(&self.lock) == 2 {
            m.remove(&self.key);
        }
    }
}

/// Locks a mutex ignoring poison (the protected maps are caches, always consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Locks a per-attachment mutex (poison is ignored: the protected data is `()`).
pub(crate) fn hold(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An internal (999) error with details.
pub(crate) fn internal(msg: &str, details: impl ToString) -> AgentError {
    AgentError {
        code: codes::INTERNAL,
        msg: msg.to_string(),
        details: details.to_string(),
    }
}

/// The datapath's view of a recorded attachment.
pub(crate) fn local_endpoint(a: &Attachment) -> Result<LocalEndpoint, AgentError> {
    let ip: Ipv4Net =
        a.ip.parse()
            .map_err(|_| internal("corrupt attachment record", format!("ip {:?}", a.ip)))?;
    let gateway: Ipv4Addr = a.gateway.parse().map_err(|_| {
        internal(
            "corrupt attachment record",
            format!("gateway {:?}", a.gateway),
        )
    })?;
    let mac = a
        .mac
        .parse()
        .unwrap_or_else(|_| MacAddr::from_ipv4(ip.addr()));
    Ok(LocalEndpoint {
        id: a.endpoint_id.clone(),
        network_id: a.network_key(),
        netns_path: PathBuf::from(&a.netns),
        ifname: a.ifname.clone(),
        ip,
        mac,
        gateway,
        plumbing: match a.frontend {
            crate::records::Frontend::Cni => contiv_datapath::Plumbing::InWorkload,
            crate::records::Frontend::Docker => contiv_datapath::Plumbing::HandedOver,
        },
    })
}

/// The CNI answer for a recorded attachment.
pub(crate) fn response(a: &Attachment) -> AgentAddResponse {
    AgentAddResponse {
        ip: a.ip.clone(),
        gateway: Some(a.gateway.clone()),
        mac: Some(a.mac.clone()),
        ifname: a.ifname.clone(),
        host_ifname: (!a.host_ifname.is_empty()).then(|| a.host_ifname.clone()),
        mtu: (a.mtu != 0).then_some(a.mtu),
        routes: vec![AgentRoute {
            dst: "0.0.0.0/0".into(),
            gw: Some(a.gateway.clone()),
            ..Default::default()
        }],
        endpoint_id: Some(a.endpoint_id.clone()),
        ..Default::default()
    }
}
