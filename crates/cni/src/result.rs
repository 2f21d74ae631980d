//! The ADD success result, one type for every supported version.
//!
//! [`CniResult`] holds the 1.1.0 superset; [`CniResult::for_version`] shapes it for the version the
//! runtime asked for (per-IP `"version"` before 1.0.0, 1.1.0-only fields dropped before 1.1.0). The
//! same type decodes a `prevResult` of any supported version.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::agent_api::AgentAddResponse;
use crate::error::{codes, CniError};
use crate::version::CniVersion;

/// An interface created by the attachment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// Hardware address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// MTU (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Network namespace path for container interfaces; absent for host interfaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// Socket path (1.1.0).
    #[serde(
        default,
        rename = "socketPath",
        skip_serializing_if = "Option::is_none"
    )]
    pub socket_path: Option<String>,
    /// PCI id (1.1.0).
    #[serde(default, rename = "pciID", skip_serializing_if = "Option::is_none")]
    pub pci_id: Option<String>,
}

/// An IP assigned by the attachment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// `"4"` or `"6"`: present before 1.0.0 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Address in CIDR notation.
    pub address: String,
    /// Gateway of the subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

/// A route created by the attachment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination (CIDR).
    pub dst: String,
    /// Next hop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<String>,
    /// Path MTU (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Advertised MSS (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    /// Priority (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// Routing table (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// Scope (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u32>,
}

/// DNS information.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// Name servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// Local domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_none()
            && self.search.is_empty()
            && self.options.is_empty()
    }
}

/// The ADD success result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniResult {
    /// The version this result is written in.
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    /// Interfaces.
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    /// IPs.
    #[serde(default)]
    pub ips: Vec<IpConfig>,
    /// Routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// DNS.
    #[serde(default)]
    pub dns: Dns,
}

/// Parses `a.b.c.d/n` or `v6/n` into the address and prefix length.
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = s.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let prefix: u8 = prefix.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some((addr, prefix))
}

fn protocol_error(msg: String) -> CniError {
    CniError::new(codes::AGENT_PROTOCOL, "bad answer from contiv agent").with_details(msg)
}

impl CniResult {
    /// Decodes a `prevResult` (code 6 if it is not a result).
    pub fn from_prev(prev: &Value) -> Result<Self, CniError> {
        serde_json::from_value(prev.clone()).map_err(|e| {
            CniError::decode("failed to decode prevResult").with_details(e.to_string())
        })
    }

    /// Builds the result of an attachment from the agent's answer.
    pub fn from_agent(
        resp: &AgentAddResponse,
        ifname: &str,
        netns: &str,
    ) -> Result<Self, CniError> {
        let mut interfaces = Vec::new();
        if let Some(host) = resp.host_ifname.as_ref().filter(|h| !h.is_empty()) {
            interfaces.push(Interface {
                name: host.clone(),
                mac: resp.host_mac.clone(),
                ..Default::default()
            });
        }
        let index = interfaces.len();
        interfaces.push(Interface {
            name: ifname.to_string(),
            mac: resp.mac.clone(),
            mtu: resp.mtu,
            sandbox: Some(netns.to_string()),
            ..Default::default()
        });
        let mut ips = Vec::new();
        for (addr, gw) in [
            (Some(&resp.ip), &resp.gateway),
            (resp.ipv6.as_ref(), &resp.ipv6_gateway),
        ] {
            let Some(addr) = addr else { continue };
            if parse_cidr(addr).is_none() {
                return Err(protocol_error(format!(
                    "address {addr:?} is not in CIDR notation"
                )));
            }
            if let Some(g) = gw {
                g.parse::<IpAddr>()
                    .map_err(|_| protocol_error(format!("gateway {g:?} is not an IP address")))?;
            }
            ips.push(IpConfig {
                address: addr.clone(),
                gateway: gw.clone(),
                interface: Some(index),
                version: None,
            });
        }
        Ok(CniResult {
            cni_version: String::new(),
            interfaces,
            ips,
            routes: resp.routes.clone(),
            dns: resp.dns.clone(),
        })
    }

    /// Appends this plugin's result to a chained `prevResult` (interface indexes shifted).
    pub fn chained_after(self, prev: CniResult) -> CniResult {
        let offset = prev.interfaces.len();
        let mut out = prev;
        out.interfaces.extend(self.interfaces);
        out.ips.extend(self.ips.into_iter().map(|mut ip| {
            ip.interface = ip.interface.map(|i| i + offset);
            ip
        }));
        out.routes.extend(self.routes);
        if out.dns.is_empty() {
            out.dns = self.dns;
        }
        out
    }

