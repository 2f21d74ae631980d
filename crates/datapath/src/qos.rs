//! The QoS driver boundary, beside [`crate::Datapath`] and [`crate::PolicyDriver`]: a driver
//! enforces each local endpoint's netprofile (Contiv's `bandwidth`/`burst` and `DSCP`) on this
//! host. The agent computes the desired QoS of every local endpoint of a tenant as data
//! ([`TenantQos`]) and hands it over whole; the driver applies only what differs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::DatapathError;

/// A token-bucket limit: `bits_per_sec` sustained, `burst_bytes` at line rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    pub bits_per_sec: u64,
    pub burst_bytes: u32,
}

impl RateLimit {
    /// The burst when the profile gives none: 10 ms at the rate, at least 4 KiB (a few
    /// full-size frames; a burst below one frame would drop every full-size packet).
    pub fn default_burst(bits_per_sec: u64) -> u32 {
        u32::try_from(bits_per_sec / 8 / 100)
            .unwrap_or(u32::MAX)
            .max(4096)
    }

    /// `bits_per_sec` with `burst_bytes`, or the default burst when `None`.
    pub fn new(bits_per_sec: u64, burst_bytes: Option<u32>) -> Self {
        RateLimit {
            bits_per_sec,
            burst_bytes: burst_bytes.unwrap_or_else(|| Self::default_burst(bits_per_sec)),
        }
    }
}

/// What one local endpoint gets. An endpoint whose group has no netprofile (or a profile with
/// neither bandwidth nor DSCP) is listed with `limit` and `dscp` both `None`: the driver then
/// makes sure nothing of a former profile is left on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointQos {
    /// Endpoint id (host-side names derive from it).
    pub id: String,
    /// Network key `tenant:network` (where the host side lives).
    pub network_id: String,
    /// The workload's namespace and interface (the workload's own side of the link).
    pub netns_path: PathBuf,
    pub ifname: String,
    /// Both directions: traffic to the workload and traffic from it.
    pub limit: Option<RateLimit>,
    /// DSCP (1-63) set on every IPv4 packet the workload sends.
    pub dscp: Option<u8>,
}

impl EndpointQos {
    /// Whether anything is enforced on this endpoint.
    pub fn is_set(&self) -> bool {
        self.limit.is_some() || self.dscp.is_some()
    }
}

/// The desired QoS of every local endpoint of one tenant, by endpoint id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantQos {
    pub tenant: String,
    pub endpoints: BTreeMap<String, EndpointQos>,
}

impl TenantQos {
    /// Whether any endpoint of the tenant has something enforced.
    pub fn is_set(&self) -> bool {
        self.endpoints.values().any(EndpointQos::is_set)
    }
}

/// What a QoS `apply` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QosStats {
    /// Endpoints whose kernel state was changed (limits set, changed or removed).
    pub changed: usize,
    /// Whether the DSCP marking of the tenant was rewritten.
    pub dscp_changed: bool,
    /// Endpoints not found on the host yet (their interface is being made or removed): the
    /// caller applies again later.
    pub pending: usize,
}

/// Enforces netprofiles on one host.
///
/// Concurrency: `Send + Sync`; the caller serializes calls for one tenant.
///
/// Idempotence: `apply` diffs against what the driver installed (read back from the kernel
/// the first time it sees an endpoint or tenant, e.g. after a restart), so applying the same
/// desired QoS twice changes nothing, and a limit or mark that is no longer wanted is removed.
/// Traffic is not interrupted by a change (limits are replaced in place, the DSCP marking in
/// one transaction).
pub trait QosDriver: Send + Sync {
    /// Makes the QoS of `qos.tenant`'s local endpoints exactly `qos`. Endpoints of the tenant
    /// not listed are gone (nothing is done for them). Errors of single endpoints do not stop
    /// the others; every failure is reported.
    fn apply(&self, qos: &TenantQos) -> Result<QosStats, DatapathError>;

    /// Drops what the driver remembers of a tenant that left the host.
    fn forget(&self, tenant: &str);
}

/// A driver that enforces nothing (a datapath without QoS support).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoQos;

impl QosDriver for NoQos {
    fn apply(&self, _qos: &TenantQos) -> Result<QosStats, DatapathError> {
        Ok(QosStats::default())
    }
    fn forget(&self, _tenant: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_burst_is_ten_ms_or_4k() {
        assert_eq!(RateLimit::default_burst(10_000_000), 12_500);
        assert_eq!(RateLimit::default_burst(10_000), 4096);
        assert_eq!(RateLimit::new(10_000_000, Some(2048)).burst_bytes, 2048);
        assert_eq!(
            RateLimit::default_burst(u64::MAX),
            u32::MAX,
            "saturates instead of wrapping"
        );
    }
}
