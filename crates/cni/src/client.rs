//! The plugin's side of the agent protocol: the [`AgentClient`] trait and its unix-socket HTTP
//! implementation [`UnixAgentClient`].
//!
//! The trait keeps the CNI logic testable with an in-memory fake; the real client opens one
//! connection per call, with a timeout on reads and writes.

use std::io::{self, BufReader};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::agent_api::{
    AgentAck, AgentAddRequest, AgentAddResponse, AgentCheckRequest, AgentDelRequest, AgentError,
    AgentGcRequest, AgentStatusRequest, PATH_ADD, PATH_CHECK, PATH_DEL, PATH_GC, PATH_STATUS,
};
use crate::http;

/// Why an agent call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentCallError {
    /// The agent could not be reached or did not answer (not running, socket missing, timeout).
    #[error("contiv agent unavailable: {0}")]
    Unavailable(String),
    /// The agent answered with a CNI error.
    #[error("contiv agent error {}: {}", .0.code, .0.msg)]
    Agent(AgentError),
    /// The agent answered something that is not the protocol.
    #[error("bad answer from contiv agent: {0}")]
    Protocol(String),
}

/// The calls the plugin makes to the host agent.
pub trait AgentClient {
    /// Attach a container (idempotent per container id and ifname).
    fn add(&self, req: &AgentAddRequest) -> Result<AgentAddResponse, AgentCallError>;
    /// Detach a container (idempotent).
    fn del(&self, req: &AgentDelRequest) -> Result<(), AgentCallError>;
    /// The agent's current view of an attachment, after its own checks.
    fn check(&self, req: &AgentCheckRequest) -> Result<AgentAddResponse, AgentCallError>;
    /// Whether ADD can be serviced.
    fn status(&self, req: &AgentStatusRequest) -> Result<(), AgentCallError>;
    /// Release attachments not in the valid list.
    fn gc(&self, req: &AgentGcRequest) -> Result<(), AgentCallError>;
}

/// HTTP/1.1 over a unix socket, one connection per call.
#[derive(Debug, Clone)]
pub struct UnixAgentClient {
    socket: PathBuf,
    timeout: Duration,
}

impl UnixAgentClient {
    /// A client of the agent listening on `socket`; every read/write waits at most `timeout`.
    pub fn new(socket: impl Into<PathBuf>, timeout: Duration) -> Self {
        Self {
            socket: socket.into(),
            timeout,
        }
    }

    fn unavailable(&self, what: &str, e: &io::Error) -> AgentCallError {
        AgentCallError::Unavailable(format!("{what} {}: {e}", self.socket.display()))
    }

    fn exchange(&self, path: &str, body: &[u8]) -> Result<http::Message, AgentCallError> {
        let mut stream = UnixStream::connect(&self.socket)
            .map_err(|e| self.unavailable("cannot connect to", &e))?;
        let timeout = Some(self.timeout.max(Duration::from_millis(1)));
        stream
            .set_read_timeout(timeout)
            .and_then(|()| stream.set_write_timeout(timeout))
            .map_err(|e| self.unavailable("cannot set timeouts on", &e))?;
        http::write_request(&mut stream, path, body)
            .map_err(|e| self.unavailable("cannot send to", &e))?;
        http::read_response(&mut BufReader::new(stream)).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                AgentCallError::Unavailable(format!(
                    "no answer from {} within {:?}",
                    self.socket.display(),
                    self.timeout
                ))
            }
            io::ErrorKind::InvalidData => AgentCallError::Protocol(e.to_string()),
            _ => self.unavailable("connection lost with", &e),
        })
    }

    fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
    ) -> Result<Resp, AgentCallError> {
        let body = serde_json::to_vec(req)
            .map_err(|e| AgentCallError::Protocol(format!("encode request: {e}")))?;
        let resp = self.exchange(path, &body)?;
        decode_answer(path, resp.status, &resp.body)
    }
}

/// Turns a status and body into the typed answer or the agent's error.
fn decode_answer<Resp: DeserializeOwned>(
    path: &str,
    status: u16,
    body: &[u8],
) -> Result<Resp, AgentCallError> {
    if (200..300).contains(&status) {
        let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            body
        };
        return serde_json::from_slice(body).map_err(|e| {
            AgentCallError::Protocol(format!("{path}: undecodable success body: {e}"))
        });
    }
    match serde_json::from_slice::<AgentError>(body) {
        Ok(err) => Err(AgentCallError::Agent(err)),
        Err(_) => Err(AgentCallError::Protocol(format!(
            "{path}: HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(512)]).trim()
        ))),
    }
}

impl AgentClient for UnixAgentClient {
    fn add(&self, req: &AgentAddRequest) -> Result<AgentAddResponse, AgentCallError> {
        self.call(PATH_ADD, req)
    }

    fn del(&self, req: &AgentDelRequest) -> Result<(), AgentCallError> {
        self.call::<_, AgentAck>(PATH_DEL, req).map(drop)
    }

    fn check(&self, req: &AgentCheckRequest) -> Result<AgentAddResponse, AgentCallError> {
        self.call(PATH_CHECK, req)
    }

    fn status(&self, req: &AgentStatusRequest) -> Result<(), AgentCallError> {
        self.call::<_, AgentAck>(PATH_STATUS, req).map(drop)
    }

    fn gc(&self, req: &AgentGcRequest) -> Result<(), AgentCallError> {
        self.call::<_, AgentAck>(PATH_GC, req).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_success_error_and_garbage() {
        let ok: AgentAck = decode_answer("/x", 204, b"").expect("empty ok");
        assert_eq!(ok, AgentAck {});
        let err = decode_answer::<AgentAck>("/x", 404, br#"{"code":3,"msg":"unknown container"}"#);
        assert_eq!(
            err,
            Err(AgentCallError::Agent(AgentError::new(
                3,
                "unknown container"
            )))
        );
        let err = decode_answer::<AgentAck>("/x", 502, b"bad gateway");
        assert!(
            matches!(err, Err(AgentCallError::Protocol(m)) if m.contains("502") && m.contains("bad gateway"))
        );
        let err = decode_answer::<AgentAddResponse>("/x", 200, b"{}");
        assert!(matches!(err, Err(AgentCallError::Protocol(_))));
    }

    #[test]
    fn missing_socket_is_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let client = UnixAgentClient::new(dir.path().join("none.sock"), Duration::from_secs(1));
        let err = client.status(&AgentStatusRequest::default());
        assert!(matches!(err, Err(AgentCallError::Unavailable(m)) if m.contains("none.sock")));
    }

    #[test]
    fn silent_agent_times_out_as_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("silent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let client = UnixAgentClient::new(&path, Duration::from_millis(100));
        let err = client.gc(&AgentGcRequest::default());
        assert!(
            matches!(&err, Err(AgentCallError::Unavailable(m)) if m.contains("no answer")),
            "{err:?}"
        );
    }
}
