//! The `IpamDriver.*` calls: a pool is a Contiv network (optionally a group's range of it),
//! addresses are reserved at netmaster (`allocAddress`) and claimed by `CreateEndpoint`.
//!
//! Pool ids spell the Contiv network, `<tenant>/<network>[/<group>]` ([`PoolId`]): dockerd
//! keeps them forever (it never asks for pools again, not even after it or the agent
//! restarts), and they need no state on this side.

use contiv_api::plugin::{AllocAddressRequest, ReleaseAddressRequest};
use contiv_datapath::Ipv4Net;
use serde_json::{json, Value};

pub use super::wire::{AddressRequest, PoolId, PoolRequest, RequestPoolRequest};
use super::{Cnm, CnmError};

/// Address spaces reported to dockerd (names only: pools come from netmaster).
pub const LOCAL_SPACE: &str = "contiv-local";
pub const GLOBAL_SPACE: &str = "contiv-global";
/// dockerd's option asking for the gateway address of a pool.
const REQUEST_ADDRESS_TYPE: &str = "RequestAddressType";
const GATEWAY_TYPE: &str = "com.docker.network.gateway";

impl PoolId {
    /// netmaster's `allocAddress` network id: `network.tenant`, or `network:group.tenant`
    /// (the group's address range).
    fn alloc_id(&self) -> String {
        match &self.group {
            Some(g) => format!("{}:{g}.{}", self.network, self.tenant),
            None => format!("{}.{}", self.network, self.tenant),
        }
    }
}

impl Cnm {
    pub(crate) fn request_pool(&self, r: RequestPoolRequest) -> Result<Value, CnmError> {
        if r.v6 {
            return Err(CnmError::Invalid("IPv6 is not supported".into()));
        }
        if !r.sub_pool.is_empty() {
            return Err(CnmError::Invalid(
                "sub-pools are not supported: give a group (ipam option group) an ip-pool instead"
                    .into(),
            ));
        }
        let opts = self.options(&r.options.unwrap_or_default())?;
        let (net, spec) = self.resolve(&opts, Some(r.pool.as_str()))?;
        if !r.pool.is_empty() {
            let pool: Ipv4Net = r
                .pool
                .parse()
                .map_err(|_| CnmError::Invalid(format!("invalid pool {:?}", r.pool)))?;
            if pool.trunc() != spec.subnet.trunc() {
                return Err(CnmError::Invalid(format!(
                    "pool {pool} is not the subnet {} of network {}",
                    spec.subnet, spec.id
                )));
            }
        }
        let id = PoolId {
            tenant: net.tenant,
            network: net.network,
            group: net.group,
        };
        Ok(json!({
            "PoolID": id.to_string(),
            "Pool": spec.subnet.trunc().to_string(),
            "Data": {GATEWAY_TYPE: format!("{}/{}", spec.gateway, spec.subnet.prefix_len())},
        }))
    }

    /// Stateless: nothing is held per pool.
    pub(crate) fn release_pool(&self, r: PoolRequest) -> Result<Value, CnmError> {
        r.pool_id.parse::<PoolId>()?;
        Ok(json!({}))
    }

    pub(crate) fn request_address(&self, r: AddressRequest) -> Result<Value, CnmError> {
        let pool: PoolId = r.pool_id.parse()?;
        let preferred = match r.address.as_str() {
            "" => String::new(),
            a => a
                .split('/')
                .next()
                .and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok())
                .ok_or_else(|| CnmError::Invalid(format!("invalid address {a:?}")))?
                .to_string(),
        };
        let gateway_asked = r
            .options
            .as_ref()
            .and_then(|o| o.get(REQUEST_ADDRESS_TYPE))
            .is_some_and(|v| v.as_str() == Some(GATEWAY_TYPE));
        if gateway_asked {
            // The network's own gateway (anycast, on every host): not an allocation.
            let spec = self
                .agent
                .spec_for_add(&format!("{}:{}", pool.tenant, pool.network))?;
            if !preferred.is_empty() && preferred != spec.gateway.to_string() {
                return Err(CnmError::Invalid(format!(
                    "network {} has gateway {}, not {preferred}",
                    spec.id, spec.gateway
                )));
            }
            let gw = format!("{}/{}", spec.gateway, spec.subnet.prefix_len());
            return Ok(json!({"Address": gw, "Data": {}}));
        }
        let asked = self.agent.nm.alloc_address(&AllocAddressRequest {
            network_id: pool.alloc_id(),
            address_pool: String::new(),
            preferred_ipv4_address: preferred.clone(),
        });
        let got = match asked {
            // Swarm: the manager's allocator reserved this task's address through this same
            // IPAM driver (at netmaster, shared by every node), then the node running the task
            // asks its own driver for that address again. It is held, so it is answered as
            // reserved; CreateEndpoint claims it and refuses it if an endpoint already owns it
            // (no address is ever given twice).
            Err(crate::netmaster::NmError::Refused { status: 409, .. })
                if self.swarm && !preferred.is_empty() =>
            {
                let spec = self
                    .agent
                    .spec_for_add(&format!("{}:{}", pool.tenant, pool.network))?;
                let addr = format!("{preferred}/{}", spec.subnet.prefix_len());
                tracing::debug!(%pool, address = %addr, "swarm: address reserved by the manager");
                return Ok(json!({"Address": addr, "Data": {}}));
            }
            other => other?,
        };
        let addr: Ipv4Net = got.ipv4_address.parse().map_err(|_| CnmError::Agent {
            msg: format!("netmaster answered address {:?}", got.ipv4_address),
            details: None,
        })?;
        if !preferred.is_empty() && addr.addr().to_string() != preferred {
            let _ = self.release(&pool, &addr.addr().to_string());
            return Err(CnmError::Invalid(format!(
                "address {preferred} is not available in {pool}"
            )));
        }
        Ok(json!({"Address": addr.to_string(), "Data": {}}))
    }

    /// Idempotent: an address netmaster no longer holds (DeleteEndpoint freed it with the
    /// endpoint) or still holds for an endpoint (whose delete frees it) is success.
    pub(crate) fn release_address(&self, r: AddressRequest) -> Result<Value, CnmError> {
        let pool: PoolId = r.pool_id.parse()?;
        let ip = r
            .address
            .split('/')
            .next()
            .and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok())
            .ok_or_else(|| CnmError::Invalid(format!("invalid address {:?}", r.address)))?;
        self.release(&pool, &ip.to_string())?;
        Ok(json!({}))
    }

    fn release(&self, pool: &PoolId, ip: &str) -> Result<(), CnmError> {
        let req = ReleaseAddressRequest {
            network_id: pool.alloc_id(),
            ipv4_address: ip.to_string(),
        };
        match self.agent.nm.release_address(&req) {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(crate::netmaster::NmError::Refused { status: 409, .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_ids_round_trip_and_refuse() {
        for s in ["t/n", "t/n/g"] {
            assert_eq!(s.parse::<PoolId>().unwrap().to_string(), s);
        }
        assert_eq!("t/n".parse::<PoolId>().unwrap().alloc_id(), "n.t");
        assert_eq!("t/n/g".parse::<PoolId>().unwrap().alloc_id(), "n:g.t");
        for bad in ["", "t", "t/", "t/n/g/x", "t/n:x", "/n"] {
            assert!(bad.parse::<PoolId>().is_err(), "{bad}");
        }
    }
}
