//! The OVS datapath behind the agent's [`Datapath`] trait: the desired state the trait declares
//! (networks, local endpoints, remote endpoints per network) kept here, and after every change
//! rendered → diffed → sent as one bundle by [`OvsSwitch`]. Workloads get veth pairs
//! ([`plumb`]) whose host ends are ports of the bridge; remote hosts get one VXLAN port each
//! (`key=flow`: the pipeline sets the VNI). All I/O runs on one thread of the driver's own,
//! inside the host namespace, so the trait's synchronous calls never block the caller's runtime.

mod dns;
pub mod plumb;
mod policy;
mod services;
mod state;
mod worker;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use contiv_datapath::{
    validate_common, Datapath, DatapathError, Encap, EndpointAttachment, HostSpec, LocalEndpoint,
    NetworkSpec, ObservedEndpoint, ObservedState, RemoteEndpoint, WorkloadEnd,
};
use tokio::sync::Mutex;

use crate::pipeline::Category;
use crate::switch::{OvsSwitch, SwitchConfig};
pub use dns::DnsNetns;
pub use policy::OvsPolicy;
pub use services::OvsServices;
use state::State;
use worker::Worker;

/// What the driver needs to know about this host.
#[derive(Debug, Clone)]
pub struct OvsConfig {
    pub switch: SwitchConfig,
    pub host: HostSpec,
    /// The namespace ovs-vswitchd runs in (default: the agent's).
    pub host_netns: Option<PathBuf>,
    /// The trunk interface VLAN networks leave and arrive by (`--vlan-uplink`, Contiv's
    /// `-vlan-if`): made a port of the bridge, marked ours. Without one, VLAN networks are
    /// refused.
    pub vlan_uplink: Option<String>,
    /// Where tenant DNS namespaces are made (the agent's DNS server serves each tenant there,
    /// on its networks' gateways); `None`: no DNS on this host.
    pub dns: Option<DnsNetns>,
}

/// The `external_ids` key marking the bridge's VLAN uplink port.
const UPLINK_ID: &str = "contiv-uplink";

/// Everything the worker thread owns.
struct Inner {
    sw: OvsSwitch,
    nl: rtnetlink::Handle,
    state: State,
    /// Deletes of the previous rounds' flows are held back until the agent has declared
    /// everything once (its full reconcile's `resync_local_endpoints`): a restarted agent keeps
    /// the old round's flows carrying traffic until the new round covers them.
    prune: bool,
    /// The tenant and group numbers as last written to the bridge's `external_ids`.
    saved_numbers: std::collections::BTreeMap<String, String>,
    /// `other_config:flow-restore-wait` may be set (on start, after vswitchd restarted): cleared
    /// after the first complete apply, once every flow is in.
    restore_wait: bool,
    /// Policy members `admit` added, per tenant, kept until an applied policy includes them.
    pins: policy::Pins,
    /// A policy driver enforces on this switch: flows of an earlier run stay whole until it
    /// has declared the policy (see [`Inner::settled`]).
    policy_on: bool,
    /// A service driver balances on this switch and the previous run left service flows: they
    /// stay whole until this run's first service pass (see [`Inner::settled`]).
    hold_services: bool,
    /// Tenants whose policy was applied in this run.
    applied: std::collections::BTreeSet<String>,
    /// When the agent's full reconcile declared everything (`resync_local_endpoints`).
    resynced_at: Option<std::time::Instant>,
    /// The VLAN uplink's MTU, read at start: what VLAN networks' workloads get by default (the
    /// trunk, not the VXLAN underlay, carries their frames).
    uplink_mtu: Option<u32>,
    /// The VLAN uplink's interface name (`--vlan-uplink`), for re-reading its ofport.
    uplink: Option<String>,
    /// Where tenant DNS namespaces are made (`None`: none are).
    dns: Option<DnsNetns>,
    /// The MTU of the DNS namespaces' veths (the workloads' default).
    dns_mtu: u32,
    /// The addresses each tenant's DNS namespace was given in this run.
    dns_addrs: std::collections::BTreeMap<String, std::collections::BTreeSet<ipnet::Ipv4Net>>,
}

/// How long after the agent's resync the previous run's flows may wait for the policy to be
/// declared (a policy loop that never gets there must not keep stale flows forever).
const POLICY_HOLD_MAX: std::time::Duration = std::time::Duration::from_secs(10);

