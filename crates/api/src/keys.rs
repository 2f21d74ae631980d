//! The store key layout (see ARCHITECTURE.md "Store key layout"): every key netmaster writes is built
//! and parsed here, so the layout is defined in one place.

use contiv_model::ObjectKind;

pub const ROOT: &str = "/contiv/";
const OBJ: &str = "/contiv/obj/";
/// Prefix of every object key.
pub const OBJECT_PREFIX: &str = OBJ;
const NET_OPER: &str = "/contiv/oper/net/";
const SERVICE_OPER: &str = "/contiv/oper/service/";
const VLAN: &str = "/contiv/alloc/vlan/";
const VXLAN: &str = "/contiv/alloc/vxlan/";
const LOCAL_VLAN: &str = "/contiv/alloc/localvlan/";
const IP: &str = "/contiv/alloc/ip/";
const EPG_ID: &str = "/contiv/alloc/epgid/";
pub const EPG_ID_COUNTER: &str = "/contiv/counter/epgid";
const ENDPOINT: &str = "/contiv/ep/";
const NODE: &str = "/contiv/node/";
/// Local users (`contiv_netmaster::users`): never parsed into the object state, never sent to
/// agents.
pub const USER_PREFIX: &str = "/contiv/auth/user/";
/// Token signing keys, one per key id.
pub const SIGNING_KEY_PREFIX: &str = "/contiv/auth/key/";
/// Authorizations of LDAP groups (`contiv_netmaster::authz`), one per id.
pub const AUTHZ_PREFIX: &str = "/contiv/auth/authz/";
/// The audit log (`contiv_netmaster::audit`): outside [`ROOT`], so a full reload of the state
/// (which ranges `ROOT`) never reads it, and never parsed into the object state.
pub const AUDIT_PREFIX: &str = "/contiv-audit/";

pub fn object(kind: ObjectKind, key: &str) -> String {
    format!("{OBJ}{}/{key}", kind.type_name())
}
pub fn net_oper(net: &str) -> String {
    format!("{NET_OPER}{net}")
}
/// A service's runtime state (its VIP), written with the VIP's allocation: `tenant:service`.
pub fn service_oper(svc: &str) -> String {
    format!("{SERVICE_OPER}{svc}")
}
pub fn vlan(tag: u32) -> String {
    format!("{VLAN}{tag}")
}
pub fn vxlan(vni: u32) -> String {
    format!("{VXLAN}{vni}")
}
pub fn local_vlan(tag: u32) -> String {
    format!("{LOCAL_VLAN}{tag}")
}
/// One key per allocated address: `<net>/<ip>` (IPv4 or IPv6 text form).
pub fn ip(net: &str, addr: &str) -> String {
    format!("{IP}{net}/{addr}")
}
pub fn ip_prefix(net: &str) -> String {
    format!("{IP}{net}/")
}
pub fn epg_id(id: u32) -> String {
    format!("{EPG_ID}{id}")
}
pub fn endpoint(id: &str) -> String {
    format!("{ENDPOINT}{id}")
}
/// A registered host agent (leased: disappears when its heartbeats stop).
pub fn node(hostname: &str) -> String {
    format!("{NODE}{hostname}")
}

/// A local user: its argon2id hash, role and tenants.
pub fn user(name: &str) -> String {
    format!("{USER_PREFIX}{name}")
}
/// An authorization (an LDAP group's role and tenant) by id.
pub fn authz(id: &str) -> String {
    format!("{AUTHZ_PREFIX}{id}")
}
/// A token signing key (Ed25519, PKCS#8) by key id.
pub fn signing_key(kid: &str) -> String {
    format!("{SIGNING_KEY_PREFIX}{kid}")
}

/// One audit entry: `<unix nanos, 20 digits>-<sequence, 10 digits>-<netmaster id>`, so keys sort
/// in the order entries were written.
pub fn audit(nanos: u128, seq: u64, netmaster: &str) -> String {
    format!("{AUDIT_PREFIX}{nanos:020}-{seq:010}-{netmaster}")
}

