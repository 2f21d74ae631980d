//! Reconcile by diff: what this host should have (from the attachment records and the mirror)
//! against what the datapath has (`observe`), turned into the few idempotent calls that close
//! the gap. Nothing is flushed: existing networks, interfaces and remote entries that are right
//! stay untouched, so traffic survives an agent restart.
//!
//! [`desired`] and [`plan`] are pure; [`Agent::reconcile`] gathers their inputs, first accounts
//! for every local interface (`rebuild`: records lost to a damaged or deleted journal are
//! rebuilt from the kernel and netmaster), then cleans up attachments whose workload is gone
//! (datapath + netmaster: Contiv's stale endpoints, #389 #901, do not survive here), applies
//! the plan and releases endpoints netmaster still holds for this host with neither a record
//! nor an interface.
//!
//! Invariant: nothing is destroyed that cannot be accounted for. An interface is removed only
//! when its workload is provably gone (no workload end, or its namespace gone), a record is
//! released only when its namespace is gone and its workload is not found alive elsewhere, a
//! netmaster endpoint only when no record and no interface on this host carry it; a network
//! with an interface the pass keeps is not removed. A pass that could not observe the kernel,
//! has no netmaster state, knows netmaster unreachable, or could not read the workload ends
//! removes nothing.

use std::collections::{BTreeMap, BTreeSet};

use contiv_datapath::{
    FwdMode, LocalEndpoint, NetworkSpec, ObservedEndpoint, ObservedState, RemoteEndpoint,
};

use crate::agent::{local_endpoint, lock, Agent};
use crate::attach::delete_request;
use crate::mirror::Mirror;
use crate::rebuild::Accounting;
use crate::records::{Attachment, Phase};

/// What this host should have.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    /// Networks to have, with their remote endpoints.
    pub networks: BTreeMap<String, (NetworkSpec, Vec<RemoteEndpoint>)>,
    /// Networks to keep even without a spec (a local workload is on it, or netmaster is unknown).
    pub keep: BTreeSet<String>,
    /// Whether the mirror was loaded (without it nothing is removed).
    pub informed: bool,
}

/// Calls that converge the datapath, in the order to make them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Local interfaces nobody owns (no live record).
    pub orphans: Vec<ObservedEndpoint>,
    pub remove_networks: Vec<String>,
    pub ensure: Vec<NetworkSpec>,
    /// Recorded attachments whose interface is missing (or whose network is rebuilt).
    pub replug: Vec<Attachment>,
    pub set_remotes: Vec<(String, Vec<RemoteEndpoint>)>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        *self == Plan::default()
    }
}

/// Every network of each tenant with a live local attachment (so the tenant's gateways route
/// between its networks) that the datapath `accept`s, with the endpoints other hosts have on them.
pub fn desired(
    mirror: Option<&Mirror>,
    live: &[Attachment],
    host: &str,
    fallback: FwdMode,
    accept: &dyn Fn(&NetworkSpec) -> bool,
) -> Desired {
    let mut d = Desired {
        keep: live.iter().map(Attachment::network_key).collect(),
        informed: mirror.is_some(),
        ..Default::default()
    };
    let Some(m) = mirror else { return d };
    let tenants: BTreeSet<&str> = live.iter().map(|a| a.tenant.as_str()).collect();
    for t in tenants {
        for key in m.tenant_networks(t) {
            match m.network_spec(&key, fallback) {
                Ok(spec) if accept(&spec) => {
                    let remotes = m.remote_endpoints(&key, host);
                    d.networks.insert(key, (spec, remotes));
                }
                Ok(_) => tracing::debug!("not setting up {key}: refused by the datapath"),
                Err(e) => tracing::debug!("not setting up {key}: {e}"),
            }
        }
    }
    d
}

