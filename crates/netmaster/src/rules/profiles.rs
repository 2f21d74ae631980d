//! Tenant-scoped profiles: app profiles (groups of endpoint groups), netprofiles (bandwidth/DSCP
//! for groups) and external contracts groups (ACI contracts for groups).

use contiv_model::{
    AppProfile, AppProfileLinkSets, AppProfileLinks, ExtContractsGroup, ExtContractsGroupLinkSets,
    NetProfile, NetProfileLinkSets, NetProfileLinks, ObjectKind,
};

use super::{link, link_set, require_tenant, scoped, Managed};
use crate::changeset::ChangeSet;
use crate::error::{ApiError, ApiResult};
use crate::state::State;

fn check_app_profile(st: &State, ap: &AppProfile) -> ApiResult<()> {
    require_tenant(st, &ap.tenant_name, true)?;
    for g in &ap.endpoint_groups {
        let key = scoped(&ap.tenant_name, g);
        if !st.epgs.contains_key(&key) {
            return Err(ApiError::not_found(format!(
                "EndpointGroup {key} not found"
            )));
        }
        let other = super::tenant::tenant_children(&st.app_profiles, &ap.tenant_name)
            .filter(|k| **k != ap.key)
            .find(|k| {
                st.app_profiles
                    .get(*k)
                    .is_some_and(|o| o.endpoint_groups.contains(g))
            });
        if let Some(other) = other {
            return Err(ApiError::conflict(format!(
                "EndpointGroup {key} already belongs to appProfile {other}"
            )));
        }
    }
    Ok(())
}

impl Managed for AppProfile {
    fn plan_create(st: &State, ap: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        check_app_profile(st, ap)
    }
    fn plan_update(st: &State, _old: &Self, new: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        check_app_profile(st, new)
    }
    fn plan_delete(st: &State, ap: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        require_tenant(st, &ap.tenant_name, true)
    }
    fn clear_links(obj: &mut Self) {
        obj.link_sets = AppProfileLinkSets::default();
        obj.links = AppProfileLinks::default();
    }
    fn with_links(_st: &State, ap: &Self) -> Self {
        let mut out = ap.clone();
        out.links.tenant = link(ObjectKind::Tenant, &ap.tenant_name);
        let groups: Vec<String> = ap
            .endpoint_groups
            .iter()
            .map(|g| scoped(&ap.tenant_name, g))
            .collect();
        out.link_sets.endpoint_groups = link_set(ObjectKind::EndpointGroup, &groups);
        out
    }
    fn oper(_st: &State, _ap: &Self) -> Self::Oper {
        Default::default()
    }
}

fn groups_with_profile(st: &State, np: &NetProfile) -> Vec<String> {
    super::tenant::tenant_children(&st.epgs, &np.tenant_name)
        .filter(|k| {
            st.epgs
                .get(*k)
                .is_some_and(|g| g.net_profile == np.profile_name)
        })
        .cloned()
        .collect()
}

/// What the agents enforce must parse: Contiv's pattern lets `10 1bps` through, and a negative
/// DSCP or burst (Contiv checked no lower bound) cannot be enforced.
fn check_qos(np: &NetProfile) -> ApiResult<()> {
    np.check_qos().map_err(|e| ApiError::bad_request(e.0))
}

impl Managed for NetProfile {
    fn plan_create(st: &State, np: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        if np.tenant_name.is_empty() {
            return Err(ApiError::bad_request("Invalid tenant name"));
        }
        if np.burst == 1 {
            return Err(ApiError::bad_request(
                "Invalid Burst size. burst size > 1500 bytes",
            ));
        }
        check_qos(np)?;
        require_tenant(st, &np.tenant_name, false)
    }
    fn plan_update(_st: &State, _old: &Self, new: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        if new.burst == 1 {
            return Err(ApiError::bad_request(
                "Invalid Burst size. burst size must be > 1500 bytes",
            ));
        }
        check_qos(new)
    }
    fn plan_delete(st: &State, np: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        require_tenant(st, &np.tenant_name, true)?;
        if !groups_with_profile(st, np).is_empty() {
            return Err(ApiError::conflict("NetProfile is being used"));
        }
        Ok(())
    }
    fn clear_links(obj: &mut Self) {
        obj.link_sets = NetProfileLinkSets::default();
        obj.links = NetProfileLinks::default();
    }
    fn with_links(st: &State, np: &Self) -> Self {
        let mut out = np.clone();
        out.links.tenant = link(ObjectKind::Tenant, &np.tenant_name);
        out.link_sets.endpoint_groups =
            link_set(ObjectKind::EndpointGroup, &groups_with_profile(st, np));
        out
    }
    fn oper(_st: &State, _np: &Self) -> Self::Oper {
        Default::default()
    }
}

fn groups_with_contracts(st: &State, c: &ExtContractsGroup) -> Vec<String> {
    super::tenant::tenant_children(&st.epgs, &c.tenant_name)
        .filter(|k| {
            st.epgs
                .get(*k)
                .is_some_and(|g| g.ext_contracts_grps.contains(&c.contracts_group_name))
        })
        .cloned()
        .collect()
}

fn check_contracts(st: &State, c: &ExtContractsGroup) -> ApiResult<()> {
    require_tenant(st, &c.tenant_name, true)?;
    match c.contracts_type.as_str() {
        "provided" | "consumed" => Ok(()),
        other => Err(ApiError::bad_request(format!(
            "contracts type {other:?} invalid, must be provided or consumed"
        ))),
    }
}

impl Managed for ExtContractsGroup {
    fn plan_create(st: &State, c: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        check_contracts(st, c)
    }
    fn plan_update(st: &State, _old: &Self, new: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        check_contracts(st, new)
    }
    fn plan_delete(st: &State, c: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        if !groups_with_contracts(st, c).is_empty() {
            return Err(ApiError::conflict(format!(
                "External contracts group {} is being used",
                c.contracts_group_name
            )));
        }
        Ok(())
    }
    fn clear_links(obj: &mut Self) {
        obj.link_sets = ExtContractsGroupLinkSets::default();
    }
    fn with_links(st: &State, c: &Self) -> Self {
        let mut out = c.clone();
        out.link_sets.endpoint_groups =
            link_set(ObjectKind::EndpointGroup, &groups_with_contracts(st, c));
        out
    }
    fn oper(_st: &State, _c: &Self) -> Self::Oper {
        Default::default()
    }
}
