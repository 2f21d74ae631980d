//! Engine invariants, on the in-memory store: memory always equals the store replayed, and a
//! refused write changes nothing.

use std::sync::Arc;

use contiv_model::*;
use contiv_store::{MemoryStore, StateStore};
use serde_json::json;

use super::{Engine, EngineOptions};
use crate::plugin::{AllocAddressRequest, ConfigEp, CreateEndpointRequest, DeleteEndpointRequest};

fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("valid test object")
}

/// Everything a client can observe, as JSON text.
fn observe(e: &Engine) -> Vec<String> {
    let mut out = vec![
        String::from_utf8_lossy(&e.list_json::<Tenant>().expect("list")).into_owned(),
        String::from_utf8_lossy(&e.list_json::<Network>().expect("list")).into_owned(),
        String::from_utf8_lossy(&e.list_json::<EndpointGroup>().expect("list")).into_owned(),
        String::from_utf8_lossy(&e.list_json::<Policy>().expect("list")).into_owned(),
        String::from_utf8_lossy(&e.list_json::<Rule>().expect("list")).into_owned(),
        String::from_utf8_lossy(&e.list_json::<ServiceLb>().expect("list")).into_owned(),
    ];
    let nets: Vec<String> = e.read(|st| st.networks.keys().cloned().collect());
    for n in nets {
        out.push(serde_json::to_string(&e.inspect::<Network>(&n).expect("inspect")).expect("json"));
    }
    let groups: Vec<String> = e.read(|st| st.epgs.keys().cloned().collect());
    for g in groups {
        out.push(
            serde_json::to_string(&e.inspect::<EndpointGroup>(&g).expect("inspect")).expect("json"),
        );
    }
    out.push(
        serde_json::to_string(&e.inspect::<Global>("global").expect("inspect")).expect("json"),
    );
    out.push(e.read(|st| format!("{:?} {:?} {:?}", st.epg_ids, st.vlans, st.vxlans)));
    out
}

