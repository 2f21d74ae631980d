//! [`LinuxDatapath`]: configuration, network lookup and the [`Datapath`] impl, which delegates
//! to `network`, `endpoint`, `remote` and `observe`.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use contiv_datapath::{
    validate_common, Datapath, DatapathError, Encap, EndpointAttachment, FwdMode, HostSpec,
    LocalEndpoint, NetworkSpec, ObservedEndpoint, ObservedState, RemoteEndpoint, WorkloadEnd,
    VXLAN_OVERHEAD,
};
use rtnetlink::packet_route::link::InfoKind;

use crate::error::LinuxError;
use crate::netns;
use crate::nl::Nl;
use crate::{endpoint, guard, locate, names, network, observe, remote};

/// How a [`LinuxDatapath`] is set up.
#[derive(Debug, Clone)]
pub struct LinuxConfig {
    pub host: HostSpec,
    /// The namespace holding the underlay (where VXLAN sockets live). `None`: the process's own.
    pub host_netns: Option<PathBuf>,
    /// Where tenant router namespaces are mounted (`/run/netns`).
    pub netns_dir: PathBuf,
    /// Prefix of tenant namespace names; distinct per driver sharing one `netns_dir`.
    pub ns_prefix: String,
}

impl LinuxConfig {
    pub fn new(host: HostSpec) -> Self {
        LinuxConfig {
            host,
            host_netns: None,
            netns_dir: PathBuf::from(netns::NETNS_DIR),
            ns_prefix: "ctv".into(),
        }
    }
}

/// Where a network lives on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NetLoc {
    pub id: String,
    pub ns_name: String,
    pub ns_path: PathBuf,
    pub vni: u32,
    pub mode: FwdMode,
    pub mtu: u32,
}

/// The Linux kernel datapath (see the crate docs for the design).
pub struct LinuxDatapath {
    pub(crate) cfg: LinuxConfig,
    host_ns: PathBuf,
    /// Serializes network-level operations; caches network locations found or created. Local
    /// endpoint add/remove hold it only to locate their network: their netlink work touches only
    /// the endpoint's own veth (and neighbours of its address), so endpoints of one network are
    /// plugged in parallel (deleting a veth waits ~10-25 ms for an RCU grace period; concurrent
    /// deletions share one). Callers order network removal against endpoint operations (the
    /// agent's reconcile pass runs exclusively).
    state: Mutex<HashMap<String, NetLoc>>,
    /// Netlink threads kept in the host and tenant namespaces.
    pool: netns::NsPool,
    /// Source-guard element releases, coalesced off the DEL's path.
    pub(crate) guard: guard::Releases,
}

