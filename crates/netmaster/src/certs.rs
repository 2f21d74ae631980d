//! `netmaster certs`: a cluster's own small CA (rcgen). `init` makes the CA, netmaster's
//! certificate (server, and client when it forwards to the leader) and one client certificate per
//! host agent; `host` issues one more host certificate from the existing CA.
//!
//! Layout of the directory: `ca.pem`, `ca-key.pem`, `netmaster.pem`, `netmaster-key.pem`,
//! `host-<name>.pem`, `host-<name>-key.pem`. Keys are written 0600. A host certificate names the
//! host as subject CN with OU [`contiv_tls::OU_HOST`]: netmaster takes the agent's identity from
//! it.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

const CA_DAYS: u64 = 3650;
const LEAF_DAYS: u64 = 825;

#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} exists: refusing to replace the CA (every certificate it signed would stop verifying); pass --force to start over")]
    CaExists { path: PathBuf },
    #[error("invalid host name {0:?} (letters, digits, '.', '-', '_')")]
    BadName(String),
    #[error("generating {what}: {msg}")]
    Generate { what: String, msg: String },
}

/// What `certs init` makes.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    pub dir: PathBuf,
    /// One client certificate per host.
    pub hosts: Vec<String>,
    /// DNS names or IP addresses agents and clients use to reach netmaster (beside localhost and
    /// 127.0.0.1).
    pub netmaster_names: Vec<String>,
    /// Replace an existing CA.
    pub force: bool,
}

/// One certificate written: its path and serial (what a deny list names).
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub serial: String,
}

/// Makes the CA, netmaster's certificate and the host certificates of `opts`.
pub fn init(opts: &InitOptions) -> Result<Vec<Issued>, CertsError> {
    for name in &opts.hosts {
        check_name(name)?;
    }
    let ca_path = opts.dir.join("ca.pem");
    let ca_key_path = opts.dir.join("ca-key.pem");
    if !opts.force {
        if let Some(p) = [&ca_path, &ca_key_path].into_iter().find(|p| p.exists()) {
            return Err(CertsError::CaExists { path: p.clone() });
        }
    }
    std::fs::create_dir_all(&opts.dir).map_err(|source| CertsError::Io {
        path: opts.dir.clone(),
        source,
    })?;
    let ca_key = new_key("the CA key")?;
    let ca_params = ca_params();
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(gen_err("the CA certificate"))?;
    write_file(&ca_key_path, ca_key.serialize_pem().as_bytes(), true)?;
    write_file(&ca_path, ca_cert.pem().as_bytes(), false)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let mut issued = vec![issue_netmaster(&opts.dir, &issuer, &opts.netmaster_names)?];
    for host in &opts.hosts {
        issued.push(issue_host(&opts.dir, &issuer, host)?);
    }
    Ok(issued)
}

/// Issues one more host certificate from the CA in `dir` (replacing that host's files).
pub fn add_host(dir: &Path, name: &str) -> Result<Issued, CertsError> {
    check_name(name)?;
    let read = |p: PathBuf| {
        std::fs::read_to_string(&p).map_err(|source| CertsError::Io { path: p, source })
    };
    let ca_pem = read(dir.join("ca.pem"))?;
    let key = KeyPair::from_pem(&read(dir.join("ca-key.pem"))?).map_err(gen_err("the CA key"))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, key).map_err(gen_err("the CA issuer"))?;
    issue_host(dir, &issuer, name)
}

fn check_name(name: &str) -> Result<(), CertsError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(CertsError::BadName(name.into()))
    }
}

fn gen_err(what: &str) -> impl Fn(rcgen::Error) -> CertsError + '_ {
    move |e| CertsError::Generate {
        what: what.into(),
        msg: e.to_string(),
    }
}

fn new_key(what: &str) -> Result<KeyPair, CertsError> {
    KeyPair::generate().map_err(gen_err(what))
}

fn validity(params: &mut CertificateParams, days: u64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - Duration::from_secs(3600);
    params.not_after = now + Duration::from_secs(days * 86_400);
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Contiv cluster CA");
    dn.push(DnType::OrganizationName, "contiv");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, CA_DAYS);
    params
}

