//! The agent-facing /plugin/* API with Contiv's request/response shapes, endpoint inspect, and
//! state surviving a restart.

mod common;

use common::Netmaster;
use serde_json::{json, Value};

fn post_ok(nm: &Netmaster, path: &str, body: Value) -> Value {
    let (code, text) = nm.post(path, &body);
    assert_eq!(code, 200, "POST {path}: {text}");
    serde_json::from_str(&text).expect("json")
}

fn setup(nm: &Netmaster) {
    post_ok(
        nm,
        "/api/v1/networks/default:n1/",
        json!({"tenantName": "default", "networkName": "n1", "encap": "vxlan", "subnet": "10.1.1.0/24", "gateway": "10.1.1.1", "ipv6Subnet": "2001:db8::/64"}),
    );
    post_ok(
        nm,
        "/api/v1/endpointGroups/default:web/",
        json!({"tenantName": "default", "groupName": "web", "networkName": "n1", "ipPool": "10.1.1.100-10.1.1.110"}),
    );
}

fn create_ep(nm: &Netmaster, container: &str, group: &str, ip: &str) -> (u16, String) {
    nm.post("/plugin/createEndpoint", &json!({
        "TenantName": "default", "NetworkName": "n1", "ServiceName": group, "EndpointID": container,
        "EPCommonName": format!("name-{container}"),
        "ConfigEP": {"Container": container, "Host": "host1", "IPAddress": ip, "ServiceName": group}
    }))
}

#[test]
fn create_endpoint_is_idempotent_and_delete_releases_everything() {
    let nm = Netmaster::start();
    setup(&nm);
    let (code, body) = create_ep(&nm, "c1", "web", "");
    assert_eq!(code, 200, "{body}");
    let ep: Value = serde_json::from_str(&body).expect("json");
    let cfg = &ep["EndpointConfig"];
    assert_eq!(cfg["id"], "n1.default-c1");
    assert_eq!(cfg["ipAddress"], "10.1.1.100", "from the group's pool");
    assert_eq!(cfg["macAddress"], "02:02:0a:01:01:64");
    assert_eq!(cfg["ipv6Address"], "2001:db8::1");
    assert_eq!(cfg["endpointGroupKey"], "web:default");
    assert!(cfg["endpointGroupId"].as_i64().unwrap_or(0) >= 1);
    // again: same answer, nothing new allocated
    let (_, again) = create_ep(&nm, "c1", "web", "");
    let again: Value = serde_json::from_str(&again).expect("json");
    assert_eq!(again["EndpointConfig"], ep["EndpointConfig"]);
    // netmaster's revision when each request arrived: the second came after the first's commit.
    let rev = |v: &Value| v["revision"].as_u64().unwrap_or(0);
    assert!(rev(&again) > rev(&ep) && rev(&ep) > 0, "{ep} {again}");
    let insp = nm.get_json("/api/v1/inspect/networks/default:n1/");
    assert_eq!(insp["Oper"]["numEndpoints"], 1);
    assert_eq!(insp["Oper"]["endpoints"][0]["ipAddress"][0], "10.1.1.100");
    let g = nm.get_json("/api/v1/inspect/endpointGroups/default:web/");
    assert_eq!(g["Oper"]["numEndpoints"], 1);
    assert_eq!(g["Oper"]["allocatedIPAddresses"], "10.1.1.100");
    // endpoint inspect by id substring
    let e = nm.get_json("/api/v1/inspect/endpoints/c1/");
    assert_eq!(e["Oper"]["homingHost"], "host1");
    assert_eq!(e["Oper"]["containerName"], "name-c1");
    assert!(e.get("Config").is_none());
    // network / group deletion refused while it has endpoints
    assert_eq!(nm.delete("/api/v1/networks/default:n1/").0, 500);
    let (code, text) = nm.delete("/api/v1/endpointGroups/default:web/");
    assert!(code == 500 && text.contains("endpoints"), "{text}");
    // delete
    let (code, body) = nm.post("/plugin/deleteEndpoint", &json!({"TenantName": "default", "NetworkName": "n1", "ServiceName": "web", "EndpointID": "c1"}));
    assert_eq!(code, 200, "{body}");
    let insp = nm.get_json("/api/v1/inspect/networks/default:n1/");
    assert_eq!(
        insp["Oper"]["allocatedAddressesCount"]
            .as_i64()
            .unwrap_or(0),
        0
    );
    assert_eq!(nm.get("/api/v1/inspect/endpoints/c1/").0, 500);
    let (code, _) = nm.post(
        "/plugin/deleteEndpoint",
        &json!({"TenantName": "default", "NetworkName": "n1", "EndpointID": "c1"}),
    );
    assert_eq!(code, 500, "unknown endpoint");
}

