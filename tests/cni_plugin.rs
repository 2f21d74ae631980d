//! End to end: the real `contivk8s` binary, run as a runtime would (CNI_* environment, netconf on
//! stdin), against the fake host agent of `contiv-cni` (feature `test-agent`) on a temp unix socket.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use contiv_cni::agent_api::{AgentError, PATH_ADD, PATH_STATUS};
use contiv_cni::test_agent::FakeAgent;
use serde_json::{json, Value};

const VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

struct Out {
    code: i32,
    json: Value,
    stderr: String,
}

fn plugin(vars: &[(&str, &str)], stdin: &[u8]) -> Out {
    let mut child = Command::new(env!("CARGO_BIN_EXE_contivk8s"))
        .env_clear()
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn contivk8s");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait contivk8s");
    let json = if out.stdout.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&out.stdout).expect("stdout is JSON")
    };
    Out {
        code: out.status.code().unwrap_or(-1),
        json,
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

fn cni(cmd: &str, container: &str, conf: &Value) -> Out {
    let vars = [
        ("CNI_COMMAND", cmd),
        ("CNI_CONTAINERID", container),
        ("CNI_NETNS", "/var/run/netns/test-ns"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin"),
        (
            "CNI_ARGS",
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web-0;io.contiv.network=blue-net",
        ),
    ];
    plugin(&vars, &serde_json::to_vec(conf).expect("encode netconf"))
}

fn netconf(version: &str, socket: &Path, spool: &Path) -> Value {
    json!({
        "cniVersion": version,
        "name": "contiv",
        "type": "contivk8s",
        "agentSocket": socket,
        "agentTimeoutSecs": 5,
        "pendingDeleteDir": spool,
        "tenant": "blue",
        "args": {"cni": {"labels": [{"key": "io.contiv.net-group", "value": "web"}]}}
    })
}

fn with_prev(mut conf: Value, prev: &Value) -> Value {
    conf["prevResult"] = prev.clone();
    conf
}

fn assert_error(out: &Out, code: u32) {
    assert_ne!(
        out.code, 0,
        "expected error {code}, got success {}",
        out.json
    );
    assert_eq!(
        out.json["code"], code,
        "{} / stderr: {}",
        out.json, out.stderr
    );
    for key in ["cniVersion", "msg", "details"] {
        assert!(out.json[key].is_string(), "error lacks {key}: {}", out.json);
    }
}

/// Checks an ADD result's shape for version `v`.
fn assert_add_shape(r: &Value, v: &str) {
    assert_eq!(r["cniVersion"], v);
    assert_eq!(r["interfaces"][1]["name"], "eth0");
    assert_eq!(r["interfaces"][1]["sandbox"], "/var/run/netns/test-ns");
    let host = r["interfaces"][0]["name"].as_str();
    assert!(host.is_some_and(|n| n.starts_with("vport")), "{r}");
    assert_eq!(r["ips"][0]["interface"], 1);
    assert_eq!(r["ips"][0]["gateway"], "10.36.0.1");
    let version = r["ips"][0].get("version").and_then(Value::as_str);
    assert_eq!(version, v.starts_with("0.").then_some("4"), "{v}");
    assert_eq!(r["interfaces"][1].get("mtu").is_some(), v == "1.1.0", "{v}");
    assert_eq!(r["routes"][0]["dst"], "0.0.0.0/0");
    assert_eq!(r["dns"]["nameservers"], json!(["10.36.0.1"]));
}

fn assert_ok_empty(out: &Out, what: &str) {
    assert_eq!(
        (out.code, &out.json),
        (0, &Value::Null),
        "{what}: {}",
        out.stderr
    );
}

/// ADD, ADD again, CHECK, STATUS, GC, DEL, DEL again for one version.
fn lifecycle(conf: &Value, v: &str, ctr: &str) {
    let add = cni("ADD", ctr, conf);
    assert_eq!(add.code, 0, "{v}: {} {}", add.json, add.stderr);
    assert_add_shape(&add.json, v);
    let again = cni("ADD", ctr, conf);
    assert_eq!((again.code, &again.json), (0, &add.json), "ADD twice ({v})");

    let check = cni("CHECK", ctr, &with_prev(conf.clone(), &add.json));
    match v {
        "0.3.0" | "0.3.1" => assert_error(&check, 1),
        _ => assert_ok_empty(&check, v),
    }
    for cmd in ["STATUS", "GC"] {
        let mut c = conf.clone();
        c["cni.dev/valid-attachments"] = json!([{"containerID": ctr, "ifname": "eth0"}]);
        let out = cni(cmd, "", &c);
        match v {
            "1.1.0" => assert_ok_empty(&out, cmd),
            _ => assert_error(&out, 1),
        }
    }
    assert_ok_empty(&cni("DEL", ctr, &with_prev(conf.clone(), &add.json)), v);
    assert_ok_empty(&cni("DEL", ctr, conf), "second DEL");
}

#[test]
fn lifecycle_for_every_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = FakeAgent::start(dir.path().join("agent.sock")).expect("fake agent");
    let spool = dir.path().join("pending");
    for (i, v) in VERSIONS.iter().enumerate() {
        lifecycle(
            &netconf(v, agent.socket_path(), &spool),
            v,
            &format!("ctr{i}"),
        );
    }
    assert!(agent.attachments().is_empty());
    let requests = agent.requests();
    let add = requests.iter().find(|(p, _)| p == PATH_ADD).map(|(_, b)| b);
    let add = add.expect("an ADD reached the agent");
    assert_eq!(add["tenant"], "blue");
    assert_eq!(add["network"], "blue-net");
    assert_eq!(add["group"], "web");
    assert_eq!(add["pod_namespace"], "prod");
    assert_eq!(add["pod_name"], "web-0");
    assert_eq!(add["cni_network"], "contiv");
}

#[test]
fn version_command() {
    let out = plugin(&[("CNI_COMMAND", "VERSION")], br#"{"cniVersion":"1.0.0"}"#);
    assert_eq!(out.code, 0);
    assert_eq!(
        out.json,
        json!({"cniVersion": "1.0.0", "supportedVersions": VERSIONS})
    );
    let out = plugin(&[("CNI_COMMAND", "VERSION")], b"");
    assert_eq!((out.code, &out.json["cniVersion"]), (0, &json!("1.1.0")));
}

#[test]
fn invocation_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = netconf(
        "1.1.0",
        &dir.path().join("none.sock"),
        &dir.path().join("pending"),
    );
    let stdin = serde_json::to_vec(&conf).expect("encode");
    let out = plugin(&[], &stdin);
    assert_error(&out, 4);
    assert!(out.json["msg"]
        .as_str()
        .is_some_and(|m| m.contains("CNI_COMMAND")));
    let out = plugin(
        &[
            ("CNI_COMMAND", "ADD"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_CONTAINERID", "c"),
        ],
        &stdin,
    );
    assert_error(&out, 4);
    assert!(
        out.json["msg"]
            .as_str()
            .is_some_and(|m| m.contains("CNI_NETNS")),
        "{}",
        out.json
    );
    let bad = plugin(
        &[
            ("CNI_COMMAND", "ADD"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_CONTAINERID", "c"),
            ("CNI_NETNS", "/n"),
        ],
        b"{",
    );
    assert_error(&bad, 6);
    let mut old = conf.clone();
    old["cniVersion"] = json!("0.2.0");
    assert_error(&cni("ADD", "c", &old), 1);
}

#[test]
fn agent_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = dir.path().join("pending");
    let conf = netconf("1.1.0", &dir.path().join("none.sock"), &spool);
    let add = cni("ADD", "c1", &conf);
    assert_error(&add, 11);
    assert!(
        add.json["details"]
            .as_str()
            .is_some_and(|d| d.contains("none.sock")),
        "{}",
        add.json
    );
    assert_error(&cni("STATUS", "", &conf), 50);
    let del = cni("DEL", "c1", &conf);
    assert_eq!(
        (del.code, &del.json),
        (0, &Value::Null),
        "DEL must not block teardown"
    );
    let pending = contiv_cni::spool::list(&spool).expect("spool");
    assert_eq!(pending.len(), 1, "{}", del.stderr);
    assert_eq!(pending[0].1.container_id, "c1");
}

#[test]
fn agent_errors_pass_through_and_gc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = FakeAgent::start(dir.path().join("agent.sock")).expect("fake agent");
    let conf = netconf("0.3.1", agent.socket_path(), &dir.path().join("pending"));
    let mut err = AgentError::new(120, "network blue/blue-net has no free address");
    err.details = "pool 10.36.0.0/24 exhausted".into();
    agent.fail(PATH_ADD, err);
    let out = cni("ADD", "c1", &conf);
    assert_ne!(out.code, 0);
    assert_eq!(
        out.json,
        json!({"cniVersion":"0.3.1","code":120,"msg":"network blue/blue-net has no free address",
               "details":"pool 10.36.0.0/24 exhausted"})
    );
    agent.clear_failures();
    agent.set_dual_stack(true);
    let add = cni("ADD", "c1", &conf);
    assert_eq!(add.code, 0, "{}", add.stderr);
    assert_eq!(add.json["ips"][1]["version"], "6");
    assert_eq!(add.json["ips"][1]["gateway"], "fd00:36::1");
    assert_eq!(cni("ADD", "c2", &conf).code, 0);

    let mut v11 = netconf("1.1.0", agent.socket_path(), &dir.path().join("pending"));
    agent.fail(PATH_STATUS, AgentError::new(51, "datapath down"));
    assert_error(&cni("STATUS", "", &v11), 51);
    v11["cni.dev/valid-attachments"] = json!([{"containerID": "c2", "ifname": "eth0"}]);
    assert_eq!(cni("GC", "", &v11).code, 0);
    let left: Vec<String> = agent
        .attachments()
        .into_iter()
        .map(|a| a.container_id)
        .collect();
    assert_eq!(left, ["c2"]);
    assert_error(&cni("CHECK", "c1", &with_prev(v11.clone(), &add.json)), 3);
    assert_eq!(
        cni("DEL", "c1", &v11).code,
        0,
        "DEL of an unknown container succeeds"
    );
}
