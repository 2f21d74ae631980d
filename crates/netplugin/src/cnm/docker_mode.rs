//! Docker mode (Contiv's `--mode docker`): this host's agent keeps its own dockerd's networks in
//! step with Contiv's networks and groups, so `docker run --net web/demo` works with no
//! `docker network create`.
//!
//! The desired Docker networks are a pure function of the mirror ([`desired`]): one per group
//! (`<group>` / `<group>/<tenant>`) and one per network without groups (`<network>` /
//! `<network>/<tenant>`), driver and IPAM driver `netplugin`, options `tenant`, `network`,
//! `group`, `encap` and IPAM options `tenant`, `network`, `group`. [`converge`] lists dockerd's
//! networks, creates what is missing and deletes what is no longer wanted, through the small
//! [`DockerEngine`] trait (the Engine API on dockerd's unix socket: [`EngineSocket`]).
//!
//! Invariant: only networks carrying our label ([`LABEL`] = [`LABEL_VALUE`]) are ever deleted
//! or replaced; a network of the same name made by someone else is left alone (and logged).
//! A delete dockerd refuses (containers still attached) is retried on the next pass.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use super::{docker_network_name, DEFAULT_TENANT};
use crate::agent::Agent;
use crate::follow::Stop;
use crate::mirror::Mirror;

/// The label marking a Docker network this agent made.
pub const LABEL: &str = "io.contiv.netplugin";
/// Its value.
pub const LABEL_VALUE: &str = "docker-mode";

/// A Docker network as docker mode wants it (or found it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerNet {
    pub name: String,
    /// Driver options (`-o`).
    pub options: BTreeMap<String, String>,
    /// IPAM driver options (`--ipam-opt`).
    pub ipam_options: BTreeMap<String, String>,
}

/// A Docker network dockerd reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub net: DockerNet,
    /// Whether it carries our label.
    pub ours: bool,
}

/// Why a call to dockerd failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("dockerd at {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("dockerd {call}: status {status}: {body}")]
    Status {
        call: String,
        status: u16,
        body: String,
    },
    #[error("dockerd {call}: bad answer: {msg}")]
    BadAnswer { call: String, msg: String },
}

/// The three Engine API calls docker mode needs. Each call is independent and may be retried.
pub trait DockerEngine {
    /// Every network dockerd has.
    fn list(&self) -> Result<Vec<Listed>, EngineError>;
    /// Creates `net` with driver and IPAM driver `netplugin` and our label.
    fn create(&self, net: &DockerNet) -> Result<(), EngineError>;
    /// Deletes the network with id `id`.
    fn delete(&self, id: &str) -> Result<(), EngineError>;
}

fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The Docker networks the mirror's networks and groups call for, by name.
pub fn desired(m: &Mirror) -> BTreeMap<String, DockerNet> {
    let mut out = BTreeMap::new();
    let mut with_groups = std::collections::BTreeSet::new();
    for g in m.groups.values() {
        let Some(net) = m
            .networks
            .values()
            .find(|n| n.tenant_name == g.tenant_name && n.network_name == g.network_name)
        else {
            continue;
        };
        with_groups.insert((net.tenant_name.clone(), net.network_name.clone()));
        let name = docker_network_name(&g.tenant_name, &g.group_name);
        let base = [
            ("tenant", g.tenant_name.as_str()),
            ("network", g.network_name.as_str()),
            ("group", g.group_name.as_str()),
        ];
        let mut o = base.to_vec();
        o.push(("encap", net.encap.as_str()));
        out.insert(
            name.clone(),
            DockerNet {
                name,
                options: opts(&o),
                ipam_options: opts(&base),
            },
        );
    }
    for n in m.networks.values() {
        if with_groups.contains(&(n.tenant_name.clone(), n.network_name.clone())) {
            continue;
        }
        let name = docker_network_name(&n.tenant_name, &n.network_name);
        let base = [
            ("tenant", n.tenant_name.as_str()),
            ("network", n.network_name.as_str()),
        ];
        let mut o = base.to_vec();
        o.push(("encap", n.encap.as_str()));
        // A group's name may equal a network's in the default tenant: the group wins.
        out.entry(name.clone()).or_insert(DockerNet {
            name,
            options: opts(&o),
            ipam_options: opts(&base),
        });
    }
    out
}

/// What one [`converge`] pass did.
#[derive(Debug, Default)]
pub struct Converged {
    pub created: Vec<String>,
    pub deleted: Vec<String>,
    /// Every failed call (the pass went on with the others).
    pub errors: Vec<String>,
}

