//! Real-kernel tests of the Linux datapath. They need root, so they are `#[ignore = "needs root"]`
//! (run them as root with `--include-ignored`); `vlan_encap_is_refused` needs no kernel and always
//! runs. Each test builds its own test bed of host namespaces on an underlay; its guard removes
//! everything, even on panic.

mod common;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use common::{ep, ip_cmd, json, mentions, net, remote};
use contiv_datapath::{
    Datapath, DatapathError, Encap, FwdMode, LocalEndpoint, WorkloadEnd, WorkloadInterface,
};
use contiv_datapath_linux::testbed::{ping, require_root, tcp_exchange, Testbed};
use contiv_datapath_linux::{LinuxConfig, LinuxDatapath};

fn driver(tb: &Testbed, host: usize) -> LinuxDatapath {
    LinuxDatapath::new(tb.hosts[host].config())
}

fn ip(e: &LocalEndpoint) -> Ipv4Addr {
    e.ip.addr()
}

/// Asserts that nothing of `e` is left in the tenant namespace nor in its workload namespace.
fn assert_gone(d: &LinuxDatapath, tenant: &str, e: &LocalEndpoint, host_if: &str) {
    let tns = d.tenant_netns_path(tenant);
    let mac = e.mac.to_string();
    for needle in [host_if, &ip(e).to_string(), mac.as_str()] {
        assert_eq!(
            mentions(&tns, needle),
            Vec::<String>::new(),
            "{needle} left in tenant ns"
        );
        assert_eq!(
            mentions(&e.netns_path, needle),
            Vec::<String>::new(),
            "{needle} left in workload"
        );
    }
    let links = json("ip", &e.netns_path, &["link", "show"]);
    assert!(
        links.iter().all(|l| l["ifname"] == "lo"),
        "workload links left: {links:?}"
    );
    let routes = json("ip", &e.netns_path, &["route", "show"]);
    assert!(routes.is_empty(), "workload routes left: {routes:?}");
}

/// What a fresh driver observes: one network, one local endpoint, one remote (ip, vtep).
fn assert_observed(fresh: &LinuxDatapath, net_id: &str, local: &str, remote: (Ipv4Addr, Ipv4Addr)) {
    let obs = fresh.observe().expect("observe");
    assert_eq!(obs.networks.len(), 1);
    assert_eq!(obs.networks[0].id, net_id);
    assert_eq!(
        obs.local_endpoints
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        [local]
    );
    assert_eq!(obs.remote_endpoints.len(), 1);
    assert_eq!(
        (obs.remote_endpoints[0].ip, obs.remote_endpoints[0].vtep),
        remote
    );
}

#[test]
fn vlan_encap_is_refused() {
    let host = contiv_datapath::HostSpec {
        vtep_ip: Ipv4Addr::new(192, 0, 2, 1),
        underlay_ifname: "eth0".into(),
        underlay_mtu: 1500,
    };
    let d = LinuxDatapath::new(LinuxConfig::new(host));
    let mut n = net("t", "n", 10, "10.9.0.0/24", FwdMode::Bridge);
    n.encap = Encap::Vlan;
    assert!(matches!(
        d.validate(&n),
        Err(DatapathError::Unsupported { .. })
    ));
    let err = d.ensure_network(&n).unwrap_err().to_string();
    assert!(err.contains("vlan"), "{err}");
    n.encap = Encap::Vxlan;
    n.mtu = 1500;
    assert!(matches!(d.validate(&n), Err(DatapathError::Invalid { .. })));
}

