//! End-to-end API tests against a real netmaster process: every object type's lifecycle, and every
//! validation and cross-object rule refused with Contiv's message while state stays unchanged.

mod common;

use common::Netmaster;
use serde_json::{json, Value};

const PLURALS: [&str; 12] = [
    "tenants",
    "networks",
    "endpointGroups",
    "policys",
    "rules",
    "appProfiles",
    "serviceLBs",
    "netprofiles",
    "globals",
    "Bgps",
    "aciGws",
    "extContractsGroups",
];

/// Every list plus global inspect: the observable state.
fn snapshot(nm: &Netmaster) -> Vec<String> {
    let mut s: Vec<String> = PLURALS
        .iter()
        .map(|p| nm.get(&format!("/api/v1/{p}/")).1)
        .collect();
    s.push(nm.get("/api/v1/inspect/globals/global/").1);
    s
}

/// The request must fail with Contiv's convention (HTTP 500, text/plain containing `msg`) and
/// change nothing.
fn refused(nm: &Netmaster, method: &str, path: &str, body: Option<Value>, msg: &str) {
    let before = snapshot(nm);
    let (code, text) = match (method, &body) {
        ("POST", Some(b)) => nm.post(path, b),
        ("PUT", Some(b)) => nm.put(path, b),
        ("DELETE", _) => nm.delete(path),
        _ => nm.get(path),
    };
    assert_eq!(code, 500, "{method} {path} should fail: {text}");
    assert!(
        text.contains(msg),
        "{method} {path}: expected {msg:?}, got {text:?}"
    );
    assert_eq!(
        before,
        snapshot(nm),
        "{method} {path} changed state although refused"
    );
}

fn ok(nm: &Netmaster, path: &str, body: Value) -> Value {
    let (code, text) = nm.post(path, &body);
    assert_eq!(code, 200, "POST {path}: {text}");
    serde_json::from_str(&text).expect("json")
}

fn net(tenant: &str, name: &str, subnet: &str) -> Value {
    json!({"tenantName": tenant, "networkName": name, "encap": "vxlan", "subnet": subnet, "gateway": ""})
}

fn setup_tenant(nm: &Netmaster, t: &str) {
    ok(
        nm,
        &format!("/api/v1/tenants/{t}/"),
        json!({"tenantName": t}),
    );
}

#[test]
fn defaults_exist_from_first_start() {
    let nm = Netmaster::start();
    let tenants = nm.get_json("/api/v1/tenants/");
    assert_eq!(tenants[0]["tenantName"], "default");
    let g = nm.get_json("/api/v1/globals/global/");
    assert_eq!(g["fwdMode"], "bridge");
    assert_eq!(g["vlans"], "1-4094");
    assert_eq!(g["vxlans"], "1-10000");
    assert_eq!(g["pvtSubnet"], "172.19.0.0/16");
    assert_eq!(g["arpMode"], "proxy");
    let v = nm.get_json("/version");
    assert!(v["Version"].is_string());
}

#[test]
fn tenant_lifecycle_and_rules() {
    let nm = Netmaster::start();
    let t = ok(&nm, "/api/v1/tenants/t1/", json!({"tenantName": "t1"}));
    assert_eq!(t["key"], "t1");
    assert!(t["link-sets"].is_object());
    assert_eq!(nm.get_json("/api/v1/tenants/t1/")["tenantName"], "t1");
    // identical re-post is a no-op success
    ok(&nm, "/api/v1/tenants/t1/", json!({"tenantName": "t1"}));
    refused(
        &nm,
        "POST",
        "/api/v1/tenants/t1/",
        Some(json!({"tenantName": "t1", "defaultNetwork": "x"})),
        "Cant change tenant parameters after its created",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/tenants/t2/",
        Some(json!({"tenantName": "t1"})),
        "Invalid Key",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/tenants/bad_name/",
        Some(json!({"tenantName": "bad_name"})),
        "tenantName string invalid format",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/tenants/x/",
        Some(json!({"tenantName": "x".repeat(65)})),
        "Invalid Key",
    );
    let long = "a".repeat(65);
    refused(
        &nm,
        "POST",
        &format!("/api/v1/tenants/{long}/"),
        Some(json!({"tenantName": long})),
        "tenantName string too long",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/tenants/t3/",
        None::<Value>.or(Some(json!("not an object"))),
        "invalid request body",
    );
    ok(
        &nm,
        "/api/v1/networks/t1:n1/",
        net("t1", "n1", "10.1.1.0/24"),
    );
    refused(
        &nm,
        "DELETE",
        "/api/v1/tenants/t1/",
        None,
        "cannot delete t1 has 1 networks",
    );
    let insp = nm.get_json("/api/v1/inspect/tenants/t1/");
    assert_eq!(insp["Oper"]["totalNetworks"], 1);
    assert_eq!(
        insp["Config"]["link-sets"]["Networks"]["t1:n1"]["key"],
        "t1:n1"
    );
    assert_eq!(nm.delete("/api/v1/networks/t1:n1/").0, 200);
    let (code, body) = nm.delete("/api/v1/tenants/t1/");
    assert_eq!((code, body.as_str()), (200, "\"t1\""));
    refused(&nm, "GET", "/api/v1/tenants/t1/", None, "tenant not found");
    refused(
        &nm,
        "DELETE",
        "/api/v1/tenants/t1/",
        None,
        "tenant not found",
    );
}