impl Inner {
    /// Every port of the bridge as OVSDB has it (ours marked).
    async fn bridge_ports(&self) -> Result<Vec<contiv_ovsdb::vswitch::PortInfo>, DatapathError> {
        self.sw
            .vswitch()
            .ports(self.sw.bridge())
            .await
            .map_err(|e| backend("ovs ports", e))
    }

    /// Whether the previous run's flows may go: the agent declared every endpoint (resync) and,
    /// with policy on, applied the policy of every tenant with a network here (or
    /// [`POLICY_HOLD_MAX`] passed). Until then a restarted agent renders without (all of) the
    /// policy, and replacing the old round's flows by those would let new connections through
    /// unjudged.
    fn settled(&self) -> bool {
        let held_too_long = self
            .resynced_at
            .is_some_and(|t| t.elapsed() >= POLICY_HOLD_MAX);
        self.prune
            && (!self.hold_services || held_too_long)
            && (!self.policy_on
                || self
                    .state
                    .networks
                    .values()
                    .all(|n| self.applied.contains(&n.tenant))
                || self
                    .resynced_at
                    .is_some_and(|t| t.elapsed() >= POLICY_HOLD_MAX))
    }
}

/// The driver's thread and the state it owns, shared by [`OvsDatapath`] and [`OvsPolicy`]: one
/// state, one switch, so forwarding and policy changes are rendered together and never race.
#[derive(Clone)]
struct Core {
    worker: Worker,
    inner: Arc<Mutex<Inner>>,
}

/// The OVS driver.
pub struct OvsDatapath {
    core: Core,
    host: HostSpec,
    vlan_uplink: Option<String>,
}

fn backend<E: std::error::Error + Send + Sync + 'static>(object: &str, e: E) -> DatapathError {
    DatapathError::Backend {
        object: object.to_string(),
        source: Box::new(e),
    }
}