#[test]
#[ignore = "needs root"]
fn bridge_single_host_idempotent_and_clean_removal() {
    require_root();
    let tb = Testbed::new(1).expect("testbed");
    let d = driver(&tb, 0);
    let n = net("acme", "web", 5001, "10.1.0.0/24", FwdMode::Bridge);
    d.ensure_network(&n).expect("ensure");
    d.ensure_network(&n).expect("ensure again");
    let (a, b) = (
        ep(&tb, "a", &n, [10, 1, 0, 2]),
        ep(&tb, "b", &n, [10, 1, 0, 3]),
    );
    let att = d.add_local_endpoint(&a).expect("add a");
    assert_eq!(d.add_local_endpoint(&a).expect("add a again"), att);
    assert_eq!(att.mtu, 1450);
    d.add_local_endpoint(&b).expect("add b");
    assert!(ping(&a.netns_path, ip(&b), 3), "a -> b ping");
    assert!(ping(&a.netns_path, n.gateway, 3), "a -> gateway ping");
    assert_eq!(
        tcp_exchange(&a.netns_path, &b.netns_path, ip(&b), 7001, "hello"),
        Ok("hello".into())
    );
    let links = json("ip", &a.netns_path, &["link", "show", "eth0"]);
    assert_eq!(links[0]["mtu"], 1450);
    assert_eq!(links[0]["address"], "02:02:0a:01:00:02");
    // IPv4 only: the interface came up without IPv6 address generation (no link-local, so no
    // DAD, MLD or router solicitations per pod), also after traffic and a while up.
    let v6 = json("ip", &a.netns_path, &["-6", "addr", "show", "dev", "eth0"]);
    assert!(
        v6.iter()
            .all(|l| l["addr_info"].as_array().is_none_or(|a| a.is_empty())),
        "IPv6 addresses on the workload interface: {v6:?}"
    );

    d.remove_local_endpoint(&a).expect("remove a");
    d.remove_local_endpoint(&a).expect("remove a again");
    assert_gone(&d, "acme", &a, &att.host_ifname);
    assert!(!ping(&b.netns_path, ip(&a), 1));

    d.remove_network(&n.id).expect("remove network");
    d.remove_network(&n.id).expect("remove network again");
    assert!(!d.tenant_netns_path("acme").exists(), "tenant ns left");
    assert!(d.observe().expect("observe").networks.is_empty());
}

#[test]
#[ignore = "needs root"]
fn bridge_cross_host_vxlan_declarative_remotes_and_observe() {
    require_root();
    let tb = Testbed::new(2).expect("testbed");
    let (d1, d2) = (driver(&tb, 0), driver(&tb, 1));
    let (v1, v2) = (tb.hosts[0].vtep, tb.hosts[1].vtep);
    let n = net("acme", "db", 5002, "10.2.0.0/24", FwdMode::Bridge);
    d1.ensure_network(&n).expect("ensure h1");
    d2.ensure_network(&n).expect("ensure h2");
    let (a, b) = (
        ep(&tb, "a", &n, [10, 2, 0, 2]),
        ep(&tb, "b", &n, [10, 2, 0, 3]),
    );
    d1.add_local_endpoint(&a).expect("add a");
    d2.add_local_endpoint(&b).expect("add b");
    d1.set_remote_endpoints(&n.id, &[remote(&b, v2), remote(&a, v1)])
        .expect("remotes h1");
    d2.set_remote_endpoints(&n.id, &[remote(&a, v1)])
        .expect("remotes h2");
    d2.set_remote_endpoints(&n.id, &[remote(&a, v1)])
        .expect("remotes h2 again");
    assert!(ping(&a.netns_path, ip(&b), 3), "a -> b over vxlan");
    // No flood entry: ARP for b can only have been answered locally (neigh_suppress).
    let tns1 = d1.tenant_netns_path("acme");
    let fdb = json("bridge", &tns1, &["fdb", "show"]);
    assert!(
        fdb.iter().all(|f| f["mac"] != "00:00:00:00:00:00"),
        "{fdb:?}"
    );
    assert_eq!(
        tcp_exchange(&b.netns_path, &a.netns_path, ip(&a), 7002, "x-host"),
        Ok("x-host".into())
    );

    // The VXLAN UDP socket lives in the host (underlay) namespace, not in the tenant's.
    let udp = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &tb.hosts[0].netns.file_name().unwrap().to_string_lossy(),
            "cat",
            "/proc/net/udp",
        ])
        .output()
        .expect("cat udp");
    assert!(
        String::from_utf8_lossy(&udp.stdout).contains(":12B5 "),
        "no udp/4789 socket in host ns"
    );

    // A restarted agent finds everything by id.
    let fresh = driver(&tb, 0);
    assert_observed(&fresh, &n.id, "a", (ip(&b), v2));

    // Declarative: the empty set removes every remote entry.
    fresh
        .set_remote_endpoints(&n.id, &[])
        .expect("clear remotes");
    let tns = d1.tenant_netns_path("acme");
    assert_eq!(mentions(&tns, &b.mac.to_string()), Vec::<String>::new());
    assert_eq!(mentions(&tns, &ip(&b).to_string()), Vec::<String>::new());
    assert!(
        !ping(&a.netns_path, ip(&b), 1),
        "reachable after remote removal"
    );

    d2.remove_local_endpoint(&b).expect("remove b");
    for (d, _) in [(&d1, 1), (&d2, 2)] {
        d.remove_network(&n.id).expect("remove network");
    }
    let left: BTreeSet<String> = tb
        .namespaces()
        .into_iter()
        .filter(|n| n.contains("-t-"))
        .collect();
    assert!(left.is_empty(), "tenant namespaces left: {left:?}");
}

