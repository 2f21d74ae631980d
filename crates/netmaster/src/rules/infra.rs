//! Per-host and fabric objects: BGP peering of a host (routing mode) and the ACI gateway settings.

use contiv_model::{AciGw, AciGwOper, Bgp, BgpOper};

use super::{count_i64, Managed};
use crate::changeset::ChangeSet;
use crate::error::{ApiError, ApiResult};
use crate::state::State;

impl Managed for Bgp {
    fn plan_create(_st: &State, b: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        if b.hostname.is_empty() {
            return Err(ApiError::bad_request("Invalid host name"));
        }
        Ok(())
    }
    fn plan_update(st: &State, _old: &Self, new: &Self, cs: &mut ChangeSet) -> ApiResult<()> {
        Self::plan_create(st, new, cs)
    }
    fn plan_delete(_st: &State, _b: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        Ok(())
    }
    fn clear_links(_obj: &mut Self) {}
    fn with_links(_st: &State, b: &Self) -> Self {
        b.clone()
    }
    /// Peering status comes from the host agents (BGP mode); until one reports, it is unknown.
    fn oper(_st: &State, _b: &Self) -> BgpOper {
        BgpOper::default()
    }
}

impl Managed for AciGw {
    fn plan_create(_st: &State, _a: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        Ok(())
    }
    fn plan_update(_st: &State, _old: &Self, _new: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        Ok(())
    }
    fn plan_delete(st: &State, _a: &Self, _cs: &mut ChangeSet) -> ApiResult<()> {
        let n = st.app_profiles.len();
        if n != 0 {
            return Err(ApiError::conflict(format!(
                "{n} App-Profiles found. Delete them first"
            )));
        }
        Ok(())
    }
    fn clear_links(_obj: &mut Self) {}
    fn with_links(_st: &State, a: &Self) -> Self {
        a.clone()
    }
    fn oper(st: &State, _a: &Self) -> AciGwOper {
        AciGwOper {
            num_app_profiles: count_i64(st.app_profiles.len()),
        }
    }
}
