//! The agent-facing state stream of netmaster: registration, snapshot, resumable watch.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::Netmaster;
use serde_json::{json, Value};

struct Stream {
    r: BufReader<TcpStream>,
    chunked: bool,
}

/// Opens `GET path` and returns a reader positioned at the body.
fn open_stream(nm: &Netmaster, path: &str) -> Stream {
    let mut s = TcpStream::connect(("127.0.0.1", nm.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let mut r = BufReader::new(s);
    let mut line = String::new();
    let mut chunked = false;
    loop {
        line.clear();
        r.read_line(&mut line).expect("header");
        if line
            .to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
        {
            chunked = true;
        }
        if line == "\r\n" {
            return Stream { r, chunked };
        }
    }
}

/// Next NDJSON event (chunked or plain body).
fn next_event(s: &mut Stream) -> Value {
    if !s.chunked {
        let mut line = String::new();
        s.r.read_line(&mut line).expect("line");
        return serde_json::from_str(&line).expect("event json");
    }
    let r = &mut s.r;
    loop {
        let mut size = String::new();
        r.read_line(&mut size).expect("chunk size");
        let n = usize::from_str_radix(size.trim(), 16).expect("hex size");
        let mut buf = vec![0; n + 2];
        r.read_exact(&mut buf).expect("chunk");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if let Some(l) = text.lines().find(|l| !l.trim().is_empty()) {
            return serde_json::from_str(l).expect("event json");
        }
    }
}

#[test]
fn snapshot_then_watch_sees_every_change_in_order() {
    let nm = Netmaster::start();
    let (code, body) = nm.post(
        "/plugin/registerNode",
        &json!({"hostname": "h1", "vtepIP": "172.30.0.1", "datapath": "linux"}),
    );
    assert_eq!(code, 200, "{body}");
    let snap = nm.get_json("/plugin/agentState");
    let rev = snap["revision"].as_u64().expect("revision");
    let keys: Vec<&str> = snap["kvs"]
        .as_array()
        .expect("kvs")
        .iter()
        .filter_map(|kv| kv["key"].as_str())
        .collect();
    assert!(keys.contains(&"/contiv/obj/global/global"));
    assert!(keys.contains(&"/contiv/node/h1"));
    let info = nm.get_json("/info");
    assert_eq!(info["netplugin-nodes"][0], "172.30.0.1");

    let mut stream = open_stream(&nm, &format!("/plugin/agentWatch?after={rev}"));
    nm.post("/api/v1/networks/default:n1/", &json!({"tenantName": "default", "networkName": "n1", "encap": "vxlan", "subnet": "10.1.1.0/24"}));
    let ev = next_event(&mut stream);
    assert!(ev["revision"].as_u64().expect("rev") > rev);
    let changed: Vec<&str> = ev["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["key"].as_str())
        .collect();
    assert!(changed.contains(&"/contiv/obj/network/default:n1"), "{ev}");
    assert!(changed.contains(&"/contiv/oper/net/default:n1"), "{ev}");
    // allocation-only keys are not sent to agents
    assert!(changed.iter().all(|k| !k.starts_with("/contiv/alloc/")));
    nm.delete("/api/v1/networks/default:n1/");
    let ev2 = next_event(&mut stream);
    assert!(ev2["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .any(|c| c["key"] == "/contiv/obj/network/default:n1" && c["value"].is_null()));

    // resuming from the first revision replays both events
    let mut again = open_stream(&nm, &format!("/plugin/agentWatch?after={rev}"));
    assert_eq!(next_event(&mut again)["revision"], ev["revision"]);
    assert_eq!(next_event(&mut again)["revision"], ev2["revision"]);
}

#[test]
fn watch_from_before_a_restart_asks_for_resync() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rev;
    {
        let mut nm = Netmaster::start_in(tmp.path(), &[]);
        rev = nm.get_json("/plugin/agentState")["revision"]
            .as_u64()
            .expect("rev");
        nm.post("/api/v1/networks/default:n1/", &json!({"tenantName": "default", "networkName": "n1", "encap": "vxlan", "subnet": "10.1.1.0/24"}));
        nm.stop();
    }
    let nm = Netmaster::start_in(tmp.path(), &[]);
    let mut s = open_stream(&nm, &format!("/plugin/agentWatch?after={rev}"));
    assert_eq!(next_event(&mut s)["resync"], true);
    // a watch from the current revision works
    let now = nm.get_json("/plugin/agentState")["revision"]
        .as_u64()
        .expect("rev");
    assert!(now > rev);
    let mut s = open_stream(&nm, &format!("/plugin/agentWatch?after={now}"));
    nm.post("/api/v1/networks/default:n2/", &json!({"tenantName": "default", "networkName": "n2", "encap": "vxlan", "subnet": "10.1.2.0/24"}));
    assert!(next_event(&mut s)["revision"].as_u64().expect("rev") > now);
}

#[test]
fn bad_node_registration_is_refused() {
    let nm = Netmaster::start();
    assert_eq!(
        nm.post("/plugin/registerNode", &json!({"hostname": ""})).0,
        500
    );
    assert_eq!(
        nm.post(
            "/plugin/registerNode",
            &json!({"hostname": "h", "vtepIP": "nope"})
        )
        .0,
        500
    );
    assert_eq!(
        nm.get_json("/plugin/agentState")["kvs"]
            .as_array()
            .map(|a| a.iter().any(|kv| kv["key"]
                .as_str()
                .is_some_and(|k| k.starts_with("/contiv/node/")))),
        Some(false)
    );
}

#[test]
fn agents_learn_service_vips() {
    let nm = Netmaster::start();
    nm.post("/api/v1/networks/default:sn/", &json!({"tenantName": "default", "networkName": "sn", "encap": "vxlan", "subnet": "10.9.1.0/24", "gateway": "10.9.1.1"}));
    let rev = nm.get_json("/plugin/agentState")["revision"]
        .as_u64()
        .expect("revision");
    let mut stream = open_stream(&nm, &format!("/plugin/agentWatch?after={rev}"));
    let (code, body) = nm.post(
        "/api/v1/serviceLBs/default:web/",
        &json!({"tenantName": "default", "serviceName": "web", "networkName": "sn", "selectors": ["app=web"], "ports": ["80:8080:TCP"]}),
    );
    assert_eq!(code, 200, "{body}");
    let vip = nm.get_json("/api/v1/inspect/serviceLBs/default:web/")["Oper"]["serviceVip"]
        .as_str()
        .expect("vip")
        .to_string();
    let key = "/contiv/oper/service/default:web";
    let ev = next_event(&mut stream);
    let change = ev["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["key"] == key)
        .cloned()
        .unwrap_or_else(|| panic!("no {key} in {ev}"));
    assert_eq!(change["value"]["serviceVip"], vip.as_str());
    // the snapshot derives it from the allocation, the same value
    let snap = nm.get_json("/plugin/agentState");
    let kv = snap["kvs"]
        .as_array()
        .expect("kvs")
        .iter()
        .find(|kv| kv["key"] == key)
        .cloned()
        .expect("service vip in the snapshot");
    assert_eq!(kv["value"]["serviceVip"], vip.as_str());
    nm.delete("/api/v1/serviceLBs/default:web/");
    let gone = next_event(&mut stream);
    assert!(
        gone["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .any(|c| c["key"] == key && c["value"].is_null()),
        "{gone}"
    );
}
