//! End-to-end netprofiles: netmaster + one netplugin per simulated host, workloads attached
//! through contivk8s in endpoint groups, real traffic. A "10mbps" profile measured with iperf3
//! both ways across hosts, its DSCP seen by tcpdump in the receiving workload, a profile change
//! and a group's detachment and re-attachment applied live to the running workload, the limit
//! kept across an agent restart, and full speed once removed. Root only.

mod common;

use common::bins;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use contiv_netplugin::testbed::traffic::{iperf3, tos_values, Capture};
use contiv_netplugin::testbed::{eventually, names, ping, require_root, Cluster, Workload};
use serde_json::{json, Value};

const T: &str = "qos";
/// How long a change may take to reach the kernel (the goal is one policy-loop pass).
const CONVERGE: Duration = Duration::from_secs(5);

fn post(c: &Cluster, path: &str, body: Value) {
    match c.api("POST", path, Some(&body)) {
        Ok((200 | 201, _)) => {}
        other => panic!("POST {path} {body}: {other:?}"),
    }
}

fn profile(c: &Cluster, bandwidth: &str, dscp: i64) {
    post(
        c,
        &format!("/api/v1/netprofiles/{T}:gold/"),
        json!({"tenantName": T, "profileName": "gold", "bandwidth": bandwidth, "DSCP": dscp}),
    );
}

fn group(c: &Cluster, name: &str, net_profile: &str) {
    post(
        c,
        &format!("/api/v1/endpointGroups/{T}:{name}/"),
        json!({"tenantName": T, "groupName": name, "networkName": "n", "netProfile": net_profile}),
    );
}

/// The rate (bit/s) of the tbf at the root of `dev` in `ns`; 0 without one.
fn tbf_rate(ns: &Path, dev: &str) -> u64 {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["tc", "-j", "qdisc", "show", "dev", dev])
        .output()
        .expect("tc");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v.as_array()
        .and_then(|a| a.iter().find(|q| q["root"] == true && q["kind"] == "tbf"))
        .and_then(|q| q["options"]["rate"].as_u64())
        .map_or(0, |bytes| bytes * 8)
}

/// The tbf rate on both ends of `w`'s veth (workload side, host side), in bit/s.
fn rates(c: &Cluster, w: &Workload) -> (u64, u64) {
    let host = names::host_veth(&c.endpoint_id(w));
    (
        tbf_rate(&w.netns, "eth0"),
        tbf_rate(&c.tenant_ns(w.host, T), &host),
    )
}

fn converges_to(c: &Cluster, w: &Workload, bps: u64) {
    let started = Instant::now();
    assert!(
        eventually(CONVERGE, || rates(c, w) == (bps, bps)),
        "{} limited to {bps} both ends: {:?}\n{}",
        w.name,
        rates(c, w),
        c.agent_log(w.host)
    );
    eprintln!(
        "{}: {bps} bit/s in force after {:?}",
        w.name,
        started.elapsed()
    );
}

/// The TOS byte of the first echo request `from` sends to `to`, as `to` receives it.
fn tos_seen(from: &Workload, to: &Workload) -> Option<u8> {
    let cap = Capture::start(&to.netns, "eth0", "icmp[icmptype] == icmp-echo").expect("tcpdump");
    assert!(
        ping(&from.netns, to.ip, 10),
        "{} reaches {}",
        from.name,
        to.name
    );
    tos_values(&cap.stop()).first().copied()
}

fn mbit(bps: f64) -> f64 {
    bps / 1e6
}

#[test]
#[ignore = "needs root"]
fn netprofile_limits_marks_and_follows_changes() {
    require_root();
    let mut c = Cluster::start(bins(), 2, &[]).unwrap_or_else(|e| panic!("cluster: {e}"));
    c.create_tenant(T).expect("tenant");
    c.create_network(T, "n", "10.61.0.0/24", "10.61.0.1")
        .expect("network");
    profile(&c, "10mbps", 46);
    group(&c, "web", "gold");
    group(&c, "plain", "");
    let web = c
        .add_workload_in_group(0, "web1", T, "n", Some("web"))
        .expect("web1");
    let plain = c
        .add_workload_in_group(1, "plain1", T, "n", Some("plain"))
        .expect("plain1");
    // In force when the ADD answered.
    assert_eq!(rates(&c, &web), (10_000_000, 10_000_000));
    assert_eq!(rates(&c, &plain), (0, 0), "no profile, no limit");

    // iperf3 across the two hosts, both directions: within ±15 % of 10 Mbit/s.
    let up = iperf3(&plain.netns, plain.ip, &web.netns, 4, false).expect("iperf3 web->plain");
    let down = iperf3(&plain.netns, plain.ip, &web.netns, 4, true).expect("iperf3 plain->web");
    eprintln!(
        "10mbps profile: web->plain {:.2} Mbit/s, plain->web {:.2} Mbit/s",
        mbit(up),
        mbit(down)
    );
    for (dir, bps) in [("from web", up), ("to web", down)] {
        assert!(
            (8.5e6..=11.5e6).contains(&bps),
            "{dir}: {:.2} Mbit/s",
            mbit(bps)
        );
    }
    // DSCP 46 (TOS 0xb8) as the receiver on the other host sees it; plain's own traffic is
    // unmarked.
    assert_eq!(
        tos_seen(&web, &plain),
        Some(0xb8),
        "web's packets marked 46"
    );
    assert_eq!(tos_seen(&plain, &web), Some(0), "plain's packets unmarked");

    // A profile change applies live to the running workload.
    profile(&c, "20 Mbps", 10);
    converges_to(&c, &web, 20_000_000);
    assert!(
        eventually(CONVERGE, || tos_seen(&web, &plain) == Some(10 << 2)),
        "DSCP 10 after the change"
    );

    // Kept across an agent restart (kill -9): the new agent reads it back, changes nothing.
    c.kill_agent(0);
    c.restart_agent(0).expect("restart");
    assert_eq!(rates(&c, &web), (20_000_000, 20_000_000));

    // Detached: full speed, unmarked; attached again: limited again.
    group(&c, "web", "");
    converges_to(&c, &web, 0);
    let full = iperf3(&plain.netns, plain.ip, &web.netns, 2, false).expect("iperf3");
    eprintln!("no profile: web->plain {:.0} Mbit/s", mbit(full));
    assert!(full > 200e6, "full speed again: {:.2} Mbit/s", mbit(full));
    assert_eq!(tos_seen(&web, &plain), Some(0), "no longer marked");
    group(&c, "web", "gold");
    converges_to(&c, &web, 20_000_000);

    // Bad input is refused and changes nothing on the hosts.
    let (code, text) = c
        .api(
            "POST",
            &format!("/api/v1/netprofiles/{T}:gold/"),
            Some(&json!({"tenantName": T, "profileName": "gold", "bandwidth": "fast"})),
        )
        .expect("api");
    assert!(
        code == 400 && text.contains("bandwidth string invalid format"),
        "{code} {text}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rates(&c, &web), (20_000_000, 20_000_000));

    // A new workload of the group starts limited; DEL leaves nothing behind.
    let web2 = c
        .add_workload_in_group(0, "web2", T, "n", Some("web"))
        .expect("web2");
    assert_eq!(rates(&c, &web2), (20_000_000, 20_000_000));
    c.del_workload(&web2).expect("del web2");
}
