//! Endpoint groups: live on one network (immutable), may carve an ip-pool out of it (immutable),
//! attach policies / a netprofile / external contracts (changeable). Each group gets a numeric id
//! that is persisted and never reused (Contiv's in-memory counter repeated ids after a restart).

use contiv_model::{
    EndpointGroup, EndpointGroupLinkSets, EndpointGroupLinks, EndpointGroupOper, ObjectKind,
};
use contiv_resources::Ipv4Range;

use super::network::resource_error;
use super::{count_i64, link, link_set, scoped, Managed};
use crate::changeset::ChangeSet;
use crate::error::{ApiError, ApiResult};
use crate::state::State;
use contiv_api::keys;

/// Group ids fit the 15 bits the OpenFlow pipeline's metadata gives them.
pub const MAX_EPG_ID: u32 = 32_767;

fn check_references(st: &State, g: &EndpointGroup) -> ApiResult<()> {
    for p in &g.policies {
        if !st.policies.contains_key(&scoped(&g.tenant_name, p)) {
            return Err(ApiError::not_found("Policy not found"));
        }
    }
    if !g.net_profile.is_empty()
        && !st
            .net_profiles
            .contains_key(&scoped(&g.tenant_name, &g.net_profile))
    {
        return Err(ApiError::not_found("netprofile not found"));
    }
    for c in &g.ext_contracts_grps {
        if !st.ext_contracts.contains_key(&scoped(&g.tenant_name, c)) {
            return Err(ApiError::not_found(format!(
                "External contracts group {c} not found"
            )));
        }
    }
    Ok(())
}

fn check_ip_pool(st: &State, g: &EndpointGroup, net_key: &str) -> ApiResult<()> {
    if g.ip_pool.is_empty() {
        return Ok(());
    }
    let range = Ipv4Range::parse(&g.ip_pool).map_err(resource_error)?;
    let pool = st.pools.get(net_key).and_then(|p| p.v4.as_ref());
    let Some(pool) = pool else {
        return Err(ApiError::bad_request(format!(
            "network {} has no IPv4 subnet for ip-pool {}",
            g.network_name, g.ip_pool
        )));
    };
    pool.check_pool(&range).map_err(resource_error)
}

fn next_group_id(st: &State) -> ApiResult<u32> {
    if st.epg_id_high_water < MAX_EPG_ID {
        return Ok(st.epg_id_high_water + 1);
    }
    // Every id was handed out once: reuse the lowest free one rather than refuse.
    (1..=MAX_EPG_ID)
        .find(|id| !st.epg_ids.contains_key(id))
        .ok_or_else(|| ApiError::exhausted("no endpoint group ids available"))
}

impl Managed for EndpointGroup {
    fn plan_create(st: &State, g: &Self, cs: &mut ChangeSet) -> ApiResult<()> {
        if !st.tenants.contains_key(&g.tenant_name) {
            return Err(ApiError::not_found("Tenant not found"));
        }
        let net_key = scoped(&g.tenant_name, &g.network_name);
        if !st.networks.contains_key(&net_key) {
            return Err(ApiError::not_found(format!(
                "Network {} not found",
                g.network_name
            )));
        }
        if let Some(n) = st.networks.get(&g.key) {
            return Err(ApiError::conflict(format!(
                "Network {} conflicts with the endpointGroup name",
                n.network_name
            )));
        }
        check_ip_pool(st, g, &net_key)?;
        check_references(st, g)?;
        let id = next_group_id(st)?;
        cs.claim(keys::epg_id(id), &g.key);
        cs.put_raw(
            keys::EPG_ID_COUNTER.to_owned(),
            id.max(st.epg_id_high_water).to_string().into_bytes(),
        );
        Ok(())
    }

    fn plan_update(st: &State, old: &Self, new: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        if old.network_name != new.network_name {
            return Err(ApiError::conflict(
                "Cannot change network association after epg is created.",
            ));
        }
        if old.ip_pool != new.ip_pool {
            return Err(ApiError::conflict(
                "Cannot change IP pool after epg is created.",
            ));
        }
        check_references(st, new)
    }

