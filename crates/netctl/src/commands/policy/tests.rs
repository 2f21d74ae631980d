//! Tests of `netctl policy`: parsing, rule checks, request bodies and the rule tables.

use super::*;
use crate::cli::Command;
use crate::commands::test_support::{parse, refused, run_netctl, FakeServer};
use serde_json::json;

fn policy(args: &[&str]) -> PolicyCmd {
    match parse(args).command {
        Command::Policy(cmd) => cmd,
        other => panic!("not a policy command: {other:?}"),
    }
}

fn rule(args: &[&str]) -> RuleArgs {
    match policy(args) {
        PolicyCmd::RuleAdd(r) => *r,
        other => panic!("not rule-add: {other:?}"),
    }
}

#[test]
fn parses_policy_commands() {
    assert!(
        matches!(policy(&["policy", "create", "-t", "t1", "p1"]), PolicyCmd::Create { tenant, policy } if tenant.tenant == "t1" && policy == "p1")
    );
    assert!(matches!(
        policy(&["policy", "delete", "p1"]),
        PolicyCmd::Rm { .. }
    ));
    assert!(matches!(policy(&["policy", "list", "-a"]), PolicyCmd::Ls(f) if f.all));
    assert!(matches!(
        policy(&["policy", "inspect", "p1"]),
        PolicyCmd::Inspect { .. }
    ));
    assert!(
        matches!(policy(&["policy", "rule-ls", "-j", "p1"]), PolicyCmd::RuleLs { output, .. } if output.json)
    );
    assert!(
        matches!(policy(&["policy", "rule-rm", "-t", "t", "p1", "1"]), PolicyCmd::RuleRm { rule_id, .. } if rule_id == "1")
    );
    assert!(refused(&["policy", "rule-rm", "p1"]));
    assert!(refused(&["policy", "rule-ls", "-a", "p1"]));
    assert!(refused(&["policy", "rule-add", "p1"]));
}

#[test]
fn parses_rule_add_defaults_and_flags() {
    let r = rule(&["policy", "rule-add", "p1", "1"]);
    assert_eq!(
        (r.priority, r.direction.as_str(), r.action.as_str(), r.port),
        (1, "in", "allow", 0)
    );
    let r = rule(&[
        "policy",
        "rule-add",
        "-t",
        "t1",
        "-p",
        "10",
        "-d",
        "out",
        "-e",
        "web",
        "-s",
        "10.0.0.0/8",
        "-l",
        "tcp",
        "-P",
        "80",
        "-j",
        "deny",
        "p1",
        "2",
    ]);
    assert_eq!(
        (r.priority, r.direction.as_str(), r.to_group.as_str()),
        (10, "out", "web")
    );
    assert_eq!(
        (
            r.to_ip.as_str(),
            r.protocol.as_str(),
            r.port,
            r.action.as_str()
        ),
        ("10.0.0.0/8", "tcp", 80, "deny")
    );
    let r = rule(&[
        "policy", "rule-add", "-g", "db", "-i", "1.1.1.1", "-o", "x", "-n", "y", "p", "3",
    ]);
    assert_eq!(
        (
            r.from_group.as_str(),
            r.from_ip.as_str(),
            r.to_network.as_str(),
            r.from_network.as_str()
        ),
        ("db", "1.1.1.1", "x", "y")
    );
    let long = rule(&[
        "policy",
        "rule-add",
        "--priority",
        "10",
        "--direction",
        "out",
        "--to-group",
        "web",
        "--to-ip-address",
        "10.0.0.0/8",
        "--protocol",
        "tcp",
        "--port",
        "80",
        "--action",
        "deny",
        "--tenant",
        "t1",
        "p1",
        "2",
    ]);
    assert_eq!(long.port, 80);
    assert_eq!(long.to_group, "web");
}

#[test]
fn rule_direction_checks() {
    let cases: [(&[&str], &str); 8] = [
        (&["-e", "g"], "Cant specify to-group for incoming rule"),
        (&["-o", "n"], "Cant specify to-network for incoming rule"),
        (
            &["-g", "g", "-n", "n"],
            "Can't specify both from-group argument and -from-network ",
        ),
        (
            &["-d", "out", "-g", "g"],
            "Cant specify from-group for outgoing rule",
        ),
        (
            &["-d", "out", "-n", "n"],
            "Cant specify from-network for outgoing rule",
        ),
        (
            &["-d", "out", "-i", "1.1.1.1"],
            "Cant specify from-ip-address for outgoing rule",
        ),
        (
            &["-d", "out", "-e", "g", "-o", "n"],
            "Can't specify both -to-group and -to-network",
        ),
        (&["-d", "sideways"], "Unknown direction"),
    ];
    for (flags, message) in cases {
        let mut args = vec!["policy", "rule-add"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["p", "1"]);
        let err = rule_body(&rule(&args)).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some(message), "{flags:?}");
    }
    assert!(rule_body(&rule(&[
        "policy", "rule-add", "-d", "out", "-e", "g", "p", "1"
    ]))
    .is_ok());
}

