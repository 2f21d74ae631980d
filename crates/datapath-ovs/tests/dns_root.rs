//! Tenant DNS on OVS, at driver level, against a real ovsdb-server and ovs-vswitchd: each
//! tenant's DNS namespace holds its gateways, a tiny DNS server bound there answers `dig` from
//! the tenant's workloads over UDP and TCP; two tenants reusing one subnet and gateway each
//! reach their own server; the namespace and port go with the tenant's last network, a
//! restarted driver keeps them, and its resync removes those of tenants no longer declared. A
//! VLAN network resolves the same way, and again after ovs-vswitchd restarts.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{app_endpoint, app_net, ip, ovs_config, Host};
use contiv_datapath::{Datapath, Encap, FwdMode, NetworkSpec};
use contiv_datapath_ovs::{DnsNetns, OvsConfig, OvsDatapath};

const GW: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 1);

/// Removes the test's DNS namespaces (`<prefix>-d-*`) even when the test fails.
struct NsGuard(String);

impl Drop for NsGuard {
    fn drop(&mut self) {
        let Ok(rd) = std::fs::read_dir("/run/netns") else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{}-d-", self.0)) {
                let _ = std::process::Command::new("ip")
                    .args(["netns", "del", &name])
                    .status();
            }
        }
    }
}

/// Host `tag` (ovs-vswitchd started), the prefix of its DNS namespaces and their guard.
fn dns_host(tag: &str) -> (Host, String, NsGuard) {
    let host = Host::start_named(tag);
    host.start_vswitchd();
    let prefix = format!("{}-x", host.ns);
    let guard = NsGuard(prefix.clone());
    (host, prefix, guard)
}

/// A DNS server answering every A question with `answer`, on `GW:53` (UDP and TCP) inside the
/// namespace `ns`, until dropped.
struct TinyDns {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for TinyDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The answer to `q`: its id and question, one A record `answer` (no EDNS section).
fn answer(q: &[u8], answer: Ipv4Addr) -> Option<Vec<u8>> {
    let mut end = 12;
    while *q.get(end)? != 0 {
        end += usize::from(q[end]) + 1;
    }
    let qend = end + 5;
    let mut r = q.get(..2)?.to_vec();
    r.extend([0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    r.extend(q.get(12..qend)?);
    r.extend([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
    r.extend(answer.octets());
    Some(r)
}

fn tiny_dns(ns: &Path, ip: Ipv4Addr) -> TinyDns {
    let f = std::fs::File::open(ns).unwrap();
    let (udp, tcp) = std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns on this scoped thread only.
            assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
            let a = SocketAddr::from((GW, 53));
            (UdpSocket::bind(a).unwrap(), TcpListener::bind(a).unwrap())
        })
        .join()
        .unwrap()
    });
    let stop = Arc::new(AtomicBool::new(false));
    udp.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    tcp.set_nonblocking(true).unwrap();
    let s1 = stop.clone();
    let u = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while !s1.load(Ordering::Relaxed) {
            if let Ok((n, from)) = udp.recv_from(&mut buf) {
                if let Some(r) = answer(&buf[..n], ip) {
                    let _ = udp.send_to(&r, from);
                }
            }
        }
    });
    let s2 = stop.clone();
    let t = std::thread::spawn(move || {
        while !s2.load(Ordering::Relaxed) {
            let Ok((mut c, _)) = tcp.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let _ = c.set_nonblocking(false);
            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
            let mut len = [0u8; 2];
            if c.read_exact(&mut len).is_err() {
                continue;
            }
            let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if c.read_exact(&mut q).is_err() {
                continue;
            }
            if let Some(r) = answer(&q, ip) {
                let mut out = (r.len() as u16).to_be_bytes().to_vec();
                out.extend(r);
                let _ = c.write_all(&out);
            }
        }
    });
    TinyDns {
        stop,
        threads: vec![u, t],
    }
}