/// Makes dockerd's networks match `want`: missing ones created, ours that differ replaced, ours
/// no longer wanted deleted; networks without our label never touched.
pub fn converge(engine: &dyn DockerEngine, want: &BTreeMap<String, DockerNet>) -> Converged {
    let mut done = Converged::default();
    let have = match engine.list() {
        Ok(h) => h,
        Err(e) => {
            done.errors.push(e.to_string());
            return done;
        }
    };
    let by_name: BTreeMap<&str, &Listed> = have.iter().map(|l| (l.net.name.as_str(), l)).collect();
    for l in have.iter().filter(|l| l.ours) {
        if want.get(&l.net.name) == Some(&l.net) {
            continue;
        }
        match engine.delete(&l.id) {
            Ok(()) => done.deleted.push(l.net.name.clone()),
            Err(e) => done.errors.push(e.to_string()),
        }
    }
    for (name, net) in want {
        match by_name.get(name.as_str()) {
            Some(l) if l.ours && l.net == *net => continue,
            Some(l) if l.ours && !done.deleted.contains(name) => continue, // delete failed
            Some(l) if !l.ours => {
                tracing::debug!(network = %name, "docker network exists and is not ours: left alone");
                continue;
            }
            _ => {}
        }
        match engine.create(net) {
            Ok(()) => done.created.push(name.clone()),
            Err(e) => done.errors.push(e.to_string()),
        }
    }
    done
}

/// Seconds between passes with no mirror change (retries of refused deletes, a restarted
/// dockerd that lost nothing but may have been wiped).
const SAFETY_PASS: Duration = Duration::from_secs(5);

/// Follows the mirror and converges `engine` after every change (and every [`SAFETY_PASS`]).
pub fn docker_mode_loop(agent: &Agent, engine: &dyn DockerEngine, stop: &Stop) {
    let mut seen = 0u64;
    while !stop.is_raised() {
        // A pass per mirror change, and every SAFETY_PASS anyway: dockerd may have been
        // restarted or wiped, or refused a delete we must retry.
        agent.mirror.wait_for(SAFETY_PASS, |m| m.revision > seen);
        if stop.is_raised() {
            return;
        }
        let (revision, want) = {
            let guard = agent.mirror.read();
            let Some(m) = guard.as_ref() else { continue };
            (m.revision, desired(m))
        };
        let done = converge(engine, &want);
        for n in &done.created {
            tracing::info!(network = %n, "docker mode: created docker network");
        }
        for n in &done.deleted {
            tracing::info!(network = %n, "docker mode: deleted docker network");
        }
        for e in &done.errors {
            tracing::warn!("docker mode: {e}");
        }
        seen = revision;
    }
}

/// dockerd's Engine API on its unix socket (HTTP/1.0, one connection per call).
pub struct EngineSocket {
    pub path: PathBuf,
    /// The driver and IPAM driver name networks are created with (the plugin's name).
    pub driver: String,
}

impl EngineSocket {
    /// A `GET` (the Docker endpoint sweep's reads).
    pub(crate) fn get(&self, uri: &str) -> Result<Value, EngineError> {
        self.call("GET", uri, None)
    }

    fn call(&self, method: &str, uri: &str, body: Option<&Value>) -> Result<Value, EngineError> {
        let io = |source| EngineError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let mut s = UnixStream::connect(&self.path).map_err(io)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(io)?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {uri} HTTP/1.0\r\nHost: docker\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).map_err(io)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(io)?;
        parse_answer(&format!("{method} {uri}"), &raw)
    }
}

/// Status and JSON body of an HTTP/1.0 answer (an empty body is `null`).
fn parse_answer(call: &str, raw: &[u8]) -> Result<Value, EngineError> {
    let bad = |msg: &str| EngineError::BadAnswer {
        call: call.to_string(),
        msg: msg.to_string(),
    };
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad("no header end"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    if !(200..300).contains(&status) {
        return Err(EngineError::Status {
            call: call.to_string(),
            status,
            body: body.trim().chars().take(300).collect(),
        });
    }
    if body.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(body).map_err(|e| bad(&e.to_string()))
}

fn str_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

impl DockerEngine for EngineSocket {
    fn list(&self) -> Result<Vec<Listed>, EngineError> {
        let v = self.call("GET", "/networks", None)?;
        let arr = v.as_array().ok_or_else(|| EngineError::BadAnswer {
            call: "GET /networks".into(),
            msg: "not a list".into(),
        })?;
        Ok(arr
            .iter()
            .map(|n| Listed {
                id: n["Id"].as_str().unwrap_or_default().to_string(),
                ours: n["Labels"][LABEL].as_str() == Some(LABEL_VALUE),
                net: DockerNet {
                    name: n["Name"].as_str().unwrap_or_default().to_string(),
                    options: str_map(&n["Options"]),
                    ipam_options: str_map(&n["IPAM"]["Options"]),
                },
            })
            .collect())
    }

    fn create(&self, net: &DockerNet) -> Result<(), EngineError> {
        let body = json!({
            "Name": net.name,
            "CheckDuplicate": true,
            "Driver": self.driver,
            "Options": net.options,
            "IPAM": {"Driver": self.driver, "Options": net.ipam_options},
            "Labels": {LABEL: LABEL_VALUE},
        });
        self.call("POST", "/networks/create", Some(&body))
            .map(|_| ())
    }

    fn delete(&self, id: &str) -> Result<(), EngineError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(EngineError::BadAnswer {
                call: "DELETE /networks".into(),
                msg: format!("bad network id {id:?}"),
            });
        }
        self.call("DELETE", &format!("/networks/{id}"), None)
            .map(|_| ())
    }
}

