//! Watches of the etcd backend: one task per [`WatchStream`] reads an etcd watch and feeds the
//! stream through a bounded channel, one batch per revision.
//!
//! - **Start**: the etcd watch starts at `after + 1`. When that is in the past, a read at that
//!   revision tells whether etcd still has the history; if not, `watch` fails with
//!   [`StoreError::Compacted`] (its `oldest` from the compact revision etcd reports on the watch).
//! - **Batches**: etcd never splits one revision over two responses (without `fragment`), but one
//!   response may hold several revisions: they are split, in order. Delete events carry the
//!   deleting revision as `mod_revision`, no value, no lease and `create_revision` 0 (etcd's delete
//!   events do not carry it; asking for `prev_kv` would double the watch traffic).
//! - **Back-pressure**: the channel holds [`BUFFER`] batches; a consumer that does not read stops
//!   the task reading, and etcd keeps the events for it (etcd never drops a live watcher's
//!   events; it cancels it with a compact revision only if it falls behind a compaction, which
//!   becomes `Compacted`).
//! - **Broken connection**: the watch is re-created from the last delivered revision on any
//!   endpoint, with back-off, for up to `EtcdOptions::watch_retry`; then the stream yields
//!   `Unavailable` and ends.
//! - **Store dropped**: the stream delivers what etcd still sends of the revisions that existed
//!   when `watch` was called (the history "already taken"; stopping once no response came for
//!   [`DRAIN_IDLE`], at most [`DRAIN_MAX`]), then ends.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{EventType, WatchOptions, WatchRequestSender, WatchResponseStream};
use tokio::sync::{mpsc, watch as signal};
use tokio::time::Instant;

use super::endpoints::{unanswered, Endpoints};
use super::plan::{etcd_rev, KeyRange};
use super::{map_err, rev, to_kv, EtcdOptions, MAX_MESSAGE};
use crate::error::StoreError;
use crate::types::{EventKind, KeyValue, Revision, WatchEvent};
use crate::watch::WatchStream;

/// Batches buffered between the task and the consumer.
const BUFFER: usize = 1024;
/// After the store is dropped: end once etcd sent nothing for this long...
const DRAIN_IDLE: Duration = Duration::from_millis(250);
/// ... or after this long in any case.
const DRAIN_MAX: Duration = Duration::from_secs(2);

/// What a watch task needs from its store.
pub(super) struct WatchCtx {
    pub eps: Arc<Endpoints>,
    pub location: String,
    pub options: EtcdOptions,
    /// Closed (sender dropped) when the store is dropped.
    pub closed: signal::Receiver<()>,
}

/// An etcd watch just created.
struct Opened {
    /// Kept open: dropping it ends the gRPC stream.
    _sender: WatchRequestSender,
    responses: WatchResponseStream,
    /// Store revision when the watch was created.
    revision: Revision,
}

fn unavailable(ctx: &WatchCtx, msg: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("etcd watch at {}: {msg}", ctx.location))
}

/// Creates the etcd watch of `range` from `after + 1` on the current endpoint and waits for etcd to
/// confirm it; an endpoint that does not answer is left for the next one.
async fn open(ctx: &WatchCtx, range: &KeyRange, after: Revision) -> Result<Opened, StoreError> {
    let (i, client) = ctx.eps.current();
    let opened = open_on(ctx, client, range, after).await;
    if matches!(opened, Err(StoreError::Unavailable(_))) {
        ctx.eps.failed(i);
    }
    opened
}

