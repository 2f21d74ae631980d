//! Unit tests of the CNI command logic against an in-memory fake agent: every command for every
//! supported version, the error codes, idempotency, CHECK with prevResult, deferred DEL.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::agent_api::*;
use crate::client::{AgentCallError, AgentClient};
use crate::error::codes;
use crate::version::SUPPORTED_VERSIONS;
use crate::{run_plugin_with_client, CniEnv};

#[derive(Default)]
struct MemAgent {
    attachments: RefCell<BTreeMap<(String, String), AgentAddResponse>>,
    down: Cell<bool>,
    fail: RefCell<Option<AgentError>>,
    adds: RefCell<Vec<AgentAddRequest>>,
    gcs: RefCell<Vec<AgentGcRequest>>,
}

impl MemAgent {
    fn gate(&self) -> Result<(), AgentCallError> {
        if self.down.get() {
            return Err(AgentCallError::Unavailable(
                "cannot connect to /nowhere: refused".into(),
            ));
        }
        match self.fail.borrow().clone() {
            Some(e) => Err(AgentCallError::Agent(e)),
            None => Ok(()),
        }
    }
}

impl AgentClient for MemAgent {
    fn add(&self, req: &AgentAddRequest) -> Result<AgentAddResponse, AgentCallError> {
        self.gate()?;
        self.adds.borrow_mut().push(req.clone());
        let mut map = self.attachments.borrow_mut();
        let n = map.len() + 2;
        let resp = map
            .entry((req.container_id.clone(), req.ifname.clone()))
            .or_insert_with(|| AgentAddResponse {
                ip: format!("10.1.0.{n}/24"),
                gateway: Some("10.1.0.1".into()),
                mac: Some(format!("02:02:0a:01:00:{n:02x}")),
                ifname: req.ifname.clone(),
                host_ifname: Some(format!("vport{n}")),
                mtu: Some(1450),
                routes: vec![AgentRoute {
                    dst: "0.0.0.0/0".into(),
                    ..Default::default()
                }],
                dns: AgentDns {
                    nameservers: vec!["10.1.0.1".into()],
                    ..Default::default()
                },
                ..Default::default()
            });
        Ok(resp.clone())
    }

    fn del(&self, req: &AgentDelRequest) -> Result<(), AgentCallError> {
        self.gate()?;
        match self
            .attachments
            .borrow_mut()
            .remove(&(req.container_id.clone(), req.ifname.clone()))
        {
            Some(_) => Ok(()),
            None => Err(AgentCallError::Agent(AgentError::new(
                codes::UNKNOWN_CONTAINER,
                "unknown container",
            ))),
        }
    }

    fn check(&self, req: &AgentCheckRequest) -> Result<AgentAddResponse, AgentCallError> {
        self.gate()?;
        let key = (req.container_id.clone(), req.ifname.clone());
        self.attachments.borrow().get(&key).cloned().ok_or_else(|| {
            AgentCallError::Agent(AgentError::new(
                codes::UNKNOWN_CONTAINER,
                "unknown container",
            ))
        })
    }

    fn status(&self, _: &AgentStatusRequest) -> Result<(), AgentCallError> {
        self.gate()
    }

    fn gc(&self, req: &AgentGcRequest) -> Result<(), AgentCallError> {
        self.gate()?;
        self.gcs.borrow_mut().push(req.clone());
        Ok(())
    }
}

fn env(cmd: &str) -> CniEnv {
    CniEnv::from_vars([
        ("CNI_COMMAND", cmd),
        ("CNI_CONTAINERID", "ctr1"),
        ("CNI_NETNS", "/run/netns/ctr1"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin"),
        (
            "CNI_ARGS",
            "K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web-0;io.contiv.tenant=blue",
        ),
    ])
}

fn conf(version: &str) -> Value {
    json!({"cniVersion": version, "name": "contiv-net", "type": "contivk8s"})
}

fn run(agent: &MemAgent, cmd: &str, conf: &Value) -> (u8, Value) {
    let stdin = serde_json::to_vec(conf).expect("encode conf");
    let (code, out) = run_plugin_with_client(&env(cmd), &stdin, agent);
    let v = if out.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&out).expect("stdout is JSON")
    };
    (code, v)
}