#[test]
#[ignore = "needs root"]
fn two_networks_of_one_tenant_route_through_gateways() {
    require_root();
    let tb = Testbed::new(2).expect("testbed");
    let (d1, d2) = (driver(&tb, 0), driver(&tb, 1));
    let (v1, v2) = (tb.hosts[0].vtep, tb.hosts[1].vtep);
    let na = net("corp", "front", 6001, "10.3.1.0/24", FwdMode::Bridge);
    let nb = net("corp", "back", 6002, "10.3.2.0/24", FwdMode::Bridge);
    for d in [&d1, &d2] {
        d.ensure_network(&na).expect("ensure a");
        d.ensure_network(&nb).expect("ensure b");
    }
    let a1 = ep(&tb, "a1", &na, [10, 3, 1, 2]);
    let b1 = ep(&tb, "b1", &nb, [10, 3, 2, 2]);
    let b2 = ep(&tb, "b2", &nb, [10, 3, 2, 3]);
    d1.add_local_endpoint(&a1).expect("a1");
    d1.add_local_endpoint(&b1).expect("b1");
    d2.add_local_endpoint(&b2).expect("b2");
    d1.set_remote_endpoints(&nb.id, &[remote(&b2, v2)])
        .expect("h1 remotes b");
    d2.set_remote_endpoints(&na.id, &[remote(&a1, v1)])
        .expect("h2 remotes a");
    d2.set_remote_endpoints(&nb.id, &[remote(&b1, v1)])
        .expect("h2 remotes b");
    assert!(ping(&a1.netns_path, ip(&b1), 3), "front -> back, same host");
    assert!(
        ping(&a1.netns_path, ip(&b2), 3),
        "front -> back, across hosts"
    );
    assert_eq!(
        tcp_exchange(&a1.netns_path, &b2.netns_path, ip(&b2), 7003, "routed"),
        Ok("routed".into())
    );
}

