//! The agent protocol, both ways: what netmaster decodes from agents (`/plugin/*` request
//! bodies, policy reports) and what agents decode from netmaster (the state snapshot, each line
//! of the watch stream, allocation and endpoint answers). Input: one byte choosing the message,
//! then the body.
//!
//! Holds: nothing panics; a message that decodes encodes to JSON that decodes to the same
//! message (both sides read what the other writes).
#![no_main]

use contiv_api::agent::{AgentEvent, AgentSnapshot, NodeInfo};
use contiv_api::plugin::*;
use contiv_api::policy::PolicyReport;
use contiv_api::EndpointState;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn check<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(body: &[u8]) {
    let Ok(msg) = serde_json::from_slice::<T>(body) else {
        return;
    };
    let encoded = serde_json::to_vec(&msg).expect("a decoded message encodes");
    let again: T = serde_json::from_slice(&encoded).unwrap_or_else(|e| {
        panic!(
            "does not decode its own encoding: {e}: {}",
            String::from_utf8_lossy(&encoded)
        )
    });
    assert_eq!(
        again,
        msg,
        "round trip of {}",
        String::from_utf8_lossy(&encoded)
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 12 {
        // agent -> netmaster
        0 => check::<NodeInfo>(body),
        1 => check::<PolicyReport>(body),
        2 => check::<CreateEndpointRequest>(body),
        3 => check::<DeleteEndpointRequest>(body),
        4 => check::<UpdateEndpointRequest>(body),
        5 => check::<AllocAddressRequest>(body),
        6 => check::<ReleaseAddressRequest>(body),
        // netmaster -> agent: the watch stream is one event per line
        7 => {
            for line in body.split(|&b| b == b'\n') {
                check::<AgentEvent>(line);
            }
        }
        8 => check::<AgentSnapshot>(body),
        9 => check::<AllocAddressResponse>(body),
        10 => check::<EndpointResponse>(body),
        _ => check::<EndpointState>(body),
    }
});
