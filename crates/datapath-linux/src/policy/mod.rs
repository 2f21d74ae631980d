//! [`NftPolicy`]: the nftables [`PolicyDriver`] of the Linux datapath. One `inet` table per tenant
//! router namespace (see [`render`] for its layout); every change is one transaction computed by
//! diff against what this driver installed: endpoint churn only moves set and map elements (sent
//! as one netlink batch, [`nfnl`], with no `nft` process and no rule rendering), and rule changes
//! rewrite only the chains of the groups concerned (one `nft -f` run, [`nft`]).
//!
//! Bridged traffic reaches the `inet` forward hook only with `bridge-nf-call-iptables` = 1 in the
//! namespace: the driver turns it on while a tenant has policy and off when it has none (the
//! network setup leaves it off: each bridged frame then skips a conntrack lookup).
//!
//! Restart: the first apply for a tenant after a start does not know what is installed; it
//! replaces the table in one transaction (packets see the old or the new ruleset, conntrack is
//! untouched, so established connections keep flowing) and carries the rule counters over.

pub mod nfnl;
pub mod nft;
pub mod render;

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use contiv_datapath::{ApplyStats, DatapathError, PolicyCounter, PolicyDriver};
use contiv_policy::TenantPolicy;

use crate::driver::LinuxConfig;
use crate::names;
use render::Ruleset;

/// The nftables policy driver.
pub struct NftPolicy {
    netns_dir: PathBuf,
    ns_prefix: String,
    /// What is installed per tenant, as far as this process knows (absent: unknown).
    installed: Mutex<HashMap<String, Arc<Installed>>>,
    /// Held by `apply` and `admit` while they change the kernel, so each diffs against what the
    /// other installed.
    changing: Mutex<()>,
    /// Source of `Installed::version`: only increases, also across a tenant forgotten and
    /// installed again, so a stale plan never matches a newer record.
    versions: std::sync::atomic::AtomicU64,
    /// Members `admit` added, per tenant: kept in every policy applied until one compiled from
    /// the agent's records includes them (a pass that read the records just before an ADD wrote
    /// its own must not take the new member out again), or [`PIN_TTL`] passed (the ADD failed
    /// and was rolled back).
    pins: Mutex<HashMap<String, Vec<Pin>>>,
}

/// One admitted member.
#[derive(Debug, Clone)]
struct Pin {
    ip: Ipv4Addr,
    group: String,
    at: std::time::Instant,
}

/// How long an admitted member is kept without a policy that includes it.
const PIN_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// What `apply` decided.
enum Planned {
    /// Nothing to change (already installed, or no namespace yet).
    Done(ApplyStats),
    Change(Plan),
}

/// A change to carry out: element batches over netlink, or an `nft -f` batch.
struct Plan {
    ns: PathBuf,
    ns_id: (u64, u64),
    new: Ruleset,
    elements: Option<Vec<nfnl::ElemChange>>,
    batch: String,
    stats: ApplyStats,
}

/// What this driver installed for a tenant, and where.
#[derive(Clone)]
struct Installed {
    /// The namespace's identity (nsfs device and inode): a namespace deleted and made again
    /// under the same name holds nothing of ours.
    ns_id: (u64, u64),
    ir: TenantPolicy,
    rules: Ruleset,
    /// Bumped by every change, so a plan made without the lock sees it is stale.
    version: u64,
}

/// The identity of the namespace mounted at `ns`.
fn ns_identity(ns: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(ns).ok().map(|m| (m.dev(), m.ino()))
}

fn backend(object: String, e: impl std::error::Error + Send + Sync + 'static) -> DatapathError {
    DatapathError::Backend {
        object,
        source: Box::new(e),
    }
}

impl NftPolicy {
    pub fn new(cfg: &LinuxConfig) -> Self {
        NftPolicy {
            netns_dir: cfg.netns_dir.clone(),
            ns_prefix: cfg.ns_prefix.clone(),
            installed: Mutex::new(HashMap::new()),
            changing: Mutex::new(()),
            versions: std::sync::atomic::AtomicU64::new(0),
            pins: Mutex::new(HashMap::new()),
        }
    }

    fn tenant_ns(&self, tenant: &str) -> PathBuf {
        self.netns_dir
            .join(names::tenant_ns(&self.ns_prefix, tenant))
    }

