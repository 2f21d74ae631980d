//! Request-level limits, one layer in front of every route: the path's length (414), the body's
//! size (413, before anything reads it), requests per second per token or client (429 with
//! `Retry-After`) and objects per tenant (409 when a create would pass the count). A refused
//! request never reaches a handler, so it changes nothing.
//!
//! Connection-level limits (open connections, head size and time) are in [`super::serve`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use parking_lot::Mutex;

use super::listen::Peer;
use super::AppState;
use crate::state::State as NetState;

/// The limits a request meets (from `--max-body-bytes`, `--max-path-bytes`, `--rate-limit`,
/// `--max-objects-per-tenant`; 0 turns the last two off).
#[derive(Debug, Clone)]
pub struct RequestLimits {
    pub max_body_bytes: usize,
    pub max_path_bytes: usize,
    pub rate_per_sec: u32,
    pub max_objects_per_tenant: usize,
}

/// Wraps the finished router with the limit layers (outermost, so nothing reads a body or
/// spends work before they judge the request).
pub fn apply(router: Router, app: AppState, limits: RequestLimits) -> Router {
    let guard = Arc::new(Guard {
        buckets: Buckets::new(limits.rate_per_sec),
        limits,
        app,
    });
    let body_limit = guard.limits.max_body_bytes;
    router
        // The `Bytes` and `Json` extractors stop reading a chunked body past the limit (413).
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(guard, judge))
}

struct Guard {
    limits: RequestLimits,
    buckets: Buckets,
    app: AppState,
}

fn refuse(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

async fn judge(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let limits = &guard.limits;
    let path_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if path_len > limits.max_path_bytes {
        return refuse(
            StatusCode::URI_TOO_LONG,
            format!(
                "request path of {path_len} bytes is longer than {} (--max-path-bytes)",
                limits.max_path_bytes
            ),
        );
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > limits.max_body_bytes as u64) {
        if n <= DRAIN_MAX {
            drain(req.into_body()).await;
        }
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body of {n} bytes is larger than {} (--max-body-bytes)",
                limits.max_body_bytes
            ),
        );
    }
    if let Err(wait) = guard.buckets.take(&client_key(&req)) {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        let mut resp = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "more than {} requests per second (--rate-limit): retry in {secs} s",
                limits.rate_per_sec
            ),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return resp;
    }
    if let Some(msg) = over_tenant_quota(&req, &guard) {
        return refuse(StatusCode::CONFLICT, msg);
    }
    next.run(req).await
}

/// Most of a refused body read and dropped, so that an honest client still writing it sees the
/// 413 rather than a connection reset (the kernel resets a connection closed with unread data).
const DRAIN_MAX: u64 = 8 << 20;
/// Longest time spent draining a refused body.
const DRAIN_TIME: Duration = Duration::from_secs(2);

async fn drain(body: axum::body::Body) {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut read = 0u64;
        while let Some(Ok(chunk)) = stream.next().await {
            read += chunk.len() as u64;
            if read > DRAIN_MAX {
                break;
            }
        }
    })
    .await;
}

/// Whom a request's rate is counted for: its token, or else the client's address.
fn client_key(req: &Request) -> ClientKey {
    if let Some(token) = req.headers().get("x-auth-token") {
        return ClientKey::Token(token.as_bytes().to_vec());
    }
    let ip = req
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|c| c.0.addr.ip());
    ClientKey::Addr(ip)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ClientKey {
    Token(Vec<u8>),
    Addr(Option<IpAddr>),
}

/// Token buckets, one per client: `rate` tokens a second, at most `rate` saved up.
struct Buckets {
    rate: f64,
    map: Mutex<HashMap<ClientKey, (f64, Instant)>>,
}

/// Clients remembered before full buckets are forgotten (a full bucket is the default).
const MAX_CLIENTS: usize = 10_000;

impl Buckets {
    fn new(rate: u32) -> Self {
        Buckets {
            rate: f64::from(rate),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how long until one is there.
    fn take(&self, key: &ClientKey) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut map = self.map.lock();
        if map.len() >= MAX_CLIENTS && !map.contains_key(key) {
            let rate = self.rate;
            map.retain(|_, (tokens, at)| *tokens + at.elapsed().as_secs_f64() * rate < rate);
        }
        let (tokens, at) = map.entry(key.clone()).or_insert((self.rate, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.rate);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

/// A message when `req` creates an object in a tenant that already holds the most it may.
/// Updates of existing objects always pass.
fn over_tenant_quota(req: &Request, guard: &Guard) -> Option<String> {
    let max = guard.limits.max_objects_per_tenant;
    if max == 0 || !matches!(*req.method(), Method::POST | Method::PUT) {
        return None;
    }
    let rest = req.uri().path().strip_prefix("/api/v1/")?;
    let mut parts = rest.trim_end_matches('/').split('/');
    let (plural, key) = (parts.next()?, parts.next()?);
    if parts.next().is_some() || plural == "auth_proxy" || plural == "inspect" {
        return None;
    }
    let tenant = key.split_once(':')?.0;
    let held = guard.app.engine.read(|st| {
        if exists(st, key) {
            None
        } else {
            Some(tenant_objects(st, tenant))
        }
    })?;
    (held >= max).then(|| {
        format!(
            "tenant {tenant} already holds {held} objects, the most allowed \
             (--max-objects-per-tenant {max}): nothing was created"
        )
    })
}

/// Whether any tenant-scoped table holds `key` (an update, not a create).
fn exists(st: &NetState, key: &str) -> bool {
    st.networks.contains_key(key)
        || st.epgs.contains_key(key)
        || st.policies.contains_key(key)
        || st.rules.contains_key(key)
        || st.app_profiles.contains_key(key)
        || st.service_lbs.contains_key(key)
        || st.net_profiles.contains_key(key)
        || st.ext_contracts.contains_key(key)
}

/// The objects of `tenant` in every tenant-scoped table (keys `tenant:...`).
fn tenant_objects(st: &NetState, tenant: &str) -> usize {
    let prefix = format!("{tenant}:");
    fn count<V>(m: &std::collections::BTreeMap<String, V>, prefix: &str) -> usize {
        m.range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .count()
    }
    count(&st.networks, &prefix)
        + count(&st.epgs, &prefix)
        + count(&st.policies, &prefix)
        + count(&st.rules, &prefix)
        + count(&st.app_profiles, &prefix)
        + count(&st.service_lbs, &prefix)
        + count(&st.net_profiles, &prefix)
        + count(&st.ext_contracts, &prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_says_when() {
        let b = Buckets::new(3);
        let k = ClientKey::Addr(None);
        for _ in 0..3 {
            assert!(b.take(&k).is_ok());
        }
        let wait = b.take(&k).unwrap_err();
        assert!(wait <= Duration::from_millis(334), "{wait:?}");
        // Another client has its own bucket.
        assert!(b.take(&ClientKey::Token(b"t".to_vec())).is_ok());
    }

    #[test]
    fn no_rate_means_no_limit() {
        let b = Buckets::new(0);
        for _ in 0..1000 {
            assert!(b.take(&ClientKey::Addr(None)).is_ok());
        }
    }
}
