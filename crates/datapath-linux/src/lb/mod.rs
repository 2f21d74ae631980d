//! The Linux service balancer: per tenant namespace, the VIPs as /32 addresses on its loopback
//! (so the namespace answers ARP for them on every network and owns what no provider takes) and
//! the nftables table `ip contiv_lb` (see [`render`]) replaced whole per change. Bridged replies
//! of providers are un-NATed by conntrack, which needs bridge netfilter on (see `brnf`).

pub mod conntrack;
pub mod render;

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use contiv_datapath::{DatapathError, ServiceDriver, TenantServices, Transport};

use crate::driver::LinuxConfig;
use crate::policy::nft;
use crate::{brnf, names, netns, LinuxError};

/// Service balancing in the tenant namespaces of one host.
pub struct LinuxServices {
    netns_dir: PathBuf,
    ns_prefix: String,
    /// What each tenant has, as last applied (an agent restart re-applies once: atomic anyway).
    applied: Mutex<HashMap<String, TenantServices>>,
}

fn backend(object: String, e: impl std::error::Error + Send + Sync + 'static) -> DatapathError {
    DatapathError::Backend {
        object,
        source: Box::new(e),
    }
}

impl LinuxServices {
    pub fn new(cfg: &LinuxConfig) -> Self {
        LinuxServices {
            netns_dir: cfg.netns_dir.clone(),
            ns_prefix: cfg.ns_prefix.clone(),
            applied: Mutex::new(HashMap::new()),
        }
    }

    fn tenant_ns(&self, tenant: &str) -> PathBuf {
        self.netns_dir
            .join(names::tenant_ns(&self.ns_prefix, tenant))
    }

    fn applied(&self) -> MutexGuard<'_, HashMap<String, TenantServices>> {
        self.applied.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Every (VIP, port, transport, provider) binding `before` has and `after` does not: a provider
/// removed from a service, a port removed, or a whole service gone.
pub fn gone(before: &TenantServices, after: &TenantServices) -> Vec<conntrack::Gone> {
    let bindings = |t: &TenantServices| -> BTreeSet<conntrack::Gone> {
        let mut out = BTreeSet::new();
        for svc in &t.services {
            for p in &svc.ports {
                for &provider in &svc.providers {
                    out.insert(match p.transport {
                        Transport::Tcp => conntrack::Gone::tcp(svc.vip, p.port, provider),
                        Transport::Udp => conntrack::Gone::udp(svc.vip, p.port, provider),
                    });
                }
            }
        }
        out
    };
    bindings(before)
        .difference(&bindings(after))
        .copied()
        .collect()
}

/// Deletes the conntrack bindings of removed providers (see [`conntrack`]); a failure is logged
/// only: the table is applied, and the bindings time out on their own.
fn forget_gone(ns: &std::path::Path, tenant: &str, gone: &[conntrack::Gone]) {
    if gone.is_empty() {
        return;
    }
    match conntrack::forget_providers(ns, gone) {
        Ok(n) => tracing::debug!(
            tenant,
            removed = gone.len(),
            deleted = n,
            "conntrack of removed providers"
        ),
        Err(e) => {
            tracing::warn!(tenant, error = %e, "conntrack clean-up of removed providers failed")
        }
    }
}

/// Makes the /32 addresses on the namespace's loopback exactly `vips` (127.0.0.0/8 untouched).
fn converge_vips(ns: &std::path::Path, vips: BTreeSet<Ipv4Addr>) -> Result<(), LinuxError> {
    netns::run_in(ns, |h| async move {
        let nl = crate::nl::Nl {
            h,
            ns: ns.display().to_string(),
        };
        let lo = nl.need_link("lo").await?;
        let mut have = BTreeSet::new();
        for (ip, prefix, msg) in nl.addrs(lo.index).await? {
            let IpAddr::V4(v4) = ip else { continue };
            if v4.is_loopback() || prefix != 32 {
                continue;
            }
            if vips.contains(&v4) {
                have.insert(v4);
            } else {
                nl.h.address()
                    .del(msg)
                    .execute()
                    .await
                    .map_err(|e| LinuxError::Netlink {
                        op: "delete VIP",
                        object: v4.to_string(),
                        ns: nl.ns.clone(),
                        source: Box::new(e),
                    })?;
            }
        }
        for vip in vips.difference(&have) {
            nl.add_addr("lo", lo.index, *vip, 32).await?;
        }
        Ok(())
    })
}

impl ServiceDriver for LinuxServices {
    fn apply(&self, desired: &TenantServices) -> Result<bool, DatapathError> {
        let tenant = &desired.tenant;
        let ns = self.tenant_ns(tenant);
        if !ns.exists() {
            return Err(DatapathError::NetworkNotFound(format!(
                "tenant {tenant} (no namespace on this host)"
            )));
        }
        let any = desired.services.iter().any(|s| !s.providers.is_empty());
        // Checked on every apply: network setup turns bridge netfilter off in a new namespace.
        brnf::need(&ns, brnf::SERVICES, any)?;
        if self.applied().get(tenant) == Some(desired) {
            return Ok(false);
        }
        let vips = desired.services.iter().map(|s| s.vip).collect();
        converge_vips(&ns, vips)
            .map_err(|e| backend(format!("service VIPs of tenant {tenant}"), e))?;
        if let Err(e) = nft::apply(&ns, &render::replace_batch(desired)) {
            self.applied().remove(tenant);
            return Err(backend(format!("service balancing of tenant {tenant}"), e));
        }
        let before = self.applied().insert(tenant.clone(), desired.clone());
        if let Some(before) = before {
            forget_gone(&ns, tenant, &gone(&before, desired));
        }
        Ok(true)
    }

