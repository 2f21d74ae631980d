//! `OvsSwitch` against a real ovsdb-server and ovs-vswitchd (userspace datapath, own netns): the
//! bridge is made and marked ours, workload ports added, the rendering installed as one bundle;
//! a restart installs a new cookie round and leaves nothing of the old; churn sends only the
//! difference. Bad set-ups (ovsdb-server or ovs-vswitchd not running, a bridge that is not ours)
//! get a clear error and change nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use common::{demo_ep, demo_net, run, switch_config, Host};
use contiv_datapath::LocalEndpoint;
use contiv_datapath_ovs::switch::{OvsSwitch, SwitchConfig};
use contiv_datapath_ovs::{dump, render, Desired, GroupNumbers, Ports};
use contiv_ovsdb::vswitch::{PortKind, PortSpec};
use contiv_policy::HostPolicy;

fn lines(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.contains("cookie="))
        .map(|l| l.trim().to_string())
        .collect()
}

/// The flows for `locals` in round `round`.
fn rendering(locals: &[LocalEndpoint], ports: &Ports, round: u16) -> contiv_datapath_ovs::Rendered {
    let tenants: BTreeMap<String, u16> = [("demo".to_string(), 1)].into_iter().collect();
    let r = render(&Desired {
        networks: &[demo_net()],
        local_endpoints: locals,
        remote_endpoints: &[],
        policy: &HostPolicy::new(),
        ports,
        tenants: &tenants,
        groups: &GroupNumbers::default(),
        services: &Default::default(),
        round,
    });
    assert!(r.pending.is_empty(), "{:?}", r.pending);
    r
}

#[test]
#[ignore = "needs root"]
fn rounds_replace_each_other_and_churn_sends_only_the_difference() {
    let mut host = Host::start_named("r");
    host.start_vswitchd();
    let pid = std::process::id() % 100_000;
    let mut locals = vec![];
    let mut names = vec![];
    for n in [2u8, 3] {
        let host_if = format!("ovr{pid}w{n}");
        let wns = host.workload(u32::from(n), &host_if, Ipv4Addr::new(10, 10, 0, n));
        locals.push(demo_ep(n, &wns));
        names.push(host_if);
    }
    let host = Arc::new(host);
    let h = host.clone();
    let config = switch_config(&host.sock(), "ovrbr", 16654);
    host.in_ns(move || async move {
        let mut sw = OvsSwitch::start(config.clone()).await.unwrap();
        assert_eq!(sw.round(), 1, "nothing of ours on the switch yet");
        let mut ports = Ports::default();
        for (ep, name) in locals.iter().zip(&names) {
            let mut spec = PortSpec::new(sw.bridge(), name, PortKind::System);
            spec.external_ids
                .insert("contiv-endpoint".into(), ep.id.clone());
            ports
                .endpoints
                .insert(ep.id.clone(), sw.ensure_port(&spec).await.unwrap());
        }
        let r1 = rendering(&locals, &ports, sw.round());
        let t = std::time::Instant::now();
        assert_eq!(sw.apply(&r1, true).await.unwrap(), r1.flows.len());
        eprintln!("round 1: {} flows in {:?}", r1.flows.len(), t.elapsed());
        assert_eq!(lines(&h.dump_flows("ovrbr")), lines(&dump::dump(&r1.flows)));
        let (w2, w3) = (&h.workloads[0], &h.workloads[1]);
        assert!(h.ping(w2, Ipv4Addr::new(10, 10, 0, 3), None), "w2 → w3");

        // A restart: a new agent run takes round 2; its first apply replaces every flow and
        // leaves none of round 1, and traffic flows throughout.
        drop(sw);
        let mut sw = OvsSwitch::start(config.clone()).await.unwrap();
        assert_eq!(sw.round(), 2);
        let r2 = rendering(&locals, &ports, 2);
        let t = std::time::Instant::now();
        sw.apply(&r2, true).await.unwrap();
        eprintln!("round 2 replaced round 1 in {:?}", t.elapsed());
        let held = h.dump_flows("ovrbr");
        assert_eq!(lines(&held), lines(&dump::dump(&r2.flows)));
        assert!(
            !held.contains("cookie=0x1"),
            "nothing of round 1 left: {held}"
        );
        assert!(h.ping(w3, Ipv4Addr::new(10, 10, 0, 2), None), "w3 → w2");

        // Churn: w3 leaves; only its six flows go, in one bundle.
        let r3 = rendering(&locals[..1], &ports, 2);
        assert_eq!(sw.apply(&r3, true).await.unwrap(), 6);
        assert_eq!(lines(&h.dump_flows("ovrbr")), lines(&dump::dump(&r3.flows)));
        assert!(!h.ping(w2, Ipv4Addr::new(10, 10, 0, 3), None), "w3 is gone");
        assert_eq!(
            sw.apply(&r3, true).await.unwrap(),
            0,
            "converged: nothing to send"
        );
    });
}

#[test]
#[ignore = "needs root"]
fn bad_setups_get_a_clear_error_and_change_nothing() {
    let host = Arc::new(Host::start_named("b"));
    // ovsdb-server runs, ovs-vswitchd does not yet.
    run(&mut host.cmd(&host.ns, &["ovs-vsctl", "--no-wait", "init"]));
    let h = host.clone();
    let (no_db, no_vswitchd) = (
        SwitchConfig {
            ovsdb: format!("unix:{}/nothing.sock", host.dir.path().display()),
            ..switch_config(&host.sock(), "ovbbr", 16655)
        },
        switch_config(&host.sock(), "ovbbr", 16655),
    );
    let list_br = |h: &Host| {
        let out = run(&mut h.cmd(&h.ns, &["ovs-vsctl", "--no-wait", "list-br"]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    host.in_ns(move || async move {
        let e = OvsSwitch::start(no_db).await.err().unwrap().to_string();
        assert!(e.contains("is ovsdb-server running?"), "{e}");
        let e = OvsSwitch::start(no_vswitchd)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("is ovs-vswitchd running?"), "{e}");
        assert_eq!(
            list_br(&h),
            "",
            "the bridge made for the attempt is gone again"
        );
    });

    // A bridge someone else made is refused and left as it was.
    run(&mut host.cmd(
        &host.ns,
        &["ovs-vsctl", "--no-wait", "add-br", "ovbforeign"],
    ));
    let before = run(&mut host.cmd(
        &host.ns,
        &["ovs-vsctl", "--no-wait", "list", "Bridge", "ovbforeign"],
    ))
    .stdout;
    let foreign = switch_config(&host.sock(), "ovbforeign", 16656);
    host.in_ns(move || async move {
        let e = OvsSwitch::start(foreign).await.err().unwrap().to_string();
        assert!(e.contains("not managed by contiv"), "{e}");
    });
    let after = run(&mut host.cmd(
        &host.ns,
        &["ovs-vsctl", "--no-wait", "list", "Bridge", "ovbforeign"],
    ))
    .stdout;
    assert_eq!(before, after);
}
