//! Golden tests of the rendered flow dump for two hosts' worth of state: two tenants with the
//! same subnet, two networks routed in one tenant, local and remote endpoints, Contiv rules
//! compiled by the real policy compiler. `UPDATE_GOLDEN=1 cargo test -p contiv-datapath-ovs`
//! rewrites the golden files.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use contiv_datapath::{
    Encap, FwdMode, LocalEndpoint, MacAddr, NetworkSpec, Plumbing, RemoteEndpoint, ServicePort,
    ServiceSpec,
};
use contiv_policy::{
    compile_tenant, GroupRef, HostPolicy, Member, NetworkRef, PolicyInput, RuleSpec, Scope,
};

use super::*;
use crate::dump::dump;
use crate::pipeline::{Table, COOKIE_ROUND_MASK};

fn golden(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path).expect("golden file (UPDATE_GOLDEN=1 to create)");
    assert_eq!(text, want, "{name} differs from the golden file");
}

fn net(tenant: &str, name: &str, vni: u32, subnet: &str) -> NetworkSpec {
    let subnet: ipnet::Ipv4Net = subnet.parse().unwrap();
    NetworkSpec {
        id: format!("{tenant}:{name}"),
        tenant: tenant.into(),
        vni,
        subnet,
        gateway: subnet.hosts().next().unwrap(),
        fwd_mode: FwdMode::Bridge,
        encap: Encap::Vxlan,
        mtu: 0,
    }
}

fn local(id: &str, network: &str, ip: &str) -> LocalEndpoint {
    let ip: ipnet::Ipv4Net = ip.parse().unwrap();
    LocalEndpoint {
        id: id.into(),
        network_id: network.into(),
        netns_path: "/run/netns/x".into(),
        ifname: "eth0".into(),
        ip,
        mac: MacAddr::from_ipv4(ip.addr()),
        gateway: ip.hosts().next().unwrap(),
        plumbing: Plumbing::InWorkload,
    }
}

fn rule(
    id: &str,
    dir: &str,
    act: &str,
    prio: i64,
    f: impl FnOnce(&mut contiv_model::Rule),
) -> RuleSpec {
    let mut r = contiv_model::Rule {
        tenant_name: "demo".into(),
        policy_name: "db-in".into(),
        rule_id: id.into(),
        direction: dir.into(),
        action: act.into(),
        priority: prio,
        ..Default::default()
    };
    f(&mut r);
    RuleSpec::from_model(&r).expect("valid rule")
}

fn member(id: &str, g: &str, ip: [u8; 4], host: &str) -> Member {
    Member {
        id: id.into(),
        tenant: "demo".into(),
        group: g.into(),
        ip: Ipv4Addr::from(ip),
        host: host.into(),
    }
}

/// The quickstart's policy: db denies icmp in (priority 1) but allows it from web (10); web
/// may not open tcp/22 anywhere in 10.20.0.0/16 except 10.20.0.1-2 (an out-rule with a range).
fn policy_input() -> PolicyInput {
    let out_rule = |id: &str, act: &str, prio: i64, f: fn(&mut contiv_model::Rule)| {
        let mut r = rule(id, "out", act, prio, f);
        r.id.policy = "web-out".into();
        r
    };
    PolicyInput {
        networks: vec![NetworkRef {
            tenant: "demo".into(),
            name: "app".into(),
            subnet: "10.10.0.0/24".parse().unwrap(),
        }],
        groups: vec![
            GroupRef {
                tenant: "demo".into(),
                name: "db".into(),
                policies: vec!["db-in".into()],
            },
            GroupRef {
                tenant: "demo".into(),
                name: "web".into(),
                policies: vec!["web-out".into()],
            },
        ],
        rules: vec![
            rule("1", "in", "deny", 1, |r| r.protocol = "icmp".into()),
            rule("2", "in", "allow", 10, |r| {
                r.protocol = "icmp".into();
                r.from_endpoint_group = "web".into();
            }),
            out_rule("1", "deny", 5, |r| {
                r.protocol = "tcp".into();
                r.port = 22;
                r.to_ip_address = "10.20.0.0/16".into();
            }),
            out_rule("2", "allow", 6, |r| {
                r.protocol = "tcp".into();
                r.port = 22;
                r.to_ip_address = "10.20.0.1-2".into();
            }),
        ],
        endpoints: vec![
            member("ep1", "web", [10, 10, 0, 2], "h1"),
            member("ep2", "db", [10, 10, 0, 3], "h1"),
            member("ep3", "web", [10, 10, 0, 4], "h2"),
        ],
    }
}

