//! `contiv-bench auth`: what TLS and tokens cost (issue 13).
//!
//! Two netmasters of ours in the same run, each on a fresh embedded store: one in plain HTTP
//! without users, one as deployed (HTTPS with the certificates `netmaster certs init` makes,
//! client certificates verified, `--auth`). The same client code (ureq, one keep-alive
//! connection per server and API; rustls on the secure side) runs, interleaved call by call so
//! that load from other processes hits both alike:
//!
//! 1. N sequential network creates on `/api/v1` (secure: the token in `X-Auth-Token`, verified
//!    by netmaster on every call);
//! 2. N sequential `/plugin/allocAddress` on a /16 (secure: the agent API with a host
//!    certificate, no token);
//! 3. M sequential logins on the secure one (argon2id check of the password, a signed token).
//!
//! Reports p50/p99 per side and the ratio of the medians (target: at most 1.3×).

use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Parser;
use serde_json::{json, Value};

use crate::{server, Seq};

/// The issue-13 target: TLS + token at most this many times plain HTTP (medians).
const TARGET_RATIO: f64 = 1.3;

#[derive(Debug, Parser)]
#[command(
    name = "contiv-bench auth",
    about = "Network create and allocAddress with TLS + token vs plain HTTP, same run; login"
)]
struct AuthArgs {
    /// Operations per sequential benchmark (each side).
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Logins timed on the secure netmaster.
    #[arg(long, default_value_t = 50)]
    logins: usize,
    /// netmaster binary (default: the one next to this binary).
    #[arg(long)]
    netmaster: Option<PathBuf>,
    /// Write the results as Markdown table rows to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

/// A netmaster child killed (by its PID) on drop; its files in a temp dir removed after it.
struct Netmaster {
    child: Child,
    url: String,
    _tmp: tempfile::TempDir,
}

impl Drop for Netmaster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The secure side's clients: REST with the admin token, the agent API with host h1's
/// certificate, and one without a certificate for logins.
struct Secure {
    nm: Netmaster,
    rest: ureq::Agent,
    agent: ureq::Agent,
    token: String,
    password: String,
}

fn client(tls: Option<ureq::tls::TlsConfig>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)));
    if let Some(tls) = tls {
        config = config.tls_config(tls);
    }
    config.build().into()
}

fn tls_client(pki: &Path, host_cert: bool) -> anyhow::Result<ureq::Agent> {
    let files = contiv_tls::ClientFiles {
        ca: Some(pki.join("ca.pem")),
        cert: host_cert.then(|| pki.join("host-h1.pem")),
        key: host_cert.then(|| pki.join("host-h1-key.pem")),
        insecure: false,
    };
    let tls = contiv_tls::client_config(&files).map_err(|e| anyhow!("client TLS: {e}"))?;
    Ok(client(Some(tls)))
}

