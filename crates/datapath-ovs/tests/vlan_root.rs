//! VLAN bridge mode with real packets: two simulated hosts (each its own ovsdb-server,
//! ovs-vswitchd and OVS driver) joined by a trunk veth whose ends are the hosts' `--vlan-uplink`
//! ports. Two tenants' networks with different VLAN ids: workloads reach their own network on the
//! other host (ping, TCP) and never the other network, not even with a frame addressed straight
//! to the other network's MAC; a capture on the trunk shows 802.1Q frames with both ids. Bad VLAN
//! configuration is refused and changes nothing.

mod common;

use std::net::Ipv4Addr;
use std::process::Stdio;

use common::{ip, linked_hosts, ovs_config, Host};
use contiv_datapath::{
    Datapath, Encap, FwdMode, LocalEndpoint, MacAddr, NetworkSpec, Plumbing, RemoteEndpoint,
};
use contiv_datapath_ovs::{OvsConfig, OvsDatapath};

const RED_VLAN: u32 = 100;
const BLUE_VLAN: u32 = 200;

/// Network `name` of tenant `name` (two tenants: no routing between them), VLAN `tag`.
fn net(name: &str, tag: u32, third: u8) -> NetworkSpec {
    NetworkSpec {
        id: format!("{name}:{name}"),
        tenant: name.into(),
        vni: tag,
        subnet: format!("10.{third}.0.0/24").parse().unwrap(),
        gateway: Ipv4Addr::new(10, third, 0, 1),
        fwd_mode: FwdMode::Bridge,
        encap: Encap::Vlan,
        mtu: 0,
    }
}

fn cfg(h: &Host, bridge: &str, uplink: Option<&str>) -> OvsConfig {
    // No VXLAN here: the VTEP is only the host's identity.
    let mut c = ovs_config(
        &h.ns,
        &h.sock(),
        bridge,
        16670,
        "lo",
        Ipv4Addr::new(192, 0, 2, 1),
    );
    // Not the trunk's (1500): VLAN workloads must get the trunk's MTU, not this.
    c.host.underlay_mtu = 9000;
    c.vlan_uplink = uplink.map(str::to_string);
    c
}

/// Workload `n` of network `net` on host `h` (its namespace made here, removed with the host).
fn endpoint(h: &mut Host, net: &NetworkSpec, n: u8) -> LocalEndpoint {
    let wns = format!("{}-w{}", h.ns, h.workloads.len() + 1);
    ip(&["netns", "add", &wns]);
    h.workloads.push(wns.clone());
    let o = net.gateway.octets();
    let a = Ipv4Addr::new(o[0], o[1], o[2], n);
    LocalEndpoint {
        id: format!("{}-ep{n}", net.tenant),
        network_id: net.id.clone(),
        netns_path: format!("/run/netns/{wns}").into(),
        ifname: "eth0".into(),
        ip: format!("{a}/24").parse().unwrap(),
        mac: MacAddr::from_ipv4(a),
        gateway: net.gateway,
        plumbing: Plumbing::InWorkload,
    }
}

/// `ep` as the other host (VTEP 192.0.2.2) announces it.
fn remote(ep: &LocalEndpoint) -> RemoteEndpoint {
    common::remote(ep, Ipv4Addr::new(192, 0, 2, 2))
}

fn wns_of(ep: &LocalEndpoint) -> String {
    let p = ep.netns_path.display().to_string();
    p.trim_start_matches("/run/netns/").to_string()
}

