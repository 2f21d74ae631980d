//! The `NetworkDriver.*` calls: Docker networks mapped to Contiv networks (and groups), Docker
//! endpoints made and removed through the agent's core.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use contiv_datapath::{Encap, Ipv4Net, MacAddr, NetworkSpec};
use serde_json::{json, Map, Value};

use super::store::DockerNetwork;
use super::wire::generic_options;
pub use super::wire::{
    AllocateNetworkRequest, CreateEndpointRequest, CreateNetworkRequest, DiscoveryRequest,
    EndpointRequest, Interface, IpamData, JoinRequest, NetworkRequest, GENERIC_OPTIONS,
};
use super::{check_id, cnm_ifname, Cnm, CnmError, ContivOptions};
use crate::attach::{AttachRequest, DetachRequest};
use crate::records::{Attachment, Frontend};

/// What undoes Docker endpoint `id` (of `tenant:network`, when known).
fn detach_request(id: &str, tenant: &str, network: &str, netns: &str) -> DetachRequest {
    DetachRequest {
        workload: id.to_string(),
        ifname: cnm_ifname(id),
        tenant: tenant.to_string(),
        network: network.to_string(),
        netns: Some(netns.to_string()),
        frontend: Frontend::Docker,
    }
}

/// Contiv's `encap` and `pkt-tag` options, when given, must describe the network.
fn check_encap(opts: &ContivOptions, spec: &NetworkSpec) -> Result<(), CnmError> {
    let encap = match spec.encap {
        Encap::Vxlan => "vxlan",
        Encap::Vlan => "vlan",
    };
    if let Some(e) = &opts.encap {
        if !e.eq_ignore_ascii_case(encap) {
            return Err(CnmError::Invalid(format!(
                "network {} has encap {encap}, not {e}",
                spec.id
            )));
        }
    }
    match opts.pkt_tag {
        Some(t) if spec.encap == Encap::Vxlan && t != spec.vni => Err(CnmError::Invalid(format!(
            "network {} has vxlan id {}, not pkt-tag {t}",
            spec.id, spec.vni
        ))),
        _ => Ok(()),
    }
}

/// Docker's pool and gateway, when given, must be the network's (else dockerd would give its
/// containers addresses Contiv does not route: the default IPAM driver instead of ours).
fn check_pool(data: Option<&IpamData>, spec: &NetworkSpec) -> Result<(), CnmError> {
    let Some(d) = data else { return Ok(()) };
    if !d.pool.is_empty() {
        let pool: Ipv4Net = d
            .pool
            .parse()
            .map_err(|_| CnmError::Invalid(format!("invalid pool {:?}", d.pool)))?;
        if pool.trunc() != spec.subnet.trunc() {
            return Err(CnmError::Invalid(format!(
                "docker's pool {pool} is not the subnet {} of network {} (use --ipam-driver netplugin)",
                spec.subnet, spec.id
            )));
        }
    }
    if !d.gateway.is_empty() {
        let gw = d.gateway.split('/').next().unwrap_or_default();
        if gw.parse::<Ipv4Addr>().ok() != Some(spec.gateway) {
            return Err(CnmError::Invalid(format!(
                "docker's gateway {} is not the gateway {} of network {}",
                d.gateway, spec.gateway, spec.id
            )));
        }
    }
    Ok(())
}

impl Cnm {
    pub(crate) fn create_network(&self, r: CreateNetworkRequest) -> Result<Value, CnmError> {
        check_id("NetworkID", &r.network_id)?;
        if r.ipv6_data.as_ref().is_some_and(|v| !v.is_empty()) {
            return Err(CnmError::Invalid("IPv6 is not supported".into()));
        }
        let v4 = r.ipv4_data.unwrap_or_default();
        if v4.len() > 1 {
            return Err(CnmError::Invalid(
                "one IPv4 pool per network (a Contiv network has one subnet)".into(),
            ));
        }
        let opts = self.options(&generic_options(&r.options)?)?;
        let (net, spec) = self.resolve(&opts, v4.first().map(|d| d.pool.as_str()))?;
        check_encap(&opts, &spec)?;
        check_pool(v4.first(), &spec)?;
        self.networks.insert(&r.network_id, net.clone())?;
        tracing::info!(docker_network = %r.network_id, network = %spec.id, group = ?net.group, "docker network created");
        Ok(json!({}))
    }

    /// Swarm's manager allocates a global-scope network once, before any node creates it: the
    /// options are checked as `CreateNetwork` checks them (a bad `contiv-tag` fails `docker
    /// network create`, not each task later), nothing is recorded. The options answered become
    /// the network's driver options on every node (swarm replaces them with this answer), so
    /// they are the user's own, unchanged.
    pub(crate) fn allocate_network(&self, r: AllocateNetworkRequest) -> Result<Value, CnmError> {
        check_id("NetworkID", &r.network_id)?;
        if r.ipv6_data.as_ref().is_some_and(|v| !v.is_empty()) {
            return Err(CnmError::Invalid("IPv6 is not supported".into()));
        }
        let v4 = r.ipv4_data.unwrap_or_default();
        if v4.len() > 1 {
            return Err(CnmError::Invalid(
                "one IPv4 pool per network (a Contiv network has one subnet)".into(),
            ));
        }
        let given = r.options.unwrap_or_default();
        let options: BTreeMap<String, Value> = given
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let opts = self.options(&options)?;
        let (_, spec) = self.resolve(&opts, v4.first().map(|d| d.pool.as_str()))?;
        check_encap(&opts, &spec)?;
        check_pool(v4.first(), &spec)?;
        Ok(json!({ "Options": given }))
    }