fn spawn(
    bin: &Path,
    scheme: &str,
    tmp: tempfile::TempDir,
    args: &[String],
) -> anyhow::Result<Netmaster> {
    let port = server::free_port()?;
    let mut cmd = Command::new(bin);
    cmd.arg("--external-address")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .args(["--mode", "test", "--log-level", "warn"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    Ok(Netmaster {
        child,
        url: format!("{scheme}://127.0.0.1:{port}"),
        _tmp: tmp,
    })
}

fn wait_ready(nm: &mut Netmaster, agent: &ureq::Agent) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = nm.child.try_wait()? {
            bail!("netmaster exited before becoming ready: {st}");
        }
        if agent
            .get(format!("{}/version", nm.url))
            .call()
            .is_ok_and(|r| r.status() == 200)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("netmaster at {} not ready after 20 s", nm.url);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start_plain(bin: &Path) -> anyhow::Result<(Netmaster, ureq::Agent)> {
    let tmp = tempfile::Builder::new().prefix("contiv-bench-").tempdir()?;
    let mut nm = spawn(bin, "http", tmp, &[])?;
    let agent = client(None);
    wait_ready(&mut nm, &agent)?;
    Ok((nm, agent))
}

fn start_secure(bin: &Path) -> anyhow::Result<Secure> {
    let tmp = tempfile::Builder::new().prefix("contiv-bench-").tempdir()?;
    let pki = tmp.path().join("pki");
    let out = Command::new(bin)
        .arg("certs")
        .arg("init")
        .arg(&pki)
        .args(["--host", "h1"])
        .output()
        .context("netmaster certs init")?;
    if !out.status.success() {
        bail!(
            "netmaster certs init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pw_file = tmp.path().join("admin-password");
    let password = format!("bench-{}-{}", std::process::id(), server::free_port()?);
    std::io::Write::write_all(
        &mut std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&pw_file)?,
        password.as_bytes(),
    )?;
    let file = |f: &str| pki.join(f).display().to_string();
    let args = [
        "--tls-cert".to_string(),
        file("netmaster.pem"),
        "--tls-key".into(),
        file("netmaster-key.pem"),
        "--tls-client-ca".into(),
        file("ca.pem"),
        "--auth".into(),
        "--admin-password-file".into(),
        pw_file.display().to_string(),
    ];
    let (rest, agent) = (tls_client(&pki, false)?, tls_client(&pki, true)?);
    let mut nm = spawn(bin, "https", tmp, &args)?;
    wait_ready(&mut nm, &rest)?;
    let token = login(&rest, &nm.url, &password)?;
    Ok(Secure {
        nm,
        rest,
        agent,
        token,
        password,
    })
}

fn login(agent: &ureq::Agent, base: &str, password: &str) -> anyhow::Result<String> {
    let body = json!({"username": "admin", "password": password}).to_string();
    let (code, text) = send(
        agent,
        &format!("{base}/api/v1/auth_proxy/login/"),
        None,
        &body,
    )?;
    if code != 200 {
        bail!("login: HTTP {code}: {text}");
    }
    serde_json::from_str::<Value>(&text)?["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("login answer without a token: {text}"))
}

fn send(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&str>,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let mut req = agent.post(url).header("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.header("X-Auth-Token", t);
    }
    let mut resp = req.send(body).map_err(|e| anyhow!("POST {url}: {e}"))?;
    let code = resp.status().as_u16();
    Ok((code, resp.body_mut().read_to_string()?))
}

fn ok(r: anyhow::Result<(u16, String)>, what: &str) -> anyhow::Result<String> {
    match r? {
        (200, text) => Ok(text),
        (code, text) => bail!("{what}: HTTP {code}: {}", text.trim()),
    }
}

/// Runs `plain(i)` and `secure(i)` alternately, each timed: (plain, secure).
fn interleaved(
    n: usize,
    mut plain: impl FnMut(usize) -> anyhow::Result<()>,
    mut secure: impl FnMut(usize) -> anyhow::Result<()>,
) -> anyhow::Result<(Seq, Seq)> {
    let (mut a, mut b) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let start = Instant::now();
    for i in 1..=n {
        let t = Instant::now();
        plain(i)?;
        a.push(t.elapsed());
        let t = Instant::now();
        secure(i)?;
        b.push(t.elapsed());
    }
    let wall = start.elapsed();
    Ok((Seq { samples: a, wall }, Seq { samples: b, wall }))
}

pub fn main(argv: Vec<String>) -> anyhow::Result<()> {
    let args = AuthArgs::parse_from(std::iter::once("contiv-bench auth".to_string()).chain(argv));
    if args.count == 0 || args.count > 15_000 || args.logins == 0 {
        bail!("--count must be 1..=15000 and --logins at least 1");
    }
    let bin = args
        .netmaster
        .clone()
        .unwrap_or_else(server::default_netmaster);
    let (plain, p) = start_plain(&bin)?;
    let s = start_secure(&bin)?;
    let big = json!({"tenantName": "default", "networkName": "big", "encap": "vxlan",
        "subnet": "10.64.0.0/16"})
    .to_string();
    let path = "/api/v1/networks/default:big/";
    ok(
        send(&p, &format!("{}{path}", plain.url), None, &big),
        "plain: network big",
    )?;
    let url = format!("{}{path}", s.nm.url);
    ok(
        send(&s.rest, &url, Some(&s.token), &big),
        "secure: network big",
    )?;

    let n = args.count;
    eprintln!("{n} network creates, plain and TLS + token interleaved");
    let create = |agent: &ureq::Agent, base: &str, token: Option<&str>, i: usize| {
        let name = format!("n{i}");
        let body = crate::network_body(&name, &crate::subnet_of(i));
        let url = format!("{base}/api/v1/networks/default:{name}/");
        ok(send(agent, &url, token, &body), "network create").map(drop)
    };
    let (c_plain, c_secure) = interleaved(
        n,
        |i| create(&p, &plain.url, None, i),
        |i| create(&s.rest, &s.nm.url, Some(&s.token), i),
    )?;
    eprintln!("{n} allocAddress on a /16, plain and TLS + host certificate interleaved");
    let alloc_body = r#"{"NetworkID":"big.default","AddressPool":"","PreferredIPv4Address":""}"#;
    let alloc = |agent: &ureq::Agent, base: &str| {
        let url = format!("{base}/plugin/allocAddress");
        ok(send(agent, &url, None, alloc_body), "allocAddress").map(drop)
    };
    let (a_plain, a_secure) =
        interleaved(n, |_| alloc(&p, &plain.url), |_| alloc(&s.agent, &s.nm.url))?;
    eprintln!("{} logins", args.logins);
    let logins = crate::timed(args.logins, |_| {
        login(&s.rest, &s.nm.url, &s.password).map(drop)
    })?;
    report(
        &args,
        [
            ("network create", &c_plain, &c_secure),
            ("allocAddress", &a_plain, &a_secure),
        ],
        &logins,
    )
}

fn report(args: &AuthArgs, rows: [(&str, &Seq, &Seq); 2], logins: &Seq) -> anyhow::Result<()> {
    let mut md = vec![
        "| operation (keep-alive, sequential) | plain HTTP p50 / p99 ms | TLS + token p50 / p99 ms | ratio of p50 | target |".to_string(),
        "|---|---|---|---|---|".to_string(),
    ];
    let mut all_met = true;
    for (what, plain, secure) in rows {
        let ratio = secure.pct(50.0) / plain.pct(50.0);
        let met = ratio <= TARGET_RATIO;
        all_met &= met;
        md.push(format!(
            "| {what} ×{} | {:.3} / {:.3} | {:.3} / {:.3} | {ratio:.2}× | ≤ {TARGET_RATIO}×: {} |",
            plain.samples.len(),
            plain.pct(50.0),
            plain.pct(99.0),
            secure.pct(50.0),
            secure.pct(99.0),
            if met { "met" } else { "NOT met" }
        ));
    }
    md.push(format!(
        "| login ×{} (argon2id m=19456 KiB, t=2, p=1; EdDSA token) | | {:.1} / {:.1} | | |",
        logins.samples.len(),
        logins.pct(50.0),
        logins.pct(99.0)
    ));
    for line in &md {
        println!("{line}");
    }
    if let Some(path) = &args.markdown {
        std::fs::write(path, md.join("\n") + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !all_met {
        eprintln!("TLS + token is over {TARGET_RATIO}× plain HTTP on at least one operation");
    }
    Ok(())
}