    /// Shapes the result for `version`.
    pub fn for_version(mut self, version: CniVersion) -> CniResult {
        self.cni_version = version.as_str().to_string();
        for ip in &mut self.ips {
            ip.version = if version.ips_have_version() {
                let v6 = parse_cidr(&ip.address).is_some_and(|(a, _)| a.is_ipv6())
                    || ip.address.contains(':');
                Some(if v6 { "6" } else { "4" }.to_string())
            } else {
                None
            };
        }
        if !version.is_1_1() {
            for i in &mut self.interfaces {
                (i.mtu, i.socket_path, i.pci_id) = (None, None, None);
            }
            for r in &mut self.routes {
                (r.mtu, r.advmss, r.priority, r.table, r.scope) = (None, None, None, None, None);
            }
        }
        self
    }

    /// The container interface `ifname` in `netns` (index and interface), if listed.
    pub fn container_interface(&self, ifname: &str, netns: &str) -> Option<(usize, &Interface)> {
        self.interfaces
            .iter()
            .enumerate()
            .find(|(_, i)| i.name == ifname && i.sandbox.as_deref() == Some(netns))
    }

    /// IPs assigned to interface `index`.
    pub fn ips_of(&self, index: usize) -> impl Iterator<Item = &IpConfig> {
        self.ips
            .iter()
            .filter(move |ip| ip.interface == Some(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent_api::{AgentDns, AgentRoute};
    use serde_json::json;

    fn agent() -> AgentAddResponse {
        AgentAddResponse {
            ip: "10.1.0.5/24".into(),
            gateway: Some("10.1.0.1".into()),
            ipv6: Some("fd00::5/64".into()),
            ipv6_gateway: None,
            mac: Some("02:02:0a:01:00:05".into()),
            ifname: "eth0".into(),
            host_ifname: Some("vport5".into()),
            mtu: Some(1450),
            routes: vec![AgentRoute {
                dst: "0.0.0.0/0".into(),
                gw: None,
                mtu: Some(1400),
                ..Default::default()
            }],
            dns: AgentDns {
                nameservers: vec!["10.1.0.2".into()],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn shapes_per_version() {
        let r = CniResult::from_agent(&agent(), "eth0", "/run/netns/a").expect("build");
        let v031 = serde_json::to_value(r.clone().for_version(CniVersion::V0_3_1)).expect("ser");
        assert_eq!(v031["cniVersion"], "0.3.1");
        assert_eq!(
            v031["ips"][0],
            json!({"version":"4","address":"10.1.0.5/24","gateway":"10.1.0.1","interface":1})
        );
        assert_eq!(v031["ips"][1]["version"], "6");
        assert_eq!(
            v031["interfaces"][1],
            json!({"name":"eth0","mac":"02:02:0a:01:00:05","sandbox":"/run/netns/a"})
        );
        assert_eq!(v031["interfaces"][0], json!({"name":"vport5"}));
        assert_eq!(v031["routes"], json!([{"dst":"0.0.0.0/0"}]));
        let v100 = serde_json::to_value(r.clone().for_version(CniVersion::V1_0_0)).expect("ser");
        assert!(v100["ips"][0].get("version").is_none());
        assert!(v100["interfaces"][1].get("mtu").is_none());
        let v110 = serde_json::to_value(r.for_version(CniVersion::V1_1_0)).expect("ser");
        assert_eq!(v110["interfaces"][1]["mtu"], 1450);
        assert_eq!(v110["routes"][0]["mtu"], 1400);
        assert_eq!(v110["dns"], json!({"nameservers":["10.1.0.2"]}));
    }

    #[test]
    fn rejects_bad_agent_addresses() {
        let mut a = agent();
        a.ip = "10.1.0.5".into();
        assert_eq!(
            CniResult::from_agent(&a, "eth0", "/n").map_err(|e| e.code),
            Err(codes::AGENT_PROTOCOL)
        );
        let mut a = agent();
        a.gateway = Some("nope".into());
        assert_eq!(
            CniResult::from_agent(&a, "eth0", "/n").map_err(|e| e.code),
            Err(codes::AGENT_PROTOCOL)
        );
    }

    #[test]
    fn chaining_shifts_interface_indexes() {
        let prev = CniResult::from_prev(&json!({
            "cniVersion":"0.4.0","interfaces":[{"name":"tap0"}],
            "ips":[{"version":"4","address":"192.168.0.2/24","interface":0}],"dns":{"domain":"x"}
        }))
        .expect("prev");
        let ours = CniResult::from_agent(&agent(), "eth0", "/n").expect("build");
        let merged = ours.chained_after(prev);
        assert_eq!(merged.interfaces.len(), 3);
        assert_eq!(merged.ips[1].interface, Some(2));
        assert_eq!(merged.dns.domain.as_deref(), Some("x"));
        assert_eq!(
            merged.container_interface("eth0", "/n").map(|(i, _)| i),
            Some(2)
        );
        assert_eq!(merged.ips_of(2).count(), 2);
    }

    #[test]
    fn cidr_parsing() {
        assert!(parse_cidr("10.0.0.1/32").is_some());
        assert!(parse_cidr("10.0.0.1/33").is_none());
        assert!(parse_cidr("fd00::1/128").is_some());
        assert!(parse_cidr("fd00::1").is_none());
    }
}
