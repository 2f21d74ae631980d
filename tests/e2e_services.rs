//! End-to-end east-west service load balancing: netmaster + one netplugin per simulated host,
//! providers and clients attached through contivk8s with labels in `CNI_ARGS`, real TCP and UDP
//! to the serviceLB's VIP from workload namespaces on both hosts, on both datapaths (nftables DNAT
//! in tenant namespaces; the OVS pipeline's select groups). Root only.

#[macro_use]
mod common;

use common::bins;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use contiv_netplugin::testbed::{
    connect_named, eventually, in_netns, require_root, tally_named, Cluster, NamedServer,
    TestDatapath, Workload,
};
use serde_json::{json, Value};

const T: &str = "lbe";
const NET: &str = "n";
const WEB: (&str, &str) = ("app", "web");

/// A provider's servers: TCP on 8080 (greets with its name, then echoes), UDP on 5353 (its
/// name), until dropped.
fn provider(w: &Workload) -> [NamedServer; 2] {
    [
        NamedServer::tcp(&w.netns, w.ip, 8080, &w.name).expect("tcp server"),
        NamedServer::udp(&w.netns, w.ip, 5353, &w.name).expect("udp server"),
    ]
}

/// Connects from `ns` to `vip:80`; the open stream and the provider's name.
fn connect(ns: &Path, vip: Ipv4Addr) -> Result<(TcpStream, String), String> {
    connect_named(ns, SocketAddr::from((vip, 80)))
}

/// `n` new connections from `ns` to the VIP: how many each provider got.
fn tally(ns: &Path, vip: Ipv4Addr, n: usize) -> BTreeMap<String, usize> {
    tally_named(ns, SocketAddr::from((vip, 80)), n).unwrap_or_else(|e| panic!("{e}"))
}

fn udp_ask(ns: &Path, vip: Ipv4Addr) -> Result<(SocketAddr, String), String> {
    in_netns(ns, || {
        let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        s.send_to(b"who", SocketAddr::from((vip, 53)))
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 64];
        let (n, from) = s.recv_from(&mut buf).map_err(|e| e.to_string())?;
        Ok((from, String::from_utf8_lossy(&buf[..n]).into_owned()))
    })?
}

fn post(c: &Cluster, path: &str, body: Value) {
    match c.api("POST", path, Some(&body)) {
        Ok((200 | 201, _)) => {}
        other => panic!("POST {path}: {other:?}"),
    }
}

fn oper(c: &Cluster) -> Value {
    c.get_json(&format!("/api/v1/inspect/serviceLBs/{T}:web/"))
        .expect("inspect")["Oper"]
        .clone()
}

/// Labels of a workload's endpoint changed through `/plugin/updateEndpoint`.
/// Sent as the workload's host's agent would (with that host's certificate).
fn relabel(c: &Cluster, w: &Workload, labels: Value) {
    // Contiv's field names (Go's `UpdateEndpointRequest` has no json tags: PascalCase).
    let body = json!({"IPAddress": w.ip.to_string(), "ContainerID": "", "Labels": labels,
        "Tenant": T, "Network": NET, "Event": "start", "EndpointID": ""});
    match c.api_as_host(w.host, "POST", "/plugin/updateEndpoint", Some(&body)) {
        Ok((200 | 201, _)) => {}
        other => panic!("POST /plugin/updateEndpoint: {other:?}"),
    }
}

on_both_datapaths!(
    a_service_balances_tcp_and_udp_over_providers_on_two_hosts,
    a_provider_side_deny_blocks_vip_traffic_on_both_hosts,
);

