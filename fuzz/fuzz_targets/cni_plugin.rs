//! The CNI plugin (`contivk8s`) on what the runtime hands it: the network configuration on
//! stdin, `CNI_ARGS`, `CNI_IFNAME` and the command, run end to end against an in-process agent
//! that answers like a healthy one. Input: one byte choosing the command, a line of `CNI_ARGS`,
//! a line of `CNI_IFNAME`, then stdin.
//!
//! Holds: nothing panics; the exit status is 0 or 1; whatever the plugin prints is one JSON
//! value, and on failure a CNI error with a code and a message.
#![no_main]

use contiv_cni::agent_api::*;
use contiv_cni::{codes, run_plugin_with_client, AgentCallError, AgentClient, CniEnv, NetConf};
use libfuzzer_sys::fuzz_target;

/// Answers every call as a healthy agent would, except DEL, which it refuses as busy: a
/// delivered DEL tidies the netconf's `pendingDeleteDir`, a path the input chooses.
struct Agent;

fn added(ifname: &str) -> AgentAddResponse {
    AgentAddResponse {
        ip: "10.1.0.5/24".into(),
        gateway: Some("10.1.0.1".into()),
        ipv6: None,
        ipv6_gateway: None,
        mac: Some("02:02:0a:01:00:05".into()),
        ifname: ifname.into(),
        host_ifname: Some("vport5".into()),
        host_mac: None,
        mtu: Some(1450),
        routes: vec![AgentRoute {
            dst: "0.0.0.0/0".into(),
            ..Default::default()
        }],
        dns: AgentDns {
            nameservers: vec!["10.1.0.1".into()],
            ..Default::default()
        },
        endpoint_id: Some("net.t-ctr".into()),
    }
}

impl AgentClient for Agent {
    fn add(&self, req: &AgentAddRequest) -> Result<AgentAddResponse, AgentCallError> {
        Ok(added(&req.ifname))
    }
    fn del(&self, _: &AgentDelRequest) -> Result<(), AgentCallError> {
        Err(AgentCallError::Agent(AgentError::new(
            codes::TRY_AGAIN_LATER,
            "busy",
        )))
    }
    fn check(&self, req: &AgentCheckRequest) -> Result<AgentAddResponse, AgentCallError> {
        Ok(added(&req.ifname))
    }
    fn status(&self, _: &AgentStatusRequest) -> Result<(), AgentCallError> {
        Ok(())
    }
    fn gc(&self, _: &AgentGcRequest) -> Result<(), AgentCallError> {
        Ok(())
    }
}

const COMMANDS: [&str; 7] = ["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC", "bogus"];

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(3, |&b| b == b'\n');
    let args = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let ifname = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let stdin = parts.next().unwrap_or_default();

    let _ = contiv_cni::env::parse_cni_args(&args);
    if let Ok(conf) = NetConf::decode(stdin) {
        let _ = conf.validate_name();
        let _ = conf.gc_valid_attachments();
        let _ = conf.agent_timeout();
        if let Ok(a) = contiv_cni::env::parse_cni_args(&args) {
            let _ = conf.identity(&a);
        }
    }

    let env = CniEnv::from_vars([
        (
            "CNI_COMMAND",
            COMMANDS[usize::from(which) % COMMANDS.len()].to_string(),
        ),
        ("CNI_CONTAINERID", "ctr1".to_string()),
        ("CNI_NETNS", "/run/netns/ctr1".to_string()),
        ("CNI_IFNAME", ifname),
        ("CNI_PATH", "/opt/cni/bin".to_string()),
        ("CNI_ARGS", args),
    ]);
    let (code, out) = run_plugin_with_client(&env, stdin, &Agent);
    assert!(code <= 1, "exit status {code}");
    if out.is_empty() {
        assert_eq!(code, 0, "a failure must say why");
        return;
    }
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out)
        )
    });
    if code == 1 {
        assert!(v["code"].is_u64(), "error without a code: {v}");
        assert!(v["msg"].is_string(), "error without a message: {v}");
    }
});