#[test]
fn network_lifecycle_allocation_and_rules() {
    let nm = Netmaster::start();
    setup_tenant(&nm, "t1");
    let n = ok(
        &nm,
        "/api/v1/networks/t1:n1/",
        json!({"tenantName": "t1", "networkName": "n1", "encap": "vlan", "subnet": "10.1.1.0/24", "gateway": "10.1.1.254", "pktTag": 100}),
    );
    assert_eq!(n["nwType"], "data");
    assert_eq!(n["links"]["Tenant"]["key"], "t1");
    let insp = nm.get_json("/api/v1/inspect/networks/t1:n1/");
    assert_eq!(insp["Oper"]["pktTag"], 100);
    assert_eq!(insp["Oper"]["externalPktTag"], 100);
    assert_eq!(insp["Oper"]["availableIPAddresses"], "10.1.1.1-10.1.1.253");
    // VXLAN gets a VNI and a local VLAN
    ok(
        &nm,
        "/api/v1/networks/t1:n2/",
        net("t1", "n2", "10.1.2.0/24"),
    );
    let insp2 = nm.get_json("/api/v1/inspect/networks/t1:n2/");
    assert_eq!(insp2["Oper"]["externalPktTag"], 1);
    assert!(insp2["Oper"]["pktTag"].as_i64().unwrap_or(0) >= 1);
    // rules
    refused(
        &nm,
        "POST",
        "/api/v1/networks/t1:n1/",
        Some(
            json!({"tenantName": "t1", "networkName": "n1", "encap": "vlan", "subnet": "10.1.9.0/24", "pktTag": 100}),
        ),
        "Cant change network parameters after its created",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/networks/t1:n3/",
        Some(net("t1", "n3", "10.1.1.128/25")),
        "network n1 conflicts with subnet 10.1.1.128/25",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/networks/t1:n3/",
        Some(
            json!({"tenantName": "t1", "networkName": "n3", "encap": "vlan", "subnet": "10.1.3.0/24", "pktTag": 100}),
        ),
        "requested vlan not available - vlan:100",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/networks/t1:n3/",
        Some(
            json!({"tenantName": "t1", "networkName": "n3", "encap": "vlan", "subnet": "10.1.3.0/24", "pktTag": 5000}),
        ),
        "requested vlan not available - vlan:5000",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/networks/t1:n3/",
        Some(
            json!({"tenantName": "t1", "networkName": "n3", "encap": "gre", "subnet": "10.1.3.0/24"}),
        ),
        "encap string invalid format",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/networks/t1:n3/",
        Some(net("t1", "n3", "10.1.3.0")),
        "subnet string invalid format",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/networks/t1:n3/",
        Some(net("t1", "n3", "10.1.3.0/32")),
        "subnet string invalid format",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/networks/t1:n3/",
        Some(
            json!({"tenantName": "t1", "networkName": "n3", "encap": "vxlan", "subnet": "10.1.3.0/24", "pktTag": 16777217}),
        ),
        "pktTag Value Out of bound",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/networks/t1:n3/",
        Some(
            json!({"tenantName": "t1", "networkName": "n3", "encap": "vxlan", "subnet": "10.1.3.0/24", "gateway": "10.9.9.1"}),
        ),
        "gateway",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/networks/nosuch:n3/",
        Some(net("nosuch", "n3", "10.1.3.0/24")),
        "Tenant not found",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/networks/t1:n3/",
        Some(
            json!({"tenantName": "t1", "networkName": "n3", "encap": "vxlan", "subnet": "10.1.3.0/24", "nwType": "weird"}),
        ),
        "nwType string invalid format",
    );
    // another tenant may reuse the subnet
    setup_tenant(&nm, "t2");
    ok(
        &nm,
        "/api/v1/networks/t2:n1/",
        net("t2", "n1", "10.1.1.0/24"),
    );
    // range subnet
    ok(
        &nm,
        "/api/v1/networks/t1:r1/",
        net("t1", "r1", "10.5.0.10-10.5.0.20/24"),
    );
    let r = nm.get_json("/api/v1/inspect/networks/t1:r1/");
    assert_eq!(r["Oper"]["availableIPAddresses"], "10.5.0.10-10.5.0.20");
    // list has every network
    assert_eq!(
        nm.get_json("/api/v1/networks/").as_array().map(Vec::len),
        Some(4)
    );
    // delete releases the tags
    assert_eq!(nm.delete("/api/v1/networks/t1:n1/").0, 200);
    ok(
        &nm,
        "/api/v1/networks/t1:n5/",
        json!({"tenantName": "t1", "networkName": "n5", "encap": "vlan", "subnet": "10.1.5.0/24", "pktTag": 100}),
    );
    refused(
        &nm,
        "DELETE",
        "/api/v1/networks/t1:nope/",
        None,
        "network not found",
    );
}

