//! How a test bed's netmaster is protected, and the credentials the harness holds.
//!
//! By default a test bed runs as a deployment should: HTTPS with client certificates (every
//! agent proves its host with the certificate `netmaster certs init` made for it), a deny list
//! the tests can write to, and `--auth` (users and tokens on `/api/v1`). The harness bootstraps
//! the `admin` password from a 0600 file, logs in once and sends that token on its own REST
//! calls; netctl run through the harness gets the CA and the token too. [`Security::Plain`] is
//! for the few tests about plain HTTP.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

/// What protects netmaster's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    /// Plain HTTP on loopback, no users: anyone on the machine may call anything.
    Plain,
    /// Mutual TLS (agents prove their host) and `--auth` (a token on every `/api/v1` call).
    #[default]
    TlsAuth,
}

/// The files of a TLS test bed and the admin's credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// What `netmaster certs init` wrote: `ca.pem`, `netmaster.pem`, `host-<h>.pem`, ...
    pub pki: PathBuf,
    /// The deny list netmaster reloads (`--tls-deny-list`): serials or host names, one a line.
    pub deny_list: PathBuf,
    /// The bootstrap password of `admin` (0600).
    pub admin_password_file: PathBuf,
}

/// The host name agent `i` registers as (and its certificate names).
pub(super) fn host_name(i: usize) -> String {
    format!("h{}", i + 1)
}

impl Credentials {
    /// Certificates for `hosts` hosts, an empty deny list and a fresh admin password, in `tmp`.
    pub(super) fn make(netmaster: &Path, tmp: &Path, hosts: usize) -> Result<Self, String> {
        let pki = tmp.join("pki");
        let mut cmd = Command::new(netmaster);
        cmd.arg("certs").arg("init").arg(&pki);
        for i in 0..hosts {
            cmd.arg("--host").arg(host_name(i));
        }
        let out = cmd
            .output()
            .map_err(|e| format!("netmaster certs init: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "netmaster certs init: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let deny_list = pki.join("deny-list");
        std::fs::write(
            &deny_list,
            "# revoked agent certificates: serials or host names\n",
        )
        .map_err(|e| format!("{}: {e}", deny_list.display()))?;
        let admin_password_file = tmp.join("admin-password");
        write_private(&admin_password_file, &random_password())?;
        Ok(Credentials {
            pki,
            deny_list,
            admin_password_file,
        })
    }

    /// netmaster's arguments for HTTPS, client certificates, the deny list and `--auth`.
    pub(super) fn netmaster_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (flag, file) in [
            ("--tls-cert", self.pki.join("netmaster.pem")),
            ("--tls-key", self.pki.join("netmaster-key.pem")),
            ("--tls-client-ca", self.pki.join("ca.pem")),
            ("--tls-deny-list", self.deny_list.clone()),
            ("--admin-password-file", self.admin_password_file.clone()),
        ] {
            args.push(flag.to_string());
            args.push(file.display().to_string());
        }
        args.push("--auth".into());
        args
    }

    /// The CA every client trusts.
    pub fn ca(&self) -> PathBuf {
        self.pki.join("ca.pem")
    }

    /// Host `i`'s certificate and key.
    pub fn host_cert(&self, i: usize) -> (PathBuf, PathBuf) {
        let h = host_name(i);
        (
            self.pki.join(format!("host-{h}.pem")),
            self.pki.join(format!("host-{h}-key.pem")),
        )
    }

    /// The admin's password.
    pub fn admin_password(&self) -> Result<String, String> {
        std::fs::read_to_string(&self.admin_password_file)
            .map(|s| s.trim().to_owned())
            .map_err(|e| format!("{}: {e}", self.admin_password_file.display()))
    }
}

/// `POST /api/v1/auth_proxy/login/` on `base`: the token.
pub fn login(http: &ureq::Agent, base: &str, user: &str, password: &str) -> Result<String, String> {
    let body = json!({"username": user, "password": password}).to_string();
    let mut resp = http
        .post(format!("{base}/api/v1/auth_proxy/login/"))
        .header("Content-Type", "application/json")
        .send(body)
        .map_err(|e| format!("login: {e}"))?;
    let code = resp.status().as_u16();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    if code != 200 {
        return Err(format!("login as {user}: {code} {text}"));
    }
    serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["token"].as_str().map(str::to_owned))
        .ok_or_else(|| format!("login answer without a token: {text}"))
}