    fn forget(&self, tenant: &str) -> Result<(), DatapathError> {
        let ns = self.tenant_ns(tenant);
        if !ns.exists() {
            self.applied().remove(tenant);
            return Ok(());
        }
        let before = self.applied().remove(tenant);
        nft::apply(&ns, &render::remove_batch())
            .map_err(|e| backend(format!("service balancing of tenant {tenant}"), e))?;
        if let Some(before) = before {
            forget_gone(&ns, tenant, &gone(&before, &TenantServices::default()));
        }
        converge_vips(&ns, BTreeSet::new())
            .map_err(|e| backend(format!("service VIPs of tenant {tenant}"), e))?;
        brnf::need(&ns, brnf::SERVICES, false)
    }
}

#[cfg(test)]
mod tests {
    use contiv_datapath::{ServicePort, ServiceSpec};

    use super::*;

    /// (name, VIP, ports, providers)
    type Svc<'a> = (&'a str, [u8; 4], &'a [&'a str], &'a [[u8; 4]]);

    fn tenant(services: &[Svc<'_>]) -> TenantServices {
        TenantServices {
            tenant: "t".into(),
            services: services
                .iter()
                .map(|(name, vip, ports, providers)| ServiceSpec {
                    name: (*name).into(),
                    vip: Ipv4Addr::from(*vip),
                    ports: ports.iter().filter_map(|p| ServicePort::parse(p)).collect(),
                    providers: providers.iter().map(|p| Ipv4Addr::from(*p)).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn gone_is_every_binding_the_new_table_lacks() {
        let (vip, dns) = ([10, 1, 0, 100], [10, 1, 0, 101]);
        let before = tenant(&[
            (
                "t:web",
                vip,
                &["80:8080:TCP"],
                &[[10, 1, 0, 2], [10, 1, 0, 3]],
            ),
            ("t:dns", dns, &["53:5353:UDP"], &[[10, 1, 0, 4]]),
        ]);
        let after = tenant(&[("t:web", vip, &["80:8080:TCP"], &[[10, 1, 0, 3]])]);
        assert_eq!(
            gone(&before, &after),
            vec![
                conntrack::Gone::tcp(vip.into(), 80, [10, 1, 0, 2].into()),
                conntrack::Gone::udp(dns.into(), 53, [10, 1, 0, 4].into()),
            ]
        );
        assert!(gone(&after, &before).is_empty(), "additions remove nothing");
        assert!(gone(&before, &before).is_empty());
    }
}
