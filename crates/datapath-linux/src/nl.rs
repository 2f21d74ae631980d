//! A thin typed layer over rtnetlink for one namespace: every call maps its failure to a
//! [`LinuxError`] naming the object and the namespace. No policy here, only kernel verbs.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::RawFd;

use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use netlink_packet_route::AddressFamily;
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

use crate::error::LinuxError;

/// Netlink verbs in one namespace (`ns` is only used in error messages).
pub struct Nl {
    pub h: Handle,
    pub ns: String,
}

/// What the driver needs to know about a link.
#[derive(Debug, Clone, Default)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub alias: Option<String>,
    pub kind: Option<InfoKind>,
    pub master: Option<u32>,
    pub mtu: u32,
    pub mac: Vec<u8>,
    pub vxlan: Vec<InfoVxlan>,
    /// A veth's peer (`IFLA_LINK`): its index, in the namespace `link_netnsid` names.
    pub peer: Option<u32>,
    /// The namespace of the peer as this namespace numbers it (`IFLA_LINK_NETNSID`; absent
    /// when the peer is in the same namespace).
    pub link_netnsid: Option<i32>,
}

impl Link {
    fn from_msg(m: LinkMessage) -> Self {
        let mut l = Link {
            index: m.header.index,
            ..Default::default()
        };
        for a in m.attributes {
            match a {
                LinkAttribute::IfName(n) => l.name = n,
                LinkAttribute::IfAlias(s) => l.alias = Some(s),
                LinkAttribute::Controller(i) => l.master = Some(i),
                LinkAttribute::Mtu(v) => l.mtu = v,
                LinkAttribute::Address(a) => l.mac = a,
                LinkAttribute::Link(i) => l.peer = Some(i),
                LinkAttribute::LinkNetNsId(i) => l.link_netnsid = Some(i),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        match i {
                            LinkInfo::Kind(k) => l.kind = Some(k),
                            LinkInfo::Data(InfoData::Vxlan(v)) => l.vxlan = v,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        l
    }

    pub fn vni(&self) -> Option<u32> {
        self.vxlan.iter().find_map(|i| {
            if let InfoVxlan::Id(v) = i {
                Some(*v)
            } else {
                None
            }
        })
    }

    pub fn vxlan_local(&self) -> Option<Ipv4Addr> {
        self.vxlan.iter().find_map(|i| {
            if let InfoVxlan::Local(v) = i {
                Some(*v)
            } else {
                None
            }
        })
    }
}

/// A neighbour or FDB entry, flattened.
#[derive(Debug, Clone)]
pub struct Neigh {
    pub msg: NeighbourMessage,
    pub ip: Option<IpAddr>,
    pub lladdr: Option<[u8; 6]>,
}

impl Neigh {
    fn from_msg(msg: NeighbourMessage) -> Self {
        let mut n = Neigh {
            msg,
            ip: None,
            lladdr: None,
        };
        for a in &n.msg.attributes {
            match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                    n.ip = Some((*v4).into())
                }
                // AF_BRIDGE dumps (FDB) carry the VTEP as raw bytes.
                NeighbourAttribute::Destination(NeighbourAddress::Other(b)) if b.len() == 4 => {
                    n.ip = Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]).into())
                }
                NeighbourAttribute::LinkLayerAddress(l) if l.len() == 6 => {
                    let mut m = [0u8; 6];
                    m.copy_from_slice(l);
                    n.lladdr = Some(m);
                }
                _ => {}
            }
        }
        n
    }
    pub fn ifindex(&self) -> u32 {
        self.msg.header.ifindex
    }
    pub fn state(&self) -> NeighbourState {
        self.msg.header.state
    }
    pub fn flags(&self) -> NeighbourFlags {
        self.msg.header.flags
    }
}