struct Fixture {
    networks: Vec<NetworkSpec>,
    locals: Vec<LocalEndpoint>,
    remotes: Vec<RemoteEndpoint>,
    policy: HostPolicy,
    ports: Ports,
    tenants: BTreeMap<String, u16>,
    groups: GroupNumbers,
    services: BTreeMap<String, TenantServices>,
}

fn fixture() -> Fixture {
    let mut policy = HostPolicy::new();
    policy.insert(
        "demo".into(),
        compile_tenant(&policy_input(), Scope::Host("h1"), "demo"),
    );
    let mut groups = GroupNumbers::default();
    groups.assign(&policy);
    let vtep2 = Ipv4Addr::new(192, 0, 2, 2);
    Fixture {
        networks: vec![
            net("demo", "app", 5000, "10.10.0.0/24"),
            net("demo", "db", 5001, "10.20.0.0/24"),
            // Another tenant reusing the subnet and even the addresses.
            net("other", "app", 6000, "10.10.0.0/24"),
        ],
        locals: vec![
            local("ep1", "demo:app", "10.10.0.2/24"),
            local("ep2", "demo:app", "10.10.0.3/24"),
            local("ep5", "demo:db", "10.20.0.5/24"),
            local("ep9", "other:app", "10.10.0.2/24"),
        ],
        remotes: vec![RemoteEndpoint {
            id: "ep3".into(),
            network_id: "demo:app".into(),
            ip: Ipv4Addr::new(10, 10, 0, 4),
            mac: MacAddr::from_ipv4(Ipv4Addr::new(10, 10, 0, 4)),
            vtep: vtep2,
        }],
        policy,
        groups,
        ports: Ports {
            endpoints: [("ep1", 3), ("ep2", 4), ("ep5", 5), ("ep9", 6)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            tunnels: [(vtep2, 1)].into_iter().collect(),
            uplink: None,
            // Each tenant's DNS port.
            dns: [("demo", 7), ("other", 8)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        },
        tenants: [("demo".to_string(), 1), ("other".to_string(), 2)]
            .into_iter()
            .collect(),
        services: [("demo".to_string(), web_service(&["10.10.0.2", "10.10.0.4"]))]
            .into_iter()
            .collect(),
    }
}

/// demo's `web`: VIP 10.10.0.200, tcp 80 → 8080 and udp 53 → 5353, on the given providers
/// (10.10.0.2 is ep1, local; 10.10.0.4 is ep3, remote).
fn web_service(providers: &[&str]) -> TenantServices {
    TenantServices {
        tenant: "demo".into(),
        services: vec![ServiceSpec {
            name: "demo:web".into(),
            vip: Ipv4Addr::new(10, 10, 0, 200),
            ports: ["80:8080:TCP", "53:5353:UDP"]
                .iter()
                .map(|p| ServicePort::parse(p).unwrap())
                .collect(),
            providers: providers.iter().map(|p| p.parse().unwrap()).collect(),
        }],
    }
}

fn desired(f: &Fixture, round: u16) -> Desired<'_> {
    Desired {
        networks: &f.networks,
        local_endpoints: &f.locals,
        remote_endpoints: &f.remotes,
        policy: &f.policy,
        ports: &f.ports,
        tenants: &f.tenants,
        groups: &f.groups,
        services: &f.services,
        round,
    }
}

#[test]
fn full_pipeline_matches_golden() {
    let f = fixture();
    let r = render(&desired(&f, 1));
    assert!(r.pending.is_empty(), "{:?}", r.pending);
    golden("full.txt", &dump(&r.flows));
    golden("groups.txt", &crate::dump::dump_groups(&r.groups));
    let mut rules: Vec<String> = r.rules.values().map(ToString::to_string).collect();
    rules.sort();
    assert_eq!(
        rules,
        [
            "demo:db-in:1",
            "demo:db-in:2",
            "demo:web-out:1",
            "demo:web-out:2"
        ]
    );
}

/// VLAN bridge mode: tenant demo with VLAN networks red (VLAN 5) and blue (VLAN 7) beside a
/// VXLAN network app whose VNI is also 5; the trunk uplink is port 2; one local workload per
/// network, one remote on red and one on blue (behind the same host: the trunk reaches both).
fn vlan_fixture() -> Fixture {
    let vlan = |name: &str, tag: u32, subnet: &str| NetworkSpec {
        encap: Encap::Vlan,
        ..net("demo", name, tag, subnet)
    };
    let remote = |id: &str, network: &str, ip: [u8; 4]| RemoteEndpoint {
        id: id.into(),
        network_id: network.into(),
        ip: ip.into(),
        mac: MacAddr::from_ipv4(ip.into()),
        vtep: Ipv4Addr::new(192, 0, 2, 2),
    };
    Fixture {
        networks: vec![
            net("demo", "app", 5, "10.10.0.0/24"),
            vlan("red", 5, "10.50.0.0/24"),
            vlan("blue", 7, "10.70.0.0/24"),
        ],
        locals: vec![
            local("ep1", "demo:app", "10.10.0.2/24"),
            local("r1", "demo:red", "10.50.0.2/24"),
            local("b1", "demo:blue", "10.70.0.2/24"),
        ],
        remotes: vec![
            remote("r2", "demo:red", [10, 50, 0, 3]),
            remote("b2", "demo:blue", [10, 70, 0, 3]),
        ],
        policy: HostPolicy::new(),
        groups: GroupNumbers::default(),
        ports: Ports {
            endpoints: [("ep1", 3), ("r1", 4), ("b1", 5)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            tunnels: Default::default(),
            uplink: Some(2),
            dns: Default::default(),
        },
        tenants: [("demo".to_string(), 1)].into_iter().collect(),
        services: BTreeMap::new(),
    }
}

#[test]
fn vlan_mode_matches_golden() {
    let f = vlan_fixture();
    let r = render(&desired(&f, 1));
    assert!(r.pending.is_empty(), "{:?}", r.pending);
    let text = dump(&r.flows);
    golden("vlan.txt", &text);
    // What a user relies on, beside the golden text: remote red leaves tagged 5, blue tagged 7,
    // both by the uplink; each tag arriving there is popped into its own network; VLAN 5 and
    // VNI 5 never share a metadata value.
    assert!(text.contains(
        "metadata=0x100000000000005/0x100000000ffffff,dl_dst=02:02:0a:32:00:03 actions=push_vlan:0x8100,set_field:4101->vlan_vid,output:2"
    ), "{text}");
    assert!(text.contains(
        "metadata=0x100000000000007/0x100000000ffffff,dl_dst=02:02:0a:46:00:03 actions=push_vlan:0x8100,set_field:4103->vlan_vid,output:2"
    ), "{text}");
    assert!(text.contains("in_port=2,dl_vlan=5 actions=pop_vlan,write_metadata:0x100000001000005/0x10000ffffffffff,goto_table:2"), "{text}");
    assert!(
        text.contains("in_port=2,dl_vlan=7 actions=pop_vlan,"),
        "{text}"
    );
    assert!(
        text.contains("metadata=0x5/0x100000000ffffff,dl_dst=02:02:0a:0a:00:02 actions=output:3"),
        "{text}"
    );
    // No tunnel: nothing sets a VNI.
    assert!(!text.contains("tun_id"), "{text}");
}

#[test]
fn the_pipeline_document_shows_the_golden_flows() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/ovs-pipeline.md"
    ))
    .unwrap();
    for name in ["full.txt", "vlan.txt"] {
        let golden = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/golden")
                .join(name),
        )
        .unwrap();
        for line in golden.lines() {
            assert!(
                doc.contains(line),
                "docs/ovs-pipeline.md lacks {line} ({name})"
            );
        }
    }
}