    fn plan_delete(st: &State, g: &Self, cs: &mut ChangeSet) -> ApiResult<()> {
        if let Some(ap) = app_profile_of(st, g) {
            return Err(ApiError::conflict(format!(
                "Cannot delete {}, associated to appProfile {ap}",
                g.group_name
            )));
        }
        let eps = st
            .endpoints
            .values()
            .filter(|ep| ep.group_key() == g.key)
            .count();
        if eps != 0 {
            return Err(ApiError::conflict(format!(
                "cannot delete {} has {eps} endpoints",
                g.group_name
            )));
        }
        if let Some(id) = st.epg_id_of.get(&g.key) {
            cs.delete(keys::epg_id(*id));
        }
        Ok(())
    }

    fn clear_links(obj: &mut Self) {
        obj.link_sets = EndpointGroupLinkSets::default();
        obj.links = EndpointGroupLinks::default();
    }

    fn with_links(st: &State, g: &Self) -> Self {
        let t = &g.tenant_name;
        let mut out = g.clone();
        out.links.tenant = link(ObjectKind::Tenant, t);
        out.links.network = link(ObjectKind::Network, &scoped(t, &g.network_name));
        if !g.net_profile.is_empty() {
            out.links.net_profile = link(ObjectKind::NetProfile, &scoped(t, &g.net_profile));
        }
        if let Some(ap) = app_profile_of(st, g) {
            out.links.app_profile = link(ObjectKind::AppProfile, &ap);
        }
        let policies: Vec<String> = g.policies.iter().map(|p| scoped(t, p)).collect();
        out.link_sets.policies = link_set(ObjectKind::Policy, &policies);
        let contracts: Vec<String> = g.ext_contracts_grps.iter().map(|c| scoped(t, c)).collect();
        out.link_sets.ext_contracts_grps = link_set(ObjectKind::ExtContractsGroup, &contracts);
        let rules: Vec<String> = super::tenant::tenant_children(&st.rules, t)
            .filter(|k| {
                st.rules.get(*k).is_some_and(|r| {
                    r.from_endpoint_group == g.group_name || r.to_endpoint_group == g.group_name
                })
            })
            .cloned()
            .collect();
        out.link_sets.match_rules = link_set(ObjectKind::Rule, &rules);
        out
    }

    fn oper(st: &State, g: &Self) -> EndpointGroupOper {
        let net_key = scoped(&g.tenant_name, &g.network_name);
        let tags = st.net_oper.get(&net_key).cloned().unwrap_or_default();
        let endpoints: Vec<_> = st
            .endpoints
            .values()
            .filter(|ep| ep.group_key() == g.key)
            .map(|ep| ep.to_oper())
            .collect();
        let v4 = st.pools.get(&net_key).and_then(|p| p.v4.as_ref());
        let range = Ipv4Range::parse(&g.ip_pool).ok();
        let (allocated, available) = match (v4, range) {
            (Some(p), Some(r)) => (p.allocated_ranges_in(&r), p.available_ranges_in(&r)),
            _ => (String::new(), String::new()),
        };
        EndpointGroupOper {
            allocated_ip_addresses: allocated,
            available_ip_addresses: available,
            external_pkt_tag: i64::from(tags.ext_pkt_tag),
            pkt_tag: i64::from(tags.pkt_tag),
            group_tag: if g.cfgd_tag.is_empty() {
                format!("{}.{}", g.group_name, g.tenant_name)
            } else {
                g.cfgd_tag.clone()
            },
            num_endpoints: count_i64(endpoints.len()),
            endpoints,
        }
    }
}

/// Key of the app profile that lists this group, if any.
fn app_profile_of(st: &State, g: &EndpointGroup) -> Option<String> {
    super::tenant::tenant_children(&st.app_profiles, &g.tenant_name)
        .find(|k| {
            st.app_profiles
                .get(*k)
                .is_some_and(|ap| ap.endpoint_groups.contains(&g.group_name))
        })
        .cloned()
}
