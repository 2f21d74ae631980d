//! The connection loop against a scripted peer on an in-memory pipe: what a real ovsdb-server
//! rarely does on cue (its own `echo` probes, answers out of order, a split message, garbage).

use std::time::Duration;

use contiv_ovsdb::{Client, ClientOptions, Error};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// Reads one JSON object the client sent.
async fn read_msg(peer: &mut DuplexStream, split: &mut contiv_ovsdb::framing::Splitter) -> Value {
    loop {
        if let Some(m) = split.next_message().unwrap() {
            return serde_json::from_slice(&m).unwrap();
        }
        let mut buf = [0u8; 4096];
        let n = peer.read(&mut buf).await.unwrap();
        assert!(n > 0, "client closed");
        split.push(&buf[..n]);
    }
}

#[tokio::test]
async fn answers_server_echo_and_matches_out_of_order_responses() {
    let (a, mut peer) = tokio::io::duplex(1 << 16);
    let c = Client::from_stream(a, ClientOptions::default());
    let mut split = contiv_ovsdb::framing::Splitter::new();

    // The server's keep-alive: the client must answer with the same id and params.
    peer.write_all(br#"{"id":"echo","method":"echo","params":["x",1]}"#)
        .await
        .unwrap();
    let reply = read_msg(&mut peer, &mut split).await;
    assert_eq!(
        reply,
        json!({"id": "echo", "result": ["x", 1], "error": null})
    );

    let c1 = c.clone();
    let first = tokio::spawn(async move { c1.list_dbs().await });
    let req1 = read_msg(&mut peer, &mut split).await;
    let c2 = c.clone();
    let second = tokio::spawn(async move { c2.get_schema("Open_vSwitch").await });
    let req2 = read_msg(&mut peer, &mut split).await;
    assert_eq!(req1["method"], "list_dbs");
    assert_eq!(req2["method"], "get_schema");
    // Answer the second first, and split the first answer across two writes.
    let r2 =
        json!({"id": req2["id"], "result": {"name": "Open_vSwitch"}, "error": null}).to_string();
    peer.write_all(r2.as_bytes()).await.unwrap();
    let r1 =
        json!({"id": req1["id"], "result": ["Open_vSwitch", "_Server"], "error": null}).to_string();
    let (h, t) = r1.split_at(10);
    peer.write_all(h.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    peer.write_all(t.as_bytes()).await.unwrap();
    assert_eq!(second.await.unwrap().unwrap()["name"], "Open_vSwitch");
    assert_eq!(first.await.unwrap().unwrap(), ["Open_vSwitch", "_Server"]);

    // An error response names the method.
    let c3 = c.clone();
    let third = tokio::spawn(async move { c3.call("transact", vec![json!("nope")]).await });
    let req3 = read_msg(&mut peer, &mut split).await;
    let r3 = json!({"id": req3["id"], "result": null, "error": "unknown database"}).to_string();
    peer.write_all(r3.as_bytes()).await.unwrap();
    let e = third.await.unwrap().unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"ovsdb-server refused transact: "unknown database""#
    );
}

#[tokio::test]
async fn garbage_ends_the_connection_and_fails_waiting_calls() {
    let (a, mut peer) = tokio::io::duplex(1 << 16);
    let c = Client::from_stream(a, ClientOptions::default());
    let c1 = c.clone();
    let waiting = tokio::spawn(async move { c1.list_dbs().await });
    let mut split = contiv_ovsdb::framing::Splitter::new();
    let _ = read_msg(&mut peer, &mut split).await;
    peer.write_all(b"not json").await.unwrap();
    assert!(matches!(waiting.await.unwrap(), Err(Error::Disconnected)));
    assert!(matches!(c.echo().await, Err(Error::Disconnected)));
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let (a, _peer) = tokio::io::duplex(1 << 16);
    let opts = ClientOptions {
        request_timeout: Duration::from_millis(50),
    };
    let c = Client::from_stream(a, opts);
    let e = c.list_dbs().await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "timed out after 50ms waiting for ovsdb-server to answer list_dbs"
    );
}
