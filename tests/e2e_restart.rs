//! End-to-end: a netplugin killed with SIGKILL and restarted. Established connections survive
//! (the agent never flushes), and what changed while it was down is applied when it is back:
//! a workload added and one removed on another host, a network deleted, a DEL the CNI plugin
//! spooled, a workload whose namespace vanished. Root only: `#[ignore = "needs root"]`, run as root
//! with `--include-ignored`. Every test runs on both datapaths (`linux::…`, `ovs::…`): where
//! the Linux variant reads the tenant namespace's kernel objects, the OVS one reads the host's
//! bridge.

#[macro_use]
mod common;

use common::{bins, host_knows};

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use contiv_netplugin::testbed::{
    eventually, ping, require_root, Cluster, TcpSession, TestDatapath, Workload,
};
use serde_json::Value;

on_both_datapaths!(
    agent_kill9_keeps_traffic_and_catches_up_on_restart,
    netmaster_restart_agents_reconnect_and_resume,
);

fn add(c: &Cluster, host: usize, name: &str, net: &str) -> Workload {
    c.add_workload(host, name, "default", net)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Names of the VXLAN devices in a namespace.
fn vxlan_devices(ns: &Path) -> Vec<String> {
    let name = ns.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let o = Command::new("ip")
        .args(["-j", "-n", name, "link", "show", "type", "vxlan"])
        .output()
        .expect("ip");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Array(vec![]));
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["ifname"].as_str().map(String::from))
        .collect()
}

/// How many networks of tenant `default` host `h` forwards for: VXLAN devices in its tenant
/// namespace (Linux), networks whose gateway ARP is answered on its bridge (OVS: the ARP_RESP
/// table's network flows, cookie category 2).
fn networks_on(c: &Cluster, h: usize) -> usize {
    match c.datapath() {
        TestDatapath::Linux => vxlan_devices(&c.tenant_ns(h, "default")).len(),
        TestDatapath::Ovs => {
            let dump = c.ovs(h).expect("ovs").dump_flows().expect("dump-flows");
            let nets: std::collections::BTreeSet<u64> = dump
                .lines()
                .filter(|l| l.contains("table=11,"))
                .filter_map(|l| {
                    let hex = l.split("cookie=0x").nth(1)?.split(',').next()?;
                    u64::from_str_radix(hex, 16).ok()
                })
                .filter(|cookie| (cookie >> 40) & 0xff == 2)
                .map(|cookie| cookie & 0xff_ffff_ffff)
                .collect();
            nets.len()
        }
    }
}

/// The cookie rounds (bits 48-63) of the flows on host `h`'s bridge.
fn rounds_on(c: &Cluster, h: usize) -> std::collections::BTreeSet<u64> {
    let dump = c.ovs(h).expect("ovs").dump_flows().expect("dump-flows");
    dump.lines()
        .filter_map(|l| {
            let hex = l.split("cookie=0x").nth(1)?.split(',').next()?;
            u64::from_str_radix(hex, 16).ok()
        })
        .map(|cookie| cookie >> 48)
        .collect()
}

fn endpoint_exists(c: &Cluster, w: &Workload) -> bool {
    let path = format!("/api/v1/inspect/endpoints/{}/", c.endpoint_id(w));
    matches!(c.api("GET", &path, None), Ok((200, _)))
}