async fn open_on(
    ctx: &WatchCtx,
    client: etcd_client::Client,
    range: &KeyRange,
    after: Revision,
) -> Result<Opened, StoreError> {
    let opts = WatchOptions::new()
        .with_range(range.end.clone())
        .with_start_revision(etcd_rev(after).saturating_add(1));
    let mut wc = client.watch_client().max_decoding_message_size(MAX_MESSAGE);
    let create = async {
        let (sender, mut responses) = wc.watch(range.start.clone(), Some(opts)).await?.split();
        let first = responses.message().await?;
        Ok::<_, etcd_client::Error>((sender, responses, first))
    };
    let (sender, responses, first) =
        match tokio::time::timeout(ctx.options.request_timeout, create).await {
            Err(_) => return Err(unavailable(ctx, "no answer when creating the watch")),
            Ok(Err(e)) => return Err(map_err("watch", &ctx.location, e)),
            Ok(Ok(created)) => created,
        };
    let Some(first) = first else {
        return Err(unavailable(ctx, "stream closed when creating the watch"));
    };
    if first.canceled() {
        if first.compact_revision() > 0 {
            return Err(compacted(after, first.compact_revision()));
        }
        return Err(unavailable(ctx, first.cancel_reason()));
    }
    let revision = first
        .header()
        .map(|h| rev(h.revision()))
        .ok_or_else(|| unavailable(ctx, "watch created without header"))?;
    Ok(Opened {
        _sender: sender,
        responses,
        revision,
    })
}

fn compacted(after: Revision, compact_revision: i64) -> StoreError {
    // etcd serves watches starting at the compact revision or later.
    StoreError::Compacted {
        requested: after,
        oldest: rev(compact_revision).saturating_sub(1),
    }
}

/// Starts a watch of `prefix` delivering every revision > `after` (see the module docs).
pub(super) async fn start(
    ctx: WatchCtx,
    prefix: &str,
    after: Revision,
) -> Result<WatchStream, StoreError> {
    let range = KeyRange::prefix(prefix);
    // Creating a watch is a read: try each endpoint once.
    let mut attempt = 1;
    let mut opened = loop {
        match open(&ctx, &range, after).await {
            Err(StoreError::Unavailable(_)) if attempt < ctx.eps.len() => attempt += 1,
            other => break other?,
        }
    };
    if after < opened.revision {
        check_history(&ctx, &range, after, &mut opened).await?;
    }
    let (tx, rx) = mpsc::channel(BUFFER);
    let task = Pump {
        caught_up_at: opened.revision,
        opened,
        range,
        last: after,
        tx,
        ctx,
    };
    tokio::spawn(task.run());
    Ok(WatchStream::from_channel(prefix, after, rx))
}

/// Fails with `Compacted` if etcd no longer has revision `after + 1` (a read at that revision
/// fails). The compact revision comes from the watch, which etcd cancels right after creating it.
async fn check_history(
    ctx: &WatchCtx,
    range: &KeyRange,
    after: Revision,
    opened: &mut Opened,
) -> Result<(), StoreError> {
    let (_, client) = ctx.eps.current();
    let mut kv = client.kv_client();
    let probe = kv.get(
        range.start.clone(),
        Some(
            etcd_client::GetOptions::new()
                .with_range(range.end.clone())
                .with_count_only()
                .with_revision(etcd_rev(after).saturating_add(1)),
        ),
    );
    let err = match tokio::time::timeout(ctx.options.request_timeout, probe).await {
        Err(_) => return Err(unavailable(ctx, "no answer when checking the history")),
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => e,
    };
    if unanswered(&err).is_some() || !err.to_string().contains("compacted") {
        return Err(map_err("watch", &ctx.location, err));
    }
    let deadline = Instant::now() + ctx.options.request_timeout;
    while let Ok(Ok(Some(resp))) =
        tokio::time::timeout_at(deadline, opened.responses.message()).await
    {
        if resp.canceled() && resp.compact_revision() > 0 {
            return Err(compacted(after, resp.compact_revision()));
        }
    }
    // etcd did not say where its history starts: the current revision is always a valid start.
    Err(StoreError::Compacted {
        requested: after,
        oldest: opened.revision,
    })
}

/// The task behind one stream.
struct Pump {
    ctx: WatchCtx,
    range: KeyRange,
    opened: Opened,
    /// Last revision delivered (or the `after` of the watch).
    last: Revision,
    /// Store revision when the watch was created: what the stream delivers after the store is
    /// dropped.
    caught_up_at: Revision,
    tx: mpsc::Sender<Result<Vec<WatchEvent>, StoreError>>,
}

/// What to do after a response.
enum Flow {
    Continue,
    Reconnect,
    Stop,
}