#[test]
#[ignore = "needs root"]
fn tenants_with_the_same_subnet_are_isolated() {
    require_root();
    let tb = Testbed::new(2).expect("testbed");
    let (d1, d2) = (driver(&tb, 0), driver(&tb, 1));
    let (v1, v2) = (tb.hosts[0].vtep, tb.hosts[1].vtep);
    let na = net("red", "net", 7001, "10.4.0.0/24", FwdMode::Bridge);
    let nb = net("blue", "net", 7002, "10.4.0.0/24", FwdMode::Bridge);
    for d in [&d1, &d2] {
        d.ensure_network(&na).expect("ensure red");
        d.ensure_network(&nb).expect("ensure blue");
    }
    let (r1, r2) = (
        ep(&tb, "r1", &na, [10, 4, 0, 2]),
        ep(&tb, "r2", &na, [10, 4, 0, 3]),
    );
    let (b1, b2) = (
        ep(&tb, "b1", &nb, [10, 4, 0, 2]),
        ep(&tb, "b2", &nb, [10, 4, 0, 3]),
    );
    let b3 = ep(&tb, "b3", &nb, [10, 4, 0, 4]);
    for e in [&r1, &b1] {
        d1.add_local_endpoint(e).expect("add on h1");
    }
    for e in [&r2, &b2, &b3] {
        d2.add_local_endpoint(e).expect("add on h2");
    }
    d1.set_remote_endpoints(&na.id, &[remote(&r2, v2)])
        .expect("red h1");
    d2.set_remote_endpoints(&na.id, &[remote(&r1, v1)])
        .expect("red h2");
    d1.set_remote_endpoints(&nb.id, &[remote(&b2, v2), remote(&b3, v2)])
        .expect("blue h1");
    d2.set_remote_endpoints(&nb.id, &[remote(&b1, v1)])
        .expect("blue h2");
    // Same address in both tenants: each reaches its own peer.
    assert_eq!(
        tcp_exchange(&r1.netns_path, &r2.netns_path, ip(&r2), 7004, "red"),
        Ok("red".into())
    );
    assert_eq!(
        tcp_exchange(&b1.netns_path, &b2.netns_path, ip(&b2), 7004, "blue"),
        Ok("blue".into())
    );
    assert!(
        ping(&b1.netns_path, ip(&b3), 3),
        "blue reaches its own 10.4.0.4"
    );
    assert!(
        !ping(&r1.netns_path, ip(&b3), 2),
        "red reaches blue's 10.4.0.4"
    );
}

#[test]
#[ignore = "needs root"]
fn routing_mode_local_and_cross_host() {
    require_root();
    let tb = Testbed::new(2).expect("testbed");
    let (d1, d2) = (driver(&tb, 0), driver(&tb, 1));
    let (v1, v2) = (tb.hosts[0].vtep, tb.hosts[1].vtep);
    let n = net("vr", "net", 8001, "10.5.0.0/24", FwdMode::Routing);
    for d in [&d1, &d2] {
        d.ensure_network(&n).expect("ensure");
        d.ensure_network(&n).expect("ensure again");
    }
    let (a, b, c) = (
        ep(&tb, "a", &n, [10, 5, 0, 2]),
        ep(&tb, "b", &n, [10, 5, 0, 3]),
        ep(&tb, "c", &n, [10, 5, 0, 4]),
    );
    d1.add_local_endpoint(&a).expect("a");
    d1.add_local_endpoint(&b).expect("b");
    let att_c = d2.add_local_endpoint(&c).expect("c");
    assert_eq!(d2.add_local_endpoint(&c).expect("c again"), att_c);
    d1.set_remote_endpoints(&n.id, &[remote(&c, v2)])
        .expect("h1 remotes");
    d2.set_remote_endpoints(&n.id, &[remote(&a, v1), remote(&b, v1)])
        .expect("h2 remotes");
    assert!(ping(&a.netns_path, n.gateway, 3), "a -> gateway");
    assert!(ping(&a.netns_path, ip(&b), 3), "a -> b same host");
    assert!(ping(&a.netns_path, ip(&c), 3), "a -> c across hosts");
    assert_eq!(
        tcp_exchange(&c.netns_path, &b.netns_path, ip(&b), 7005, "vrouter"),
        Ok("vrouter".into())
    );
    let obs = d1.observe().expect("observe");
    assert_eq!(obs.networks[0].fwd_mode, FwdMode::Routing);
    assert_eq!(obs.remote_endpoints.len(), 1);

    d2.remove_local_endpoint(&c).expect("remove c");
    assert_gone(&d2, "vr", &c, &att_c.host_ifname);
    d1.set_remote_endpoints(&n.id, &[]).expect("clear");
    let tns = d1.tenant_netns_path("vr");
    assert_eq!(mentions(&tns, &ip(&c).to_string()), Vec::<String>::new());
    assert_eq!(mentions(&tns, &v2.to_string()), Vec::<String>::new());
}