#[test]
fn network_and_group_names_may_not_clash() {
    let nm = Netmaster::start();
    ok(
        &nm,
        "/api/v1/networks/default:n1/",
        net("default", "n1", "10.1.1.0/24"),
    );
    ok(
        &nm,
        "/api/v1/endpointGroups/default:g1/",
        json!({"tenantName": "default", "groupName": "g1", "networkName": "n1"}),
    );
    refused(
        &nm,
        "POST",
        "/api/v1/networks/default:g1/",
        Some(net("default", "g1", "10.1.2.0/24")),
        "EndpointGroup g1 conflicts with the network name",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/endpointGroups/default:n1/",
        Some(json!({"tenantName": "default", "groupName": "n1", "networkName": "n1"})),
        "Network n1 conflicts with the endpointGroup name",
    );
}

#[test]
fn endpoint_group_lifecycle_and_rules() {
    let nm = Netmaster::start();
    ok(
        &nm,
        "/api/v1/networks/default:n1/",
        json!({"tenantName": "default", "networkName": "n1", "encap": "vxlan", "subnet": "10.1.1.0/24", "gateway": "10.1.1.1"}),
    );
    ok(
        &nm,
        "/api/v1/policys/default:p1/",
        json!({"tenantName": "default", "policyName": "p1"}),
    );
    ok(
        &nm,
        "/api/v1/netprofiles/default:np1/",
        json!({"tenantName": "default", "profileName": "np1", "bandwidth": "10mbps", "DSCP": 10}),
    );
    let g = ok(
        &nm,
        "/api/v1/endpointGroups/default:g1/",
        json!({"tenantName": "default", "groupName": "g1", "networkName": "n1", "policies": ["p1"], "netProfile": "np1", "ipPool": "10.1.1.10-10.1.1.20"}),
    );
    assert_eq!(g["links"]["Network"]["key"], "default:n1");
    assert_eq!(g["link-sets"]["Policies"]["default:p1"]["type"], "policy");
    let gi = nm.get_json("/api/v1/inspect/endpointGroups/default:g1/");
    assert_eq!(gi["Oper"]["availableIPAddresses"], "10.1.1.10-10.1.1.20");
    // the policy and profile now show the group
    assert!(
        nm.get_json("/api/v1/policys/default:p1/")["link-sets"]["EndpointGroups"]["default:g1"]
            .is_object()
    );
    assert!(
        nm.get_json("/api/v1/netprofiles/default:np1/")["link-sets"]["EndpointGroups"]
            ["default:g1"]
            .is_object()
    );
    // the network's available range no longer includes the group pool
    let ni = nm.get_json("/api/v1/inspect/networks/default:n1/");
    assert_eq!(
        ni["Oper"]["availableIPAddresses"],
        "10.1.1.2-10.1.1.9, 10.1.1.21-10.1.1.254"
    );
    // detach the policy by update: allowed
    ok(
        &nm,
        "/api/v1/endpointGroups/default:g1/",
        json!({"tenantName": "default", "groupName": "g1", "networkName": "n1", "netProfile": "np1", "ipPool": "10.1.1.10-10.1.1.20"}),
    );
    assert!(nm.get_json("/api/v1/policys/default:p1/")["link-sets"]
        .get("EndpointGroups")
        .is_none());
    refused(
        &nm,
        "POST",
        "/api/v1/endpointGroups/default:g1/",
        Some(
            json!({"tenantName": "default", "groupName": "g1", "networkName": "n2", "ipPool": "10.1.1.10-10.1.1.20"}),
        ),
        "Cannot change network association after epg is created.",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/endpointGroups/default:g1/",
        Some(
            json!({"tenantName": "default", "groupName": "g1", "networkName": "n1", "ipPool": "10.1.1.10-10.1.1.30"}),
        ),
        "Cannot change IP pool after epg is created.",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/endpointGroups/default:g2/",
        Some(json!({"tenantName": "default", "groupName": "g2", "networkName": "nx"})),
        "Network nx not found",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/endpointGroups/default:g2/",
        Some(
            json!({"tenantName": "default", "groupName": "g2", "networkName": "n1", "policies": ["nope"]}),
        ),
        "Policy not found",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/endpointGroups/default:g2/",
        Some(
            json!({"tenantName": "default", "groupName": "g2", "networkName": "n1", "netProfile": "nope"}),
        ),
        "netprofile not found",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/endpointGroups/default:g2/",
        Some(
            json!({"tenantName": "default", "groupName": "g2", "networkName": "n1", "ipPool": "10.2.2.1-10.2.2.5"}),
        ),
        "must be a subset of network",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/endpointGroups/default:g2/",
        Some(
            json!({"tenantName": "default", "groupName": "g2", "networkName": "n1", "ipPool": "10.1.1.15-10.1.1.25"}),
        ),
        "",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/endpointGroups/nosuch:g2/",
        Some(json!({"tenantName": "nosuch", "groupName": "g2", "networkName": "n1"})),
        "Tenant not found",
    );
    refused(
        &nm,
        "DELETE",
        "/api/v1/networks/default:n1/",
        None,
        "cannot delete n1 has 1 endpoint groups",
    );
    refused(
        &nm,
        "DELETE",
        "/api/v1/netprofiles/default:np1/",
        None,
        "NetProfile is being used",
    );
    // group ids are never reused
    let id1 = nm.get_json("/api/v1/inspect/endpointGroups/default:g1/");
    assert!(id1["Oper"].is_object());
    assert_eq!(nm.delete("/api/v1/endpointGroups/default:g1/").0, 200);
    assert_eq!(nm.delete("/api/v1/netprofiles/default:np1/").0, 200);
    assert_eq!(nm.delete("/api/v1/policys/default:p1/").0, 200);
    assert_eq!(nm.delete("/api/v1/networks/default:n1/").0, 200);
}