#[test]
fn rendering_is_deterministic_and_every_cookie_carries_the_round() {
    let f = fixture();
    let a = render(&desired(&f, 7));
    assert_eq!(a, render(&desired(&f, 7)));
    assert!(a
        .flows
        .iter()
        .all(|fl| fl.cookie & COOKIE_ROUND_MASK == 7 << 48));
    // Another round differs only in the cookies.
    let mut b = render(&desired(&f, 8)).flows;
    for fl in &mut b {
        fl.cookie = (fl.cookie & !COOKIE_ROUND_MASK) | (7 << 48);
    }
    assert_eq!(a.flows, b);
    // No two flows share table, priority and match (OVS would keep only one of them).
    let mut keys: Vec<(u8, u16, String)> = a
        .flows
        .iter()
        .map(|fl| {
            (
                fl.table_id,
                fl.priority,
                crate::dump::match_text(&fl.r#match),
            )
        })
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n);
}

#[test]
fn what_cannot_be_rendered_yet_is_reported_not_half_rendered() {
    let mut f = fixture();
    f.ports.endpoints.remove("ep2");
    f.ports.tunnels.clear();
    f.networks.push(NetworkSpec {
        encap: Encap::Vlan,
        ..net("demo", "vl", 100, "10.30.0.0/24")
    });
    f.tenants.remove("other");
    let r = render(&desired(&f, 1));
    assert_eq!(
        r.pending,
        [
            "network other:app: no number for tenant other",
            "network demo:vl: VLAN without an uplink",
            "endpoint ep2: no ofport yet",
            "remote endpoint ep3: no tunnel to 192.0.2.2 yet",
        ]
    );
    let text = dump(&r.flows);
    assert!(
        !text.contains("output:4") && !text.contains("output:1"),
        "{text}"
    );
    assert!(
        !text.contains("metadata=0x2000000/0xffff000000"),
        "tenant other has no flows:\n{text}"
    );
}

