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