/// The diff of `desired` against `observed`, given the live records and the interfaces without
/// a record that are provably `dead` (see `rebuild`). Only those are removed: any other
/// interface without a record is kept, and its network is neither removed nor rebuilt.
pub fn plan(
    d: &Desired,
    observed: &ObservedState,
    live: &[Attachment],
    dead: &BTreeSet<String>,
) -> Plan {
    let mut p = Plan::default();
    let owned: BTreeSet<&str> = live.iter().map(|a| a.endpoint_id.as_str()).collect();
    let (orphans, unaccounted): (Vec<_>, Vec<_>) = observed
        .local_endpoints
        .iter()
        .filter(|e| !owned.contains(e.id.as_str()))
        .cloned()
        .partition(|e| dead.contains(&e.id));
    p.orphans = orphans;
    // Networks with a kept interface, and the tenants they belong to (whose other networks its
    // workload routes to through the tenant's gateways).
    let occupied: BTreeSet<&str> = unaccounted.iter().map(|e| e.network_id.as_str()).collect();
    let tenant_of = |id: &str| id.split(':').next().unwrap_or_default().to_string();
    let occupied_tenants: BTreeSet<String> = occupied.iter().map(|id| tenant_of(id)).collect();
    let have: BTreeMap<&str, _> = observed
        .networks
        .iter()
        .map(|n| (n.id.as_str(), n))
        .collect();
    let mut rebuilt = BTreeSet::new();
    for (id, (spec, _)) in &d.networks {
        match have.get(id.as_str()) {
            None => p.ensure.push(spec.clone()),
            Some(o)
                if (o.vni != spec.vni || o.fwd_mode != spec.fwd_mode)
                    && !occupied.contains(id.as_str()) =>
            {
                p.remove_networks.push(id.clone());
                p.ensure.push(spec.clone());
                rebuilt.insert(id.clone());
            }
            Some(_) => {}
        }
    }
    if d.informed {
        for n in &observed.networks {
            if !d.networks.contains_key(&n.id)
                && !d.keep.contains(&n.id)
                && !occupied_tenants.contains(&tenant_of(&n.id))
            {
                p.remove_networks.push(n.id.clone());
            }
        }
    }
    let plugged: BTreeSet<&str> = observed
        .local_endpoints
        .iter()
        .map(|e| e.id.as_str())
        .collect();
    p.replug = live
        .iter()
        .filter(|a| !plugged.contains(a.endpoint_id.as_str()) || rebuilt.contains(&a.network_key()))
        .cloned()
        .collect();
    for (id, (_, remotes)) in &d.networks {
        let want: BTreeSet<_> = remotes.iter().map(|r| (r.ip, r.vtep)).collect();
        let got: BTreeSet<_> = observed
            .remote_endpoints
            .iter()
            .filter(|r| &r.network_id == id)
            .map(|r| (r.ip, r.vtep))
            .collect();
        if want != got || p.ensure.iter().any(|s| &s.id == id) {
            p.set_remotes.push((id.clone(), remotes.clone()));
        }
    }
    p
}

/// What a reconcile pass did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub stale_released: usize,
    /// Records rebuilt from the kernel and netmaster (see `rebuild`).
    pub adopted: usize,
    /// Interfaces without a record kept because they are alive but could not be adopted.
    pub kept: usize,
    pub plan: Plan,
    pub netmaster_released: usize,
    /// Endpoints of running workloads netmaster had lost (this node was reclaimed after a long
    /// silence), announced again.
    pub reannounced: usize,
    /// Ready records with neither an interface on this host nor an endpoint at netmaster (a DEL
    /// whose journal lines were lost): forgotten instead of plugged again with a freed address.
    pub forgotten: usize,
    pub errors: Vec<String>,
}

/// A placeholder endpoint to remove an interface without a record (its workload end is
/// unknown); address and MAC from netmaster's endpoint when the mirror has it.
pub(crate) fn orphan_endpoint(o: &ObservedEndpoint, m: Option<&Mirror>) -> LocalEndpoint {
    let ep = m.and_then(|m| m.endpoints.get(&o.id));
    let ip = ep
        .and_then(|e| e.ip_address.parse().ok())
        .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
    LocalEndpoint {
        id: o.id.clone(),
        network_id: o.network_id.clone(),
        netns_path: "/nonexistent/contiv-orphan".into(),
        ifname: "eth0".into(),
        ip: contiv_datapath::Ipv4Net::new(ip, 32).unwrap_or_default(),
        mac: contiv_datapath::MacAddr::from_ipv4(ip),
        gateway: ip,
        plumbing: contiv_datapath::Plumbing::InWorkload,
    }
}

