//! `contiv-bench ovs iperf`: iperf3 (one stream) through our pipeline vs a plain OVS `NORMAL`
//! bridge, on the same simulated hosts, bridges, ports, veths and workloads; only the flow
//! table differs between the two.
//!
//! - `--hosts 1`: one host, two workloads on its bridge.
//! - `--hosts 2`: two hosts joined by an underlay veth, userspace VXLAN between them (the
//!   underlay address on a netdev bridge `br-phy` holding the veth, the tunnel port on the
//!   integration bridge with `key=flow`), one workload on each. The plain bridge floods and
//!   learns over the same tunnel port (VNI 0).
//!
//! The pipeline is the agent's: [`render`] of one VXLAN network with the workloads as local (and
//! remote) endpoints, installed by [`OvsSwitch::apply`] (a new round each time it comes back,
//! as after an agent restart). The plain bridge is `priority=0 actions=NORMAL`, installed by
//! `ovs-ofctl --bundle replace-flows`. Modes alternate run by run (the pipeline first in even
//! rounds, the plain bridge first in odd ones); medians of `--runs` runs each.
//! Workloads have checksum offload off (the userspace datapath fills in no checksum) and, across
//! hosts, MTU 1450 (VXLAN's 50 bytes over a 1500-byte underlay), in both modes.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};
use clap::Parser;
use contiv_datapath::{
    Encap, FwdMode, LocalEndpoint, MacAddr, NetworkSpec, Plumbing, RemoteEndpoint,
};
use contiv_datapath_ovs::switch::{OvsSwitch, SwitchConfig};
use contiv_datapath_ovs::{render, Desired, GroupNumbers, Ports};
use contiv_ovsdb::vswitch::{PortKind, PortSpec, TunnelKey};
use contiv_policy::HostPolicy;

use super::host::{cpu_secs, in_ns, run, OvsHost};
use crate::cni::{iperf, loadavg, median};
use crate::policy::{fmt, Row};

const BRIDGE: &str = "br-int";
const OF_PORT: u16 = 16654;
const TUNNEL_OFPORT: u16 = 1;

#[derive(Debug, Parser)]
pub struct Args {
    /// Simulated hosts: 1 (both workloads on one bridge) or 2 (across userspace VXLAN).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub hosts: u8,
    /// iperf3 runs per mode.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Seconds per iperf3 run.
    #[arg(long, default_value_t = 5)]
    pub secs: u32,
}

fn net() -> NetworkSpec {
    NetworkSpec {
        id: "bench:app".into(),
        tenant: "bench".into(),
        vni: 5000,
        subnet: "10.10.0.0/24".parse().expect("literal subnet"),
        gateway: Ipv4Addr::new(10, 10, 0, 1),
        fwd_mode: FwdMode::Bridge,
        encap: Encap::Vxlan,
        mtu: 0,
    }
}

/// One workload: where it lives and its endpoint.
struct Wl {
    host: usize,
    ns: PathBuf,
    ep: LocalEndpoint,
    ofport: u32,
}

/// The simulated hosts with their workloads and what each host's pipeline is rendered from.
struct Bed {
    hosts: Vec<OvsHost>,
    vteps: Vec<Ipv4Addr>,
    wls: Vec<Wl>,
}

fn cfg(h: &OvsHost) -> SwitchConfig {
    SwitchConfig {
        ovsdb: format!("unix:{}", h.sock()),
        bridge: BRIDGE.into(),
        openflow_port: OF_PORT,
        owner: "contiv-bench".into(),
    }
}