#[test]
fn ranges_become_the_fewest_cidrs() {
    let c = |a: &str, b: &str| {
        range_to_cidrs(a.parse().unwrap(), b.parse().unwrap())
            .iter()
            .map(|(ip, l)| format!("{ip}/{l}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        c("10.20.0.1", "10.20.0.2"),
        ["10.20.0.1/32", "10.20.0.2/32"]
    );
    assert_eq!(c("10.0.0.0", "10.0.0.255"), ["10.0.0.0/24"]);
    assert_eq!(
        c("10.0.0.1", "10.0.0.6"),
        ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]
    );
    assert_eq!(c("0.0.0.0", "255.255.255.255"), ["0.0.0.0/0"]);
    assert_eq!(
        c("255.255.255.255", "255.255.255.255"),
        ["255.255.255.255/32"]
    );
    assert!(c("10.0.0.2", "10.0.0.1").is_empty());
}

#[test]
fn every_table_has_a_default_flow() {
    let f = fixture();
    let r = render(&desired(&f, 1));
    for t in Table::ALL {
        assert!(
            r.flows
                .iter()
                .any(|fl| fl.table_id == t.id() && fl.priority == 0 && fl.r#match.0.is_empty()),
            "{}",
            t.name()
        );
    }
}

#[test]
fn diff_converges_on_churn_and_touches_only_what_changed() {
    use crate::diff::{apply, diff};
    let f = fixture();
    let before = render(&desired(&f, 1)).flows;
    let mut g = fixture();
    // One workload leaves, another arrives, and db's in-rules lose the deny.
    g.locals.retain(|l| l.id != "ep5");
    g.locals.push(local("ep7", "demo:app", "10.10.0.7/24"));
    g.ports.endpoints.insert("ep7".into(), 7);
    let mut input = policy_input();
    input
        .rules
        .retain(|r| !(r.id.policy == "db-in" && r.id.rule == "1"));
    g.policy.insert(
        "demo".into(),
        compile_tenant(&input, Scope::Host("h1"), "demo"),
    );
    let after = render(&desired(&g, 1)).flows;

    let mods = diff(&before, &after);
    assert_eq!(dump(&apply(&before, &mods).unwrap()), dump(&after));
    assert!(diff(&after, &after).is_empty());
    let text = crate::dump::mods(&mods);
    // ep5 out, ep7 in (six flows each: input, IP and ARP guard, ARP answer, routing,
    // delivery), the deny gone, and nothing else: the other rules keep their priorities and
    // cookies.
    assert_eq!(
        text.lines().filter(|l| l.starts_with("- ")).count(),
        7,
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("+ ")).count(),
        6,
        "{text}"
    );
    golden("diff_churn.txt", &text);

    // A restart's new round re-adds every flow under its cookie and deletes nothing.
    let next = render(&desired(&f, 2)).flows;
    let mods = diff(&before, &next);
    assert_eq!(mods.len(), next.len());
    assert!(mods
        .iter()
        .all(|m| m.command == contiv_openflow::FlowModCommand::Add));
    assert_eq!(dump(&apply(&before, &mods).unwrap()), dump(&next));
}

#[test]
fn a_new_group_changes_only_its_own_flows() {
    use crate::diff::diff;
    let f = fixture();
    let before = render(&desired(&f, 1)).flows;
    // Group "app" sorts before db and web: numbered by sorted name, it would have renumbered
    // both and rewritten every flow carrying their numbers.
    let mut input = policy_input();
    input.groups.push(GroupRef {
        tenant: "demo".into(),
        name: "app".into(),
        policies: vec!["app-in".into()],
    });
    let mut r = rule("1", "in", "deny", 3, |r| {
        r.protocol = "tcp".into();
        r.port = 80;
    });
    r.id.policy = "app-in".into();
    input.rules.push(r);
    input
        .endpoints
        .push(member("ep5", "app", [10, 20, 0, 5], "h1"));
    let mut g = fixture();
    g.policy.insert(
        "demo".into(),
        compile_tenant(&input, Scope::Host("h1"), "demo"),
    );
    g.groups.assign(&g.policy);
    assert_eq!(g.groups.get("demo", "db"), f.groups.get("demo", "db"));
    assert_eq!(g.groups.get("demo", "web"), f.groups.get("demo", "web"));
    assert_eq!(g.groups.get("demo", "app"), Some(3));
    let after = render(&desired(&g, 1));
    assert!(after.pending.is_empty(), "{:?}", after.pending);

    let mods = diff(&before, &after.flows);
    let text = crate::dump::mods(&mods);
    // Two flows, both added, both app's: its member's DST_GRP mark and its in-rule.
    assert_eq!(mods.len(), 2, "{text}");
    assert!(mods
        .iter()
        .all(|m| m.command == contiv_openflow::FlowModCommand::Add));
    assert!(
        text.contains("table=5,") && text.contains("nw_dst=10.20.0.5"),
        "{text}"
    );
    assert!(
        text.contains("table=7,") && text.contains("reg0=0x3,"),
        "{text}"
    );
}

/// Routing mode: ARP for any endpoint, local or remote, is answered with the router MAC (so
/// traffic within the subnet is routed too); bridge mode answers with the endpoint's MAC.
#[test]
fn routing_mode_answers_arp_with_the_router_mac() {
    let mut f = fixture();
    f.networks[0].fwd_mode = FwdMode::Routing;
    let text = dump(&render(&desired(&f, 1)).flows);
    let replies: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("table=11,") && l.contains("arp_op=1"))
        .collect();
    let answer_of = |ip: &str| {
        replies
            .iter()
            .find(|l| l.contains("metadata=0x1388/") && l.contains(&format!("arp_tpa={ip},")))
            .map(|l| l.contains("set_field:00:00:11:11:11:11->arp_sha"))
            .unwrap_or_else(|| panic!("no ARP reply for {ip}"))
    };
    assert!(answer_of("10.10.0.2"), "local endpoint in routing mode");
    assert!(answer_of("10.10.0.4"), "remote endpoint in routing mode");
    // demo:db stays in bridge mode: its endpoint answers for itself.
    let db = replies
        .iter()
        .find(|l| l.contains("arp_tpa=10.20.0.5,"))
        .expect("ARP reply for 10.20.0.5");
    assert!(db.contains("set_field:02:02:0a:14:00:05->arp_sha"), "{db}");
}

