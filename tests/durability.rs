//! Crash safety and concurrency against a real netmaster process:
//! - kill -9 during 1,000 creates: every acknowledged object survives, no allocation is duplicated
//!   or leaked;
//! - 16 concurrent clients allocating 4,000 addresses on one network: all distinct, and inspect's
//!   counts match.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{try_request, Netmaster};
use serde_json::{json, Value};

fn network_body(i: u32) -> Value {
    json!({"tenantName": "default", "networkName": format!("n{i}"), "encap": "vxlan",
           "subnet": format!("10.{}.{}.0/24", i / 256, i % 256)})
}

#[test]
fn kill_minus_nine_during_a_thousand_creates_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut nm = Netmaster::start_in(tmp.path(), &[]);
    let url = nm.url.clone();
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop) = (acked.clone(), stop.clone());
        std::thread::spawn(move || {
            for i in 0..1000u32 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let path = format!("/api/v1/networks/default:n{i}/");
                match try_request(&url, "POST", &path, Some(&network_body(i)), false) {
                    Ok((200, _)) => {
                        acked.lock().expect("lock").insert(i);
                    }
                    Ok((code, body)) => panic!("create n{i} refused: {code} {body}"),
                    Err(_) => break, // the server died under us
                }
            }
        })
    };
    // Let a few hundred creates through, then kill -9 mid-stream.
    while acked.lock().expect("lock").len() < 300 {
        std::thread::sleep(Duration::from_millis(2));
    }
    nm.kill9();
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer thread");
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() >= 300 && acked.len() < 1000,
        "kill landed mid-stream ({} acked)",
        acked.len()
    );

    let nm = Netmaster::start_in(tmp.path(), &[]);
    let nets = nm.get_json("/api/v1/networks/");
    let present: BTreeSet<u32> = nets
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|n| n["networkName"].as_str()?.strip_prefix('n')?.parse().ok())
        .collect();
    assert!(
        acked.is_subset(&present),
        "acknowledged networks lost: {:?}",
        acked.difference(&present).take(5).collect::<Vec<_>>()
    );
    // At most the one in-flight create may have landed without its acknowledgement.
    assert!(present.len() <= acked.len() + 1);
    // Allocations: one VNI per network, all distinct, nothing leaked.
    let mut vnis = HashSet::new();
    for n in &present {
        let insp = nm.get_json(&format!("/api/v1/inspect/networks/default:n{n}/"));
        let vni = insp["Oper"]["externalPktTag"].as_i64().expect("vni");
        assert!(vnis.insert(vni), "VNI {vni} handed out twice");
    }
    let g = nm.get_json("/api/v1/inspect/globals/global/");
    assert_eq!(
        g["Oper"]["numNetworks"].as_u64(),
        Some(present.len() as u64),
        "leaked or lost VNIs"
    );
    // And the store still works: finish the remaining creates.
    for i in 0..1000u32 {
        if !present.contains(&i) {
            let (code, body) =
                nm.post(&format!("/api/v1/networks/default:n{i}/"), &network_body(i));
            assert_eq!(code, 200, "{body}");
        }
    }
    let g = nm.get_json("/api/v1/inspect/globals/global/");
    assert_eq!(g["Oper"]["numNetworks"], 1000);
    assert_eq!(g["Oper"]["vxlansInUse"], "1-1000");
}

#[test]
fn sixteen_clients_allocate_four_thousand_distinct_addresses() {
    let nm = Netmaster::start();
    let (code, body) = nm.post(
        "/api/v1/networks/default:big/",
        &json!({"tenantName": "default", "networkName": "big", "encap": "vxlan", "subnet": "10.64.0.0/16", "gateway": "10.64.0.1"}),
    );
    assert_eq!(code, 200, "{body}");
    let url = nm.url.clone();
    let all = Arc::new(Mutex::new(Vec::new()));
    let counter = Arc::new(AtomicU32::new(0));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (url, all, counter) = (url.clone(), all.clone(), counter.clone());
            std::thread::spawn(move || {
                while counter.fetch_add(1, Ordering::Relaxed) < 4000 {
                    let req = json!({"NetworkID": "big.default", "AddressPool": "", "PreferredIPv4Address": ""});
                    let (code, body) = common::request(&url, "POST", "/plugin/allocAddress", Some(&req), false);
                    assert_eq!(code, 200, "{body}");
                    let v: Value = serde_json::from_str(&body).expect("json");
                    let ip = v["IPv4Address"].as_str().expect("address").to_owned();
                    all.lock().expect("lock").push(ip);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    let all = all.lock().expect("lock").clone();
    assert_eq!(all.len(), 4000);
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), 4000, "an address was handed out twice");
    assert!(all
        .iter()
        .all(|a| a.ends_with("/16") && a != "10.64.0.1/16"));
    let insp = nm.get_json("/api/v1/inspect/networks/default:big/");
    assert_eq!(insp["Oper"]["allocatedAddressesCount"], 4000);
    // lowest-free: exactly the first 4,000 addresses after the gateway
    let avail = insp["Oper"]["availableIPAddresses"]
        .as_str()
        .expect("ranges");
    assert_eq!(avail, "10.64.15.162-10.64.255.254");
}