impl Bed {
    fn build(n: usize) -> anyhow::Result<Bed> {
        let mut bed = Bed {
            hosts: vec![],
            vteps: vec![],
            wls: vec![],
        };
        for i in 0..n {
            bed.hosts.push(OvsHost::start(&format!("ip{i}"))?);
            bed.vteps.push(Ipv4Addr::new(172, 31, 250, 1 + i as u8));
        }
        if n == 2 {
            bed.underlay()?;
        }
        let pid = std::process::id();
        let addrs: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 10, 0, 2), Ipv4Addr::new(10, 10, 0, 3)];
        for (k, a) in addrs.iter().enumerate() {
            let hi = k % n;
            let host_if = format!("ovb{pid}w{k}");
            let mac = MacAddr::from_ipv4(*a);
            let h = &mut bed.hosts[hi];
            let wns = h.workload(
                &format!("w{k}"),
                &host_if,
                &format!("{a}/24"),
                &mac.to_string(),
            )?;
            if n == 2 {
                run(&mut h.cmd(&wns, &["ip", "link", "set", "eth0", "mtu", "1450"]))?;
            }
            let c = cfg(h);
            let spec = PortSpec::new(BRIDGE, &host_if, PortKind::System);
            let ofport = in_ns(&h.netns_path(), || async move {
                let sw = OvsSwitch::start(c).await?;
                anyhow::Ok(sw.ensure_port(&spec).await?)
            })??;
            bed.wls.push(Wl {
                host: hi,
                ns: PathBuf::from("/run/netns").join(&wns),
                ep: LocalEndpoint {
                    id: format!("ep{k}"),
                    network_id: net().id,
                    netns_path: PathBuf::from("/run/netns").join(&wns),
                    ifname: "eth0".into(),
                    ip: format!("{a}/24").parse().context("workload address")?,
                    mac,
                    gateway: net().gateway,
                    plumbing: Plumbing::InWorkload,
                },
                ofport,
            });
        }
        Ok(bed)
    }

    /// The underlay: a veth between the two hosts, each end on a netdev bridge `br-phy`
    /// (NORMAL) whose internal port holds the host's VTEP address, and a VXLAN port (key=flow)
    /// to the other host on each integration bridge.
    fn underlay(&mut self) -> anyhow::Result<()> {
        let pid = std::process::id();
        let names = [format!("ovb{pid}u0"), format!("ovb{pid}u1")];
        run(Command::new("ip").args([
            "link",
            "add",
            &names[0],
            "netns",
            &self.hosts[0].ns,
            "type",
            "veth",
            "peer",
            "name",
            &names[1],
            "netns",
            &self.hosts[1].ns,
        ]))?;
        for (i, name) in names.iter().enumerate() {
            let h = &self.hosts[i];
            h.exec(&["ip", "link", "set", name, "up"])?;
            h.exec(&[
                "ovs-vsctl",
                "add-br",
                "br-phy",
                "--",
                "set",
                "bridge",
                "br-phy",
                "datapath_type=netdev",
                "--",
                "add-port",
                "br-phy",
                name,
            ])?;
            let cidr = format!("{}/24", self.vteps[i]);
            h.exec(&["ip", "addr", "add", &cidr, "dev", "br-phy"])?;
            h.exec(&["ip", "link", "set", "br-phy", "up"])?;
            let (local, remote) = (self.vteps[i], self.vteps[1 - i]);
            let c = cfg(h);
            let spec = PortSpec {
                ofport_request: Some(TUNNEL_OFPORT),
                ..PortSpec::new(
                    BRIDGE,
                    &format!("ovb{pid}vx"),
                    PortKind::Vxlan {
                        remote_ip: IpAddr::V4(remote),
                        local_ip: Some(IpAddr::V4(local)),
                        key: TunnelKey::Flow,
                    },
                )
            };
            let port = in_ns(&h.netns_path(), || async move {
                let sw = OvsSwitch::start(c).await?;
                anyhow::Ok(sw.ensure_port(&spec).await?)
            })??;
            if port != u32::from(TUNNEL_OFPORT) {
                bail!("tunnel port got ofport {port}, not {TUNNEL_OFPORT}");
            }
        }
        Ok(())
    }

    /// Installs host `i`'s pipeline with the agent's switch code (a new round each call).
    fn pipeline(&self, i: usize) -> anyhow::Result<()> {
        let h = &self.hosts[i];
        let mut ports = Ports::default();
        let mut locals = vec![];
        let mut remotes = vec![];
        for w in &self.wls {
            if w.host == i {
                ports.endpoints.insert(w.ep.id.clone(), w.ofport);
                locals.push(w.ep.clone());
            } else {
                let vtep = self.vteps[w.host];
                ports.tunnels.insert(vtep, u32::from(TUNNEL_OFPORT));
                remotes.push(RemoteEndpoint {
                    id: w.ep.id.clone(),
                    network_id: w.ep.network_id.clone(),
                    ip: w.ep.ip.addr(),
                    mac: w.ep.mac,
                    vtep,
                });
            }
        }
        let c = cfg(h);
        in_ns(&h.netns_path(), || async move {
            let mut sw = OvsSwitch::start(c).await?;
            let tenants: BTreeMap<String, u16> = [("bench".to_string(), 1)].into_iter().collect();
            let r = render(&Desired {
                networks: &[net()],
                local_endpoints: &locals,
                remote_endpoints: &remotes,
                policy: &HostPolicy::new(),
                ports: &ports,
                tenants: &tenants,
                groups: &GroupNumbers::default(),
                services: &BTreeMap::new(),
                round: sw.round(),
            });
            if !r.pending.is_empty() {
                bail!("rendering left objects out: {:?}", r.pending);
            }
            sw.apply(&r, true).await?;
            anyhow::Ok(())
        })?
    }

    /// Replaces every flow of host `i`'s integration bridge by `priority=0 actions=NORMAL`.
    fn normal(&self, i: usize, file: &std::path::Path) -> anyhow::Result<()> {
        let f = file.display().to_string();
        self.hosts[i].ofctl(&["--bundle"], "replace-flows", BRIDGE, &[&f])?;
        Ok(())
    }

    /// CPU seconds every host's ovs-vswitchd has used so far.
    fn vswitchd_cpu(&self) -> anyhow::Result<f64> {
        let mut sum = 0.0;
        for h in &self.hosts {
            let pid = h
                .pid("ovs-vswitchd")
                .ok_or_else(|| anyhow::anyhow!("{}: no ovs-vswitchd", h.ns))?;
            sum += cpu_secs(pid)?;
        }
        Ok(sum)
    }

    fn ping(&self) -> bool {
        let (a, b) = (&self.wls[0], &self.wls[1]);
        let ns = crate::cni::ns_name(&a.ns);
        let to = b.ep.ip.addr().to_string();
        (0..20).any(|_| {
            Command::new("ip")
                .args([
                    "netns", "exec", &ns, "ping", "-c", "1", "-W", "1", "-q", &to,
                ])
                .output()
                .is_ok_and(|o| o.status.success())
        })
    }
}