/// A password nobody else knows (the test bed is torn down with the run).
fn random_password() -> String {
    let a = RandomState::new().build_hasher().finish();
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("tb-{a:016x}{:016x}", h.finish())
}

/// Writes a secret readable by its owner only (0600 from creation, no window).
pub(super) fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

impl super::Cluster {
    /// The certificates, deny list and admin password ([`Security::TlsAuth`] only).
    pub fn credentials(&self) -> Option<&Credentials> {
        self.creds.as_ref()
    }

    /// The admin token the harness sends ([`Security::TlsAuth`] only).
    pub fn token(&self) -> Option<String> {
        self.token.lock().ok().and_then(|t| t.clone())
    }

    /// Logs the harness in as `admin` again (at start, and when its token stops working); also
    /// leaves the token where netctl looks for it ([`Cluster::netctl`]).
    pub(super) fn relogin(&self) -> Result<(), String> {
        let Some(creds) = &self.creds else {
            return Ok(());
        };
        let token = login(&self.http, &self.url, "admin", &creds.admin_password()?)?;
        let dir = self.netctl_home().join(".netctl");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        write_private(&dir.join("token"), &token)?;
        if let Ok(mut t) = self.token.lock() {
            *t = Some(token);
        }
        Ok(())
    }

    /// `$HOME` of the netctl the harness runs: holds its `.netctl/token`.
    fn netctl_home(&self) -> PathBuf {
        self.tmp.path().join("netctl-home")
    }

    /// Runs netctl (next to the netmaster binary) against this cluster's netmaster, as a user
    /// would after `netctl login`: the CA in `CONTIV_CACERT`, the admin token in
    /// `$HOME/.netctl/token`.
    pub fn netctl(&self, args: &[&str]) -> Result<Output, String> {
        let bin = self.bins.netmaster.with_file_name("netctl");
        let mut cmd = Command::new(&bin);
        cmd.env("HOME", self.netctl_home())
            .env_remove("CONTIV_CACERT")
            .arg("--netmaster")
            .arg(&self.url)
            .args(args);
        if let Some(creds) = &self.creds {
            cmd.env("CONTIV_CACERT", creds.ca());
        }
        cmd.output().map_err(|e| format!("{}: {e}", bin.display()))
    }

    /// One agent-API call (`/plugin/...`) as host `i`'s agent makes it: with its certificate
    /// (a plain test bed: as [`Cluster::api`]).
    pub fn api_as_host(
        &self,
        i: usize,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String), String> {
        let Some(creds) = &self.creds else {
            return self.api(method, path, body);
        };
        let (cert, key) = creds.host_cert(i);
        let files = contiv_tls::ClientFiles {
            ca: Some(creds.ca()),
            cert: Some(cert),
            key: Some(key),
            insecure: false,
        };
        let tls = contiv_tls::client_config(&files).map_err(|e| e.to_string())?;
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(20)))
            .tls_config(tls)
            .build()
            .into();
        self.call(&http, &self.url, None, method, path, body)
    }

    /// Puts host `i` on netmaster's deny list (by host name): its agent is refused from the
    /// next reload on, without a restart.
    pub fn revoke_host(&self, i: usize) -> Result<(), String> {
        let creds = self
            .creds
            .as_ref()
            .ok_or("a plain test bed has no certificates to revoke")?;
        let mut list = std::fs::read_to_string(&creds.deny_list)
            .map_err(|e| format!("{}: {e}", creds.deny_list.display()))?;
        list.push_str(&format!("{}\n", host_name(i)));
        std::fs::write(&creds.deny_list, list)
            .map_err(|e| format!("{}: {e}", creds.deny_list.display()))
    }
}
