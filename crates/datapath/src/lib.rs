//! The datapath driver boundary of the host agent (netplugin): the [`Datapath`] trait, the
//! [`PolicyDriver`] and [`QosDriver`] beside it, the plain data they take and return, and (feature `fake`) a recording in-memory driver for agent tests.
//!
//! Drivers: `contiv-datapath-linux` (kernel bridge + VXLAN), later OVS. The agent owns desired
//! state and reconciles by diff: on start it calls [`Datapath::observe`], compares with what
//! netmaster says, and calls the idempotent methods below to converge.

mod error;
#[cfg(feature = "fake")]
pub mod fake;
mod policy;
mod qos;
pub mod service;
mod types;

pub use error::{BoxError, DatapathError};
pub use policy::{ApplyStats, NoPolicy, PolicyCounter, PolicyDriver};
pub use qos::{EndpointQos, NoQos, QosDriver, QosStats, RateLimit, TenantQos};
pub use service::{NoServices, ServiceDriver, ServicePort, ServiceSpec, TenantServices, Transport};
pub use types::*;

/// One datapath backend on one host.
///
/// Concurrency: implementations are `Send + Sync`; calls may come from several threads and a
/// driver serializes them internally as it needs. Every method is synchronous (drivers that talk
/// to the kernel block on their own threads, never on the caller's async runtime).
///
/// Idempotence: every mutating method may be repeated with the same input and converges to the
/// same state without disturbing traffic that already flows; this is what makes
/// reconcile-after-restart safe.
pub trait Datapath: Send + Sync {
    /// Checks that this driver can realize `net` on this host. Pure: touches nothing.
    /// The Linux driver refuses VLAN encap ([`DatapathError::Unsupported`]).
    fn validate(&self, net: &NetworkSpec) -> Result<(), DatapathError>;

    /// Creates or converges everything `net` needs on this host (validates first).
    /// Idempotent; existing objects are corrected in place, never flushed. On failure the
    /// partial state stays and a later `ensure_network` or `remove_network` completes it.
    fn ensure_network(&self, net: &NetworkSpec) -> Result<(), DatapathError>;

    /// Removes the network, its local endpoints' host-side interfaces and its remote entries.
    /// Best effort: tries everything, reports every failure; absent is success.
    fn remove_network(&self, network_id: &str) -> Result<(), DatapathError>;

    /// Plugs a workload interface into an ensured network. On failure rolls back what this
    /// call created; repeated with the same endpoint it converges and returns the same result.
    fn add_local_endpoint(&self, ep: &LocalEndpoint) -> Result<EndpointAttachment, DatapathError>;

    /// Unplugs the endpoint: afterwards no link, address, route, FDB or neighbour entry of it
    /// remains. Best effort, reports every failure; absent (or a vanished netns) is success.
    fn remove_local_endpoint(&self, ep: &LocalEndpoint) -> Result<(), DatapathError>;

    /// Declarative: after success exactly `remotes` (the endpoints of `network_id` on other
    /// hosts) are reachable, by diff against what is programmed (entries not listed are removed,
    /// changed ones replaced). Entries whose VTEP is this host's are ignored.
    fn set_remote_endpoints(
        &self,
        network_id: &str,
        remotes: &[RemoteEndpoint],
    ) -> Result<(), DatapathError>;

    /// Everything of this driver that exists on the host now. Read only.
    fn observe(&self) -> Result<ObservedState, DatapathError>;

    /// The workload end of each of `eps` (local endpoints as [`Datapath::observe`] reported
    /// them), in the same order: the namespace holding it, named by a path that stays valid
    /// while the namespace lives, and the interface there; or that it is gone; or that it is
    /// alive where no path names it. Read only. Meant for the rare endpoints the agent has no
    /// record of (it may scan every namespace on the host). An error means "cannot tell" for
    /// all of them: the caller then removes nothing.
    fn workload_ends(&self, eps: &[ObservedEndpoint]) -> Result<Vec<WorkloadEnd>, DatapathError>;

    /// Declarative, for a full reconcile (exclusive with endpoint calls): `eps` are every local
    /// endpoint attached now. What the driver keeps per endpoint beside its interface (the Linux
    /// driver's source guard: which MAC and address a port may send from) is replaced by exactly
    /// theirs, atomically per namespace, so an endpoint listed never goes without it and nothing
    /// of an endpoint not listed remains. Idempotent. Default: nothing is kept, nothing to do.
    fn resync_local_endpoints(&self, eps: &[LocalEndpoint]) -> Result<(), DatapathError> {
        let _ = eps;
        Ok(())
    }
}

/// Checks that do not depend on a backend: gateway inside the subnet, sane VNI.
pub fn validate_common(net: &NetworkSpec) -> Result<(), DatapathError> {
    let invalid = |reason: String| DatapathError::Invalid {
        object: format!("network {}", net.id),
        reason,
    };
    if !net.subnet.contains(&net.gateway) {
        return Err(invalid(format!(
            "gateway {} outside subnet {}",
            net.gateway, net.subnet
        )));
    }
    if net.gateway == net.subnet.network() || net.gateway == net.subnet.broadcast() {
        return Err(invalid(format!(
            "gateway {} is not a host address",
            net.gateway
        )));
    }
    if net.encap == Encap::Vxlan && (net.vni == 0 || net.vni >= 1 << 24) {
        return Err(invalid(format!("vxlan id {} outside 1-16777215", net.vni)));
    }
    Ok(())
}