pub fn run_bench(args: &Args) -> anyhow::Result<Vec<Row>> {
    if Command::new("iperf3").arg("--version").output().is_err() {
        bail!("iperf3 not installed (apt: iperf3)");
    }
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let n = usize::from(args.hosts);
    let bed = Bed::build(n)?;
    let dir = tempfile::Builder::new().prefix("ovb-iperf").tempdir()?;
    let normal = dir.path().join("normal.txt");
    std::fs::write(&normal, "priority=0 actions=NORMAL\n")?;
    let load0 = loadavg();
    // Per mode: Gbit/s per run, and ovs-vswitchd CPU seconds per GB carried (all hosts).
    let (mut ours, mut plain) = (Sample::default(), Sample::default());
    let (server, client) = (&bed.wls[1], &bed.wls[0]);
    let addr = server.ep.ip.addr().to_string();
    for round in 0..args.runs {
        let order: [bool; 2] = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for pipeline in order {
            for i in 0..n {
                if pipeline {
                    bed.pipeline(i)?;
                } else {
                    bed.normal(i, &normal)?;
                }
            }
            if !bed.ping() {
                bail!(
                    "{} mode: {} cannot reach {addr}",
                    if pipeline { "pipeline" } else { "NORMAL" },
                    client.ep.ip
                );
            }
            let port = 5201 + (round * 2 + usize::from(pipeline)) as u16;
            let cpu0 = bed.vswitchd_cpu()?;
            let g = iperf(&server.ns, &client.ns, &addr, args.secs, port)
                .with_context(|| format!("iperf3 run {round}"))?;
            // iperf3's settle wait is before its run; what vswitchd used beyond the run itself
            // (idle wake-ups) is small next to seconds of forwarding.
            let cpu = bed.vswitchd_cpu()? - cpu0;
            let gb = g * f64::from(args.secs) / 8.0;
            eprintln!(
                "[ovs iperf] run {round}: {:<8} {g:.3} Gbit/s, vswitchd {:.2} CPU-s/GB",
                if pipeline { "pipeline" } else { "NORMAL" },
                cpu / gb
            );
            let s = if pipeline { &mut ours } else { &mut plain };
            s.gbps.push(g);
            s.cpu_per_gb.push(cpu / gb);
        }
    }
    let where_ = if n == 1 {
        "one host"
    } else {
        "2 hosts over userspace VXLAN"
    };
    eprintln!(
        "[ovs iperf] {where_}: pipeline {:.3?} NORMAL {:.3?}; CPU-s/GB pipeline {:.2?} NORMAL {:.2?}; load {load0} -> {}",
        ours.gbps, plain.gbps, ours.cpu_per_gb, plain.cpu_per_gb,
        loadavg()
    );
    let list = |v: &[f64]| v.iter().map(|g| fmt(*g)).collect::<Vec<_>>().join(" ");
    let (o, p) = (median(ours.gbps.clone()), median(plain.gbps.clone()));
    let (oc, pc) = (
        median(ours.cpu_per_gb.clone()),
        median(plain.cpu_per_gb.clone()),
    );
    Ok(vec![
        Row::new(
            "ovs iperf",
            format!(
                "iperf3 1 stream {} s, {where_}, our pipeline (runs {}) vs NORMAL (runs {}), median",
                args.secs,
                list(&ours.gbps),
                list(&plain.gbps)
            ),
            "Gbit/s",
            o,
        )
        .vs("plain OVS NORMAL bridge", p)
        .target("≥ 0.9×", o >= 0.9 * p),
        Row::new(
            "ovs iperf",
            format!(
                "ovs-vswitchd CPU per GB carried (all hosts), {where_}, pipeline (runs {}) vs NORMAL (runs {}), median",
                list(&ours.cpu_per_gb),
                list(&plain.cpu_per_gb)
            ),
            "CPU-s/GB",
            oc,
        )
        .vs("plain OVS NORMAL bridge", pc),
    ])
}

#[derive(Default)]
struct Sample {
    gbps: Vec<f64>,
    cpu_per_gb: Vec<f64>,
}