/// The tenant of a docker-mode network name, for logs and tests.
pub fn tenant_of(name: &str) -> &str {
    name.split_once('/')
        .map(|(_, t)| t)
        .unwrap_or(DEFAULT_TENANT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[derive(Default)]
    struct FakeEngine {
        nets: Mutex<Vec<Listed>>,
        calls: Mutex<Vec<String>>,
        refuse_delete: bool,
    }

    impl DockerEngine for FakeEngine {
        fn list(&self) -> Result<Vec<Listed>, EngineError> {
            Ok(self.nets.lock().clone())
        }
        fn create(&self, net: &DockerNet) -> Result<(), EngineError> {
            self.calls.lock().push(format!("create {}", net.name));
            let id = format!("id{}", self.nets.lock().len() + 100);
            self.nets.lock().push(Listed {
                id,
                net: net.clone(),
                ours: true,
            });
            Ok(())
        }
        fn delete(&self, id: &str) -> Result<(), EngineError> {
            self.calls.lock().push(format!("delete {id}"));
            if self.refuse_delete {
                return Err(EngineError::Status {
                    call: "DELETE".into(),
                    status: 403,
                    body: "has active endpoints".into(),
                });
            }
            self.nets.lock().retain(|l| l.id != id);
            Ok(())
        }
    }

    fn mirror() -> Mirror {
        let mut m = Mirror::default();
        for (t, n) in [("default", "net1"), ("demo", "app"), ("demo", "bare")] {
            let net: contiv_model::Network = serde_json::from_value(json!({
                "key": format!("{t}:{n}"), "tenantName": t, "networkName": n,
                "encap": "vxlan", "subnet": "10.1.0.0/24"}))
            .expect("network");
            m.networks.insert(format!("{t}:{n}"), net);
        }
        for (t, n, g) in [("default", "net1", "web"), ("demo", "app", "db")] {
            let grp: contiv_model::EndpointGroup = serde_json::from_value(json!({
                "key": format!("{t}:{g}"), "tenantName": t, "networkName": n, "groupName": g}))
            .expect("group");
            m.groups.insert(format!("{t}:{g}"), grp);
        }
        m
    }

    #[test]
    fn groups_and_networks_without_groups_get_contiv_names_and_options() {
        let want = desired(&mirror());
        let names: Vec<&str> = want.keys().map(String::as_str).collect();
        assert_eq!(names, ["bare/demo", "db/demo", "web"]);
        let web = &want["web"];
        assert_eq!(web.options["group"], "web");
        assert_eq!(web.options["network"], "net1");
        assert_eq!(web.options["tenant"], "default");
        assert_eq!(web.options["encap"], "vxlan");
        assert_eq!(web.ipam_options.len(), 3);
        assert!(!want["bare/demo"].options.contains_key("group"));
        assert_eq!(tenant_of("db/demo"), "demo");
    }

    #[test]
    fn converge_creates_deletes_ours_and_never_touches_others() {
        let e = FakeEngine::default();
        let foreign = Listed {
            id: "f1".into(),
            net: DockerNet {
                name: "web".into(),
                options: BTreeMap::new(),
                ipam_options: BTreeMap::new(),
            },
            ours: false,
        };
        let stale = Listed {
            id: "s1".into(),
            net: DockerNet {
                name: "gone/demo".into(),
                options: BTreeMap::new(),
                ipam_options: BTreeMap::new(),
            },
            ours: true,
        };
        e.nets.lock().extend([foreign, stale]);
        let want = desired(&mirror());
        let done = converge(&e, &want);
        assert!(done.errors.is_empty(), "{:?}", done.errors);
        assert_eq!(done.deleted, ["gone/demo"]);
        assert_eq!(done.created, ["bare/demo", "db/demo"]);
        // The foreign `web` stays, and a second pass changes nothing.
        let again = converge(&e, &want);
        assert!(again.created.is_empty() && again.deleted.is_empty());
        assert!(!e.calls.lock().iter().any(|c| c == "delete f1"));
    }

    #[test]
    fn a_refused_delete_is_reported_and_its_network_not_created_twice() {
        let e = FakeEngine {
            refuse_delete: true,
            ..FakeEngine::default()
        };
        let mut want = desired(&mirror());
        converge(&e, &want);
        want.get_mut("web")
            .expect("web")
            .options
            .insert("x".into(), "y".into());
        let done = converge(&e, &want);
        assert_eq!(done.errors.len(), 1, "{:?}", done.errors);
        assert!(done.created.is_empty());
    }

    #[test]
    fn answers_are_parsed_and_errors_carry_the_status() {
        let ok = parse_answer("GET /x", b"HTTP/1.0 200 OK\r\nA: b\r\n\r\n[1]").expect("ok");
        assert_eq!(ok, json!([1]));
        let e = parse_answer(
            "DELETE /x",
            b"HTTP/1.0 403 Forbidden\r\n\r\n{\"message\":\"in use\"}",
        )
        .expect_err("403");
        assert!(e.to_string().contains("403"), "{e}");
        assert!(parse_answer("GET /x", b"garbage").is_err());
    }
}
