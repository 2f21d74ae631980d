//! `netplugin --datapath ovs` is chosen by the binary's one factory: it refuses to start, with
//! a message saying what to do, when OVS is not running or a driver of the other datapath was
//! asked for (nftables policy or services on ovs, openflow policy on linux), and touches nothing
//! (no state written). Policy defaults to the datapath's own (`auto`).

use std::process::Command;

fn netplugin(dir: &std::path::Path, extra: &[&str]) -> (bool, String, bool) {
    let state = dir.join("state");
    let out = Command::new(env!("CARGO_BIN_EXE_netplugin"))
        .args(["--vtep-ip", "127.0.0.1", "--datapath", "ovs"])
        .arg("--state-dir")
        .arg(&state)
        .arg("--cni-socket")
        .arg(dir.join("cni.sock"))
        .arg("--ovsdb")
        .arg(format!("unix:{}", dir.join("no-ovsdb.sock").display()))
        .args(extra)
        .output()
        .expect("run netplugin");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        dir.join("cni.sock").exists(),
    )
}

#[test]
fn ovs_datapath_without_ovs_or_with_another_datapaths_driver_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    // Defaults (policy and services `auto`): the OVS drivers, so only OVS itself is missing.
    let (ok, err, sock) = netplugin(dir.path(), &[]);
    assert!(!ok && !sock);
    assert!(err.contains("is ovsdb-server running?"), "{err}");
    let (ok, err, sock) = netplugin(dir.path(), &["--policy", "nftables"]);
    assert!(!ok && !sock);
    assert!(err.contains("--policy openflow or auto"), "{err}");
    let (ok, err, sock) = netplugin(dir.path(), &["--services", "nftables"]);
    assert!(!ok && !sock);
    assert!(err.contains("--services openflow or auto"), "{err}");
    // The command lines that worked before still parse and get as far as OVS.
    for extra in [
        &["--policy", "none", "--services", "none"][..],
        &["--policy", "openflow"],
        &["--services", "openflow"],
    ] {
        let (ok, err, sock) = netplugin(dir.path(), extra);
        assert!(!ok && !sock);
        assert!(err.contains("is ovsdb-server running?"), "{extra:?}: {err}");
    }
    assert!(!dir.path().join("state").exists(), "nothing written");
}

#[test]
fn openflow_policy_on_the_linux_datapath_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_netplugin"))
        .args(["--vtep-ip", "127.0.0.1", "--policy", "openflow"])
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--cni-socket")
        .arg(dir.path().join("cni.sock"))
        .output()
        .expect("run netplugin");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--policy openflow needs --datapath ovs"),
        "{err}"
    );
    assert!(!dir.path().join("cni.sock").exists());
}
