//! Real-kernel tests of the netprofile driver (`LinuxQos`) with the Linux datapath: a tbf on
//! both ends of a limited endpoint's veth (iperf3 measures the limit both ways), DSCP set on
//! what the workload sends (seen by tcpdump in the receiver), idempotent applies, a restarted
//! driver reading back what is installed, a changed limit, and removal. Root only.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{ep, net};
use contiv_datapath::{
    Datapath, EndpointQos, FwdMode, LocalEndpoint, QosDriver, RateLimit, TenantQos,
};
use contiv_datapath_linux::testbed::{ping, require_root, Testbed};
use contiv_datapath_linux::traffic::{iperf3, tos_values, Capture};
use contiv_datapath_linux::{names, LinuxDatapath, LinuxQos};

fn qos_of(e: &LocalEndpoint, limit: Option<u64>, dscp: Option<u8>) -> EndpointQos {
    EndpointQos {
        id: e.id.clone(),
        network_id: e.network_id.clone(),
        netns_path: e.netns_path.clone(),
        ifname: e.ifname.clone(),
        limit: limit.map(|bps| RateLimit::new(bps, None)),
        dscp,
    }
}

fn tenant(name: &str, eps: Vec<EndpointQos>) -> TenantQos {
    TenantQos {
        tenant: name.into(),
        endpoints: eps.into_iter().map(|e| (e.id.clone(), e)).collect(),
    }
}

/// `tc -j qdisc show dev <dev>` in `ns`: the root qdisc's kind and, for a tbf, its rate (bit/s).
fn root_qdisc(ns: &Path, dev: &str) -> (String, u64) {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["tc", "-j", "qdisc", "show", "dev", dev])
        .output()
        .expect("tc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("tc json");
    let root = v
        .as_array()
        .and_then(|a| a.iter().find(|q| q["root"] == true))
        .cloned()
        .unwrap_or_default();
    let kind = root["kind"].as_str().unwrap_or_default().to_string();
    (kind, root["options"]["rate"].as_u64().unwrap_or(0) * 8)
}

fn nft_table(ns: &Path) -> Option<String> {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["nft", "list", "table", "netdev", "contiv_qos"])
        .output()
        .expect("nft");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn mbit(bps: f64) -> f64 {
    bps / 1e6
}