/// Contiv's `Container` of an endpoint (its id is `<network>.<tenant>-<container>`).
pub(crate) fn container_of(ep: &contiv_api::EndpointState) -> String {
    if !ep.endpoint_id.is_empty() {
        return ep.endpoint_id.clone();
    }
    let prefix = format!("{}.{}-", ep.network_name, ep.tenant_name);
    ep.id.strip_prefix(&prefix).unwrap_or(&ep.id).to_string()
}

/// What a kicked pass has to program, from the last converged desired state to the new one;
/// `None` when only a full pass can tell (a network to remove or rebuild, nothing known).
fn changes(last: &Desired, d: &Desired) -> Option<Vec<(NetworkSpec, bool, Vec<RemoteEndpoint>)>> {
    if last.informed != d.informed {
        return None;
    }
    let now: BTreeSet<&String> = d.networks.keys().chain(d.keep.iter()).collect();
    if last
        .networks
        .keys()
        .chain(last.keep.iter())
        .any(|id| !now.contains(id))
    {
        return None; // something may have to go
    }
    let mut out = Vec::new();
    for (id, (spec, remotes)) in &d.networks {
        match last.networks.get(id) {
            None => out.push((spec.clone(), true, remotes.clone())),
            Some((s, _)) if s.vni != spec.vni || s.fwd_mode != spec.fwd_mode => return None,
            Some((s, _)) if s != spec => out.push((spec.clone(), true, remotes.clone())),
            Some((_, r)) if r != remotes => out.push((spec.clone(), false, remotes.clone())),
            Some(_) => {}
        }
    }
    Some(out)
}

impl Agent {
    /// The desired state from the records and the mirror.
    fn desired_now(&self, mirror: Option<&Mirror>, live: &[Attachment]) -> Desired {
        let accept = |s: &NetworkSpec| self.dp.validate(s).is_ok();
        desired(
            mirror,
            live,
            &self.settings.host,
            self.settings.fwd_mode,
            &accept,
        )
    }

    /// Live (not releasing) attachment records.
    fn live(&self) -> Vec<Attachment> {
        self.records
            .list()
            .into_iter()
            .filter(|a| a.phase != Phase::Releasing)
            .collect()
    }

    /// One full pass (exclusive with CNI operations): reads the whole datapath back, accounts
    /// for every local interface (lost records rebuilt, see `rebuild`), then cleans up what is
    /// provably dead and converges the rest. Without the kernel observed, netmaster's state, or
    /// netmaster reachable, it removes nothing (it still finishes releases a DEL asked for).
    pub fn reconcile(&self) -> Report {
        let _gate = self.exclusive();
        let mut conv = lock(&self.converged);
        conv.clear();
        *lock(&self.last_desired) = None;
        let mut r = Report::default();
        self.finish_releases(&mut r);
        let mut observed = match self.dp.observe() {
            Ok(o) => o,
            Err(e) => {
                r.errors.push(format!("observe: {e}"));
                return r;
            }
        };
        let mirror = self.mirror.read().clone();
        let acc = match &mirror {
            Some(m) if !self.link.unreachable() => match self.account(&observed, m) {
                Ok(acc) => Some(acc),
                Err(e) => {
                    r.errors.push(e);
                    None
                }
            },
            _ => None,
        };
        if let Some(acc) = &acc {
            r.adopted = acc.adopted;
            r.kept = acc.kept.len();
            *lock(&self.unaccounted) = acc.kept.union(&acc.spared).cloned().collect();
            if self.release_stale(&mut r, &acc.spared) > 0 {
                observed = match self.dp.observe() {
                    Ok(o) => o,
                    Err(e) => {
                        r.errors.push(format!("observe: {e}"));
                        return r;
                    }
                };
            }
        }
        if let (Some(m), Some(_)) = (&mirror, &acc) {
            r.forgotten = self.forget_deleted(m, &observed);
        }
        let live = self.live();
        let mut d = self.desired_now(mirror.as_ref(), &live);
        d.informed &= acc.is_some();
        let dead = acc.as_ref().map(|a| a.dead.clone()).unwrap_or_default();
        r.plan = plan(&d, &observed, &live, &dead);
        let kept_orphans = self.apply(&r.plan, mirror.as_ref(), &mut r.errors);
        if let Some(acc) = &acc {
            self.resync_endpoints(acc, &live, &mut r.errors);
        }
        if let (Some(m), Some(_)) = (&mirror, &acc) {
            // Interfaces still on this host: observed, less the dead ones just removed.
            let present: BTreeSet<&str> = observed
                .local_endpoints
                .iter()
                .map(|o| o.id.as_str())
                .filter(|id| !dead.contains(*id) || kept_orphans.contains(*id))
                .collect();
            r.netmaster_released = self.release_unrecorded(m, &present, &mut r.errors);
            r.reannounced = self.reannounce(m, &present, &mut r.errors);
        }
        if r.errors.is_empty() {
            *lock(&self.last_desired) = Some(d);
        }
        if !r.errors.is_empty()
            || !r.plan.is_empty()
            || r.stale_released > 0
            || r.adopted > 0
            || r.kept > 0
            || r.reannounced > 0
            || r.forgotten > 0
        {
            tracing::info!(?r, "reconciled");
        }
        r
    }