/// What `dig +short` in `wns` prints for `name` asked of the gateway (`tcp`: over TCP).
fn dig(host: &Host, wns: &str, name: &str, tcp: bool) -> String {
    let gw = format!("@{GW}");
    let mut args = vec!["dig", "+short", "+time=2", "+tries=2", &gw, name, "A"];
    if tcp {
        args.push("+tcp");
    }
    let out = host.cmd(wns, &args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn cfg(host: &Host, prefix: &str) -> OvsConfig {
    let mut c = ovs_config(
        &host.ns,
        &host.sock(),
        "ovdnsbr",
        16659,
        "eth0",
        Ipv4Addr::new(192, 0, 2, 1),
    );
    c.dns = Some(DnsNetns {
        dir: "/run/netns".into(),
        prefix: prefix.into(),
    });
    c
}

/// Ports of the bridge marked as a tenant's DNS port: (port name, tenant).
fn dns_ports(host: &Host) -> Vec<String> {
    let out = host
        .cmd(
            &host.ns,
            &[
                "ovs-vsctl",
                "--timeout=10",
                "--format=csv",
                "--no-headings",
                "--columns=name,external_ids",
                "list",
                "Port",
            ],
        )
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("contiv-dns"))
        .map(str::to_string)
        .collect()
}

#[test]
#[ignore = "needs root"]
fn each_tenant_reaches_its_own_dns_server_on_its_gateway() {
    let (mut host, prefix, _guard) = dns_host("dns");
    let dns = DnsNetns {
        dir: "/run/netns".into(),
        prefix: prefix.clone(),
    };
    let dp = OvsDatapath::start(cfg(&host, &prefix)).unwrap();
    // Tenants blue (bridge mode) and red (routing mode) reuse the subnet, the gateway and even
    // the workload address.
    let nets = [
        app_net("blue", 5000, FwdMode::Bridge, Encap::Vxlan),
        app_net("red", 6000, FwdMode::Routing, Encap::Vxlan),
    ];
    let mut eps = vec![];
    for (n, spec) in nets.iter().enumerate() {
        let wns = host.workload_netns(n as u8);
        dp.ensure_network(spec).unwrap();
        let ep = app_endpoint(format!("{}-ep", spec.tenant), &spec.id, 2, &wns);
        dp.add_local_endpoint(&ep).unwrap();
        eps.push(ep);
    }
    let (blue_ns, red_ns): (PathBuf, PathBuf) = (dns.path("blue"), dns.path("red"));
    assert!(blue_ns.exists() && red_ns.exists());
    assert_eq!(dns_ports(&host).len(), 2, "{:?}", dns_ports(&host));
    let blue_srv = tiny_dns(&blue_ns, Ipv4Addr::new(10, 99, 0, 1));
    let red_srv = tiny_dns(&red_ns, Ipv4Addr::new(10, 99, 0, 2));
    let (wb, wr) = (host.workloads[0].clone(), host.workloads[1].clone());
    for tcp in [false, true] {
        assert_eq!(
            dig(&host, &wb, "web.blue.contiv", tcp),
            "10.99.0.1",
            "tcp {tcp}"
        );
        assert_eq!(
            dig(&host, &wr, "web.red.contiv", tcp),
            "10.99.0.2",
            "tcp {tcp}"
        );
    }

    // A restarted driver keeps red's namespace and port (its server still answers once the
    // network is declared again); its resync removes blue's, no longer declared.
    drop(dp);
    // A namespace a killed run made but never gave a port (left between the two) goes too.
    let stray = PathBuf::from(format!("/run/netns/{prefix}-d-0000beef"));
    ip(&["netns", "add", stray.file_name().unwrap().to_str().unwrap()]);
    let dp = OvsDatapath::start(cfg(&host, &prefix)).unwrap();
    dp.ensure_network(&nets[1]).unwrap();
    dp.resync_local_endpoints(&eps[1..]).unwrap();
    assert_eq!(dig(&host, &wr, "web.red.contiv", false), "10.99.0.2");
    assert!(!blue_ns.exists(), "blue's dns namespace is pruned");
    assert!(!stray.exists(), "a dns namespace without a port is pruned");
    assert!(red_ns.exists());
    let ports = dns_ports(&host);
    assert!(
        ports.len() == 1 && ports[0].contains("red"),
        "only red's dns port is left: {ports:?}"
    );
    drop(blue_srv);

    // Red's last network goes: its namespace and port with it.
    dp.remove_network(&nets[1].id).unwrap();
    assert!(!red_ns.exists());
    assert!(dns_ports(&host).is_empty(), "{:?}", dns_ports(&host));
    assert_ne!(dig(&host, &wr, "web.red.contiv", false), "10.99.0.2");
    drop(red_srv);
}

/// VLAN bridge mode: a workload of a VLAN network resolves through its gateway too (its
/// network is a VLAN id in the metadata, the answers come back into it).
#[test]
#[ignore = "needs root"]
fn a_vlan_network_resolves_through_its_gateway() {
    let (mut host, prefix, _guard) = dns_host("dnsv");
    // The trunk uplink: one end of a veth in the host namespace (nothing beyond it here).
    host.add_veth("trunk0", "trunk0p");
    let mut c = cfg(&host, &prefix);
    c.vlan_uplink = Some("trunk0".into());
    let dp = OvsDatapath::start(c).unwrap();
    let spec = NetworkSpec {
        id: "green:v".into(),
        encap: Encap::Vlan,
        vni: 100,
        ..app_net("green", 100, FwdMode::Bridge, Encap::Vxlan)
    };
    dp.ensure_network(&spec).unwrap();
    let wns = host.workload_netns(0);
    dp.add_local_endpoint(&app_endpoint("green-ep".into(), &spec.id, 2, &wns))
        .unwrap();
    let dns = DnsNetns {
        dir: "/run/netns".into(),
        prefix,
    };
    let _srv = tiny_dns(&dns.path("green"), Ipv4Addr::new(10, 99, 0, 3));
    for tcp in [false, true] {
        assert_eq!(
            dig(&host, &wns, "db.green.contiv", tcp),
            "10.99.0.3",
            "tcp {tcp}"
        );
    }
    // A restarted ovs-vswitchd is programmed again by the driver's watcher, the DNS port's
    // flows with the rest.
    host.restart_vswitchd();
    let t = std::time::Instant::now();
    while dig(&host, &wns, "db.green.contiv", false) != "10.99.0.3" {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "no answer after vswitchd restarted"
        );
    }
    eprintln!("answered {:?} after vswitchd restarted", t.elapsed());
    dp.remove_network(&spec.id).unwrap();
    assert!(!dns.path("green").exists());
}

/// A DNS namespace that cannot be made (its directory unusable) costs the network nothing: the
/// network and its workloads work, no DNS port is left on the bridge, and removing the network
/// succeeds.
#[test]
#[ignore = "needs root"]
fn an_unusable_dns_directory_leaves_networks_working() {
    let mut host = Host::start_named("dnsb");
    host.start_vswitchd();
    let file = host.dir.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let mut c = cfg(&host, "unused");
    c.dns = Some(DnsNetns {
        dir: file.join("netns"),
        prefix: "x".into(),
    });
    let dp = OvsDatapath::start(c).unwrap();
    let spec = app_net("blue", 5000, FwdMode::Bridge, Encap::Vxlan);
    dp.ensure_network(&spec).unwrap();
    let mut eps = vec![];
    for n in [2u8, 3] {
        let wns = host.workload_netns(n);
        let ep = app_endpoint(format!("ep{n}"), &spec.id, n, &wns);
        dp.add_local_endpoint(&ep).unwrap();
        eps.push(ep);
    }
    assert!(host.ping(&host.workloads[0], eps[1].ip.addr(), None));
    assert!(dns_ports(&host).is_empty(), "{:?}", dns_ports(&host));
    dp.remove_network(&spec.id).unwrap();
}
