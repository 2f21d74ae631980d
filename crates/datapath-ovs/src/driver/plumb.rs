//! A workload's veth pair over netlink: the host end in the host namespace (where ovs-vswitchd
//! runs and takes it as a port), the workload end made directly in the workload's namespace
//! with its name, MAC and MTU; for [`Plumbing::InWorkload`] then brought up there with its
//! address and default route (one short thread entering that namespace).

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use contiv_datapath::{LocalEndpoint, Plumbing};
use contiv_datapath_linux::netns;
use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

/// A netlink or namespace failure, naming the step.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {source}")]
pub struct PlumbError {
    pub step: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

pub(super) fn fail<E: std::error::Error + Send + Sync + 'static>(
    step: String,
) -> impl FnOnce(E) -> PlumbError {
    move |e| PlumbError {
        step,
        source: Box::new(e),
    }
}

/// The host end's name: `vo` and 12 hex digits of a hash of the endpoint id (fits IFNAMSIZ,
/// the same in every run, so a restarted agent finds its ports).
pub fn host_ifname(endpoint_id: &str) -> String {
    let h = endpoint_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("vo{:012x}", h & 0xffff_ffff_ffff)
}

pub(super) async fn index_of(h: &Handle, name: &str) -> Option<u32> {
    let mut s = h.link().get().match_name(name.to_string()).execute();
    s.try_next().await.ok().flatten().map(|m| m.header.index)
}

/// Makes the pair (kept if its host end exists already) and brings the host end up.
pub async fn plug(h: &Handle, ep: &LocalEndpoint, mtu: u32) -> Result<String, PlumbError> {
    let host = host_ifname(&ep.id);
    if index_of(h, &host).await.is_none() {
        make_veth(h, &host, &ep.netns_path, &ep.ifname, &ep.mac.octets(), mtu).await?;
        if ep.plumbing == Plumbing::InWorkload {
            if let Err(e) = configure_workload(ep).await {
                let _ = unplug(h, &ep.id).await;
                return Err(e);
            }
        }
    }
    let up = LinkUnspec::new_with_name(&host).mtu(mtu).up().build();
    h.link()
        .set(up)
        .execute()
        .await
        .map_err(fail(format!("set {host} up")))?;
    Ok(host)
}

/// A veth pair: `host` in this (the host) namespace, its peer made directly in the namespace
/// at `ns` with its name, MAC and MTU (never seen in the host namespace, so no name clash).
pub(super) async fn make_veth(
    h: &Handle,
    host: &str,
    ns: &Path,
    peer_name: &str,
    peer_mac: &[u8],
    mtu: u32,
) -> Result<(), PlumbError> {
    let f = File::open(ns).map_err(fail(format!("open netns {}", ns.display())))?;
    let peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name(peer_name.to_string())
        .mtu(mtu)
        .address(peer_mac.to_vec())
        .setns_by_fd(f.as_raw_fd())
        .build();
    let msg = LinkVeth::new(host, peer_name)
        .mtu(mtu)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();
    h.link()
        .add(msg)
        .execute()
        .await
        .map_err(fail(format!("create veth {host}")))
}

/// Deletes the link `name` (a veth's peer goes with it); absent is fine.
pub(super) async fn delete_link(h: &Handle, name: &str) -> Result<(), PlumbError> {
    let Some(index) = index_of(h, name).await else {
        return Ok(());
    };
    h.link()
        .del(index)
        .execute()
        .await
        .map_err(fail(format!("delete {name}")))
}

/// Deletes the host end (the workload end goes with it); absent is fine.
pub async fn unplug(h: &Handle, endpoint_id: &str) -> Result<(), PlumbError> {
    delete_link(h, &host_ifname(endpoint_id)).await
}

