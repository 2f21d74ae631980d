//! The agent's view of netmaster: the [`Netmaster`] trait (registration, the state snapshot and
//! change stream, endpoint create/delete) and its HTTP implementation [`HttpNetmaster`].
//!
//! Every call is blocking; callers run them on their own threads (the follower, the heartbeat,
//! the blocking pool of the CNI server). Errors say whether netmaster was unreachable (a CNI
//! "try again later") or answered a refusal (with its HTTP status and message).

use std::io::BufRead;
use std::ops::ControlFlow;
use std::time::Duration;

use contiv_api::agent::{AgentEvent, AgentSnapshot, NodeInfo};
use contiv_api::plugin::{
    AllocAddressRequest, AllocAddressResponse, CreateEndpointRequest, DeleteEndpointRequest,
    EndpointResponse, ReleaseAddressRequest,
};
use contiv_api::policy::PolicyReport;
use contiv_api::EndpointState;

/// Why a netmaster call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NmError {
    /// No answer (connection refused, timeout, broken stream).
    #[error("netmaster {url} unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    /// netmaster answered with an error status.
    #[error("netmaster refused {op}: {message} (http {status})")]
    Refused {
        op: String,
        status: u16,
        message: String,
    },
    /// netmaster answered something that is not the protocol.
    #[error("netmaster answered {op} with an invalid body: {reason}")]
    Protocol { op: String, reason: String },
}

impl NmError {
    /// True for "endpoint ... not found" answers to deletes (success for an idempotent delete).
    pub fn is_not_found(&self) -> bool {
        match self {
            NmError::Refused {
                status, message, ..
            } => *status == 404 || message.contains("not found"),
            _ => false,
        }
    }
}

/// How a watch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEnd {
    /// netmaster no longer holds the events after the requested revision: take a new snapshot.
    Resync,
    /// The stream ended or broke (reconnect and resume from the last revision seen).
    Disconnected(String),
    /// The callback asked to stop.
    Stopped,
}

/// Calls the agent makes to netmaster. Implementations are shared across threads.
pub trait Netmaster: Send + Sync {
    /// `POST /plugin/registerNode` (also the heartbeat).
    fn register_node(&self, node: &NodeInfo) -> Result<(), NmError>;
    /// `GET /plugin/agentState`.
    fn snapshot(&self) -> Result<AgentSnapshot, NmError>;
    /// `GET /plugin/agentWatch?after=REV`: calls `on_event` for every event (keepalives
    /// included) until the stream ends, breaks, asks for a resync or `on_event` breaks.
    fn watch(
        &self,
        after: u64,
        on_event: &mut dyn FnMut(AgentEvent) -> ControlFlow<()>,
    ) -> WatchEnd;
    /// `POST /plugin/createEndpoint` (idempotent at netmaster): the endpoint, and netmaster's
    /// revision when the request arrived (0 when it does not say).
    fn create_endpoint(&self, req: &CreateEndpointRequest)
        -> Result<(EndpointState, u64), NmError>;
    /// `POST /plugin/deleteEndpoint`; an unknown endpoint is success.
    fn delete_endpoint(&self, req: &DeleteEndpointRequest) -> Result<(), NmError>;
    /// `POST /plugin/policyReport`: the revision whose policy this host enforces, and counters.
    fn policy_report(&self, report: &PolicyReport) -> Result<(), NmError>;
    /// `POST /plugin/allocAddress`: an address reserved without an endpoint (Docker's IPAM);
    /// a later `createEndpoint` naming it claims it. Not idempotent: every call reserves one.
    fn alloc_address(&self, req: &AllocAddressRequest) -> Result<AllocAddressResponse, NmError> {
        Err(NmError::Refused {
            op: "/plugin/allocAddress".into(),
            status: 501,
            message: format!("not implemented by this client ({})", req.network_id),
        })
    }
    /// `POST /plugin/releaseAddress`: frees an address reserved by `alloc_address` and never
    /// claimed (netmaster refuses one an endpoint holds).
    fn release_address(&self, req: &ReleaseAddressRequest) -> Result<(), NmError> {
        Err(NmError::Refused {
            op: "/plugin/releaseAddress".into(),
            status: 501,
            message: format!("not implemented by this client ({})", req.network_id),
        })
    }
}

