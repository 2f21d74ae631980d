//! A tiny fake host agent for tests (feature `test-agent`): the agent protocol of
//! [`crate::agent_api`] on a unix socket, served from a background thread, with in-memory
//! attachments, failure injection and a log of the requests it received.
//!
//! Attachment `n` (from 2) gets `10.36.0.n/24` (gateway `10.36.0.1`), MAC `02:02:0a:24:00:nn`,
//! host interface `vportN`, MTU 1450, a default route and DNS `10.36.0.1`; with dual stack also
//! `fd00:36::n/64`. ADD is idempotent per `(container_id, ifname)`, DEL of unknown succeeds,
//! CHECK of unknown answers code 3, GC keeps only the valid attachments of its `cni_network`.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::agent_api::{
    AgentAddRequest, AgentAddResponse, AgentCheckRequest, AgentDelRequest, AgentDns, AgentError,
    AgentGcRequest, AgentRoute, GcAttachment, PATH_ADD, PATH_CHECK, PATH_DEL, PATH_GC, PATH_STATUS,
};
use crate::http;

#[derive(Default)]
struct State {
    attachments: BTreeMap<(String, String), (String, AgentAddResponse)>,
    next: u32,
    failures: BTreeMap<String, AgentError>,
    requests: Vec<(String, Value)>,
    dual_stack: bool,
}

