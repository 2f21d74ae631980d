//! Endpoints and the agent-facing `/plugin/*` API (Contiv's master/api.go shapes): address
//! allocation and release, endpoint create (idempotent), delete and update.
//!
//! An address handed out by `allocAddress` is stored with an empty owner; the `createEndpoint`
//! that names it (Docker's IPAM-then-join flow) claims it. A preferred address already held by
//! someone else is refused: it is never handed out twice.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use contiv_resources::{mac_from_ipv4, Ipv4Range};

use crate::changeset::ChangeSet;
use crate::error::{ApiError, ApiResult};
use crate::rules::network::resource_error;
use crate::state::State;
use contiv_api::keys;
pub use contiv_api::EndpointState;

/// Finds the network Contiv names "<network>.<tenant>" (names may contain dots: every split is
/// tried). Returns the model key "tenant:network".
pub fn resolve_net_id(st: &State, net_id: &str) -> Option<String> {
    net_id.match_indices('.').find_map(|(i, _)| {
        let key = format!("{}:{}", &net_id[i + 1..], &net_id[..i]);
        st.networks.contains_key(&key).then_some(key)
    })
}

/// An address chosen for an allocation, and whether it is an unclaimed `allocAddress` result that
/// the caller now claims.
pub(crate) struct Picked<A> {
    pub addr: A,
    pub claims_unowned: bool,
}

/// Chooses an IPv4 address in `net_key`: the preferred one if free (or held unclaimed), else the
/// lowest free in `within` (a group's pool) or in the network outside group pools.
pub(crate) fn pick_v4(
    st: &State,
    net_key: &str,
    within: Option<&Ipv4Range>,
    preferred: Option<Ipv4Addr>,
) -> ApiResult<Picked<Ipv4Addr>> {
    let pools = st
        .pools
        .get(net_key)
        .ok_or_else(|| ApiError::not_found("network not found"))?;
    let pool = pools
        .v4
        .as_ref()
        .ok_or_else(|| ApiError::bad_request("network has no IPv4 subnet"))?;
    match preferred {
        Some(ip) => match pools.owners.get(&ip.to_string()) {
            Some(owner) if owner.is_empty() => Ok(Picked {
                addr: ip,
                claims_unowned: true,
            }),
            Some(_) => Err(ApiError::conflict(format!(
                "ip address {ip} is not available"
            ))),
            None => {
                pool.check_available(ip).map_err(resource_error)?;
                Ok(Picked {
                    addr: ip,
                    claims_unowned: false,
                })
            }
        },
        None => {
            let ip = pool.peek_lowest(within).map_err(resource_error)?;
            Ok(Picked {
                addr: ip,
                claims_unowned: false,
            })
        }
    }
}

/// IPv6 counterpart of [`pick_v4`] (no group pools for IPv6, as in Contiv).
pub(crate) fn pick_v6(
    st: &State,
    net_key: &str,
    preferred: Option<Ipv6Addr>,
) -> ApiResult<Option<Picked<Ipv6Addr>>> {
    let Some(pools) = st.pools.get(net_key) else {
        return Ok(None);
    };
    let Some(pool) = pools.v6.as_ref() else {
        return Ok(None);
    };
    match preferred {
        Some(ip) => match pools.owners.get(&ip.to_string()) {
            Some(owner) if owner.is_empty() => Ok(Some(Picked {
                addr: ip,
                claims_unowned: true,
            })),
            Some(_) => Err(ApiError::conflict(format!(
                "ip address {ip} is not available"
            ))),
            None => {
                pool.check_available(ip).map_err(resource_error)?;
                Ok(Some(Picked {
                    addr: ip,
                    claims_unowned: false,
                }))
            }
        },
        None => Ok(Some(Picked {
            addr: pool.peek_lowest().map_err(resource_error)?,
            claims_unowned: false,
        })),
    }
}

/// Records a picked address for `owner` in the change set.
pub(crate) fn take_addr<A: ToString>(
    cs: &mut ChangeSet,
    net_key: &str,
    p: &Picked<A>,
    owner: &str,
) {
    let key = keys::ip(net_key, &p.addr.to_string());
    if p.claims_unowned {
        cs.put_raw(key, owner.as_bytes().to_vec());
    } else {
        cs.claim(key, owner);
    }
}

/// The group's ip-pool range, if it has one.
pub(crate) fn group_range(st: &State, group_key: &str) -> ApiResult<Option<Ipv4Range>> {
    match st.epgs.get(group_key) {
        Some(g) if !g.ip_pool.is_empty() => Ipv4Range::parse(&g.ip_pool)
            .map(Some)
            .map_err(resource_error),
        _ => Ok(None),
    }
}

pub(crate) fn mac_for(ip: Ipv4Addr) -> String {
    mac_from_ipv4(ip)
}

pub(crate) fn parse_ip_opt<T: std::str::FromStr>(s: &str) -> ApiResult<Option<T>> {
    let s = s.split('/').next().unwrap_or_default().trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| ApiError::bad_request(format!("invalid IP address {s}")))
}

pub(crate) fn is_v6(s: &str) -> bool {
    s.split('/')
        .next()
        .is_some_and(|a| matches!(a.parse::<IpAddr>(), Ok(IpAddr::V6(_))))
}