impl OvsDatapath {
    /// Connects to the host's OVS (bridge made or checked ours, OpenFlow connected, a new cookie
    /// round taken). A clear error, nothing changed, when ovsdb-server or ovs-vswitchd is not
    /// running or the bridge is not ours.
    pub fn start(cfg: OvsConfig) -> Result<OvsDatapath, DatapathError> {
        let worker =
            Worker::start(cfg.host_netns.clone()).map_err(|e| backend("ovs driver thread", e))?;
        let bridge = cfg.switch.bridge.clone();
        let uplink = cfg.vlan_uplink.clone();
        let (dns, dns_mtu) = (cfg.dns.clone(), cfg.host.workload_mtu());
        let inner = worker.run(async move {
            let (conn, nl, _) = rtnetlink::new_connection()
                .map_err(|e| backend("netlink", contiv_ovsdb::Error::Io(e)))?;
            tokio::spawn(conn);
            // The uplink is checked before OVS is touched: a missing one, or one carrying the
            // host's own addresses (the underlay, a management NIC: as a port of the pipeline
            // its untagged traffic would drop), changes nothing.
            let mut uplink_mtu = None;
            if let Some(up) = &uplink {
                let object = format!("vlan uplink {up}");
                let facts = plumb::link_facts(&nl, up)
                    .await
                    .map_err(|e| backend(&object, e))?;
                let Some(facts) = facts else {
                    return Err(DatapathError::Invalid {
                        object,
                        reason: "no such interface in the host namespace".into(),
                    });
                };
                if !facts.ipv4.is_empty() {
                    return Err(DatapathError::Invalid {
                        object,
                        reason: format!(
                            "it has IPv4 addresses ({}): a trunk for VLAN networks must carry no host traffic (give it a NIC or veth of its own)",
                            facts
                                .ipv4
                                .iter()
                                .map(|a| a.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                }
                uplink_mtu = Some(facts.mtu).filter(|m| *m > 0);
            }
            let sw = OvsSwitch::start(cfg.switch)
                .await
                .map_err(|e| backend(&format!("ovs bridge {bridge}"), e))?;
            // The numbers a previous run gave tenants and groups: the same zones again.
            let mut state = State::default();
            let kept = sw.vswitch().bridge_external_ids(sw.bridge()).await;
            if let Err(e) = kept
                .map_err(|e| backend(&format!("ovs bridge {bridge}"), e))
                .and_then(|kept| {
                    state
                        .restore_numbers(&kept)
                        .map_err(|e| backend(&format!("ovs bridge {bridge}"), e))
                })
            {
                sw.abandon().await;
                return Err(e);
            }
            let saved_numbers = state.numbers();
            if let Some(up) = &uplink {
                match add_uplink(&sw, &nl, up).await {
                    Ok(port) => state.ports.uplink = Some(port),
                    Err(e) => {
                        // E.g. a port of someone else's bridge: refused, and a bridge made just
                        // now goes again.
                        sw.abandon().await;
                        return Err(e);
                    }
                }
            }
            Ok(Inner {
                sw,
                nl,
                state,
                prune: false,
                saved_numbers,
                restore_wait: true,
                pins: policy::Pins::default(),
                policy_on: false,
                hold_services: false,
                applied: Default::default(),
                resynced_at: None,
                uplink_mtu,
                uplink,
                dns,
                dns_mtu,
                dns_addrs: Default::default(),
            })
        });
        let inner = match inner {
            Some(Ok(i)) => i,
            Some(Err(e)) => return Err(e),
            None => return Err(backend("ovs driver thread", std::io::Error::other("ended"))),
        };
        let inner = Arc::new(Mutex::new(inner));
        let weak = Arc::downgrade(&inner);
        worker.run(async move {
            tokio::spawn(watch(weak));
        });
        Ok(OvsDatapath {
            core: Core { worker, inner },
            host: cfg.host,
            vlan_uplink: cfg.vlan_uplink,
        })
    }

    /// The policy driver enforcing the agent's policy on this datapath's switch (stateful, in
    /// the same pipeline and under the same lock: see [`OvsPolicy`]).
    pub fn policy_driver(&self) -> Arc<OvsPolicy> {
        let inner = self.core.inner.clone();
        // The thread gone: every later call fails and says so.
        let _ = self
            .core
            .worker
            .run(async move { inner.lock().await.policy_on = true });
        Arc::new(OvsPolicy::new(self.core.clone()))
    }

    /// The service driver balancing the agent's serviceLB VIPs on this datapath's switch
    /// (SRV_PROXY and select groups, in the same pipeline and under the same lock: see
    /// [`OvsServices`]). If the previous run left service flows, they are kept until this
    /// run's first service pass (a restarted agent's reconcile comes before it: new VIP
    /// connections would meet no balancing in between).
    pub fn service_driver(&self) -> Arc<OvsServices> {
        let inner = self.core.inner.clone();
        let _ = self.core.worker.run(async move {
            let mut i = inner.lock().await;
            i.hold_services = i.sw.holds_old(Category::Service);
        });
        Arc::new(OvsServices::new(self.core.clone()))
    }

    /// The cookie round this run installs under.
    pub fn round(&self) -> u16 {
        let inner = self.core.inner.clone();
        self.core
            .worker
            .run(async move { inner.lock().await.sw.round() })
            .unwrap_or(0)
    }

    fn change<F, T>(&self, what: String, f: F) -> Result<T, DatapathError>
    where
        F: for<'a> FnOnce(
                &'a mut Inner,
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<T, DatapathError>> + Send + 'a>,
            > + Send
            + 'static,
        T: Send + 'static,
    {
        self.core.change(what, f)
    }
}

fn thread_gone() -> DatapathError {
    backend("ovs driver thread", std::io::Error::other("ended"))
}

/// Renders the whole desired state and makes the switch hold it (one bundle). Returns how many
/// flow-mods were sent.
async fn converge(i: &mut Inner, what: &str) -> Result<usize, DatapathError> {
    // Numbers first: a run killed after this finds them, one killed before installed nothing
    // that uses them.
    save_numbers(i).await.map_err(|e| backend(what, e))?;
    let rendered = i.state.render(i.sw.round());
    for p in &rendered.pending {
        tracing::debug!(pending = %p, "ovs flows not rendered yet");
    }
    let settled = i.settled();
    let n =
        i.sw.apply_holding(
            &rendered,
            settled,
            (i.policy_on || i.hold_services) && !settled,
        )
        .await
        .map_err(|e| backend(what, e))?;
    // Kept for counters: flow stats carry the cookie, this maps it back to the rule.
    i.state.rules = rendered.rules;
    // Providers that left: connections that took one and were never answered go, so their
    // next retransmission is balanced anew (answered ones stay: "established untouched").
    let gone: Vec<crate::render::Binding> = i
        .state
        .bindings
        .difference(&rendered.bindings)
        .cloned()
        .collect();
    i.state.bindings = rendered.bindings;
    if !gone.is_empty() {
        if let Err(e) = forget_unanswered(&i.sw, &gone).await {
            // Best effort: the entries then expire on their own (the connection times out).
            tracing::warn!("ovs services: unanswered connections to removed providers kept: {e}");
        }
    }
    // Everything is in: a vswitchd held by flow-restore-wait may forward again.
    // The flows are committed whatever happens here: a failure to clear is logged and tried
    // again by the next converge, never reported as a failed change (the caller would roll its
    // state back while the switch holds the new flows).
    if settled && i.restore_wait {
        match i.sw.clear_flow_restore_wait().await {
            Ok(cleared) => {
                if cleared {
                    tracing::info!("every flow is in: ovs-vswitchd's flow-restore-wait cleared");
                }
                i.restore_wait = false;
            }
            Err(e) => {
                tracing::warn!(error = %e, "flow-restore-wait not cleared yet; trying again at the next change")
            }
        }
    }
    Ok(n)
}

/// Drops from ovs-vswitchd's conntrack the connections that took one of `gone` and were never
/// answered (UDP: all of them; a datagram flow's next packet is balanced anew).
async fn forget_unanswered(
    sw: &OvsSwitch,
    gone: &[crate::render::Binding],
) -> std::io::Result<usize> {
    use crate::unixctl::{call, ctl_socket, CtEntry};
    let rundir = sw
        .rundir()
        .ok_or_else(|| std::io::Error::other("ovsdb over TCP: no control socket to reach"))?;
    let sock = ctl_socket(&rundir)?;
    let zones: std::collections::BTreeSet<u16> = gone.iter().map(|b| b.zone).collect();
    let mut n = 0;
    for zone in zones {
        let zone_arg = format!("zone={zone}");
        let dump = call(
            &sock,
            "dpctl/dump-conntrack",
            std::slice::from_ref(&zone_arg),
        )
        .await?;
        for e in dump.lines().filter_map(CtEntry::parse) {
            let took = gone.iter().any(|b| {
                b.zone == zone
                    && b.proto == e.proto
                    && (b.vip, b.port) == (e.orig.1, e.orig.3)
                    && (b.provider, b.target) == (e.reply.0, e.reply.2)
            });
            let unanswered =
                e.proto == 17 || e.state.as_deref().is_some_and(|s| s.starts_with("SYN"));
            if took && unanswered {
                call(
                    &sock,
                    "dpctl/flush-conntrack",
                    &[zone_arg.clone(), e.origin_tuple()],
                )
                .await?;
                n += 1;
            }
        }
    }
    tracing::debug!(
        n,
        "ovs services: unanswered connections to removed providers dropped"
    );
    Ok(n)
}

/// One job on the driver's state: a future borrowing it (see [`Core::with`]).
type Job<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, DatapathError>> + Send + 'a>>;

impl Core {
    /// Runs `f` with the driver's state on its thread, then converges the switch on the result.
    fn change<F, T>(&self, what: String, f: F) -> Result<T, DatapathError>
    where
        F: for<'a> FnOnce(&'a mut Inner) -> Job<'a, T> + Send + 'static,
        T: Send + 'static,
    {
        self.with(move |i| {
            Box::pin(async move {
                let out = f(i).await?;
                converge(i, &what).await?;
                Ok(out)
            })
        })
    }

    /// Runs `f` with the driver's state on its thread (it converges the switch itself if it
    /// changes anything).
    fn with<F, T>(&self, f: F) -> Result<T, DatapathError>
    where
        F: for<'a> FnOnce(&'a mut Inner) -> Job<'a, T> + Send + 'static,
        T: Send + 'static,
    {
        let inner = self.inner.clone();
        let out = self.worker.run(async move {
            let mut guard = inner.lock().await;
            f(&mut guard).await
        });
        out.unwrap_or_else(|| Err(thread_gone()))
    }
}

impl Datapath for OvsDatapath {
    fn validate(&self, net: &NetworkSpec) -> Result<(), DatapathError> {
        validate_common(net)?;
        validate_vlan(net, self.vlan_uplink.as_deref())
    }

    fn ensure_network(&self, net: &NetworkSpec) -> Result<(), DatapathError> {
        // Checked before anything changes; a VLAN id taken by another network is refused by
        // `State::add_network`, also before anything is rendered.
        self.validate(net)?;
        let net = net.clone();
        self.change(format!("network {}", net.id), move |i| {
            Box::pin(async move {
                i.state.add_network(net.clone())?;
                // The network works without its DNS; a failure here is retried by the
                // agent's next ensure (the tenant has no DNS port yet).
                if let Err(e) = dns::sync(i, &net.tenant).await {
                    tracing::warn!(network = %net.id, "ovs: tenant dns not ready: {e}");
                }
                Ok(())
            })
        })
    }

    fn remove_network(&self, network_id: &str) -> Result<(), DatapathError> {
        let id = network_id.to_string();
        self.change(format!("network {id}"), move |i| {
            Box::pin(async move {
                let eps: Vec<String> = i
                    .state
                    .locals
                    .values()
                    .filter(|e| e.network_id == id)
                    .map(|e| e.id.clone())
                    .collect();
                let mut errors = vec![];
                for ep in eps {
                    if let Err(e) = remove_endpoint(i, &ep).await {
                        errors.push(e);
                    }
                }
                i.state.remotes.remove(&id);
                if let Some(net) = i.state.networks.remove(&id) {
                    // The gateway's address goes; with the tenant's last network, all of it.
                    if let Err(e) = dns::sync(i, &net.tenant).await {
                        errors.push(e);
                    }
                }
                if let Err(e) = sync_tunnels(i).await {
                    errors.push(e);
                }
                DatapathError::from_list(errors)
            })
        })
    }

    fn add_local_endpoint(&self, ep: &LocalEndpoint) -> Result<EndpointAttachment, DatapathError> {
        let ep = ep.clone();
        let host = self.host.clone();
        self.change(format!("endpoint {}", ep.id), move |i| {
            Box::pin(async move {
                let net = i
                    .state
                    .networks
                    .get(&ep.network_id)
                    .ok_or_else(|| DatapathError::NetworkNotFound(ep.network_id.clone()))?;
                // A VLAN network has no encapsulation to leave room for (the 4-byte tag is
                // not counted against the MTU, as on any 802.1Q link): the trunk's MTU.
                let mtu = match (net.mtu, net.encap) {
                    (0, Encap::Vxlan) => host.workload_mtu(),
                    (0, Encap::Vlan) => i.uplink_mtu.unwrap_or(host.underlay_mtu),
                    (m, _) => m,
                };
                let tag = (net.encap == Encap::Vlan).then_some(net.vni as u16);
                let object = format!("endpoint {}", ep.id);
                let name = plumb::plug(&i.nl, &ep, mtu)
                    .await
                    .map_err(|e| backend(&object, e))?;
                let mut spec = contiv_ovsdb::vswitch::PortSpec::new(
                    i.sw.bridge(),
                    &name,
                    contiv_ovsdb::vswitch::PortKind::System,
                );
                spec.external_ids = [
                    ("contiv-endpoint".to_string(), ep.id.clone()),
                    ("contiv-network".to_string(), ep.network_id.clone()),
                ]
                .into_iter()
                .collect();
                spec.tag = tag;
                let ofport = match i.sw.ensure_port(&spec).await {
                    Ok(p) => p,
                    Err(e) => {
                        // Rolled back: this call's veth goes again.
                        let _ = plumb::unplug(&i.nl, &ep.id).await;
                        return Err(backend(&object, e));
                    }
                };
                i.state.ports.endpoints.insert(ep.id.clone(), ofport);
                let attachment = EndpointAttachment {
                    host_ifname: name,
                    host_location: i.sw.bridge().to_string(),
                    mac: ep.mac,
                    mtu,
                };
                i.state.locals.insert(ep.id.clone(), ep);
                Ok(attachment)
            })
        })
    }

    fn remove_local_endpoint(&self, ep: &LocalEndpoint) -> Result<(), DatapathError> {
        let id = ep.id.clone();
        self.change(format!("endpoint {id}"), move |i| {
            Box::pin(async move { remove_endpoint(i, &id).await })
        })
    }

    fn set_remote_endpoints(
        &self,
        network_id: &str,
        remotes: &[RemoteEndpoint],
    ) -> Result<(), DatapathError> {
        let id = network_id.to_string();
        let me = self.host.vtep_ip;
        let remotes: Vec<RemoteEndpoint> =
            remotes.iter().filter(|r| r.vtep != me).cloned().collect();
        self.change(format!("remote endpoints of {id}"), move |i| {
            Box::pin(async move {
                if !i.state.networks.contains_key(&id) {
                    return Err(DatapathError::NetworkNotFound(id));
                }
                i.state.remotes.insert(id, remotes);
                sync_tunnels(i).await
            })
        })
    }

    fn observe(&self) -> Result<ObservedState, DatapathError> {
        self.core.with(|i| {
            Box::pin(async move {
                let ports = i.bridge_ports().await?;
                Ok(i.state.observed(&ports))
            })
        })
    }

    fn workload_ends(&self, eps: &[ObservedEndpoint]) -> Result<Vec<WorkloadEnd>, DatapathError> {
        // A host end that is gone means the workload is (a veth goes with its namespace): its
        // port is a leftover. Ends the driver plumbed in this run are known; for an end alive
        // but not plumbed in this run the driver cannot tell which namespace holds it, so it
        // claims it alive and unnamed (the agent removes nothing).
        let inner = self.core.inner.clone();
        let eps = eps.to_vec();
        let out = self.core.worker.run(async move {
            let i = inner.lock().await;
            let mut out = vec![];
            for ep in eps {
                let exists = plumb::host_end_exists(&i.nl, &ep.id)
                    .await
                    .map_err(|e| backend(&format!("endpoint {}", ep.id), e))?;
                out.push(match (exists, i.state.locals.get(&ep.id)) {
                    (false, _) => WorkloadEnd::Gone,
                    (true, Some(l)) => WorkloadEnd::Found(contiv_datapath::WorkloadInterface {
                        netns_path: l.netns_path.clone(),
                        ifname: l.ifname.clone(),
                        mac: l.mac,
                        mtu: 0,
                    }),
                    (true, None) => WorkloadEnd::Unnamed,
                });
            }
            Ok(out)
        });
        out.unwrap_or_else(|| Err(backend("ovs driver thread", std::io::Error::other("ended"))))
    }

    fn resync_local_endpoints(&self, eps: &[LocalEndpoint]) -> Result<(), DatapathError> {
        // The agent's full reconcile has declared everything: endpoints a previous run plugged
        // are taken back, then from now on what is not desired goes (the previous round's
        // leftovers first, after the bundle holding the new round's flows of every endpoint).
        let eps = eps.to_vec();
        let first = self.change("resync".into(), move |i| {
            Box::pin(async move {
                adopt(i, &eps).await?;
                if let Err(e) = dns::prune(i).await {
                    tracing::warn!("ovs: {e}");
                }
                let first = i.resynced_at.is_none();
                i.resynced_at.get_or_insert_with(std::time::Instant::now);
                i.prune = true;
                Ok(first && !i.settled())
            })
        })?;
        if first {
            // The previous run's flows wait for the policy; if it never comes, they go anyway
            // once the hold is over.
            let inner = self.core.inner.clone();
            let _ = self.core.worker.run(async move {
                tokio::spawn(async move {
                    tokio::time::sleep(POLICY_HOLD_MAX).await;
                    let mut i = inner.lock().await;
                    if let Err(e) = converge(&mut i, "flows of the previous run").await {
                        tracing::warn!("ovs: {e}");
                    }
                });
            });
        }
        Ok(())
    }
}

/// VLAN networks need a tag in 1-4094 and an uplink to carry it.
fn validate_vlan(net: &NetworkSpec, uplink: Option<&str>) -> Result<(), DatapathError> {
    if net.encap != Encap::Vlan {
        return Ok(());
    }
    let invalid = |reason: String| DatapathError::Invalid {
        object: format!("network {}", net.id),
        reason,
    };
    if !(1..=4094).contains(&net.vni) {
        return Err(invalid(format!("VLAN id {} outside 1-4094", net.vni)));
    }
    if uplink.is_none() {
        return Err(invalid(
            "a VLAN network needs a trunk uplink: start netplugin with --vlan-uplink IF".into(),
        ));
    }
    Ok(())
}

/// How often the OpenFlow connection is checked.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Watches the OpenFlow connection for the driver's lifetime: when ovs-vswitchd goes away (a
/// restart, an upgrade), connects again as soon as it is back and sends every flow again, then
/// clears flow-restore-wait, without the agent doing anything.
async fn watch(inner: std::sync::Weak<Mutex<Inner>>) {
    let mut down = false;
    // Failed attempts since the connection dropped: the first is a warning, the rest (every
    // WATCH_EVERY while vswitchd is away) debug.
    let mut failed = 0u32;
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let Some(inner) = inner.upgrade() else { return };
        let mut guard = inner.lock().await;
        let i = &mut *guard;
        if !i.sw.is_disconnected() && !down {
            continue;
        }
        if !down {
            tracing::warn!(bridge = %i.sw.bridge(), "openflow connection to ovs-vswitchd lost, reconnecting");
            down = true;
        }
        let r = async {
            i.sw.reconnect()
                .await
                .map_err(|e| backend("ovs reconnect", e))?;
            refresh_ofports(i).await;
            i.restore_wait = true;
            converge(i, "ovs reconnect").await
        }
        .await;
        match r {
            Ok(_) => {
                tracing::info!(bridge = %i.sw.bridge(), "ovs-vswitchd reprogrammed after reconnecting");
                down = false;
                failed = 0;
            }
            Err(e) if failed == 0 => {
                failed += 1;
                tracing::warn!(error = %e, "ovs-vswitchd not reprogrammed yet, retrying");
            }
            Err(e) => {
                failed = failed.saturating_add(1);
                tracing::debug!(error = %e, failed, "ovs-vswitchd still not reprogrammed");
            }
        }
    }
}

/// Reads every port's ofport again: a restarted vswitchd normally gives each the number the
/// database remembers, but flows must follow if it did not.
async fn refresh_ofports(i: &mut Inner) {
    let ids: Vec<String> = i.state.ports.endpoints.keys().cloned().collect();
    for id in ids {
        let name = plumb::host_ifname(&id);
        // Best effort: a port vswitchd cannot open keeps its number (its flows go nowhere).
        if let Ok(Some(p)) = i.sw.vswitch().ofport(&name).await {
            i.state.ports.endpoints.insert(id, p);
        }
    }
    let tenants: Vec<String> = i.state.ports.dns.keys().cloned().collect();
    for t in tenants {
        if let Ok(Some(p)) = i.sw.vswitch().ofport(&dns::host_ifname(&t)).await {
            i.state.ports.dns.insert(t, p);
        }
    }
    let vteps: Vec<Ipv4Addr> = i.state.ports.tunnels.keys().copied().collect();
    for vtep in vteps {
        if let Ok(Some(p)) = i.sw.vswitch().ofport(&state::tunnel_name(vtep)).await {
            i.state.ports.tunnels.insert(vtep, p);
        }
    }
    // The trunk too: VLAN flows name its number in three tables.
    if let Some(up) = i.uplink.clone() {
        if let Ok(Some(p)) = i.sw.vswitch().ofport(&up).await {
            i.state.ports.uplink = Some(p);
        }
    }
}

/// Writes the tenant and group numbers to the bridge when they changed, before any flow that
/// uses them goes in: a run killed after this point finds them; one killed before installed
/// nothing that uses them.
async fn save_numbers(i: &mut Inner) -> Result<(), crate::switch::SwitchError> {
    let now = i.state.numbers();
    if now != i.saved_numbers {
        i.sw.vswitch()
            .set_bridge_external_ids(i.sw.bridge(), &now)
            .await?;
        i.saved_numbers = now;
    }
    Ok(())
}

/// Endpoints of `eps` this run has not plugged but whose port a previous run left on the
/// bridge (marked with the endpoint's id) are declared again, with that port's ofport: a
/// restarted agent does not re-plug a live workload, and without this the new round would hold
/// no flows for it (its traffic stopped once the old round was deleted).
async fn adopt(i: &mut Inner, eps: &[LocalEndpoint]) -> Result<(), DatapathError> {
    let missing: Vec<&LocalEndpoint> = eps
        .iter()
        .filter(|e| !i.state.locals.contains_key(&e.id))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let ports = i.bridge_ports().await?;
    for ep in missing {
        let ofport = ports
            .iter()
            .filter(|p| p.ours)
            .find(|p| p.external_ids.get("contiv-endpoint") == Some(&ep.id))
            .and_then(|p| p.ofport);
        if let Some(ofport) = ofport {
            tracing::debug!(endpoint = %ep.id, ofport, "ovs: endpoint of an earlier run taken back");
            i.state.ports.endpoints.insert(ep.id.clone(), ofport);
            i.state.locals.insert(ep.id.clone(), ep.clone());
        }
    }
    Ok(())
}

/// Makes `name` the bridge's trunk port (marked ours, up); returns its ofport.
async fn add_uplink(
    sw: &OvsSwitch,
    nl: &rtnetlink::Handle,
    name: &str,
) -> Result<u32, DatapathError> {
    let object = format!("vlan uplink {name}");
    let mut spec = contiv_ovsdb::vswitch::PortSpec::new(
        sw.bridge(),
        name,
        contiv_ovsdb::vswitch::PortKind::System,
    );
    spec.external_ids = [(UPLINK_ID.to_string(), "true".to_string())]
        .into_iter()
        .collect();
    // Up first: a failure then leaves no port behind on a bridge that was already there.
    plumb::set_up(nl, name)
        .await
        .map_err(|e| backend(&object, e))?;
    sw.ensure_port(&spec).await.map_err(|e| backend(&object, e))
}

async fn remove_endpoint(i: &mut Inner, id: &str) -> Result<(), DatapathError> {
    let object = format!("endpoint {id}");
    i.state.locals.remove(id);
    i.state.ports.endpoints.remove(id);
    let name = plumb::host_ifname(id);
    i.sw.remove_port(&name)
        .await
        .map_err(|e| backend(&object, e))?;
    plumb::unplug(&i.nl, id)
        .await
        .map_err(|e| backend(&object, e))
}

/// One VXLAN port per remote VTEP some network needs; ports no network needs go.
async fn sync_tunnels(i: &mut Inner) -> Result<(), DatapathError> {
    let want = i.state.vteps();
    let have: Vec<Ipv4Addr> = i.state.ports.tunnels.keys().copied().collect();
    for vtep in have.iter().filter(|v| !want.contains(v)) {
        let name = state::tunnel_name(*vtep);
        i.sw.remove_port(&name)
            .await
            .map_err(|e| backend(&format!("tunnel {name}"), e))?;
        i.state.ports.tunnels.remove(vtep);
    }
    for vtep in want.iter().filter(|v| !have.contains(v)) {
        let name = state::tunnel_name(*vtep);
        let spec = contiv_ovsdb::vswitch::PortSpec::new(
            i.sw.bridge(),
            &name,
            contiv_ovsdb::vswitch::PortKind::Vxlan {
                remote_ip: (*vtep).into(),
                local_ip: None,
                key: contiv_ovsdb::vswitch::TunnelKey::Flow,
            },
        );
        let port =
            i.sw.ensure_port(&spec)
                .await
                .map_err(|e| backend(&format!("tunnel {name}"), e))?;
        i.state.ports.tunnels.insert(*vtep, port);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use contiv_datapath::FwdMode;

    pub(crate) fn vlan_net(id: &str, tag: u32) -> NetworkSpec {
        NetworkSpec {
            id: id.into(),
            tenant: "t".into(),
            vni: tag,
            subnet: "10.1.0.0/24".parse().unwrap(),
            gateway: "10.1.0.1".parse().unwrap(),
            fwd_mode: FwdMode::Bridge,
            encap: Encap::Vlan,
            mtu: 0,
        }
    }

    #[test]
    fn vlan_ids_outside_the_range_or_without_an_uplink_are_refused_naming_the_network() {
        for tag in [0, 4095, 5000] {
            let e = validate_vlan(&vlan_net("t:red", tag), Some("trunk0")).unwrap_err();
            assert_eq!(
                e.to_string(),
                DatapathError::Invalid {
                    object: "network t:red".into(),
                    reason: format!("VLAN id {tag} outside 1-4094"),
                }
                .to_string()
            );
        }
        for tag in [1, 100, 4094] {
            validate_vlan(&vlan_net("t:red", tag), Some("trunk0")).unwrap();
        }
        let e = validate_vlan(&vlan_net("t:red", 100), None).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("network t:red") && text.contains("--vlan-uplink"),
            "{text}"
        );
        // VXLAN networks need no uplink, and their VNI is not a VLAN id.
        let vx = NetworkSpec {
            encap: Encap::Vxlan,
            ..vlan_net("t:vx", 5000)
        };
        validate_vlan(&vx, None).unwrap();
    }
}
