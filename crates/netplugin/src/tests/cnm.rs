//! The Docker plugin protocol over a real unix socket, without Docker: every call, malformed
//! bodies, unknown calls, the error path, Docker's rollback, state across an agent restart.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use contiv_datapath::{Datapath, Plumbing};
use serde_json::{json, Value};

use super::{env, Env};
use crate::cnm::store::DockerNetworks;
use crate::cnm::{cnm_ifname, Cnm, AGENT_NETNS};

const NET: &str = "0f3a1c9e5b7d";
const EP: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

/// A plugin socket served by its own runtime (dropped with it).
struct Plugin {
    sock: PathBuf,
    _rt: tokio::runtime::Runtime,
}

fn serve(e: &Env, state: &Path) -> Plugin {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let sock = state.join("plugins/netplugin.sock");
    let networks = DockerNetworks::open(state).expect("docker networks");
    let cnm = Arc::new(Cnm::new(e.agent.clone(), networks));
    let listener = {
        let _g = rt.enter();
        crate::cnm::server::bind(&sock).expect("bind")
    };
    rt.spawn(crate::cnm::server::serve(
        listener,
        cnm,
        std::future::pending(),
    ));
    Plugin { sock, _rt: rt }
}

/// One request as dockerd sends it (no Content-Type); the status and the JSON answer.
fn raw(sock: &Path, verb: &str, call: &str, body: &[u8]) -> (u16, Value) {
    let mut s = UnixStream::connect(sock).expect("connect");
    let head = format!(
        "{verb} /{call} HTTP/1.1\r\nHost: plugin\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(body).expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: application/vnd.docker.plugins.v1.2+json"),
        "{text}"
    );
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).expect("json answer"))
}

fn call(sock: &Path, method: &str, body: Value) -> Value {
    let (status, v) = raw(sock, "POST", method, body.to_string().as_bytes());
    assert_eq!(status, 200, "{method}: {v}");
    assert!(v.get("Err").is_none(), "{method}: {v}");
    v
}

fn fails(sock: &Path, method: &str, body: &[u8]) -> String {
    let (status, v) = raw(sock, "POST", method, body);
    assert_ne!(
        status,
        200,
        "{method} {}: {v}",
        String::from_utf8_lossy(body)
    );
    v["Err"].as_str().expect("Err").to_string()
}

fn create_network(sock: &Path) {
    call(
        sock,
        "NetworkDriver.CreateNetwork",
        json!({"NetworkID": NET, "Options": {"com.docker.network.generic":
            {"tenant": "t", "network": "n", "encap": "vxlan", "pkt-tag": "5001"}},
            "IPv4Data": [{"AddressSpace": "contiv-local", "Pool": "10.1.0.0/24",
            "Gateway": "10.1.0.1/24"}], "IPv6Data": []}),
    );
}

fn request_address(sock: &Path) -> String {
    let a = call(
        sock,
        "IpamDriver.RequestAddress",
        json!({"PoolID": "t/n", "Address": "", "Options": {}}),
    );
    a["Address"].as_str().expect("address").to_string()
}

fn create_endpoint(sock: &Path, addr: &str) -> Value {
    call(
        sock,
        "NetworkDriver.CreateEndpoint",
        json!({"NetworkID": NET, "EndpointID": EP, "Options": {},
            "Interface": {"Address": addr, "AddressIPv6": "", "MacAddress": ""}}),
    )
}

fn assert_nothing_left(e: &Env) {
    assert!(e.agent.records.list().is_empty(), "records left");
    assert!(
        e.nm.eps.lock().unwrap().is_empty(),
        "netmaster endpoints left"
    );
    assert!(
        e.dp.observe().unwrap().local_endpoints.is_empty(),
        "interfaces left"
    );
}

