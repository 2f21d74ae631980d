//! First-start defaults: the `global` object (from netmaster's flags) and the `default` tenant
//! exist from the first start on, as in Contiv.

use contiv_model::{Global, ModelObject, Tenant};
use tracing::{info, warn};

use super::Engine;
use crate::error::ApiResult;
use crate::state::GLOBAL_KEY;

pub const DEFAULT_TENANT: &str = "default";
pub const DEFAULT_VLANS: &str = "1-4094";
pub const DEFAULT_VXLANS: &str = "1-10000";
pub const DEFAULT_PVT_SUBNET: &str = "172.19.0.0/16";
pub const DEFAULT_ARP_MODE: &str = "proxy";

/// What netmaster's flags say about the cluster.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// `--fwdmode`: bridge | routing
    pub fwd_mode: String,
    /// `--infra`: default | aci | aci-opflex
    pub infra: String,
    /// `--mode`: docker | kubernetes | swarm-mode | test
    pub cluster_mode: String,
    /// `--netmode`: vlan | vxlan (default encap the agents use for the default network)
    pub net_mode: String,
    /// `--node-grace`: a node silent this long is gone (record and endpoints removed).
    pub node_grace: std::time::Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            fwd_mode: "bridge".into(),
            infra: "default".into(),
            cluster_mode: "kubernetes".into(),
            net_mode: "vxlan".into(),
            node_grace: std::time::Duration::from_secs(contiv_api::agent::NODE_TTL_SECS),
        }
    }
}

pub(super) async fn ensure_defaults(engine: &Engine) -> ApiResult<()> {
    let (has_global, has_tenant, stored) = engine.read(|st| {
        (
            st.globals.contains_key(GLOBAL_KEY),
            st.tenants.contains_key(DEFAULT_TENANT),
            st.global(),
        )
    });
    let opts = engine.options().clone();
    if !has_global {
        let mut g = Global {
            key: GLOBAL_KEY.into(),
            name: GLOBAL_KEY.into(),
            network_infra_type: opts.infra.clone(),
            fwd_mode: opts.fwd_mode.clone(),
            arp_mode: DEFAULT_ARP_MODE.into(),
            pvt_subnet: DEFAULT_PVT_SUBNET.into(),
            vlans: DEFAULT_VLANS.into(),
            vxlans: DEFAULT_VXLANS.into(),
        };
        g.validate()?;
        engine.upsert(GLOBAL_KEY, g).await?;
        info!(fwd_mode = %opts.fwd_mode, infra = %opts.infra, "created the global object");
    } else if stored.fwd_mode != opts.fwd_mode {
        warn!(stored = %stored.fwd_mode, flag = %opts.fwd_mode,
            "--fwdmode differs from the stored global fwdMode; the stored value stays (change it with `netctl global set`)");
    }
    if !has_tenant {
        let t = Tenant {
            key: DEFAULT_TENANT.into(),
            tenant_name: DEFAULT_TENANT.into(),
            ..Default::default()
        };
        engine.upsert(DEFAULT_TENANT, t).await?;
        info!("created the default tenant");
    }
    Ok(())
}
