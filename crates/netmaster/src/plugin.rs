//! The `/plugin/*` operations netplugin (and Contiv's own agent) call, with Contiv's request and
//! response shapes (Go structs without JSON tags: field names as-is).

use std::net::{Ipv4Addr, Ipv6Addr};

pub use contiv_api::plugin::*;

use crate::endpoint::{self, resolve_net_id, EndpointState};
use crate::engine::Engine;
use crate::error::{ApiError, ApiResult};
use crate::state::State;
use contiv_api::keys;

/// Contiv's allocation id: "<net>.<tenant>" or "<net>:<group>.<tenant>"; returns (network key,
/// group key).
fn resolve_alloc_id(st: &State, id: &str) -> ApiResult<(String, Option<String>)> {
    if let Some((net, group_tenant)) = id.split_once(':') {
        if let Some((group, tenant)) = group_tenant.rsplit_once('.') {
            let net_key = format!("{tenant}:{net}");
            if st.networks.contains_key(&net_key) {
                let g = format!("{tenant}:{group}");
                if !st.epgs.contains_key(&g) {
                    return Err(ApiError::not_found(format!(
                        "endpoint group {group} not found"
                    )));
                }
                return Ok((net_key, Some(g)));
            }
        }
    }
    resolve_net_id(st, id)
        .map(|k| (k, None))
        .ok_or_else(|| ApiError::not_found("network not found"))
}

/// Finds the network by its subnet ("10.1.1.0/24" or "10.1.1.0/24:tenant").
fn resolve_by_pool(st: &State, pool: &str) -> ApiResult<String> {
    let (subnet, tenant) = match pool.rsplit_once(':') {
        Some((s, t)) if !endpoint::is_v6(pool) => (s, Some(t)),
        _ => (pool, None),
    };
    st.networks
        .iter()
        .find(|(_, n)| {
            (n.subnet == subnet || n.ipv6_subnet == subnet)
                && tenant.is_none_or(|t| n.tenant_name == t)
        })
        .map(|(k, _)| k.clone())
        .ok_or_else(|| ApiError::not_found("network not found"))
}

fn prefix_len(st: &State, net_key: &str, v6: bool) -> u8 {
    let pools = st.pools.get(net_key);
    if v6 {
        pools
            .and_then(|p| p.v6.as_ref())
            .map_or(128, |p| p.prefix_len())
    } else {
        pools
            .and_then(|p| p.v4.as_ref())
            .map_or(32, |p| p.prefix_len())
    }
}

impl Engine {
    pub async fn alloc_address(&self, req: AllocAddressRequest) -> ApiResult<AllocAddressResponse> {
        self.write(|st, cs| {
            let (net_key, group) = if req.network_id.is_empty() {
                (resolve_by_pool(st, &req.address_pool)?, None)
            } else {
                resolve_alloc_id(st, &req.network_id)?
            };
            let addr = if endpoint::is_v6(&req.address_pool) {
                let pref = endpoint::parse_ip_opt::<Ipv6Addr>(&req.preferred_ipv4_address)?;
                let p = endpoint::pick_v6(st, &net_key, pref)?
                    .ok_or_else(|| ApiError::bad_request("network has no IPv6 subnet"))?;
                endpoint::take_addr(cs, &net_key, &p, "");
                format!("{}/{}", p.addr, prefix_len(st, &net_key, true))
            } else {
                let pref = endpoint::parse_ip_opt::<Ipv4Addr>(&req.preferred_ipv4_address)?;
                let range = match &group {
                    Some(g) => endpoint::group_range(st, g)?,
                    None => None,
                };
                let p = endpoint::pick_v4(st, &net_key, range.as_ref(), pref)?;
                if p.claims_unowned {
                    return Err(ApiError::conflict(format!(
                        "ip address {} is not available",
                        p.addr
                    )));
                }
                endpoint::take_addr(cs, &net_key, &p, "");
                format!("{}/{}", p.addr, prefix_len(st, &net_key, false))
            };
            Ok(AllocAddressResponse {
                network_id: req.network_id.clone(),
                ipv4_address: addr,
            })
        })
        .await
    }