    /// The pass run on a kick (a mirror change, an ADD or DEL): programs only the networks
    /// whose desired state changed since the last converged pass, without reading the datapath
    /// back and without excluding CNI operations (ADD and DEL converge their own endpoint and
    /// network; the kernel is read back by the full passes, at start-up and every
    /// `--reconcile-interval`). Falls back to a full pass when something must be removed or
    /// rebuilt, a record is stale or releasing, the last pass failed, or netmaster holds an
    /// endpoint of this host no record knows.
    pub fn reconcile_changes(&self) -> Report {
        let mut r = Report::default();
        let stale = {
            let spared = lock(&self.unaccounted);
            self.records.list().into_iter().any(|a| {
                a.phase == Phase::Releasing
                    || (!(self.netns_alive)(std::path::Path::new(&a.netns))
                        && !spared.contains(&a.endpoint_id))
            })
        };
        let Some(last) = lock(&self.last_desired).clone().filter(|_| !stale) else {
            return self.reconcile();
        };
        let unrecorded = {
            let _gate = self.shared();
            let mut conv = lock(&self.converged);
            let live = self.live();
            // Read under the mirror's lock rather than cloning it (it holds every endpoint of
            // the cluster); the follower waits only for this computation, not for the kernel.
            let (d, unrecorded) = {
                let mirror = self.mirror.read();
                let d = self.desired_now(mirror.as_ref(), &live);
                (d, self.has_unrecorded(mirror.as_ref()))
            };
            let Some(todo) = changes(&last, &d) else {
                drop(conv);
                drop(_gate);
                return self.reconcile();
            };
            for (spec, ensure, remotes) in &todo {
                conv.remove(&spec.id);
                if *ensure {
                    if let Err(e) = self.dp.ensure_network(spec) {
                        r.errors.push(format!("ensure network {}: {e}", spec.id));
                        continue;
                    }
                }
                match self.dp.set_remote_endpoints(&spec.id, remotes) {
                    Ok(()) => {
                        conv.insert(spec.id.clone(), (spec.clone(), remotes.clone()));
                    }
                    Err(e) => r
                        .errors
                        .push(format!("remote endpoints of {}: {e}", spec.id)),
                }
            }
            *lock(&self.last_desired) = r.errors.is_empty().then_some(d);
            r.plan.ensure = todo.iter().filter(|t| t.1).map(|t| t.0.clone()).collect();
            r.plan.set_remotes = todo.into_iter().map(|(s, _, rem)| (s.id, rem)).collect();
            unrecorded
        };
        if unrecorded {
            // Usually an ADD between createEndpoint and its record: once it is through (the
            // gate), what netmaster still holds without a record takes a full pass (the kernel
            // read back, lost records rebuilt) before anything is released.
            let still = {
                let _gate = self.exclusive();
                self.has_unrecorded(self.mirror.read().as_ref())
            };
            if still {
                return self.reconcile();
            }
        }
        if !r.errors.is_empty() || !r.plan.is_empty() {
            tracing::info!(?r, "reconciled changes");
        }
        r
    }

    /// Releases a DEL asked for whose netmaster delete is still to be done (phase `Releasing`:
    /// their interface is gone already).
    fn finish_releases(&self, r: &mut Report) {
        for a in self.records.list() {
            if a.phase == Phase::Releasing {
                self.release_counted(&a, r);
            }
        }
    }