/// DNS: each tenant's queries to its gateway go to its own DNS port ahead of conntrack (the
/// same gateway address in two tenants included); a DNS port of a tenant without a network
/// here gets no flow; without DNS ports nothing mentions port 53.
#[test]
fn dns_to_a_gateway_goes_to_its_tenants_port_ahead_of_conntrack() {
    let mut f = fixture();
    f.ports.dns.insert("gone".into(), 9);
    let text = dump(&render(&desired(&f, 1)).flows);
    let conntrack = |port: u32| -> Vec<&str> {
        text.lines()
            .filter(|l| l.contains("table=2,") && l.ends_with(&format!("actions=output:{port}")))
            .collect()
    };
    // demo: two networks × udp/tcp; other (same subnet, same gateway): its own port.
    assert_eq!(conntrack(7).len(), 4, "{text}");
    assert_eq!(conntrack(8).len(), 2, "{text}");
    assert!(conntrack(8)
        .iter()
        .all(|l| l.contains("priority=200,") && l.contains("metadata=0x2001770/")));
    assert!(
        !text.contains("in_port=9") && !text.contains("output:9"),
        "{text}"
    );
    f.ports.dns.clear();
    let text = dump(&render(&desired(&f, 1)).flows);
    // (The fixture's UDP service on port 53 has its own flows, in SRV_PROXY.)
    assert!(
        !text
            .lines()
            .any(|l| l.contains("table=2,") && l.contains("tp_dst=53")),
        "{text}"
    );
}

