//! Policy against a real netmaster process: rules that cannot be enforced are refused with a
//! clear message (changing nothing), agents' policy reports feed policy and rule inspect and
//! `policyStatus`, and `policyExplain` names the rule that decides a connection.

mod common;

use common::Netmaster;
use serde_json::{json, Value};

fn ok(nm: &Netmaster, path: &str, body: Value) -> Value {
    let (code, text) = nm.post(path, &body);
    assert_eq!(code, 200, "POST {path}: {text}");
    serde_json::from_str(&text).expect("json")
}

/// Tenant `default`: network n1, groups web and db (db uses policy p1), and an `in` rule on db
/// for web's tcp/80 (allow, priority 10) above a deny-everything rule (priority 1).
fn setup(nm: &Netmaster) {
    ok(
        nm,
        "/api/v1/networks/default:n1/",
        json!({"tenantName": "default", "networkName": "n1", "encap": "vxlan", "subnet": "10.1.1.0/24", "gateway": "10.1.1.1"}),
    );
    ok(
        nm,
        "/api/v1/policys/default:p1/",
        json!({"tenantName": "default", "policyName": "p1"}),
    );
    ok(
        nm,
        "/api/v1/endpointGroups/default:web/",
        json!({"tenantName": "default", "groupName": "web", "networkName": "n1"}),
    );
    ok(
        nm,
        "/api/v1/endpointGroups/default:db/",
        json!({"tenantName": "default", "groupName": "db", "networkName": "n1", "policies": ["p1"]}),
    );
    ok(
        nm,
        "/api/v1/rules/default:p1:1/",
        json!({"tenantName": "default", "policyName": "p1", "ruleId": "1", "direction": "in", "priority": 10, "fromEndpointGroup": "web", "protocol": "tcp", "port": 80, "action": "allow"}),
    );
    ok(
        nm,
        "/api/v1/rules/default:p1:2/",
        json!({"tenantName": "default", "policyName": "p1", "ruleId": "2", "direction": "in", "action": "deny"}),
    );
}

fn create_ep(nm: &Netmaster, container: &str, group: &str, host: &str) -> String {
    let ep = ok(
        nm,
        "/plugin/createEndpoint",
        json!({
            "TenantName": "default", "NetworkName": "n1", "ServiceName": group, "EndpointID": container,
            "EPCommonName": format!("name-{container}"),
            "ConfigEP": {"Container": container, "ContainerID": format!("cid-{container}"), "Host": host, "ServiceName": group}
        }),
    );
    ep["EndpointConfig"]["ipAddress"]
        .as_str()
        .expect("address")
        .to_owned()
}