#[test]
fn every_call_of_a_container_life() {
    let e = env();
    let p = serve(&e, e.dir.path());
    let s = p.sock.as_path();
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&p.metadata().unwrap().permissions()) & 0o777
    };
    assert_eq!(mode(s), 0o600);
    assert_eq!(mode(s.parent().unwrap()), 0o700);

    let act = call(s, "Plugin.Activate", json!(null));
    assert_eq!(act["Implements"], json!(["NetworkDriver", "IpamDriver"]));
    let caps = call(s, "NetworkDriver.GetCapabilities", json!(null));
    assert_eq!(
        caps,
        json!({"Scope": "local", "ConnectivityScope": "global"})
    );
    call(s, "IpamDriver.GetCapabilities", json!(null));
    let spaces = call(s, "IpamDriver.GetDefaultAddressSpaces", json!(null));
    assert!(spaces["LocalDefaultAddressSpace"].is_string());

    // docker network create -d netplugin --ipam-driver netplugin --ipam-opt tenant=t ...
    let pool = call(
        s,
        "IpamDriver.RequestPool",
        json!({"AddressSpace": "contiv-local", "Pool": "", "SubPool": "",
            "Options": {"tenant": "t", "network": "n"}, "V6": false}),
    );
    assert_eq!(pool["PoolID"], "t/n");
    assert_eq!(pool["Pool"], "10.1.0.0/24");
    assert_eq!(pool["Data"]["com.docker.network.gateway"], "10.1.0.1/24");
    let gw = call(
        s,
        "IpamDriver.RequestAddress",
        json!({"PoolID": "t/n", "Address": "10.1.0.1",
            "Options": {"RequestAddressType": "com.docker.network.gateway"}}),
    );
    assert_eq!(gw["Address"], "10.1.0.1/24");
    create_network(s);
    create_network(s); // idempotent

    // docker run: address, endpoint, join.
    let addr = request_address(s);
    assert_eq!(addr, "10.1.0.100/24");
    let ep = create_endpoint(s, &addr);
    assert_eq!(
        ep,
        json!({"Interface": {"MacAddress": "02:02:0a:01:00:02"}})
    );
    let a = &e.agent.records.list()[0];
    assert_eq!(a.ip, "10.1.0.100/24");
    let local = e.dp.local_endpoint(&a.endpoint_id).expect("plugged");
    assert_eq!(local.plumbing, Plumbing::HandedOver);
    assert_eq!(local.netns_path, Path::new(AGENT_NETNS));
    assert_eq!(local.ifname, cnm_ifname(EP));
    assert_eq!(e.nm.eps.lock().unwrap().len(), 1);

    let info = call(
        s,
        "NetworkDriver.EndpointOperInfo",
        json!({"NetworkID": NET, "EndpointID": EP}),
    );
    assert_eq!(info["Value"]["ip"], "10.1.0.100/24");
    let join = call(
        s,
        "NetworkDriver.Join",
        json!({"NetworkID": NET, "EndpointID": EP, "SandboxKey": "/var/run/docker/netns/x",
            "Options": {}}),
    );
    assert_eq!(join["InterfaceName"]["SrcName"], cnm_ifname(EP));
    assert_eq!(join["InterfaceName"]["DstPrefix"], "eth");
    assert_eq!(join["Gateway"], "10.1.0.1");
    let ids = json!({"NetworkID": NET, "EndpointID": EP, "Options": {}});
    call(s, "NetworkDriver.ProgramExternalConnectivity", ids.clone());
    call(s, "NetworkDriver.RevokeExternalConnectivity", ids.clone());
    call(
        s,
        "NetworkDriver.DiscoverNew",
        json!({"DiscoveryType": 1, "DiscoveryData": {"Address": "10.0.0.2"}}),
    );
    call(
        s,
        "NetworkDriver.DiscoverDelete",
        json!({"DiscoveryType": 1, "DiscoveryData": {}}),
    );

    // docker rm -f: leave, delete, release (the address went with the endpoint).
    call(s, "NetworkDriver.Leave", ids.clone());
    call(s, "NetworkDriver.DeleteEndpoint", ids.clone());
    call(s, "NetworkDriver.DeleteEndpoint", ids); // dockerd retries
    call(
        s,
        "IpamDriver.ReleaseAddress",
        json!({"PoolID": "t/n", "Address": "10.1.0.100"}),
    );
    assert_nothing_left(&e);
    assert!(e.nm.allocs.lock().unwrap().is_empty());

    // docker network rm
    call(s, "NetworkDriver.DeleteNetwork", json!({"NetworkID": NET}));
    call(s, "NetworkDriver.DeleteNetwork", json!({"NetworkID": NET}));
    call(s, "IpamDriver.ReleasePool", json!({"PoolID": "t/n"}));
    let err = fails(
        s,
        "NetworkDriver.CreateEndpoint",
        json!({"NetworkID": NET, "EndpointID": EP})
            .to_string()
            .as_bytes(),
    );
    assert!(err.contains("not a netplugin network"), "{err}");
}