fn check_mode(mode: FwdMode, t: &str, vni: u32) {
    let tb = Testbed::new(1).expect("testbed");
    let dp = std::sync::Arc::new(LinuxDatapath::new(tb.hosts[0].config()));
    let qos = LinuxQos::new(dp.clone());
    let n = net(t, "n", vni, "10.8.0.0/24", mode);
    dp.ensure_network(&n).expect("network");
    let a = ep(&tb, &format!("{t}-a"), &n, [10, 8, 0, 2]);
    let b = ep(&tb, &format!("{t}-b"), &n, [10, 8, 0, 3]);
    for e in [&a, &b] {
        dp.add_local_endpoint(e).expect("plug");
    }
    assert!(
        ping(&a.netns_path, b.ip.addr(), 20),
        "{mode:?}: a reaches b"
    );
    let tns = dp.tenant_netns_path(t);
    let (ha, hb) = (names::host_veth(&a.id), names::host_veth(&b.id));

    // Nothing wanted: nothing done (no table made either).
    let none = tenant(t, vec![qos_of(&a, None, None), qos_of(&b, None, None)]);
    let s = qos.apply(&none).expect("apply none");
    assert_eq!((s.changed, s.pending), (0, 0), "{s:?}");
    assert!(nft_table(&tns).is_none());

    // a: 10 Mbit/s both ways, DSCP 46.
    let want = tenant(
        t,
        vec![
            qos_of(&a, Some(10_000_000), Some(46)),
            qos_of(&b, None, None),
        ],
    );
    let s = qos.apply(&want).expect("apply");
    assert!(s.changed == 1 && s.dscp_changed, "{s:?}");
    assert_eq!(root_qdisc(&tns, &ha), ("tbf".into(), 10_000_000));
    assert_eq!(
        root_qdisc(&a.netns_path, "eth0"),
        ("tbf".into(), 10_000_000)
    );
    assert_ne!(root_qdisc(&tns, &hb).0, "tbf", "b has no profile");
    let table = nft_table(&tns).expect("dscp table");
    assert!(
        table.contains(&format!("dscp_{ha}")) && !table.contains(&hb),
        "{table}"
    );
    let again = qos.apply(&want).expect("again");
    assert!(
        again.changed == 0 && !again.dscp_changed,
        "idempotent: {again:?}"
    );

    // Measured both ways, within ±15 % of 10 Mbit/s.
    let up = iperf3(&b.netns_path, b.ip.addr(), &a.netns_path, 3, false).expect("iperf3 a->b");
    let down = iperf3(&b.netns_path, b.ip.addr(), &a.netns_path, 3, true).expect("iperf3 b->a");
    eprintln!(
        "{mode:?}: a->b {:.2} Mbit/s, b->a {:.2} Mbit/s",
        mbit(up),
        mbit(down)
    );
    for (dir, bps) in [("from a", up), ("to a", down)] {
        assert!(
            (8.5e6..=11.5e6).contains(&bps),
            "{mode:?} {dir}: {:.2} Mbit/s",
            mbit(bps)
        );
    }

    // DSCP 46 (TOS 0xb8) on what a sends, as b receives it; what b sends is unmarked (b's
    // echo replies copy the request's TOS, so b's own requests are looked at, in a).
    let requests = "icmp[icmptype] == icmp-echo";
    let cap = Capture::start(&b.netns_path, "eth0", requests).expect("tcpdump");
    assert!(ping(&a.netns_path, b.ip.addr(), 5));
    let text = cap.stop();
    let first = tos_values(&text).first().copied();
    assert_eq!(first, Some(0xb8), "{mode:?}: a's requests marked: {text}");
    let cap = Capture::start(&a.netns_path, "eth0", requests).expect("tcpdump");
    assert!(ping(&b.netns_path, a.ip.addr(), 5));
    let text = cap.stop();
    let first = tos_values(&text).first().copied();
    assert_eq!(first, Some(0), "{mode:?}: b's requests unmarked: {text}");

    // A restarted driver reads back what is installed: the limits are left alone.
    let fresh = LinuxQos::new(dp.clone());
    let s = fresh.apply(&want).expect("restart");
    assert_eq!(s.changed, 0, "{s:?}");

    // Changed in place.
    let faster = tenant(
        t,
        vec![
            qos_of(&a, Some(20_000_000), Some(10)),
            qos_of(&b, None, None),
        ],
    );
    let s = fresh.apply(&faster).expect("change");
    assert!(s.changed == 1 && s.dscp_changed, "{s:?}");
    assert_eq!(
        root_qdisc(&a.netns_path, "eth0"),
        ("tbf".into(), 20_000_000)
    );

    // Removed: both ends and the table.
    let s = fresh.apply(&none).expect("remove");
    assert!(s.changed == 1 && s.dscp_changed, "{s:?}");
    assert_ne!(root_qdisc(&tns, &ha).0, "tbf");
    assert_ne!(root_qdisc(&a.netns_path, "eth0").0, "tbf");
    assert!(nft_table(&tns).is_none());
    let started = Instant::now();
    let full = iperf3(&b.netns_path, b.ip.addr(), &a.netns_path, 2, false).expect("iperf3");
    eprintln!(
        "{mode:?}: unlimited a->b {:.0} Mbit/s ({:?})",
        mbit(full),
        started.elapsed()
    );
    assert!(
        full > 100e6,
        "{mode:?}: full speed again: {:.2} Mbit/s",
        mbit(full)
    );

    // An endpoint whose interface is not there yet is reported pending, not an error.
    let ghost = LocalEndpoint {
        id: format!("{t}-ghost"),
        ..a.clone()
    };
    let s = fresh
        .apply(&tenant(t, vec![qos_of(&ghost, Some(1_000_000), None)]))
        .expect("pending");
    assert_eq!(s.pending, 1, "{s:?}");
}

#[test]
#[ignore = "needs root"]
fn bridge_mode_limits_and_marks() {
    require_root();
    check_mode(FwdMode::Bridge, "qosb", 7301);
}

#[test]
#[ignore = "needs root"]
fn routing_mode_limits_and_marks() {
    require_root();
    check_mode(FwdMode::Routing, "qosr", 7302);
}
