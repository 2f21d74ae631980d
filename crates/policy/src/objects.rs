//! From Contiv's wire objects (as netmaster stores them and agents mirror them) to the
//! compiler's typed input. Netmaster's `explain` and every agent build their input here, so they
//! compile the same thing.

use std::net::Ipv4Addr;

use contiv_api::EndpointState;
use contiv_model::{EndpointGroup, Network, Rule};
use ipnet::Ipv4Net;

use crate::compile::PolicyInput;
use crate::spec::{GroupRef, Member, NetworkRef, RuleError, RuleSpec};

/// Contiv's subnet forms: `10.1.1.0/24` and `10.1.1.10-10.1.1.100/24`.
pub fn parse_subnet(s: &str) -> Option<Ipv4Net> {
    let (addr, pfx) = s.split_once('/')?;
    let first = addr.split('-').next()?;
    let net = Ipv4Net::new(first.parse().ok()?, pfx.parse().ok()?).ok()?;
    Some(net.trunc())
}

/// The policy view of an endpoint (`None` without a usable IPv4 address).
pub fn member(e: &EndpointState) -> Option<Member> {
    let ip: Ipv4Addr = e.ip_address.parse().ok()?;
    Some(Member {
        id: e.id.clone(),
        tenant: e.tenant_name.clone(),
        group: e.service_name.clone(),
        ip,
        host: e.homing_host.clone(),
    })
}

/// Builds the compiler input from wire objects. Rules that do not parse (netmaster refuses
/// them, so only a store written by something else holds them) are returned beside the input
/// and left out.
pub fn input_from_objects<'a>(
    networks: impl IntoIterator<Item = &'a Network>,
    groups: impl IntoIterator<Item = &'a EndpointGroup>,
    rules: impl IntoIterator<Item = &'a Rule>,
    endpoints: impl IntoIterator<Item = &'a EndpointState>,
) -> (PolicyInput, Vec<(String, RuleError)>) {
    let mut bad = Vec::new();
    let input = PolicyInput {
        networks: networks
            .into_iter()
            .filter_map(|n| {
                Some(NetworkRef {
                    tenant: n.tenant_name.clone(),
                    name: n.network_name.clone(),
                    subnet: parse_subnet(&n.subnet)?,
                })
            })
            .collect(),
        groups: groups
            .into_iter()
            .map(|g| GroupRef {
                tenant: g.tenant_name.clone(),
                name: g.group_name.clone(),
                policies: g.policies.clone(),
            })
            .collect(),
        rules: rules
            .into_iter()
            .filter_map(|r| match RuleSpec::from_model(r) {
                Ok(r) => Some(r),
                Err(e) => {
                    bad.push((r.key.clone(), e));
                    None
                }
            })
            .collect(),
        endpoints: endpoints.into_iter().filter_map(member).collect(),
    };
    (input, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_in_both_contiv_forms() {
        assert_eq!(
            parse_subnet("10.1.0.10-10.1.0.99/24").map(|n| n.to_string()),
            Some("10.1.0.0/24".into())
        );
        assert_eq!(
            parse_subnet("10.1.0.0/16").map(|n| n.to_string()),
            Some("10.1.0.0/16".into())
        );
        assert_eq!(parse_subnet("nonsense"), None);
    }
}