#[test]
fn malformed_unknown_and_refused_calls() {
    let e = env();
    let p = serve(&e, e.dir.path());
    let s = p.sock.as_path();
    let (status, v) = raw(s, "POST", "NetworkDriver.NoSuchCall", b"{}");
    assert_eq!(status, 404);
    assert!(v["Err"].as_str().unwrap().contains("unknown call"), "{v}");
    assert_eq!(raw(s, "POST", "Nope", b"").0, 404);
    assert_eq!(raw(s, "GET", "Plugin.Activate", b"").0, 404);

    for body in [
        &b""[..],
        b"{",
        b"[]",
        b"null",
        b"\xff\xfe",
        b"{\"NetworkID\": 5}",
    ] {
        let err = fails(s, "NetworkDriver.CreateNetwork", body);
        assert!(err.contains("invalid"), "{err}");
        fails(s, "NetworkDriver.Join", body);
        fails(s, "IpamDriver.RequestAddress", body);
    }
    let long = "a".repeat(200);
    for id in ["", "../../etc", "a b", long.as_str()] {
        let err = fails(
            s,
            "NetworkDriver.CreateNetwork",
            json!({"NetworkID": id}).to_string().as_bytes(),
        );
        assert!(err.contains("invalid NetworkID"), "{err}");
    }
    let refused = [
        // not a Contiv network, wrong pool (Docker's default IPAM), a vlan network, bad options
        json!({"NetworkID": NET, "Options": {"com.docker.network.generic": {"tenant": "t", "network": "nope"}}}),
        json!({"NetworkID": NET, "Options": {"com.docker.network.generic": {"tenant": "t", "network": "n"}},
            "IPv4Data": [{"Pool": "172.18.0.0/16", "Gateway": "172.18.0.1/16"}]}),
        json!({"NetworkID": NET, "Options": {"com.docker.network.generic": {"tenant": "t", "network": "vl"}}}),
        json!({"NetworkID": NET, "Options": {"com.docker.network.generic": {"tenant": 7}}}),
        json!({"NetworkID": NET, "Options": {"com.docker.network.generic": {"tenant": "t", "network": "n", "pkt-tag": "9"}}}),
        json!({"NetworkID": NET, "Options": {"com.docker.network.generic": "x"}}),
        json!({"NetworkID": NET, "Options": {}, "IPv6Data": [{"Pool": "fd00::/64"}]}),
        json!({"NetworkID": NET, "Options": {"com.docker.network.generic": {"tenant": "t"}}}),
    ];
    for r in refused {
        fails(s, "NetworkDriver.CreateNetwork", r.to_string().as_bytes());
    }
    // The network found by its subnet when the options name none.
    call(
        s,
        "NetworkDriver.CreateNetwork",
        json!({"NetworkID": "bynet", "Options": {"com.docker.network.generic": {"tenant": "t"}},
            "IPv4Data": [{"Pool": "10.2.0.0/24", "Gateway": "10.2.0.1/24"}]}),
    );
    for pool in ["", "t", "t/n/g/x", "t/n:x"] {
        fails(
            s,
            "IpamDriver.RequestAddress",
            json!({"PoolID": pool}).to_string().as_bytes(),
        );
    }
    fails(
        s,
        "IpamDriver.RequestPool",
        json!({"Options": {"tenant": "t", "network": "n"}, "SubPool": "10.1.0.0/28"})
            .to_string()
            .as_bytes(),
    );
    fails(
        s,
        "IpamDriver.RequestPool",
        json!({"Options": {"tenant": "t", "network": "n"}, "V6": true})
            .to_string()
            .as_bytes(),
    );
    // Endpoints of unknown networks, unknown endpoints.
    create_network(s);
    let err = fails(
        s,
        "NetworkDriver.Join",
        json!({"NetworkID": NET, "EndpointID": EP})
            .to_string()
            .as_bytes(),
    );
    assert!(err.contains("not found"), "{err}");
    fails(
        s,
        "NetworkDriver.CreateEndpoint",
        json!({"NetworkID": NET, "EndpointID": EP, "Interface": {"Address": "x"}})
            .to_string()
            .as_bytes(),
    );
    fails(
        s,
        "NetworkDriver.CreateEndpoint",
        json!({"NetworkID": NET, "EndpointID": EP,
            "Interface": {"Address": "10.1.0.9/24", "MacAddress": "zz"}})
        .to_string()
        .as_bytes(),
    );
    // netmaster down: a clear error, nothing made.
    e.nm.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let err = fails(
        s,
        "IpamDriver.RequestAddress",
        json!({"PoolID": "t/n"}).to_string().as_bytes(),
    );
    assert!(err.contains("unreachable"), "{err}");
    e.nm.down.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_nothing_left(&e);
}

