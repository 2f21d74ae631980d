//! The Docker plugin calls' bodies as dockerd sends them, through netplugin's parser
//! (`cnm/wire.rs`, compiled in as it is: the file is pure): each call's body, then what the
//! agent checks before acting on it (Docker ids, the network's `-o` options, IPAM options, pool
//! ids). Input: one byte choosing the call, then the body.
//!
//! Holds: nothing panics; a pool id that parses prints back as itself; a Contiv Docker network
//! name that parses names the same network again; every refusal names at most a short piece
//! of the input.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/netplugin/src/cnm/wire.rs"]
mod wire;

use libfuzzer_sys::fuzz_target;
use wire::*;

const CALLS: [&str; 21] = [
    "Plugin.Activate",
    "NetworkDriver.GetCapabilities",
    "NetworkDriver.CreateNetwork",
    "NetworkDriver.DeleteNetwork",
    "NetworkDriver.CreateEndpoint",
    "NetworkDriver.EndpointOperInfo",
    "NetworkDriver.DeleteEndpoint",
    "NetworkDriver.Join",
    "NetworkDriver.Leave",
    "NetworkDriver.DiscoverNew",
    "NetworkDriver.DiscoverDelete",
    "NetworkDriver.ProgramExternalConnectivity",
    "NetworkDriver.RevokeExternalConnectivity",
    "IpamDriver.GetCapabilities",
    "IpamDriver.GetDefaultAddressSpaces",
    "IpamDriver.RequestPool",
    "IpamDriver.ReleasePool",
    "IpamDriver.RequestAddress",
    "IpamDriver.ReleaseAddress",
    "NetworkDriver.Unknown",
    "",
];

/// Refusals go to dockerd's log and the agent's: bounded whatever was sent (at most 80
/// characters of the input, each at most 10 when escaped, plus the message around them).
fn short(r: Result<(), WireError>) {
    if let Err(e) = r {
        let m = e.to_string();
        assert!(
            m.chars().count() < 1000,
            "refusal of {} chars: {m}",
            m.len()
        );
    }
}

fn pool(id: &str) {
    match id.parse::<PoolId>() {
        Ok(p) => assert_eq!(p.to_string(), id, "pool id round trip"),
        Err(e) => short(Err(e)),
    }
}

fn ids(network: &str, endpoint: &str) {
    short(check_id("NetworkID", network));
    short(check_id("EndpointID", endpoint));
}

fn options(map: &std::collections::BTreeMap<String, serde_json::Value>) {
    short(ContivOptions::parse(map).map(drop));
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    if let Ok(name) = std::str::from_utf8(body) {
        if let Some((t, g)) = parse_docker_network_name(name) {
            let again = docker_network_name(&t, &g);
            assert_eq!(parse_docker_network_name(&again), Some((t, g)));
        }
        pool(name);
    }
    let call = match parse_call(CALLS[usize::from(which) % CALLS.len()], body) {
        Ok(c) => c,
        Err(e) => return short(Err(e)),
    };
    match call {
        Call::CreateNetwork(r) => {
            short(check_id("NetworkID", &r.network_id));
            match generic_options(&r.options) {
                Ok(o) => options(&o),
                Err(e) => short(Err(e)),
            }
        }
        Call::DeleteNetwork(r) => short(check_id("NetworkID", &r.network_id)),
        Call::CreateEndpoint(r) => ids(&r.network_id, &r.endpoint_id),
        Call::EndpointOperInfo(r)
        | Call::DeleteEndpoint(r)
        | Call::Leave(r)
        | Call::ExternalConnectivity(r) => ids(&r.network_id, &r.endpoint_id),
        Call::Join(r) => ids(&r.network_id, &r.endpoint_id),
        Call::RequestPool(r) => {
            if let Some(o) = &r.options {
                options(o);
            }
        }
        Call::ReleasePool(r) => pool(&r.pool_id),
        Call::RequestAddress(r) | Call::ReleaseAddress(r) => pool(&r.pool_id),
        _ => {}
    }
});
