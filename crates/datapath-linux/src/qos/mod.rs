//! [`LinuxQos`]: the [`QosDriver`] of the Linux datapath. Contiv's netprofile per local
//! endpoint:
//!
//! - `bandwidth`/`burst`: a `tbf` root qdisc on both ends of the endpoint's veth, so both
//!   directions are limited: on the host end (in the tenant namespace) it shapes traffic to the
//!   workload, on the workload's own interface traffic from it. This kernel has no `police`
//!   action, `matchall` filter or `ifb` device, so the workload's sending side cannot be
//!   limited from the host end; a workload with `CAP_NET_ADMIN` in its namespace could remove
//!   its own side (as with any in-namespace setting). Built over netlink ([`tc`]).
//! - `DSCP`: nftables in the tenant namespace ([`render`]): every IPv4 packet the workload
//!   sends gets the DSCP, at the ingress hook of the host end.
//!
//! By diff: the driver remembers what it converged per endpoint (with the namespace and the
//! interface index, so a veth made again is converged again) and per tenant, and touches the
//! kernel only for what differs; what it does not remember (after a restart) it reads back
//! from the kernel first. An endpoint whose host end has no tbf is taken to have none on its
//! workload end either (limits are removed workload end first).

pub mod render;
pub mod tc;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use contiv_datapath::{
    DatapathError, EndpointQos, FwdMode, QosDriver, QosStats, RateLimit, TenantQos,
};

use crate::driver::{LinuxDatapath, NetLoc};
use crate::error::LinuxError;
use crate::names;
use crate::netns;

/// What the driver last converged for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Converged {
    tenant: String,
    ns_id: (u64, u64),
    /// The host end's interface index (0: not looked at, for an endpoint without a limit).
    index: u32,
    limit: Option<RateLimit>,
}

/// What the driver last installed as a tenant's DSCP marking.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Marks {
    ns_id: (u64, u64),
    /// Host-side interface → (its index, DSCP).
    marks: BTreeMap<String, (u32, u8)>,
}