async fn populate(e: &Engine) {
    e.upsert("t1", obj::<Tenant>(json!({"tenantName": "t1"})))
        .await
        .expect("tenant");
    for (i, encap) in [(1, "vxlan"), (2, "vlan"), (3, "vxlan")] {
        let key = format!("t1:n{i}");
        let n = json!({"tenantName": "t1", "networkName": format!("n{i}"), "encap": encap,
            "subnet": format!("10.0.{i}.0/24"), "gateway": format!("10.0.{i}.1")});
        e.upsert(&key, obj::<Network>(n)).await.expect("network");
    }
    e.upsert(
        "t1:p",
        obj::<Policy>(json!({"tenantName": "t1", "policyName": "p"})),
    )
    .await
    .expect("policy");
    let g = json!({"tenantName": "t1", "groupName": "g", "networkName": "n1", "policies": ["p"], "ipPool": "10.0.1.100-10.0.1.120"});
    e.upsert("t1:g", obj::<EndpointGroup>(g))
        .await
        .expect("group");
    for c in ["a", "b", "c"] {
        let req = CreateEndpointRequest {
            tenant_name: "t1".into(),
            network_name: "n1".into(),
            config_ep: ConfigEp {
                container: c.into(),
                host: "h1".into(),
                service_name: "g".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        e.create_endpoint(req).await.expect("endpoint");
    }
    for _ in 0..5 {
        let req = AllocAddressRequest {
            network_id: "n3.t1".into(),
            ..Default::default()
        };
        e.alloc_address(req).await.expect("alloc");
    }
    let del = DeleteEndpointRequest {
        tenant_name: "t1".into(),
        network_name: "n1".into(),
        endpoint_id: "b".into(),
        ..Default::default()
    };
    e.delete_endpoint(del).await.expect("delete endpoint");
    e.delete::<Network>("t1:n2").await.expect("delete network");
    let svc = json!({"tenantName": "t1", "serviceName": "s", "networkName": "n3", "selectors": ["a=b"], "ports": ["80:80:TCP"]});
    e.upsert("t1:s", obj::<ServiceLb>(svc))
        .await
        .expect("service");
}

#[tokio::test]
async fn memory_equals_the_store_replayed() {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let live = Engine::open(store.clone(), EngineOptions::default())
        .await
        .expect("open");
    populate(&live).await;
    let replayed = Engine::open(store, EngineOptions::default())
        .await
        .expect("reopen");
    assert_eq!(observe(&live), observe(&replayed));
}

/// Two netmasters on one store: the one that did not write follows the other's commits through
/// the store's watch (memory and the agent stream), with no reload.
#[tokio::test]
async fn memory_follows_writes_of_another_netmaster() {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let writer = Engine::open(store.clone(), EngineOptions::default())
        .await
        .expect("open writer");
    let follower = Engine::open(store.clone(), EngineOptions::default())
        .await
        .expect("open follower");
    let after = follower.agent_snapshot().revision;
    let mut sub = follower.agent_subscribe(after).expect("subscribe");
    let mut own = writer
        .agent_subscribe(after)
        .expect("subscribe to the writer");
    populate(&writer).await;
    let target = store.range("/").await.expect("range").revision;
    follower
        .await_applied(target)
        .await
        .expect("follower caught up");
    assert_eq!(observe(&writer), observe(&follower));
    // The follower's agents saw the writer's changes, in revision order.
    let mut seen = sub.backlog.iter().map(|e| e.revision).collect::<Vec<_>>();
    while let Ok(ev) = sub.live.try_recv() {
        seen.push(ev.revision);
    }
    assert!(!seen.is_empty(), "agent stream saw nothing");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    // The writer applied its own commits (the follower skipped them): its agents saw each
    // revision exactly once, in order, the same ones.
    let mut mine = own.backlog.iter().map(|e| e.revision).collect::<Vec<_>>();
    while let Ok(ev) = own.live.try_recv() {
        mine.push(ev.revision);
    }
    assert_eq!(mine, seen, "both netmasters' agents saw the same revisions");
    // A delete made by the writer disappears from the follower too.
    writer
        .delete::<ServiceLb>("t1:s")
        .await
        .expect("delete service");
    let target = store.range("/").await.expect("range").revision;
    follower.await_applied(target).await.expect("caught up");
    assert_eq!(observe(&writer), observe(&follower));
}

#[tokio::test]
async fn refused_writes_change_nothing() {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let e = Engine::open(store.clone(), EngineOptions::default())
        .await
        .expect("open");
    populate(&e).await;
    let before = observe(&e);
    let rev = store.range("/").await.expect("range").revision;
    let overlapping = json!({"tenantName": "t1", "networkName": "x", "encap": "vxlan", "subnet": "10.0.1.128/25"});
    assert!(e.upsert("t1:x", obj::<Network>(overlapping)).await.is_err());
    assert!(e.delete::<Policy>("t1:p").await.is_err(), "policy in use");
    assert!(
        e.delete::<Tenant>("t1").await.is_err(),
        "tenant has children"
    );
    let bad_pool = json!({"tenantName": "t1", "groupName": "g2", "networkName": "n1", "ipPool": "10.0.1.110-10.0.1.130"});
    assert!(
        e.upsert("t1:g2", obj::<EndpointGroup>(bad_pool))
            .await
            .is_err(),
        "pools overlap"
    );
    let taken = AllocAddressRequest {
        network_id: "n1.t1".into(),
        preferred_ipv4_address: "10.0.1.100".into(),
        ..Default::default()
    };
    assert!(
        e.alloc_address(taken).await.is_err(),
        "address held by an endpoint"
    );
    assert_eq!(before, observe(&e));
    assert_eq!(
        rev,
        store.range("/").await.expect("range").revision,
        "no store write"
    );
}

/// The list cache survives writes that change no object (allocations, endpoints) and is dropped by
/// any object write, including one that only changes another list's derived links.
#[tokio::test]
async fn list_cache_follows_object_writes_only() {
    let e = Engine::open(Arc::new(MemoryStore::new()), EngineOptions::default())
        .await
        .expect("open");
    let n = json!({"tenantName": "default", "networkName": "n", "encap": "vxlan", "subnet": "10.9.0.0/24"});
    e.upsert("default:n", obj::<Network>(n))
        .await
        .expect("network");
    let first = e.list_json::<Network>().expect("list");
    e.alloc_address(AllocAddressRequest {
        network_id: "n.default".into(),
        ..Default::default()
    })
    .await
    .expect("alloc");
    let after_alloc = e.list_json::<Network>().expect("list");
    assert_eq!(
        first.as_ptr(),
        after_alloc.as_ptr(),
        "served from the cache"
    );
    let g = json!({"tenantName": "default", "groupName": "g", "networkName": "n"});
    e.upsert("default:g", obj::<EndpointGroup>(g))
        .await
        .expect("group");
    let after_group = e.list_json::<Network>().expect("list");
    let v: serde_json::Value = serde_json::from_slice(&after_group).expect("json");
    assert!(
        v[0]["link-sets"]["EndpointGroups"]["default:g"].is_object(),
        "derived link appears: {v}"
    );
}

mod leadership {
    use std::time::Duration;

    use contiv_store::{Txn, TxnOutcome};

    use super::*;
    use crate::engine::leader::{Leadership, Member, Role, LEADER_KEY};
    use crate::error::ErrorKind;

    fn tenant(name: &str) -> Tenant {
        obj(json!({ "tenantName": name }))
    }

    async fn elected(store: &Arc<dyn StateStore>, url: &str) -> Arc<Engine> {
        Engine::open_with(
            store.clone(),
            EngineOptions::default(),
            Leadership::elected(Member::new(url, "test")),
        )
        .await
        .expect("open")
    }

    async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
        for _ in 0..400 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// A leader whose key moved on (lease expired while it was paused, another took over) cannot
    /// commit: its fenced write fails, changes nothing, and it steps down.
    #[tokio::test]
    async fn a_deposed_leader_commits_nothing() {
        let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let a = elected(&store, "http://a").await;
        let lease = store
            .grant_lease(Duration::from_secs(60))
            .await
            .expect("lease");
        let won = store
            .commit(
                Txn::new()
                    .when_absent(LEADER_KEY)
                    .put_with_lease(LEADER_KEY, "a", lease),
            )
            .await
            .expect("campaign");
        let TxnOutcome::Committed { revision: fence } = won else {
            panic!("campaign failed")
        };
        a.leadership().set(Role::Leader { fence });
        a.upsert("t1", tenant("t1")).await.expect("leader writes");
        // The lease ends (the leader was paused past it) and b takes the key.
        store.revoke_lease(lease).await.expect("revoke");
        let b_lease = store
            .grant_lease(Duration::from_secs(60))
            .await
            .expect("lease");
        store
            .commit(Txn::new().put_with_lease(LEADER_KEY, "b", b_lease))
            .await
            .expect("b leads");
        let before = store.range("").await.expect("range");
        let err = a.upsert("t2", tenant("t2")).await.expect_err("fenced");
        assert_eq!(err.kind, ErrorKind::NotLeader, "{err}");
        assert!(err.message.contains("not the leader"), "{err}");
        assert_eq!(
            store.range("").await.expect("range"),
            before,
            "nothing written"
        );
        assert!(!a.leadership().is_leader(), "stepped down");
        let err = a.upsert("t3", tenant("t3")).await.expect_err("follower");
        assert_eq!(err.kind, ErrorKind::NotLeader);
    }

    /// Two netmasters: one is elected, the other refuses writes but follows; when the leader
    /// goes away the other takes over, caught up, and writes.
    #[tokio::test]
    async fn election_and_takeover() {
        let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let a = elected(&store, "http://a").await;
        a.start_election(Duration::from_millis(600));
        wait_for("a leads", || a.leadership().is_leader()).await;
        // A leader serves only once the cluster defaults exist (the first request after "leader"
        // may create a network in the default tenant).
        assert!(
            a.read(|st| st.tenants.contains_key("default")),
            "default tenant"
        );
        let b = elected(&store, "http://b").await;
        b.start_election(Duration::from_millis(600));
        wait_for("b knows the leader", || {
            b.leadership()
                .leader_elsewhere()
                .is_some_and(|m| m.url == "http://a")
        })
        .await;
        a.upsert("t1", tenant("t1")).await.expect("leader writes");
        assert!(
            b.upsert("t9", tenant("t9")).await.is_err(),
            "follower refuses"
        );
        let members = b.netmasters().await.expect("members");
        assert_eq!(members.len(), 2, "{members:?}");
        drop(a);
        wait_for("b leads", || b.leadership().is_leader()).await;
        assert!(
            b.read(|st| st.tenants.contains_key("t1")),
            "b followed a's write"
        );
        b.upsert("t2", tenant("t2"))
            .await
            .expect("new leader writes");
    }
}

/// A node silent past the grace period is gone with its endpoints: their addresses can be
/// handed out again; a node that keeps its heartbeat keeps everything.
#[tokio::test]
async fn a_silent_node_loses_its_endpoints() {
    use contiv_api::agent::NodeInfo;
    let options = EngineOptions {
        node_grace: std::time::Duration::from_millis(300),
        ..Default::default()
    };
    let e = Engine::open(Arc::new(MemoryStore::new()), options)
        .await
        .expect("open");
    let n = json!({"tenantName": "default", "networkName": "n", "encap": "vxlan",
        "subnet": "10.9.0.0/24", "gateway": "10.9.0.1"});
    e.upsert("default:n", obj::<Network>(n))
        .await
        .expect("network");
    let mut ips = std::collections::BTreeMap::new();
    for (host, c) in [("h1", "a"), ("h1", "b"), ("h2", "c")] {
        let node = NodeInfo {
            hostname: host.into(),
            ..Default::default()
        };
        e.register_node(node).await.expect("register");
        let req = CreateEndpointRequest {
            tenant_name: "default".into(),
            network_name: "n".into(),
            config_ep: ConfigEp {
                container: c.into(),
                host: host.into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let ep = e.create_endpoint(req).await.expect("endpoint");
        ips.insert(c, ep.endpoint_config.ip_address);
    }
    // h2 keeps sending heartbeats, h1 falls silent.
    for _ in 0..4 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let node = NodeInfo {
            hostname: "h2".into(),
            ..Default::default()
        };
        e.register_node(node).await.expect("heartbeat");
    }
    assert_eq!(
        e.expire_nodes().await.expect("expire"),
        vec!["h1".to_string()]
    );
    let (nodes, eps) = e.read(|st| {
        (
            st.nodes.keys().cloned().collect::<Vec<_>>(),
            st.endpoints
                .values()
                .map(|ep| ep.ip_address.clone())
                .collect::<Vec<_>>(),
        )
    });
    assert_eq!(nodes, vec!["h2".to_string()]);
    assert_eq!(eps, vec![ips["c"].clone()]);
    // h1's addresses are free again.
    for c in ["a", "b"] {
        let req = AllocAddressRequest {
            network_id: "n.default".into(),
            preferred_ipv4_address: ips[c].clone(),
            ..Default::default()
        };
        let got = e.alloc_address(req).await.expect("address is free again");
        assert_eq!(got.ipv4_address, format!("{}/24", ips[c]));
    }
}
