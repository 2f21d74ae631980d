//! End-to-end: netmaster + one netplugin process per simulated host + workloads attached by the
//! real contivk8s binary; real packets (ICMP, TCP) between workload namespaces. Root only:
//! `#[ignore = "needs root"]`, run as root with `--include-ignored`. Each test owns its cluster;
//! the guard removes everything.
//!
//! Every test runs against both datapaths (`linux::…` and `ovs::…`, see [`on_both_datapaths`])
//! with the same assertions; where the Linux variant reads the tenant namespace's kernel
//! objects, the OVS one reads the host's bridge (flows and ports) instead.

#[macro_use]
mod common;

use common::{bins, ovs_mentions};

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use contiv_netplugin::testbed::{
    eventually, ping, require_root, tcp_exchange, Cluster, TcpSession, TestDatapath, Workload,
};
use serde_json::Value;

on_both_datapaths!(
    bridge_mode_same_host_cross_host_inspect_and_clean_delete,
    routing_mode_cross_host,
    two_networks_of_a_tenant_route_through_the_gateway,
    two_tenants_same_subnet_are_isolated,
    parallel_adds_and_vlan_refusal,
);

fn cluster(dp: TestDatapath, hosts: usize, netmaster_args: &[&str]) -> Cluster {
    Cluster::start_on(bins(), dp, hosts, netmaster_args).unwrap_or_else(|e| panic!("cluster: {e}"))
}

fn add(c: &Cluster, host: usize, name: &str, tenant: &str, net: &str) -> Workload {
    c.add_workload(host, name, tenant, net)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Ping with retries while remote entries propagate.
fn reaches(from: &Workload, to: &Workload) -> bool {
    eventually(Duration::from_secs(8), || ping(&from.netns, to.ip, 1))
}

fn assert_reaches(c: &Cluster, from: &Workload, to: &Workload) {
    assert!(
        reaches(from, to),
        "{} ({}) cannot reach {} ({})\nagent logs:\n{}\n{}",
        from.name,
        from.ip,
        to.name,
        to.ip,
        c.agent_log(from.host),
        c.agent_log(to.host)
    );
}

fn assert_tcp(from: &Workload, to: &Workload, port: u16) {
    let got = tcp_exchange(&from.netns, &to.netns, to.ip, port, "contiv");
    assert_eq!(
        got,
        Ok("contiv".to_string()),
        "tcp {} -> {}",
        from.name,
        to.name
    );
}

/// `ip -j` / `bridge -j` output in a namespace (by path), as text lines of JSON objects.
fn kernel_objects(ns: &Path) -> Vec<String> {
    let name = ns
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let lists: [(&str, &[&str]); 5] = [
        ("ip", &["link", "show"]),
        ("ip", &["addr", "show"]),
        ("ip", &["route", "show", "table", "all"]),
        ("ip", &["neigh", "show"]),
        ("bridge", &["fdb", "show"]),
    ];
    let mut out = Vec::new();
    for (tool, args) in lists {
        let o = Command::new(tool)
            .args(["-j", "-n", &name])
            .args(args)
            .output()
            .expect("iproute2");
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Array(vec![]));
        out.extend(
            v.as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(Value::to_string),
        );
    }
    out
}

fn mentions(ns: &Path, needle: &str) -> Vec<String> {
    let n = format!("\"{needle}\"");
    kernel_objects(ns)
        .into_iter()
        .filter(|s| s.contains(&n))
        .collect()
}

/// Where host `h` keeps forwarding state for `needle`: its tenant namespace's kernel objects
/// (Linux), or its bridge's flows and ports (OVS; plus the host namespace's links, where the
/// workload veths' host ends live).
fn datapath_mentions(c: &Cluster, h: usize, needle: &str) -> Vec<String> {
    match c.datapath() {
        TestDatapath::Linux => mentions(&c.tenant_ns(h, "default"), needle),
        TestDatapath::Ovs => {
            let mut out = ovs_mentions(c, h, needle);
            out.extend(mentions(&c.tb.hosts[h].netns, needle));
            out
        }
    }
}

