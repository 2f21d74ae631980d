//! Helpers for end-to-end tests: a real netmaster process on a free loopback port with its own
//! data directory, killed (by PID) when the guard drops, and a small HTTP client.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use contiv_netplugin::testbed::{Binaries, Cluster, TestDatapath};
use serde_json::Value;

pub struct Netmaster {
    child: Option<Child>,
    pub port: u16,
    pub url: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

/// A loopback port free now and never handed out before in this test process. The port is
/// released before the server binds it, so the kernel may offer it again to a parallel test; two
/// netmasters given one port meant one failed to bind and its test talked to (and lost, when
/// that test ended) the other's: "connection reset by peer".
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

impl Netmaster {
    /// Starts netmaster with a fresh data directory.
    pub fn start() -> Netmaster {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut nm = Netmaster::start_in(&dir, &[]);
        nm._tmp = Some(tmp);
        nm
    }

    /// Starts netmaster on an existing data directory (restart tests) with extra flags.
    pub fn start_in(dir: &Path, extra: &[&str]) -> Netmaster {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_netmaster"))
            .arg("--external-address")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn netmaster");
        let nm = Netmaster {
            child: Some(child),
            port,
            url: format!("http://127.0.0.1:{port}"),
            data_dir: dir.to_path_buf(),
            _tmp: None,
        };
        nm.wait_ready();
        nm
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok((200, _)) = try_request(&self.url, "GET", "/version", None, false) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("netmaster did not become ready on {}", self.url);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        request(&self.url, "GET", path, None, false)
    }
    pub fn post(&self, path: &str, body: &Value) -> (u16, String) {
        request(&self.url, "POST", path, Some(body), false)
    }
    pub fn put(&self, path: &str, body: &Value) -> (u16, String) {
        request(&self.url, "PUT", path, Some(body), false)
    }
    pub fn delete(&self, path: &str) -> (u16, String) {
        request(&self.url, "DELETE", path, None, false)
    }
    /// Same request with `Accept: application/problem+json`.
    pub fn problem(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
        request(&self.url, method, path, body, true)
    }
    pub fn get_json(&self, path: &str) -> Value {
        let (code, body) = self.get(path);
        assert_eq!(code, 200, "GET {path}: {body}");
        serde_json::from_str(&body).expect("json body")
    }
}

impl Drop for Netmaster {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

thread_local! {
    static AGENT: ureq::Agent = agent();
}

pub fn try_request(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    problem: bool,
) -> Result<(u16, String), String> {
    AGENT.with(|a| {
        let url = format!("{base}{path}");
        let accept = if problem {
            "application/problem+json"
        } else {
            "*/*"
        };
        let resp = match (method, body) {
            ("GET", _) => a.get(&url).header("Accept", accept).call(),
            ("DELETE", _) => a.delete(&url).header("Accept", accept).call(),
            ("POST", Some(b)) => a
                .post(&url)
                .header("Accept", accept)
                .header("Content-Type", "application/json")
                .send(b.to_string()),
            ("PUT", Some(b)) => a
                .put(&url)
                .header("Accept", accept)
                .header("Content-Type", "application/json")
                .send(b.to_string()),
            ("POST", None) => a.post(&url).header("Accept", accept).send(""),
            (m, _) => return Err(format!("unsupported method {m}")),
        };
        let mut resp = resp.map_err(|e| e.to_string())?;
        let code = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        Ok((code, text))
    })
}

pub fn request(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    problem: bool,
) -> (u16, String) {
    try_request(base, method, path, body, problem)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// The binaries of this build, for the namespace test bed.
pub fn bins() -> Binaries {
    Binaries {
        netmaster: env!("CARGO_BIN_EXE_netmaster").into(),
        netplugin: env!("CARGO_BIN_EXE_netplugin").into(),
        contivk8s: env!("CARGO_BIN_EXE_contivk8s").into(),
    }
}

/// Whether namespace `ns` has a neighbour entry for `ip` (an endpoint it programs).
pub fn neigh_has(ns: &Path, ip: &str) -> bool {
    let name = ns.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let o = Command::new("ip")
        .args(["-j", "-n", name, "neigh", "show"])
        .output()
        .expect("ip");
    String::from_utf8_lossy(&o.stdout).contains(&format!("\"{ip}\""))
}

/// `linux::NAME` and `ovs::NAME` root tests calling `NAME(datapath)`.
#[allow(unused_macros)] // used by the e2e suites run on both datapaths
macro_rules! on_both_datapaths {
    ($($test:ident),* $(,)?) => {
        mod linux {
            $(
                #[test]
                #[ignore = "needs root"]
                fn $test() {
                    super::$test(contiv_netplugin::testbed::TestDatapath::Linux)
                }
            )*
        }
        mod ovs {
            $(
                #[test]
                #[ignore = "needs root"]
                fn $test() {
                    super::$test(contiv_netplugin::testbed::TestDatapath::Ovs)
                }
            )*
        }
    };
}

/// Lines of host `h`'s OVS (its integration bridge's flow dump and the interface list) that
/// hold `needle` as a whole word (`10.1.1.4` is not in `10.1.1.40`).
pub fn ovs_mentions(c: &Cluster, h: usize, needle: &str) -> Vec<String> {
    let Some(ovs) = c.ovs(h) else {
        return vec![];
    };
    let text = format!(
        "{}\n{}",
        ovs.dump_flows().expect("dump-flows"),
        ovs.ports().expect("list interface")
    );
    text.lines()
        .filter(|l| has_word(l, needle))
        .map(str::to_string)
        .collect()
}

/// Whether `text` holds `needle` as a whole word.
pub fn has_word(text: &str, needle: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '.';
    text.match_indices(needle).any(|(i, _)| {
        let before = text[..i].chars().next_back().is_none_or(|c| !word(c));
        let after = text[i + needle.len()..]
            .chars()
            .next()
            .is_none_or(|c| !word(c));
        before && after
    })
}

/// Whether host `h` holds forwarding state for address `ip` in tenant `tenant`: a neighbour
/// entry in its tenant namespace (Linux), flows on its bridge (OVS).
pub fn host_knows(c: &Cluster, h: usize, tenant: &str, ip: &str) -> bool {
    match c.datapath() {
        TestDatapath::Linux => neigh_has(&c.tenant_ns(h, tenant), ip),
        TestDatapath::Ovs => !ovs_mentions(c, h, ip).is_empty(),
    }
}