#[test]
#[ignore = "needs root"]
fn failed_endpoint_add_rolls_back_and_network_removal_leaves_no_device() {
    require_root();
    let tb = Testbed::new(1).expect("testbed");
    let d = driver(&tb, 0);
    let n = net("rb", "net", 9001, "10.6.0.0/24", FwdMode::Routing);
    d.ensure_network(&n).expect("ensure");
    let mut bad = ep(&tb, "bad", &n, [10, 6, 0, 2]);
    bad.ifname = "name-longer-than-ifnamsiz".into();
    assert!(d.add_local_endpoint(&bad).is_err());
    let tns = d.tenant_netns_path("rb");
    let host_if = contiv_datapath_linux::names::host_veth("bad");
    assert_eq!(
        mentions(&tns, &host_if),
        Vec::<String>::new(),
        "host veth left after rollback"
    );
    let links = json("ip", &bad.netns_path, &["link", "show"]);
    assert!(
        links.iter().all(|l| l["ifname"] == "lo"),
        "workload links left: {links:?}"
    );
    let unknown = ep(
        &tb,
        "orphan",
        &net("rb", "nope", 9002, "10.6.1.0/24", FwdMode::Routing),
        [10, 6, 1, 2],
    );
    assert!(matches!(
        d.add_local_endpoint(&unknown),
        Err(DatapathError::NetworkNotFound(_))
    ));

    let good = ep(&tb, "good", &n, [10, 6, 0, 3]);
    d.add_local_endpoint(&good).expect("add");
    d.remove_network(&n.id)
        .expect("remove network with an endpoint");
    assert!(!tns.exists(), "tenant ns left");
    let host_links = json("ip", &tb.hosts[0].netns, &["link", "show"]);
    assert!(
        host_links.iter().all(|l| !l.to_string().contains("ctv")),
        "{host_links:?}"
    );
    d.remove_local_endpoint(&good)
        .expect("remove endpoint of a removed network");
    let links = json("ip", &good.netns_path, &["link", "show"]);
    assert!(
        links.iter().all(|l| l["ifname"] == "lo"),
        "workload links left: {links:?}"
    );
}

#[test]
#[ignore = "needs root"]
fn testbed_reaps_leftovers_of_dead_runs() {
    require_root();
    let dir = std::path::Path::new(contiv_datapath_linux::netns::NETNS_DIR);
    // pid_max is at most 2^22, so this "run" is certainly dead.
    let stale =
        contiv_datapath_linux::netns::create_named(dir, "ctvtb-99999999-0-h1").expect("stale ns");
    let tb = Testbed::new(1).expect("testbed");
    assert!(!stale.exists(), "stale namespace not reaped");
    drop(tb);
}

