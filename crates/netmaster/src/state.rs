//! netmaster's in-memory state: a materialized view of the store.
//!
//! Invariant: `State` changes only through [`State::apply`], fed either by a full load of the store at
//! start or by the writes of a change set that the store has just committed. So memory always equals
//! "the store replayed", and a restart reproduces it exactly.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use contiv_model::*;
use contiv_resources::{IdPool, Ipv4Pool, Ipv4Range, Ipv6Pool};
use tracing::warn;

use contiv_api::agent::NodeInfo;
use contiv_api::keys::{self, Parsed};
pub use contiv_api::{EndpointState, NetOper};

/// Address pools of one network, and who holds each allocated address.
#[derive(Debug)]
pub struct NetPools {
    pub v4: Option<Ipv4Pool>,
    pub v6: Option<Ipv6Pool>,
    /// address text -> owner ("" = allocated through /plugin/allocAddress, not yet claimed).
    pub owners: HashMap<String, String>,
}

impl NetPools {
    fn for_network(n: &Network) -> NetPools {
        let gw4 = n.gateway.parse::<Ipv4Addr>().ok();
        let v4 = if n.subnet.is_empty() {
            None
        } else {
            Ipv4Pool::new(&n.subnet, gw4)
                .map_err(|e| warn!(network = %n.key, "unusable subnet in store: {e}"))
                .ok()
        };
        let v6 = if n.ipv6_subnet.is_empty() {
            None
        } else {
            let gw6 = n.ipv6_gateway.parse().ok();
            Ipv6Pool::new(&n.ipv6_subnet, gw6)
                .map_err(|e| warn!(network = %n.key, "unusable ipv6 subnet in store: {e}"))
                .ok()
        };
        NetPools {
            v4,
            v6,
            owners: HashMap::new(),
        }
    }

    fn take(&mut self, addr: &str) -> bool {
        match addr.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => self
                .v4
                .as_mut()
                .is_some_and(|p| p.allocate_specific(ip).is_ok()),
            Ok(IpAddr::V6(ip)) => self
                .v6
                .as_mut()
                .is_some_and(|p| p.allocate_specific(ip).is_ok()),
            Err(_) => false,
        }
    }

    fn give_back(&mut self, addr: &str) {
        match addr.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => {
                if let Some(p) = self.v4.as_mut() {
                    p.release(ip);
                }
            }
            Ok(IpAddr::V6(ip)) => {
                if let Some(p) = self.v6.as_mut() {
                    p.release(ip);
                }
            }
            Err(_) => {}
        }
    }
}

/// Everything netmaster knows.
#[derive(Debug, Default)]
pub struct State {
    pub tenants: BTreeMap<String, Tenant>,
    pub networks: BTreeMap<String, Network>,
    pub epgs: BTreeMap<String, EndpointGroup>,
    pub policies: BTreeMap<String, Policy>,
    pub rules: BTreeMap<String, Rule>,
    pub app_profiles: BTreeMap<String, AppProfile>,
    pub service_lbs: BTreeMap<String, ServiceLb>,
    pub net_profiles: BTreeMap<String, NetProfile>,
    pub globals: BTreeMap<String, Global>,
    pub bgps: BTreeMap<String, Bgp>,
    pub aci_gws: BTreeMap<String, AciGw>,
    pub ext_contracts: BTreeMap<String, ExtContractsGroup>,

    pub net_oper: HashMap<String, NetOper>,
    /// tag -> owning network key
    pub vlans: BTreeMap<u32, String>,
    pub vxlans: BTreeMap<u32, String>,
    pub local_vlans: BTreeMap<u32, String>,
    pub pools: HashMap<String, NetPools>,
    /// group id -> group key, and back
    pub epg_ids: BTreeMap<u32, String>,
    pub epg_id_of: HashMap<String, u32>,
    /// highest group id ever handed out (ids are not reused)
    pub epg_id_high_water: u32,
    pub endpoints: BTreeMap<String, EndpointState>,
    /// Registered host agents.
    pub nodes: BTreeMap<String, NodeInfo>,
    /// netmaster's `--mode` (shown by global inspect).
    pub cluster_mode: String,
    /// Store revision this state reflects.
    pub revision: u64,
}

/// Typed access to the table holding objects of one kind.
pub trait Tabled: ModelObject {
    fn table(st: &State) -> &BTreeMap<String, Self>;
    fn table_mut(st: &mut State) -> &mut BTreeMap<String, Self>;
}

macro_rules! tabled {
    ($($ty:ty => $field:ident),* $(,)?) => {$(
        impl Tabled for $ty {
            fn table(st: &State) -> &BTreeMap<String, Self> { &st.$field }
            fn table_mut(st: &mut State) -> &mut BTreeMap<String, Self> { &mut st.$field }
        }
    )*};
}

tabled! {
    Tenant => tenants, Network => networks, EndpointGroup => epgs, Policy => policies,
    Rule => rules, AppProfile => app_profiles, ServiceLb => service_lbs,
    NetProfile => net_profiles, Global => globals, Bgp => bgps, AciGw => aci_gws,
    ExtContractsGroup => ext_contracts,
}