/// Whether the host end of `endpoint_id` exists: `Ok(false)` only when the kernel says there
/// is no such link (ENODEV), an error when it could not tell (the caller must not take that
/// for "gone").
pub async fn host_end_exists(h: &Handle, endpoint_id: &str) -> Result<bool, rtnetlink::Error> {
    let mut s = h
        .link()
        .get()
        .match_name(host_ifname(endpoint_id))
        .execute();
    match s.try_next().await {
        Ok(m) => Ok(m.is_some()),
        Err(rtnetlink::Error::NetlinkError(m))
            if m.code.map(|c| -c.get()) == Some(libc::ENODEV) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// What the driver checks of an interface before making it the VLAN uplink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkFacts {
    /// 0 when the kernel reports none.
    pub mtu: u32,
    /// Its IPv4 addresses: an addressed interface carries the host's own traffic, which a
    /// bridge port of our pipeline would drop (untagged frames on the trunk go nowhere).
    pub ipv4: Vec<Ipv4Addr>,
}

/// The MTU and IPv4 addresses of interface `name` in this (the host) namespace; `Ok(None)`
/// only when the kernel says there is no such interface (ENODEV).
pub async fn link_facts(h: &Handle, name: &str) -> Result<Option<LinkFacts>, PlumbError> {
    let mut s = h.link().get().match_name(name.to_string()).execute();
    let msg = match s.try_next().await {
        Ok(Some(m)) => m,
        Ok(None) => return Ok(None),
        Err(rtnetlink::Error::NetlinkError(m))
            if m.code.map(|c| -c.get()) == Some(libc::ENODEV) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(fail(format!("look up link {name}"))(e)),
    };
    let mtu = msg
        .attributes
        .iter()
        .find_map(|a| match a {
            rtnetlink::packet_route::link::LinkAttribute::Mtu(m) => Some(*m),
            _ => None,
        })
        .unwrap_or(0);
    let index = msg.header.index;
    let addrs: Vec<rtnetlink::packet_route::address::AddressMessage> = h
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect()
        .await
        .map_err(fail(format!("list addresses of {name}")))?;
    let ipv4 = addrs
        .iter()
        .filter(|m| m.header.index == index)
        .flat_map(|m| m.attributes.iter())
        .filter_map(|a| match a {
            rtnetlink::packet_route::address::AddressAttribute::Local(std::net::IpAddr::V4(ip))
            | rtnetlink::packet_route::address::AddressAttribute::Address(std::net::IpAddr::V4(
                ip,
            )) => Some(*ip),
            _ => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(Some(LinkFacts { mtu, ipv4 }))
}

/// Brings interface `name` up.
pub async fn set_up(h: &Handle, name: &str) -> Result<(), PlumbError> {
    let up = LinkUnspec::new_with_name(name).up().build();
    h.link()
        .set(up)
        .execute()
        .await
        .map_err(fail(format!("set {name} up")))
}

/// Runs `f` with a netlink handle inside the network namespace at `ns`, on a thread of its own
/// (`contiv_datapath_linux::netns::run_in`), kept off the async runtime's threads while it waits.
pub(super) async fn in_netns<F, Fut, R>(ns: PathBuf, what: &str, f: F) -> Result<R, PlumbError>
where
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<R, PlumbError>>,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(move || netns::run_in(&ns, |h| async move { Ok(f(h).await) }))
        .await
        .map_err(fail(format!("{what} netns task")))?
        .map_err(fail(format!("{what} netns")))?
}

/// Inside the workload's namespace: interface up, its address, default route via the gateway.
async fn configure_workload(ep: &LocalEndpoint) -> Result<(), PlumbError> {
    let ep = ep.clone();
    in_netns(ep.netns_path.clone(), "workload", move |h| async move {
        tx_checksum_off(&ep.ifname)
            .map_err(fail(format!("tx checksum offload off on {}", ep.ifname)))?;
        configure_here(&h, &ep).await
    })
    .await
}

/// Turns transmit checksum offload off on `ifname` (this thread's namespace), as `ethtool -K
/// tx off` does. A veth leaves checksums to offload and the userspace datapath never fills them
/// in, so without this TCP from the workload arrives with bad checksums (ICMP, checksummed by
/// the stack, would still pass and hide it).
pub(super) fn tx_checksum_off(ifname: &str) -> std::io::Result<()> {
    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }
    const ETHTOOL_STXCSUM: u32 = 0x17;
    const SIOCETHTOOL: u64 = 0x8946;
    let name = ifname.as_bytes();
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= ifr.ifr_name.len() {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    }
    for (d, s) in ifr.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    let mut value = EthtoolValue {
        cmd: ETHTOOL_STXCSUM,
        data: 0,
    };
    ifr.ifr_ifru.ifru_data = (&mut value as *mut EthtoolValue).cast();
    // SAFETY: a plain socket call; the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: SIOCETHTOOL reads ifr (a valid name) and the EthtoolValue it points to, both
    // alive for the call.
    let r = unsafe { libc::ioctl(fd, SIOCETHTOOL as _, &mut ifr) };
    let err = std::io::Error::last_os_error();
    // SAFETY: fd is ours and closed once.
    unsafe { libc::close(fd) };
    if r < 0 {
        return Err(err);
    }
    Ok(())
}

async fn configure_here(h: &Handle, ep: &LocalEndpoint) -> Result<(), PlumbError> {
    let index = index_of(h, &ep.ifname).await.ok_or_else(|| {
        fail(format!("find {} in the workload", ep.ifname))(std::io::Error::from(
            std::io::ErrorKind::NotFound,
        ))
    })?;
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(fail(format!("set {} up", ep.ifname)))?;
    h.address()
        .add(index, ep.ip.addr().into(), ep.ip.prefix_len())
        .replace()
        .execute()
        .await
        .map_err(fail(format!("address {} on {}", ep.ip, ep.ifname)))?;
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(ep.gateway)
        .output_interface(index)
        .build();
    h.route()
        .add(route)
        .replace()
        .execute()
        .await
        .map_err(fail(format!("default route via {}", ep.gateway)))?;
    Ok(())
}