    fn installed(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Installed>>> {
        self.installed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `policy` with the tenant's admitted members it lacks (`None`: nothing to add). Pins the
    /// policy already includes, and expired ones, are dropped.
    fn with_pins(&self, policy: &TenantPolicy) -> Option<TenantPolicy> {
        let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        let list = pins.get_mut(&policy.tenant)?;
        let includes = |p: &Pin| {
            policy.ingress_members.get(&p.ip) == Some(&p.group)
                || policy.egress_members.get(&p.ip) == Some(&p.group)
        };
        list.retain(|p| !includes(p) && p.at.elapsed() < PIN_TTL);
        if list.is_empty() {
            pins.remove(&policy.tenant);
            return None;
        }
        let mut out = policy.clone();
        for p in list.iter().filter(|p| policy.groups.contains_key(&p.group)) {
            out.add_member(&p.group, p.ip, true);
        }
        Some(out)
    }

    fn lock_changing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What `apply` must do to install `policy` over `known` (what this driver installed, if
    /// anything). Touches nothing but reads counters back when the table must be replaced.
    fn plan(
        &self,
        policy: &TenantPolicy,
        known: Option<&Installed>,
    ) -> Result<Planned, DatapathError> {
        let tenant = policy.tenant.as_str();
        let ns = self.tenant_ns(tenant);
        let mut stats = ApplyStats {
            changed: false,
            rules: policy.rule_count(),
            elements: policy.element_count(),
            pending: false,
        };
        let ns_id = match ns_identity(&ns) {
            Some(id) if crate::netns::is_netns(&ns) => id,
            _ => {
                return Ok(Planned::Done(ApplyStats {
                    pending: true,
                    ..Default::default()
                }))
            }
        };
        let known = known.filter(|i| i.ns_id == ns_id);
        if known.is_some_and(|k| k.ir == *policy) {
            return Ok(Planned::Done(stats));
        }
        let new = match known {
            Some(k) if k.ir.groups == policy.groups => {
                render::render_members_onto(policy, &k.rules)
            }
            _ => render::render(policy),
        };
        let elements = known.and_then(|k| render::element_delta(&k.rules, &new));
        let batch = match (&elements, known) {
            (Some(_), _) => String::new(),
            (None, k) => self.batch(&ns, tenant, k.map(|k| &k.rules), &new)?,
        };
        stats.changed = elements.as_ref().is_some_and(|e| !e.is_empty()) || !batch.is_empty();
        Ok(Planned::Change(Plan {
            ns,
            ns_id,
            new,
            elements,
            batch,
            stats,
        }))
    }

    /// Carries a plan out (under `changing`) and records what is installed.
    fn commit(&self, policy: &TenantPolicy, plan: Plan) -> Result<ApplyStats, DatapathError> {
        let tenant = policy.tenant.as_str();
        let Plan {
            ns,
            ns_id,
            new,
            elements,
            mut batch,
            mut stats,
        } = plan;
        if let Some(changes) = elements {
            match nfnl::send(&ns, render::TABLE_NAME, &changes) {
                Ok(()) => {
                    self.record(tenant, ns_id, policy.clone(), new);
                    return Ok(stats);
                }
                Err(e) => {
                    // Nothing was applied (one transaction): replace the table with nft.
                    tracing::warn!(tenant = %tenant, "element batch refused ({e}): replacing the table");
                    batch = self.batch(&ns, tenant, None, &new)?;
                    stats.changed = true;
                }
            }
        }
        if !batch.is_empty() {
            // Bridge netfilter is switched on by `apply` for every non-empty policy, off here.
            if let Err(e) = nft::apply(&ns, &batch) {
                // What is installed is now uncertain: the next apply replaces the table.
                self.installed().remove(tenant);
                return Err(backend(format!("nft policy of tenant {tenant}"), e));
            }
            if new.is_empty() {
                bridge_filtering(&ns, false)?;
            }
        }
        self.record(tenant, ns_id, policy.clone(), new);
        Ok(stats)
    }

    /// Records what is now installed for `tenant`, one version later.
    fn record(&self, tenant: &str, ns_id: (u64, u64), ir: TenantPolicy, rules: Ruleset) {
        let mut installed = self.installed();
        let version = self
            .versions
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        let entry = Installed {
            ns_id,
            ir,
            rules,
            version,
        };
        installed.insert(tenant.to_string(), Arc::new(entry));
    }

    /// The batch for `new`, given what is known to be installed in this namespace; a full
    /// replacement (with the counters read back) when nothing is known.
    fn batch(
        &self,
        ns: &Path,
        tenant: &str,
        known: Option<&Ruleset>,
        new: &Ruleset,
    ) -> Result<String, DatapathError> {
        match known {
            Some(old) => Ok(render::delta_batch(old, new)),
            None => {
                let seed = nft::counters(ns)
                    .map_err(|e| backend(format!("nft counters of tenant {tenant}"), e))?;
                Ok(render::full_batch(new, &seed))
            }
        }
    }
}

/// Policy's need of bridge netfilter in the namespace (see `brnf`).
fn bridge_filtering(ns: &Path, on: bool) -> Result<(), DatapathError> {
    crate::brnf::need(ns, crate::brnf::POLICY, on)
}

impl PolicyDriver for NftPolicy {
    fn apply(&self, policy: &TenantPolicy) -> Result<ApplyStats, DatapathError> {
        // Plan without holding `changing` (an ADD's `admit` must not wait for a rendering);
        // commit under it if nobody changed the tenant meanwhile, else plan again. The last try
        // plans under the lock.
        let pinned = self.with_pins(policy);
        let policy = pinned.as_ref().unwrap_or(policy);
        let ns = self.tenant_ns(&policy.tenant);
        // Checked on every apply, changed or not: nothing else may switch enforcement off.
        let filtering = |stats: ApplyStats| -> Result<ApplyStats, DatapathError> {
            if !stats.pending && !policy.is_empty() {
                bridge_filtering(&ns, true)?;
            }
            Ok(stats)
        };
        for attempt in 0..3 {
            let locked = (attempt == 2).then(|| self.lock_changing());
            let known = self.installed().get(&policy.tenant).cloned();
            let plan = match self.plan(policy, known.as_deref())? {
                Planned::Done(stats) => return filtering(stats),
                Planned::Change(plan) => plan,
            };
            let _changing = match locked {
                Some(l) => l,
                None => self.lock_changing(),
            };
            let now = self.installed().get(&policy.tenant).map(|i| i.version);
            if now != known.as_ref().map(|k| k.version) {
                continue;
            }
            return self.commit(policy, plan).and_then(filtering);
        }
        Err(DatapathError::Invalid {
            object: format!("policy of tenant {}", policy.tenant),
            reason: "changed concurrently three times".into(),
        })
    }

    fn admit(&self, tenant: &str, group: &str, ip: Ipv4Addr) -> Result<bool, DatapathError> {
        let _changing = self.lock_changing();
        let ns = self.tenant_ns(tenant);
        let (ns_id, places) = {
            let installed = self.installed();
            let Some(inst) = installed.get(tenant) else {
                return Ok(false);
            };
            if !inst.ir.groups.contains_key(group) {
                return Ok(false);
            }
            (inst.ns_id, inst.ir.member_places(group))
        };
        if ns_identity(&ns) != Some(ns_id) {
            return Ok(false);
        }
        let add = |set: String, jump: Option<String>| nfnl::ElemChange {
            set,
            op: nfnl::Op::Add,
            elems: vec![(ip, jump)],
        };
        let mut changes = Vec::new();
        if places.set {
            changes.push(add(render::set_name(group), None));
        }
        if places.ingress {
            changes.push(add(
                render::DST_MAP.into(),
                Some(render::chain_name(true, group)),
            ));
        }
        if places.egress {
            changes.push(add(
                render::SRC_MAP.into(),
                Some(render::chain_name(false, group)),
            ));
        }
        nfnl::send(&ns, render::TABLE_NAME, &changes)
            .map_err(|e| backend(format!("nft policy of tenant {tenant}"), e))?;
        let pin = Pin {
            ip,
            group: group.to_string(),
            at: std::time::Instant::now(),
        };
        (self.pins.lock().unwrap_or_else(|p| p.into_inner()))
            .entry(tenant.to_string())
            .or_default()
            .push(pin);
        // Record the member in place (no copy of the rules unless a plan holds them right now).
        let mut installed = self.installed();
        if let Some(entry) = installed.get_mut(tenant) {
            let inst = Arc::make_mut(entry);
            let places = inst.ir.add_member(group, ip, true);
            render::add_member(&mut inst.rules, group, ip, places);
            inst.version = self
                .versions
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                + 1;
        }
        Ok(true)
    }

    fn forget(&self, tenant: &str) {
        self.installed().remove(tenant);
        (self.pins.lock().unwrap_or_else(|p| p.into_inner())).remove(tenant);
    }

    fn counters(&self) -> Result<BTreeMap<String, PolicyCounter>, DatapathError> {
        let tenants: Vec<(String, Arc<BTreeMap<String, String>>)> = self
            .installed()
            .iter()
            .map(|(t, i)| (t.clone(), i.rules.counters.clone()))
            .collect();
        let mut out: BTreeMap<String, PolicyCounter> = BTreeMap::new();
        for (tenant, names) in tenants {
            let ns = self.tenant_ns(&tenant);
            if !crate::netns::is_netns(&ns) {
                continue; // the tenant left this host; its counters went with its namespace
            }
            let values = nft::counters(&ns)
                .map_err(|e| backend(format!("nft counters of tenant {tenant}"), e))?;
            for (name, (packets, bytes)) in values {
                if let Some(rule) = names.get(&name) {
                    let c = out.entry(rule.clone()).or_default();
                    c.packets += packets;
                    c.bytes += bytes;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
