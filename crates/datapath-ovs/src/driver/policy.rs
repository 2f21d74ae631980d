//! [`OvsPolicy`]: the agent's [`PolicyDriver`] on the OVS pipeline. A tenant's policy IR is kept
//! in the driver's one desired state beside its networks and endpoints; every change renders the
//! whole state (policy flows in DST_GRP / POLICY_OUT / POLICY_IN, each local member's source
//! group in VLAN) and the switch gets the difference as one bundle, so a packet meets either the
//! old or the new policy. Stateful through conntrack (a zone per tenant): established and
//! related traffic skips the policy tables (CT_STATE), so a later change never cuts an open
//! connection. Per-rule counters are the flow stats of the rule's flows, found by cookie.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use contiv_datapath::{ApplyStats, DatapathError, PolicyCounter, PolicyDriver};
use contiv_policy::TenantPolicy;

use super::{backend, converge, Core, Inner};
use crate::pipeline::{Category, COOKIE_CATEGORY_MASK};

/// Members `admit` added, per tenant: kept in every policy applied until one compiled from the
/// agent's records includes them (a pass that read the records just before an ADD wrote its own
/// must not take the new member out again), or [`PIN_TTL`] passed (the ADD failed and was
/// rolled back).
pub(super) type Pins = BTreeMap<String, Vec<Pin>>;

#[derive(Debug, Clone)]
pub(super) struct Pin {
    ip: Ipv4Addr,
    group: String,
    at: Instant,
}

/// How long an admitted member is kept without a policy that includes it.
const PIN_TTL: Duration = Duration::from_secs(30);

/// The OVS policy driver; made by [`super::OvsDatapath::policy_driver`], it shares the
/// datapath's thread, state and switch.
pub struct OvsPolicy {
    core: Core,
}

impl OvsPolicy {
    pub(super) fn new(core: Core) -> OvsPolicy {
        OvsPolicy { core }
    }
}

/// `policy` with the tenant's admitted members it lacks. Pins the policy already includes, and
/// expired ones, are dropped.
fn with_pins(pins: &mut Pins, policy: &TenantPolicy) -> TenantPolicy {
    let mut out = policy.clone();
    let Some(list) = pins.get_mut(&policy.tenant) else {
        return out;
    };
    let includes = |p: &Pin| {
        policy.ingress_members.get(&p.ip) == Some(&p.group)
            || policy.egress_members.get(&p.ip) == Some(&p.group)
    };
    list.retain(|p| !includes(p) && p.at.elapsed() < PIN_TTL);
    for p in list.iter().filter(|p| policy.groups.contains_key(&p.group)) {
        out.add_member(&p.group, p.ip, true);
    }
    if list.is_empty() {
        pins.remove(&policy.tenant);
    }
    out
}

/// Makes `policy` the one installed for its tenant (`None`: none), converging the switch; on
/// failure the state goes back to what it was (the bundle is atomic: the switch is unchanged).
async fn install(
    i: &mut Inner,
    tenant: &str,
    policy: Option<TenantPolicy>,
) -> Result<usize, DatapathError> {
    let before = match policy {
        Some(p) => i.state.policy.insert(tenant.to_string(), p),
        None => i.state.policy.remove(tenant),
    };
    i.state.assign_groups();
    match converge(i, &format!("policy of tenant {tenant}")).await {
        Ok(n) => Ok(n),
        Err(e) => {
            match before {
                Some(p) => i.state.policy.insert(tenant.to_string(), p),
                None => i.state.policy.remove(tenant),
            };
            i.state.assign_groups();
            Err(e)
        }
    }
}

impl PolicyDriver for OvsPolicy {
    fn apply(&self, policy: &TenantPolicy) -> Result<ApplyStats, DatapathError> {
        let policy = policy.clone();
        self.core.with(move |i| {
            Box::pin(async move {
                let tenant = policy.tenant.clone();
                // The tenant's number (metadata and conntrack zone) comes with its first
                // network: without it there is nowhere to install.
                if !i.state.has_tenant(&tenant) {
                    return Ok(ApplyStats {
                        pending: true,
                        ..Default::default()
                    });
                }
                // The first apply of each tenant in this run may end the hold on the previous
                // run's flows (see `Inner::settled`): converge then even when unchanged.
                let was_settled = i.settled();
                i.applied.insert(tenant.clone());
                let policy = with_pins(&mut i.pins, &policy);
                let stats = ApplyStats {
                    changed: false,
                    rules: policy.rule_count(),
                    elements: policy.element_count(),
                    pending: false,
                };
                // A policy without rules enforces nothing: the tenant simply has none.
                let want = (!policy.is_empty()).then_some(policy);
                if i.state.policy.get(&tenant) == want.as_ref() {
                    if !was_settled && i.settled() {
                        converge(i, &format!("policy of tenant {tenant}")).await?;
                    }
                    return Ok(stats);
                }
                let sent = install(i, &tenant, want).await?;
                Ok(ApplyStats {
                    changed: sent > 0,
                    ..stats
                })
            })
        })
    }