    /// Nothing was recorded by `AllocateNetwork`.
    pub(crate) fn free_network(&self, r: NetworkRequest) -> Result<Value, CnmError> {
        check_id("NetworkID", &r.network_id)?;
        Ok(json!({}))
    }

    pub(crate) fn delete_network(&self, r: NetworkRequest) -> Result<Value, CnmError> {
        check_id("NetworkID", &r.network_id)?;
        self.networks.remove(&r.network_id)?;
        Ok(json!({}))
    }

    fn docker_network(&self, id: &str) -> Result<DockerNetwork, CnmError> {
        check_id("NetworkID", id)?;
        self.networks.get(id).ok_or_else(|| {
            CnmError::NotFound(format!(
                "docker network {id} is not a netplugin network of this host"
            ))
        })
    }

    /// The record of Docker endpoint `id` (of Docker network `network_id`).
    fn docker_endpoint(&self, network_id: &str, id: &str) -> Result<Attachment, CnmError> {
        check_id("EndpointID", id)?;
        let net = self.docker_network(network_id)?;
        let a = self
            .agent
            .records
            .get(&(id.to_string(), cnm_ifname(id)))
            .ok_or_else(|| CnmError::NotFound(format!("endpoint {id} not found")))?;
        if a.network_key() != net.network_key() {
            return Err(CnmError::Invalid(format!(
                "endpoint {id} is in network {}, not {}",
                a.network_key(),
                net.network_key()
            )));
        }
        Ok(a)
    }

    pub(crate) fn create_endpoint(&self, r: CreateEndpointRequest) -> Result<Value, CnmError> {
        let net = self.docker_network(&r.network_id)?;
        check_id("EndpointID", &r.endpoint_id)?;
        let iface = r.interface.unwrap_or_default();
        if !iface.address_ipv6.is_empty() {
            return Err(CnmError::Invalid("IPv6 is not supported".into()));
        }
        let ip = match iface.address.as_str() {
            "" => None,
            a => Some(
                a.parse::<Ipv4Net>()
                    .map_err(|_| CnmError::Invalid(format!("invalid address {a:?}")))?
                    .addr(),
            ),
        };
        let mac = match iface.mac_address.as_str() {
            "" => None,
            m => Some(
                m.parse::<MacAddr>()
                    .map_err(|e| CnmError::Invalid(e.to_string()))?,
            ),
        };
        let req = AttachRequest {
            workload: r.endpoint_id.clone(),
            ifname: cnm_ifname(&r.endpoint_id),
            netns: self.host_netns.clone(),
            tenant: net.tenant,
            network: net.network,
            group: net.group,
            ip,
            mac,
            frontend: Frontend::Docker,
            ..Default::default()
        };
        let a = self.agent.attach(&req)?;
        let got = a.ip.split('/').next().unwrap_or_default();
        if let Some(want) = ip.filter(|w| got != w.to_string()) {
            // netmaster had the address taken by someone else and picked another one.
            let _ = self.agent.detach(&detach_request(
                &r.endpoint_id,
                &a.tenant,
                &a.network,
                &a.netns,
            ));
            return Err(CnmError::Invalid(format!(
                "address {want} is not available in network {} (netmaster offered {got})",
                a.network_key()
            )));
        }
        let mut out = Map::new();
        if iface.mac_address.is_empty() {
            out.insert("MacAddress".into(), a.mac.clone().into());
        }
        if iface.address.is_empty() {
            out.insert("Address".into(), a.ip.clone().into());
        }
        Ok(json!({ "Interface": out }))
    }

    pub(crate) fn endpoint_oper_info(&self, r: EndpointRequest) -> Result<Value, CnmError> {
        let a = self.docker_endpoint(&r.network_id, &r.endpoint_id)?;
        Ok(json!({"Value": {
            "endpoint": a.endpoint_id,
            "network": a.network_key(),
            "ip": a.ip,
            "mac": a.mac,
            "host_ifname": a.host_ifname,
        }}))
    }

    /// Idempotent: an endpoint this agent does not know is success (dockerd retries deletes);
    /// without a record (lost), netmaster's endpoint and the interface still go when the
    /// Docker network is known.
    pub(crate) fn delete_endpoint(&self, r: EndpointRequest) -> Result<Value, CnmError> {
        check_id("NetworkID", &r.network_id)?;
        check_id("EndpointID", &r.endpoint_id)?;
        let net = self.networks.get(&r.network_id);
        let (tenant, network) = net.map(|n| (n.tenant, n.network)).unwrap_or_default();
        self.agent.detach(&detach_request(
            &r.endpoint_id,
            &tenant,
            &network,
            &self.host_netns,
        ))?;
        Ok(json!({}))
    }

    pub(crate) fn join(&self, r: JoinRequest) -> Result<Value, CnmError> {
        let a = self.docker_endpoint(&r.network_id, &r.endpoint_id)?;
        tracing::info!(endpoint = %a.endpoint_id, sandbox = %r.sandbox_key, "docker endpoint joined");
        Ok(json!({
            "InterfaceName": {"SrcName": a.ifname, "DstPrefix": "eth"},
            "Gateway": a.gateway,
            "DisableGatewayService": true,
        }))
    }

    /// dockerd moves the interface back itself; nothing of ours changes until DeleteEndpoint.
    pub(crate) fn leave(&self, r: EndpointRequest) -> Result<Value, CnmError> {
        check_id("NetworkID", &r.network_id)?;
        check_id("EndpointID", &r.endpoint_id)?;
        Ok(json!({}))
    }
}