/// What a bad workload side must not do: leave a host veth behind, touch an interface it does not
/// own, or wedge the tenant's kept thread (the next ADD works). And an interrupted ADD (workload
/// end present, its address and route gone) is converged by the next one.
#[test]
#[ignore = "needs root"]
fn endpoint_add_refuses_bad_workloads_cleanly_and_converges_a_half_done_one() {
    require_root();
    let tb = Testbed::new(1).expect("testbed");
    let d = driver(&tb, 0);
    let n = net("edge", "net", 9101, "10.7.0.0/24", FwdMode::Bridge);
    d.ensure_network(&n).expect("ensure");
    let tns = d.tenant_netns_path("edge");

    // Not a network namespace: a plain file.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut not_ns = ep(&tb, "notns", &n, [10, 7, 0, 2]);
    not_ns.netns_path = dir.path().join("plain-file");
    std::fs::write(&not_ns.netns_path, b"").expect("file");
    let err = d.add_local_endpoint(&not_ns).expect_err("not a netns");
    assert!(err.to_string().contains("plain-file"), "{err}");
    let host_if = contiv_datapath_linux::names::host_veth("notns");
    assert_eq!(mentions(&tns, &host_if), Vec::<String>::new());

    // The workload already has an eth0 that is not ours: refused, and it is left alone.
    let taken = ep(&tb, "taken", &n, [10, 7, 0, 3]);
    ip_cmd(
        &taken.netns_path,
        &[
            "link", "add", "eth0", "type", "veth", "peer", "name", "other0",
        ],
    );
    let err = d.add_local_endpoint(&taken).expect_err("eth0 taken");
    assert!(err.to_string().to_lowercase().contains("exists"), "{err}");
    let host_if = contiv_datapath_linux::names::host_veth("taken");
    assert_eq!(mentions(&tns, &host_if), Vec::<String>::new());
    let links = json("ip", &taken.netns_path, &["link", "show", "eth0"]);
    assert_eq!(links.len(), 1, "{links:?}");
    assert_ne!(links[0]["address"], taken.mac.to_string());

    // The tenant's kept threads still work; then an interrupted ADD is converged.
    let (a, b) = (
        ep(&tb, "a", &n, [10, 7, 0, 4]),
        ep(&tb, "b", &n, [10, 7, 0, 5]),
    );
    d.add_local_endpoint(&a).expect("add a");
    d.add_local_endpoint(&b).expect("add b");
    ip_cmd(&a.netns_path, &["addr", "flush", "dev", "eth0"]);
    ip_cmd(&a.netns_path, &["link", "set", "eth0", "down"]);
    assert!(!ping(&b.netns_path, ip(&a), 1), "a is cut off");
    d.add_local_endpoint(&a).expect("add a again");
    assert!(
        ping(&b.netns_path, ip(&a), 3),
        "b -> a after the ADD is repeated"
    );
    assert!(ping(&a.netns_path, n.gateway, 3), "a -> gateway");
    d.remove_network(&n.id).expect("remove network");
}

#[test]
#[ignore = "needs root"]
fn workload_ends_name_the_workload_namespace_or_say_it_is_gone() {
    require_root();
    let tb = Testbed::new(1).expect("testbed");
    let d = driver(&tb, 0);
    let n = net("acme", "ends", 5101, "10.61.0.0/24", FwdMode::Bridge);
    d.ensure_network(&n).expect("ensure");
    let (a, b) = (
        ep(&tb, "ea", &n, [10, 61, 0, 2]),
        ep(&tb, "eb", &n, [10, 61, 0, 3]),
    );
    d.add_local_endpoint(&a).expect("add a");
    d.add_local_endpoint(&b).expect("add b");
    let mut obs = d.observe().expect("observe").local_endpoints;
    obs.sort_by(|x, y| x.id.cmp(&y.id));
    let ends = d.workload_ends(&obs).expect("workload ends");
    for (e, end) in [&a, &b].into_iter().zip(&ends) {
        assert_eq!(
            end,
            &WorkloadEnd::Found(WorkloadInterface {
                netns_path: e.netns_path.clone(),
                ifname: "eth0".into(),
                mac: e.mac,
                mtu: 1450,
            })
        );
    }
    // b's namespace loses its name but lives on (held by a descriptor): alive, unnamed.
    let held = std::fs::File::open(&b.netns_path).expect("hold b");
    contiv_datapath_linux::netns::delete_named(&b.netns_path).expect("unmount b");
    // a is unplugged: its host end is gone.
    d.remove_local_endpoint(&a).expect("remove a");
    assert_eq!(
        d.workload_ends(&obs).expect("workload ends"),
        [WorkloadEnd::Gone, WorkloadEnd::Unnamed]
    );
    // The last reference goes: the namespace and the veth pair with it.
    drop(held);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !d.observe().expect("observe").local_endpoints.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "b's veth outlived its namespace"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        d.workload_ends(&obs).expect("workload ends"),
        [WorkloadEnd::Gone, WorkloadEnd::Gone]
    );
}
