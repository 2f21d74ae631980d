//! A dockerd per simulated host for the Docker end-to-end tests: in the host's network namespace
//! and its own mount namespace (a private /run, kept across restarts, with the agent's plugin
//! directory bound on /run/docker/plugins, a private /etc/docker, an empty /run/netns for a
//! managed plugin's tenant namespaces), so the root namespace's Docker setup is never touched;
//! and a busybox-static image imported offline.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use contiv_netplugin::testbed::{eventually, Cluster};

pub const IMAGE: &str = "cnmbox:1";

/// A dockerd of one simulated host; stopped (containers first) when dropped.
pub struct Dockerd {
    child: Child,
    sock: PathBuf,
    cli: PathBuf,
    log: PathBuf,
    /// nsenter's arguments: how to start it again ([`Dockerd::restart`]).
    args: Vec<String>,
    /// Dropped after the fields above, i.e. after dockerd has stopped.
    _mnt: MountNs,
}

impl Dockerd {
    pub fn start(c: &Cluster, host: usize, dir: &Path) -> Dockerd {
        Self::start_with(c, host, dir, &[])
    }

    /// [`Dockerd::start`] with further dockerd flags (`--live-restore`).
    pub fn start_with(c: &Cluster, host: usize, dir: &Path, flags: &[&str]) -> Dockerd {
        let data = dir.join("data");
        let cli = dir.join("cli");
        let run = dir.join("run");
        for d in [&data, &cli, &run] {
            std::fs::create_dir_all(d).expect("docker dirs");
        }
        // In the host's directory, where an agent in docker mode looks for it.
        let sock = c.docker_socket(host);
        let log = dir.join("dockerd.log");
        let plugins = c.docker_plugin_dir(host);
        std::fs::create_dir_all(&plugins).expect("plugin dir");
        let mnt = MountNs::new(
            dir,
            &format!(
                "set -e; mount --bind {run} /run; mkdir -p /run/docker/plugins /run/netns; \
                 mount --bind {plugins} /run/docker/plugins; \
                 if [ -d /etc/docker ]; then mount -t tmpfs cnmetc /etc/docker; fi",
                run = run.display(),
                plugins = plugins.display(),
            ),
        );
        let mut args: Vec<String> = [
            format!("--mount={}", mnt.file.display()),
            format!("--net={}", c.tb.hosts[host].netns.display()),
            "--".into(),
            "dockerd".into(),
            format!("--data-root={}", data.display()),
            "--exec-root=/run/docker/exec".into(),
            "--pidfile=/run/docker/dockerd.pid".into(),
            format!("--host=unix://{}", sock.display()),
        ]
        .into();
        args.extend(
            [
                "--storage-driver=vfs",
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--ip-forward=false",
            ]
            .iter()
            .chain(flags)
            .map(|f| f.to_string()),
        );
        let child = spawn_dockerd(&args, &log);
        let d = Dockerd {
            child,
            sock,
            cli,
            log,
            args,
            _mnt: mnt,
        };
        d.wait_up();
        d
    }

    fn wait_up(&self) {
        let up = eventually(Duration::from_secs(40), || self.run(&["version"]).is_ok());
        assert!(up, "dockerd did not start:\n{}", self.logs());
    }