/// A watch stream that stays silent this long is considered dead (netmaster sends a keepalive
/// every 5 s).
const WATCH_IDLE: Duration = Duration::from_secs(15);
/// Largest snapshot accepted.
const MAX_SNAPSHOT: u64 = 256 << 20;

/// netmaster over HTTP or HTTPS (`http(s)://host:port`).
pub struct HttpNetmaster {
    base: String,
    calls: ureq::Agent,
    stream: ureq::Agent,
}

/// Idle keep-alive connections to netmaster kept for calls.
const IDLE_CONNECTIONS: usize = 64;

impl HttpNetmaster {
    pub fn new(url: &str) -> Self {
        Self::with_tls(url, None)
    }

    /// A client of `url` (`http://` or `https://`); `tls` says whom to trust and which client
    /// certificate proves this host.
    pub fn with_tls(url: &str, tls: Option<ureq::tls::TlsConfig>) -> Self {
        let base = url.trim_end_matches('/').to_string();
        // Keep as many idle connections as CNI calls may run at once (ureq keeps 3 per host by
        // default: a burst of concurrent ADDs then opened, and closed, a TCP connection each).
        let mut calls = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(3)))
            .timeout_global(Some(Duration::from_secs(15)))
            .max_idle_connections(IDLE_CONNECTIONS)
            .max_idle_connections_per_host(IDLE_CONNECTIONS);
        let mut stream = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(3)))
            .timeout_per_read(Some(WATCH_IDLE));
        if let Some(tls) = tls {
            calls = calls.tls_config(tls.clone());
            stream = stream.tls_config(tls);
        }
        let (calls, stream) = (calls.build().into(), stream.build().into());
        HttpNetmaster {
            base,
            calls,
            stream,
        }
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> NmError {
        NmError::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        }
    }

    /// POSTs `body` as JSON; returns the body text of a 2xx answer.
    fn post<T: serde::Serialize>(&self, op: &str, body: &T) -> Result<String, NmError> {
        let json = serde_json::to_string(body).map_err(|e| NmError::Protocol {
            op: op.into(),
            reason: e.to_string(),
        })?;
        let resp = self
            .calls
            .post(format!("{}{op}", self.base))
            .header("Content-Type", "application/json")
            .header("Accept", "application/problem+json")
            .send(json);
        let mut resp = resp.map_err(|e| self.unreachable(e))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| self.unreachable(e))?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        Err(NmError::Refused {
            op: op.into(),
            status,
            message: problem_message(&text),
        })
    }
}

/// The human message of a problem+json body (`detail`, else `title`), else the text itself.
fn problem_message(text: &str) -> String {
    let v: Option<serde_json::Value> = serde_json::from_str(text).ok();
    let pick = |k: &str| {
        v.as_ref()
            .and_then(|v| v.get(k))
            .and_then(|d| d.as_str())
            .map(str::to_string)
    };
    pick("detail")
        .or_else(|| pick("title"))
        .unwrap_or_else(|| text.trim().to_string())
}

fn decode<T: serde::de::DeserializeOwned>(op: &str, text: &str) -> Result<T, NmError> {
    serde_json::from_str(text).map_err(|e| NmError::Protocol {
        op: op.into(),
        reason: e.to_string(),
    })
}

impl Netmaster for HttpNetmaster {
    fn register_node(&self, node: &NodeInfo) -> Result<(), NmError> {
        self.post("/plugin/registerNode", node).map(|_| ())
    }