fn with_prev(mut conf: Value, prev: &Value) -> Value {
    conf["prevResult"] = prev.clone();
    conf
}

fn assert_error(out: &(u8, Value), code: u32) {
    assert_eq!(out.0, 1, "{:?}", out.1);
    assert_eq!(out.1["code"], code, "{:?}", out.1);
    assert!(
        out.1["msg"].is_string() && out.1["details"].is_string() && out.1["cniVersion"].is_string()
    );
}

#[test]
fn every_command_for_every_version() {
    for v in SUPPORTED_VERSIONS {
        let agent = MemAgent::default();
        let vs = v.as_str();
        let (code, add) = run(&agent, "ADD", &conf(vs));
        assert_eq!(code, 0, "{vs}: {add}");
        assert_eq!(add["cniVersion"], vs);
        assert_eq!(add["interfaces"][0], json!({"name": "vport2"}));
        assert_eq!(add["interfaces"][1]["name"], "eth0");
        assert_eq!(add["interfaces"][1]["sandbox"], "/run/netns/ctr1");
        assert_eq!(add["ips"][0]["interface"], 1);
        assert_eq!(add["ips"][0]["address"], "10.1.0.2/24");
        assert_eq!(
            add["ips"][0].get("version").and_then(Value::as_str),
            v.ips_have_version().then_some("4")
        );
        assert_eq!(
            add["interfaces"][1].get("mtu").is_some(),
            v.is_1_1(),
            "{vs}"
        );
        assert_eq!(add["dns"]["nameservers"], json!(["10.1.0.1"]));

        let check = run(&agent, "CHECK", &with_prev(conf(vs), &add));
        if v.has_check() {
            assert_eq!(check, (0, Value::Null), "{vs}");
        } else {
            assert_error(&check, codes::INCOMPATIBLE_VERSION);
        }
        for cmd in ["STATUS", "GC"] {
            let out = run(&agent, cmd, &conf(vs));
            if v.is_1_1() {
                assert_eq!(out, (0, Value::Null), "{cmd} {vs}");
            } else {
                assert_error(&out, codes::INCOMPATIBLE_VERSION);
            }
        }
        assert_eq!(
            run(&agent, "DEL", &with_prev(conf(vs), &add)),
            (0, Value::Null),
            "{vs}"
        );
        assert_eq!(
            run(&agent, "DEL", &conf(vs)),
            (0, Value::Null),
            "second DEL {vs}"
        );
    }
}

#[test]
fn add_twice_returns_the_same_result_and_sends_identity() {
    let agent = MemAgent::default();
    let first = run(&agent, "ADD", &conf("1.0.0"));
    assert_eq!(first.0, 0);
    assert_eq!(run(&agent, "ADD", &conf("1.0.0")), first);
    let adds = agent.adds.borrow();
    let id = &adds[0].identity;
    assert_eq!(
        (id.tenant.as_str(), id.network.as_str(), id.group.as_deref()),
        ("blue", "default-net", None)
    );
    assert_eq!(
        (id.pod_namespace.as_deref(), id.pod_name.as_deref()),
        (Some("prod"), Some("web-0"))
    );
    assert_eq!(
        (adds[0].cni_network.as_str(), adds[0].netns.as_str()),
        ("contiv-net", "/run/netns/ctr1")
    );
}