/// A running fake agent; stops and removes its socket when dropped.
pub struct FakeAgent {
    path: PathBuf,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FakeAgent {
    /// Listens on `socket` (which must not exist) and serves until dropped.
    pub fn start(socket: impl AsRef<Path>) -> std::io::Result<Self> {
        let path = socket.as_ref().to_path_buf();
        let listener = UnixListener::bind(&path)?;
        let state = Arc::new(Mutex::new(State {
            next: 2,
            ..Default::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = conn {
                    serve(&st, stream);
                }
            }
        });
        Ok(Self {
            path,
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// The socket path (put it in the netconf's `agentSocket`).
    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    /// Answers every request to `path` with `err` until [`FakeAgent::clear_failures`].
    pub fn fail(&self, path: &str, err: AgentError) {
        lock(&self.state).failures.insert(path.to_string(), err);
    }

    /// Stops injecting failures.
    pub fn clear_failures(&self) {
        lock(&self.state).failures.clear();
    }

    /// Also hand out IPv6 addresses on ADD.
    pub fn set_dual_stack(&self, on: bool) {
        lock(&self.state).dual_stack = on;
    }

    /// Every request received so far: path and JSON body.
    pub fn requests(&self) -> Vec<(String, Value)> {
        lock(&self.state).requests.clone()
    }

    /// Current attachments.
    pub fn attachments(&self) -> Vec<GcAttachment> {
        lock(&self.state)
            .attachments
            .keys()
            .map(|(c, i)| GcAttachment {
                container_id: c.clone(),
                ifname: i.clone(),
            })
            .collect()
    }
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(state: &Mutex<State>, stream: UnixStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let Ok(req) = http::read_request(&mut BufReader::new(stream)) else {
        return;
    };
    let (status, body) = match handle(state, &req.path, &req.body) {
        Ok(v) => (200, v),
        Err(e) => (
            e.http_status(),
            serde_json::to_value(&e).unwrap_or_default(),
        ),
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let _ = http::write_response(&mut writer, status, &bytes);
    let _ = writer.flush();
}

fn decode<T: DeserializeOwned>(body: &Value) -> Result<T, AgentError> {
    serde_json::from_value(body.clone())
        .map_err(|e| AgentError::new(6, format!("bad request: {e}")))
}

fn handle(state: &Mutex<State>, path: &str, body: &[u8]) -> Result<Value, AgentError> {
    let body: Value =
        serde_json::from_slice(body).map_err(|e| AgentError::new(6, format!("bad json: {e}")))?;
    let mut st = lock(state);
    st.requests.push((path.to_string(), body.clone()));
    if let Some(err) = st.failures.get(path) {
        return Err(err.clone());
    }
    let ok = Value::Object(Default::default());
    match path {
        PATH_ADD => add(&mut st, decode(&body)?),
        PATH_DEL => {
            let req: AgentDelRequest = decode(&body)?;
            st.attachments.remove(&(req.container_id, req.ifname));
            Ok(ok)
        }
        PATH_CHECK => {
            let req: AgentCheckRequest = decode(&body)?;
            match st
                .attachments
                .get(&(req.container_id.clone(), req.ifname.clone()))
            {
                Some((_, resp)) => {
                    serde_json::to_value(resp).map_err(|e| AgentError::new(999, e.to_string()))
                }
                None => Err(AgentError::new(
                    3,
                    format!("unknown container {}", req.container_id),
                )),
            }
        }
        PATH_STATUS => Ok(ok),
        PATH_GC => {
            let req: AgentGcRequest = decode(&body)?;
            st.attachments.retain(|(c, i), (net, _)| {
                net != &req.cni_network
                    || req
                        .valid_attachments
                        .iter()
                        .any(|a| &a.container_id == c && &a.ifname == i)
            });
            Ok(ok)
        }
        _ => Err(AgentError::new(
            999,
            format!("no such agent endpoint {path}"),
        )),
    }
}

fn add(st: &mut State, req: AgentAddRequest) -> Result<Value, AgentError> {
    let key = (req.container_id.clone(), req.ifname.clone());
    if let Some((_, resp)) = st.attachments.get(&key) {
        return serde_json::to_value(resp).map_err(|e| AgentError::new(999, e.to_string()));
    }
    let n = st.next;
    st.next += 1;
    let resp = AgentAddResponse {
        ip: format!("10.36.0.{n}/24"),
        gateway: Some("10.36.0.1".into()),
        ipv6: st.dual_stack.then(|| format!("fd00:36::{n:x}/64")),
        ipv6_gateway: st.dual_stack.then(|| "fd00:36::1".to_string()),
        mac: Some(format!("02:02:0a:24:00:{n:02x}")),
        ifname: req.ifname.clone(),
        host_ifname: Some(format!("vport{n}")),
        host_mac: None,
        mtu: Some(1450),
        routes: vec![AgentRoute {
            dst: "0.0.0.0/0".into(),
            gw: Some("10.36.0.1".into()),
            ..Default::default()
        }],
        dns: AgentDns {
            nameservers: vec!["10.36.0.1".into()],
            ..Default::default()
        },
        endpoint_id: Some(format!("{}-{}", req.identity.network, req.container_id)),
    };
    st.attachments.insert(key, (req.cni_network, resp.clone()));
    serde_json::to_value(resp).map_err(|e| AgentError::new(999, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{AgentCallError, AgentClient, UnixAgentClient};

    #[test]
    fn unix_client_against_fake_agent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let agent = FakeAgent::start(dir.path().join("agent.sock")).expect("start");
        let client = UnixAgentClient::new(agent.socket_path(), Duration::from_secs(5));
        let req = AgentAddRequest {
            container_id: "c1".into(),
            ifname: "eth0".into(),
            ..Default::default()
        };
        let first = client.add(&req).expect("add");
        assert_eq!(first.ip, "10.36.0.2/24");
        assert_eq!(client.add(&req).expect("add again"), first);
        let check = AgentCheckRequest {
            container_id: "c1".into(),
            ifname: "eth0".into(),
            ..Default::default()
        };
        assert_eq!(client.check(&check).expect("check"), first);
        client
            .del(&AgentDelRequest {
                container_id: "c1".into(),
                ifname: "eth0".into(),
                ..Default::default()
            })
            .expect("del");
        assert!(matches!(client.check(&check), Err(AgentCallError::Agent(e)) if e.code == 3));
        agent.fail(PATH_STATUS, AgentError::new(50, "datapath down"));
        assert!(
            matches!(client.status(&Default::default()), Err(AgentCallError::Agent(e)) if e.code == 50)
        );
        assert_eq!(agent.requests().len(), 6);
    }
}
