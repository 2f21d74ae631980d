//! The audit log with two netmasters on a real etcd: a write sent to the follower is recorded once
//! (by the leader, under the caller's name), and the log survives a `kill -9` of the leader: the
//! new leader appends to the same log.

mod common;

use std::time::{Duration, Instant};

use common::Netmaster;
use contiv_store::testing::EtcdCluster;
use serde_json::{json, Value};

fn leader_of(nms: &[&Netmaster]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        for (i, nm) in nms.iter().enumerate() {
            if let Ok((200, body)) = common::try_request(&nm.url, "GET", "/info", None, false) {
                let v: Value = serde_json::from_str(&body).unwrap_or_default();
                if v["current-state"] == "leader" {
                    return i;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no leader within 20 s");
}

fn tenant(nm: &Netmaster, t: &str) -> u16 {
    nm.post(
        &format!("/api/v1/tenants/{t}/"),
        &json!({"key": t, "tenantName": t}),
    )
    .0
}

#[test]
fn follower_writes_are_recorded_once_and_the_log_survives_a_leader_kill() {
    let etcd = EtcdCluster::start(1).expect("etcd");
    let tmp = tempfile::tempdir().unwrap();
    let eps = etcd.endpoints().join(",");
    let args = ["--etcd", eps.as_str(), "--leader-ttl", "2"];
    let mut nms = [
        Netmaster::start_in(&tmp.path().join("a"), &args),
        Netmaster::start_in(&tmp.path().join("b"), &args),
    ];
    let li = leader_of(&[&nms[0], &nms[1]]);
    let (leader, follower) = (&nms[li], &nms[1 - li]);
    assert_eq!(tenant(follower, "via-follower"), 200);
    assert_eq!(tenant(leader, "via-leader"), 200);
    let bad = follower.post(
        "/api/v1/tenants/bad/",
        &json!({"key": "other", "tenantName": "x"}),
    );
    assert_ne!(bad.0, 200, "{bad:?}");
    // kill -9 the leader; the other one takes over and keeps appending to the same log.
    nms[li].kill9();
    let survivor = &nms[1 - li];
    let deadline = Instant::now() + Duration::from_secs(20);
    while tenant(survivor, "after-kill") != 200 {
        assert!(Instant::now() < deadline, "no new leader took the write");
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = survivor.get_json("/api/v1/audit/");
    let paths: Vec<(String, u64)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_owned(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let ok = |p: &str| paths.iter().filter(|(q, s)| q == p && *s == 200).count();
    assert_eq!(ok("/api/v1/tenants/via-follower/"), 1, "{paths:?}");
    assert_eq!(ok("/api/v1/tenants/via-leader/"), 1, "{paths:?}");
    assert_eq!(ok("/api/v1/tenants/after-kill/"), 1, "{paths:?}");
    let bad_entries = paths
        .iter()
        .filter(|(q, _)| q == "/api/v1/tenants/bad/")
        .count();
    assert_eq!(bad_entries, 1, "the refused write once: {paths:?}");
    let first = |p: &str| paths.iter().position(|(q, _)| q == p).unwrap();
    assert!(first("/api/v1/tenants/via-follower/") < first("/api/v1/tenants/via-leader/"));
    assert!(first("/api/v1/tenants/via-leader/") < first("/api/v1/tenants/after-kill/"));
    let e = &log.as_array().unwrap()[first("/api/v1/tenants/via-follower/")];
    assert_eq!(e["user"], "anonymous");
    assert_eq!(e["after"]["tenantName"], "via-follower", "{e}");
}
