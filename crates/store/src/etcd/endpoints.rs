//! Endpoint pinning with fail-over. etcd-client's balanced channel spreads requests over every
//! endpoint, dead ones included: measured here with one of three members killed, ~1 request in 4
//! failed at once ("tcp connect error"); with one frozen (SIGSTOP), ~1 in 4 hung until the request
//! timeout. So the store keeps one client per endpoint and sends every request to the *current*
//! one; when that fails for lack of an answer, the current endpoint moves on (like etcd's own Go
//! client pins one endpoint), and the request is retried on the next endpoint when that is safe:
//! always for reads, and for writes only when etcd cannot have seen them (the connection was
//! refused, or the member answered "no leader" before processing anything).

use std::sync::atomic::{AtomicUsize, Ordering};

use etcd_client::{Client, ConnectOptions};
use tonic::Code;

use super::map_err;
use crate::error::StoreError;

/// One client per endpoint and the index of the one in use.
pub(super) struct Endpoints {
    clients: Vec<Client>,
    urls: Vec<String>,
    current: AtomicUsize,
}

impl Endpoints {
    /// Clients for `urls` (connections are made lazily, on first use).
    pub async fn new(urls: &[String], options: &ConnectOptions) -> Result<Self, StoreError> {
        let mut clients = Vec::with_capacity(urls.len());
        for url in urls {
            let client = Client::connect([url], Some(options.clone()))
                .await
                .map_err(|e| map_err("connect", url, e))?;
            clients.push(client);
        }
        Ok(Endpoints {
            clients,
            urls: urls.to_vec(),
            current: AtomicUsize::new(0),
        })
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// The endpoint in use: its index and a client for it.
    pub fn current(&self) -> (usize, Client) {
        let i = self.current.load(Ordering::Relaxed) % self.clients.len();
        (i, self.clients[i].clone())
    }

    /// URL of endpoint `i`.
    pub fn url(&self, i: usize) -> &str {
        &self.urls[i]
    }

    /// Endpoint `i` did not answer: move to the next one, unless another request already moved.
    pub fn failed(&self, i: usize) {
        let next = (i + 1) % self.clients.len();
        let _ = self
            .current
            .compare_exchange(i, next, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// Why an etcd call got no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unanswered {
    /// The request did not reach etcd's state machine (connection refused, or the member refused
    /// it for lack of a leader): safe to send again elsewhere.
    NotSent,
    /// The request may have been applied (timeout, connection lost mid-request).
    Unknown,
}

/// Classifies an etcd client error: `None` when etcd answered (the error is its answer).
pub(super) fn unanswered(e: &etcd_client::Error) -> Option<Unanswered> {
    use etcd_client::Error as E;
    match e {
        E::GRpcStatus(s) => {
            let msg = s.message();
            if ["connect error", "error trying to connect", "no leader"]
                .iter()
                .any(|m| msg.contains(m))
            {
                return Some(Unanswered::NotSent);
            }
            let lost = matches!(
                s.code(),
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted
            ) || [
                "timed out",
                "leader changed",
                "connection",
                "transport error",
                "http2 error",
                "h2 protocol error",
            ]
            .iter()
            .any(|m| msg.contains(m));
            lost.then_some(Unanswered::Unknown)
        }
        E::TransportError(_) | E::IoError(_) => Some(Unanswered::Unknown),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(s: tonic::Status) -> etcd_client::Error {
        etcd_client::Error::GRpcStatus(s)
    }

    #[test]
    fn classifies_what_etcd_never_saw() {
        let refused = status(tonic::Status::unavailable("tcp connect error"));
        assert_eq!(unanswered(&refused), Some(Unanswered::NotSent));
        let no_leader = status(tonic::Status::unavailable("etcdserver: no leader"));
        assert_eq!(unanswered(&no_leader), Some(Unanswered::NotSent));
        let cut = status(tonic::Status::unknown("transport error"));
        assert_eq!(unanswered(&cut), Some(Unanswered::Unknown));
        let timeout = status(tonic::Status::cancelled("Timeout expired"));
        assert_eq!(unanswered(&timeout), Some(Unanswered::Unknown));
        let answer = status(tonic::Status::not_found(
            "etcdserver: requested lease not found",
        ));
        assert_eq!(unanswered(&answer), None);
    }
}
