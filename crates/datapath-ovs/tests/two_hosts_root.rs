//! Two simulated hosts, each with its own ovsdb-server, ovs-vswitchd and OVS driver, joined by
//! an underlay veth: workloads on different hosts reach each other through the pipeline and a
//! userspace VXLAN tunnel (the VNI set per packet by the pipeline, `key=flow`), with ARP answered
//! on each host for the other's endpoint.

mod common;

use std::net::Ipv4Addr;

use common::{ip, Host};
use contiv_datapath::{
    Datapath, Encap, FwdMode, HostSpec, LocalEndpoint, MacAddr, NetworkSpec, Plumbing,
    RemoteEndpoint,
};
use contiv_datapath_ovs::switch::SwitchConfig;
use contiv_datapath_ovs::{OvsConfig, OvsDatapath};

fn net() -> NetworkSpec {
    NetworkSpec {
        id: "demo:app".into(),
        tenant: "demo".into(),
        vni: 5000,
        subnet: "10.10.0.0/24".parse().unwrap(),
        gateway: Ipv4Addr::new(10, 10, 0, 1),
        fwd_mode: FwdMode::Bridge,
        encap: Encap::Vxlan,
        mtu: 0,
    }
}

/// Host `n` (1 or 2): underlay 192.0.2.n on a netdev bridge `ovxphy` holding its end of the
/// underlay veth (userspace VXLAN sends from an address OVS itself owns), and the driver.
fn driver(h: &Host, n: u8, underlay_if: &str) -> (OvsDatapath, Ipv4Addr) {
    let vtep = Ipv4Addr::new(192, 0, 2, n);
    let cidr = format!("{vtep}/24");
    for args in [
        vec![
            "ovs-vsctl",
            "add-br",
            "ovxphy",
            "--",
            "set",
            "bridge",
            "ovxphy",
            "datapath_type=netdev",
        ],
        vec!["ovs-vsctl", "add-port", "ovxphy", underlay_if],
        vec!["ip", "link", "set", underlay_if, "up"],
        vec!["ip", "addr", "add", &cidr, "dev", "ovxphy"],
        vec!["ip", "link", "set", "ovxphy", "up"],
    ] {
        h.exec(&args);
    }
    let dp = OvsDatapath::start(OvsConfig {
        switch: SwitchConfig {
            ovsdb: format!("unix:{}", h.sock()),
            bridge: "ovxbr".into(),
            openflow_port: 16660,
            owner: "netplugin-test".into(),
        },
        host: HostSpec {
            vtep_ip: vtep,
            underlay_ifname: "ovxphy".into(),
            underlay_mtu: 1500,
        },
        host_netns: Some(format!("/run/netns/{}", h.ns).into()),
        vlan_uplink: None,
        dns: None,
    })
    .unwrap();
    (dp, vtep)
}

fn endpoint(h: &mut Host, n: u8) -> LocalEndpoint {
    let wns = format!("{}-w{n}", h.ns);
    ip(&["netns", "add", &wns]);
    h.workloads.push(wns.clone());
    let a = Ipv4Addr::new(10, 10, 0, n);
    LocalEndpoint {
        id: format!("ep{n}"),
        network_id: "demo:app".into(),
        netns_path: format!("/run/netns/{wns}").into(),
        ifname: "eth0".into(),
        ip: format!("{a}/24").parse().unwrap(),
        mac: MacAddr::from_ipv4(a),
        gateway: Ipv4Addr::new(10, 10, 0, 1),
        plumbing: Plumbing::InWorkload,
    }
}

fn remote(ep: &LocalEndpoint, vtep: Ipv4Addr) -> RemoteEndpoint {
    RemoteEndpoint {
        id: ep.id.clone(),
        network_id: ep.network_id.clone(),
        ip: ep.ip.addr(),
        mac: ep.mac,
        vtep,
    }
}

#[test]
#[ignore = "needs root"]
fn workloads_on_two_hosts_reach_each_other_over_vxlan() {
    let pid = std::process::id() % 100_000;
    let (ua, ub) = (format!("ovx{pid}a"), format!("ovx{pid}b"));
    let mut a = Host::start_named("xa");
    let mut b = Host::start_named("xb");
    a.start_vswitchd();
    b.start_vswitchd();
    // The underlay: a veth made in the host A namespace, its other end moved to host B.
    a.exec(&[
        "ip", "link", "add", &ua, "type", "veth", "peer", "name", &ub,
    ]);
    a.exec(&["ip", "link", "set", &ub, "netns", &b.ns]);
    let (dpa, vtep_a) = driver(&a, 1, &ua);
    let (dpb, vtep_b) = driver(&b, 2, &ub);

    let (e2, e3) = (endpoint(&mut a, 2), endpoint(&mut b, 3));
    for (dp, ep) in [(&dpa, &e2), (&dpb, &e3)] {
        dp.ensure_network(&net()).unwrap();
        dp.add_local_endpoint(ep).unwrap();
    }
    dpa.set_remote_endpoints("demo:app", &[remote(&e3, vtep_b)])
        .unwrap();
    dpb.set_remote_endpoints("demo:app", &[remote(&e2, vtep_a)])
        .unwrap();

    // The first packets may go while OVS resolves the other VTEP's MAC: a few tries.
    let (w2, w3) = (a.workloads[0].clone(), b.workloads[0].clone());
    let reached = (0..5).any(|_| a.ping(&w2, e3.ip.addr(), None));
    assert!(reached, "w2 on host A → w3 on host B over VXLAN");
    assert!(b.ping(&w3, e2.ip.addr(), None), "w3 → w2");
    // TCP across: the workloads' checksums are complete (offload off), so the tunnel carries it.
    let listener = b
        .cmd(&w3, &["timeout", "5", "nc", "-l", "-N", "8080"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("nc -l");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let sent = a
        .cmd(
            &w2,
            &[
                "sh",
                "-c",
                "echo over-vxlan | timeout 4 nc -N -w 3 10.10.0.3 8080",
            ],
        )
        .status()
        .is_ok_and(|s| s.success());
    let got = listener.wait_with_output().expect("nc -l output");
    assert!(sent && String::from_utf8_lossy(&got.stdout).contains("over-vxlan"));

    // w3 leaves host B: host A's view is updated and nothing reaches it any more.
    dpb.remove_local_endpoint(&e3).unwrap();
    dpa.set_remote_endpoints("demo:app", &[]).unwrap();
    assert!(!a.ping(&w2, e3.ip.addr(), None));
    drop((dpa, dpb));
}
