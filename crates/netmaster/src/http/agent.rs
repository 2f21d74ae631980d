//! Agent routes: node registration/heartbeat, the state snapshot and the change stream
//! (newline-delimited JSON, one `AgentEvent` per line, keepalives when idle).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use contiv_api::agent::{AgentEvent, NodeInfo};
use futures::stream::{self, Stream};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::reply::{ErrorStyle, Reply};
use super::AppState;
use crate::error::ApiError;

/// Idle streams send a keepalive this often, so both ends notice a dead peer.
const KEEPALIVE: Duration = Duration::from_secs(5);

pub async fn register_node(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Reply {
    let style = ErrorStyle::from_headers(&headers);
    let result = match serde_json::from_slice::<NodeInfo>(&body) {
        Ok(node) => app.engine.register_node(node).await,
        Err(e) => Err(ApiError::bad_request(format!("invalid request body: {e}"))),
    };
    Reply::json(style, result)
}

pub async fn agent_state(State(app): State<AppState>) -> Reply {
    Reply::json(ErrorStyle::Contiv, Ok(app.engine.agent_snapshot()))
}

#[derive(Debug, Deserialize)]
pub struct WatchQuery {
    #[serde(default)]
    after: u64,
}

fn line(ev: &AgentEvent) -> Bytes {
    let mut v = serde_json::to_vec(ev).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

enum Phase {
    Backlog(
        std::vec::IntoIter<Arc<AgentEvent>>,
        tokio::sync::broadcast::Receiver<Arc<AgentEvent>>,
        u64,
    ),
    Live(tokio::sync::broadcast::Receiver<Arc<AgentEvent>>, u64),
    Done,
}

fn event_stream(phase: Phase) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    stream::unfold(phase, |phase| async move {
        match phase {
            Phase::Done => None,
            Phase::Backlog(mut it, rx, last) => match it.next() {
                Some(ev) => {
                    let rev = ev.revision;
                    Some((Ok(line(&ev)), Phase::Backlog(it, rx, rev)))
                }
                None => live_step(rx, last).await,
            },
            Phase::Live(rx, last) => live_step(rx, last).await,
        }
    })
}

async fn live_step(
    mut rx: tokio::sync::broadcast::Receiver<Arc<AgentEvent>>,
    last: u64,
) -> Option<(Result<Bytes, std::io::Error>, Phase)> {
    loop {
        match tokio::time::timeout(KEEPALIVE, rx.recv()).await {
            Err(_) => {
                let ka = AgentEvent {
                    revision: last,
                    ..Default::default()
                };
                return Some((Ok(line(&ka)), Phase::Live(rx, last)));
            }
            Ok(Ok(ev)) if ev.resync => {
                // netmaster reloaded its state: the agent takes a new snapshot.
                return Some((Ok(line(&ev)), Phase::Done));
            }
            Ok(Ok(ev)) if ev.revision <= last => continue, // already sent from the backlog
            Ok(Ok(ev)) => {
                let rev = ev.revision;
                return Some((Ok(line(&ev)), Phase::Live(rx, rev)));
            }
            Ok(Err(RecvError::Lagged(_))) => {
                // The agent fell too far behind: tell it to resync, then end the stream.
                let rs = AgentEvent {
                    revision: last,
                    resync: true,
                    ..Default::default()
                };
                return Some((Ok(line(&rs)), Phase::Done));
            }
            Ok(Err(RecvError::Closed)) => return None,
        }
    }
}

pub async fn agent_watch(State(app): State<AppState>, Query(q): Query<WatchQuery>) -> Response {
    let phase = match app.engine.agent_subscribe(q.after) {
        Some(sub) => Phase::Backlog(sub.backlog.into_iter(), sub.live, q.after),
        None => {
            let rs = AgentEvent {
                revision: q.after,
                resync: true,
                ..Default::default()
            };
            return ndjson(Body::from(line(&rs)));
        }
    };
    ndjson(Body::from_stream(event_stream(phase)))
}

fn ndjson(body: Body) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    r
}