#[test]
fn a_preferred_address_is_never_handed_out_twice() {
    let nm = Netmaster::start();
    setup(&nm);
    let req = json!({"NetworkID": "n1.default", "AddressPool": "10.1.1.0/24", "PreferredIPv4Address": "10.1.1.50"});
    let a = post_ok(&nm, "/plugin/allocAddress", req.clone());
    assert_eq!(a["IPv4Address"], "10.1.1.50/24");
    let (code, text) = nm.post("/plugin/allocAddress", &req);
    assert_eq!(code, 500);
    assert!(text.contains("10.1.1.50"), "{text}");
    // an endpoint naming the address claims the unowned allocation (Docker IPAM then join)
    let (code, body) = create_ep(&nm, "c2", "", "10.1.1.50");
    assert_eq!(code, 200, "{body}");
    // but no second endpoint may take it
    let (code, _) = create_ep(&nm, "c3", "", "10.1.1.50");
    assert_eq!(code, 500);
    // gateway and addresses outside the subnet are refused
    for bad in ["10.1.1.1", "10.1.2.5", "10.1.1.255", "not-an-ip"] {
        let r = json!({"NetworkID": "n1.default", "AddressPool": "", "PreferredIPv4Address": bad});
        assert_eq!(nm.post("/plugin/allocAddress", &r).0, 500, "{bad}");
    }
    // release of an unowned allocation
    let b = post_ok(
        &nm,
        "/plugin/allocAddress",
        json!({"NetworkID": "n1.default", "AddressPool": ""}),
    );
    assert_eq!(b["IPv4Address"], "10.1.1.2/24");
    let (code, text) = nm.post(
        "/plugin/releaseAddress",
        &json!({"NetworkID": "n1.default", "IPv4Address": "10.1.1.2/24"}),
    );
    assert_eq!((code, text.as_str()), (200, "\"success\""));
    // group-scoped allocation id "net:group.tenant"
    let c = post_ok(
        &nm,
        "/plugin/allocAddress",
        json!({"NetworkID": "n1:web.default", "AddressPool": ""}),
    );
    assert_eq!(c["IPv4Address"], "10.1.1.100/24");
    // unknown network, malformed body
    assert_eq!(
        nm.post(
            "/plugin/allocAddress",
            &json!({"NetworkID": "nope.default"})
        )
        .0,
        500
    );
    assert_eq!(nm.post("/plugin/allocAddress", &json!([1, 2])).0, 500);
}

#[test]
fn update_endpoint_sets_labels_that_select_service_providers() {
    let nm = Netmaster::start();
    setup(&nm);
    create_ep(&nm, "c1", "web", "");
    post_ok(
        &nm,
        "/api/v1/serviceLBs/default:s1/",
        json!({"tenantName": "default", "serviceName": "s1", "networkName": "n1", "selectors": ["app=web"], "ports": ["80:8080:TCP"]}),
    );
    let r = post_ok(
        &nm,
        "/plugin/updateEndpoint",
        json!({"IPAddress": "10.1.1.100", "ContainerID": "abc", "Labels": {"app": "web"}, "Tenant": "default", "Network": "n1", "Event": "start", "EndpointID": "n1.default-c1"}),
    );
    assert_eq!(r["IPAddress"], "10.1.1.100");
    let s = nm.get_json("/api/v1/inspect/serviceLBs/default:s1/");
    assert_eq!(s["Oper"]["numProviders"], 1);
    assert_eq!(s["Oper"]["providers"][0]["containerID"], "abc");
}

#[test]
fn everything_survives_a_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let before;
    {
        let mut nm = Netmaster::start_in(tmp.path(), &[]);
        setup(&nm);
        create_ep(&nm, "c1", "web", "");
        create_ep(&nm, "c2", "", "");
        post_ok(
            &nm,
            "/api/v1/policys/default:p/",
            json!({"tenantName": "default", "policyName": "p"}),
        );
        before = (
            nm.get_json("/api/v1/inspect/networks/default:n1/"),
            nm.get_json("/api/v1/inspect/endpointGroups/default:web/"),
            nm.get_json("/api/v1/inspect/globals/global/"),
            nm.get_json("/api/v1/policys/"),
        );
        nm.stop();
    }
    let nm = Netmaster::start_in(tmp.path(), &[]);
    let after = (
        nm.get_json("/api/v1/inspect/networks/default:n1/"),
        nm.get_json("/api/v1/inspect/endpointGroups/default:web/"),
        nm.get_json("/api/v1/inspect/globals/global/"),
        nm.get_json("/api/v1/policys/"),
    );
    assert_eq!(before, after);
    // allocation continues after what was taken
    let (_, body) = create_ep(&nm, "c3", "", "");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["EndpointConfig"]["ipAddress"], "10.1.1.3");
    // group ids are never reused, even after a restart
    let old_id = before.1["Oper"]["endpoints"][0]["endpointGroupId"]
        .as_i64()
        .expect("id");
    post_ok(
        &nm,
        "/api/v1/endpointGroups/default:other/",
        json!({"tenantName": "default", "groupName": "other", "networkName": "n1"}),
    );
    let (_, body) = create_ep(&nm, "c4", "other", "");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert!(v["EndpointConfig"]["endpointGroupId"].as_i64().expect("id") > old_id);
}
