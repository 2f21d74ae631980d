//! Group numbers, allocated and kept: a group's number is carried in metadata (source group) and
//! reg0 (destination group) by every flow of its members and rules, so it must not move when
//! other groups come and go, or one new group would rewrite every other group's flows. Numbers
//! are per tenant (1-65535; 0 means "no group"); the OVS driver keeps this map in its bridge's
//! `external_ids` (as JSON) so a restart renders the same numbers.

use std::collections::{BTreeMap, BTreeSet};

use contiv_policy::{HostPolicy, TenantPolicy};
use serde::{Deserialize, Serialize};

/// Tenant → group → number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupNumbers(BTreeMap<String, BTreeMap<String, u16>>);

/// A saved map that cannot be used as it is.
#[derive(Debug, thiserror::Error)]
pub enum GroupNumbersError {
    #[error("group numbers: not valid JSON of tenant → group → number: {0}")]
    Parse(#[from] serde_json::Error),
    #[error(
        "group numbers: tenant {tenant} gives group {group} the number 0 (reserved for no group)"
    )]
    Zero { tenant: String, group: String },
    #[error("group numbers: tenant {tenant} gives number {number} to two groups")]
    Duplicate { tenant: String, number: u16 },
}

impl GroupNumbers {
    /// The number of `group` in `tenant`, if it has one.
    pub fn get(&self, tenant: &str, group: &str) -> Option<u16> {
        self.0.get(tenant)?.get(group).copied()
    }

    /// Gives every group `policy` names a number, keeping the numbers groups already have (new
    /// groups take the lowest free ones) and releasing those of groups no longer named: their
    /// flows leave in the same change. A tenant with all 65535 numbers taken leaves the rest
    /// without one (rendering reports them as pending).
    pub fn assign(&mut self, policy: &HostPolicy) {
        let gone: Vec<String> = self
            .0
            .keys()
            .filter(|t| !policy.contains_key(*t))
            .cloned()
            .collect();
        for t in gone {
            self.0.remove(&t);
        }
        for (tenant, tp) in policy {
            self.assign_tenant(tenant, Some(tp));
        }
    }

    /// [`GroupNumbers::assign`] for one tenant only (`None`: it has no policy here any more, its
    /// numbers are released); every other tenant's numbers stay as they are. The agent changes
    /// one tenant's policy at a time, and after a restart the tenants not applied yet must keep
    /// the numbers restored from the switch (their flows are still carrying traffic).
    pub fn assign_tenant(&mut self, tenant: &str, policy: Option<&TenantPolicy>) {
        let old = self.0.remove(tenant).unwrap_or_default();
        let Some(tp) = policy else { return };
        let named: BTreeSet<&String> = tp
            .groups
            .keys()
            .chain(tp.ingress_members.values())
            .chain(tp.egress_members.values())
            .collect();
        let mut kept: BTreeMap<String, u16> =
            old.into_iter().filter(|(g, _)| named.contains(g)).collect();
        let used: BTreeSet<u16> = kept.values().copied().collect();
        let mut free = (1..=u16::MAX).filter(|n| !used.contains(n));
        for g in named {
            if kept.contains_key(g.as_str()) {
                continue;
            }
            let Some(n) = free.next() else { break };
            kept.insert(g.clone(), n);
        }
        if !kept.is_empty() {
            self.0.insert(tenant.to_string(), kept);
        }
    }

    pub fn to_json(&self) -> String {
        // A map of strings to maps of strings to numbers always serializes.
        serde_json::to_string_pretty(&self.0).unwrap_or_default()
    }

