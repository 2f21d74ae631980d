//! The `global` object: cluster-wide settings. Forwarding mode, private subnet and the VLAN/VXLAN
//! ranges cannot change while networks use them; it cannot be deleted.

use contiv_model::{Global, GlobalOper};
use contiv_resources::IdPool;

use super::network::resource_error;
use super::Managed;
use crate::changeset::ChangeSet;
use crate::engine::DEFAULT_PVT_SUBNET;
use crate::error::{ApiError, ApiResult};
use crate::state::State;

fn existing_networks(st: &State, option: &str) -> ApiError {
    let mut parts = Vec::new();
    if !st.vlans.is_empty() {
        parts.push(format!("{} vlans", st.vlans.len()));
    }
    if !st.vxlans.is_empty() {
        parts.push(format!("{} vxlans", st.vxlans.len()));
    }
    ApiError::conflict(format!(
        "Unable to update {option} due to existing {}",
        parts.join(" and ")
    ))
}

/// A new id range must still contain every id in use.
fn check_range(
    spec: &str,
    max: u32,
    kind: &'static str,
    used: &std::collections::BTreeMap<u32, String>,
) -> ApiResult<()> {
    let pool = IdPool::parse_kind(spec, max, kind).map_err(resource_error)?;
    if let Some(outside) = used.keys().find(|id| !pool.contains_range(**id)) {
        return Err(ApiError::conflict(format!(
            "Unable to update {kind} range to {spec}: {kind} {outside} is in use"
        )));
    }
    Ok(())
}

impl Managed for Global {
    fn plan_create(st: &State, g: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        check_range(&g.vlans, 4094, "vlan", &st.vlans)?;
        check_range(&g.vxlans, 16_777_215, "vxlan", &st.vxlans)
    }

    /// Contiv's `netctl global set` sends only what was given: keep the rest.
    fn merge_update(old: &Self, new: &mut Self) {
        let keep = |n: &mut String, o: &String| {
            if n.is_empty() {
                n.clone_from(o);
            }
        };
        keep(&mut new.arp_mode, &old.arp_mode);
        keep(&mut new.fwd_mode, &old.fwd_mode);
        keep(&mut new.network_infra_type, &old.network_infra_type);
        keep(&mut new.pvt_subnet, &old.pvt_subnet);
        keep(&mut new.vlans, &old.vlans);
        keep(&mut new.vxlans, &old.vxlans);
    }

    fn plan_update(st: &State, old: &Self, new: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        let networks = st.vlans.len() + st.vxlans.len();
        if old.fwd_mode != new.fwd_mode {
            if networks > 0 {
                return Err(existing_networks(st, "forwarding mode"));
            }
            if old.fwd_mode == "routing" && !st.bgps.is_empty() {
                return Err(ApiError::conflict("please delete existing Bgp configs"));
            }
        }
        if old.pvt_subnet != new.pvt_subnet
            && (!old.pvt_subnet.is_empty() || new.pvt_subnet != DEFAULT_PVT_SUBNET)
            && networks > 0
        {
            return Err(existing_networks(st, "private subnet"));
        }
        if old.vlans != new.vlans {
            check_range(&new.vlans, 4094, "vlan", &st.vlans)?;
        }
        if old.vxlans != new.vxlans {
            check_range(&new.vxlans, 16_777_215, "vxlan", &st.vxlans)?;
        }
        Ok(())
    }

    fn plan_delete(_st: &State, _old: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        Err(ApiError::conflict("the global object cannot be deleted"))
    }

    fn clear_links(_obj: &mut Self) {}

    fn with_links(_st: &State, g: &Self) -> Self {
        g.clone()
    }

    fn oper(st: &State, _g: &Self) -> GlobalOper {
        let vxlans = st.vxlan_pool();
        GlobalOper {
            cluster_mode: st.cluster_mode.clone(),
            default_network: String::new(),
            free_vxlans_start: vxlans.first_free().map_or(0, i64::from),
            num_networks: i64::try_from(st.vlans.len() + st.vxlans.len()).unwrap_or(i64::MAX),
            vlans_in_use: st.vlan_pool().used_ranges(),
            vxlans_in_use: vxlans.used_ranges(),
        }
    }
}
