//! Networks: immutable after creation; subnets may not overlap within a tenant; a network may not
//! share its key with an endpoint group; creation allocates the packet tags (VLAN, or VNI plus a
//! host-local VLAN), deletion is refused while groups, services or endpoints use the network.

use std::net::{Ipv4Addr, Ipv6Addr};

use contiv_model::{Network, NetworkLinkSets, NetworkLinks, NetworkOper, ObjectKind};
use contiv_resources::{subnets_overlap, Ipv4Pool, Ipv6Pool, ResourceError};

use super::{count_i64, link, link_set, require_tenant, scoped, Managed};
use crate::changeset::ChangeSet;
use crate::error::{ApiError, ApiResult};
use crate::state::{NetOper, State};
use contiv_api::keys;

/// Shown when a client tries to change a network (Contiv's text).
pub const NETWORK_SUBNET_CHANGE: &str = "Cant change network parameters after its created";

pub(crate) fn resource_err(e: ResourceError) -> ApiError {
    match e {
        ResourceError::IdNotAvailable { .. }
        | ResourceError::IdOutOfRange { .. }
        | ResourceError::IdsExhausted { .. }
        | ResourceError::AddressExhausted { .. }
        | ResourceError::PoolExhausted { .. } => ApiError::exhausted(e.to_string()),
        _ => ApiError::bad_request(e.to_string()),
    }
}
pub(crate) use resource_err as resource_error;

/// Checks the subnets parse, gateways fit, and nothing overlaps another network of the tenant.
fn check_addressing(st: &State, n: &Network) -> ApiResult<()> {
    let gw4 = parse_opt::<Ipv4Addr>(&n.gateway, "gateway")?;
    Ipv4Pool::new(&n.subnet, gw4).map_err(resource_err)?;
    if !n.ipv6_subnet.is_empty() {
        let gw6 = parse_opt::<Ipv6Addr>(&n.ipv6_gateway, "ipv6Gateway")?;
        Ipv6Pool::new(&n.ipv6_subnet, gw6).map_err(resource_err)?;
    } else if !n.ipv6_gateway.is_empty() {
        return Err(ApiError::bad_request(
            "ipv6Gateway given without ipv6Subnet",
        ));
    }
    for other in super::tenant::tenant_children(&st.networks, &n.tenant_name) {
        let Some(o) = st.networks.get(other) else {
            continue;
        };
        if !n.ipv6_subnet.is_empty()
            && !o.ipv6_subnet.is_empty()
            && v6_overlap(&n.ipv6_subnet, &o.ipv6_subnet)
        {
            return Err(ApiError::conflict(format!(
                "network {} conflicts with subnetv6  {}",
                o.network_name, n.ipv6_subnet
            )));
        }
        if subnets_overlap(&n.subnet, &o.subnet).map_err(resource_err)? {
            return Err(ApiError::conflict(format!(
                "network {} conflicts with subnet {}",
                o.network_name, n.subnet
            )));
        }
    }
    Ok(())
}

fn v6_overlap(a: &str, b: &str) -> bool {
    match (a.parse::<ipnet::Ipv6Net>(), b.parse::<ipnet::Ipv6Net>()) {
        (Ok(a), Ok(b)) => a.contains(&b.network()) || b.contains(&a.network()),
        _ => false,
    }
}

fn parse_opt<T: std::str::FromStr>(s: &str, field: &str) -> ApiResult<Option<T>> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| ApiError::bad_request(format!("{field} string invalid format")))
}

/// Picks the tags for a new network and claims them in the change set.
fn allocate_tags(st: &State, n: &Network, cs: &mut ChangeSet) -> ApiResult<NetOper> {
    let requested = u32::try_from(n.pkt_tag).ok().filter(|t| *t != 0);
    if n.pkt_tag < 0 {
        return Err(ApiError::bad_request("pktTag Value Out of bound"));
    }
    let key = &n.key;
    match n.encap.as_str() {
        "vlan" => {
            let mut pool = st.vlan_pool();
            let tag = match requested {
                Some(t) => pool.reserve(t).map(|_| t),
                None => pool.allocate_lowest(),
            }
            .map_err(resource_err)?;
            cs.claim(keys::vlan(tag), key);
            Ok(NetOper {
                pkt_tag: tag,
                ext_pkt_tag: tag,
            })
        }
        _ => {
            let mut vnis = st.vxlan_pool();
            let vni = match requested {
                Some(t) => vnis.reserve(t).map(|_| t),
                None => vnis.allocate_lowest(),
            }
            .map_err(resource_err)?;
            let local = st
                .local_vlan_pool()
                .allocate_lowest()
                .map_err(resource_err)?;
            cs.claim(keys::vxlan(vni), key);
            cs.claim(keys::local_vlan(local), key);
            Ok(NetOper {
                pkt_tag: local,
                ext_pkt_tag: vni,
            })
        }
    }
}

