//! End-to-end with a real container runtime: containerd 1.6 + runc run a pod sandbox through
//! their CRI, with a CNI config whose plugin is our `contivk8s` pointed at host 1's agent of a
//! 2-host test cluster. The pod gets the address netmaster allocated and reaches (ICMP, TCP) a
//! workload on host 2; stopping and removing the sandbox runs CNI DEL and netmaster forgets the
//! endpoint.
//!
//! containerd runs as a child process in the root namespace with its own root/state/socket dirs in
//! a temp dir (`ctvcd-<pid>-…`); the pod's netns is created by containerd (under its state dir, so
//! `ip netns` never lists it) and its veth peer goes into host 1's tenant namespace, driven by the
//! agent through `--host-netns`. The CRI client is a small gRPC-over-HTTP/2 client with
//! hand-written prost messages (no protoc). Images (the sandbox image: busybox-static sleeping) are
//! built offline as a docker-archive tar and imported with `ctr -n k8s.io images import`.
//!
//! Needs root: `#[ignore = "needs root"]`, run as root with `--include-ignored`. Skipped (not
//! failed) when containerd, ctr, runc, a static busybox or the CNI `loopback` plugin (containerd
//! sets up `lo` with it) are missing. The guard stops containerd by PID, kills the shims and
//! sandbox processes it started (matched by this run's temp dir), unmounts what is left under
//! that dir and removes it, also on panic; leftovers of killed runs are reaped at the next start.

mod common;

use common::bins;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use contiv_netplugin::testbed::{
    dead_run_dirs, eventually, ping, require_root, tcp_exchange, Cluster,
};
use serde_json::{json, Value};

const TMP_PREFIX: &str = "ctvcd-";
const CRI_NS: &str = "k8s.io";
const SANDBOX_IMAGE: &str = "localhost/contiv-test-pause:1";

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

/// True when `path` is an ELF executable without a program interpreter (statically linked).
fn is_static_elf(path: &Path) -> bool {
    let Ok(b) = std::fs::read(path) else {
        return false;
    };
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap_or_default()) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= b.len() && u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or_default()) != 3
    })
}

/// The tools this test needs.
struct Tools {
    containerd: PathBuf,
    ctr: PathBuf,
    runc: PathBuf,
    busybox: PathBuf,
    loopback: PathBuf,
}

fn tools() -> Result<Tools, String> {
    let need = |n: &str| which(n).ok_or_else(|| format!("{n} not installed"));
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| is_static_elf(p))
        .ok_or("no static busybox (apt: busybox-static)")?;
    let loopback = ["/usr/lib/cni/loopback", "/opt/cni/bin/loopback"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or("no CNI loopback plugin (apt: containernetworking-plugins)")?;
    Ok(Tools {
        containerd: need("containerd")?,
        ctr: need("ctr")?,
        runc: need("runc")?,
        busybox,
        loopback,
    })
}

// ---------------------------------------------------------------------------------------------
// Offline image: a docker-archive tar (what `docker save` writes) with one layer holding a static
// busybox and its applets.

/// A minimal ustar writer.
struct Tar(Vec<u8>);

impl Tar {
    fn entry(&mut self, name: &str, kind: u8, mode: u32, link: &str, data: &[u8]) {
        assert!(
            name.len() < 100 && link.len() < 100,
            "tar name too long: {name}"
        );
        let mut h = [0u8; 512];
        let put =
            |h: &mut [u8; 512], off: usize, s: &[u8]| h[off..off + s.len()].copy_from_slice(s);
        put(&mut h, 0, name.as_bytes());
        put(&mut h, 100, format!("{mode:07o}\0").as_bytes());
        put(&mut h, 108, b"0000000\0");
        put(&mut h, 116, b"0000000\0");
        put(&mut h, 124, format!("{:011o}\0", data.len()).as_bytes());
        put(
            &mut h,
            136,
            format!("{:011o}\0", 1_704_067_200u64).as_bytes(),
        );
        put(&mut h, 148, b"        ");
        h[156] = kind;
        put(&mut h, 157, link.as_bytes());
        put(&mut h, 257, b"ustar\0");
        put(&mut h, 263, b"00");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
        self.0.extend_from_slice(&h);
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().div_ceil(512) * 512, 0);
    }
    fn dir(&mut self, name: &str) {
        self.entry(&format!("{name}/"), b'5', 0o755, "", &[]);
    }
    fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, b'0', mode, "", data);
    }
    fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, b'2', 0o777, target, &[]);
    }
    fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&[0u8; 1024]);
        self.0
    }
}