#[test]
fn rule_add_posts_like_contiv() {
    let srv = FakeServer::start();
    srv.route("POST", "/api/v1/rules/t1:p1:1/", 200, "{}");
    let args = [
        "policy", "rule-add", "-t", "t1", "-g", "db", "-l", "tcp", "-P", "5432", "p1", "1",
    ];
    let (res, out) = run_netctl(&srv.url, &args);
    assert!(res.is_ok(), "{res:?}");
    assert_eq!(out, "");
    let expected = json!({"tenantName": "t1", "policyName": "p1", "ruleId": "1", "priority": 1,
        "direction": "in", "fromEndpointGroup": "db", "protocol": "tcp", "port": 5432, "action": "allow"});
    assert_eq!(srv.writes()[0].json(), expected);
}

#[test]
fn rule_ls_sorts_and_splits_by_direction() {
    let srv = FakeServer::start();
    srv.route("GET", "/api/v1/tenants/t1/", 200, "{}");
    srv.route("GET", "/api/v1/policys/t1:p1/", 200, "{}");
    srv.route("GET", "/api/v1/rules/", 200, r#"[
        {"tenantName":"t1","policyName":"p1","ruleId":"b","priority":5,"direction":"in","protocol":"tcp","port":80,"action":"allow"},
        {"tenantName":"t1","policyName":"p1","ruleId":"a","priority":1,"direction":"in","fromEndpointGroup":"db","action":"deny"},
        {"tenantName":"t1","policyName":"p1","ruleId":"c","priority":2,"direction":"out","toNetwork":"n","action":"allow"},
        {"tenantName":"t1","policyName":"other","ruleId":"z","priority":1,"direction":"in"}]"#);
    let (res, out) = run_netctl(&srv.url, &["policy", "rule-ls", "-t", "t1", "p1"]);
    assert!(res.is_ok(), "{res:?}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Incoming Rules:");
    assert!(lines[1].starts_with("Rule  Priority  From EndpointGroup"));
    assert!(lines[3].starts_with("a     1         db"), "{out}");
    assert!(lines[4].starts_with("b     5"), "{out}");
    assert!(lines[4].ends_with("tcp       80    allow"), "{out}");
    assert_eq!(lines[5], "Outgoing Rules:");
    assert!(lines[8].starts_with("c     2"), "{out}");
    assert_eq!(lines.len(), 9);
    let (_, quiet) = run_netctl(&srv.url, &["policy", "rule-ls", "-t", "t1", "-q", "p1"]);
    assert_eq!(quiet, "a\nc\nb\n");
    let (_, json_out) = run_netctl(&srv.url, &["policy", "rule-ls", "-t", "t1", "-j", "p1"]);
    let parsed: Value = serde_json::from_str(&json_out).unwrap_or(Value::Null);
    assert_eq!(parsed.as_array().map(Vec::len), Some(3));
}

#[test]
fn rule_ls_unknown_policy_fails() {
    let srv = FakeServer::start();
    srv.route("GET", "/api/v1/tenants/t1/", 200, "{}");
    srv.route(
        "GET",
        "/api/v1/policys/t1:nope/",
        500,
        "policy t1:nope not found",
    );
    let (res, _) = run_netctl(&srv.url, &["policy", "rule-ls", "-t", "t1", "nope"]);
    assert_eq!(
        res.err().map(|e| e.to_string()).as_deref(),
        Some("policy t1:nope not found")
    );
}

const EXPLAINED: &str = r#"{"tenant":"default",
    "from":{"ip":"10.1.1.2","endpoint":"n1.default-c1","group":"web","host":"host1"},
    "to":{"ip":"10.1.1.3","endpoint":"n1.default-c2","group":"db","host":"host2"},
    "protocol":"tcp","port":80,"verdict":"allow","rule":"default:web-in:2",
    "egress":{"group":null,"rule":null,"action":"allow"},
    "ingress":{"group":"db","rule":"default:web-in:2","action":"allow"},"revision":12,
    "hosts":[{"hostname":"host1","enforcedRevision":12,"current":true,"rules":2,"elements":3},
             {"hostname":"host2","enforcedRevision":10,"current":false,"rules":2,"elements":3}]}"#;