fn a_service_balances_tcp_and_udp_over_providers_on_two_hosts(dp: TestDatapath) {
    require_root();
    let c = Cluster::start_on(bins(), dp, 2, &[]).expect("cluster");
    c.create_tenant(T).expect("tenant");
    c.create_network(T, NET, "10.61.0.0/24", "10.61.0.1")
        .expect("network");
    post(
        &c,
        &format!("/api/v1/serviceLBs/{T}:web/"),
        json!({"tenantName": T, "serviceName": "web", "networkName": NET,
            "selectors": ["app=web"], "ports": ["80:8080:TCP", "53:5353:UDP"]}),
    );
    let add = |host: usize, name: &str, labels: &[(&str, &str)]| {
        c.add_labelled(host, name, (T, NET), labels)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let p1 = add(0, "p1", &[WEB]);
    let p2 = add(1, "p2", &[WEB]);
    let p3 = add(1, "p3", &[WEB]);
    let c1 = add(0, "c1", &[("app", "client")]);
    let c2 = add(1, "c2", &[("app", "client")]);
    let _servers: Vec<[NamedServer; 2]> = [&p1, &p2, &p3].into_iter().map(provider).collect();
    let vip: Ipv4Addr = oper(&c)["serviceVip"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("serviceVip");
    assert_eq!(oper(&c)["numProviders"], json!(3), "{}", oper(&c));
    assert!(
        eventually(Duration::from_secs(5), || connect(&c1.netns, vip).is_ok()
            && connect(&c2.netns, vip).is_ok()),
        "VIP {vip} balanced on both hosts"
    );

    // 300 new connections from 2 clients on both hosts: every provider 20-50 %.
    let t = Instant::now();
    let mut all = tally(&c1.netns, vip, 150);
    for (k, v) in tally(&c2.netns, vip, 150) {
        *all.entry(k).or_insert(0) += v;
    }
    eprintln!("300 connections in {:?}: {all:?}", t.elapsed());
    for p in ["p1", "p2", "p3"] {
        let n = all.get(p).copied().unwrap_or(0);
        assert!((60..=150).contains(&n), "{p} got {n} of 300: {all:?}");
    }

    // UDP: answered from the VIP by a provider.
    let mut udp_seen = BTreeMap::new();
    for _ in 0..30 {
        let (from, name) = udp_ask(&c2.netns, vip).expect("udp");
        assert_eq!(from, SocketAddr::from((vip, 53)));
        *udp_seen.entry(name).or_insert(0) += 1;
    }
    assert!(udp_seen.len() >= 2, "UDP spread: {udp_seen:?}");

    // Hairpin: a provider reaches the VIP, also when it picks itself (p1 on host 0, p2 on 1).
    for p in [&p1, &p2] {
        let mine = tally(&p.netns, vip, 30);
        assert!(
            mine.contains_key(&p.name),
            "{} picked itself: {mine:?}",
            p.name
        );
    }

    // An open connection to p1 (through the VIP) stays up across removals of the others.
    let mut kept = loop {
        let (s, name) = connect(&c2.netns, vip).expect("connect");
        if name == "p1" {
            break s;
        }
    };
    let mut echo = |tag: &str| {
        kept.write_all(tag.as_bytes()).expect("write kept");
        let mut buf = vec![0u8; tag.len()];
        kept.read_exact(&mut buf).expect("read kept");
        assert_eq!(buf, tag.as_bytes());
    };
    // Removal by CNI DEL.
    c.del_workload(&p3).expect("DEL p3");
    let t = Instant::now();
    assert!(
        eventually(Duration::from_secs(3), || oper(&c)["numProviders"]
            == json!(2)),
        "{}",
        oper(&c)
    );
    // No wait for the hosts' tables: a connection made before host 0 applies the removal may
    // still pick p3, but its SYN goes nowhere and, once the host drops p3's half-open conntrack
    // bindings with the table change, its retransmission (~1 s, within `connect`'s 2 s) picks
    // one of the others.
    let got = tally(&c1.netns, vip, 60);
    eprintln!("after DEL p3 ({:?}): {got:?}", t.elapsed());
    assert!(!got.contains_key("p3"), "{got:?}");
    echo("after-del\n");
    // Removal by a label change. p2 keeps running, so a connection made before a host applies
    // the removal would legitimately reach it: wait until both hosts enforce it.
    relabel(&c, &p2, json!({"app": "retired"}));
    assert!(
        eventually(Duration::from_secs(3), || (0..2)
            .all(|h| !lb_table(&c, h).contains(&p2.ip.to_string()))),
        "p2 relabelled out of both hosts' tables"
    );
    let got = tally(&c2.netns, vip, 40);
    assert_eq!(got.get("p1"), Some(&40), "{got:?}");
    let ep = c
        .get_json(&format!(
            "/api/v1/inspect/endpoints/{}/",
            c.endpoint_id(&p2)
        ))
        .expect("inspect p2");
    assert_eq!(ep["Oper"]["labels"], json!("map[app:retired]"), "{ep}");
    echo("after-label\n");

    // Adding a provider: new connections reach it within a second of its ADD.
    let p4 = add(1, "p4", &[WEB]);
    let _s4 = provider(&p4);
    let added = Instant::now();
    let mut first = None;
    while added.elapsed() < Duration::from_secs(3) {
        if connect(&c1.netns, vip).is_ok_and(|(_, n)| n == "p4") {
            first = Some(added.elapsed());
            break;
        }
    }
    eprintln!("new provider p4 took its first connection after {first:?}");
    assert!(
        first.is_some_and(|d| d < Duration::from_secs(1)),
        "p4 within 1 s: {first:?}"
    );
    echo("after-add\n");
    drop(kept);
}

fn a_provider_side_deny_blocks_vip_traffic_on_both_hosts(dp: TestDatapath) {
    require_root();
    let c = Cluster::start_on(bins(), dp, 2, &[]).expect("cluster");
    c.create_tenant(T).expect("tenant");
    c.create_network(T, NET, "10.62.0.0/24", "10.62.0.1")
        .expect("network");
    post(
        &c,
        &format!("/api/v1/policys/{T}:web-in/"),
        json!({"tenantName": T, "policyName": "web-in"}),
    );
    for (group, policies) in [("web", json!(["web-in"])), ("cli", json!([]))] {
        post(
            &c,
            &format!("/api/v1/endpointGroups/{T}:{group}/"),
            json!({"tenantName": T, "groupName": group, "networkName": NET, "policies": policies}),
        );
    }
    post(
        &c,
        &format!("/api/v1/serviceLBs/{T}:web/"),
        json!({"tenantName": T, "serviceName": "web", "networkName": NET,
            "selectors": ["app=web"], "ports": ["80:8080:TCP"]}),
    );
    let add = |host: usize, name: &str, group: &str, labels: &[(&str, &str)]| {
        let ns = c.tb.workload(name).expect("netns");
        c.attach_labelled(host, name, &ns, (T, NET, Some(group)), labels)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let p1 = add(0, "p1", "web", &[WEB]);
    let p2 = add(1, "p2", "web", &[WEB]);
    let c1 = add(0, "c1", "cli", &[]);
    let c2 = add(1, "c2", "cli", &[]);
    let _servers: Vec<[NamedServer; 2]> = [&p1, &p2].into_iter().map(provider).collect();
    let vip: Ipv4Addr = oper(&c)["serviceVip"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("serviceVip");
    assert!(eventually(Duration::from_secs(5), || {
        tally_ok(&c1.netns, vip, 10) == 10 && tally_ok(&c2.netns, vip, 10) == 10
    }));
    // The providers' group denies tcp 8080 from the clients' group: every VIP connection fails,
    // to the provider on the client's host and to the one across.
    post(
        &c,
        &format!("/api/v1/rules/{T}:web-in:deny-cli/"),
        json!({"tenantName": T, "policyName": "web-in", "ruleId": "deny-cli", "direction": "in",
            "action": "deny", "priority": 5, "fromEndpointGroup": "cli", "protocol": "tcp",
            "port": 8080}),
    );
    assert!(
        eventually(Duration::from_secs(5), || tally_ok(&c1.netns, vip, 6) == 0
            && tally_ok(&c2.netns, vip, 6) == 0),
        "deny enforced for VIP traffic"
    );
    assert_eq!(tally_ok(&c1.netns, vip, 10), 0);
    assert_eq!(tally_ok(&c2.netns, vip, 10), 0);
    // Direct traffic between providers is not affected (the rule names the clients' group).
    assert!(
        tally_ok(&p1.netns, vip, 6) == 6,
        "providers still reach the VIP"
    );
    match c.api(
        "DELETE",
        &format!("/api/v1/rules/{T}:web-in:deny-cli/"),
        None,
    ) {
        Ok((200, _)) => {}
        other => panic!("DELETE rule: {other:?}"),
    }
    assert!(eventually(Duration::from_secs(5), || {
        tally_ok(&c1.netns, vip, 10) == 10 && tally_ok(&c2.netns, vip, 10) == 10
    }));
}

/// The service balancing of the test tenant on host `h`: its nftables table (`nft list`,
/// Linux), the bridge's groups (`ovs-ofctl dump-groups`, OVS).
fn lb_table(c: &Cluster, h: usize) -> String {
    if let Some(ovs) = c.ovs(h) {
        return ovs.dump_groups().expect("dump-groups");
    }
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net={}", c.tenant_ns(h, T).display()))
        .args(["nft", "list", "table", "ip", "contiv_lb"])
        .output()
        .expect("nft");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How many of `n` connections from `ns` to the VIP answered (short timeout each).
fn tally_ok(ns: &Path, vip: Ipv4Addr, n: usize) -> usize {
    (0..n)
        .filter(|_| {
            in_netns(ns, || {
                TcpStream::connect_timeout(&SocketAddr::from((vip, 80)), Duration::from_millis(300))
                    .is_ok()
            })
            .unwrap_or(false)
        })
        .count()
}