    pub async fn release_address(&self, req: ReleaseAddressRequest) -> ApiResult<&'static str> {
        self.write(|st, cs| {
            let (net_key, _) = resolve_alloc_id(st, &req.network_id)?;
            let addr = req.ipv4_address.split('/').next().unwrap_or_default();
            let owner = st.pools.get(&net_key).and_then(|p| p.owners.get(addr));
            match owner {
                None => Err(ApiError::not_found(format!(
                    "address {addr} is not allocated"
                ))),
                Some(o) if !o.is_empty() => Err(ApiError::conflict(format!(
                    "address {addr} belongs to endpoint {o}: delete the endpoint instead"
                ))),
                Some(_) => {
                    cs.delete(keys::ip(&net_key, addr));
                    Ok("success")
                }
            }
        })
        .await
    }

    pub async fn create_endpoint(&self, req: CreateEndpointRequest) -> ApiResult<EndpointResponse> {
        // Everything committed before the request (the groups and rules the new endpoint falls
        // under) is at or below this revision; the endpoint's own commit need not be awaited.
        let before = self.published_revision();
        self.write(|st, cs| plan_create_endpoint(st, &req, cs))
            .await
            .map(|ep| EndpointResponse {
                endpoint_config: ep,
                revision: before,
            })
    }

    pub async fn delete_endpoint(&self, req: DeleteEndpointRequest) -> ApiResult<EndpointResponse> {
        let id = delete_target(&req);
        self.write(|st, cs| {
            let ep = st
                .endpoints
                .get(&id)
                .ok_or_else(|| ApiError::not_found(format!("endpoint {id} not found")))?;
            let net_key = ep.network_key();
            for addr in [&ep.ip_address, &ep.ipv6_address] {
                if !addr.is_empty() {
                    cs.delete(keys::ip(&net_key, addr));
                }
            }
            cs.delete(keys::endpoint(&id));
            Ok(ep.clone())
        })
        .await
        .map(|ep| EndpointResponse {
            endpoint_config: ep,
            revision: 0,
        })
    }

    pub async fn update_endpoint(
        &self,
        req: UpdateEndpointRequest,
    ) -> ApiResult<UpdateEndpointResponse> {
        self.write(|st, cs| {
            let Some(ep) = update_target(st, &req) else {
                return Err(ApiError::not_found("endpoint not found"));
            };
            let mut ep = ep.clone();
            if req.event == "die" || req.event == "stop" {
                ep.labels.clear();
            } else {
                ep.labels = req.labels.clone();
                if !req.container_id.is_empty() {
                    ep.container_id.clone_from(&req.container_id);
                }
                if !req.ep_common_name.is_empty() {
                    ep.ep_common_name.clone_from(&req.ep_common_name);
                }
            }
            cs.put_json(keys::endpoint(&ep.id), &ep)?;
            Ok(UpdateEndpointResponse {
                ip_address: ep.ip_address,
            })
        })
        .await
    }
}

/// The endpoint record id a delete request names.
pub(crate) fn delete_target(req: &DeleteEndpointRequest) -> String {
    format!(
        "{}.{}-{}",
        req.network_name, req.tenant_name, req.endpoint_id
    )
}

/// The endpoint an update request names (by id, or by address within the tenant).
pub(crate) fn update_target<'a>(
    st: &'a State,
    req: &UpdateEndpointRequest,
) -> Option<&'a EndpointState> {
    st.endpoints.values().find(|ep| {
        (!req.endpoint_id.is_empty()
            && (ep.id == req.endpoint_id || ep.endpoint_id == req.endpoint_id))
            || (!req.ip_address.is_empty()
                && ep.ip_address == req.ip_address
                && (req.tenant.is_empty() || ep.tenant_name == req.tenant))
    })
}

fn plan_create_endpoint(
    st: &State,
    req: &CreateEndpointRequest,
    cs: &mut crate::changeset::ChangeSet,
) -> ApiResult<EndpointState> {
    let c = &req.config_ep;
    let net_key = format!("{}:{}", req.tenant_name, req.network_name);
    let net = st.networks.get(&net_key).ok_or_else(|| {
        ApiError::not_found(format!(
            "network {}.{} is not operational",
            req.network_name, req.tenant_name
        ))
    })?;
    let net_id = format!("{}.{}", req.network_name, req.tenant_name);
    let id = if c.container.is_empty() {
        format!("{}-native-intf", c.host)
    } else {
        format!("{net_id}-{}", c.container)
    };
    if let Some(existing) = st.endpoints.get(&id) {
        return Ok(existing.clone());
    }
    let group = if c.service_name.is_empty() {
        req.service_name.clone()
    } else {
        c.service_name.clone()
    };
    let group_key = format!("{}:{group}", req.tenant_name);
    if !group.is_empty() && !st.epgs.contains_key(&group_key) {
        return Err(ApiError::not_found(format!(
            "endpoint group {group} not found in tenant {}",
            req.tenant_name
        )));
    }
    let range = if group.is_empty() {
        None
    } else {
        endpoint::group_range(st, &group_key)?
    };
    let v4 = endpoint::pick_v4(
        st,
        &net_key,
        range.as_ref(),
        endpoint::parse_ip_opt(&c.ip_address)?,
    )?;
    endpoint::take_addr(cs, &net_key, &v4, &id);
    let v6 = endpoint::pick_v6(st, &net_key, endpoint::parse_ip_opt(&c.ipv6_address)?)?;
    if let Some(p) = &v6 {
        endpoint::take_addr(cs, &net_key, p, &id);
    }
    let ep = EndpointState {
        id: id.clone(),
        net_id,
        endpoint_id: c.container.clone(),
        service_name: group.clone(),
        endpoint_group_id: if group.is_empty() || net.nw_type == "infra" {
            0
        } else {
            st.epg_id_of.get(&group_key).copied().map_or(0, i64::from)
        },
        endpoint_group_key: if group.is_empty() {
            String::new()
        } else {
            format!("{group}:{}", req.tenant_name)
        },
        ip_address: v4.addr.to_string(),
        ipv6_address: v6.map(|p| p.addr.to_string()).unwrap_or_default(),
        mac_address: endpoint::mac_for(v4.addr),
        homing_host: c.host.clone(),
        intf_name: c.intf_name.clone(),
        vtep_ip: c.vtep_ip.clone(),
        labels: c.labels.clone(),
        container_id: c.container_id.clone(),
        ep_common_name: req.ep_common_name.clone(),
        tenant_name: req.tenant_name.clone(),
        network_name: req.network_name.clone(),
    };
    cs.put_json(keys::endpoint(&id), &ep)?;
    Ok(ep)
}
