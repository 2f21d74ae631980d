//! Tenant DNS namespaces: for each tenant with a network on this host, a namespace holding the
//! gateway address of each of those networks on one end of a veth (with the router MAC, so
//! workloads' frames to the gateway reach it unchanged), whose other end is a bridge port
//! marked `external_ids:contiv-dns=<tenant>`. The agent's DNS server binds its sockets there
//! (the namespace's path is [`DnsNetns::path`]); the pipeline sends DNS to the gateways to that
//! port (`render/dns.rs`). Made with the tenant's first network, changed with each, removed
//! with its last; a restarted agent keeps what it finds, and its resync removes those of
//! tenants no longer here ([`prune`]).

use std::collections::BTreeSet;
use std::path::PathBuf;

use contiv_datapath::DatapathError;
use contiv_datapath_linux::netns;
use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::{Handle, LinkUnspec};

use super::plumb::{delete_link, fail, in_netns, index_of, make_veth, tx_checksum_off, PlumbError};
use super::{backend, Inner};
use crate::pipeline::ROUTER_MAC;

/// Where tenant DNS namespaces are made: `<dir>/<prefix>-d-<8 hex of the tenant>`.
#[derive(Debug, Clone)]
pub struct DnsNetns {
    pub dir: PathBuf,
    pub prefix: String,
}

impl DnsNetns {
    /// The path of `tenant`'s DNS namespace (the same in every run, so a restarted agent and
    /// the DNS server find it).
    pub fn path(&self, tenant: &str) -> PathBuf {
        self.dir.join(self.name(tenant))
    }

    fn name(&self, tenant: &str) -> String {
        format!("{}-d-{:08x}", self.prefix, fnv(tenant) as u32)
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The `external_ids` key marking a tenant's DNS port (value: the tenant).
pub(super) const DNS_ID: &str = "contiv-dns";
/// The interface inside the DNS namespace.
const NS_IF: &str = "dns0";

/// The bridge port's (host end's) name: `vd` and 12 hex digits of a hash of the tenant.
pub(super) fn host_ifname(tenant: &str) -> String {
    format!("vd{:012x}", fnv(tenant) & 0xffff_ffff_ffff)
}

/// The addresses `tenant`'s DNS namespace holds: each of its networks' gateways, with the
/// network's prefix (the namespace reaches the asking workloads on-link).
fn wanted(i: &Inner, tenant: &str) -> BTreeSet<Ipv4Net> {
    i.state
        .networks
        .values()
        .filter(|n| n.tenant == tenant)
        .filter_map(|n| Ipv4Net::new(n.gateway, n.subnet.prefix_len()).ok())
        .collect()
}

/// Makes `tenant`'s DNS namespace and port match its networks here (none: removed). Does
/// nothing when the driver has no DNS namespaces configured or nothing changed.
pub(super) async fn sync(i: &mut Inner, tenant: &str) -> Result<(), DatapathError> {
    let Some(cfg) = i.dns.clone() else {
        return Ok(());
    };
    let want = wanted(i, tenant);
    if want.is_empty() {
        i.dns_addrs.remove(tenant);
        i.state.ports.dns.remove(tenant);
        return remove(i, &cfg, tenant).await;
    }
    if i.state.ports.dns.contains_key(tenant) && i.dns_addrs.get(tenant) == Some(&want) {
        return Ok(());
    }
    let object = format!("dns namespace of tenant {tenant}");
    let ofport = ensure(i, &cfg, tenant, &want)
        .await
        .map_err(|source| DatapathError::Backend { object, source })?;
    i.state.ports.dns.insert(tenant.to_string(), ofport);
    i.dns_addrs.insert(tenant.to_string(), want);
    Ok(())
}

/// Namespace, veth, addresses and port; returns the port's ofport.
async fn ensure(
    i: &Inner,
    cfg: &DnsNetns,
    tenant: &str,
    want: &BTreeSet<Ipv4Net>,
) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    let path = netns::create_named(&cfg.dir, &cfg.name(tenant))?;
    let host = host_ifname(tenant);
    // Twice at most: a host end whose peer is not in this namespace (the namespace was made
    // again) is replaced.
    let mut placed = false;
    for _ in 0..2 {
        if index_of(&i.nl, &host).await.is_none() {
            make_veth(&i.nl, &host, &path, NS_IF, &ROUTER_MAC, i.dns_mtu).await?;
        }
        if configure(path.clone(), want.clone()).await? {
            placed = true;
            break;
        }
        delete_link(&i.nl, &host).await?;
    }
    if !placed {
        return Err(format!("{NS_IF} not found in {} after making it", path.display()).into());
    }
    let up = LinkUnspec::new_with_name(&host).up().build();
    i.nl.link()
        .set(up)
        .execute()
        .await
        .map_err(fail(format!("set {host} up")))?;
    let mut spec = contiv_ovsdb::vswitch::PortSpec::new(
        i.sw.bridge(),
        &host,
        contiv_ovsdb::vswitch::PortKind::System,
    );
    spec.external_ids = [(DNS_ID.to_string(), tenant.to_string())]
        .into_iter()
        .collect();
    Ok(i.sw.ensure_port(&spec).await?)
}

/// Inside the namespace: `lo` and [`NS_IF`] up, transmit checksum offload off (the userspace
/// datapath never completes it), exactly the addresses `want`. `Ok(false)`: no [`NS_IF`] there.
async fn configure(ns: PathBuf, want: BTreeSet<Ipv4Net>) -> Result<bool, PlumbError> {
    in_netns(ns, "dns", move |h| async move {
        configure_here(&h, &want).await
    })
    .await
}

async fn configure_here(h: &Handle, want: &BTreeSet<Ipv4Net>) -> Result<bool, PlumbError> {
    let Some(index) = index_of(h, NS_IF).await else {
        return Ok(false);
    };
    tx_checksum_off(NS_IF).map_err(fail(format!("tx checksum offload off on {NS_IF}")))?;
    for name in ["lo", NS_IF] {
        let up = LinkUnspec::new_with_name(name).up().build();
        h.link()
            .set(up)
            .execute()
            .await
            .map_err(fail(format!("set {name} up")))?;
    }
    let have: Vec<_> = h
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect()
        .await
        .map_err(fail(format!("addresses of {NS_IF}")))?;
    let mut present = BTreeSet::new();
    for msg in have {
        let addr = msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(std::net::IpAddr::V4(a)) => Some(*a),
            _ => None,
        });
        let Some(a) = addr else { continue }; // IPv6 link-local: left alone
        match Ipv4Net::new(a, msg.header.prefix_len) {
            Ok(net) if want.contains(&net) => {
                present.insert(net);
            }
            _ => h
                .address()
                .del(msg)
                .execute()
                .await
                .map_err(fail(format!("delete {a} from {NS_IF}")))?,
        }
    }
    for net in want.difference(&present) {
        h.address()
            .add(index, net.addr().into(), net.prefix_len())
            .replace()
            .execute()
            .await
            .map_err(fail(format!("address {net} on {NS_IF}")))?;
    }
    Ok(true)
}