impl Pump {
    async fn run(mut self) {
        let mut drain_until: Option<Instant> = None;
        loop {
            let idle = drain_until.map(|d| d.min(Instant::now() + DRAIN_IDLE));
            let msg = tokio::select! {
                biased;
                _ = self.tx.closed() => return,
                _ = self.ctx.closed.changed(), if drain_until.is_none() => {
                    if self.last >= self.caught_up_at {
                        return;
                    }
                    drain_until = Some(Instant::now() + DRAIN_MAX);
                    continue;
                }
                _ = sleep_until(idle), if idle.is_some() => return,
                msg = self.opened.responses.message() => msg,
            };
            let flow = match msg {
                Ok(Some(resp)) => self.handle(resp).await,
                Ok(None) | Err(_) => Flow::Reconnect,
            };
            match flow {
                Flow::Continue => {}
                Flow::Stop => return,
                Flow::Reconnect if drain_until.is_some() => return,
                Flow::Reconnect => {
                    if !self.reconnect().await {
                        return;
                    }
                }
            }
            if drain_until.is_some() && self.last >= self.caught_up_at {
                return;
            }
        }
    }

    /// Delivers the events of one response, one batch per revision.
    async fn handle(&mut self, resp: etcd_client::WatchResponse) -> Flow {
        if resp.canceled() {
            if resp.compact_revision() > 0 {
                let _ = self
                    .tx
                    .send(Err(compacted(self.last, resp.compact_revision())))
                    .await;
                return Flow::Stop;
            }
            return Flow::Reconnect;
        }
        let mut batch: Vec<WatchEvent> = Vec::new();
        for ev in resp.events() {
            let Some(kv) = ev.kv() else { continue };
            let event = match to_event(ev.event_type(), kv) {
                Ok(e) => e,
                Err(e) => {
                    let _ = self.tx.send(Err(e)).await;
                    return Flow::Stop;
                }
            };
            // After a reconnect etcd may resend what was delivered.
            if event.revision <= self.last {
                continue;
            }
            let new_revision = batch.first().is_some_and(|b| b.revision != event.revision);
            if new_revision && !self.deliver(std::mem::take(&mut batch)).await {
                return Flow::Stop;
            }
            batch.push(event);
        }
        if !batch.is_empty() && !self.deliver(batch).await {
            return Flow::Stop;
        }
        Flow::Continue
    }

    async fn deliver(&mut self, batch: Vec<WatchEvent>) -> bool {
        let revision = batch.first().map_or(self.last, |e| e.revision);
        if self.tx.send(Ok(batch)).await.is_err() {
            return false;
        }
        self.last = revision;
        true
    }

    /// Re-creates the etcd watch from the last delivered revision; false (after telling the
    /// consumer why, when it matters) if the stream must end.
    async fn reconnect(&mut self) -> bool {
        let deadline = Instant::now() + self.ctx.options.watch_retry;
        let mut delay = Duration::from_millis(100);
        loop {
            if self.tx.is_closed() || self.ctx.closed.has_changed().is_err() {
                return false;
            }
            match open(&self.ctx, &self.range, self.last).await {
                Ok(opened) => {
                    self.opened = opened;
                    return true;
                }
                Err(e @ StoreError::Compacted { .. }) => {
                    let _ = self.tx.send(Err(e)).await;
                    return false;
                }
                Err(e) if Instant::now() + delay >= deadline => {
                    let why = format!("watch lost for {:?}: {e}", self.ctx.options.watch_retry);
                    let _ = self.tx.send(Err(StoreError::Unavailable(why))).await;
                    return false;
                }
                Err(e) => tracing::debug!(error = %e, "etcd watch broken, re-creating it"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

fn to_event(kind: EventType, kv: &etcd_client::KeyValue) -> Result<WatchEvent, StoreError> {
    let mut kv: KeyValue = to_kv(kv)?;
    let kind = match kind {
        EventType::Put => EventKind::Put,
        EventType::Delete => {
            kv.value.clear();
            kv.lease = None;
            EventKind::Delete
        }
    };
    Ok(WatchEvent {
        kind,
        revision: kv.mod_revision,
        kv,
    })
}
