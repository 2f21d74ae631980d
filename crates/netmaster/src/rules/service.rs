//! Service load balancers: a VIP on a network (given, or allocated from the network like an
//! endpoint address), selectors `key=value` choosing provider endpoints by their labels, and port
//! maps `port:targetPort:protocol`.

use std::net::Ipv4Addr;

use contiv_model::{ObjectKind, ServiceLb, ServiceLbLinks, ServiceLbOper};

use super::{count_i64, link, require_tenant, scoped, Managed};
use crate::changeset::ChangeSet;
use crate::endpoint::{self, EndpointState};
use crate::error::{ApiError, ApiResult};
use crate::state::State;
use contiv_api::keys;

fn owner(svc: &ServiceLb) -> String {
    format!("service:{}", svc.key)
}

fn valid_port_map(p: &str) -> bool {
    let parts: Vec<&str> = p.split(':').collect();
    let port_ok = |s: &str| s.parse::<u16>().is_ok_and(|n| n != 0);
    parts.len() == 3
        && port_ok(parts[0])
        && port_ok(parts[1])
        && matches!(parts[2], "TCP" | "UDP" | "tcp" | "udp")
}

fn selectors(svc: &ServiceLb) -> ApiResult<Vec<(&str, &str)>> {
    svc.selectors
        .iter()
        .map(|s| {
            s.split_once('=')
                .filter(|(k, v)| !k.is_empty() && !v.is_empty() && !v.contains('='))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Invalid selector {s}. selector format is key1=value1"
                    ))
                })
        })
        .collect()
}

fn check_service(st: &State, svc: &ServiceLb) -> ApiResult<()> {
    if svc.service_name.is_empty() {
        return Err(ApiError::bad_request("Invalid service name"));
    }
    if svc.selectors.is_empty() {
        return Err(ApiError::bad_request("Invalid selector options"));
    }
    if !svc.ports.iter().all(|p| valid_port_map(p)) {
        return Err(ApiError::bad_request(
            "Invalid Port maping . Port format is - Port:TargetPort:Protocol",
        ));
    }
    require_tenant(st, &svc.tenant_name, true)?;
    if !st
        .networks
        .contains_key(&scoped(&svc.tenant_name, &svc.network_name))
    {
        return Err(ApiError::not_found(format!(
            "Network {} not found",
            svc.network_name
        )));
    }
    selectors(svc).map(|_| ())
}

/// The VIP currently held by this service, if any.
pub(crate) fn vip_of(st: &State, svc: &ServiceLb) -> Option<String> {
    let pools = st.pools.get(&scoped(&svc.tenant_name, &svc.network_name))?;
    let me = owner(svc);
    pools
        .owners
        .iter()
        .find(|(_, o)| **o == me)
        .map(|(a, _)| a.clone())
}

/// The agent-visible record of the service's VIP, written in the change set that allocates it.
fn put_oper(cs: &mut ChangeSet, svc: &ServiceLb, service_vip: String) -> ApiResult<()> {
    cs.put_json(
        keys::service_oper(&svc.key),
        &contiv_api::ServiceOper { service_vip },
    )
}

fn is_provider(ep: &EndpointState, sel: &[(&str, &str)], svc: &ServiceLb) -> bool {
    ep.tenant_name == svc.tenant_name
        && ep.network_name == svc.network_name
        && !sel.is_empty()
        && sel
            .iter()
            .all(|(k, v)| ep.labels.get(*k).is_some_and(|x| x == v))
}

impl Managed for ServiceLb {
    fn plan_create(st: &State, svc: &Self, cs: &mut ChangeSet) -> ApiResult<()> {
        check_service(st, svc)?;
        let net_key = scoped(&svc.tenant_name, &svc.network_name);
        let preferred = endpoint::parse_ip_opt::<Ipv4Addr>(&svc.ip_address)?;
        let p = endpoint::pick_v4(st, &net_key, None, preferred)?;
        if p.claims_unowned {
            return Err(ApiError::conflict(format!(
                "ip address {} is not available",
                p.addr
            )));
        }
        endpoint::take_addr(cs, &net_key, &p, &owner(svc));
        put_oper(cs, svc, p.addr.to_string())
    }

    fn plan_update(st: &State, old: &Self, new: &Self, cs: &mut ChangeSet) -> ApiResult<()> {
        check_service(st, new)?;
        if old.network_name != new.network_name {
            return Err(ApiError::conflict(
                "Cannot change the network of a service after its created",
            ));
        }
        if !new.ip_address.is_empty() && Some(&new.ip_address) != vip_of(st, old).as_ref() {
            return Err(ApiError::conflict(
                "Cannot change the ip address of a service after its created",
            ));
        }
        // Re-posting a service created before agents were told VIPs tells them.
        match vip_of(st, old) {
            Some(vip) => put_oper(cs, new, vip),
            None => Ok(()),
        }
    }

    fn merge_update(old: &Self, new: &mut Self) {
        if new.ip_address.is_empty() {
            new.ip_address.clone_from(&old.ip_address);
        }
    }

    fn plan_delete(st: &State, svc: &Self, cs: &mut ChangeSet) -> ApiResult<()> {
        if let Some(vip) = vip_of(st, svc) {
            cs.delete(keys::ip(&scoped(&svc.tenant_name, &svc.network_name), &vip));
        }
        cs.delete(keys::service_oper(&svc.key));
        Ok(())
    }

    fn clear_links(obj: &mut Self) {
        obj.links = ServiceLbLinks::default();
    }

    fn with_links(_st: &State, svc: &Self) -> Self {
        let mut out = svc.clone();
        out.links.tenant = link(ObjectKind::Tenant, &svc.tenant_name);
        out.links.network = link(
            ObjectKind::Network,
            &scoped(&svc.tenant_name, &svc.network_name),
        );
        out
    }

    fn oper(st: &State, svc: &Self) -> ServiceLbOper {
        let sel = selectors(svc).unwrap_or_default();
        let providers: Vec<_> = st
            .endpoints
            .values()
            .filter(|ep| is_provider(ep, &sel, svc))
            .map(|ep| ep.to_oper())
            .collect();
        ServiceLbOper {
            num_providers: count_i64(providers.len()),
            providers,
            service_vip: vip_of(st, svc).unwrap_or_default(),
        }
    }
}