/// Port, veth and namespace of `tenant` go (each absent is fine); every failure is reported.
async fn remove(i: &mut Inner, cfg: &DnsNetns, tenant: &str) -> Result<(), DatapathError> {
    let object = format!("dns namespace of tenant {tenant}");
    let host = host_ifname(tenant);
    let mut errors = vec![];
    if let Err(e) = i.sw.remove_port(&host).await {
        errors.push(backend(&object, e));
    }
    // The namespace may live on while the DNS server's sockets hold it: the veth goes now.
    if let Err(e) = delete_link(&i.nl, &host).await {
        errors.push(backend(&object, e));
    }
    // Only what is there: a namespace never made (its directory unusable) is nothing to remove.
    let path = cfg.path(tenant);
    if std::fs::symlink_metadata(&path).is_ok() {
        if let Err(e) = netns::delete_named(&path) {
            errors.push(backend(&object, e));
        }
    }
    DatapathError::from_list(errors)
}

/// After the agent's full reconcile: DNS ports and namespaces an earlier run left for tenants
/// with no network here any more go.
pub(super) async fn prune(i: &mut Inner) -> Result<(), DatapathError> {
    let Some(cfg) = i.dns.clone() else {
        return Ok(());
    };
    let ports = i.bridge_ports().await?;
    let gone: Vec<String> = ports
        .iter()
        .filter(|p| p.ours)
        .filter_map(|p| p.external_ids.get(DNS_ID))
        .filter(|t| !i.state.networks.values().any(|n| &n.tenant == *t))
        .cloned()
        .collect();
    let mut errors = vec![];
    for t in gone {
        tracing::debug!(tenant = %t, "ovs: dns namespace of an earlier run removed");
        i.state.ports.dns.remove(&t);
        i.dns_addrs.remove(&t);
        if let Err(e) = remove(i, &cfg, &t).await {
            errors.push(e);
        }
    }
    // A namespace whose port never made it to the bridge (a run killed between the two): its
    // veth goes with it.
    let keep: BTreeSet<String> = i
        .state
        .networks
        .values()
        .map(|n| cfg.name(&n.tenant))
        .collect();
    let names = netns::list_named(&cfg.dir, &format!("{}-d-", cfg.prefix))
        .map_err(|e| backend("dns namespaces", e))?;
    for name in names.into_iter().filter(|n| !keep.contains(n)) {
        tracing::debug!(netns = %name, "ovs: dns namespace without a tenant removed");
        if let Err(e) = netns::delete_named(&cfg.dir.join(&name)) {
            errors.push(backend("dns namespaces", e));
        }
    }
    DatapathError::from_list(errors)
}