#[test]
fn dockers_rollback_after_a_failed_join_and_a_failed_create_leave_nothing() {
    let e = env();
    let p = serve(&e, e.dir.path());
    let s = p.sock.as_path();
    create_network(s);
    let addr = request_address(s);
    create_endpoint(s, &addr);
    // A Join that fails (here: named under another network), then Docker's rollback.
    call(
        s,
        "NetworkDriver.CreateNetwork",
        json!({"NetworkID": "other", "Options": {"com.docker.network.generic":
            {"tenant": "t", "network": "n2"}}}),
    );
    fails(
        s,
        "NetworkDriver.Join",
        json!({"NetworkID": "other", "EndpointID": EP})
            .to_string()
            .as_bytes(),
    );
    call(
        s,
        "NetworkDriver.DeleteEndpoint",
        json!({"NetworkID": NET, "EndpointID": EP}),
    );
    call(
        s,
        "IpamDriver.ReleaseAddress",
        json!({"PoolID": "t/n", "Address": addr}),
    );
    assert_nothing_left(&e);
    assert!(e
        .dp
        .calls()
        .iter()
        .any(|c| matches!(c, contiv_datapath::fake::Call::RemoveLocalEndpoint(_))));

    // The datapath fails: CreateEndpoint fails and rolls back; the address stays Docker's
    // until it releases it.
    let addr = request_address(s);
    e.dp.fail_next("add_local_endpoint");
    e.dp.fail_next("ensure_network"); // the retry on a cached network fails too
    fails(
        s,
        "NetworkDriver.CreateEndpoint",
        json!({"NetworkID": NET, "EndpointID": EP, "Interface": {"Address": addr}})
            .to_string()
            .as_bytes(),
    );
    assert_nothing_left(&e);
    call(
        s,
        "IpamDriver.ReleaseAddress",
        json!({"PoolID": "t/n", "Address": addr}),
    );
    assert!(e.nm.allocs.lock().unwrap().is_empty());
}

#[test]
fn networks_and_pools_survive_an_agent_restart() {
    let e = env();
    {
        let p = serve(&e, e.dir.path());
        create_network(p.sock.as_path());
    }
    // A new server (the agent restarted): dockerd sends no CreateNetwork or RequestPool again.
    let p = serve(&e, e.dir.path());
    let s = p.sock.as_path();
    let addr = request_address(s);
    create_endpoint(s, &addr);
    call(
        s,
        "NetworkDriver.Join",
        json!({"NetworkID": NET, "EndpointID": EP, "SandboxKey": "/x"}),
    );
    call(
        s,
        "NetworkDriver.DeleteEndpoint",
        json!({"NetworkID": NET, "EndpointID": EP}),
    );
    assert_nothing_left(&e);
}

#[test]
fn delete_endpoint_without_a_record_still_releases_it() {
    let e = env();
    let p = serve(&e, e.dir.path());
    let s = p.sock.as_path();
    create_network(s);
    let addr = request_address(s);
    create_endpoint(s, &addr);
    // The record is lost (a damaged journal): netmaster's endpoint and the interface remain.
    let key = (EP.to_string(), cnm_ifname(EP));
    e.agent.records.remove(&key).expect("forget");
    assert_eq!(e.nm.eps.lock().unwrap().len(), 1);
    call(
        s,
        "NetworkDriver.DeleteEndpoint",
        json!({"NetworkID": NET, "EndpointID": EP}),
    );
    assert_nothing_left(&e);
}

