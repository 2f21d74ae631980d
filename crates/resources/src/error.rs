//! The one error type of this crate.
//!
//! Messages are lower-case, except where they reproduce the text the original Contiv
//! netmaster returned (clients and scripts match on those); each such variant names its
//! origin in the Go source. Every variant carries the offending value.

use std::net::IpAddr;

/// Why a resource could not be parsed, allocated or reserved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    // ----- id ranges (netutils.ParseTagRanges, resources/vlanresource.go) -----
    /// Range text is not `N-M[,N-M...]` (Contiv: "invalid tags %s, correct '10-50,70-100'").
    #[error("invalid tags {spec}, correct '10-50,70-100'")]
    RangeFormat { spec: String },
    /// `N-M` with N > M (Contiv text).
    #[error("invalid range {spec}, min is greater than max")]
    RangeMinGreaterThanMax { spec: String },
    /// A value below 1 (Contiv text).
    #[error("invalid range {spec}, values less than 1")]
    RangeBelowOne { spec: String },
    /// A value above the allowed maximum (Contiv: "invalid range %s, vlan values exceed 4095 max allowed").
    #[error("invalid range {spec}, {kind} values exceed {max} max allowed")]
    RangeAboveMax {
        spec: String,
        kind: String,
        max: u32,
    },
    /// Requested id is taken (Contiv: "requested vlan not available - vlan:%d").
    #[error("requested {kind} not available - {kind}:{id}")]
    IdNotAvailable { kind: String, id: u32 },
    /// Requested id is outside the configured ranges; Contiv gave the same text as for a taken id.
    #[error("requested {kind} not available - {kind}:{id}")]
    IdOutOfRange { kind: String, id: u32 },
    /// Every id is in use (Contiv: "no vlans available", "no vxlans available", "no local vlans available").
    #[error("no {kind}s available")]
    IdsExhausted { kind: String },

    // ----- subnets (netutils.go, master/network.go) -----
    /// Not `a.b.c.d[-e.f.g.h]/len` (or not an IPv6 prefix for the IPv6 pool).
    #[error("invalid subnet {spec}")]
    InvalidSubnet { spec: String },
    /// Prefix length outside what a pool supports (Contiv: "subnet length %d not supported").
    #[error("subnet length {len} not supported")]
    SubnetLengthNotSupported { len: u8 },
    /// Range subnet whose range is reversed, leaves its subnet or holds no usable address
    /// (Contiv text of netutils.ValidateNetworkRangeParams).
    #[error("Network subnet format not valid")]
    InvalidNetworkRange { spec: String },
    /// Gateway not inside the subnet.
    #[error("gateway {gateway} is not in subnet {subnet}")]
    GatewayOutsideSubnet { gateway: IpAddr, subnet: String },
    /// Gateway is the network, broadcast (IPv4) or subnet-router anycast (IPv6) address.
    #[error("gateway {gateway} is a reserved address of subnet {subnet}")]
    GatewayReserved { gateway: IpAddr, subnet: String },

    // ----- addresses -----
    /// No free address in the network (Contiv text, master/network.go).
    #[error("auto allocation failed - address exhaustion in subnet {subnet}")]
    AddressExhausted { subnet: String },
    /// No free address in an endpoint group's ip-pool (Contiv text, master/network.go).
    #[error("auto allocation failed - address exhaustion in pool {pool}")]
    PoolExhausted { pool: String },
    /// Address already allocated (Contiv text of netutils.TestIPAddrRange).
    #[error("ip address {ip} is not available")]
    AddressNotAvailable { ip: IpAddr },
    /// Network, broadcast, subnet-router anycast or gateway address.
    #[error("ip address {ip} is reserved in subnet {subnet}")]
    AddressReserved { ip: IpAddr, subnet: String },
    /// Address outside the subnet.
    #[error("ip address {ip} is outside subnet {subnet}")]
    AddressOutsideSubnet { ip: IpAddr, subnet: String },
    /// Address inside the subnet but outside the allocatable range of a range subnet.
    #[error("ip address {ip} is outside the address range {range} of subnet {subnet}")]
    AddressOutsideRange {
        ip: IpAddr,
        range: String,
        subnet: String,
    },

    // ----- endpoint-group ip pools (master/endpointGroup.go) -----
    /// Pool text malformed, reversed, or spanning more than one subnet of the network's length (Contiv text).
    #[error("invalid ip-pool {pool}")]
    InvalidIpPool { pool: String },
    /// Pool not inside the network's subnet (Contiv text).
    #[error("bad ip-pool {pool}, EPG ip-pool must be a subset of network {subnet}")]
    IpPoolNotSubset { pool: String, subnet: String },
    /// IPv6 pools are not supported for endpoint groups (Contiv text).
    #[error("ipv6 address pool is not supported for Endpoint Groups")]
    Ipv6PoolNotSupported { pool: String },
}