#[test]
fn environment_decode_version_and_name_errors() {
    let agent = MemAgent::default();
    let stdin = serde_json::to_vec(&conf("1.1.0")).expect("encode");
    for missing in ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"] {
        let mut e = env("ADD");
        match missing {
            "CNI_COMMAND" => e.command = None,
            "CNI_CONTAINERID" => e.container_id = None,
            "CNI_NETNS" => e.netns = None,
            _ => e.ifname = Some(String::new()),
        }
        let (code, out) = run_plugin_with_client(&e, &stdin, &agent);
        let out: Value = serde_json::from_slice(&out).expect("json");
        assert_error(&(code, out.clone()), codes::INVALID_ENV);
        assert!(
            out["msg"].as_str().is_some_and(|m| m.contains(missing)),
            "{out}"
        );
        assert_eq!(out["cniVersion"], "1.1.0");
    }
    for bad in [&b"{not json"[..], b"", b"42"] {
        let (code, out) = run_plugin_with_client(&env("ADD"), bad, &agent);
        assert_error(
            &(code, serde_json::from_slice(&out).expect("json")),
            codes::DECODE_FAILURE,
        );
    }
    for v in ["0.2.0", "0.1.0", "9.9.9"] {
        assert_error(&run(&agent, "ADD", &conf(v)), codes::INCOMPATIBLE_VERSION);
    }
    assert_error(
        &run(&agent, "ADD", &json!({"name": "n"})),
        codes::INCOMPATIBLE_VERSION,
    );
    assert_error(
        &run(&agent, "ADD", &json!({"cniVersion": "1.0.0"})),
        codes::INVALID_NETCONF,
    );
    assert!(agent.adds.borrow().is_empty());
}