/// The MAC of a workload's own interface, from its CNI result.
fn sandbox_mac(w: &Workload) -> String {
    w.result["interfaces"]
        .as_array()
        .and_then(|i| i.iter().find(|x| x.get("sandbox").is_some()))
        .and_then(|x| x["mac"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The MAC workload `w` has resolved `ip` to (its neighbour table).
fn neighbour_mac(w: &Workload, ip: std::net::Ipv4Addr) -> Option<String> {
    let name = w
        .netns
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let o = Command::new("ip")
        .args(["-j", "-n", name, "neigh", "show", &ip.to_string()])
        .output()
        .expect("ip");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    v[0]["lladdr"].as_str().map(str::to_string)
}

/// The interface index of a workload's `eth0` (changes when it is re-made).
fn eth0_index(w: &Workload) -> u64 {
    let name = w
        .netns
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let o = Command::new("ip")
        .args(["-j", "-n", name, "link", "show", "eth0"])
        .output()
        .expect("ip");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    v[0]["ifindex"].as_u64().unwrap_or(0)
}

fn inspect(c: &Cluster, w: &Workload) -> Value {
    c.get_json(&format!("/api/v1/inspect/endpoints/{}/", c.endpoint_id(w)))
        .expect("inspect endpoint")
}

fn bridge_mode_same_host_cross_host_inspect_and_clean_delete(dp: TestDatapath) {
    require_root();
    let c = cluster(dp, 2, &[]);
    c.create_network("default", "net1", "10.1.1.0/24", "10.1.1.1")
        .expect("network");
    let a = add(&c, 0, "a", "default", "net1");
    let b = add(&c, 0, "b", "default", "net1");
    let r = add(&c, 1, "r", "default", "net1");
    assert_reaches(&c, &a, &b);
    assert_reaches(&c, &a, &r);
    assert_reaches(&c, &r, &b);
    assert_tcp(&a, &b, 7001);
    assert_tcp(&r, &a, 7002);

    let oper = inspect(&c, &r)["Oper"].clone();
    assert_eq!(oper["homingHost"], "h2");
    assert_eq!(oper["intfName"], "eth0");
    assert_eq!(oper["vtepIP"], "10.255.0.2");
    assert_eq!(oper["containerID"], r.container_id.as_str());
    assert_eq!(oper["ipAddress"][0], r.ip.to_string());
    let mac = oper["macAddress"].as_str().expect("mac").to_string();
    let ifaces = r.result["interfaces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let eth0 = ifaces
        .iter()
        .find(|i| i.get("sandbox").is_some())
        .unwrap_or_else(|| panic!("no sandbox interface in {}", r.result));
    assert_eq!(eth0["mac"], mac.as_str(), "{}", r.result);

    // Host 1 forwards to r from state it holds (so the clean-up check below looks where that
    // state lives).
    assert!(
        !datapath_mentions(&c, 0, &r.ip.to_string()).is_empty(),
        "host 1 holds nothing about r"
    );
    // DEL: nothing of r is left on its host nor (once propagated) on the other one.
    c.del_workload(&r).expect("del");
    c.del_workload(&r).expect("del is idempotent");
    let host_if = r.result["interfaces"].as_array().and_then(|i| {
        i.iter()
            .find(|x| x.get("sandbox").is_none())
            .and_then(|x| x["name"].as_str().map(String::from))
    });
    for h in 0..2 {
        let mut needles = vec![r.ip.to_string(), mac.clone()];
        needles.extend(host_if.clone());
        let clean = eventually(Duration::from_secs(5), || {
            needles
                .iter()
                .all(|n| datapath_mentions(&c, h, n).is_empty())
        });
        assert!(
            clean,
            "host {h} still has {:?}",
            needles
                .iter()
                .map(|n| datapath_mentions(&c, h, n))
                .collect::<Vec<_>>()
        );
        let host_ns = &c.tb.hosts[h].netns;
        assert!(
            mentions(host_ns, &r.ip.to_string()).is_empty(),
            "underlay ns of host {h} mentions r"
        );
    }
    let links: BTreeSet<String> = kernel_objects(&r.netns)
        .into_iter()
        .filter(|s| s.contains("\"ifname\""))
        .collect();
    assert!(
        links.iter().all(|l| l.contains("\"lo\"")),
        "workload links left: {links:?}"
    );
    assert!(!ping(&a.netns, r.ip, 1));
    let (code, _) = c
        .api(
            "GET",
            &format!("/api/v1/inspect/endpoints/{}/", c.endpoint_id(&r)),
            None,
        )
        .expect("api");
    assert_eq!(code, 404, "endpoint released at netmaster");
    assert_reaches(&c, &a, &b);
}

fn routing_mode_cross_host(dp: TestDatapath) {
    require_root();
    let c = cluster(dp, 2, &["--fwdmode", "routing"]);
    c.create_network("default", "rnet", "10.5.0.0/24", "10.5.0.1")
        .expect("network");
    let a = add(&c, 0, "a", "default", "rnet");
    let b = add(&c, 1, "b", "default", "rnet");
    let a2 = add(&c, 0, "a2", "default", "rnet");
    assert_reaches(&c, &a, &b);
    assert_reaches(&c, &b, &a2);
    assert_reaches(&c, &a, &a2);
    assert_tcp(&a, &b, 7003);
    assert_tcp(&b, &a2, 7004);
    // Routed, not bridged: a reaches b, in its own subnet, through a router's MAC, not b's.
    let b_mac = sandbox_mac(&b);
    let a_sees = neighbour_mac(&a, b.ip);
    assert!(
        a_sees.is_some() && a_sees.as_deref() != Some(b_mac.as_str()),
        "a resolves b ({b_mac}) to {a_sees:?}"
    );
    // Reconcile passes (every 3 s here) leave a routed workload alone: its interface is not
    // re-made and an open connection carries on (they were torn down and re-plugged each pass
    // on OVS while its driver reported the network as bridged).
    let before = eth0_index(&a);
    let mut session = TcpSession::open(&a.netns, &b.netns, b.ip, 7013).expect("tcp session a -> b");
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(eth0_index(&a), before, "a's interface was re-made");
    assert_eq!(session.exchange("still-here").as_deref(), Ok("still-here"));
    // Logs written to a file carry no colour codes (they did: dockerd showed them in its log).
    let log = c.agent_log(0);
    assert!(!log.is_empty() && !log.contains('\x1b'), "{log:?}");
}

fn two_networks_of_a_tenant_route_through_the_gateway(dp: TestDatapath) {
    require_root();
    let c = cluster(dp, 2, &[]);
    c.create_tenant("t1").expect("tenant");
    c.create_network("t1", "front", "10.2.1.0/24", "10.2.1.1")
        .expect("front");
    c.create_network("t1", "back", "10.2.2.0/24", "10.2.2.1")
        .expect("back");
    let f1 = add(&c, 0, "f1", "t1", "front");
    let b1 = add(&c, 0, "b1", "t1", "back");
    let b2 = add(&c, 1, "b2", "t1", "back");
    assert_reaches(&c, &f1, &b1);
    assert_reaches(&c, &f1, &b2);
    assert_reaches(&c, &b2, &f1);
    assert_tcp(&f1, &b2, 7005);
    assert_tcp(&b2, &f1, 7006);
}

fn two_tenants_same_subnet_are_isolated(dp: TestDatapath) {
    require_root();
    let c = cluster(dp, 2, &[]);
    for t in ["ta", "tb"] {
        c.create_tenant(t).expect("tenant");
        c.create_network(t, "net", "10.3.0.0/24", "10.3.0.1")
            .expect("network");
    }
    let a1 = add(&c, 0, "a1", "ta", "net");
    let a2 = add(&c, 1, "a2", "ta", "net");
    let b1 = add(&c, 0, "b1", "tb", "net");
    let b2 = add(&c, 1, "b2", "tb", "net");
    let b3 = add(&c, 1, "b3", "tb", "net");
    assert_eq!(a1.ip, b1.ip, "same subnet, same first address");
    assert_reaches(&c, &a1, &a2);
    assert_reaches(&c, &b1, &b2);
    assert_reaches(&c, &b2, &b1);
    assert_tcp(&b1, &b3, 7007);
    // b3's address exists only in tenant tb: tenant ta cannot reach it.
    assert!(!a2.ip.eq(&b3.ip));
    assert!(!ping(&a1.netns, b3.ip, 2), "tenant ta reached tenant tb");
    assert!(
        !ping(&a2.netns, b3.ip, 2),
        "tenant ta reached tenant tb on its own host"
    );
}

fn parallel_adds_and_vlan_refusal(dp: TestDatapath) {
    require_root();
    let c = cluster(dp, 1, &[]);
    c.create_network("default", "par", "10.6.0.0/24", "10.6.0.1")
        .expect("network");
    let names: Vec<String> = (0..6).map(|i| format!("p{i}")).collect();
    let ws: Vec<Workload> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|n| s.spawn(|| add(&c, 0, n, "default", "par")))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("add thread"))
            .collect()
    });
    let ips: BTreeSet<_> = ws.iter().map(|w| w.ip).collect();
    assert_eq!(ips.len(), ws.len(), "distinct addresses");
    for w in &ws[1..] {
        assert_reaches(&c, &ws[0], w);
    }

    if dp == TestDatapath::Ovs {
        // VLAN networks on OVS: branch ovs-vlan.
        return;
    }
    let body = serde_json::json!({"tenantName": "default", "networkName": "vl", "encap": "vlan",
        "subnet": "10.7.0.0/24", "gateway": "10.7.0.1"});
    let (code, text) = c
        .api("POST", "/api/v1/networks/default:vl/", Some(&body))
        .expect("api");
    assert_eq!(code, 200, "{text}");
    let ns = c.tb.workload("vlan").expect("netns");
    let (code, out) = c
        .cni(0, "ADD", "vlan-ctr", &ns, "default", "vl")
        .expect("cni");
    assert_ne!(code, 0);
    let err: Value = serde_json::from_str(&out).expect("cni error json");
    assert_eq!(err["code"], 7, "{out}");
    assert!(
        err["msg"].as_str().unwrap_or_default().contains("vlan"),
        "{out}"
    );
    let (code, _) = c
        .api(
            "GET",
            "/api/v1/inspect/endpoints/vl.default-vlan-ctr/",
            None,
        )
        .expect("api");
    assert_eq!(code, 404, "nothing allocated for a refused ADD");
}
