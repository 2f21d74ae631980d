//! [`OvsServices`]: the agent's [`ServiceDriver`] on the OVS pipeline. A tenant's services are
//! kept in the driver's one desired state beside its networks, endpoints and policy; each apply
//! renders the whole state (SRV_PROXY flows, their select groups, the VIPs' ARP answers, the
//! hairpin rewrites) and the switch gets the difference as one bundle holding both the
//! group-mods and the flow-mods. Open connections keep their provider: conntrack holds their
//! NAT, and a group change only picks for new ones.

use contiv_datapath::{DatapathError, ServiceDriver, TenantServices};

use super::{converge, Core, Inner};

/// The OVS service driver; made by [`super::OvsDatapath::service_driver`], it shares the
/// datapath's thread, state and switch.
pub struct OvsServices {
    core: Core,
}

impl OvsServices {
    pub(super) fn new(core: Core) -> OvsServices {
        OvsServices { core }
    }
}

/// Makes `services` the ones installed for `tenant` (`None`: none), converging the switch; on
/// failure the state goes back to what it was (the bundle is atomic: the switch is unchanged).
async fn install(
    i: &mut Inner,
    tenant: &str,
    services: Option<TenantServices>,
) -> Result<usize, DatapathError> {
    let before = match services {
        Some(s) => i.state.services.insert(tenant.to_string(), s),
        None => i.state.services.remove(tenant),
    };
    match converge(i, &format!("services of tenant {tenant}")).await {
        Ok(n) => Ok(n),
        Err(e) => {
            match before {
                Some(s) => i.state.services.insert(tenant.to_string(), s),
                None => i.state.services.remove(tenant),
            };
            Err(e)
        }
    }
}

impl ServiceDriver for OvsServices {
    fn apply(&self, desired: &TenantServices) -> Result<bool, DatapathError> {
        let desired = desired.clone();
        self.core.with(move |i| {
            Box::pin(async move {
                let tenant = desired.tenant.clone();
                // This run's first service pass ends the hold on the previous run's service
                // flows (see `Inner::settled`): converge then even when unchanged.
                let was_settled = i.settled();
                i.hold_services = false;
                let want = (!desired.services.is_empty()).then_some(desired);
                if i.state.services.get(&tenant) == want.as_ref() {
                    if !was_settled && i.settled() {
                        converge(i, &format!("services of tenant {tenant}")).await?;
                    }
                    return Ok(false);
                }
                Ok(install(i, &tenant, want).await? > 0)
            })
        })
    }

    fn forget(&self, tenant: &str) -> Result<(), DatapathError> {
        let tenant = tenant.to_string();
        self.core.with(move |i| {
            Box::pin(async move {
                let was_settled = i.settled();
                i.hold_services = false;
                if i.state.services.contains_key(&tenant) {
                    install(i, &tenant, None).await?;
                } else if !was_settled && i.settled() {
                    converge(i, &format!("services of tenant {tenant}")).await?;
                }
                Ok(())
            })
        })
    }
}