/// Keys of endpoint groups / services on network `n`.
fn groups_on<'a>(st: &'a State, n: &'a Network) -> impl Iterator<Item = &'a String> + 'a {
    super::tenant::tenant_children(&st.epgs, &n.tenant_name).filter(move |k| {
        st.epgs
            .get(*k)
            .is_some_and(|g| g.network_name == n.network_name)
    })
}
fn services_on<'a>(st: &'a State, n: &'a Network) -> impl Iterator<Item = &'a String> + 'a {
    super::tenant::tenant_children(&st.service_lbs, &n.tenant_name).filter(move |k| {
        st.service_lbs
            .get(*k)
            .is_some_and(|s| s.network_name == n.network_name)
    })
}

impl Managed for Network {
    fn plan_create(st: &State, n: &Self, cs: &mut ChangeSet) -> ApiResult<()> {
        require_tenant(st, &n.tenant_name, false)?;
        check_addressing(st, n)?;
        if let Some(g) = st.epgs.get(&n.key) {
            return Err(ApiError::conflict(format!(
                "EndpointGroup {} conflicts with the network name",
                g.group_name
            )));
        }
        let oper = allocate_tags(st, n, cs)?;
        cs.put_json(keys::net_oper(&n.key), &oper)
    }

    fn plan_update(_st: &State, _old: &Self, _new: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        Err(ApiError::conflict(NETWORK_SUBNET_CHANGE))
    }

    fn plan_delete(st: &State, n: &Self, cs: &mut ChangeSet) -> ApiResult<()> {
        require_tenant(st, &n.tenant_name, false)?;
        let groups = groups_on(st, n).count();
        if groups != 0 {
            return Err(ApiError::conflict(format!(
                "cannot delete {} has {groups} endpoint groups",
                n.network_name
            )));
        }
        let services = services_on(st, n).count();
        if services != 0 {
            return Err(ApiError::conflict(format!(
                "cannot delete {} has {services} services",
                n.network_name
            )));
        }
        let eps = st
            .endpoints
            .values()
            .filter(|ep| ep.network_key() == n.key)
            .count();
        if eps != 0 {
            return Err(ApiError::conflict(format!(
                "cannot delete {} has {eps} endpoints",
                n.network_name
            )));
        }
        release_network_resources(st, n, cs);
        Ok(())
    }

    fn clear_links(obj: &mut Self) {
        obj.link_sets = NetworkLinkSets::default();
        obj.links = NetworkLinks::default();
    }

    fn with_links(st: &State, n: &Self) -> Self {
        let mut out = n.clone();
        out.links.tenant = link(ObjectKind::Tenant, &n.tenant_name);
        out.link_sets.endpoint_groups = link_set(ObjectKind::EndpointGroup, groups_on(st, n));
        out.link_sets.servicelbs = link_set(ObjectKind::ServiceLb, services_on(st, n));
        out
    }

    fn oper(st: &State, n: &Self) -> NetworkOper {
        network_oper_of(st, n)
    }
}

/// Deletes the tags, the oper record and any address still allocated (e.g. through
/// /plugin/allocAddress and never claimed), so nothing leaks.
fn release_network_resources(st: &State, n: &Network, cs: &mut ChangeSet) {
    for (tag, owner) in &st.vlans {
        if *owner == n.key {
            cs.delete(keys::vlan(*tag));
        }
    }
    for (vni, owner) in &st.vxlans {
        if *owner == n.key {
            cs.delete(keys::vxlan(*vni));
        }
    }
    for (tag, owner) in &st.local_vlans {
        if *owner == n.key {
            cs.delete(keys::local_vlan(*tag));
        }
    }
    if let Some(pools) = st.pools.get(&n.key) {
        for addr in pools.owners.keys() {
            cs.delete(keys::ip(&n.key, addr));
        }
    }
    cs.delete(keys::net_oper(&n.key));
}

/// Network inspect `Oper` (also used inside tenant inspect).
pub fn network_oper_of(st: &State, n: &Network) -> NetworkOper {
    let oper = st.net_oper.get(&n.key).cloned().unwrap_or_default();
    let endpoints: Vec<_> = st
        .endpoints
        .values()
        .filter(|ep| ep.network_key() == n.key)
        .map(|ep| ep.to_oper())
        .collect();
    let pools = st.pools.get(&n.key);
    let v4 = pools.and_then(|p| p.v4.as_ref());
    NetworkOper {
        allocated_addresses_count: count_i64(pools.map_or(0, |p| {
            p.owners
                .keys()
                .filter(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
                .count()
        })),
        allocated_ip_addresses: v4.map(|p| p.allocated_ranges()).unwrap_or_default(),
        available_ip_addresses: v4.map(|p| p.available_ranges()).unwrap_or_default(),
        external_pkt_tag: i64::from(oper.ext_pkt_tag),
        pkt_tag: i64::from(oper.pkt_tag),
        network_tag: if n.cfgd_tag.is_empty() {
            format!("{}.{}", n.network_name, n.tenant_name)
        } else {
            n.cfgd_tag.clone()
        },
        num_endpoints: count_i64(endpoints.len()),
        endpoints,
    }
}

#[allow(dead_code)]
pub(crate) fn network_key(tenant: &str, name: &str) -> String {
    scoped(tenant, name)
}
