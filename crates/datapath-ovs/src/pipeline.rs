//! The pipeline's names, in one place: tables (id, name, purpose, where a packet goes next),
//! the metadata bits and registers carried between tables, cookie layout, and the fixed
//! addresses the pipeline answers with. Every flow the renderers make takes its table ids and
//! bit positions from here; `docs/ovs-pipeline.md` describes the same tables.

use contiv_openflow::Mac;

/// A table of the pipeline, in packet order (ARP_RESP, a side branch, last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Known ports (workloads, tunnels, the uplink, tenant DNS ports) go on, the rest drops.
    Input,
    /// Port (and VNI for tunnels) to metadata: tenant, network, source group; source guard.
    Vlan,
    /// DNS to a network's gateway goes out of its tenant's DNS port; other IP traffic goes
    /// through conntrack in its tenant's zone.
    Conntrack,
    /// Established and related traffic skips policy; invalid drops; new goes on.
    CtState,
    /// Service VIPs to providers (issue 8; empty: everything goes on).
    SrvProxy,
    /// Destination address to the destination's group (reg0), for in-rules.
    DstGrp,
    /// The source group's out-rules (match the destination).
    PolicyOut,
    /// The destination group's in-rules (match the source).
    PolicyIn,
    /// Commits allowed new connections to conntrack.
    CtCommit,
    /// Routed traffic (to the gateway MAC): rewrites MACs, moves to the destination network.
    Ip,
    /// Destination MAC in a network to a local port or a tunnel to the remote host.
    MacDest,
    /// ARP requests for an address the agent knows in the sender's network are turned into the
    /// reply and sent back out of the port they came in on; every other ARP packet drops. A side
    /// branch (from VLAN), numbered last so the IP path keeps its table ids.
    ArpResp,
}

impl Table {
    pub const ALL: [Table; 12] = [
        Table::Input,
        Table::Vlan,
        Table::Conntrack,
        Table::CtState,
        Table::SrvProxy,
        Table::DstGrp,
        Table::PolicyOut,
        Table::PolicyIn,
        Table::CtCommit,
        Table::Ip,
        Table::MacDest,
        Table::ArpResp,
    ];

    /// The OpenFlow table id (assigned here, in packet order; never written elsewhere).
    pub fn id(self) -> u8 {
        self as u8
    }

    /// The name used in `docs/ovs-pipeline.md` (Contiv's where it had one).
    pub fn name(self) -> &'static str {
        match self {
            Table::Input => "INPUT",
            Table::Vlan => "VLAN",
            Table::Conntrack => "CONNTRACK",
            Table::CtState => "CT_STATE",
            Table::SrvProxy => "SRV_PROXY",
            Table::DstGrp => "DST_GRP",
            Table::PolicyOut => "POLICY_OUT",
            Table::PolicyIn => "POLICY_IN",
            Table::CtCommit => "CT_COMMIT",
            Table::Ip => "IP",
            Table::MacDest => "MAC_DEST",
            Table::ArpResp => "ARP_RESP",
        }
    }
}

/// A bit range of the 64-bit OpenFlow metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaField {
    pub ofs: u8,
    pub bits: u8,
}

impl MetaField {
    pub fn mask(self) -> u64 {
        ((1u64 << self.bits) - 1) << self.ofs
    }

    /// `v` placed in this field (bits above the field's width are dropped).
    pub fn value(self, v: u64) -> u64 {
        (v << self.ofs) & self.mask()
    }
}

/// Metadata bits 0-23: the network, by its VNI (unique in the cluster, so stable), or for a
/// VLAN network by its VLAN id (also unique in the cluster), told apart by [`META_NET_VLAN`].
pub const META_NETWORK: MetaField = MetaField { ofs: 0, bits: 24 };
/// Metadata bit 56: set when [`META_NETWORK`] is a VLAN id rather than a VNI (netmaster hands
/// out both from 1 up, so VLAN 5 and VNI 5 are different networks). Always matched and written
/// together with [`META_NETWORK`].
pub const META_NET_VLAN: MetaField = MetaField { ofs: 56, bits: 1 };
/// Metadata bits 24-39: the tenant's number (given by the agent; also its conntrack zone).
pub const META_TENANT: MetaField = MetaField { ofs: 24, bits: 16 };
/// Metadata bits 40-55: the source endpoint's group number within its tenant (0: no out-rules
/// to check here, e.g. a source on another host: its own host checked them).
pub const META_SRC_GROUP: MetaField = MetaField { ofs: 40, bits: 16 };