impl Nl {
    fn err(&self, op: &'static str, object: &str) -> impl Fn(rtnetlink::Error) -> LinuxError + '_ {
        let object = object.to_string();
        move |source| LinuxError::Netlink {
            op,
            object: object.clone(),
            ns: self.ns.clone(),
            source: Box::new(source),
        }
    }

    pub async fn links(&self) -> Result<Vec<Link>, LinuxError> {
        let msgs: Vec<LinkMessage> = self
            .h
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(self.err("list", "links"))?;
        Ok(msgs.into_iter().map(Link::from_msg).collect())
    }

    /// The id this namespace knows the namespace open at `fd` by (`RTM_GETNSID` with
    /// `NETNSA_FD`; the descriptor is the calling process's); `None` when it has none.
    pub async fn nsid_of(&self, fd: RawFd) -> Result<Option<i32>, LinuxError> {
        use futures::StreamExt;
        use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
        use netlink_packet_route::RouteNetlinkMessage;
        use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
        let err = self.err("get nsid", "of a namespace");
        let Ok(fd) = u32::try_from(fd) else {
            return Ok(None);
        };
        let mut msg = NsidMessage::default();
        msg.attributes.push(NsidAttribute::Fd(fd));
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::GetNsId(msg));
        req.header.flags = NLM_F_REQUEST;
        let mut h = self.h.clone();
        let mut answers = h.request(req).map_err(&err)?;
        while let Some(m) = answers.next().await {
            match m.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNsId(m)) => {
                    return Ok(m.attributes.iter().find_map(|a| match a {
                        NsidAttribute::Id(id) if *id >= 0 => Some(*id),
                        _ => None,
                    }));
                }
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    return Err(err(rtnetlink::Error::NetlinkError(e)));
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// The link called `name`, if it exists.
    pub async fn link(&self, name: &str) -> Result<Option<Link>, LinuxError> {
        let mut s = self.h.link().get().match_name(name.to_string()).execute();
        match s.try_next().await {
            Ok(m) => Ok(m.map(Link::from_msg)),
            Err(e) => {
                let e = self.err("get link", name)(e);
                if e.is_absent() {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    pub async fn need_link(&self, name: &str) -> Result<Link, LinuxError> {
        self.link(name).await?.ok_or_else(|| LinuxError::NotFound {
            object: format!("link {name}"),
            ns: self.ns.clone(),
        })
    }

    pub async fn add_link(&self, name: &str, msg: LinkMessage) -> Result<(), LinuxError> {
        self.h
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(self.err("add link", name))
    }

    pub async fn set_link(&self, name: &str, msg: LinkMessage) -> Result<(), LinuxError> {
        self.h
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(self.err("set link", name))
    }

    /// Bridge-port options need RTM_NEWLINK without NLM_F_CREATE.
    pub async fn set_port(&self, name: &str, msg: LinkMessage) -> Result<(), LinuxError> {
        self.h
            .link()
            .set_port(msg)
            .execute()
            .await
            .map_err(self.err("set bridge port", name))
    }

    pub async fn del_link(&self, name: &str) -> Result<(), LinuxError> {
        let Some(l) = self.link(name).await? else {
            return Ok(());
        };
        self.h
            .link()
            .del(l.index)
            .execute()
            .await
            .map_err(self.err("delete link", name))
    }

    /// Moves link `index` to the namespace open at `fd`.
    pub async fn move_to_ns(&self, name: &str, index: u32, fd: RawFd) -> Result<(), LinuxError> {
        let msg = LinkUnspec::new_with_index(index).setns_by_fd(fd).build();
        self.set_link(name, msg).await
    }

    pub async fn addrs(&self, index: u32) -> Result<Vec<(IpAddr, u8, AddressMessage)>, LinuxError> {
        let msgs: Vec<AddressMessage> = self
            .h
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(self.err("list addresses of", &index.to_string()))?;
        Ok(msgs
            .into_iter()
            .filter(|m| m.header.index == index)
            .filter_map(|m| {
                let ip = m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Local(ip) => Some(*ip),
                    _ => None,
                })?;
                Some((ip, m.header.prefix_len, m))
            })
            .collect())
    }

    /// Makes `ip/prefix` the only IPv4 address of the link `name`.
    pub async fn converge_addr(
        &self,
        name: &str,
        index: u32,
        ip: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), LinuxError> {
        let mut present = false;
        for (a, p, msg) in self.addrs(index).await? {
            if a == IpAddr::V4(ip) && p == prefix {
                present = true;
            } else if a.is_ipv4() {
                self.h
                    .address()
                    .del(msg)
                    .execute()
                    .await
                    .map_err(self.err("delete address of", name))?;
            }
        }
        if !present {
            self.add_addr(name, index, ip, prefix).await?;
        }
        Ok(())
    }

    /// Adds (or replaces) `ip/prefix` on the link `name`, without looking at its other addresses.
    pub async fn add_addr(
        &self,
        name: &str,
        index: u32,
        ip: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), LinuxError> {
        let req = self.h.address().add(index, ip.into(), prefix).replace();
        req.execute()
            .await
            .map_err(self.err("add address to", name))
    }

    pub async fn routes(&self) -> Result<Vec<RouteMessage>, LinuxError> {
        let q = RouteMessageBuilder::<Ipv4Addr>::new().build();
        self.h
            .route()
            .get(q)
            .execute()
            .try_collect()
            .await
            .map_err(self.err("list", "routes"))
    }

    pub async fn replace_route(&self, what: &str, msg: RouteMessage) -> Result<(), LinuxError> {
        self.h
            .route()
            .add(msg)
            .replace()
            .execute()
            .await
            .map_err(self.err("replace route", what))
    }

    pub async fn del_route(&self, what: &str, msg: RouteMessage) -> Result<(), LinuxError> {
        self.h
            .route()
            .del(msg)
            .execute()
            .await
            .map_err(self.err("delete route", what))
    }

    pub async fn neighs(&self, family: AddressFamily) -> Result<Vec<Neigh>, LinuxError> {
        let req = self.h.neighbours().get().set_address_family(family);
        let msgs: Vec<NeighbourMessage> = req
            .execute()
            .try_collect()
            .await
            .map_err(self.err("list", "neighbours"))?;
        Ok(msgs.into_iter().map(Neigh::from_msg).collect())
    }

    /// `ip neigh replace <ip> lladdr <mac> dev <index> nud permanent`.
    pub async fn replace_neigh(
        &self,
        dev: &str,
        index: u32,
        ip: Ipv4Addr,
        mac: [u8; 6],
    ) -> Result<(), LinuxError> {
        let req = self
            .h
            .neighbours()
            .add(index, ip.into())
            .link_layer_address(&mac)
            .replace();
        req.execute()
            .await
            .map_err(self.err("replace neighbour on", dev))
    }

    /// `bridge fdb replace <mac> dev <index> self dst <vtep>` (NTF_SELF: the VXLAN device's own FDB).
    pub async fn replace_vxlan_fdb(
        &self,
        dev: &str,
        index: u32,
        mac: [u8; 6],
        dst: Ipv4Addr,
    ) -> Result<(), LinuxError> {
        let mut req = self
            .h
            .neighbours()
            .add_bridge(index, &mac)
            .flags(NeighbourFlags::Own)
            .state(NeighbourState::Permanent)
            .replace();
        req.message_mut()
            .attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(dst)));
        req.execute()
            .await
            .map_err(self.err("replace vxlan fdb on", dev))
    }

    /// `bridge fdb replace <mac> dev <port> master static`.
    pub async fn replace_bridge_fdb(
        &self,
        port: &str,
        index: u32,
        mac: [u8; 6],
    ) -> Result<(), LinuxError> {
        let req = self
            .h
            .neighbours()
            .add_bridge(index, &mac)
            .flags(NeighbourFlags::Controller)
            .state(NeighbourState::Noarp)
            .replace();
        req.execute()
            .await
            .map_err(self.err("replace bridge fdb on", port))
    }

    pub async fn del_neigh(&self, what: &str, n: &Neigh) -> Result<(), LinuxError> {
        self.h
            .neighbours()
            .del(n.msg.clone())
            .execute()
            .await
            .map_err(self.err("delete neighbour", what))
    }
}

/// Destination prefix and first gateway/oif of a route, flattened.
pub fn route_parts(r: &RouteMessage) -> (Option<Ipv4Addr>, Option<Ipv4Addr>, Option<u32>) {
    let (mut dst, mut gw, mut oif) = (None, None, None);
    for a in &r.attributes {
        match a {
            RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = Some(*d),
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => gw = Some(*g),
            RouteAttribute::Oif(i) => oif = Some(*i),
            _ => {}
        }
    }
    (dst, gw, oif)
}