fn sha256_hex(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils)");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = data.to_vec();
    let w = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("sha256sum");
    w.join().expect("writer").expect("write sha256sum");
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

/// Writes a docker-archive of busybox named `name` with `entrypoint` to `out`.
fn build_image(busybox: &Path, name: &str, entrypoint: &[&str], out: &Path) {
    let mut layer = Tar(Vec::new());
    for d in [
        "bin", "dev", "etc", "proc", "sys", "tmp", "root", "run", "var",
    ] {
        layer.dir(d);
    }
    layer.file(
        "bin/busybox",
        0o755,
        &std::fs::read(busybox).expect("read busybox"),
    );
    for app in [
        "sh", "sleep", "ping", "nc", "ip", "cat", "echo", "true", "ls", "wget",
    ] {
        layer.symlink(&format!("bin/{app}"), "busybox");
    }
    layer.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n");
    layer.file("etc/group", 0o644, b"root:x:0:\n");
    let layer = layer.finish();
    let layer_digest = sha256_hex(&layer);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let config = json!({
        "architecture": arch, "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Entrypoint": entrypoint, "Env": ["PATH=/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "contiv e2e test"}],
    })
    .to_string();
    let config_digest = sha256_hex(config.as_bytes());
    let manifest = json!([{"Config": format!("{config_digest}.json"), "RepoTags": [name],
        "Layers": [format!("{layer_digest}/layer.tar")]}])
    .to_string();
    let mut archive = Tar(Vec::new());
    archive.file(&format!("{config_digest}.json"), 0o644, config.as_bytes());
    archive.dir(&layer_digest);
    archive.file(&format!("{layer_digest}/layer.tar"), 0o644, &layer);
    archive.file("manifest.json", 0o644, manifest.as_bytes());
    std::fs::write(out, archive.finish()).expect("write image archive");
}

// ---------------------------------------------------------------------------------------------
// CRI client: unary gRPC calls over HTTP/2 on containerd's unix socket, messages of
// runtime.v1 (k8s.io/cri-api api.proto), only the fields this test uses.

mod cri {
    use std::collections::HashMap;
    use std::path::Path;
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use prost::Message;

    #[derive(Clone, PartialEq, Message)]
    pub struct VersionRequest {
        #[prost(string, tag = "1")]
        pub version: String,
    }
    #[derive(Clone, PartialEq, Message)]
    pub struct VersionResponse {
        #[prost(string, tag = "1")]
        pub version: String,
        #[prost(string, tag = "2")]
        pub runtime_name: String,
        #[prost(string, tag = "3")]
        pub runtime_version: String,
        #[prost(string, tag = "4")]
        pub runtime_api_version: String,
    }
    #[derive(Clone, PartialEq, Message)]
    pub struct StatusRequest {
        #[prost(bool, tag = "1")]
        pub verbose: bool,
    }
    #[derive(Clone, PartialEq, Message)]
    pub struct StatusResponse {
        #[prost(message, optional, tag = "1")]
        pub status: Option<RuntimeStatus>,
    }
    #[derive(Clone, PartialEq, Message)]
    pub struct RuntimeStatus {
        #[prost(message, repeated, tag = "1")]
        pub conditions: Vec<RuntimeCondition>,
    }
    #[derive(Clone, PartialEq, Message)]
    pub struct RuntimeCondition {
        #[prost(string, tag = "1")]
        pub r#type: String,
        #[prost(bool, tag = "2")]
        pub status: bool,
        #[prost(string, tag = "3")]
        pub reason: String,
        #[prost(string, tag = "4")]
        pub message: String,
    }
    #[derive(Clone, PartialEq, Message)]
    pub struct PodSandboxMetadata {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub uid: String,
        #[prost(string, tag = "3")]
        pub namespace: String,
        #[prost(uint32, tag = "4")]
        pub attempt: u32,
    }
    #[derive(Clone, PartialEq, Message)]
    pub struct LinuxPodSandboxConfig {
        #[prost(string, tag = "1")]
        pub cgroup_parent: String,
    }
    #[derive(Clone, PartialEq, Message)]
    pub struct PodSandboxConfig {
        #[prost(message, optional, tag = "1")]
        pub metadata: Option<PodSandboxMetadata>,
        #[prost(string, tag = "2")]
        pub hostname: String,
        #[prost(string, tag = "3")]
        pub log_directory: String,
        #[prost(map = "string, string", tag = "6")]
        pub labels: HashMap<String, String>,
        #[prost(message, optional, tag = "8")]
        pub linux: Option<LinuxPodSandboxConfig>,
    }
    #[derive(Clone, PartialEq, Message)]
    pub struct RunPodSandboxRequest {
        #[prost(message, optional, tag = "1")]
        pub config: Option<PodSandboxConfig>,
        #[prost(string, tag = "2")]
        pub runtime_handler: String,
    }
    #[derive(Clone, PartialEq, Message)]
    pub struct RunPodSandboxResponse {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
    }
    #[derive(Clone, PartialEq, Message)]
    pub struct PodSandboxStatusRequest {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
        #[prost(bool, tag = "2")]
        pub verbose: bool,
    }
    #[derive(Clone, PartialEq, Message)]
    pub struct PodSandboxStatusResponse {
        #[prost(message, optional, tag = "1")]
        pub status: Option<PodSandboxStatus>,
        #[prost(map = "string, string", tag = "2")]
        pub info: HashMap<String, String>,
    }
    #[derive(Clone, PartialEq, Message)]
    pub struct PodSandboxStatus {
        #[prost(string, tag = "1")]
        pub id: String,
        #[prost(message, optional, tag = "2")]
        pub metadata: Option<PodSandboxMetadata>,
        /// 0 = SANDBOX_READY, 1 = SANDBOX_NOTREADY.
        #[prost(int32, tag = "3")]
        pub state: i32,
        #[prost(message, optional, tag = "5")]
        pub network: Option<PodSandboxNetworkStatus>,
    }
    #[derive(Clone, PartialEq, Message)]
    pub struct PodSandboxNetworkStatus {
        #[prost(string, tag = "1")]
        pub ip: String,
    }
    #[derive(Clone, PartialEq, Message)]
    pub struct PodSandboxIdRequest {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
    }
    #[derive(Clone, PartialEq, Message)]
    pub struct Empty {}

    const SVC: &str = "/runtime.v1.RuntimeService/";

    /// One HTTP/2 connection to the CRI socket, driven by a current-thread runtime.
    pub struct Client {
        rt: tokio::runtime::Runtime,
        sender: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    }

    impl Client {
        pub fn connect(sock: &Path) -> Result<Client, String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let sender = rt.block_on(async {
                let s = tokio::net::UnixStream::connect(sock)
                    .await
                    .map_err(|e| format!("connect {}: {e}", sock.display()))?;
                let (sender, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(s))
                        .await
                        .map_err(|e| format!("h2 handshake: {e}"))?;
                tokio::spawn(conn);
                Ok::<_, String>(sender)
            })?;
            Ok(Client { rt, sender })
        }

        /// One unary call of `RuntimeService/<method>`.
        pub fn call<Q: Message, R: Message + Default>(
            &mut self,
            method: &str,
            req: &Q,
            timeout: Duration,
        ) -> Result<R, String> {
            let msg = req.encode_to_vec();
            let mut body = Vec::with_capacity(msg.len() + 5);
            body.push(0);
            body.extend_from_slice(&(msg.len() as u32).to_be_bytes());
            body.extend_from_slice(&msg);
            let request = hyper::Request::post(format!("http://localhost{SVC}{method}"))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| e.to_string())?;
            let sender = &mut self.sender;
            let fut = async move {
                sender.ready().await.map_err(|e| e.to_string())?;
                let resp = sender
                    .send_request(request)
                    .await
                    .map_err(|e| e.to_string())?;
                let (parts, body) = resp.into_parts();
                let all = body.collect().await.map_err(|e| e.to_string())?;
                let trailers = all.trailers().cloned().unwrap_or_default();
                let get = |k: &str| {
                    trailers
                        .get(k)
                        .or_else(|| parts.headers.get(k))
                        .and_then(|v| v.to_str().ok())
                        .map(String::from)
                };
                let status = get("grpc-status").unwrap_or_else(|| "?".into());
                if status != "0" {
                    return Err(format!(
                        "grpc-status {status} (http {}): {}",
                        parts.status,
                        get("grpc-message").unwrap_or_default()
                    ));
                }
                let data = all.to_bytes();
                if data.len() < 5 || data[0] != 0 {
                    return Err(format!("bad gRPC frame ({} bytes)", data.len()));
                }
                R::decode(&data[5..]).map_err(|e| format!("decode: {e}"))
            };
            self.rt
                .block_on(async { tokio::time::timeout(timeout, fut).await })
                .map_err(|_| format!("{method}: timed out after {timeout:?}"))?
                .map_err(|e| format!("{method}: {e}"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// containerd as a child process, and its clean-up.

fn reap_stale() {
    for dir in dead_run_dirs(TMP_PREFIX) {
        kill_matching(&dir);
        unmount_under(&dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// SIGKILLs every process whose command line mentions `dir` (the shims of our containerd are
/// started with `-address <dir>/containerd.sock`), except this process.
fn kill_matching(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().to_string();
    let me = std::process::id();
    let mut killed = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return killed;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(&needle) {
            // SAFETY: kill(2) on a pid we just matched.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            killed.push(pid);
        }
    }
    killed
}

/// Lazily unmounts every mount point under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let Ok(c) = std::ffi::CString::new(p) else {
            continue;
        };
        // SAFETY: umount2(2) with a valid NUL-terminated path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

fn spawn_logged(cmd: &mut Command, log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn().expect("spawn")
}

/// A pod sandbox this test created.
struct Sandbox {
    id: String,
    /// PID of the sandbox's pause process (in the root PID namespace).
    pid: Option<u32>,
}

/// Directories outside its own dirs that containerd 1.6, its shim and runc create (shim
/// sockets, runc state, libcni's result cache, the cgroup parent of CRI sandboxes under cgroupfs).
/// Those that did not exist before this test started are removed again when empty.
fn host_dirs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = [
        "/run/containerd/runc/k8s.io",
        "/run/containerd/runc",
        "/run/containerd/s",
        "/run/containerd",
        "/var/lib/cni/results",
        "/var/lib/cni",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        v.extend(rd.flatten().map(|e| e.path().join(CRI_NS)));
    }
    v
}

/// containerd with its own root/state/sockets in a temp dir.
struct Containerd {
    child: Option<Child>,
    sock: PathBuf,
    dir: tempfile::TempDir,
    sandboxes: Vec<Sandbox>,
    /// Entries of [`host_dirs`] that existed before containerd started.
    preexisting: Vec<PathBuf>,
}

impl Containerd {
    fn start(t: &Tools, contivk8s: &Path, conflist: &Value) -> Containerd {
        reap_stale();
        let preexisting = host_dirs().into_iter().filter(|d| d.exists()).collect();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{TMP_PREFIX}{}-", std::process::id()))
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        let bin = d.join("cni-bin");
        let netd = d.join("net.d");
        std::fs::create_dir_all(&bin).expect("mkdir");
        std::fs::create_dir_all(&netd).expect("mkdir");
        std::os::unix::fs::symlink(contivk8s, bin.join("contivk8s")).expect("symlink");
        std::os::unix::fs::symlink(&t.loopback, bin.join("loopback")).expect("symlink");
        std::fs::write(netd.join("10-contiv.conflist"), conflist.to_string()).expect("conflist");
        let sock = d.join("containerd.sock");
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = "{d}/debug.sock"
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{SANDBOX_IMAGE}"
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "{bin}"
      conf_dir = "{netd}"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
"#,
            d = d.display(),
            sock = sock.display(),
            bin = bin.display(),
            netd = netd.display(),
            runc = t.runc.display(),
        );
        std::fs::write(d.join("config.toml"), config).expect("config");
        let child = spawn_logged(
            Command::new(&t.containerd)
                .arg("--config")
                .arg(d.join("config.toml")),
            &d.join("containerd.log"),
        );
        Containerd {
            child: Some(child),
            sock,
            dir,
            sandboxes: Vec::new(),
            preexisting,
        }
    }

    fn log(&self) -> String {
        let s = std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Waits until the CRI answers and reports RuntimeReady and NetworkReady.
    fn wait_ready(&mut self) -> cri::Client {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(Child::try_wait) {
                panic!("containerd exited ({st}):\n{}", self.log());
            }
            if self.sock.exists() {
                match cri::Client::connect(&self.sock).and_then(|mut c| {
                    let st: cri::StatusResponse = c.call(
                        "Status",
                        &cri::StatusRequest::default(),
                        Duration::from_secs(5),
                    )?;
                    let conds = st.status.map(|s| s.conditions).unwrap_or_default();
                    let ready = ["RuntimeReady", "NetworkReady"]
                        .iter()
                        .all(|t| conds.iter().any(|c| c.r#type == *t && c.status));
                    if ready {
                        Ok(c)
                    } else {
                        Err(format!("{conds:?}"))
                    }
                }) {
                    Ok(c) => return c,
                    Err(e) => last = e,
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("containerd CRI not ready: {last}\n{}", self.log());
    }

    fn ctr(&self, ctr: &Path, args: &[&str]) -> String {
        let out = Command::new(ctr)
            .arg("--address")
            .arg(&self.sock)
            .args(["-n", CRI_NS])
            .args(args)
            .output()
            .expect("ctr");
        assert!(
            out.status.success(),
            "ctr {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into()
    }

    /// The shim socket containerd 1.6 derives for a sandbox (runtime/v2/shim SocketAddress).
    fn shim_socket(&self, id: &str) -> PathBuf {
        let key = format!("{}/{CRI_NS}/{id}", self.sock.display());
        Path::new("/run/containerd/s").join(sha256_hex(key.as_bytes()))
    }

    /// Best-effort removal of sandboxes still known (a failed test), through the CRI.
    fn remove_sandboxes(&mut self) {
        if self.sandboxes.is_empty() {
            return;
        }
        let Ok(mut c) = cri::Client::connect(&self.sock) else {
            return;
        };
        for sb in &self.sandboxes {
            let req = cri::PodSandboxIdRequest {
                pod_sandbox_id: sb.id.clone(),
            };
            let t = Duration::from_secs(20);
            let _ = c.call::<_, cri::Empty>("StopPodSandbox", &req, t);
            let _ = c.call::<_, cri::Empty>("RemovePodSandbox", &req, t);
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.remove_sandboxes();
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Shims (and any runc) of this containerd, then sandbox processes still alive.
        let shims = kill_matching(self.dir.path());
        if !shims.is_empty() {
            eprintln!("containerd cleanup: killed leftover shim processes {shims:?}");
        }
        for sb in &self.sandboxes {
            if let Some(pid) = sb.pid {
                // SAFETY: kill(2) on the sandbox process this test started.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            let _ = std::fs::remove_file(self.shim_socket(&sb.id));
            let _ = std::fs::remove_dir_all(Path::new("/run/containerd/runc/k8s.io").join(&sb.id));
            for cg in host_dirs()
                .iter()
                .filter(|d| d.starts_with("/sys/fs/cgroup"))
            {
                let _ = std::fs::remove_dir(cg.join(&sb.id));
            }
            if let Ok(rd) = std::fs::read_dir("/var/lib/cni/results") {
                for e in rd.flatten() {
                    if e.file_name().to_string_lossy().contains(&sb.id) {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
        }
        unmount_under(self.dir.path());
        for d in host_dirs() {
            if !self.preexisting.contains(&d) {
                let _ = std::fs::remove_dir(&d); // only when empty
            }
        }
    }
}

/// The network namespace path and pause PID from a verbose PodSandboxStatus.
fn sandbox_netns_and_pid(
    info: &std::collections::HashMap<String, String>,
) -> (PathBuf, Option<u32>) {
    let v: Value = info
        .get("info")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_else(|| panic!("no verbose info in {info:?}"));
    let pid = v["pid"].as_u64().map(|p| p as u32);
    let ns = v["runtimeSpec"]["linux"]["namespaces"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["type"] == "network"))
        .and_then(|n| n["path"].as_str())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no network namespace path in {v}"));
    (ns, pid)
}

#[test]
#[ignore = "needs root"]
fn containerd_pod_sandbox_gets_contiv_address_and_reaches_other_host() {
    require_root();
    // scripts/install-deps.sh installs every tool: a missing one fails the test, never skips it.
    let t = tools().unwrap_or_else(|why| panic!("containerd end-to-end test: {why}"));
    let c = Cluster::start(bins(), 2, &[]).unwrap_or_else(|e| panic!("cluster: {e}"));
    let (tenant, net) = ("crt", "podnet");
    c.create_tenant(tenant).expect("tenant");
    c.create_network(tenant, net, "10.44.0.0/24", "10.44.0.1")
        .expect("network");
    let remote = c
        .add_workload(1, "remote", tenant, net)
        .unwrap_or_else(|e| panic!("{e}"));

    let conflist = json!({
        "cniVersion": "1.0.0",
        "name": "contiv-e2e",
        "plugins": [{
            "type": "contivk8s",
            "agentSocket": c.socket(0),
            "pendingDeleteDir": c.pending_dir(0),
            "tenant": tenant,
            "network": net,
        }],
    });
    let mut cd = Containerd::start(&t, &c.bins.contivk8s, &conflist);
    let mut cri = cd.wait_ready();
    let t60 = Duration::from_secs(60);
    let v: cri::VersionResponse = cri
        .call("Version", &cri::VersionRequest::default(), t60)
        .expect("Version");
    eprintln!(
        "CRI: {} {} ({})",
        v.runtime_name, v.runtime_version, v.runtime_api_version
    );

    let image = cd.dir.path().join("pause.tar");
    build_image(&t.busybox, SANDBOX_IMAGE, &["/bin/sleep", "86400"], &image);
    cd.ctr(&t.ctr, &["images", "import", &image.to_string_lossy()]);
    assert!(
        cd.ctr(&t.ctr, &["images", "ls", "-q"])
            .contains(SANDBOX_IMAGE),
        "image imported"
    );

    let logs = cd.dir.path().join("pod-logs");
    std::fs::create_dir_all(&logs).expect("mkdir");
    let config = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "web".into(),
            uid: format!("uid-{}", std::process::id()),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "web".into(),
        log_directory: logs.to_string_lossy().into(),
        labels: Default::default(),
        linux: Some(cri::LinuxPodSandboxConfig::default()),
    };
    let started = Instant::now();
    let run: Result<cri::RunPodSandboxResponse, String> = cri.call(
        "RunPodSandbox",
        &cri::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        },
        Duration::from_secs(90),
    );
    let id = run
        .unwrap_or_else(|e| {
            panic!(
                "RunPodSandbox: {e}\ncontainerd:\n{}\nagent:\n{}",
                cd.log(),
                c.agent_log(0)
            )
        })
        .pod_sandbox_id;
    eprintln!("RunPodSandbox {id} in {:?}", started.elapsed());
    cd.sandboxes.push(Sandbox {
        id: id.clone(),
        pid: None,
    });
    let st: cri::PodSandboxStatusResponse = cri
        .call(
            "PodSandboxStatus",
            &cri::PodSandboxStatusRequest {
                pod_sandbox_id: id.clone(),
                verbose: true,
            },
            t60,
        )
        .expect("PodSandboxStatus");
    let status = st.status.clone().expect("status");
    assert_eq!(status.state, 0, "SANDBOX_READY");
    let (pod_ns, pid) = sandbox_netns_and_pid(&st.info);
    cd.sandboxes.last_mut().expect("sandbox").pid = pid;
    let pod_ip: Ipv4Addr = status
        .network
        .as_ref()
        .map(|n| n.ip.clone())
        .unwrap_or_default()
        .parse()
        .unwrap_or_else(|_| panic!("no pod IP in {status:?}"));
    assert!(
        pod_ns.starts_with(cd.dir.path()),
        "pod netns {} made by our containerd",
        pod_ns.display()
    );

    // The address is the one netmaster allocated for this sandbox's endpoint on host 1.
    let ep_id = format!("{net}.{tenant}-{id}");
    let ep = c
        .get_json(&format!("/api/v1/inspect/endpoints/{ep_id}/"))
        .unwrap_or_else(|e| panic!("inspect {ep_id}: {e}"));
    let oper = &ep["Oper"];
    assert_eq!(oper["ipAddress"][0], pod_ip.to_string(), "{ep}");
    assert_eq!(oper["containerID"], id.as_str(), "{ep}");
    assert_eq!(oper["homingHost"], "h1", "{ep}");
    let in_subnet = u32::from(pod_ip) & 0xffff_ff00 == u32::from(Ipv4Addr::new(10, 44, 0, 0));
    assert!(in_subnet, "{pod_ip} in 10.44.0.0/24");

    // Traffic from inside the pod to the workload on host 2, and back.
    let reached = eventually(Duration::from_secs(10), || ping(&pod_ns, remote.ip, 1));
    assert!(
        reached,
        "pod {pod_ip} cannot ping {} on h2\nagent h1:\n{}",
        remote.ip,
        c.agent_log(0)
    );
    assert!(ping(&remote.netns, pod_ip, 3), "h2 workload pings the pod");
    assert_eq!(
        tcp_exchange(&pod_ns, &remote.netns, remote.ip, 7401, "pod->h2"),
        Ok("pod->h2".to_string())
    );
    assert_eq!(
        tcp_exchange(&remote.netns, &pod_ns, pod_ip, 7402, "h2->pod"),
        Ok("h2->pod".to_string())
    );

    // Stop + remove: containerd runs CNI DEL; netmaster forgets the endpoint, the netns is gone.
    let req = cri::PodSandboxIdRequest {
        pod_sandbox_id: id.clone(),
    };
    let _: cri::Empty = cri
        .call("StopPodSandbox", &req, t60)
        .expect("StopPodSandbox");
    let _: cri::Empty = cri
        .call("RemovePodSandbox", &req, t60)
        .expect("RemovePodSandbox");
    cd.sandboxes.clear();
    let (code, body) = c
        .api("GET", &format!("/api/v1/inspect/endpoints/{ep_id}/"), None)
        .expect("api");
    assert_eq!(code, 404, "endpoint released at netmaster: {body}");
    let eps = c.get_json("/api/v1/endpoints/").unwrap_or(Value::Null);
    assert!(
        !eps.to_string().contains(&id),
        "no endpoint of the sandbox left: {eps}"
    );
    assert!(!pod_ns.exists(), "pod netns {} removed", pod_ns.display());
    assert!(
        !ping(&remote.netns, pod_ip, 1),
        "pod address no longer answers"
    );
    let left: BTreeMap<String, String> = std::fs::read_dir(c.pending_dir(0))
        .map(|rd| {
            rd.flatten()
                .map(|e| (e.file_name().to_string_lossy().into(), String::new()))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "no pending DEL spooled: {left:?}");
    drop(cri);
    drop(cd);
    c.del_workload(&remote).expect("del remote");
}