/// OpenFlow 1.3's `OFPVID_PRESENT`: a `vlan_vid` value with this bit is a tagged frame's id.
pub const VID_PRESENT: u16 = 0x1000;
/// The ethertype pushed on frames leaving by the VLAN uplink (802.1Q).
pub const ETH_8021Q: u16 = 0x8100;

/// NXM register 0: the destination's group (0: none), set by DST_GRP.
pub const REG_DST_GROUP: u8 = 0;

/// NXM register 1: SRV_PROXY's pick of a UDP service's provider (bits 0-15, by `multipath`).
pub const REG_SRV_LINK: u8 = 1;
/// NXM register 2: 1 once SRV_PROXY picked (the table is entered again with the pick).
pub const REG_SRV_PICKED: u8 = 2;
/// At most this many providers of a UDP service port are balanced over (the pick's 16 bits).
pub const SRV_LINK_MAX: u16 = 0xffff;

/// Cookie layout: round (16 bits) | category (8 bits) | object id (40 bits). A new agent run
/// installs everything under a new round and deletes the old round by cookie mask.
pub const COOKIE_ROUND_MASK: u64 = 0xffff << 48;
pub const COOKIE_CATEGORY_MASK: u64 = 0xff << 40;

/// What a flow belongs to (the cookie's category byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    /// Table defaults and fixed flows.
    Pipeline = 1,
    Network = 2,
    LocalEndpoint = 3,
    RemoteEndpoint = 4,
    /// Policy rules; the object id is a key of `Rendered::rules`.
    Policy = 5,
    /// A tenant's DNS port (the agent's DNS server for that tenant); the object id is its
    /// ofport.
    Dns = 6,
    /// Service balancing (SRV_PROXY, the VIP's ARP answer, hairpin rewrites).
    Service = 7,
}

/// The cookie of a flow of `category`, object `id`, agent round `round`.
pub fn cookie(round: u16, category: Category, id: u64) -> u64 {
    (u64::from(round) << 48) | ((category as u64) << 40) | (id & ((1 << 40) - 1))
}

/// The MAC the pipeline's router (every network's gateway) answers with: Contiv's
/// `00:00:11:11:11:11`.
pub const ROUTER_MAC: Mac = [0x00, 0x00, 0x11, 0x11, 0x11, 0x11];

/// Priorities, named by role.
pub const PRIO_PUNT: u16 = 200;
pub const PRIO_HIGH: u16 = 100;
pub const PRIO_PASS: u16 = 10;
pub const PRIO_DEFAULT: u16 = 0;
/// A rule's flows use `PRIO_RULE_BASE + 2 × its Contiv priority (1-100) + 1 if it denies`:
/// higher priority first, deny before allow at equal priority, as the policy IR orders them.
pub const PRIO_RULE_BASE: u16 = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_numbered_in_packet_order_and_metadata_fields_do_not_overlap() {
        for (i, t) in Table::ALL.iter().enumerate() {
            assert_eq!(usize::from(t.id()), i);
        }
        let fields = [META_NETWORK, META_TENANT, META_SRC_GROUP, META_NET_VLAN];
        for (i, a) in fields.iter().enumerate() {
            for b in &fields[i + 1..] {
                assert_eq!(a.mask() & b.mask(), 0);
            }
        }
        assert_eq!(META_TENANT.value(3), 0x300_0000);
        assert_eq!(META_NETWORK.value(0xff_ffff), 0xff_ffff);
        assert_eq!(cookie(2, Category::Policy, 7), 0x0002_0500_0000_0007);
        assert_eq!(cookie(2, Category::Policy, 7) & COOKIE_ROUND_MASK, 2 << 48);
    }

    #[test]
    fn the_pipeline_document_describes_every_table() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/ovs-pipeline.md"
        ))
        .expect("docs/ovs-pipeline.md");
        for t in Table::ALL {
            let heading = format!("### {} {}\n", t.id(), t.name());
            assert!(
                doc.contains(&heading),
                "docs/ovs-pipeline.md lacks {heading:?}"
            );
        }
    }
}
