//! netplugin as dockerd's managed (v2) plugin, built and installed by scripts/docker-plugin.sh
//! (offline: the binary under test and the host's nft go into the rootfs).

use std::path::Path;
use std::process::Command;

use crate::dockerd::Dockerd;

/// The plugin's name on every node: also its Docker network and IPAM driver name.
pub const PLUGIN: &str = "contiv/netplugin:swtest";

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/docker-plugin.sh")
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let o = cmd.output().map_err(|e| e.to_string())?;
    if o.status.success() {
        return Ok(());
    }
    Err(format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    ))
}

/// `docker-plugin.sh build DIR BINARY` with `netplugin`, the binary under test.
pub fn build(dir: &Path, netplugin: &Path) {
    run(Command::new("bash")
        .arg(script())
        .arg("build")
        .arg(dir)
        .arg(netplugin))
    .unwrap_or_else(|e| panic!("docker-plugin.sh build: {e}"));
}

/// `STATE_DIR=state docker-plugin.sh install SOCKET PLUGIN DIR ARGS...` against `d`: the plugin
/// created, configured and enabled (dockerd starts the agent in it).
pub fn install(d: &Dockerd, dir: &Path, state: &Path, args: &[String]) {
    let (sock, cli) = d.cli_env();
    run(Command::new("bash")
        .arg(script())
        .arg("install")
        .arg(sock)
        .arg(PLUGIN)
        .arg(dir)
        .args(args)
        .env("STATE_DIR", state)
        .env("DOCKER_CONFIG", cli))
    .unwrap_or_else(|e| panic!("docker-plugin.sh install: {e}\ndockerd log:\n{}", d.logs()));
}