    /// A saved map, checked: no group numbered 0, no number given twice in a tenant.
    pub fn from_json(text: &str) -> Result<GroupNumbers, GroupNumbersError> {
        let map: BTreeMap<String, BTreeMap<String, u16>> = serde_json::from_str(text)?;
        for (tenant, groups) in &map {
            let mut seen = BTreeSet::new();
            for (group, &n) in groups {
                if n == 0 {
                    return Err(GroupNumbersError::Zero {
                        tenant: tenant.clone(),
                        group: group.clone(),
                    });
                }
                if !seen.insert(n) {
                    return Err(GroupNumbersError::Duplicate {
                        tenant: tenant.clone(),
                        number: n,
                    });
                }
            }
        }
        Ok(GroupNumbers(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contiv_policy::{compile_tenant, GroupRef, Member, NetworkRef, PolicyInput, Scope};
    use std::net::Ipv4Addr;

    /// Tenant t with the given groups, each with one local member and policy p's in-rule (a
    /// group with no rules would not be named by the IR, so would need no number).
    fn policy(groups: &[&str]) -> HostPolicy {
        let input = PolicyInput {
            networks: vec![NetworkRef {
                tenant: "t".into(),
                name: "n".into(),
                subnet: "10.0.0.0/24".parse().unwrap(),
            }],
            groups: groups
                .iter()
                .map(|g| GroupRef {
                    tenant: "t".into(),
                    name: g.to_string(),
                    policies: vec!["p".into()],
                })
                .collect(),
            rules: vec![contiv_policy::RuleSpec::from_model(&contiv_model::Rule {
                tenant_name: "t".into(),
                policy_name: "p".into(),
                rule_id: "1".into(),
                direction: "in".into(),
                action: "deny".into(),
                priority: 1,
                protocol: "icmp".into(),
                ..Default::default()
            })
            .unwrap()],
            endpoints: groups
                .iter()
                .enumerate()
                .map(|(i, g)| Member {
                    id: format!("e{i}"),
                    tenant: "t".into(),
                    group: g.to_string(),
                    ip: Ipv4Addr::new(10, 0, 0, i as u8 + 2),
                    host: "h".into(),
                })
                .collect(),
        };
        [(
            "t".to_string(),
            compile_tenant(&input, Scope::Host("h"), "t"),
        )]
        .into_iter()
        .collect()
    }

    #[test]
    fn numbers_are_kept_new_groups_take_the_lowest_free_and_gone_ones_are_released() {
        let mut g = GroupNumbers::default();
        g.assign(&policy(&["b", "c"]));
        assert_eq!((g.get("t", "b"), g.get("t", "c")), (Some(1), Some(2)));
        g.assign(&policy(&["a", "b", "c"]));
        assert_eq!(
            (g.get("t", "a"), g.get("t", "b"), g.get("t", "c")),
            (Some(3), Some(1), Some(2))
        );
        g.assign(&policy(&["a", "c", "d"]));
        assert_eq!(g.get("t", "b"), None);
        assert_eq!(g.get("t", "d"), Some(1), "b's number is free again");
        assert_eq!((g.get("t", "a"), g.get("t", "c")), (Some(3), Some(2)));
        g.assign(&HostPolicy::new());
        assert_eq!(g, GroupNumbers::default());
    }

    /// After a restart the agent applies one tenant at a time: the first must not release the
    /// numbers restored for the others (their flows still carry traffic and would all be
    /// rewritten, or lost for good by a kill between two applies).
    #[test]
    fn one_tenant_assigned_leaves_the_other_tenants_numbers_alone() {
        let mut g = GroupNumbers::from_json(r#"{"u":{"x":7,"y":3},"t":{"b":5}}"#).unwrap();
        let p = policy(&["a", "b"]);
        g.assign_tenant("t", p.get("t"));
        assert_eq!((g.get("t", "b"), g.get("t", "a")), (Some(5), Some(1)));
        assert_eq!((g.get("u", "x"), g.get("u", "y")), (Some(7), Some(3)));
        g.assign_tenant("t", None);
        assert_eq!(
            g.get("t", "b"),
            None,
            "a tenant without policy releases its own"
        );
        assert_eq!(g.get("u", "x"), Some(7));
    }

    #[test]
    fn the_saved_map_round_trips_and_bad_ones_are_refused() {
        let mut g = GroupNumbers::default();
        g.assign(&policy(&["a", "b"]));
        assert_eq!(GroupNumbers::from_json(&g.to_json()).unwrap(), g);
        for (text, want) in [
            ("[1]", "not valid JSON"),
            (r#"{"t":{"a":0}}"#, "number 0"),
            (r#"{"t":{"a":70000}}"#, "not valid JSON"),
            (r#"{"t":{"a":2,"b":2}}"#, "number 2 to two groups"),
        ] {
            let e = GroupNumbers::from_json(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