    /// Attachments whose workload namespace is gone (Contiv's stale endpoints), except the
    /// `spared` ones (their workload lives where no path names it); returns how many were
    /// released. Only after `account` re-pointed the records whose workload lives elsewhere.
    fn release_stale(&self, r: &mut Report, spared: &BTreeSet<String>) -> usize {
        let mut n = 0;
        for a in self.records.list() {
            let gone = !(self.netns_alive)(std::path::Path::new(&a.netns));
            if a.phase == Phase::Releasing || !gone || spared.contains(&a.endpoint_id) {
                continue;
            }
            n += 1;
            self.release_counted(&a, r);
        }
        n
    }

    fn release_counted(&self, a: &Attachment, r: &mut Report) {
        match self.release_quietly(a) {
            Ok(()) if self.records.get(&a.key()).is_none() => r.stale_released += 1,
            Ok(()) => {}
            Err(e) => r
                .errors
                .push(format!("release {}: {}", a.endpoint_id, e.msg)),
        }
    }

    /// What the datapath keeps per endpoint beside its interface (the Linux driver's source
    /// guard: which MAC and address each port may send from) re-synced from the records, so a
    /// restarted agent repairs what was lost and drops what is stale. Only when every local
    /// interface is accounted for by a readable record: an interface kept without one (alive, not
    /// adopted) still needs what it has, so then nothing is replaced.
    fn resync_endpoints(&self, acc: &Accounting, live: &[Attachment], errors: &mut Vec<String>) {
        if !acc.kept.is_empty() {
            return;
        }
        let Ok(eps) = live
            .iter()
            .map(local_endpoint)
            .collect::<Result<Vec<_>, _>>()
        else {
            return;
        };
        if let Err(e) = self.dp.resync_local_endpoints(&eps) {
            errors.push(format!("resync endpoints: {e}"));
        }
    }

    /// Makes the plan's calls; returns the orphans that could not be removed.
    fn apply(&self, p: &Plan, m: Option<&Mirror>, errors: &mut Vec<String>) -> BTreeSet<String> {
        let mut kept = BTreeSet::new();
        let mut err = |what: String, e: &dyn std::fmt::Display| errors.push(format!("{what}: {e}"));
        for o in &p.orphans {
            tracing::info!(endpoint = %o.id, host_if = %o.host_ifname, "removing an interface whose workload is gone");
            if let Err(e) = self.dp.remove_local_endpoint(&orphan_endpoint(o, m)) {
                err(format!("remove orphan {}", o.id), &e);
                kept.insert(o.id.clone());
            }
        }
        for id in &p.remove_networks {
            if let Err(e) = self.dp.remove_network(id) {
                err(format!("remove network {id}"), &e);
            }
        }
        for spec in &p.ensure {
            if let Err(e) = self.dp.ensure_network(spec) {
                err(format!("ensure network {}", spec.id), &e);
            }
        }
        for a in &p.replug {
            let res = local_endpoint(a)
                .map_err(|e| e.msg)
                .and_then(|ep| self.dp.add_local_endpoint(&ep).map_err(|e| e.to_string()));
            if let Err(e) = res {
                err(format!("replug {}", a.endpoint_id), &e);
            }
        }
        for (id, remotes) in &p.set_remotes {
            if let Err(e) = self.dp.set_remote_endpoints(id, remotes) {
                err(format!("remote endpoints of {id}"), &e);
            }
        }
        kept
    }

    /// Endpoints netmaster has for this host that no record knows and no interface on this
    /// host carries (`present`: a crash between `createEndpoint` and the plug, or a workload
    /// gone while its record was lost): released at netmaster.
    fn release_unrecorded(
        &self,
        m: &Mirror,
        present: &BTreeSet<&str>,
        errors: &mut Vec<String>,
    ) -> usize {
        let mut n = 0;
        for ep in self.unrecorded(m) {
            if present.contains(ep.id.as_str()) {
                continue;
            }
            let a = Attachment {
                tenant: ep.tenant_name.clone(),
                network: ep.network_name.clone(),
                ep_container: container_of(ep),
                ip: ep.ip_address.clone(),
                ..Default::default()
            };
            match self.nm.delete_endpoint(&delete_request(&a)) {
                Ok(()) => n += 1,
                Err(e) => errors.push(format!("release {} at netmaster: {e}", ep.id)),
            }
        }
        n
    }

