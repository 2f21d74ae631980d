//! Policies and their rules. A policy may not be deleted while a group uses it (its rules go with
//! it); rules are immutable and must name existing groups/networks, with Contiv's direction rules
//! (in-rules use from-fields, out-rules to-fields; a network excludes an address or a group).

use contiv_model::{
    EndpointGroup, ObjectKind, Policy, PolicyLinkSets, PolicyLinks, PolicyOper, Rule, RuleLinkSets,
    RuleLinks,
};

use super::{count_i64, link, link_set, require_tenant, scoped, Managed};
use crate::changeset::ChangeSet;
use crate::error::{ApiError, ApiResult};
use crate::state::State;
use contiv_api::keys;

fn groups_using<'a>(st: &'a State, p: &'a Policy) -> impl Iterator<Item = &'a EndpointGroup> + 'a {
    super::tenant::tenant_children(&st.epgs, &p.tenant_name)
        .filter_map(|k| st.epgs.get(k))
        .filter(|g| g.policies.contains(&p.policy_name))
}

fn rules_of<'a>(st: &'a State, p: &'a Policy) -> impl Iterator<Item = &'a String> + 'a {
    let prefix = format!("{}:", p.key);
    st.rules
        .range(prefix.clone()..)
        .map(|(k, _)| k)
        .take_while(move |k| k.starts_with(&prefix))
}

impl Managed for Policy {
    fn plan_create(st: &State, p: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        require_tenant(st, &p.tenant_name, true)
    }

    fn plan_delete(st: &State, p: &Self, cs: &mut ChangeSet) -> ApiResult<()> {
        require_tenant(st, &p.tenant_name, true)?;
        if groups_using(st, p).next().is_some() {
            return Err(ApiError::conflict("Policy is being used"));
        }
        for rule in rules_of(st, p) {
            cs.delete(keys::object(ObjectKind::Rule, rule));
        }
        Ok(())
    }

    fn clear_links(obj: &mut Self) {
        obj.link_sets = PolicyLinkSets::default();
        obj.links = PolicyLinks::default();
    }

    fn with_links(st: &State, p: &Self) -> Self {
        let mut out = p.clone();
        out.links.tenant = link(ObjectKind::Tenant, &p.tenant_name);
        let groups: Vec<String> = groups_using(st, p).map(|g| g.key.clone()).collect();
        out.link_sets.endpoint_groups = link_set(ObjectKind::EndpointGroup, &groups);
        out.link_sets.rules = link_set(ObjectKind::Rule, rules_of(st, p));
        out
    }

    fn oper(st: &State, p: &Self) -> PolicyOper {
        let endpoints: Vec<_> = groups_using(st, p)
            .flat_map(|g| {
                st.endpoints
                    .values()
                    .filter(move |ep| ep.group_key() == g.key)
            })
            .map(|ep| ep.to_oper())
            .collect();
        PolicyOper {
            num_endpoints: count_i64(endpoints.len()),
            endpoints,
            policy_violations: 0,
        }
    }
}

fn check_directions(r: &Rule) -> ApiResult<()> {
    let bad = |m: &str| Err(ApiError::bad_request(m));
    match r.direction.as_str() {
        "in" => {
            if !r.to_network.is_empty() || !r.to_endpoint_group.is_empty() {
                return bad("can not specify 'to' parameters in incoming rule");
            }
            if !r.from_network.is_empty() && !r.from_ip_address.is_empty() {
                return bad("can not specify both from network and from ip address");
            }
            if !r.from_network.is_empty() && !r.from_endpoint_group.is_empty() {
                return bad("can not specify both from network and from EndpointGroup");
            }
        }
        "out" => {
            if !r.from_network.is_empty()
                || !r.from_endpoint_group.is_empty()
                || !r.from_ip_address.is_empty()
            {
                return bad("can not specify 'from' parameters in outgoing rule");
            }
            if !r.to_network.is_empty() && !r.to_ip_address.is_empty() {
                return bad("can not specify both to-network and to-ip address");
            }
            if !r.to_network.is_empty() && !r.to_endpoint_group.is_empty() {
                return bad("can not specify both to-network and to-EndpointGroup");
            }
        }
        _ => return bad("invalid direction for the rule"),
    }
    Ok(())
}

fn check_rule_references(st: &State, r: &Rule) -> ApiResult<()> {
    let t = &r.tenant_name;
    for g in [&r.from_endpoint_group, &r.to_endpoint_group] {
        if !g.is_empty() && !st.epgs.contains_key(&scoped(t, g)) {
            return Err(ApiError::not_found("endpoint group not found"));
        }
    }
    if !r.from_network.is_empty() && !st.networks.contains_key(&scoped(t, &r.from_network)) {
        return Err(ApiError::not_found("from Network not found"));
    }
    if !r.to_network.is_empty() && !st.networks.contains_key(&scoped(t, &r.to_network)) {
        return Err(ApiError::not_found("to Network not found"));
    }
    Ok(())
}

impl Managed for Rule {
    fn plan_create(st: &State, r: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        check_directions(r)?;
        check_rule_references(st, r)?;
        if !st
            .policies
            .contains_key(&scoped(&r.tenant_name, &r.policy_name))
        {
            return Err(ApiError::not_found("Policy not found"));
        }
        // What Contiv accepted but cannot be enforced as written (a to-address on an in-rule,
        // a bad range, protocol 300, a port without tcp/udp ...).
        contiv_policy::RuleSpec::from_model(r).map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(())
    }

    /// Contiv's schema fills a missing priority with 1; an explicit `"priority": 0` is refused
    /// (the decoded 0 of a body that names the field with a value).
    fn check_sent(r: &Self, body: &[u8]) -> ApiResult<()> {
        if r.priority != 0 {
            return Ok(());
        }
        let sent = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
            .map(|m| {
                m.iter()
                    .any(|(k, v)| k.eq_ignore_ascii_case("priority") && !v.is_null())
            })
            .unwrap_or(false);
        if sent {
            return Err(ApiError::bad_request("priority 0 is outside 1-100"));
        }
        Ok(())
    }

    fn plan_update(_st: &State, _old: &Self, _new: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        Err(ApiError::conflict(
            "can not update a rule after its created",
        ))
    }

    fn plan_delete(st: &State, r: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        if !st
            .policies
            .contains_key(&scoped(&r.tenant_name, &r.policy_name))
        {
            return Err(ApiError::not_found("Policy not found"));
        }
        Ok(())
    }

    fn clear_links(obj: &mut Self) {
        obj.link_sets = RuleLinkSets::default();
        obj.links = RuleLinks::default();
    }

    fn with_links(_st: &State, r: &Self) -> Self {
        let mut out = r.clone();
        let policy = scoped(&r.tenant_name, &r.policy_name);
        out.link_sets.policies = link_set(ObjectKind::Policy, [&policy]);
        let group = if r.from_endpoint_group.is_empty() {
            &r.to_endpoint_group
        } else {
            &r.from_endpoint_group
        };
        if !group.is_empty() {
            out.links.match_endpoint_group =
                link(ObjectKind::EndpointGroup, &scoped(&r.tenant_name, group));
        }
        out
    }

    fn oper(_st: &State, _r: &Self) -> Self::Oper {
        Default::default()
    }
}