    fn snapshot(&self) -> Result<AgentSnapshot, NmError> {
        let op = "/plugin/agentState";
        let mut resp = self
            .calls
            .get(format!("{}{op}", self.base))
            .call()
            .map_err(|e| self.unreachable(e))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_SNAPSHOT)
            .read_to_string()
            .map_err(|e| self.unreachable(e))?;
        if status != 200 {
            return Err(NmError::Refused {
                op: op.into(),
                status,
                message: problem_message(&text),
            });
        }
        decode(op, &text)
    }

    fn watch(
        &self,
        after: u64,
        on_event: &mut dyn FnMut(AgentEvent) -> ControlFlow<()>,
    ) -> WatchEnd {
        let url = format!("{}/plugin/agentWatch?after={after}", self.base);
        let resp = match self.stream.get(url).call() {
            Ok(r) if r.status().as_u16() == 200 => r,
            Ok(r) => return WatchEnd::Disconnected(format!("http {}", r.status())),
            Err(e) => return WatchEnd::Disconnected(e.to_string()),
        };
        // Connected: tell the caller at once (the first real line may be 5 s away).
        let connected = AgentEvent {
            revision: after,
            ..Default::default()
        };
        if on_event(connected).is_break() {
            return WatchEnd::Stopped;
        }
        let reader = std::io::BufReader::new(resp.into_body().into_reader());
        for line in reader.lines() {
            let line = match line {
                Ok(l) if l.trim().is_empty() => continue,
                Ok(l) => l,
                Err(e) => return WatchEnd::Disconnected(e.to_string()),
            };
            let ev: AgentEvent = match serde_json::from_str(&line) {
                Ok(ev) => ev,
                Err(e) => return WatchEnd::Disconnected(format!("bad event line: {e}")),
            };
            if ev.resync {
                return WatchEnd::Resync;
            }
            if on_event(ev).is_break() {
                return WatchEnd::Stopped;
            }
        }
        WatchEnd::Disconnected("stream ended".into())
    }

    fn create_endpoint(
        &self,
        req: &CreateEndpointRequest,
    ) -> Result<(EndpointState, u64), NmError> {
        let op = "/plugin/createEndpoint";
        let text = self.post(op, req)?;
        decode::<EndpointResponse>(op, &text).map(|r| (r.endpoint_config, r.revision))
    }

    fn delete_endpoint(&self, req: &DeleteEndpointRequest) -> Result<(), NmError> {
        match self.post("/plugin/deleteEndpoint", req) {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn policy_report(&self, report: &PolicyReport) -> Result<(), NmError> {
        self.post("/plugin/policyReport", report).map(|_| ())
    }

    fn alloc_address(&self, req: &AllocAddressRequest) -> Result<AllocAddressResponse, NmError> {
        let op = "/plugin/allocAddress";
        let text = self.post(op, req)?;
        decode::<AllocAddressResponse>(op, &text)
    }

    fn release_address(&self, req: &ReleaseAddressRequest) -> Result<(), NmError> {
        self.post("/plugin/releaseAddress", req).map(|_| ())
    }
}

/// Several netmasters (`--netmaster URL,URL,...`): any of them serves the agent (followers forward
/// writes to the leader and stream from their followed memory, with the store's revisions, so a
/// stream resumes on another netmaster where it stopped). Calls go to the netmaster that answered
/// last and move on to the next one when it does not answer or cannot serve (503: no leader yet,
/// store without quorum), within a bounded time; other refusals are final. With one URL there is
/// no retry here: the caller's own retries apply, as before.
pub struct FailoverNetmaster {
    members: Vec<HttpNetmaster>,
    current: std::sync::atomic::AtomicUsize,
    budget: Duration,
}

/// How long one call keeps trying the netmasters before it gives up (a CNI ADD then fails with
/// "try again later" and leaves nothing behind).
const FAILOVER_BUDGET: Duration = Duration::from_secs(10);

fn retry_elsewhere(e: &NmError) -> bool {
    matches!(e, NmError::Unreachable { .. }) || matches!(e, NmError::Refused { status: 503, .. })
}

impl FailoverNetmaster {
    /// `urls`: one or more netmaster base URLs (comma separated on the command line).
    pub fn new(urls: &[String]) -> Self {
        Self::with_tls(urls, None)
    }

    /// The same over https with `tls` (see [`HttpNetmaster::with_tls`]).
    pub fn with_tls(urls: &[String], tls: Option<ureq::tls::TlsConfig>) -> Self {
        FailoverNetmaster {
            members: urls
                .iter()
                .map(|u| HttpNetmaster::with_tls(u, tls.clone()))
                .collect(),
            current: std::sync::atomic::AtomicUsize::new(0),
            budget: FAILOVER_BUDGET,
        }
    }

    /// Parses `--netmaster`: comma-separated URLs, blanks ignored.
    pub fn parse_urls(arg: &str) -> Vec<String> {
        arg.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn call<T>(&self, f: impl Fn(&HttpNetmaster) -> Result<T, NmError>) -> Result<T, NmError> {
        use std::sync::atomic::Ordering;
        let n = self.members.len();
        if n == 0 {
            return Err(NmError::Unreachable {
                url: String::new(),
                reason: "no netmaster URL configured".into(),
            });
        }
        let start = self.current.load(Ordering::Relaxed) % n;
        if n == 1 {
            return f(&self.members[0]);
        }
        let deadline = std::time::Instant::now() + self.budget;
        let mut pause = Duration::from_millis(100);
        let mut attempt = 0usize;
        let mut failed_this_round = 0usize;
        loop {
            let i = (start + attempt) % n;
            match f(&self.members[i]) {
                Ok(v) => {
                    self.current.store(i, Ordering::Relaxed);
                    return Ok(v);
                }
                Err(e) if retry_elsewhere(&e) => {
                    attempt += 1;
                    failed_this_round += 1;
                    if std::time::Instant::now() >= deadline {
                        return Err(e);
                    }
                    if failed_this_round == n {
                        failed_this_round = 0;
                        // Every netmaster failed once: an election or a store outage is under
                        // way; wait a little before the next round.
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_secs(1));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Netmaster for FailoverNetmaster {
    fn register_node(&self, node: &NodeInfo) -> Result<(), NmError> {
        self.call(|m| m.register_node(node))
    }
    fn snapshot(&self) -> Result<AgentSnapshot, NmError> {
        self.call(|m| m.snapshot())
    }
    fn watch(
        &self,
        after: u64,
        on_event: &mut dyn FnMut(AgentEvent) -> ControlFlow<()>,
    ) -> WatchEnd {
        use std::sync::atomic::Ordering;
        let n = self.members.len().max(1);
        let i = self.current.load(Ordering::Relaxed) % n;
        let Some(m) = self.members.get(i) else {
            return WatchEnd::Disconnected("no netmaster URL configured".into());
        };
        let end = m.watch(after, on_event);
        if matches!(end, WatchEnd::Disconnected(_)) {
            // The follower reconnects (from the revision it reached): to the next netmaster.
            self.current.store((i + 1) % n, Ordering::Relaxed);
        }
        end
    }
    fn create_endpoint(
        &self,
        req: &CreateEndpointRequest,
    ) -> Result<(EndpointState, u64), NmError> {
        // Idempotent at netmaster: a retry after a lost answer gets the same endpoint.
        self.call(|m| m.create_endpoint(req))
    }
    fn delete_endpoint(&self, req: &DeleteEndpointRequest) -> Result<(), NmError> {
        self.call(|m| m.delete_endpoint(req))
    }
    fn policy_report(&self, report: &PolicyReport) -> Result<(), NmError> {
        self.call(|m| m.policy_report(report))
    }
    fn alloc_address(&self, req: &AllocAddressRequest) -> Result<AllocAddressResponse, NmError> {
        self.call(|m| m.alloc_address(req))
    }
    fn release_address(&self, req: &ReleaseAddressRequest) -> Result<(), NmError> {
        self.call(|m| m.release_address(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_messages_and_not_found() {
        assert_eq!(
            problem_message(r#"{"title":"Not Found","detail":"endpoint x not found"}"#),
            "endpoint x not found"
        );
        assert_eq!(problem_message("network not found\n"), "network not found");
        let e = NmError::Refused {
            op: "d".into(),
            status: 500,
            message: "endpoint n.t-c not found".into(),
        };
        assert!(e.is_not_found());
        let u = HttpNetmaster::new("http://127.0.0.1:1/");
        assert!(matches!(u.snapshot(), Err(NmError::Unreachable { .. })));
    }

    #[test]
    fn failover_tries_every_netmaster_within_its_budget() {
        assert_eq!(
            FailoverNetmaster::parse_urls(" http://a:1, ,http://b:2 "),
            vec!["http://a:1".to_string(), "http://b:2".to_string()]
        );
        let mut f = FailoverNetmaster::new(&[
            "http://127.0.0.1:1".to_string(),
            "http://127.0.0.1:2".to_string(),
        ]);
        f.budget = Duration::from_millis(300);
        let t = std::time::Instant::now();
        assert!(matches!(f.snapshot(), Err(NmError::Unreachable { .. })));
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        assert!(!retry_elsewhere(&NmError::Refused {
            op: "x".into(),
            status: 409,
            message: "conflict".into()
        }));
    }
}