/// The global object's name and key.
pub const GLOBAL_KEY: &str = "global";

impl State {
    pub fn get<T: Tabled>(&self, key: &str) -> Option<&T> {
        T::table(self).get(key)
    }

    /// The global object (bootstrap guarantees it exists; an empty default otherwise).
    pub fn global(&self) -> Global {
        self.globals.get(GLOBAL_KEY).cloned().unwrap_or_default()
    }

    /// VLAN pool over the global `vlans` range with the tags in use marked.
    pub fn vlan_pool(&self) -> IdPool {
        Self::pool_over(&self.global().vlans, 4094, "vlan", &self.vlans)
    }

    /// VXLAN pool over the global `vxlans` range with the VNIs in use marked.
    pub fn vxlan_pool(&self) -> IdPool {
        Self::pool_over(&self.global().vxlans, 16_777_215, "vxlan", &self.vxlans)
    }

    pub fn local_vlan_pool(&self) -> IdPool {
        let mut p = IdPool::new(1, 4094).with_kind("local vlan");
        for tag in self.local_vlans.keys() {
            let _ = p.reserve(*tag);
        }
        p
    }

    fn pool_over(
        range: &str,
        max: u32,
        kind: &'static str,
        used: &BTreeMap<u32, String>,
    ) -> IdPool {
        let mut p = IdPool::parse_kind(range, max, kind)
            .unwrap_or_else(|_| IdPool::new(1, max).with_kind(kind));
        for tag in used.keys() {
            // tags outside a (narrowed) range stay in use but are not in this pool
            let _ = p.reserve(*tag);
        }
        p
    }

    /// Applies one committed write (`None` = delete). Unknown keys are ignored (a newer netmaster
    /// may write keys this one does not know).
    pub fn apply(&mut self, key: &str, value: Option<&[u8]>) {
        let Some(parsed) = keys::parse(key) else {
            return;
        };
        if let Err(e) = self.apply_parsed(&parsed, value) {
            warn!(key, "ignoring undecodable store value: {e}");
        }
    }

    /// The state a full store snapshot describes (at its revision).
    pub fn from_snapshot(snapshot: &contiv_store::Snapshot, cluster_mode: &str) -> State {
        let mut st = State::default();
        st.load(
            snapshot
                .kvs
                .iter()
                .map(|kv| (kv.key.as_str(), kv.value.as_slice())),
        );
        st.revision = snapshot.revision;
        st.cluster_mode = cluster_mode.to_string();
        st
    }

