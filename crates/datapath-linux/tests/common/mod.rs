//! Shared helpers of the kernel tests: specs, endpoints in fresh workload namespaces, and
//! `ip -j` / `bridge -j` listings as an independent oracle of what the kernel holds.

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use contiv_datapath::{Encap, FwdMode, LocalEndpoint, MacAddr, NetworkSpec, RemoteEndpoint};
use contiv_datapath_linux::testbed::Testbed;

pub fn net(tenant: &str, name: &str, vni: u32, subnet: &str, mode: FwdMode) -> NetworkSpec {
    let subnet: ipnet::Ipv4Net = subnet.parse().expect("subnet literal");
    let o = subnet.network().octets();
    NetworkSpec {
        id: format!("{tenant}:{name}"),
        tenant: tenant.into(),
        vni,
        subnet,
        gateway: Ipv4Addr::new(o[0], o[1], o[2], 1),
        fwd_mode: mode,
        encap: Encap::Vxlan,
        mtu: 0,
    }
}

/// An endpoint of `net` at `ip` in a fresh workload namespace named after `id`.
pub fn ep(tb: &Testbed, id: &str, net: &NetworkSpec, ip: [u8; 4]) -> LocalEndpoint {
    let ip = Ipv4Addr::from(ip);
    LocalEndpoint {
        id: id.into(),
        network_id: net.id.clone(),
        netns_path: tb.workload(id).expect("workload netns"),
        ifname: "eth0".into(),
        ip: ipnet::Ipv4Net::new(ip, net.subnet.prefix_len()).expect("prefix"),
        mac: MacAddr::from_ipv4(ip),
        gateway: net.gateway,
        plumbing: contiv_datapath::Plumbing::InWorkload,
    }
}

pub fn remote(ep: &LocalEndpoint, vtep: Ipv4Addr) -> RemoteEndpoint {
    RemoteEndpoint {
        id: ep.id.clone(),
        network_id: ep.network_id.clone(),
        ip: ep.ip.addr(),
        mac: ep.mac,
        vtep,
    }
}

fn ns_name(p: &Path) -> String {
    p.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string()
}

/// `<tool> <flags> -n <ns> <args>`, asserted to succeed; its standard output.
fn run(tool: &str, flags: &[&str], ns: &Path, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(flags)
        .args(["-n", &ns_name(ns)])
        .args(args)
        .output()
        .expect("run iproute2");
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `<tool> -j -n <ns> <args>` parsed; an empty array when the tool prints nothing.
pub fn json(tool: &str, ns: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let text = run(tool, &["-j"], ns, args);
    if text.trim().is_empty() {
        return Vec::new();
    }
    serde_json::from_str(&text).expect("iproute2 json")
}

/// `ip -n <ns> <args>`, asserted to succeed (a test changing a namespace behind the driver).
pub fn ip_cmd(ns: &Path, args: &[&str]) {
    run("ip", &[], ns, args);
}

/// Every JSON object (link, neigh, fdb, route, addr) in `ns` with a string value `needle`.
pub fn mentions(ns: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let needle = format!("\"{needle}\"");
    let lists = [
        json("ip", ns, &["link", "show"]),
        json("ip", ns, &["addr", "show"]),
        json("ip", ns, &["route", "show", "table", "all"]),
        json("ip", ns, &["neigh", "show"]),
        json("bridge", ns, &["fdb", "show"]),
    ];
    for v in lists.iter().flatten() {
        let s = v.to_string();
        if s.contains(&needle) {
            hits.push(s);
        }
    }
    hits
}