    fn admit(&self, tenant: &str, group: &str, ip: Ipv4Addr) -> Result<bool, DatapathError> {
        let (tenant, group) = (tenant.to_string(), group.to_string());
        self.core.with(move |i| {
            Box::pin(async move {
                let Some(installed) = i.state.policy.get(&tenant) else {
                    return Ok(false);
                };
                if !installed.groups.contains_key(&group) || !i.state.has_tenant(&tenant) {
                    return Ok(false);
                }
                let mut p = installed.clone();
                p.add_member(&group, ip, true);
                install(i, &tenant, Some(p)).await?;
                i.pins.entry(tenant).or_default().push(Pin {
                    ip,
                    group,
                    at: Instant::now(),
                });
                Ok(true)
            })
        })
    }

    fn forget(&self, tenant: &str) {
        let tenant = tenant.to_string();
        let out = self.core.with(move |i| {
            Box::pin(async move {
                i.pins.remove(&tenant);
                if i.state.policy.contains_key(&tenant) {
                    install(i, &tenant, None).await?;
                }
                Ok(())
            })
        });
        if let Err(e) = out {
            // The next change of anything renders without the tenant's policy again.
            tracing::warn!("ovs policy: flows of a tenant that left stay for now: {e}");
        }
    }

    fn counters(&self) -> Result<BTreeMap<String, PolicyCounter>, DatapathError> {
        self.core.with(|i| {
            Box::pin(async move {
                let stats =
                    i.sw.flow_stats()
                        .await
                        .map_err(|e| backend("ovs policy counters", e))?;
                let policy = (Category::Policy as u64) << 40;
                let mut out: BTreeMap<String, PolicyCounter> = BTreeMap::new();
                for s in stats
                    .iter()
                    .filter(|s| s.cookie & COOKIE_CATEGORY_MASK == policy)
                {
                    // Every flow of a rule (each peer block, each direction) adds to it.
                    let Some(rule) = i.state.rules.get(&(s.cookie & ((1 << 40) - 1))) else {
                        continue;
                    };
                    let c = out.entry(rule.to_string()).or_default();
                    c.packets += s.packet_count;
                    c.bytes += s.byte_count;
                }
                Ok(out)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contiv_policy::{compile_tenant, GroupRef, Member, NetworkRef, PolicyInput, RuleSpec};

    fn policy(members: &[(u8, &str)]) -> TenantPolicy {
        let rule = contiv_model::Rule {
            tenant_name: "demo".into(),
            policy_name: "db-in".into(),
            rule_id: "1".into(),
            direction: "in".into(),
            action: "deny".into(),
            priority: 1,
            ..Default::default()
        };
        let input = PolicyInput {
            networks: vec![NetworkRef {
                tenant: "demo".into(),
                name: "app".into(),
                subnet: "10.10.0.0/24".parse().unwrap(),
            }],
            groups: vec![GroupRef {
                tenant: "demo".into(),
                name: "db".into(),
                policies: vec!["db-in".into()],
            }],
            rules: vec![RuleSpec::from_model(&rule).unwrap()],
            endpoints: members
                .iter()
                .map(|(n, g)| Member {
                    id: format!("ep{n}"),
                    tenant: "demo".into(),
                    group: g.to_string(),
                    ip: Ipv4Addr::new(10, 10, 0, *n),
                    host: "a".into(),
                })
                .collect(),
        };
        compile_tenant(&input, contiv_policy::Scope::Host("a"), "demo")
    }

    fn pin(n: u8, age: Duration) -> Pin {
        Pin {
            ip: Ipv4Addr::new(10, 10, 0, n),
            group: "db".into(),
            at: Instant::now().checked_sub(age).unwrap_or_else(Instant::now),
        }
    }

    #[test]
    fn an_admitted_member_stays_until_a_policy_includes_it_or_its_pin_expires() {
        let mut pins = Pins::new();
        pins.insert(
            "demo".into(),
            vec![pin(3, Duration::ZERO), pin(4, PIN_TTL * 2)],
        );
        // A pass compiled before the ADD was recorded: the fresh pin's member is kept in, the
        // expired one (its ADD failed long ago) is not.
        let stale = policy(&[(2, "db")]);
        let out = with_pins(&mut pins, &stale);
        let ip = |n| Ipv4Addr::new(10, 10, 0, n);
        assert_eq!(
            out.ingress_members.get(&ip(3)).map(String::as_str),
            Some("db")
        );
        assert!(!out.ingress_members.contains_key(&ip(4)));
        assert_eq!(pins["demo"].len(), 1);
        // A pass that includes it: the pin is done.
        let fresh = policy(&[(2, "db"), (3, "db")]);
        assert_eq!(with_pins(&mut pins, &fresh), fresh);
        assert!(pins.is_empty());
    }
}
