//! The connection against a fake switch built from our own codec: handshake, echo both ways,
//! batches confirmed by barrier with per-message errors, bundles, multipart, reconnect.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use contiv_openflow::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the fake switch saw: every message but hello/echo/barrier/features.
type Seen = Arc<Mutex<Vec<Message>>>;

async fn read(s: &mut TcpStream) -> Option<Envelope> {
    let mut b = vec![0u8; 8];
    s.read_exact(&mut b).await.ok()?;
    let len = Message::frame_len(&b).ok()??;
    b.resize(len, 0);
    s.read_exact(&mut b[8..]).await.ok()?;
    Some(Message::decode(&b).expect("client sent a bad message"))
}

async fn fake_switch(mut s: TcpStream, seen: Seen, echo_answered: Arc<Mutex<bool>>) {
    let send = |m: Message, xid: u32| m.encode(xid);
    s.write_all(&send(
        Message::Hello {
            versions: Some(1 << 4),
        },
        0,
    ))
    .await
    .unwrap();
    while let Some(env) = read(&mut s).await {
        let reply = match env.msg {
            Message::Hello { .. } => None,
            Message::FeaturesRequest => {
                let f = Features {
                    datapath_id: 0xabc,
                    n_buffers: 0,
                    n_tables: 254,
                    auxiliary_id: 0,
                    capabilities: 0,
                };
                // Ask the client for an echo before answering, as a switch may.
                s.write_all(&send(Message::EchoRequest(b"ping".to_vec()), 77))
                    .await
                    .unwrap();
                Some(Message::FeaturesReply(f))
            }
            Message::EchoRequest(d) => Some(Message::EchoReply(d)),
            Message::EchoReply(d) => {
                assert_eq!(env.xid, 77);
                assert_eq!(d, b"ping");
                *echo_answered.lock().unwrap() = true;
                None
            }
            Message::BarrierRequest => Some(Message::BarrierReply),
            Message::BundleControl(mut b) => {
                seen.lock().unwrap().push(Message::BundleControl(b.clone()));
                b.typ = match b.typ {
                    BundleCtrlType::OpenRequest => BundleCtrlType::OpenReply,
                    BundleCtrlType::CommitRequest => BundleCtrlType::CommitReply,
                    _ => BundleCtrlType::DiscardReply,
                };
                Some(Message::BundleControl(b))
            }
            Message::MultipartRequest(MultipartRequest::Table) => {
                let t = |id| TableStats {
                    table_id: id,
                    active_count: id.into(),
                    lookup_count: 0,
                    matched_count: 0,
                };
                let part1 = Message::MultipartReply(MultipartReply::Table {
                    more: true,
                    stats: vec![t(0), t(1)],
                });
                s.write_all(&send(part1, env.xid)).await.unwrap();
                Some(Message::MultipartReply(MultipartReply::Table {
                    more: false,
                    stats: vec![t(2)],
                }))
            }
            m => {
                let bad = matches!(&m, Message::FlowMod(f) if f.priority == 666);
                seen.lock().unwrap().push(m);
                bad.then(|| {
                    Message::Error(ErrorMsg {
                        typ: 5,
                        code: 0,
                        data: vec![],
                    })
                })
            }
        };
        if let Some(r) = reply {
            s.write_all(&send(r, env.xid)).await.unwrap();
        }
    }
}

async fn start() -> (String, Seen, Arc<Mutex<bool>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen: Seen = Arc::default();
    let echo = Arc::new(Mutex::new(false));
    let (seen2, echo2) = (seen.clone(), echo.clone());
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(fake_switch(s, seen2.clone(), echo2.clone()));
        }
    });
    (addr, seen, echo)
}

fn flow(prio: u16) -> Message {
    Message::FlowMod(FlowMod::add(0, prio, Match(vec![Field::InPort(1)]), vec![]))
}

fn opts() -> ConnOptions {
    ConnOptions {
        echo_interval: Some(Duration::from_millis(50)),
        timeout: Duration::from_secs(2),
    }
}

#[tokio::test]
async fn handshake_echo_batch_bundle_multipart() {
    let (addr, seen, echo) = start().await;
    let (sw, _events) = connect(&addr, &opts()).await.unwrap();
    assert_eq!(sw.features().datapath_id, 0xabc);

    sw.send_batch(&[flow(1), flow(2)]).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 2);

    let err = sw
        .send_batch(&[flow(3), flow(666), flow(4)])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnError::Rejected {
                error: ErrorMsg { typ: 5, .. },
                ..
            }
        ),
        "{err}"
    );

    seen.lock().unwrap().clear();
    sw.bundle(9, &[flow(5), flow(6)]).await.unwrap();
    let seen_now = seen.lock().unwrap().clone();
    assert_eq!(seen_now.len(), 4, "{seen_now:?}");
    assert!(
        matches!(&seen_now[1], Message::BundleAdd(b) if b.bundle_id == 9 && b.inner.msg == flow(5))
    );
    assert!(
        matches!(&seen_now[3], Message::BundleControl(b) if b.typ == BundleCtrlType::CommitRequest)
    );

    let parts = sw.multipart(MultipartRequest::Table).await.unwrap();
    assert_eq!(parts.len(), 2);

    // The keep-alive runs every 50 ms and the fake answers; the connection stays up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!sw.is_closed());
    assert!(
        *echo.lock().unwrap(),
        "our echo reply to the switch's request"
    );
}

#[tokio::test]
async fn closed_connection_fails_waiters_and_reconnect_finds_a_late_switch() {
    // A listener that handshakes and then hangs up.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        s.write_all(&Message::Hello { versions: None }.encode(0))
            .await
            .unwrap();
        let _hello = read(&mut s).await;
        let req = read(&mut s).await.unwrap();
        let f = Features {
            datapath_id: 1,
            n_buffers: 0,
            n_tables: 1,
            auxiliary_id: 0,
            capabilities: 0,
        };
        s.write_all(&Message::FeaturesReply(f).encode(req.xid))
            .await
            .unwrap();
        let _ = read(&mut s).await; // the barrier request, never answered
    });
    let (sw, _ev) = connect(&addr, &opts()).await.unwrap();
    let err = sw.send_batch(&[flow(1)]).await.unwrap_err();
    assert!(matches!(err, ConnError::Closed), "{err}");
    assert!(sw.is_closed());

    // Nothing listens yet: connect_retry keeps trying until the switch appears.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let retry = tokio::spawn({
        let addr = addr.clone();
        async move { connect_retry(&addr, &opts(), Duration::from_millis(200)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let l = TcpListener::bind(&addr).await.unwrap();
    let (s, _) = l.accept().await.unwrap();
    tokio::spawn(fake_switch(s, Arc::default(), Arc::default()));
    let (sw, _ev) = tokio::time::timeout(Duration::from_secs(5), retry)
        .await
        .unwrap()
        .unwrap();
    sw.send_batch(&[flow(1)]).await.unwrap();
}
