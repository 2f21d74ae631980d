//! `netplugin --datapath ovs` is chosen by the binary's one factory: it refuses to start, with
//! a message saying what to do, when OVS is not running or policy/services were asked of it
//! (not in its pipeline yet), and touches nothing (no state written).

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
fn ovs_datapath_without_ovs_or_with_policy_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, err, sock) = netplugin(dir.path(), &[]);
    assert!(!ok && !sock);
    assert!(err.contains("add --policy none --services none"), "{err}");
    let (ok, err, sock) = netplugin(dir.path(), &["--policy", "none", "--services", "none"]);
    assert!(!ok && !sock);
    assert!(err.contains("is ovsdb-server running?"), "{err}");
}