#[test]
fn version_command() {
    let agent = MemAgent::default();
    let e = CniEnv::from_vars([("CNI_COMMAND", "VERSION")]);
    let (code, out) = run_plugin_with_client(&e, br#"{"cniVersion":"0.4.0"}"#, &agent);
    let out: Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(code, 0);
    assert_eq!(
        out,
        json!({"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]})
    );
    let (code, out) = run_plugin_with_client(&e, b"", &agent);
    let out: Value = serde_json::from_slice(&out).expect("json");
    assert_eq!((code, &out["cniVersion"]), (0, &json!("1.1.0")));
}

#[test]
fn agent_down_and_agent_errors() {
    let agent = MemAgent::default();
    agent.down.set(true);
    let out = run(&agent, "ADD", &conf("0.4.0"));
    assert_error(&out, codes::TRY_AGAIN_LATER);
    assert_eq!(out.1["cniVersion"], "0.4.0");
    assert!(out.1["details"]
        .as_str()
        .is_some_and(|d| d.contains("/nowhere")));
    assert_error(
        &run(&agent, "STATUS", &conf("1.1.0")),
        codes::PLUGIN_NOT_AVAILABLE,
    );
    assert_error(&run(&agent, "GC", &conf("1.1.0")), codes::TRY_AGAIN_LATER);
    agent.down.set(false);
    let mut e = AgentError::new(120, "network blue/default-net is full");
    e.details = "pool 10.1.0.0/24 exhausted".into();
    *agent.fail.borrow_mut() = Some(e);
    let out = run(&agent, "ADD", &conf("1.1.0"));
    assert_eq!(
        out,
        (
            1,
            json!({"cniVersion":"1.1.0","code":120,"msg":"network blue/default-net is full","details":"pool 10.1.0.0/24 exhausted"})
        )
    );
    *agent.fail.borrow_mut() = Some(AgentError::new(
        codes::PLUGIN_NOT_AVAILABLE_LIMITED,
        "ovs down",
    ));
    assert_error(
        &run(&agent, "STATUS", &conf("1.1.0")),
        codes::PLUGIN_NOT_AVAILABLE_LIMITED,
    );
    *agent.fail.borrow_mut() = Some(AgentError::new(codes::IO_FAILURE, "cannot remove port"));
    assert_error(&run(&agent, "DEL", &conf("1.1.0")), codes::IO_FAILURE);
}

#[test]
fn del_with_agent_down_is_recorded_and_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool_dir = dir.path().join("pending");
    let agent = MemAgent::default();
    agent.down.set(true);
    let mut c = conf("1.0.0");
    c["pendingDeleteDir"] = json!(spool_dir);
    assert_eq!(run(&agent, "DEL", &c), (0, Value::Null));
    let pending = crate::spool::list(&spool_dir).expect("list");
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (
            pending[0].1.container_id.as_str(),
            pending[0].1.identity.tenant.as_str()
        ),
        ("ctr1", "blue")
    );
    agent.down.set(false);
    assert_eq!(run(&agent, "DEL", &c), (0, Value::Null));
    assert!(
        crate::spool::list(&spool_dir).expect("list").is_empty(),
        "a delivered DEL forgets the record"
    );
}

#[test]
fn check_consults_prev_result() {
    let agent = MemAgent::default();
    let (_, add) = run(&agent, "ADD", &conf("1.1.0"));
    assert_error(
        &run(&agent, "CHECK", &conf("1.1.0")),
        codes::INVALID_NETCONF,
    );
    assert_error(
        &run(
            &agent,
            "CHECK",
            &with_prev(conf("1.1.0"), &json!({"ips": 3})),
        ),
        codes::DECODE_FAILURE,
    );
    let mut wrong_ip = add.clone();
    wrong_ip["ips"][0]["address"] = json!("10.1.0.99/24");
    assert_error(
        &run(&agent, "CHECK", &with_prev(conf("1.1.0"), &wrong_ip)),
        codes::CHECK_MISMATCH,
    );
    let mut wrong_mac = add.clone();
    wrong_mac["interfaces"][1]["mac"] = json!("02:00:00:00:00:01");
    assert_error(
        &run(&agent, "CHECK", &with_prev(conf("1.1.0"), &wrong_mac)),
        codes::CHECK_MISMATCH,
    );
    let mut no_iface = add.clone();
    no_iface["interfaces"][1]["name"] = json!("eth9");
    assert_error(
        &run(&agent, "CHECK", &with_prev(conf("1.1.0"), &no_iface)),
        codes::CHECK_MISMATCH,
    );
    let mut upper_mac = add.clone();
    upper_mac["interfaces"][1]["mac"] = json!("02:02:0A:01:00:02");
    assert_eq!(
        run(&agent, "CHECK", &with_prev(conf("1.1.0"), &upper_mac)),
        (0, Value::Null)
    );
    assert_eq!(run(&agent, "DEL", &conf("1.1.0")).0, 0);
    assert_error(
        &run(&agent, "CHECK", &with_prev(conf("1.1.0"), &add)),
        codes::UNKNOWN_CONTAINER,
    );
}

#[test]
fn chained_add_keeps_prev_result() {
    let agent = MemAgent::default();
    let prev = json!({"cniVersion":"0.4.0","interfaces":[{"name":"tap0","sandbox":"/run/netns/ctr1"}],
                      "ips":[{"version":"4","address":"192.168.9.2/24","interface":0}]});
    let (code, out) = run(&agent, "ADD", &with_prev(conf("0.4.0"), &prev));
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["interfaces"][0]["name"], "tap0");
    assert_eq!(out["ips"][0]["address"], "192.168.9.2/24");
    assert_eq!(
        out["ips"][1],
        json!({"version":"4","address":"10.1.0.2/24","gateway":"10.1.0.1","interface":2})
    );
    assert_error(
        &run(&agent, "ADD", &with_prev(conf("0.4.0"), &json!("x"))),
        codes::DECODE_FAILURE,
    );
}

#[test]
fn gc_passes_valid_attachments() {
    let agent = MemAgent::default();
    let mut c = conf("1.1.0");
    c["cni.dev/valid-attachments"] =
        json!([{"containerID":"b","ifname":"eth0"},{"containerID":"a","ifname":"eth0"}]);
    assert_eq!(run(&agent, "GC", &c), (0, Value::Null));
    c["cni.dev/valid-attachments"] = Value::Null;
    assert_eq!(run(&agent, "GC", &c), (0, Value::Null));
    let gcs = agent.gcs.borrow();
    let ids: Vec<&str> = gcs[0]
        .valid_attachments
        .iter()
        .map(|a| a.container_id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(gcs[1].valid_attachments.is_empty());
    assert_eq!(gcs[0].cni_network, "contiv-net");
}
