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