fn vsctl(h: &Host, args: &[&str]) -> String {
    let mut full = vec!["ovs-vsctl"];
    full.extend_from_slice(args);
    let out = common::run(&mut h.cmd(&h.ns, &full));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What a bad request must leave alone: the flows (cookies included) and the ports.
fn snapshot(h: &Host, br: &str) -> (String, String) {
    (h.dump_flows(br), vsctl(h, &["list-ports", br]))
}

#[test]
#[ignore = "needs root"]
fn vlan_networks_reach_their_own_across_a_trunk_and_never_the_other() {
    let pid = std::process::id() % 100_000;
    let (ta, tb) = (format!("ovl{pid}a"), format!("ovl{pid}b"));
    // The trunk: a veth made in host A's namespace, its other end moved to host B.
    let (mut a, mut b) = linked_hosts("la", "lb", &ta, &tb);

    // An uplink that does not exist: a clear error, and OVS untouched (no bridge made).
    let e = OvsDatapath::start(cfg(&a, "ovlbr", Some("nosuch0")))
        .err()
        .expect("a missing uplink is refused")
        .to_string();
    assert!(
        e.contains("vlan uplink nosuch0") && e.contains("no such interface"),
        "{e}"
    );
    assert_eq!(vsctl(&a, &["list-br"]), "");
    // An uplink carrying the host's addresses (the underlay, a management NIC): refused before
    // OVS is touched, the interface keeps its address and stays out of any bridge.
    a.exec(&["ip", "addr", "add", "192.0.2.77/24", "dev", &ta]);
    let e = OvsDatapath::start(cfg(&a, "ovlbr", Some(&ta)))
        .err()
        .expect("an addressed uplink is refused")
        .to_string();
    assert!(
        e.contains(&format!("vlan uplink {ta}")) && e.contains("192.0.2.77"),
        "{e}"
    );
    assert_eq!(vsctl(&a, &["list-br"]), "");
    a.exec(&["ip", "addr", "del", "192.0.2.77/24", "dev", &ta]);
    // An uplink that is a port of a bridge not ours: refused, and our bridge is not left behind.
    let theirs = format!("ovl{pid}x");
    a.add_veth(&theirs, "ovlxpeer");
    vsctl(
        &a,
        &[
            "add-br",
            "other",
            "--",
            "set",
            "bridge",
            "other",
            "datapath_type=netdev",
            "--",
            "add-port",
            "other",
            &theirs,
        ],
    );
    let e = OvsDatapath::start(cfg(&a, "ovlbr", Some(&theirs)))
        .err()
        .expect("someone else's port is refused")
        .to_string();
    assert!(e.contains(&format!("vlan uplink {theirs}")), "{e}");
    assert_eq!(vsctl(&a, &["list-br"]), "other");
    assert_eq!(vsctl(&a, &["list-ports", "other"]), theirs);

    let dpa = OvsDatapath::start(cfg(&a, "ovlbr", Some(&ta))).unwrap();
    let dpb = OvsDatapath::start(cfg(&b, "ovlbr", Some(&tb))).unwrap();
    // The uplink is a port of the bridge, marked ours and as the uplink.
    assert_eq!(
        vsctl(&a, &["get", "port", &ta, "external_ids:contiv-uplink"]),
        "\"true\""
    );

    let (red, blue) = (net("red", RED_VLAN, 50), net("blue", BLUE_VLAN, 60));
    let (ra, rb) = (endpoint(&mut a, &red, 2), endpoint(&mut b, &red, 3));
    let (ba, bb) = (endpoint(&mut a, &blue, 2), endpoint(&mut b, &blue, 3));
    for (dp, eps) in [(&dpa, [&ra, &ba]), (&dpb, [&rb, &bb])] {
        dp.ensure_network(&red).unwrap();
        dp.ensure_network(&blue).unwrap();
        for ep in eps {
            let att = dp.add_local_endpoint(ep).unwrap();
            assert_eq!(
                att.mtu, 1500,
                "the trunk's MTU: no encapsulation to leave room for"
            );
        }
    }
    for (dp, r, bl) in [(&dpa, &rb, &bb), (&dpb, &ra, &ba)] {
        dp.set_remote_endpoints(&red.id, &[remote(r)]).unwrap();
        dp.set_remote_endpoints(&blue.id, &[remote(bl)]).unwrap();
    }
    // Workload ports show their network's access tag to an operator.
    let port_of = |ep: &LocalEndpoint| contiv_datapath_ovs::driver::plumb::host_ifname(&ep.id);
    assert_eq!(vsctl(&a, &["get", "port", &port_of(&ra), "tag"]), "100");
    assert_eq!(vsctl(&b, &["get", "port", &port_of(&bb), "tag"]), "200");
    // No VXLAN port: VLAN networks need no tunnel.
    assert!(!vsctl(&a, &["list-ports", "ovlbr"]).contains("vx"));

    // The capture on host A's trunk end, started before any traffic.
    let mut capture = a
        .cmd(
            &a.ns,
            &["tcpdump", "-e", "-nn", "-l", "-i", &ta, "-c", "500", "vlan"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump");
    common::wait_capturing(&mut capture);

    let (wra, wrb, wba, wbb) = (wns_of(&ra), wns_of(&rb), wns_of(&ba), wns_of(&bb));
    assert!(
        (0..5).any(|_| a.ping(&wra, rb.ip.addr(), None)),
        "red on A → red on B over VLAN {RED_VLAN}"
    );
    assert!(b.ping(&wrb, ra.ip.addr(), None), "red B → red A");
    assert!(
        (0..5).any(|_| a.ping(&wba, bb.ip.addr(), None)),
        "blue on A → blue on B over VLAN {BLUE_VLAN}"
    );
    assert!(b.ping(&wbb, ba.ip.addr(), None), "blue B → blue A");
    // Full-size frames (MTU 1500, don't fragment) cross with the tag's 4 bytes on top.
    let full = a
        .cmd(
            &wra,
            &[
                "ping",
                "-c",
                "1",
                "-W",
                "2",
                "-M",
                "do",
                "-s",
                "1472",
                "-q",
                &rb.ip.addr().to_string(),
            ],
        )
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(full, "a 1500-byte packet red A → red B over the trunk");
    assert!(a.tcp(&wrb, &wra, rb.ip.addr()), "TCP red A → red B");
    assert!(b.tcp(&wba, &wbb, ba.ip.addr()), "TCP blue B → blue A");

    // Never the other network: not routed (another tenant), and not even a frame sent straight
    // to blue B's MAC from red A (an on-link route and a static neighbour entry for it).
    assert!(
        !a.ping(&wra, bb.ip.addr(), None),
        "red A must not reach blue B"
    );
    let (bb_ip, bb_mac) = (bb.ip.addr().to_string(), bb.mac.to_string());
    for args in [
        vec!["ip", "route", "add", &bb_ip, "dev", "eth0"],
        vec![
            "ip", "neigh", "replace", &bb_ip, "lladdr", &bb_mac, "dev", "eth0",
        ],
    ] {
        common::run(&mut a.cmd(&wra, &args));
    }
    assert!(
        !a.ping(&wra, bb.ip.addr(), None),
        "a frame to blue's MAC from red must not cross"
    );
    assert!(
        !b.ping(&wbb, ra.ip.addr(), None),
        "blue B must not reach red A"
    );

    // The capture: 802.1Q frames with both ids crossed the trunk.
    // SAFETY: kill on the pid of the tcpdump this test spawned.
    unsafe { libc::kill(capture.id() as i32, libc::SIGINT) };
    let out = capture.wait_with_output().expect("tcpdump output");
    let text = String::from_utf8_lossy(&out.stdout);
    for tag in [RED_VLAN, BLUE_VLAN] {
        assert!(
            text.lines()
                .any(|l| l.contains("ethertype 802.1Q (0x8100)")
                    && l.contains(&format!("vlan {tag},"))),
            "no 802.1Q frame with VLAN {tag} on the trunk:\n{text}"
        );
    }
    // Blue's addresses only ever crossed in blue's VLAN, red's in red's.
    for l in text.lines().filter(|l| l.contains("10.60.0.")) {
        assert!(l.contains(&format!("vlan {BLUE_VLAN},")), "{l}");
    }
    for l in text.lines().filter(|l| l.contains("10.50.0.")) {
        assert!(l.contains(&format!("vlan {RED_VLAN},")), "{l}");
    }

    // The flows OVS holds are the rendered ones (tests/golden/vlan.txt's shapes): the tag
    // popped into its network on the way in, pushed on the way out, by the uplink.
    let up = vsctl(&a, &["get", "interface", &ta, "ofport"]);
    let flows = a.dump_flows("ovlbr");
    for want in [
        format!("in_port={up},dl_vlan=100 actions=pop_vlan,write_metadata:0x100000001000064/"),
        format!("in_port={up},dl_vlan=200 actions=pop_vlan,write_metadata:0x100000002000"),
        format!("actions=push_vlan:0x8100,set_field:4196->vlan_vid,output:{up}"),
        format!("actions=push_vlan:0x8100,set_field:4296->vlan_vid,output:{up}"),
    ] {
        assert!(flows.contains(&want), "{want} not in\n{flows}");
    }

    // An unknown tag arriving on the trunk goes nowhere (VLAN's default drop); a known one is
    // taken in (OVS's own trace of the installed pipeline).
    let trace = |vlan: u32| {
        let flow = format!(
            "in_port={up},dl_vlan={vlan},dl_src={},dl_dst={},ip,nw_src={},nw_dst={}",
            rb.mac,
            ra.mac,
            rb.ip.addr(),
            ra.ip.addr()
        );
        let out = common::run(&mut a.cmd(&a.ns, &["ovs-appctl", "ofproto/trace", "ovlbr", &flow]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let unknown = trace(300);
    assert!(
        unknown.contains("Datapath actions: drop"),
        "VLAN 300 is no network here:\n{unknown}"
    );
    let known = trace(RED_VLAN);
    assert!(
        known.contains("pop_vlan") && known.contains("ct(zone=1"),
        "VLAN 100 is red's:\n{known}"
    );

    // Bad configuration: refused naming the network, nothing changed (flows, ports).
    let before = snapshot(&a, "ovlbr");
    let taken = net("green", RED_VLAN, 70);
    let e = dpa.ensure_network(&taken).unwrap_err().to_string();
    assert!(
        e.contains("network green:green")
            && e.contains("VLAN id 100 is already used by network red:red"),
        "{e}"
    );
    let e = dpa
        .ensure_network(&net("green", 4095, 70))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("network green:green") && e.contains("VLAN id 4095 outside 1-4094"),
        "{e}"
    );
    // An endpoint of the refused network finds no network, so gets no port either.
    let g = endpoint(&mut a, &taken, 9);
    assert!(dpa.add_local_endpoint(&g).is_err());
    assert_eq!(snapshot(&a, "ovlbr"), before);

    drop((dpa, dpb));
}