    /// Stops dockerd (its containers stop with it) and starts it again on the same state.
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn_dockerd(&self.args, &self.log);
        self.wait_up();
    }

    /// SIGTERM, then SIGKILL after 15 s.
    pub fn stop(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: signals our own child, by its pid.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The Engine API socket and the CLI's config dir, for tools that run `docker` themselves
    /// (the swarm e2e runs scripts/docker-plugin.sh).
    #[allow(dead_code)] // used by e2e_swarm, not e2e_docker
    pub fn cli_env(&self) -> (&Path, &Path) {
        (&self.sock, &self.cli)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `docker ARGS` against this dockerd: stdout, or stderr as the error.
    pub fn run(&self, args: &[&str]) -> Result<String, String> {
        let o = Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .args(args)
            .env("DOCKER_CONFIG", &self.cli)
            .output()
            .map_err(|e| format!("docker: {e}"))?;
        if o.status.success() {
            Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&o.stderr).to_string())
        }
    }

    pub fn ok(&self, args: &[&str]) -> String {
        self.run(args)
            .unwrap_or_else(|e| panic!("docker {args:?}: {e}\ndockerd log:\n{}", self.logs()))
    }

    /// A busybox-static image, built and imported offline.
    /// `docker network create -d netplugin --ipam-driver netplugin` named `name`, with driver
    /// options `opts` (`-o`) and IPAM options `ipam_opts` (`--ipam-opt`).
    pub fn create_netplugin_network(
        &self,
        name: &str,
        opts: &[&str],
        ipam_opts: &[&str],
    ) -> String {
        let mut args = vec![
            "network",
            "create",
            "-d",
            "netplugin",
            "--ipam-driver",
            "netplugin",
        ];
        for o in opts {
            args.extend(["-o", *o]);
        }
        for o in ipam_opts {
            args.extend(["--ipam-opt", *o]);
        }
        args.push(name);
        self.ok(&args)
    }

    pub fn import_image(&self, dir: &Path) {
        let root = dir.join("rootfs");
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).expect("rootfs");
        for d in ["tmp", "proc", "sys", "dev", "etc", "root", "run"] {
            std::fs::create_dir_all(root.join(d)).expect("rootfs");
        }
        std::fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static");
        for app in ["sh", "sleep", "ping", "ip", "cat", "true"] {
            std::os::unix::fs::symlink("busybox", bin.join(app)).expect("symlink");
        }
        let tar = dir.join("rootfs.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("tar");
        assert!(st.success());
        self.ok(&[
            "import",
            "--change",
            "ENV PATH=/bin",
            &tar.display().to_string(),
            IMAGE,
        ]);
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Ok(ids) = self.run(&["ps", "-aq"]) {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = self.run(&args);
            }
        }
        self.stop();
    }
}

/// `nsenter ARGS` (dockerd in the host's mount and network namespaces), output appended to `log`.
fn spawn_dockerd(args: &[String], log: &Path) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log");
    let err = out.try_clone().expect("log");
    let mut c = Command::new("nsenter");
    c.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    c.spawn().expect("spawn dockerd")
}

/// The simulated host's own mount namespace, kept (bound on a file) while the [`Dockerd`] lives,
/// so that a restarted dockerd finds the mounts the previous one made: the bind mounts of its
/// containers' network namespaces (`--live-restore` restores their sandboxes through them) and
/// the private /run (a directory of the test, for containerd's shims and runc's state).
struct MountNs {
    /// A private bind mount of a directory of the test: `unshare --mount=FILE` needs one.
    dir: PathBuf,
    file: PathBuf,
}

impl MountNs {
    /// A new mount namespace set up by the shell `script`.
    fn new(parent: &Path, script: &str) -> MountNs {
        let dir = parent.join("mntns");
        std::fs::create_dir_all(&dir).expect("mntns dir");
        let file = dir.join("mnt");
        let ns = MountNs { dir, file };
        sh(&format!(
            "mount --bind {d} {d} && mount --make-private {d} && touch {f}",
            d = ns.dir.display(),
            f = ns.file.display()
        ));
        let o = Command::new("unshare")
            .arg(format!("--mount={}", ns.file.display()))
            .args(["--propagation", "private", "--", "sh", "-c", script])
            .output()
            .expect("unshare");
        assert!(
            o.status.success(),
            "mount namespace: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        ns
    }
}

impl Drop for MountNs {
    fn drop(&mut self) {
        // The namespace goes with its last process once unbound.
        for m in [&self.file, &self.dir] {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

fn sh(script: &str) {
    let o = Command::new("sh")
        .args(["-c", script])
        .output()
        .expect("sh");
    assert!(
        o.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Names of the links in network namespace `ns` (a path).
pub fn links(ns: &Path) -> Vec<String> {
    let o = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["ip", "-o", "link", "show"])
        .output()
        .expect("ip");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}