#[test]
fn swarm_mode_answers_global_scope_and_maps_contiv_tags() {
    let e = env();
    {
        let mut m = e.agent.mirror.read().clone().expect("mirror");
        m.networks.get_mut("t:n").expect("network t:n").cfgd_tag = "blue".into();
        m.revision += 1;
        e.agent.mirror.replace(m);
    }
    let networks = DockerNetworks::open(e.dir.path()).expect("docker networks");
    let mut cnm = Cnm::new(e.agent.clone(), networks);
    assert_eq!(
        cnm.call("NetworkDriver.GetCapabilities", b"{}")
            .expect("caps")["Scope"],
        "local"
    );
    cnm.swarm = true;
    assert_eq!(
        cnm.call("NetworkDriver.GetCapabilities", b"{}")
            .expect("caps")["Scope"],
        "global"
    );
    let pool = cnm
        .call(
            "IpamDriver.RequestPool",
            json!({"AddressSpace": "contiv-global", "Options": {"contiv-tag": "blue"}})
                .to_string()
                .as_bytes(),
        )
        .expect("pool");
    assert!(
        pool["PoolID"].as_str().unwrap_or("").contains('n'),
        "{pool}"
    );
    assert_eq!(pool["Pool"], "10.1.0.0/24", "{pool}");
    cnm.call(
        "NetworkDriver.CreateNetwork",
        json!({"NetworkID": NET, "Options": {"com.docker.network.generic": {"contiv-tag": "blue"}},
            "IPv4Data": [{"AddressSpace": "contiv-global", "Pool": "10.1.0.0/24"}]})
        .to_string()
        .as_bytes(),
    )
    .expect("create network by tag");
    let err = cnm
        .call(
            "IpamDriver.RequestPool",
            json!({"Options": {"contiv-tag": "nope"}})
                .to_string()
                .as_bytes(),
        )
        .expect_err("unknown tag");
    assert!(err.to_string().contains("cfgdTag"), "{err}");

    // Swarm's manager allocates the network first: checked, and its options answered unchanged
    // (swarm hands the answer to every node's CreateNetwork as the network's options).
    let alloc = cnm
        .call(
            "NetworkDriver.AllocateNetwork",
            json!({"NetworkID": NET, "Options": {"contiv-tag": "blue"},
                "IPv4Data": [{"AddressSpace": "contiv-global", "Pool": "10.1.0.0/24",
                "Gateway": "10.1.0.1/24"}], "IPv6Data": null})
            .to_string()
            .as_bytes(),
        )
        .expect("allocate network");
    assert_eq!(alloc["Options"], json!({"contiv-tag": "blue"}), "{alloc}");
    for (body, why) in [
        (
            json!({"NetworkID": NET, "Options": {"contiv-tag": "nope"}}),
            "cfgdTag",
        ),
        (
            json!({"NetworkID": NET, "Options": {"contiv-tag": "blue"},
                "IPv4Data": [{"Pool": "10.9.0.0/24"}]}),
            "not the subnet",
        ),
        (json!({"NetworkID": "../x", "Options": null}), "NetworkID"),
    ] {
        let err = cnm
            .call("NetworkDriver.AllocateNetwork", body.to_string().as_bytes())
            .expect_err("refused");
        assert!(err.to_string().contains(why), "{why}: {err}");
    }
    cnm.call(
        "NetworkDriver.FreeNetwork",
        json!({ "NetworkID": NET }).to_string().as_bytes(),
    )
    .expect("free network");

    // A task's address: reserved by the manager's driver, asked for again by the node's.
    let ask = |cnm: &Cnm| {
        cnm.call(
            "IpamDriver.RequestAddress",
            json!({"PoolID": "t/n", "Address": "10.1.0.150"})
                .to_string()
                .as_bytes(),
        )
    };
    assert_eq!(ask(&cnm).expect("manager")["Address"], "10.1.0.150/24");
    assert_eq!(ask(&cnm).expect("node")["Address"], "10.1.0.150/24");
    cnm.swarm = false;
    let err = ask(&cnm).expect_err("held, outside swarm");
    assert!(err.to_string().contains("not available"), "{err}");
}