/// The netprofile driver (see the module docs).
pub struct LinuxQos {
    dp: Arc<LinuxDatapath>,
    limits: Mutex<HashMap<String, Converged>>,
    marks: Mutex<HashMap<String, Marks>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn ns_identity(ns: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(ns).ok().map(|m| (m.dev(), m.ino()))
}

impl LinuxQos {
    /// QoS on the endpoints `dp` plugs (its tenant namespaces, its names).
    pub fn new(dp: Arc<LinuxDatapath>) -> Self {
        LinuxQos {
            dp,
            limits: Mutex::new(HashMap::new()),
            marks: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `qos` needs no kernel access: nothing is wanted, no endpoint of the tenant had a
    /// limit from this driver, and the tenant's namespace was read back since it was made (its
    /// marking is known to be none). An endpoint plugged after that read has no qdisc of ours
    /// (a new veth has none), so an ADD without a profile costs no netlink call here.
    fn nothing_to_do(&self, qos: &TenantQos, ns_id: (u64, u64)) -> bool {
        if qos.is_set() {
            return false;
        }
        let had_limits = lock(&self.limits)
            .values()
            .any(|c| c.tenant == qos.tenant && c.limit.is_some());
        let known_unmarked = lock(&self.marks)
            .get(&qos.tenant)
            .is_some_and(|m| m.ns_id == ns_id && m.marks.is_empty());
        !had_limits && known_unmarked
    }

    /// Converges the limit of one endpoint on both ends. Returns whether the kernel changed.
    fn converge_limit(
        &self,
        ns: &Path,
        ep: &EndpointQos,
        host: &str,
        host_index: u32,
        host_root: Option<&tc::RootQdisc>,
    ) -> Result<bool, LinuxError> {
        let want = ep.limit.as_ref().map(tc::Tbf::from_limit);
        let host_has_tbf = host_root.is_some_and(|r| r.kind == "tbf");
        if want.is_none() && !host_has_tbf {
            return Ok(false);
        }
        let label = ep.netns_path.display().to_string();
        let file = File::open(&ep.netns_path).map_err(|source| LinuxError::Netns {
            ns: label.clone(),
            op: "open",
            source,
        })?;
        let ns_name = ns
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let loc = NetLoc {
            id: ep.network_id.clone(),
            ns_name,
            ns_path: ns.to_path_buf(),
            vni: 0,
            mode: FwdMode::Bridge,
            mtu: 0,
        };
        let ifname = ep.ifname.clone();
        self.dp
            .in_tenant_and_workload(&loc, &file, &label, |tnl, wnl| async move {
                let w = wnl.need_link(&ifname).await?;
                // The workload end first: a host end without tbf means both are clean.
                let mut changed = tc::converge(&wnl, &ifname, w.index, want.as_ref()).await?;
                changed |= tc::converge(&tnl, host, host_index, want.as_ref()).await?;
                Ok(changed)
            })
    }

    /// The tenant's marking made `wanted` unless known to be so.
    fn converge_marks(
        &self,
        tenant: &str,
        ns: &Path,
        ns_id: (u64, u64),
        wanted: BTreeMap<String, (u32, u8)>,
    ) -> Result<bool, DatapathError> {
        let want = Marks {
            ns_id,
            marks: wanted,
        };
        if lock(&self.marks).get(tenant) == Some(&want) {
            return Ok(false);
        }
        let text = render::batch(
            &want
                .marks
                .iter()
                .map(|(d, (_, v))| (d.clone(), *v))
                .collect(),
        );
        crate::policy::nft::apply(ns, &text).map_err(|e| DatapathError::Backend {
            object: format!("dscp marking of tenant {tenant}"),
            source: Box::new(e),
        })?;
        lock(&self.marks).insert(tenant.to_string(), want);
        Ok(true)
    }
}

impl QosDriver for LinuxQos {
    fn apply(&self, qos: &TenantQos) -> Result<QosStats, DatapathError> {
        let mut stats = QosStats::default();
        let ns = self.dp.tenant_netns_path(&qos.tenant);
        // Endpoints of the tenant that left: nothing of them remains to converge.
        lock(&self.limits).retain(|id, c| c.tenant != qos.tenant || qos.endpoints.contains_key(id));
        let Some(ns_id) = netns::is_netns(&ns).then(|| ns_identity(&ns)).flatten() else {
            // No forwarding of the tenant here yet: nothing to shape, ask again later.
            self.forget(&qos.tenant);
            stats.pending = qos.endpoints.values().filter(|e| e.is_set()).count();
            return Ok(stats);
        };
        if self.nothing_to_do(qos, ns_id) {
            return Ok(stats);
        }
        let label = ns.display().to_string();
        let (links, roots) = self.dp.in_ns(&ns, &label, |nl| async move {
            let links = nl.links().await?;
            let roots = tc::root_qdiscs(&nl).await?;
            let links: HashMap<String, u32> =
                links.into_iter().map(|l| (l.name, l.index)).collect();
            Ok((links, roots))
        })?;
        let mut errors = Vec::new();
        let mut marks = BTreeMap::new();
        for (id, ep) in &qos.endpoints {
            let host = names::host_veth(id);
            let Some(&index) = links.get(&host) else {
                // Being plugged or unplugged: the pass after its ADD converges it.
                stats.pending += usize::from(ep.is_set());
                lock(&self.limits).remove(id);
                continue;
            };
            if let Some(d) = ep.dscp {
                marks.insert(host.clone(), (index, d));
            }
            let done = Converged {
                tenant: qos.tenant.clone(),
                ns_id,
                index,
                limit: ep.limit,
            };
            if lock(&self.limits).get(id) == Some(&done) {
                continue;
            }
            match self.converge_limit(&ns, ep, &host, index, roots.get(&index)) {
                Ok(changed) => {
                    stats.changed += usize::from(changed);
                    lock(&self.limits).insert(id.clone(), done);
                }
                // The workload went away meanwhile: its DEL follows.
                Err(e) if e.is_absent() || matches!(e, LinuxError::Netns { .. }) => {
                    tracing::debug!(endpoint = %id, "qos not converged: {e}");
                    stats.pending += 1;
                }
                Err(e) => errors.push(DatapathError::Backend {
                    object: format!("bandwidth limit of endpoint {id}"),
                    source: Box::new(e),
                }),
            }
        }
        match self.converge_marks(&qos.tenant, &ns, ns_id, marks) {
            Ok(changed) => stats.dscp_changed = changed,
            Err(e) => errors.push(e),
        }
        DatapathError::from_list(errors).map(|()| stats)
    }

    fn forget(&self, tenant: &str) {
        lock(&self.limits).retain(|_, c| c.tenant != tenant);
        lock(&self.marks).remove(tenant);
    }
}
