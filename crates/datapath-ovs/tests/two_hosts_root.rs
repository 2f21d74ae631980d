//! Two simulated hosts, each with its own ovsdb-server, ovs-vswitchd and OVS driver, joined by
//! an underlay veth: workloads on different hosts reach each other through the pipeline and a
//! userspace VXLAN tunnel (the VNI set per packet by the pipeline, `key=flow`), with ARP answered
//! on each host for the other's endpoint.

mod common;

use common::{demo_endpoint, demo_net, linked_hosts, remote, underlay_driver};
use contiv_datapath::Datapath;

#[test]
#[ignore = "needs root"]
fn workloads_on_two_hosts_reach_each_other_over_vxlan() {
    let pid = std::process::id() % 100_000;
    let (ua, ub) = (format!("ovx{pid}a"), format!("ovx{pid}b"));
    // The underlay: a veth made in the host A namespace, its other end moved to host B.
    let (mut a, mut b) = linked_hosts("xa", "xb", &ua, &ub);
    // Host n: underlay 192.0.2.n on a netdev bridge `ovxphy` holding its end of the underlay veth
    // (userspace VXLAN sends from an address OVS itself owns), and the driver.
    let (dpa, vtep_a) = underlay_driver(&a, 1, &ua, "ovxphy", "ovxbr", 16660);
    let (dpb, vtep_b) = underlay_driver(&b, 2, &ub, "ovxphy", "ovxbr", 16660);

    let (e2, e3) = (demo_endpoint(&mut a, 2), demo_endpoint(&mut b, 3));
    for (dp, ep) in [(&dpa, &e2), (&dpb, &e3)] {
        dp.ensure_network(&demo_net()).unwrap();
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
