//! The OVS driver behind the agent's `Datapath` trait, against a real ovsdb-server and
//! ovs-vswitchd in a simulated host's netns: networks and endpoints declared through the trait
//! become veths, bridge ports and flows; workloads reach each other (ARP answered by the
//! pipeline), a removed one is gone without a trace; tunnels follow the remote endpoints; a
//! restarted driver keeps the old round's flows until the agent's resync.

mod common;

use std::net::Ipv4Addr;

use common::{app_net, demo_endpoint, demo_net, ovs_config, run, Host};
use contiv_datapath::{
    Datapath, DatapathError, Encap, FwdMode, MacAddr, NetworkSpec, RemoteEndpoint,
};
use contiv_datapath_ovs::{OvsConfig, OvsDatapath};

#[test]
#[ignore = "needs root"]
fn the_trait_drives_ports_flows_and_tunnels() {
    let mut host = Host::start_named("d");
    host.start_vswitchd();
    let dp = OvsDatapath::start(cfg(&host)).unwrap();
    assert_eq!(dp.round(), 1);

    // No --vlan-uplink: a VLAN network is refused, naming it and what to do.
    let vlan = NetworkSpec {
        id: "demo:v".into(),
        vni: 100,
        ..app_net("demo", 5000, FwdMode::Bridge, Encap::Vlan)
    };
    let e = dp.ensure_network(&vlan).unwrap_err();
    assert!(matches!(e, DatapathError::Invalid { .. }), "{e}");
    assert!(
        e.to_string().contains("network demo:v") && e.to_string().contains("--vlan-uplink"),
        "{e}"
    );
    let (e2, e3) = (demo_endpoint(&mut host, 2), demo_endpoint(&mut host, 3));
    assert!(matches!(
        dp.add_local_endpoint(&e2),
        Err(DatapathError::NetworkNotFound(_))
    ));
    dp.ensure_network(&demo_net()).unwrap();
    let t = std::time::Instant::now();
    let a2 = dp.add_local_endpoint(&e2).unwrap();
    eprintln!("first endpoint added in {:?}", t.elapsed());
    let a3 = dp.add_local_endpoint(&e3).unwrap();
    assert_eq!(a2.mtu, 1450);
    assert_eq!(
        dp.add_local_endpoint(&e3).unwrap(),
        a3,
        "a repeated add converges"
    );
    let (w2, w3) = (&host.workloads[0], &host.workloads[1]);
    assert!(
        host.ping(w2, e3.ip.addr(), None),
        "w2 → w3 through the pipeline"
    );
    assert!(host.ping(w3, e2.ip.addr(), None), "w3 → w2");
    assert!(host.tcp(w3, w2, e3.ip.addr()), "a TCP connection w2 → w3");
    let seen = dp.observe().unwrap();
    let ids: Vec<&str> = seen.local_endpoints.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["ep2", "ep3"]);

    // A remote endpoint brings a VXLAN port to its host and the flows to reach it.
    let remote = RemoteEndpoint {
        id: "ep4".into(),
        network_id: "demo:app".into(),
        ip: Ipv4Addr::new(10, 10, 0, 4),
        mac: MacAddr::from_ipv4(Ipv4Addr::new(10, 10, 0, 4)),
        vtep: Ipv4Addr::new(192, 0, 2, 2),
    };
    dp.set_remote_endpoints("demo:app", &[remote]).unwrap();
    let ports = |h: &Host| {
        let out = run(&mut h.cmd(&h.ns, &["ovs-vsctl", "list-ports", "ovdbr"]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(ports(&host).contains("vxc0000202"), "{}", ports(&host));
    assert!(host
        .dump_flows("ovdbr")
        .contains("set_field:0x1388->tun_id"));
    dp.set_remote_endpoints("demo:app", &[]).unwrap();
    assert!(!ports(&host).contains("vxc0000202"));

    // Removal: the port, the veth and its flows go; the other workload is untouched.
    dp.remove_local_endpoint(&e3).unwrap();
    assert!(!host.ping(w2, e3.ip.addr(), None), "w3 is gone");
    assert!(!ports(&host).contains(&a3.host_ifname));
    assert!(!host.dump_flows("ovdbr").contains("10.10.0.3"));
    let out = run(&mut host.cmd(w3, &["ip", "-o", "link"]));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("eth0"));
    dp.remove_local_endpoint(&e3).unwrap();

    // The driver's flows are the pipeline's, all in round 1.
    let flows = host.dump_flows("ovdbr");
    assert!(flows
        .lines()
        .filter(|l| l.contains("cookie="))
        .all(|l| l.contains("cookie=0x1")));
    drop(dp);

    // A restarted agent takes round 2. Until its full reconcile has declared everything, the
    // flows of round 1 it has not re-declared keep carrying traffic (w2's here); the resync
    // then removes them, and only round 2 remains.
    let dp = OvsDatapath::start(cfg(&host)).unwrap();
    assert_eq!(dp.round(), 2);
    dp.ensure_network(&demo_net()).unwrap();
    let flows = host.dump_flows("ovdbr");
    assert!(
        flows.contains("cookie=0x1030000000"),
        "w2's round-1 flows kept: {flows}"
    );
    assert!(
        flows.contains("cookie=0x2010000000"),
        "round 2 installed: {flows}"
    );
    dp.resync_local_endpoints(&[]).unwrap();
    let flows = host.dump_flows("ovdbr");
    assert!(
        flows
            .lines()
            .filter(|l| l.contains("cookie="))
            .all(|l| l.contains("cookie=0x2")),
        "{flows}"
    );
    assert!(!flows.contains("10.10.0.2"));
}

fn cfg(host: &Host) -> OvsConfig {
    ovs_config(
        &host.ns,
        &host.sock(),
        "ovdbr",
        16657,
        "eth0",
        Ipv4Addr::new(192, 0, 2, 1),
    )
}
