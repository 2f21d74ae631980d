//! Plain data the host agent hands to a datapath driver, and what a driver reports back.
//! No I/O here: these are values, compared and cloned freely.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;

pub use ipnet::Ipv4Net;

/// How a network forwards between its endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FwdMode {
    /// One L2 segment per network stretched over VXLAN; the gateway is routed per tenant.
    Bridge,
    /// Contiv's "vrouter": every endpoint is a /32 route, remote ones via their host's VTEP.
    Routing,
}

/// The encapsulation of a network between hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encap {
    Vxlan,
    Vlan,
}

/// An Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Contiv's endpoint MAC derivation: `02:02:` followed by the four IPv4 bytes.
    pub fn from_ipv4(ip: Ipv4Addr) -> Self {
        let o = ip.octets();
        MacAddr([0x02, 0x02, o[0], o[1], o[2], o[3]])
    }

    pub fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Error parsing a MAC address from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid mac address {0:?}")]
pub struct MacParseError(pub String);

impl FromStr for MacAddr {
    type Err = MacParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in out.iter_mut() {
            let p = parts.next().ok_or_else(|| MacParseError(s.to_string()))?;
            if p.len() != 2 {
                return Err(MacParseError(s.to_string()));
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| MacParseError(s.to_string()))?;
        }
        if parts.next().is_some() {
            return Err(MacParseError(s.to_string()));
        }
        Ok(MacAddr(out))
    }
}

/// A network as the datapath needs it (from netmaster's network + its oper state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    /// Contiv network key, `tenant:network`.
    pub id: String,
    pub tenant: String,
    /// VXLAN network identifier (netmaster's allocated vxlan tag).
    pub vni: u32,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub fwd_mode: FwdMode,
    pub encap: Encap,
    /// Workload MTU; 0 means "underlay MTU minus the encapsulation overhead".
    pub mtu: u32,
}

/// The host a driver runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// This host's VXLAN tunnel endpoint (an address of the underlay interface).
    pub vtep_ip: Ipv4Addr,
    pub underlay_ifname: String,
    pub underlay_mtu: u32,
}

/// VXLAN over IPv4 overhead: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14.
pub const VXLAN_OVERHEAD: u32 = 50;

impl HostSpec {
    /// The MTU a workload gets on this host when its network does not set one.
    pub fn workload_mtu(&self) -> u32 {
        self.underlay_mtu.saturating_sub(VXLAN_OVERHEAD)
    }
}

/// Who finishes a local endpoint's workload interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Plumbing {
    /// The driver makes the interface inside the workload's namespace (`netns_path`) and
    /// configures it: up, address, default route via the gateway (CNI).
    #[default]
    InWorkload,
    /// The driver makes the interface in `netns_path` (the agent's own namespace, where the
    /// runtime finds it) named `ifname`, with its MAC and MTU only, and leaves it down: the
    /// runtime moves it into the workload, renames, addresses and routes it (Docker CNM's Join).
    /// Once made, the driver never looks for it again (it may be anywhere by then): a repeated
    /// add converges the host end only, and removal deletes the host end (its peer goes with
    /// it, wherever it is).
    HandedOver,
}

/// An endpoint (container interface) living on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEndpoint {
    /// Endpoint id (unique across the cluster); host-side names derive from it.
    pub id: String,
    pub network_id: String,
    /// The workload's network namespace (`/var/run/netns/x`, `/proc/<pid>/ns/net`).
    pub netns_path: PathBuf,
    /// Interface name inside the workload, usually `eth0`.
    pub ifname: String,
    /// Address with the network's prefix length.
    pub ip: Ipv4Net,
    pub mac: MacAddr,
    pub gateway: Ipv4Addr,
    /// Who configures the workload end.
    pub plumbing: Plumbing,
}

/// An endpoint living on another host, reached through that host's VTEP.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteEndpoint {
    pub id: String,
    pub network_id: String,
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
    pub vtep: Ipv4Addr,
}

/// What `add_local_endpoint` built, for the agent's records and the CNI result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointAttachment {
    /// Host-side interface name (in the driver's host or tenant namespace).
    pub host_ifname: String,
    /// Where the host side lives (driver specific: a namespace name, a bridge name).
    pub host_location: String,
    pub mac: MacAddr,
    pub mtu: u32,
}

/// A network the driver found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedNetwork {
    pub id: String,
    pub vni: u32,
    pub fwd_mode: FwdMode,
}

/// A local endpoint the driver found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedEndpoint {
    pub id: String,
    pub network_id: String,
    pub host_ifname: String,
}

/// The workload's side of a local endpoint, as the driver finds it in the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadInterface {
    /// A path naming the workload's namespace for as long as it lives (a namespace mount such
    /// as `/run/netns/x` when there is one, else `/proc/<pid>/ns/net`).
    pub netns_path: PathBuf,
    /// The interface's name inside the workload.
    pub ifname: String,
    pub mac: MacAddr,
    pub mtu: u32,
}

/// Where the workload end of a local endpoint is (see [`crate::Datapath::workload_ends`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadEnd {
    /// The workload's interface exists, in a namespace some path names.
    Found(WorkloadInterface),
    /// Nothing of the endpoint is left on the workload's side: its host end is gone (a veth
    /// goes with its namespace) or has no peer. Provably dead.
    Gone,
    /// The workload end exists but no path the driver can find names its namespace (a mount in
    /// another mount namespace, a namespace held only by an open descriptor). Alive: keep it.
    Unnamed,
}

/// A remote endpoint entry the driver found programmed (ids are not kept by the kernel).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObservedRemote {
    pub network_id: String,
    pub ip: Ipv4Addr,
    pub vtep: Ipv4Addr,
}

/// Everything a driver manages that exists right now; input of the agent's reconcile-by-diff.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedState {
    pub networks: Vec<ObservedNetwork>,
    pub local_endpoints: Vec<ObservedEndpoint>,
    pub remote_endpoints: Vec<ObservedRemote>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_roundtrip_and_contiv_derivation() {
        let m = MacAddr::from_ipv4(Ipv4Addr::new(10, 1, 0, 17));
        assert_eq!(m.to_string(), "02:02:0a:01:00:11");
        assert_eq!("02:02:0a:01:00:11".parse::<MacAddr>(), Ok(m));
        assert!("02:02:0a:01:00".parse::<MacAddr>().is_err());
        assert!("02:02:0a:01:00:11:22".parse::<MacAddr>().is_err());
        assert!("zz:02:0a:01:00:11".parse::<MacAddr>().is_err());
    }

    #[test]
    fn workload_mtu_subtracts_vxlan_overhead() {
        let h = HostSpec {
            vtep_ip: Ipv4Addr::new(192, 0, 2, 1),
            underlay_ifname: "eth0".into(),
            underlay_mtu: 1500,
        };
        assert_eq!(h.workload_mtu(), 1450);
    }
}