    /// Applies a full snapshot, in the order objects-before-allocations.
    pub fn load<'a>(&mut self, kvs: impl IntoIterator<Item = (&'a str, &'a [u8])>) {
        let mut items: Vec<(u8, &str, &[u8])> = kvs
            .into_iter()
            .filter_map(|(k, v)| keys::parse(k).map(|p| (p.phase(), k, v)))
            .collect();
        items.sort_by_key(|(phase, _, _)| *phase);
        for (_, k, v) in items {
            self.apply(k, Some(v));
        }
    }

    fn apply_parsed(&mut self, p: &Parsed<'_>, value: Option<&[u8]>) -> Result<(), String> {
        match (p, value) {
            (Parsed::Object(kind, key), v) => self.apply_object(*kind, key, v)?,
            (Parsed::NetOper(net), Some(v)) => {
                let oper: NetOper = serde_json::from_slice(v).map_err(|e| e.to_string())?;
                self.net_oper.insert((*net).to_owned(), oper);
            }
            (Parsed::NetOper(net), None) => {
                self.net_oper.remove(*net);
            }
            // Memory knows a service's VIP from its address allocation; the key is for agents.
            (Parsed::ServiceOper(_), _) => {}
            (Parsed::Vlan(t), v) => set_owner(&mut self.vlans, *t, v),
            (Parsed::Vxlan(t), v) => set_owner(&mut self.vxlans, *t, v),
            (Parsed::LocalVlan(t), v) => set_owner(&mut self.local_vlans, *t, v),
            (Parsed::Ip { net, addr }, v) => self.apply_ip(net, addr, v),
            (Parsed::EpgId(id), Some(v)) => {
                let owner = String::from_utf8_lossy(v).into_owned();
                self.epg_id_of.insert(owner.clone(), *id);
                self.epg_ids.insert(*id, owner);
                self.epg_id_high_water = self.epg_id_high_water.max(*id);
            }
            (Parsed::EpgId(id), None) => {
                if let Some(owner) = self.epg_ids.remove(id) {
                    self.epg_id_of.remove(&owner);
                }
            }
            (Parsed::EpgIdCounter, Some(v)) => {
                let hw: u32 = String::from_utf8_lossy(v)
                    .trim()
                    .parse()
                    .map_err(|_| "bad counter")?;
                self.epg_id_high_water = self.epg_id_high_water.max(hw);
            }
            (Parsed::EpgIdCounter, None) => {}
            (Parsed::Endpoint(id), Some(v)) => {
                let ep: EndpointState = serde_json::from_slice(v).map_err(|e| e.to_string())?;
                self.endpoints.insert((*id).to_owned(), ep);
            }
            (Parsed::Endpoint(id), None) => {
                self.endpoints.remove(*id);
            }
            (Parsed::Node(host), Some(v)) => {
                let node: NodeInfo = serde_json::from_slice(v).map_err(|e| e.to_string())?;
                self.nodes.insert((*host).to_owned(), node);
            }
            (Parsed::Node(host), None) => {
                self.nodes.remove(*host);
            }
        }
        Ok(())
    }

    fn apply_ip(&mut self, net: &str, addr: &str, value: Option<&[u8]>) {
        let Some(pools) = self.pools.get_mut(net) else {
            if value.is_some() {
                warn!(
                    net,
                    addr, "address allocated in a network that does not exist"
                );
            }
            return;
        };
        match value {
            Some(owner) => {
                if !pools.owners.contains_key(addr) && !pools.take(addr) {
                    warn!(net, addr, "stored address does not fit its network's pool");
                }
                pools
                    .owners
                    .insert(addr.to_owned(), String::from_utf8_lossy(owner).into_owned());
            }
            None => {
                if pools.owners.remove(addr).is_some() {
                    pools.give_back(addr);
                }
            }
        }
    }

    fn apply_object(
        &mut self,
        kind: ObjectKind,
        key: &str,
        v: Option<&[u8]>,
    ) -> Result<(), String> {
        match kind {
            ObjectKind::Tenant => put_or_delete::<Tenant>(self, key, v),
            ObjectKind::Network => {
                put_or_delete::<Network>(self, key, v)?;
                match self.networks.get(key) {
                    Some(n) => {
                        if !self.pools.contains_key(key) {
                            let pools = NetPools::for_network(n);
                            self.pools.insert(key.to_owned(), pools);
                        }
                    }
                    None => {
                        self.pools.remove(key);
                    }
                }
                Ok(())
            }
            ObjectKind::EndpointGroup => {
                let old = self.epgs.get(key).map(group_pool);
                put_or_delete::<EndpointGroup>(self, key, v)?;
                let new = self.epgs.get(key).map(group_pool);
                if old != new {
                    self.carve_group_pool(old.flatten(), new.flatten());
                }
                Ok(())
            }
            ObjectKind::Policy => put_or_delete::<Policy>(self, key, v),
            ObjectKind::Rule => put_or_delete::<Rule>(self, key, v),
            ObjectKind::AppProfile => put_or_delete::<AppProfile>(self, key, v),
            ObjectKind::ServiceLb => put_or_delete::<ServiceLb>(self, key, v),
            ObjectKind::NetProfile => put_or_delete::<NetProfile>(self, key, v),
            ObjectKind::Global => put_or_delete::<Global>(self, key, v),
            ObjectKind::Bgp => put_or_delete::<Bgp>(self, key, v),
            ObjectKind::AciGw => put_or_delete::<AciGw>(self, key, v),
            ObjectKind::ExtContractsGroup => put_or_delete::<ExtContractsGroup>(self, key, v),
            ObjectKind::Endpoint => Ok(()),
        }
    }
}

/// (network key, ip-pool) of a group that carves a pool out of its network.
fn group_pool(g: &EndpointGroup) -> Option<(String, Ipv4Range)> {
    if g.ip_pool.is_empty() {
        return None;
    }
    let range = Ipv4Range::parse(&g.ip_pool).ok()?;
    Some((format!("{}:{}", g.tenant_name, g.network_name), range))
}

impl State {
    /// Group ip-pools are carved out of their network's pool, so network-wide allocation skips
    /// them (Contiv's behaviour).
    fn carve_group_pool(
        &mut self,
        old: Option<(String, Ipv4Range)>,
        new: Option<(String, Ipv4Range)>,
    ) {
        if let Some((net, range)) = old {
            if let Some(p) = self.pools.get_mut(&net).and_then(|p| p.v4.as_mut()) {
                p.release_pool(&range);
            }
        }
        if let Some((net, range)) = new {
            if let Some(p) = self.pools.get_mut(&net).and_then(|p| p.v4.as_mut()) {
                if let Err(e) = p.reserve_pool(&range) {
                    warn!(net, %range, "group ip-pool does not fit its network: {e}");
                }
            }
        }
    }
}

fn put_or_delete<T: Tabled>(st: &mut State, key: &str, v: Option<&[u8]>) -> Result<(), String> {
    match v {
        Some(bytes) => {
            let obj: T = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
            T::table_mut(st).insert(key.to_owned(), obj);
        }
        None => {
            T::table_mut(st).remove(key);
        }
    }
    Ok(())
}

fn set_owner(map: &mut BTreeMap<u32, String>, tag: u32, v: Option<&[u8]>) {
    match v {
        Some(owner) => {
            map.insert(tag, String::from_utf8_lossy(owner).into_owned());
        }
        None => {
            map.remove(&tag);
        }
    }
}
