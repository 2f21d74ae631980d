//! TLS configuration, built in one place from PEM paths given on the command line: netmaster's
//! server config (rustls with the ring provider, TLS 1.3 preferred, 1.2 the minimum, optional
//! client certificates), the client config of every HTTPS client (netctl, netplugin, netmaster's
//! forwarding) and the identity a client certificate proves.
//!
//! Identity: a host agent's certificate carries the host name as subject CN and the
//! organizational unit [`OU_HOST`]; netmaster's own certificate (server and, for forwarding,
//! client) carries [`OU_NETMASTER`]. Key material never reaches `Debug` output or logs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// Organizational unit of host agent certificates.
pub const OU_HOST: &str = "contiv-host";
/// Organizational unit of netmaster certificates.
pub const OU_NETMASTER: &str = "contiv-netmaster";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {msg}")]
    Pem { path: PathBuf, msg: String },
    #[error("{path}: no certificate in the file")]
    NoCert { path: PathBuf },
    #[error("{what}: {msg}")]
    Config { what: &'static str, msg: String },
    #[error("client certificate: {0}")]
    BadCert(String),
}

/// The one crypto provider of the project (ring; aws-lc is never linked). rustls 0.23.48
/// deprecates ring's provider only because it lacks post-quantum key exchange; the choice is
/// deliberate (a lean build without cmake/aws-lc).
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate of a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |e: rustls::pki_types::pem::Error| TlsError::Pem {
        path: path.to_path_buf(),
        msg: e.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err)?;
    if certs.is_empty() {
        return Err(TlsError::NoCert {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Pem {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in load_certs(path)? {
        store.add(cert).map_err(|e| TlsError::Config {
            what: "CA certificate",
            msg: format!("{}: {e}", path.display()),
        })?;
    }
    Ok(store)
}

/// Paths of netmaster's server certificate, its key and, optionally, the CA whose client
/// certificates are verified (agents).
#[derive(Debug, Clone)]
pub struct ServerFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// rustls server config: TLS 1.3 and 1.2 only, HTTP/1.1. With a client CA, a client
/// certificate is verified when offered and optional otherwise (users of netctl have none): what
/// a request may do without one is decided by netmaster's authorisation, not here.
pub fn server_config(files: &ServerFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config {
            what: "TLS versions",
            msg: e.to_string(),
        })?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| TlsError::Config {
                        what: "client CA",
                        msg: e.to_string(),
                    })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(load_certs(&files.cert)?, load_key(&files.key)?)
        .map_err(|e| TlsError::Config {
            what: "server certificate",
            msg: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Paths an HTTPS client uses: the CA that signed netmaster's certificate and, for agents and
/// netmasters, a client certificate with its key.
#[derive(Debug, Clone, Default)]
pub struct ClientFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// No check of the server's certificate at all (netctl's `--insecure`, as in Contiv).
    pub insecure: bool,
}

impl ClientFiles {
    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none() && !self.insecure
    }
}

/// ureq's TLS config for `files`: rustls with ring, trusting only the given CA (without one,
/// no server is trusted: an https URL then fails with "unknown issuer").
pub fn client_config(files: &ClientFiles) -> Result<ureq::tls::TlsConfig, TlsError> {
    use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};
    let to_ureq = |c: &CertificateDer<'_>| Certificate::from_der(c.as_ref()).to_owned();
    let roots: Vec<Certificate<'static>> = match &files.ca {
        Some(ca) => load_certs(ca)?.iter().map(to_ureq).collect(),
        None => Vec::new(),
    };
    let client = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            let chain: Vec<_> = load_certs(cert)?.iter().map(to_ureq).collect();
            let pem = std::fs::read(key).map_err(|e| TlsError::Pem {
                path: key.clone(),
                msg: e.to_string(),
            })?;
            let key = PrivateKey::from_pem(&pem).map_err(|e| TlsError::Pem {
                path: key.clone(),
                msg: e.to_string(),
            })?;
            Some(ClientCert::new_with_certs(&chain, key))
        }
        (None, None) => None,
        _ => {
            return Err(TlsError::Config {
                what: "client certificate",
                msg: "a certificate needs its key and a key its certificate".into(),
            })
        }
    };
    Ok(TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(provider())
        .root_certs(RootCerts::new_with_certs(&roots))
        .client_cert(client)
        .disable_verification(files.insecure)
        .build())
}

/// What a verified client certificate names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// A host agent (OU [`OU_HOST`]); the CN is its host name.
    Host,
    /// Another netmaster (OU [`OU_NETMASTER`]).
    Netmaster,
}

/// The identity a verified client certificate proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub role: PeerRole,
    /// Subject CN: the host name of an agent.
    pub name: String,
    /// Serial number, lower-case hex without separators or leading zeros (see [`normal_serial`]).
    pub serial: String,
}

/// Reads the identity of a (verified) certificate: its CN, OU and serial.
pub fn identity_of(der: &[u8]) -> Result<PeerIdentity, TlsError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| TlsError::BadCert(e.to_string()))?;
    let subject = cert.subject();
    let text = |attr: Option<&x509_parser::x509::AttributeTypeAndValue<'_>>| {
        attr.and_then(|a| a.as_str().ok()).map(str::to_string)
    };
    let name = text(subject.iter_common_name().next())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| TlsError::BadCert("no subject CN".into()))?;
    let role = match text(subject.iter_organizational_unit().next()).as_deref() {
        Some(OU_HOST) => PeerRole::Host,
        Some(OU_NETMASTER) => PeerRole::Netmaster,
        other => {
            return Err(TlsError::BadCert(format!(
                "organizational unit {other:?} is neither {OU_HOST} nor {OU_NETMASTER}"
            )))
        }
    };
    Ok(PeerIdentity {
        role,
        name,
        serial: normal_serial(&cert.raw_serial_as_string()),
    })
}

/// A serial in the one form deny lists are compared in: lower-case hex, no `:` or spaces, no
/// leading zeros (`0A:1b` and `a1b` are the same serial).
pub fn normal_serial(s: &str) -> String {
    let hex: String = s
        .chars()
        .filter(|c| !matches!(c, ':' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_compare_in_one_form() {
        assert_eq!(normal_serial("0A:1b:00"), "a1b00");
        assert_eq!(normal_serial("a1b00"), "a1b00");
        assert_eq!(normal_serial("00"), "0");
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let err = load_certs(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn a_client_cert_without_key_is_refused() {
        let files = ClientFiles {
            cert: Some("/x.pem".into()),
            ..Default::default()
        };
        assert!(client_config(&files).is_err());
    }
}