#[test]
fn services_render_a_group_per_port_and_a_provider_change_touches_only_the_groups() {
    let mut f = fixture();
    let r1 = render(&desired(&f, 1));
    assert_eq!(r1.groups.len(), 1, "one select group per TCP service port");
    for g in &r1.groups {
        assert_eq!(g.group_type, contiv_openflow::GroupType::Select);
        assert_eq!(g.buckets.len(), 2, "one bucket per provider");
        assert!(g.buckets.iter().all(|b| b.weight == 1));
    }
    let tcp = group_id("demo", "demo:web", contiv_datapath::Transport::Tcp, 80);
    assert!(r1.groups.iter().any(|g| g.group_id == tcp));
    // The same service port has the same group in every rendering (and run).
    assert_eq!(
        tcp,
        group_id("demo", "demo:web", contiv_datapath::Transport::Tcp, 80)
    );
    assert_ne!(
        tcp,
        group_id("other", "demo:web", contiv_datapath::Transport::Tcp, 80)
    );

    // A provider gone (the remote one), one added (ep2) and one the host does not know (its
    // remote endpoint not declared yet: left out, reported): the TCP group changes, no TCP flow
    // does, so open connections (conntrack's NAT) are untouched.
    f.services.insert(
        "demo".into(),
        web_service(&["10.10.0.2", "10.10.0.3", "10.10.0.9"]),
    );
    let r2 = render(&desired(&f, 1));
    // UDP (multipath, no group): one DNAT flow per provider, the link numbers kept.
    let udp_links = |r: &Rendered| -> Vec<String> {
        dump(&r.flows)
            .lines()
            .filter(|l| l.contains("reg2=0x1") && l.contains("udp"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(udp_links(&r1).len(), 2);
    let tcp_flows = |r: &Rendered| -> Vec<String> {
        dump(&r.flows)
            .lines()
            .filter(|l| l.contains("table=4,") && l.contains("tcp"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(tcp_flows(&r1).len(), 1);
    assert_eq!(tcp_flows(&r1), tcp_flows(&r2));
    assert!(udp_links(&r2).iter().any(|l| l.contains("10.10.0.3:5353")));
    assert!(!dump(&r2.flows).contains("10.10.0.9"));
    assert!(
        r2.pending.iter().any(|p| p.contains("demo:web")),
        "{:?}",
        r2.pending
    );
    assert_ne!(r1.groups, r2.groups);
    let text = crate::dump::dump_groups(&r2.groups);
    assert!(
        text.contains("nat(dst=10.10.0.3:8080)") && !text.contains("10.10.0.4"),
        "{text}"
    );

    // The local provider gone: its hairpin rewrites go with it.
    f.services
        .insert("demo".into(), web_service(&["10.10.0.4"]));
    let r3 = render(&desired(&f, 1));
    let hairpin = |r: &Rendered| {
        dump(&r.flows)
            .lines()
            .filter(|l| l.contains("->ip_src") || l.contains("->ip_dst"))
            .count()
    };
    assert_eq!(hairpin(&r1), 3, "IP rewrite + one answer per target port");
    assert_eq!(hairpin(&r3), 0);

    // No provider: no group and no SRV_PROXY flow, the VIP's ARP still answered.
    f.services.insert("demo".into(), web_service(&[]));
    let r4 = render(&desired(&f, 1));
    assert!(r4.groups.is_empty());
    let flows = dump(&r4.flows);
    assert!(!flows.contains("group:"), "{flows}");
    assert!(flows.contains("arp_tpa=10.10.0.200"), "{flows}");
    assert!(!flows.contains("multipath"), "{flows}");
    assert!(r4.pending.is_empty(), "{:?}", r4.pending);
}