/// A store key, parsed back into what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    Object(ObjectKind, &'a str),
    NetOper(&'a str),
    ServiceOper(&'a str),
    Vlan(u32),
    Vxlan(u32),
    LocalVlan(u32),
    Ip { net: &'a str, addr: &'a str },
    EpgId(u32),
    EpgIdCounter,
    Endpoint(&'a str),
    Node(&'a str),
}

impl<'a> Parsed<'a> {
    /// Order in which a full load must apply keys: objects (which create pools) before the
    /// allocations that live in those pools.
    pub fn phase(&self) -> u8 {
        match self {
            Parsed::Object(ObjectKind::Global, _) => 0,
            Parsed::Object(ObjectKind::Tenant | ObjectKind::Network, _) => 1,
            Parsed::Object(..) => 2,
            Parsed::NetOper(_) => 3,
            _ => 4,
        }
    }
}

pub fn parse(key: &str) -> Option<Parsed<'_>> {
    if let Some(rest) = key.strip_prefix(OBJ) {
        let (ty, k) = rest.split_once('/')?;
        return Some(Parsed::Object(ObjectKind::from_type_name(ty)?, k));
    }
    if let Some(rest) = key.strip_prefix(NET_OPER) {
        return Some(Parsed::NetOper(rest));
    }
    if let Some(rest) = key.strip_prefix(SERVICE_OPER) {
        return Some(Parsed::ServiceOper(rest));
    }
    if let Some(rest) = key.strip_prefix(VLAN) {
        return rest.parse().ok().map(Parsed::Vlan);
    }
    if let Some(rest) = key.strip_prefix(VXLAN) {
        return rest.parse().ok().map(Parsed::Vxlan);
    }
    if let Some(rest) = key.strip_prefix(LOCAL_VLAN) {
        return rest.parse().ok().map(Parsed::LocalVlan);
    }
    if let Some(rest) = key.strip_prefix(IP) {
        // network keys contain ':' but never '/', addresses never '/'.
        let (net, addr) = rest.rsplit_once('/')?;
        return Some(Parsed::Ip { net, addr });
    }
    if let Some(rest) = key.strip_prefix(EPG_ID) {
        return rest.parse().ok().map(Parsed::EpgId);
    }
    if key == EPG_ID_COUNTER {
        return Some(Parsed::EpgIdCounter);
    }
    if let Some(rest) = key.strip_prefix(NODE) {
        return Some(Parsed::Node(rest));
    }
    key.strip_prefix(ENDPOINT).map(Parsed::Endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let k = object(ObjectKind::Network, "t1:n1");
        assert_eq!(
            parse(&k),
            Some(Parsed::Object(ObjectKind::Network, "t1:n1"))
        );
        assert_eq!(
            parse(&ip("t1:n1", "10.1.1.2")),
            Some(Parsed::Ip {
                net: "t1:n1",
                addr: "10.1.1.2"
            })
        );
        assert_eq!(
            parse(&ip("t:n", "2001:db8::2")),
            Some(Parsed::Ip {
                net: "t:n",
                addr: "2001:db8::2"
            })
        );
        assert_eq!(
            parse(&service_oper("t:s")),
            Some(Parsed::ServiceOper("t:s"))
        );
        assert_eq!(parse(&vlan(5)), Some(Parsed::Vlan(5)));
        assert_eq!(parse(&vxlan(5)), Some(Parsed::Vxlan(5)));
        assert_eq!(parse(&local_vlan(7)), Some(Parsed::LocalVlan(7)));
        assert_eq!(parse(&epg_id(9)), Some(Parsed::EpgId(9)));
        assert_eq!(parse(EPG_ID_COUNTER), Some(Parsed::EpgIdCounter));
        assert_eq!(parse(&endpoint("n.t-c1")), Some(Parsed::Endpoint("n.t-c1")));
        assert_eq!(parse("/other"), None);
        // Auth keys are not part of the object state.
        assert_eq!(parse(&user("admin")), None);
        assert_eq!(parse(&signing_key("k1")), None);
    }
}
