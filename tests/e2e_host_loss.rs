//! End-to-end: a host that goes silent. Past netmaster's `--node-grace` its node and endpoints are
//! reclaimed (addresses free, other hosts stop programming them); a host that comes back with its
//! workloads still running announces them again and they are reachable again. Root only.
//! Every test runs on both datapaths (`linux::…`, `ovs::…`).

#[macro_use]
mod common;

use common::{bins, host_knows};

use std::time::Duration;

use contiv_netplugin::testbed::{eventually, ping, require_root, Cluster, TestDatapath, Workload};
use serde_json::json;

on_both_datapaths!(
    a_vanished_host_loses_its_endpoints_after_the_grace_period,
    a_host_that_comes_back_reannounces_its_running_workloads,
);

/// Grace given to silent nodes in these tests (netmaster checks every 5 s).
const GRACE: &str = "5";

fn endpoint_exists(c: &Cluster, w: &Workload) -> bool {
    let path = format!("/api/v1/inspect/endpoints/{}/", c.endpoint_id(w));
    matches!(c.api("GET", &path, None), Ok((200, _)))
}

fn node_registered(c: &Cluster, host: usize) -> bool {
    c.get_json("/info")
        .map(|i| i["netplugin-nodes"].to_string())
        .unwrap_or_default()
        .contains(&c.host_name(host))
        || c.get_json("/info")
            .map(|i| i["netplugin-nodes"].to_string())
            .unwrap_or_default()
            .contains(&c.tb.hosts[host].vtep.to_string())
}

fn a_vanished_host_loses_its_endpoints_after_the_grace_period(dp: TestDatapath) {
    require_root();
    let mut c = Cluster::start_on(bins(), dp, 2, &["--node-grace", GRACE])
        .unwrap_or_else(|e| panic!("cluster: {e}"));
    c.create_network("default", "hl", "10.62.0.0/24", "10.62.0.1")
        .expect("network");
    let a = c.add_workload(0, "a", "default", "hl").expect("a");
    let b = c.add_workload(1, "b", "default", "hl").expect("b");
    assert!(
        eventually(Duration::from_secs(8), || ping(&a.netns, b.ip, 1)),
        "a -> b"
    );
    assert!(
        host_knows(&c, 0, "default", &b.ip.to_string()),
        "host 0 programs b"
    );
    // Host 1 vanishes: its agent and its workload.
    c.kill_agent(1);
    c.remove_workload_netns(&b).expect("remove b's namespace");
    assert!(
        eventually(Duration::from_secs(25), || !endpoint_exists(&c, &b)),
        "b's endpoint was not reclaimed"
    );
    assert!(!node_registered(&c, 1), "host 1's node record is gone");
    assert!(
        eventually(Duration::from_secs(10), || !host_knows(
            &c,
            0,
            "default",
            &b.ip.to_string()
        )),
        "host 0 still programs b"
    );
    // b's address is free again.
    let (code, body) = c
        .api_as_host(
            0,
            "POST",
            "/plugin/allocAddress",
            Some(&json!({"NetworkID": "hl.default", "PreferredIPv4Address": b.ip.to_string()})),
        )
        .expect("allocAddress");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(&b.ip.to_string()), "{body}");
    // a is untouched.
    assert!(endpoint_exists(&c, &a));
}

fn a_host_that_comes_back_reannounces_its_running_workloads(dp: TestDatapath) {
    require_root();
    let mut c = Cluster::start_on(bins(), dp, 2, &["--node-grace", GRACE])
        .unwrap_or_else(|e| panic!("cluster: {e}"));
    c.create_network("default", "hb", "10.63.0.0/24", "10.63.0.1")
        .expect("network");
    let a = c.add_workload(0, "a", "default", "hb").expect("a");
    let b = c.add_workload(1, "b", "default", "hb").expect("b");
    assert!(
        eventually(Duration::from_secs(8), || ping(&a.netns, b.ip, 1)),
        "a -> b"
    );
    // Host 1's agent is silent past the grace period; its workload keeps running.
    c.kill_agent(1);
    assert!(
        eventually(Duration::from_secs(25), || !endpoint_exists(&c, &b)),
        "b's endpoint was not reclaimed"
    );
    // It comes back: registers again and announces b again, with the same address.
    c.restart_agent(1).expect("restart agent 1");
    assert!(
        eventually(Duration::from_secs(15), || endpoint_exists(&c, &b)),
        "b was not re-announced\n{}",
        c.agent_log(1)
    );
    let ep = c
        .get_json(&format!("/api/v1/inspect/endpoints/{}/", c.endpoint_id(&b)))
        .expect("inspect b");
    assert!(
        ep.to_string().contains(&b.ip.to_string()),
        "same address: {ep}"
    );
    assert!(
        eventually(Duration::from_secs(10), || ping(&a.netns, b.ip, 1)),
        "a -> b again after the host came back"
    );
    c.del_workload(&b)
        .expect("DEL of the re-announced workload");
    assert!(!endpoint_exists(&c, &b));
}