#[test]
fn parses_explain_and_status() {
    match policy(&["policy", "explain", "--from", "a", "--to", "b"]) {
        PolicyCmd::Explain(a) => {
            assert_eq!(
                (
                    a.tenant.tenant.as_str(),
                    a.protocol.as_str(),
                    a.port,
                    a.json
                ),
                ("default", "tcp", 0, false)
            );
        }
        other => panic!("not explain: {other:?}"),
    }
    // Go-style single-dash long flags, like every other netctl command
    assert!(matches!(
        policy(&["policy", "explain", "-t", "t1", "-from", "a", "-to", "b", "-port", "80", "-j"]),
        PolicyCmd::Explain(a) if a.port == 80 && a.json && a.tenant.tenant == "t1"
    ));
    assert!(refused(&["policy", "explain", "--from", "a"]));
    assert!(refused(&[
        "policy", "explain", "--from", "a", "--to", "b", "--port", "70000"
    ]));
    assert!(matches!(
        policy(&["policy", "status", "-j"]),
        PolicyCmd::Status { json: true }
    ));
}

#[test]
fn explain_names_the_deciding_rule_and_the_hosts() {
    let srv = FakeServer::start();
    let path =
        "/api/v1/policyExplain/?tenant=default&from=name-c1&to=10.1.1.3&protocol=tcp&port=80";
    srv.route("GET", path, 200, EXPLAINED);
    let args = [
        "policy", "explain", "--from", "name-c1", "--to", "10.1.1.3", "--port", "80",
    ];
    let (res, out) = run_netctl(&srv.url, &args);
    assert!(res.is_ok(), "{res:?}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "allow  tcp/80  by default:web-in:2 (in-rule of group db)"
    );
    assert!(lines[1].starts_with("Side  IP"), "{out}");
    assert_eq!(lines[3], "from  10.1.1.2  n1.default-c1  web    host1");
    assert_eq!(lines[4], "to    10.1.1.3  n1.default-c2  db     host2");
    assert!(lines[5].starts_with("Host "), "{out}");
    assert_eq!(lines[7], "host1  12                 yes");
    assert_eq!(lines[8], "host2  10                 no (netmaster at 12)");
    let mut json_args = args.to_vec();
    json_args.push("-j");
    let (_, json_out) = run_netctl(&srv.url, &json_args);
    let parsed: Value = serde_json::from_str(&json_out).unwrap_or(Value::Null);
    assert_eq!(parsed["rule"], "default:web-in:2");

    let unmatched = EXPLAINED
        .replace(
            r#""rule":"default:web-in:2","#,
            r#""rule":null,"reason":"no rule matched","#,
        )
        .replace(r#""rule":"default:web-in:2""#, r#""rule":null"#);
    let path = "/api/v1/policyExplain/?tenant=t%3A1&from=a%20b&to=c&protocol=udp&port=0";
    srv.route("GET", path, 200, &unmatched);
    let args = [
        "policy",
        "explain",
        "-t",
        "t:1",
        "--from",
        "a b",
        "--to",
        "c",
        "--protocol",
        "udp",
    ];
    let (res, out) = run_netctl(&srv.url, &args);
    assert!(res.is_ok(), "{res:?}");
    assert_eq!(
        out.lines().next(),
        Some("allow  tcp/80  no rule matched"),
        "the answer's protocol and port"
    );
}

#[test]
fn explain_reports_netmasters_refusal() {
    let srv = FakeServer::start();
    let path = "/api/v1/policyExplain/?tenant=default&from=nope&to=b&protocol=tcp&port=0";
    srv.route(
        "GET",
        path,
        500,
        "endpoint nope not found in tenant default\n",
    );
    let (res, _) = run_netctl(
        &srv.url,
        &["policy", "explain", "--from", "nope", "--to", "b"],
    );
    assert_eq!(
        res.err().map(|e| e.to_string()).as_deref(),
        Some("endpoint nope not found in tenant default")
    );
}

#[test]
fn status_lists_hosts() {
    let srv = FakeServer::start();
    srv.route(
        "GET",
        "/api/v1/policyStatus/",
        200,
        r#"{"revision":12,"hosts":[
        {"hostname":"host1","enforcedRevision":12,"current":true,"rules":4,"elements":9},
        {"hostname":"host2","enforcedRevision":0,"current":false,"rules":0,"elements":0}]}"#,
    );
    let (res, out) = run_netctl(&srv.url, &["policy", "status"]);
    assert!(res.is_ok(), "{res:?}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "netmaster revision 12");
    assert!(
        lines[1].starts_with("Host   Enforced Revision  Current"),
        "{out}"
    );
    assert_eq!(
        lines[3],
        "host1  12                 yes                  4      9"
    );
    assert_eq!(
        lines[4],
        "host2  0                  no (never reported)  0      0"
    );
    let (_, json_out) = run_netctl(&srv.url, &["policy", "status", "-j"]);
    let parsed: Value = serde_json::from_str(&json_out).unwrap_or(Value::Null);
    assert_eq!(parsed["hosts"][0]["hostname"], "host1");
}