    /// Ready records whose interface is gone from this host and whose endpoint netmaster does not
    /// hold: the attachment was deleted (its DEL's journal lines were lost) or reclaimed while its
    /// interface vanished. Plugging it again would hand the workload an address netmaster may have
    /// given to someone else, so the record is dropped (nothing in the kernel is touched; the
    /// runtime's next ADD attaches the workload afresh).
    fn forget_deleted(&self, m: &Mirror, observed: &ObservedState) -> usize {
        let plugged: BTreeSet<&str> = observed
            .local_endpoints
            .iter()
            .map(|o| o.id.as_str())
            .collect();
        let held: BTreeSet<&str> = m.endpoint_ids().collect();
        let mut n = 0;
        for a in self.records.list() {
            if a.phase == Phase::Ready
                && !plugged.contains(a.endpoint_id.as_str())
                && !held.contains(a.endpoint_id.as_str())
            {
                tracing::warn!(endpoint = %a.endpoint_id, ip = %a.ip, "forgetting a record with neither an interface nor an endpoint at netmaster");
                if self.records.remove(&a.key()).is_ok() {
                    n += 1;
                }
            }
        }
        n
    }

    /// Running workloads whose endpoint netmaster no longer has (it reclaimed this node after a
    /// silence longer than its `--node-grace`, while the workloads kept running): announced again
    /// with the address they use. If netmaster gave the address to someone else meanwhile, the
    /// refusal is reported and the workload keeps running as it is (nothing is destroyed).
    fn reannounce(&self, m: &Mirror, present: &BTreeSet<&str>, errors: &mut Vec<String>) -> usize {
        let known: BTreeSet<&str> = m.endpoint_ids().collect();
        let mut n = 0;
        for a in self.records.list() {
            if a.phase != Phase::Ready
                || a.endpoint_id.is_empty()
                || known.contains(a.endpoint_id.as_str())
                || !present.contains(a.endpoint_id.as_str())
            {
                continue;
            }
            let group = a.group.clone().unwrap_or_default();
            let req = contiv_api::plugin::CreateEndpointRequest {
                tenant_name: a.tenant.clone(),
                network_name: a.network.clone(),
                service_name: group.clone(),
                endpoint_id: a.ep_container.clone(),
                config_ep: contiv_api::plugin::ConfigEp {
                    container: a.ep_container.clone(),
                    host: self.settings.host.clone(),
                    ip_address: a.ip.split('/').next().unwrap_or_default().to_string(),
                    service_name: group,
                    intf_name: a.ifname.clone(),
                    vtep_ip: self.settings.vtep_ip.to_string(),
                    container_id: a.container_id.clone(),
                    ..Default::default()
                },
                ..Default::default()
            };
            match self.nm.create_endpoint(&req) {
                Ok(_) => {
                    tracing::info!(endpoint = %a.endpoint_id, ip = %a.ip, "re-announced a running workload netmaster had lost");
                    n += 1;
                }
                Err(e) => errors.push(format!(
                    "re-announcing {} ({}) at netmaster: {e}; the workload keeps running",
                    a.endpoint_id, a.ip
                )),
            }
        }
        n
    }

    /// Whether netmaster holds endpoints of this host that no record knows, other than those of
    /// interfaces the last full pass kept unadopted.
    fn has_unrecorded(&self, m: Option<&Mirror>) -> bool {
        let Some(m) = m else { return false };
        let kept = lock(&self.unaccounted);
        self.unrecorded(m).iter().any(|ep| !kept.contains(&ep.id))
    }

    /// Endpoints netmaster has for this host that no record knows.
    fn unrecorded<'a>(&'a self, m: &'a Mirror) -> Vec<&'a contiv_api::EndpointState> {
        let known: BTreeSet<String> = self
            .records
            .list()
            .into_iter()
            .map(|a| a.endpoint_id)
            .collect();
        m.host_endpoints(&self.settings.host)
            .filter(|ep| !known.contains(&ep.id))
            .collect()
    }
}