fn rule(id: &str, extra: Value) -> Value {
    let mut b =
        json!({"tenantName": "default", "policyName": "p1", "ruleId": id, "action": "allow"});
    if let (Some(m), Some(e)) = (b.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    b
}

fn rules_state(nm: &Netmaster) -> (String, String) {
    (nm.get("/api/v1/rules/").1, nm.get("/api/v1/policys/").1)
}

#[test]
fn rules_that_cannot_be_enforced_are_refused_and_change_nothing() {
    let nm = Netmaster::start();
    setup(&nm);
    let cases: [(Value, u16, &str); 13] = [
        (
            json!({"direction": "in", "fromEndpointGroup": "nope"}),
            404,
            "endpoint group not found",
        ),
        (
            json!({"direction": "in", "toEndpointGroup": "web"}),
            400,
            "can not specify 'to' parameters in incoming rule",
        ),
        (
            json!({"direction": "in", "toIpAddress": "10.1.1.5"}),
            400,
            "can not specify 'to' parameters in an incoming rule",
        ),
        (
            json!({"direction": "in", "fromIpAddress": "10.1.1.9-3"}),
            400,
            "invalid ip address \"10.1.1.9-3\": range end below its start",
        ),
        (
            json!({"direction": "in", "fromIpAddress": "10.1.1.0/33"}),
            400,
            "fromIpAddress",
        ),
        (
            json!({"direction": "in", "priority": 0}),
            400,
            "priority 0 is outside 1-100",
        ),
        (
            json!({"direction": "in", "Priority": 0}),
            400,
            "priority 0 is outside 1-100",
        ),
        (
            json!({"direction": "in", "priority": 101}),
            400,
            "priority Value Out of bound",
        ),
        (
            json!({"direction": "in", "protocol": "sctp"}),
            400,
            "protocol string invalid format",
        ),
        (
            json!({"direction": "in", "protocol": "300"}),
            400,
            "protocol number 300 is outside 0-255",
        ),
        (
            json!({"direction": "in", "port": 80}),
            400,
            "port 80 needs protocol tcp or udp (protocol is any)",
        ),
        (
            json!({"direction": "in", "protocol": "icmp", "port": 80}),
            400,
            "port 80 needs protocol tcp or udp (protocol is icmp)",
        ),
        (
            json!({"direction": "out", "toIpAddress": "10.1.1.0/24", "toNetwork": "n1"}),
            400,
            "can not specify both to-network and to-ip address",
        ),
    ];
    let path = "/api/v1/rules/default:p1:3/";
    for (extra, status, msg) in cases {
        let body = rule("3", extra.clone());
        let before = rules_state(&nm);
        let (code, text) = nm.post(path, &body);
        assert_eq!(code, 500, "{extra}: {text}");
        assert!(
            text.contains(msg),
            "{extra}: expected {msg:?}, got {text:?}"
        );
        let (code, text) = nm.problem("POST", path, Some(&body));
        assert_eq!(code, status, "{extra}: {text}");
        let problem: Value = serde_json::from_str(&text).expect("problem+json");
        assert!(
            problem["detail"].as_str().unwrap_or("").contains(msg),
            "{extra}: {text}"
        );
        assert_eq!(
            rules_state(&nm),
            before,
            "{extra} changed state although refused"
        );
    }
    // An absent priority is Contiv's default, 1; a null one too.
    let r = ok(
        &nm,
        path,
        rule(
            "3",
            json!({"direction": "in", "priority": null, "protocol": "udp", "port": 53}),
        ),
    );
    assert_eq!(r["priority"], 1);
    let r = ok(
        &nm,
        "/api/v1/rules/default:p1:4/",
        rule(
            "4",
            json!({"direction": "out", "toIpAddress": "10.1.1.5-9", "protocol": "47"}),
        ),
    );
    assert_eq!(r["priority"], 1);
}

fn explain(nm: &Netmaster, query: &str) -> Value {
    nm.get_json(&format!("/api/v1/policyExplain/?{query}"))
}

#[test]
fn reports_feed_status_inspect_and_explain() {
    let nm = Netmaster::start();
    setup(&nm);
    let web_ip = create_ep(&nm, "c1", "web", "host1");
    let db_ip = create_ep(&nm, "c2", "db", "host2");
    for h in ["host1", "host2"] {
        ok(
            &nm,
            "/plugin/registerNode",
            json!({"hostname": h, "vtepIP": "", "datapath": "linux"}),
        );
    }
    let status = nm.get_json("/api/v1/policyStatus/");
    let rev = status["revision"].as_u64().expect("revision");
    assert!(rev > 0, "{status}");
    assert_eq!(
        status["hosts"].as_array().map(Vec::len),
        Some(2),
        "{status}"
    );
    assert_eq!(
        status["hosts"][0],
        json!({"hostname": "host1", "enforcedRevision": 0, "current": false, "rules": 0, "elements": 0})
    );

    let report = |host: &str, revision: u64, counters: Value| json!({"hostname": host, "revision": revision, "rules": 2, "elements": 3, "counters": counters});
    let answer = ok(
        &nm,
        "/plugin/policyReport",
        report(
            "host1",
            rev,
            json!({
        "default:p1:1": {"packets": 3, "bytes": 180}, "default:p1:2": {"packets": 7, "bytes": 700}}),
        ),
    );
    assert_eq!(answer["current"], true, "{answer}");
    ok(
        &nm,
        "/plugin/policyReport",
        report(
            "host2",
            rev - 1,
            json!({"default:p1:2": {"packets": 5, "bytes": 500}}),
        ),
    );
    // not a registered node: kept out of everything
    ok(
        &nm,
        "/plugin/policyReport",
        report(
            "host9",
            rev,
            json!({"default:p1:2": {"packets": 1000, "bytes": 1}}),
        ),
    );
    assert_eq!(
        nm.post("/plugin/policyReport", &json!({"hostname": ""})).0,
        500
    );
    assert_eq!(
        nm.problem(
            "POST",
            "/plugin/policyReport",
            Some(&json!({"revision": "x"}))
        )
        .0,
        400
    );

    let p = nm.get_json("/api/v1/inspect/policys/default:p1/");
    assert_eq!(p["Oper"]["policyViolations"], 12, "{p}");
    assert_eq!(p["Oper"]["numEndpoints"], 1, "{p}");
    let r = nm.get_json("/api/v1/inspect/rules/default:p1:2/");
    assert_eq!(r["Config"]["ruleId"], "2");
    assert_eq!(
        r["Oper"],
        json!({"packets": 12, "bytes": 1200, "hosts": {
        "host1": {"packets": 7, "bytes": 700}, "host2": {"packets": 5, "bytes": 500}}})
    );
    let r = nm.get_json("/api/v1/inspect/rules/default:p1:1/");
    assert_eq!(r["Oper"]["packets"], 3);

    let status = nm.get_json("/api/v1/policyStatus/");
    assert_eq!(status["revision"].as_u64(), Some(rev));
    assert_eq!(
        status["hosts"],
        json!([
            {"hostname": "host1", "enforcedRevision": rev, "current": true, "rules": 2, "elements": 3},
            {"hostname": "host2", "enforcedRevision": rev - 1, "current": false, "rules": 2, "elements": 3},
        ])
    );

    // web -> db tcp/80: db's in-rule 1 allows
    let e = explain(&nm, "from=name-c1&to=name-c2&protocol=tcp&port=80");
    assert_eq!(e["verdict"], "allow", "{e}");
    assert_eq!(e["rule"], "default:p1:1");
    assert!(e.get("reason").is_none(), "{e}");
    assert_eq!(e["tenant"], "default");
    assert_eq!(
        e["from"],
        json!({"ip": web_ip, "endpoint": "n1.default-c1", "group": "web", "host": "host1"})
    );
    assert_eq!(
        e["to"],
        json!({"ip": db_ip, "endpoint": "n1.default-c2", "group": "db", "host": "host2"})
    );
    assert_eq!(
        e["ingress"],
        json!({"group": "db", "rule": "default:p1:1", "action": "allow"})
    );
    assert_eq!(
        e["egress"],
        json!({"group": null, "rule": null, "action": "allow"})
    );
    assert_eq!(e["revision"].as_u64(), Some(rev));
    assert_eq!(e["hosts"][0]["hostname"], "host1");
    assert_eq!(e["hosts"][0]["current"], true);
    assert_eq!(e["hosts"][1]["hostname"], "host2");
    assert_eq!(e["hosts"][1]["current"], false);
    // by container id and endpoint id; another port: the deny rule
    let e = explain(
        &nm,
        "tenant=default&from=cid-c1&to=n1.default-c2&protocol=tcp&port=22",
    );
    assert_eq!(
        (e["verdict"].as_str(), e["rule"].as_str()),
        (Some("deny"), Some("default:p1:2")),
        "{e}"
    );
    // db -> web: web has no rules, db no out-rules
    let e = explain(&nm, "from=name-c2&to=name-c1&protocol=udp&port=53");
    assert_eq!(e["verdict"], "allow", "{e}");
    assert_eq!(e["rule"], Value::Null);
    assert_eq!(e["reason"], "no rule matched");
    // an address of no endpoint: not web, so denied
    let e = explain(&nm, &format!("from=10.1.1.250&to={db_ip}&port=80"));
    assert_eq!(
        (e["verdict"].as_str(), e["rule"].as_str()),
        (Some("deny"), Some("default:p1:2")),
        "{e}"
    );
    assert_eq!(
        e["from"],
        json!({"ip": "10.1.1.250", "endpoint": null, "group": null, "host": null})
    );
    assert_eq!(e["protocol"], "tcp");
    assert_eq!(e["hosts"].as_array().map(Vec::len), Some(1));

    let doc = nm.get_json("/api/v1/openapi.json");
    for route in [
        "/plugin/policyReport",
        "/api/v1/policyStatus/",
        "/api/v1/policyExplain/",
    ] {
        assert!(doc["paths"][route].is_object(), "{route} in openapi");
    }

    let refused = [
        (
            "from=nope&to=name-c2",
            404,
            "endpoint nope not found in tenant default",
        ),
        (
            "tenant=t9&from=name-c1&to=name-c2",
            404,
            "Tenant t9 not found",
        ),
        (
            "from=name-c1&to=name-c2&protocol=sctp",
            400,
            "unknown protocol",
        ),
        ("from=name-c1&to=name-c2&port=http", 400, "invalid port"),
        (
            "from=name-c1&to=name-c2&protocol=icmp&port=80",
            400,
            "port 80 needs protocol tcp or udp",
        ),
        ("to=name-c2", 400, "missing 'from'"),
    ];
    for (query, status, msg) in refused {
        let path = format!("/api/v1/policyExplain/?{query}");
        let (code, text) = nm.get(&path);
        assert!(code == 500 && text.contains(msg), "{query}: {code} {text}");
        let (code, text) = nm.problem("GET", &path, None);
        assert!(
            code == status && text.contains(msg),
            "{query}: {code} {text}"
        );
    }
}
