//! Tenants: immutable after creation; delete refused while the tenant has children.

use contiv_model::{ObjectKind, Tenant, TenantLinkSets, TenantOper};

use super::{count_i64, link_set, Managed};
use crate::changeset::ChangeSet;
use crate::error::{ApiError, ApiResult};
use crate::state::State;

/// Keys of `table`'s objects that belong to `tenant` (keys start with "tenant:").
pub(crate) fn children<'a, T>(
    table: &'a std::collections::BTreeMap<String, T>,
    tenant: &str,
) -> impl Iterator<Item = &'a String> + 'a {
    let prefix = format!("{tenant}:");
    table
        .range(prefix.clone()..)
        .map(|(k, _)| k)
        .take_while(move |k| k.starts_with(&prefix))
}

impl Managed for Tenant {
    fn plan_create(_st: &State, _new: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        Ok(())
    }

    fn plan_delete(st: &State, old: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        let name = &old.tenant_name;
        let checks: [(usize, &str); 6] = [
            (
                children(&st.app_profiles, name).count(),
                "cannot delete {t}, has {n} app profiles",
            ),
            (
                children(&st.epgs, name).count(),
                "cannot delete {t} has {n} endpoint groups",
            ),
            (
                children(&st.policies, name).count(),
                "cannot delete {t} has {n} policies",
            ),
            (
                children(&st.net_profiles, name).count(),
                "Cannot delete {t} has {n} netprofiles",
            ),
            (
                children(&st.service_lbs, name).count(),
                "cannot delete {t} has {n} services",
            ),
            (
                children(&st.networks, name).count(),
                "cannot delete {t} has {n} networks",
            ),
        ];
        for (n, msg) in checks {
            if n != 0 {
                let text = msg.replace("{t}", name).replace("{n}", &n.to_string());
                return Err(ApiError::conflict(text));
            }
        }
        Ok(())
    }

    fn clear_links(obj: &mut Self) {
        obj.link_sets = TenantLinkSets::default();
    }

    fn with_links(st: &State, obj: &Self) -> Self {
        let t = &obj.tenant_name;
        let mut out = obj.clone();
        out.link_sets = TenantLinkSets {
            app_profiles: link_set(ObjectKind::AppProfile, children(&st.app_profiles, t)),
            endpoint_groups: link_set(ObjectKind::EndpointGroup, children(&st.epgs, t)),
            net_profiles: link_set(ObjectKind::NetProfile, children(&st.net_profiles, t)),
            networks: link_set(ObjectKind::Network, children(&st.networks, t)),
            policies: link_set(ObjectKind::Policy, children(&st.policies, t)),
            servicelbs: link_set(ObjectKind::ServiceLb, children(&st.service_lbs, t)),
            ..Default::default()
        };
        out
    }

    fn oper(st: &State, obj: &Self) -> TenantOper {
        let t = &obj.tenant_name;
        let networks: Vec<_> = children(&st.networks, t)
            .filter_map(|k| st.networks.get(k))
            .map(|n| super::network_oper_of(st, n))
            .collect();
        let epgs: Vec<_> = children(&st.epgs, t)
            .filter_map(|k| st.epgs.get(k))
            .map(|g| <contiv_model::EndpointGroup as Managed>::oper(st, g))
            .collect();
        let policies: Vec<_> = children(&st.policies, t)
            .filter_map(|k| st.policies.get(k))
            .map(|p| <contiv_model::Policy as Managed>::oper(st, p))
            .collect();
        let servicelbs: Vec<_> = children(&st.service_lbs, t)
            .filter_map(|k| st.service_lbs.get(k))
            .map(|s| <contiv_model::ServiceLb as Managed>::oper(st, s))
            .collect();
        let endpoints: Vec<_> = st
            .endpoints
            .values()
            .filter(|ep| ep.tenant() == t)
            .map(|ep| ep.to_oper())
            .collect();
        TenantOper {
            total_networks: count_i64(networks.len()),
            total_epgs: count_i64(epgs.len()),
            total_policies: count_i64(policies.len()),
            total_servicelbs: count_i64(servicelbs.len()),
            total_app_profiles: count_i64(children(&st.app_profiles, t).count()),
            total_netprofiles: count_i64(children(&st.net_profiles, t).count()),
            total_endpoints: count_i64(endpoints.len()),
            networks,
            endpoint_groups: epgs,
            policies,
            servicelbs,
            endpoints,
        }
    }
}

pub(crate) use children as tenant_children;
