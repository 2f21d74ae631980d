//! An endpoint as netmaster stores it and answers it: the JSON form of Contiv's
//! `CfgEndpointState`, plus the tenant/network names.

use std::collections::BTreeMap;

use contiv_model::EndpointOper;
use serde::{Deserialize, Serialize};

/// One endpoint, stored and answered in the JSON form of Contiv's `CfgEndpointState`, plus the
/// tenant/network names (Contiv's `netID` joins them with a '.', which names may also contain).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointState {
    pub id: String,
    #[serde(rename = "netID")]
    pub net_id: String,
    #[serde(rename = "endpointID")]
    pub endpoint_id: String,
    #[serde(rename = "serviceName")]
    pub service_name: String,
    #[serde(rename = "endpointGroupId")]
    pub endpoint_group_id: i64,
    #[serde(rename = "endpointGroupKey")]
    pub endpoint_group_key: String,
    #[serde(rename = "ipAddress")]
    pub ip_address: String,
    #[serde(rename = "ipv6Address")]
    pub ipv6_address: String,
    #[serde(rename = "macAddress")]
    pub mac_address: String,
    #[serde(rename = "homingHost")]
    pub homing_host: String,
    #[serde(rename = "intfName")]
    pub intf_name: String,
    #[serde(rename = "vtepIP")]
    pub vtep_ip: String,
    pub labels: BTreeMap<String, String>,
    #[serde(rename = "containerId")]
    pub container_id: String,
    #[serde(rename = "epCommonName")]
    pub ep_common_name: String,
    #[serde(rename = "tenantName")]
    pub tenant_name: String,
    #[serde(rename = "networkName")]
    pub network_name: String,
}

impl EndpointState {
    pub fn tenant(&self) -> &str {
        &self.tenant_name
    }
    /// Model key of the endpoint's network ("tenant:network").
    pub fn network_key(&self) -> String {
        format!("{}:{}", self.tenant_name, self.network_name)
    }
    /// Whether the endpoint is on the network with model key `key` ("tenant:network"), without
    /// building the key (scans over every endpoint call this).
    pub fn in_network(&self, key: &str) -> bool {
        key.strip_prefix(self.tenant_name.as_str())
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|net| net == self.network_name)
    }
    /// Model key of the endpoint's group ("tenant:group"), empty when it has none.
    pub fn group_key(&self) -> String {
        if self.service_name.is_empty() {
            String::new()
        } else {
            format!("{}:{}", self.tenant_name, self.service_name)
        }
    }
    /// The inspect record (Contiv's EndpointOper).
    pub fn to_oper(&self) -> EndpointOper {
        EndpointOper {
            key: self.id.clone(),
            network: self.net_id.clone(),
            endpoint_id: self.endpoint_id.clone(),
            service_name: self.service_name.clone(),
            endpoint_group_id: self.endpoint_group_id,
            endpoint_group_key: self.endpoint_group_key.clone(),
            ip_address: vec![self.ip_address.clone(), self.ipv6_address.clone()],
            mac_address: self.mac_address.clone(),
            homing_host: self.homing_host.clone(),
            intf_name: self.intf_name.clone(),
            vtep_ip: self.vtep_ip.clone(),
            labels: go_map_string(&self.labels),
            container_id: self.container_id.clone(),
            container_name: self.ep_common_name.clone(),
            ..Default::default()
        }
    }
}

/// Go's `fmt.Sprintf("%s", map)`: `map[k1:v1 k2:v2]`, keys sorted.
fn go_map_string(m: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("map[{}]", inner.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_network_matches_exactly_the_network_key() {
        let e = EndpointState {
            tenant_name: "t1".into(),
            network_name: "net".into(),
            ..Default::default()
        };
        assert!(e.in_network(&e.network_key()));
        for other in ["t1:ne", "t1:net2", "t:net", "t1net", "t1::net", ":net", ""] {
            assert!(!e.in_network(other), "{other}");
        }
    }
}