fn agent_kill9_keeps_traffic_and_catches_up_on_restart(dp: TestDatapath) {
    require_root();
    let mut c = Cluster::start_on(bins(), dp, 2, &[]).unwrap_or_else(|e| panic!("cluster: {e}"));
    c.create_network("default", "net1", "10.4.1.0/24", "10.4.1.1")
        .expect("net1");
    c.create_network("default", "net2", "10.4.2.0/24", "10.4.2.1")
        .expect("net2");
    let a = add(&c, 0, "a", "net1");
    let gone = add(&c, 0, "gone", "net1");
    let spooled = add(&c, 0, "spooled", "net1");
    let b = add(&c, 1, "b", "net1");
    let d = add(&c, 1, "d", "net1");
    let n2w = add(&c, 1, "n2w", "net2");
    assert!(
        eventually(Duration::from_secs(8), || ping(&a.netns, b.ip, 1)),
        "a -> b\n{}",
        c.agent_log(0)
    );
    assert!(
        eventually(Duration::from_secs(8), || ping(&a.netns, n2w.ip, 1)),
        "a -> n2w through the gateway"
    );
    assert!(eventually(Duration::from_secs(5), || host_knows(
        &c,
        0,
        "default",
        &d.ip.to_string()
    )));
    assert_eq!(
        networks_on(&c, 0),
        2,
        "both networks of the tenant on host 1"
    );
    let mut session = TcpSession::open(&a.netns, &b.netns, b.ip, 7101).expect("tcp session");
    assert_eq!(session.exchange("before").as_deref(), Ok("before"));

    c.kill_agent(0);
    assert_eq!(session.exchange("while-down").as_deref(), Ok("while-down"));
    let late = add(&c, 1, "late", "net1");
    c.del_workload(&d).expect("del d on host 2");
    c.del_workload(&n2w).expect("del n2w on host 2");
    c.delete_network("default", "net2").expect("delete net2");
    c.del_workload(&spooled)
        .expect("DEL with the agent down is spooled, not failed");
    assert!(
        std::fs::read_dir(c.pending_dir(0))
            .map(|d| d.count())
            .unwrap_or(0)
            >= 1,
        "spool record"
    );
    c.remove_workload_netns(&gone).expect("delete gone's netns");

    c.restart_agent(0).expect("restart agent 1");
    assert_eq!(
        session.exchange("after-restart").as_deref(),
        Ok("after-restart")
    );
    assert!(
        eventually(Duration::from_secs(8), || ping(&a.netns, late.ip, 1)),
        "a -> late\n{}",
        c.agent_log(0)
    );
    assert!(
        eventually(Duration::from_secs(5), || !host_knows(
            &c,
            0,
            "default",
            &d.ip.to_string()
        )),
        "d's entry left"
    );
    assert!(
        eventually(Duration::from_secs(5), || networks_on(&c, 0) == 1),
        "net2 left: {}",
        networks_on(&c, 0)
    );
    assert!(
        eventually(Duration::from_secs(5), || !endpoint_exists(&c, &spooled)),
        "spooled DEL not replayed"
    );
    assert!(
        eventually(Duration::from_secs(5), || !endpoint_exists(&c, &gone)),
        "stale endpoint kept\n{}",
        c.agent_log(0)
    );
    assert!(!host_knows(&c, 0, "default", &gone.ip.to_string()));
    assert_eq!(
        std::fs::read_dir(c.pending_dir(0))
            .map(|d| d.count())
            .unwrap_or(0),
        0,
        "spool emptied"
    );
    if dp == TestDatapath::Ovs {
        // The restarted agent's round replaced the previous one whole: one round left.
        assert!(
            eventually(Duration::from_secs(5), || rounds_on(&c, 0).len() == 1),
            "rounds on host 1: {:?}",
            rounds_on(&c, 0)
        );
    }
    assert!(endpoint_exists(&c, &a), "live endpoint kept");
    assert!(ping(&a.netns, b.ip, 3));
    assert_eq!(session.exchange("end").as_deref(), Ok("end"));
}

/// contivk8s STATUS against host `h`'s agent: the CNI error code, 0 when available.
fn status_code(c: &Cluster, h: usize) -> u64 {
    let ns = Path::new("/nonexistent");
    let (code, out) = c
        .cni(h, "STATUS", "", ns, "default", "net1")
        .expect("cni status");
    if code == 0 {
        return 0;
    }
    serde_json::from_str::<Value>(&out)
        .ok()
        .and_then(|v| v["code"].as_u64())
        .unwrap_or(u64::MAX)
}

fn netmaster_restart_agents_reconnect_and_resume(dp: TestDatapath) {
    require_root();
    let mut c = Cluster::start_on(bins(), dp, 2, &[]).unwrap_or_else(|e| panic!("cluster: {e}"));
    c.create_network("default", "net1", "10.8.1.0/24", "10.8.1.1")
        .expect("net1");
    let a = add(&c, 0, "a", "net1");
    let b = add(&c, 1, "b", "net1");
    assert!(
        eventually(Duration::from_secs(8), || ping(&a.netns, b.ip, 1)),
        "a -> b"
    );
    assert_eq!(status_code(&c, 0), 0);

    c.kill_netmaster();
    assert!(
        eventually(Duration::from_secs(10), || status_code(&c, 0) == 50),
        "STATUS while netmaster is down"
    );
    assert!(
        ping(&a.netns, b.ip, 2),
        "traffic does not depend on netmaster"
    );
    let ns = c.tb.workload("refused").expect("netns");
    let (code, out) = c
        .cni(0, "ADD", "refused", &ns, "default", "net1")
        .expect("cni");
    assert_ne!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).expect("json")["code"],
        11,
        "{out}"
    );

    c.start_netmaster().expect("netmaster restart");
    assert!(
        eventually(Duration::from_secs(15), || status_code(&c, 0) == 0),
        "STATUS after restart\n{}",
        c.agent_log(0)
    );
    let late = add(&c, 1, "late", "net1");
    assert!(
        eventually(Duration::from_secs(10), || ping(&a.netns, late.ip, 1)),
        "a -> late\n{}",
        c.agent_log(0)
    );
}