#[test]
fn policy_and_rule_lifecycle() {
    let nm = Netmaster::start();
    ok(
        &nm,
        "/api/v1/networks/default:n1/",
        net("default", "n1", "10.1.1.0/24"),
    );
    ok(
        &nm,
        "/api/v1/endpointGroups/default:web/",
        json!({"tenantName": "default", "groupName": "web", "networkName": "n1"}),
    );
    ok(
        &nm,
        "/api/v1/policys/default:p1/",
        json!({"tenantName": "default", "policyName": "p1"}),
    );
    let r = ok(
        &nm,
        "/api/v1/rules/default:p1:1/",
        json!({"tenantName": "default", "policyName": "p1", "ruleId": "1", "direction": "in", "fromEndpointGroup": "web", "protocol": "tcp", "port": 80, "action": "allow"}),
    );
    assert_eq!(r["priority"], 1);
    assert_eq!(
        r["link-sets"]["Policies"]["default:p1"]["key"],
        "default:p1"
    );
    let p = nm.get_json("/api/v1/policys/default:p1/");
    assert!(p["link-sets"]["Rules"]["default:p1:1"].is_object());
    let rule = |id: &str, extra: Value| {
        let mut b =
            json!({"tenantName": "default", "policyName": "p1", "ruleId": id, "action": "allow"});
        if let (Some(m), Some(e)) = (b.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        b
    };
    let path = "/api/v1/rules/default:p1:2/";
    refused(
        &nm,
        "POST",
        path,
        Some(rule(
            "2",
            json!({"direction": "in", "toEndpointGroup": "web"}),
        )),
        "can not specify 'to' parameters in incoming rule",
    );
    refused(
        &nm,
        "POST",
        path,
        Some(rule(
            "2",
            json!({"direction": "in", "fromNetwork": "n1", "fromIpAddress": "10.1.1.1"}),
        )),
        "can not specify both from network and from ip address",
    );
    refused(
        &nm,
        "POST",
        path,
        Some(rule(
            "2",
            json!({"direction": "in", "fromNetwork": "n1", "fromEndpointGroup": "web"}),
        )),
        "can not specify both from network and from EndpointGroup",
    );
    refused(
        &nm,
        "POST",
        path,
        Some(rule(
            "2",
            json!({"direction": "out", "fromEndpointGroup": "web"}),
        )),
        "can not specify 'from' parameters in outgoing rule",
    );
    refused(
        &nm,
        "POST",
        path,
        Some(rule(
            "2",
            json!({"direction": "out", "toNetwork": "n1", "toIpAddress": "10.1.1.1"}),
        )),
        "can not specify both to-network and to-ip address",
    );
    refused(
        &nm,
        "POST",
        path,
        Some(rule(
            "2",
            json!({"direction": "out", "toNetwork": "n1", "toEndpointGroup": "web"}),
        )),
        "can not specify both to-network and to-EndpointGroup",
    );
    refused(
        &nm,
        "POST",
        path,
        Some(rule("2", json!({"direction": "sideways"}))),
        "direction string invalid format",
    );
    refused(
        &nm,
        "POST",
        path,
        Some(rule("2", json!({"direction": "in", "priority": 101}))),
        "priority Value Out of bound",
    );
    refused(
        &nm,
        "POST",
        path,
        Some(rule("2", json!({"direction": "in", "protocol": "sctp"}))),
        "protocol string invalid format",
    );
    refused(
        &nm,
        "POST",
        path,
        Some(rule("2", json!({"direction": "in", "port": 70000}))),
        "port Value Out of bound",
    );
    refused(
        &nm,
        "POST",
        path,
        Some(rule("2", json!({"direction": "in", "action": "maybe"}))),
        "action string invalid format",
    );
    refused(
        &nm,
        "POST",
        path,
        Some(rule(
            "2",
            json!({"direction": "in", "fromEndpointGroup": "nope"}),
        )),
        "endpoint group not found",
    );
    refused(
        &nm,
        "POST",
        path,
        Some(rule("2", json!({"direction": "in", "fromNetwork": "nope"}))),
        "from Network not found",
    );
    refused(
        &nm,
        "POST",
        path,
        Some(rule("2", json!({"direction": "out", "toNetwork": "nope"}))),
        "to Network not found",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/rules/default:nope:2/",
        Some(
            json!({"tenantName": "default", "policyName": "nope", "ruleId": "2", "direction": "in", "action": "allow"}),
        ),
        "Policy not found",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/rules/default:p1:1/",
        Some(rule(
            "1",
            json!({"direction": "in", "fromEndpointGroup": "web", "protocol": "tcp", "port": 81}),
        )),
        "can not update a rule after its created",
    );
    // attach, then the policy cannot go
    ok(
        &nm,
        "/api/v1/endpointGroups/default:db/",
        json!({"tenantName": "default", "groupName": "db", "networkName": "n1", "policies": ["p1"]}),
    );
    refused(
        &nm,
        "DELETE",
        "/api/v1/policys/default:p1/",
        None,
        "Policy is being used",
    );
    assert!(
        nm.get_json("/api/v1/endpointGroups/default:web/")["link-sets"]["MatchRules"]
            ["default:p1:1"]
            .is_object()
    );
    ok(
        &nm,
        "/api/v1/endpointGroups/default:db/",
        json!({"tenantName": "default", "groupName": "db", "networkName": "n1"}),
    );
    // deleting the policy deletes its rules
    assert_eq!(nm.delete("/api/v1/policys/default:p1/").0, 200);
    assert_eq!(
        nm.get_json("/api/v1/rules/").as_array().map(Vec::len),
        Some(0)
    );
}

#[test]
fn app_profile_service_netprofile_bgp_aci_contracts() {
    let nm = Netmaster::start();
    ok(
        &nm,
        "/api/v1/networks/default:n1/",
        json!({"tenantName": "default", "networkName": "n1", "encap": "vxlan", "subnet": "10.1.1.0/24", "gateway": "10.1.1.1"}),
    );
    ok(
        &nm,
        "/api/v1/endpointGroups/default:g1/",
        json!({"tenantName": "default", "groupName": "g1", "networkName": "n1"}),
    );
    // app profile
    let ap = ok(
        &nm,
        "/api/v1/appProfiles/default:ap1/",
        json!({"tenantName": "default", "appProfileName": "ap1", "endpointGroups": ["g1"]}),
    );
    assert_eq!(
        ap["link-sets"]["EndpointGroups"]["default:g1"]["key"],
        "default:g1"
    );
    refused(
        &nm,
        "POST",
        "/api/v1/appProfiles/default:ap2/",
        Some(json!({"tenantName": "default", "appProfileName": "ap2", "endpointGroups": ["nope"]})),
        "EndpointGroup default:nope not found",
    );
    refused(
        &nm,
        "DELETE",
        "/api/v1/endpointGroups/default:g1/",
        None,
        "Cannot delete g1, associated to appProfile default:ap1",
    );
    ok(
        &nm,
        "/api/v1/appProfiles/default:ap1/",
        json!({"tenantName": "default", "appProfileName": "ap1", "endpointGroups": []}),
    );
    assert_eq!(nm.delete("/api/v1/appProfiles/default:ap1/").0, 200);
    // service LB: VIP allocated from the network
    let svc = ok(
        &nm,
        "/api/v1/serviceLBs/default:s1/",
        json!({"tenantName": "default", "serviceName": "s1", "networkName": "n1", "selectors": ["app=web"], "ports": ["80:8080:TCP"]}),
    );
    assert_eq!(svc["links"]["Network"]["key"], "default:n1");
    let si = nm.get_json("/api/v1/inspect/serviceLBs/default:s1/");
    assert_eq!(si["Oper"]["serviceVip"], "10.1.1.2");
    refused(
        &nm,
        "POST",
        "/api/v1/serviceLBs/default:s2/",
        Some(
            json!({"tenantName": "default", "serviceName": "s2", "networkName": "n1", "selectors": ["app"], "ports": ["80:8080:TCP"]}),
        ),
        "Invalid selector app. selector format is key1=value1",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/serviceLBs/default:s2/",
        Some(
            json!({"tenantName": "default", "serviceName": "s2", "networkName": "n1", "selectors": ["app=x"], "ports": ["80:TCP"]}),
        ),
        "Invalid Port maping",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/serviceLBs/default:s2/",
        Some(
            json!({"tenantName": "default", "serviceName": "s2", "networkName": "n1", "ports": ["80:81:TCP"]}),
        ),
        "Invalid selector options",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/serviceLBs/default:s2/",
        Some(
            json!({"tenantName": "default", "serviceName": "s2", "networkName": "nx", "selectors": ["a=b"], "ports": ["80:81:TCP"]}),
        ),
        "Network nx not found",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/serviceLBs/default:s2/",
        Some(
            json!({"tenantName": "default", "serviceName": "s2", "networkName": "n1", "ipAddress": "10.1.1.2", "selectors": ["a=b"], "ports": ["80:81:TCP"]}),
        ),
        "ip address 10.1.1.2 is not available",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/serviceLBs/default:s3/",
        Some(
            json!({"tenantName": "default", "serviceName": "s3", "networkName": "n1", "ipAddress": "10.9.9.9", "selectors": ["a=b"], "ports": ["80:81:TCP"]}),
        ),
        "ip address 10.9.9.9 is outside subnet 10.1.1.0/24",
    );
    refused(
        &nm,
        "DELETE",
        "/api/v1/networks/default:n1/",
        None,
        "cannot delete n1 has 1 endpoint groups",
    );
    assert_eq!(nm.delete("/api/v1/serviceLBs/default:s1/").0, 200);
    let ni = nm.get_json("/api/v1/inspect/networks/default:n1/");
    assert_eq!(
        ni["Oper"]["availableIPAddresses"], "10.1.1.2-10.1.1.254",
        "VIP released"
    );
    // netprofile validation
    refused(
        &nm,
        "POST",
        "/api/v1/netprofiles/default:np/",
        Some(json!({"tenantName": "default", "profileName": "np", "DSCP": 64})),
        "DSCP Value Out of bound",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/netprofiles/default:np/",
        Some(json!({"tenantName": "default", "profileName": "np", "bandwidth": "fast"})),
        "bandwidth string invalid format",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/netprofiles/default:np/",
        Some(json!({"tenantName": "default", "profileName": "np", "burst": 20000})),
        "burst Value Out of bound",
    );
    ok(
        &nm,
        "/api/v1/netprofiles/default:np/",
        json!({"tenantName": "default", "profileName": "np", "bandwidth": "100 Mbps", "burst": 100}),
    );
    ok(
        &nm,
        "/api/v1/netprofiles/default:np/",
        json!({"tenantName": "default", "profileName": "np", "bandwidth": "200mbps", "burst": 100}),
    );
    assert_eq!(
        nm.get_json("/api/v1/netprofiles/default:np/")["bandwidth"],
        "200mbps"
    );
    // bgp
    ok(
        &nm,
        "/api/v1/Bgps/host1/",
        json!({"hostname": "host1", "routerip": "50.1.1.1/24", "as": "65002", "neighbor-as": "500", "neighbor": "50.1.1.2"}),
    );
    assert_eq!(nm.get_json("/api/v1/Bgps/")[0]["neighbor-as"], "500");
    refused(
        &nm,
        "POST",
        "/api/v1/Bgps/host2/",
        Some(json!({"hostname": "host2", "routerip": "50.1.1.1", "as": "1"})),
        "routerip string invalid format",
    );
    assert!(nm.get_json("/api/v1/inspect/Bgps/host1/")["Oper"].is_object());
    assert_eq!(nm.delete("/api/v1/Bgps/host1/").0, 200);
    // aci gw
    ok(
        &nm,
        "/api/v1/aciGws/aciGw/",
        json!({"name": "aciGw", "enforcePolicies": "yes", "includeCommonTenant": "no", "physicalDomain": "phys-dom1", "nodeBindings": "topology/pod-1/node-101"}),
    );
    refused(
        &nm,
        "POST",
        "/api/v1/aciGws/other/",
        Some(
            json!({"name": "other", "enforcePolicies": "yes", "includeCommonTenant": "no", "physicalDomain": "p"}),
        ),
        "name string invalid format",
    );
    assert_eq!(
        nm.get_json("/api/v1/inspect/aciGws/aciGw/")["Oper"]["numAppProfiles"]
            .as_i64()
            .unwrap_or(0),
        0
    );
    assert_eq!(nm.delete("/api/v1/aciGws/aciGw/").0, 200);
    // external contracts
    ok(
        &nm,
        "/api/v1/extContractsGroups/default:c1/",
        json!({"tenantName": "default", "contractsGroupName": "c1", "contractsType": "provided", "contracts": ["uni/tn-x/brc-y"]}),
    );
    ok(
        &nm,
        "/api/v1/endpointGroups/default:g1/",
        json!({"tenantName": "default", "groupName": "g1", "networkName": "n1", "extContractsGrps": ["c1"]}),
    );
    refused(
        &nm,
        "DELETE",
        "/api/v1/extContractsGroups/default:c1/",
        None,
        "is being used",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/extContractsGroups/default:c2/",
        Some(
            json!({"tenantName": "default", "contractsGroupName": "c2", "contractsType": "weird"}),
        ),
        "must be provided or consumed",
    );
}

#[test]
fn global_changes_refused_while_networks_exist() {
    let nm = Netmaster::start();
    ok(
        &nm,
        "/api/v1/globals/global/",
        json!({"name": "global", "fwdMode": "routing", "vlans": "1-100", "vxlans": "1-20000"}),
    );
    let g = nm.get_json("/api/v1/globals/global/");
    assert_eq!(
        (g["fwdMode"].as_str(), g["arpMode"].as_str()),
        (Some("routing"), Some("proxy"))
    );
    ok(
        &nm,
        "/api/v1/networks/default:n1/",
        json!({"tenantName": "default", "networkName": "n1", "encap": "vlan", "subnet": "10.1.1.0/24", "pktTag": 50}),
    );
    refused(
        &nm,
        "POST",
        "/api/v1/globals/global/",
        Some(json!({"name": "global", "fwdMode": "bridge"})),
        "Unable to update forwarding mode due to existing 1 vlans",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/globals/global/",
        Some(json!({"name": "global", "pvtSubnet": "172.20.0.0/16"})),
        "Unable to update private subnet due to existing 1 vlans",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/globals/global/",
        Some(json!({"name": "global", "vlans": "60-100"})),
        "vlan 50 is in use",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/globals/global/",
        Some(json!({"name": "global", "fwdMode": "sideways"})),
        "fwdMode string invalid format",
    );
    refused(
        &nm,
        "POST",
        "/api/v1/globals/other/",
        Some(json!({"name": "other"})),
        "name string invalid format",
    );
    refused(
        &nm,
        "DELETE",
        "/api/v1/globals/global/",
        None,
        "cannot be deleted",
    );
    let gi = nm.get_json("/api/v1/inspect/globals/global/");
    assert_eq!(gi["Oper"]["numNetworks"], 1);
    assert_eq!(gi["Oper"]["vlansInUse"], "50");
    // narrowing that still holds every tag in use is fine; arpMode may change any time
    ok(
        &nm,
        "/api/v1/globals/global/",
        json!({"name": "global", "vlans": "10-100", "arpMode": "flood"}),
    );
}

#[test]
fn problem_json_gives_real_status_codes() {
    let nm = Netmaster::start();
    let (code, body) = nm.problem("GET", "/api/v1/networks/default:nope/", None);
    assert_eq!(code, 404, "{body}");
    let p: Value = serde_json::from_str(&body).expect("problem json");
    assert_eq!(p["status"], 404);
    assert_eq!(p["detail"], "network not found");
    let (code, _) = nm.problem("POST", "/api/v1/networks/default:n1/", Some(&json!({"tenantName": "default", "networkName": "n1", "encap": "x", "subnet": "10.1.1.0/24"})));
    assert_eq!(code, 400);
    nm.post(
        "/api/v1/networks/default:n1/",
        &net("default", "n1", "10.1.1.0/24"),
    );
    let (code, _) = nm.problem(
        "POST",
        "/api/v1/networks/default:n2/",
        Some(&net("default", "n2", "10.1.1.0/24")),
    );
    assert_eq!(code, 409);
    let (code, _) = nm.problem("POST", "/api/v1/tenants/t9/", Some(&json!("x")));
    assert_eq!(code, 400);
}

#[test]
fn openapi_lists_every_route() {
    let nm = Netmaster::start();
    let doc = nm.get_json("/api/v1/openapi.json");
    for p in PLURALS {
        assert!(doc["paths"][format!("/api/v1/{p}/")].is_object(), "{p}");
        assert!(
            doc["paths"][format!("/api/v1/inspect/{p}/{{key}}/")].is_object(),
            "{p}"
        );
    }
    assert!(doc["paths"]["/plugin/allocAddress"]["post"].is_object());
}

/// Every object type: create, get, list, update where Contiv allows it, inspect, delete — and the
/// inspect shape Contiv gives that type.
#[test]
fn every_object_type_has_the_full_lifecycle() {
    let nm = Netmaster::start();
    ok(
        &nm,
        "/api/v1/networks/default:n1/",
        net("default", "n1", "10.1.1.0/24"),
    );
    ok(
        &nm,
        "/api/v1/endpointGroups/default:g0/",
        json!({"tenantName": "default", "groupName": "g0", "networkName": "n1"}),
    );
    ok(
        &nm,
        "/api/v1/policys/default:p0/",
        json!({"tenantName": "default", "policyName": "p0"}),
    );
    // (plural, key, create body, update body or None if immutable, has Config, has Oper; rule
    // inspect's Oper is netmaster's addition: the packet counters agents report)
    type Case = (&'static str, &'static str, Value, Option<Value>, bool, bool);
    let cases: Vec<Case> = vec![
        (
            "tenants",
            "t1",
            json!({"tenantName": "t1"}),
            None,
            true,
            true,
        ),
        (
            "networks",
            "default:n2",
            net("default", "n2", "10.1.2.0/24"),
            None,
            true,
            true,
        ),
        (
            "endpointGroups",
            "default:g1",
            json!({"tenantName": "default", "groupName": "g1", "networkName": "n1"}),
            Some(
                json!({"tenantName": "default", "groupName": "g1", "networkName": "n1", "policies": ["p0"]}),
            ),
            true,
            true,
        ),
        (
            "policys",
            "default:p1",
            json!({"tenantName": "default", "policyName": "p1"}),
            None,
            true,
            true,
        ),
        (
            "rules",
            "default:p0:r1",
            json!({"tenantName": "default", "policyName": "p0", "ruleId": "r1", "direction": "out", "toEndpointGroup": "g0", "action": "deny"}),
            None,
            true,
            true,
        ),
        (
            "appProfiles",
            "default:ap",
            json!({"tenantName": "default", "appProfileName": "ap", "endpointGroups": ["g0"]}),
            Some(json!({"tenantName": "default", "appProfileName": "ap", "endpointGroups": []})),
            true,
            false,
        ),
        (
            "serviceLBs",
            "default:s",
            json!({"tenantName": "default", "serviceName": "s", "networkName": "n1", "selectors": ["a=b"], "ports": ["80:80:TCP"]}),
            Some(
                json!({"tenantName": "default", "serviceName": "s", "networkName": "n1", "selectors": ["a=c"], "ports": ["80:80:TCP"]}),
            ),
            true,
            true,
        ),
        (
            "netprofiles",
            "default:np",
            json!({"tenantName": "default", "profileName": "np", "bandwidth": "1gbps"}),
            Some(
                json!({"tenantName": "default", "profileName": "np", "bandwidth": "2gbps", "DSCP": 3}),
            ),
            true,
            false,
        ),
        (
            "Bgps",
            "h1",
            json!({"hostname": "h1", "routerip": "50.1.1.1/24", "as": "65001", "neighbor-as": "65002", "neighbor": "50.1.1.2"}),
            Some(
                json!({"hostname": "h1", "routerip": "50.1.1.3/24", "as": "65001", "neighbor-as": "65002", "neighbor": "50.1.1.2"}),
            ),
            true,
            true,
        ),
        (
            "aciGws",
            "aciGw",
            json!({"name": "aciGw", "enforcePolicies": "no", "includeCommonTenant": "no", "physicalDomain": "d"}),
            Some(
                json!({"name": "aciGw", "enforcePolicies": "yes", "includeCommonTenant": "no", "physicalDomain": "d"}),
            ),
            true,
            true,
        ),
        (
            "extContractsGroups",
            "default:c",
            json!({"tenantName": "default", "contractsGroupName": "c", "contractsType": "consumed", "contracts": ["x"]}),
            Some(
                json!({"tenantName": "default", "contractsGroupName": "c", "contractsType": "consumed", "contracts": ["x", "y"]}),
            ),
            true,
            false,
        ),
    ];
    for (plural, key, create, update, has_config, has_oper) in cases {
        let path = format!("/api/v1/{plural}/{key}/");
        let created = ok(&nm, &path, create.clone());
        assert_eq!(created["key"], key, "{plural}");
        assert_eq!(nm.get_json(&path)["key"], key, "{plural} get");
        let list = nm.get_json(&format!("/api/v1/{plural}/"));
        assert!(
            list.as_array()
                .is_some_and(|l| l.iter().any(|o| o["key"] == key)),
            "{plural} list"
        );
        if let Some(u) = update {
            let updated = ok(&nm, &path, u.clone());
            for (field, value) in u.as_object().into_iter().flatten() {
                // Go's omitempty drops empty lists on output
                let expected = if value.as_array().is_some_and(Vec::is_empty) {
                    &Value::Null
                } else {
                    value
                };
                assert_eq!(&updated[field], expected, "{plural} update of {field}");
            }
        }
        let insp = nm.get_json(&format!("/api/v1/inspect/{plural}/{key}/"));
        assert_eq!(
            insp.get("Config").is_some(),
            has_config,
            "{plural} inspect Config"
        );
        assert_eq!(
            insp.get("Oper").is_some(),
            has_oper,
            "{plural} inspect Oper"
        );
        let (code, body) = nm.delete(&path);
        assert_eq!((code, body), (200, format!("\"{key}\"")), "{plural} delete");
        assert_eq!(nm.get(&path).0, 500, "{plural} gone");
    }
    // the global object: get, list, update, inspect (it cannot be deleted)
    assert_eq!(
        nm.get_json("/api/v1/globals/").as_array().map(Vec::len),
        Some(1)
    );
    ok(
        &nm,
        "/api/v1/globals/global/",
        json!({"name": "global", "arpMode": "flood"}),
    );
    assert_eq!(
        nm.get_json("/api/v1/inspect/globals/global/")["Config"]["arpMode"],
        "flood"
    );
    // policy inspect lists the endpoints of attached groups
    assert_eq!(
        nm.get_json("/api/v1/inspect/policys/default:p0/")["Oper"]["numEndpoints"]
            .as_i64()
            .unwrap_or(0),
        0
    );
}