fn leaf_params(cn: &str, ou: &str, sans: Vec<SanType>, server: bool) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationalUnitName, ou);
    dn.push(DnType::OrganizationName, "contiv");
    params.distinguished_name = dn;
    params.subject_alt_names = sans;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = if server {
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ]
    } else {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    };
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, LEAF_DAYS);
    params
}

fn san(name: &str) -> Result<SanType, CertsError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let dns = name
        .try_into()
        .map_err(|_| CertsError::BadName(name.into()))?;
    Ok(SanType::DnsName(dns))
}

fn issue_netmaster(
    dir: &Path,
    issuer: &Issuer<'_, KeyPair>,
    names: &[String],
) -> Result<Issued, CertsError> {
    let mut sans = Vec::new();
    for n in names
        .iter()
        .map(String::as_str)
        .chain(["localhost", "127.0.0.1", "::1"])
    {
        let s = san(n)?;
        if !sans.contains(&s) {
            sans.push(s);
        }
    }
    let params = leaf_params("netmaster", contiv_tls::OU_NETMASTER, sans, true);
    issue(dir, "netmaster", issuer, &params)
}

fn issue_host(dir: &Path, issuer: &Issuer<'_, KeyPair>, name: &str) -> Result<Issued, CertsError> {
    let params = leaf_params(name, contiv_tls::OU_HOST, vec![san(name)?], false);
    issue(dir, &format!("host-{name}"), issuer, &params)
}

fn issue(
    dir: &Path,
    stem: &str,
    issuer: &Issuer<'_, KeyPair>,
    params: &CertificateParams,
) -> Result<Issued, CertsError> {
    let key = new_key(stem)?;
    let cert = params.signed_by(&key, issuer).map_err(gen_err(stem))?;
    let serial = contiv_tls::identity_of(cert.der())
        .map(|id| id.serial)
        .map_err(|e| CertsError::Generate {
            what: stem.into(),
            msg: e.to_string(),
        })?;
    let issued = Issued {
        cert: dir.join(format!("{stem}.pem")),
        key: dir.join(format!("{stem}-key.pem")),
        serial,
    };
    write_file(&issued.key, key.serialize_pem().as_bytes(), true)?;
    write_file(&issued.cert, cert.pem().as_bytes(), false)?;
    Ok(issued)
}

/// Writes `data` to `path` (replacing it); a key is 0600 from its creation on.
fn write_file(path: &Path, data: &[u8], secret: bool) -> Result<(), CertsError> {
    let io = |source| CertsError::Io {
        path: path.to_path_buf(),
        source,
    };
    // A replaced key file keeps no mode wider than 0600: remove it first.
    if secret {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
        .map_err(io)?;
    file.write_all(data).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn init_makes_a_ca_and_certificates_that_name_their_host() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = InitOptions {
            dir: tmp.path().into(),
            hosts: vec!["h1".into(), "h2".into()],
            netmaster_names: vec!["10.0.0.1".into(), "nm.example".into()],
            force: false,
        };
        let issued = init(&opts).unwrap();
        assert_eq!(issued.len(), 3);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&tmp.path().join("ca-key.pem")), 0o600);
        assert_eq!(mode(&tmp.path().join("host-h1-key.pem")), 0o600);
        let der = contiv_tls::load_certs(&tmp.path().join("host-h2.pem")).unwrap();
        let id = contiv_tls::identity_of(der[0].as_ref()).unwrap();
        assert_eq!(
            (id.role, id.name.as_str()),
            (contiv_tls::PeerRole::Host, "h2")
        );
        assert_eq!(id.serial, issued[2].serial);
        let nm = contiv_tls::load_certs(&tmp.path().join("netmaster.pem")).unwrap();
        let id = contiv_tls::identity_of(nm[0].as_ref()).unwrap();
        assert_eq!(id.role, contiv_tls::PeerRole::Netmaster);

        assert!(matches!(init(&opts), Err(CertsError::CaExists { .. })));
        let h3 = add_host(tmp.path(), "h3").unwrap();
        assert!(h3.cert.ends_with("host-h3.pem"));
        assert!(add_host(tmp.path(), "../x").is_err());
        init(&InitOptions {
            force: true,
            ..opts
        })
        .unwrap();
    }
}