impl LinuxDatapath {
    pub fn new(cfg: LinuxConfig) -> Self {
        let host_ns = cfg
            .host_netns
            .clone()
            .unwrap_or_else(|| PathBuf::from("/proc/self/ns/net"));
        LinuxDatapath {
            cfg,
            host_ns,
            state: Mutex::new(HashMap::new()),
            pool: netns::NsPool::default(),
            guard: guard::Releases::default(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<String, NetLoc>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn host_ns(&self) -> &Path {
        &self.host_ns
    }

    pub(crate) fn vtep(&self) -> Ipv4Addr {
        self.cfg.host.vtep_ip
    }

    /// The name prefix shared by all tenant namespaces of this driver.
    pub fn tenant_ns_prefix(&self) -> String {
        format!("{}-t-", self.cfg.ns_prefix)
    }

    /// The tenant router namespace's path for `tenant` (exists once a network of it is ensured).
    pub fn tenant_netns_path(&self, tenant: &str) -> PathBuf {
        self.cfg
            .netns_dir
            .join(names::tenant_ns(&self.cfg.ns_prefix, tenant))
    }

    pub(crate) fn workload_mtu(&self, net: &NetworkSpec) -> u32 {
        if net.mtu == 0 {
            self.cfg.host.workload_mtu()
        } else {
            net.mtu
        }
    }

    /// Runs `f` with a netlink handle in the namespace at `path` (label for errors): on a
    /// pooled thread for the host and tenant namespaces, on a fresh one for others (a workload
    /// namespace outside an endpoint job, e.g. a DEL whose network is gone; a kept thread would
    /// keep it alive).
    pub(crate) fn in_ns<F, Fut, R>(&self, path: &Path, label: &str, f: F) -> Result<R, LinuxError>
    where
        F: FnOnce(Nl) -> Fut + Send,
        Fut: std::future::Future<Output = Result<R, LinuxError>>,
        R: Send,
    {
        let ns = label.to_string();
        if self.pooled(path) {
            self.pool.run(path, move |h| f(Nl { h, ns }))
        } else {
            netns::run_in(path, move |h| f(Nl { h, ns }))
        }
    }

    /// Runs `f(nl in the tenant namespace, nl in the workload namespace)` as one job on a kept
    /// thread of the tenant namespace (see [`netns::NsPool::run_with_guest`]): an endpoint's
    /// plumbing touches both sides, and this costs no thread per workload.
    pub(crate) fn in_tenant_and_workload<F, Fut, R>(
        &self,
        loc: &NetLoc,
        workload: &std::fs::File,
        workload_label: &str,
        f: F,
    ) -> Result<R, LinuxError>
    where
        F: FnOnce(Nl, Nl) -> Fut + Send,
        Fut: std::future::Future<Output = Result<R, LinuxError>>,
        R: Send,
    {
        let tenant = loc.ns_name.clone();
        let ws = workload_label.to_string();
        self.pool
            .run_with_guest(&loc.ns_path, workload, workload_label, move |th, wh| {
                f(Nl { h: th, ns: tenant }, Nl { h: wh, ns: ws })
            })
    }

    /// Whether `path` is a namespace whose netlink threads are kept: the host's or a tenant's.
    fn pooled(&self, path: &Path) -> bool {
        path == self.host_ns
            || (path.parent() == Some(self.cfg.netns_dir.as_path())
                && path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&self.tenant_ns_prefix())))
    }

    /// Deletes a tenant namespace, dropping its kept threads first.
    pub(crate) fn delete_tenant_ns(&self, path: &Path) -> Result<(), LinuxError> {
        self.pool.forget(path);
        netns::delete_named(path)
    }

    /// Every network of this driver found in the kernel (tenant namespaces scanned).
    pub(crate) fn scan(&self) -> Result<Vec<NetLoc>, LinuxError> {
        let mut out = Vec::new();
        for ns_name in netns::list_named(&self.cfg.netns_dir, &self.tenant_ns_prefix())? {
            let ns_path = self.cfg.netns_dir.join(&ns_name);
            if !netns::is_netns(&ns_path) {
                continue;
            }
            let links = self.in_ns(&ns_path, &ns_name, |nl| async move { nl.links().await })?;
            for l in links
                .into_iter()
                .filter(|l| l.kind == Some(InfoKind::Vxlan))
            {
                let Some((mode, id)) = l.alias.as_deref().and_then(names::parse_net_alias) else {
                    continue;
                };
                let vni = l.vni().unwrap_or_default();
                let (ns_name, ns_path) = (ns_name.clone(), ns_path.clone());
                out.push(NetLoc {
                    id,
                    ns_name,
                    ns_path,
                    vni,
                    mode,
                    mtu: l.mtu,
                });
            }
        }
        Ok(out)
    }

    /// Where network `id` lives: the cache, else a kernel scan.
    pub(crate) fn locate(
        &self,
        cache: &mut HashMap<String, NetLoc>,
        id: &str,
    ) -> Result<Option<NetLoc>, LinuxError> {
        if let Some(l) = cache.get(id) {
            if netns::is_netns(&l.ns_path) {
                return Ok(Some(l.clone()));
            }
        }
        let found = self.scan()?.into_iter().find(|l| l.id == id);
        if let Some(l) = &found {
            cache.insert(id.to_string(), l.clone());
        }
        Ok(found)
    }
}

impl Datapath for LinuxDatapath {
    fn validate(&self, net: &NetworkSpec) -> Result<(), DatapathError> {
        if net.encap == Encap::Vlan {
            return Err(DatapathError::Unsupported {
                network: net.id.clone(),
                reason: "vlan encap needs 802.1q devices or bridge vlan filtering, absent on \
                         this kernel; use vxlan or the ovs driver"
                    .into(),
            });
        }
        validate_common(net)?;
        let max = self.cfg.host.underlay_mtu.saturating_sub(VXLAN_OVERHEAD);
        if self.workload_mtu(net) > max || self.workload_mtu(net) < 576 {
            return Err(DatapathError::Invalid {
                object: format!("network {}", net.id),
                reason: format!(
                    "mtu {} outside 576-{max} (underlay mtu minus vxlan)",
                    net.mtu
                ),
            });
        }
        Ok(())
    }

    fn ensure_network(&self, net: &NetworkSpec) -> Result<(), DatapathError> {
        self.validate(net)?;
        let mut cache = self.lock();
        let loc = network::ensure(self, net)?;
        cache.insert(net.id.clone(), loc);
        Ok(())
    }

    fn remove_network(&self, network_id: &str) -> Result<(), DatapathError> {
        let mut cache = self.lock();
        cache.remove(network_id);
        network::remove(self, network_id)
    }

    fn add_local_endpoint(&self, ep: &LocalEndpoint) -> Result<EndpointAttachment, DatapathError> {
        let loc = {
            let mut cache = self.lock();
            self.locate(&mut cache, &ep.network_id)?
                .ok_or_else(|| DatapathError::NetworkNotFound(ep.network_id.clone()))?
        };
        endpoint::add(self, &loc, ep)
    }

    fn remove_local_endpoint(&self, ep: &LocalEndpoint) -> Result<(), DatapathError> {
        let loc = {
            let mut cache = self.lock();
            self.locate(&mut cache, &ep.network_id)?
        };
        endpoint::remove(self, loc.as_ref(), ep)
    }

    fn set_remote_endpoints(
        &self,
        network_id: &str,
        remotes: &[RemoteEndpoint],
    ) -> Result<(), DatapathError> {
        let mut cache = self.lock();
        let loc = self
            .locate(&mut cache, network_id)?
            .ok_or_else(|| DatapathError::NetworkNotFound(network_id.to_string()))?;
        let own = self.vtep();
        let wanted: Vec<&RemoteEndpoint> = remotes.iter().filter(|r| r.vtep != own).collect();
        remote::converge(self, &loc, &wanted)
    }

    fn observe(&self) -> Result<ObservedState, DatapathError> {
        let _g = self.lock();
        Ok(observe::observe(self)?)
    }

    fn workload_ends(&self, eps: &[ObservedEndpoint]) -> Result<Vec<WorkloadEnd>, DatapathError> {
        let _g = self.lock();
        Ok(locate::workload_ends(self, eps)?)
    }

    /// The source guard of every tenant namespace replaced by exactly `eps`' elements (one
    /// `nft -f` per namespace).
    fn resync_local_endpoints(&self, eps: &[LocalEndpoint]) -> Result<(), DatapathError> {
        let _g = self.lock();
        guard::resync_all(self, eps)
    }
}
