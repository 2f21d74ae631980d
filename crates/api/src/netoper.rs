//! Runtime state of a network that is not part of its config.

use serde::{Deserialize, Serialize};

/// Runtime state of one network that is not part of its config: the tags it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetOper {
    /// VLAN encap: the VLAN; VXLAN encap: the host-local VLAN (Contiv's internal tag).
    #[serde(rename = "pktTag")]
    pub pkt_tag: u32,
    /// VLAN encap: the VLAN; VXLAN encap: the VNI.
    #[serde(rename = "extPktTag")]
    pub ext_pkt_tag: u32,
}

/// Runtime state of one service load balancer that is not part of its config: the VIP it holds
/// (given as `ipAddress` or allocated from its network), so agents know it without the
/// allocation keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceOper {
    #[serde(rename = "serviceVip")]
    pub service_vip: String,
}
