//! netprofile values the agents enforce (bandwidth, burst, DSCP), against a real netmaster: every
//! form Contiv accepts is stored, and a value that cannot be enforced ("fast", a unit Contiv's
//! pattern lets through by accident, a negative DSCP or burst) is refused with a message naming
//! the value, on create and on update, and changes nothing.

mod common;

use common::Netmaster;
use serde_json::{json, Value};

const PATH: &str = "/api/v1/netprofiles/default:np/";

fn profile(fields: Value) -> Value {
    let mut p = json!({"tenantName": "default", "profileName": "np"});
    if let (Some(p), Some(f)) = (p.as_object_mut(), fields.as_object()) {
        p.extend(f.clone());
    }
    p
}

/// State that a refused write must leave alone.
fn snapshot(nm: &Netmaster) -> (String, String) {
    (
        nm.get("/api/v1/netprofiles/").1,
        nm.get("/api/v1/endpointGroups/").1,
    )
}

fn refused(nm: &Netmaster, fields: Value, msg: &str) {
    let before = snapshot(nm);
    let (code, text) = nm.post(PATH, &profile(fields.clone()));
    assert_eq!(code, 500, "{fields} should be refused: {text}");
    assert!(
        text.contains(msg),
        "{fields}: expected {msg:?}, got {text:?}"
    );
    assert_eq!(
        before,
        snapshot(nm),
        "{fields} changed state although refused"
    );
    // The problem+json form says 400 with the same message.
    let (code, text) = nm.problem("POST", PATH, Some(&profile(fields.clone())));
    assert_eq!(code, 400, "{fields}: {text}");
    let detail: Value = serde_json::from_str(&text).expect("problem+json");
    assert!(
        detail["detail"].as_str().is_some_and(|d| d.contains(msg)),
        "{fields}: {text}"
    );
}

#[test]
fn netprofile_values_enforceable_or_refused() {
    let nm = Netmaster::start();
    for bw in [
        "10 kbps", "100mbps", "1gbps", "100 Mbps", "10 M", "5k", "3 Gb", "7mb",
    ] {
        let (code, text) = nm.post(PATH, &profile(json!({"bandwidth": bw, "DSCP": 46})));
        assert_eq!(code, 200, "{bw}: {text}");
        assert_eq!(nm.get_json(PATH)["bandwidth"], bw);
    }
    // The stored profile is "7mb" from here on: a refused update keeps it.
    refused(
        &nm,
        json!({"bandwidth": "fast"}),
        "bandwidth string invalid format",
    );
    refused(
        &nm,
        json!({"bandwidth": "10 mbit"}),
        "bandwidth string invalid format",
    );
    refused(
        &nm,
        json!({"bandwidth": "0mbps"}),
        "bandwidth string invalid format",
    );
    refused(
        &nm,
        json!({"bandwidth": "10 1bps"}),
        "Invalid bandwidth \"10 1bps\": a number and a unit kbps, mbps or gbps",
    );
    refused(
        &nm,
        json!({"bandwidth": "99999999999gbps"}),
        "Invalid bandwidth \"99999999999gbps\": more than",
    );
    refused(&nm, json!({"DSCP": 64}), "DSCP Value Out of bound");
    refused(&nm, json!({"DSCP": -1}), "DSCP Value Out of bound");
    refused(&nm, json!({"burst": -3}), "burst Value Out of bound");
    refused(&nm, json!({"burst": 1}), "Invalid Burst size");
    assert_eq!(nm.get_json(PATH)["bandwidth"], "7mb");
    assert_eq!(nm.get_json(PATH)["DSCP"], 46);
}
