//! The policy driver boundary, beside [`crate::Datapath`] (netavark's network/firewall driver
//! pair is the model): a driver enforces the compiled policy of each tenant on this host.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use contiv_policy::TenantPolicy;

use crate::DatapathError;

/// Packets and bytes a rule decided on one host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyCounter {
    pub packets: u64,
    pub bytes: u64,
}

/// What an `apply` installed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Whether anything was sent to the datapath (false: already in place).
    pub changed: bool,
    /// Rule entries and set/map elements now installed for the tenant.
    pub rules: usize,
    pub elements: usize,
    /// Nothing could be installed yet (the tenant's forwarding does not exist on this host):
    /// the caller must apply again once it does.
    pub pending: bool,
}

/// Enforces policy on one host.
///
/// Concurrency: `Send + Sync`; calls for different tenants may run in parallel, calls for one
/// tenant are serialized by the caller (the agent's policy loop is the only caller).
///
/// Atomicity: each `apply` takes effect in one step: no packet is ever judged by half of an old
/// and half of a new policy. Established connections keep flowing when a change would deny them
/// (stateful enforcement: only new connections are judged).
pub trait PolicyDriver: Send + Sync {
    /// Makes the enforced policy of `policy.tenant` exactly `policy`, by diff against what this
    /// driver installed (an empty policy removes enforcement). Idempotent. The tenant's
    /// forwarding must exist (its first network ensured): otherwise `Ok` with nothing installed
    /// and `pending` set, and a later call installs it.
    fn apply(&self, policy: &TenantPolicy) -> Result<ApplyStats, DatapathError>;

    /// Adds one new local member of `group` (address `ip`) to what is installed for `tenant`,
    /// at once and atomically, when that group's rules are installed: the fast path of an ADD,
    /// which must not plug a workload whose rules are not in force. Returns `Ok(false)` when the
    /// group's rules are not installed (the caller then waits for a full pass). The next
    /// `apply` finds the member in place.
    fn admit(&self, tenant: &str, group: &str, ip: Ipv4Addr) -> Result<bool, DatapathError>;

    /// Drops what this driver remembers of a tenant that left the host (its datapath is gone).
    fn forget(&self, tenant: &str);

    /// Per-rule counters (`tenant:policy:rule` → counts), summed over the tenants installed.
    fn counters(&self) -> Result<BTreeMap<String, PolicyCounter>, DatapathError>;
}

/// A driver that enforces nothing (a datapath without policy support, or policy turned off).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPolicy;

impl PolicyDriver for NoPolicy {
    fn apply(&self, _policy: &TenantPolicy) -> Result<ApplyStats, DatapathError> {
        Ok(ApplyStats::default())
    }
    fn admit(&self, _tenant: &str, _group: &str, _ip: Ipv4Addr) -> Result<bool, DatapathError> {
        Ok(true)
    }
    fn forget(&self, _tenant: &str) {}
    fn counters(&self) -> Result<BTreeMap<String, PolicyCounter>, DatapathError> {
        Ok(BTreeMap::new())
    }
}
