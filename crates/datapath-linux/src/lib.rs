//! The Linux kernel datapath driver: bridge + VXLAN over netlink, tenants isolated in their own
//! router network namespaces (this kernel has no VRF module).
//!
//! Per host (the "host namespace", where the underlay interface and VTEP address live):
//!
//! ```text
//!  host netns: underlay (vtep ip) ── UDP 4789 sockets of every VXLAN device below
//!  tenant netns <prefix>-t-<hash(tenant)>   (ip_forward=1: the tenant's router)
//!    bridge mode : ctvbr<vni> (gateway ip, mac 00:00:11:11:11:11)
//!                    ├─ ctvvx<vni> VXLAN (nolearning, neigh_suppress, static FDB)
//!                    └─ ctve<hash(ep id)> ─── veth ─── eth0 in the workload netns
//!    routing mode: ctvvx<vni> (gateway/32, mac 02:cc:<vtep>)   ctve… host veth: <ip>/32 route,
//!                  proxy_arp; remote <ip>/32 via <vtep> dev ctvvx<vni> onlink
//! ```
//!
//! Invariant: a VXLAN device is created in the host namespace and then moved into the tenant
//! namespace; its UDP socket stays in the namespace it was created in, so the underlay never
//! leaks into a tenant and two tenants may use the same subnet.
//!
//! Invariant: every object's name derives from an id (tenant, VNI, endpoint id) and links
//! carry an alias with the Contiv id, so a restarted agent finds and diffs them (`observe`).
//!
//! Bridge mode has no flood-and-learn: the VXLAN devices have no all-zeros FDB entry, so ARP
//! for a remote workload is answered by the local bridge (`neigh_suppress` on the VXLAN port)
//! from the static neighbour `set_remote_endpoints` installs. Routing between two networks of
//! a tenant on different hosts is asymmetric (each side routes at its own anycast gateway), so
//! a host needs every network of the tenant its workloads talk to ensured, with its remotes.
//!
//! All netlink work for a namespace runs on an OS thread that `setns()`ed into it (see
//! `netns`): kept threads (a small pool per namespace) for the host and tenant namespaces. A
//! workload namespace is reached from a tenant's kept thread, which opens a netlink socket there
//! (a brief `setns()` in and straight back) for the duration of one endpoint job. The driver's
//! methods are synchronous; network-level ones are serialized by one lock, endpoint add/remove
//! run in parallel.
//!
//! Tenant namespaces are IPv4-only routers: IPv6 is off for every device made there, and
//! bridged frames skip the IP netfilter hooks (`bridge-nf-call-*` = 0; see
//! `network::prepare_tenant`). Bridges do no multicast snooping: multicast floods within a
//! network like broadcast, and workload interfaces come up without IPv6 address generation, so
//! no per-pod MLD reports or DAD probes exist to be flooded.
//!
//! Every workload port is under the source guard (`guard`): it accepts from its workload only the
//! endpoint's MAC and IPv4 address (ARP included), with or without policy.

mod brnf;
mod driver;
mod endpoint;
mod error;
#[cfg(test)]
mod golden;
pub mod guard;
pub mod lb;
mod locate;
pub mod names;
pub mod netns;
mod network;
mod nl;
mod observe;
pub mod policy;
pub mod qos;
mod remote;
#[cfg(feature = "testbed")]
pub mod testbed;
#[cfg(feature = "testbed")]
pub mod traffic;

pub use driver::{LinuxConfig, LinuxDatapath};
pub use error::LinuxError;
pub use policy::NftPolicy;
pub use qos::LinuxQos;
